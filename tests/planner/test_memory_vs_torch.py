"""cnnops' memory plan against torch itself.

- Saved for backward: the torch network runs a training forward under ``saved_tensors_hooks``; the bytes of
  every packed storage that is not a parameter are counted once, at the stage that first packs it, and must
  equal cnnops' ``saved_bytes`` stage by stage — for random chains of every layer kind cnnops plans (in place
  or not, every dtype), residual, concatenating and squeeze-excitation graphs, and multi-input merges.
- Inference peak: a ``TorchDispatchMode`` follows every tensor a no-grad forward makes (weak references to
  each, by storage) and its peak must equal cnnops' ``inference_peak_bytes``.
- Parameters, gradients, buffers and optimizer state: the bytes torch holds after a real optimizer step.
- Refusals: cnnops refuses a training plan exactly where torch's forward or backward fails (BatchNorm on one
  value per channel; an in-place layer overwriting a tensor autograd saved).

The torch side is built from the raw stage text (``torchnet``), never from cnnops' parse.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchnet import DTYPES, Spec, inference_peak, network, saved_bytes, tensor_bytes
from zoo import GRAPHS, chains, graphs, residual

from cnnops.errors import CnnopsError, LayerError
from cnnops.model.memory import plan_memory
from cnnops.model.trace import trace_shapes
from cnnops.spec import parse_stage, parse_stages

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check(shape: tuple[int, ...], torch_specs: list[str | Spec], texts: list[str], dtype: str = "float32") -> Any:
    """cnnops' plan for ``texts`` equals what torch keeps for ``torch_specs``: saved bytes per stage, peak."""
    plan = plan_memory(trace_shapes(shape, parse_stages(texts)), dtype)
    torch.manual_seed(0)
    net = network(torch_specs).to(DTYPES[dtype])
    x = torch.randn(shape).to(DTYPES[dtype])
    assert saved_bytes(net, x) == [s.saved_bytes for s in plan.stages], texts
    assert inference_peak(net, x) == plan.inference_peak_bytes, texts
    return plan


@SETTINGS
@given(chains(), st.sampled_from(["float32", "float32", "bfloat16", "float16", "float64"]))
def test_saved_bytes_and_inference_peak_of_random_chains_equal_torch(chain, dtype):
    shape, texts = chain
    trace = trace_shapes(shape, parse_stages(texts))
    plan = plan_memory(trace, dtype)
    torch.manual_seed(0)
    net = network(texts).to(DTYPES[dtype])
    x = torch.randn(shape).to(DTYPES[dtype])
    if plan.training_error is not None and "value per channel" in str(plan.training_error):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            saved_bytes(net, x)
    else:
        assert saved_bytes(net, x) == [s.saved_bytes for s in plan.stages]
    assert inference_peak(net, x) == plan.inference_peak_bytes
    assert [s.output_bytes for s in plan.stages] == [math.prod(r.output_shape) * x.element_size() for r in trace.rows]


@settings(SETTINGS, max_examples=60)
@given(chains())
def test_training_refused_exactly_where_torch_backward_fails(chain):
    """An in-place layer that overwrites a tensor autograd saved makes torch's backward fail."""
    shape, texts = chain
    plan = plan_memory(trace_shapes(shape, parse_stages(texts)))
    torch.manual_seed(0)
    net = network(texts).train()
    failure = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = net(torch.randn(shape))
            if y.requires_grad:
                y.sum().backward()
    except (RuntimeError, ValueError) as exc:
        failure = str(exc)
    if plan.training_error is None:
        assert failure is None, (texts, failure)
    else:
        assert failure is not None, texts
        words = "modified by an inplace operation" if "in place" in str(plan.training_error) else "value per channel"
        assert words in failure


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_graphs_saved_bytes_and_peak_equal_torch(graph, inplace, dtype):
    torch_specs, texts = GRAPHS[graph](inplace)
    check((2, 4, 8, 8), torch_specs, texts, dtype)


@settings(SETTINGS, max_examples=100)
@given(graphs(), st.sampled_from(["float32", "float32", "bfloat16", "float64"]))
def test_saved_bytes_and_inference_peak_of_random_graphs_equal_torch(graph, dtype):
    shape, torch_specs, texts = graph
    plan = plan_memory(trace_shapes(shape, parse_stages(texts)), dtype)
    torch.manual_seed(0)
    net = network(torch_specs).to(DTYPES[dtype])
    x = torch.randn(shape).to(DTYPES[dtype])
    if plan.training_error is not None and "value per channel" in str(plan.training_error):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            saved_bytes(net, x)
    else:
        assert saved_bytes(net, x) == [s.saved_bytes for s in plan.stages], texts
    assert inference_peak(net, x) == plan.inference_peak_bytes, texts
    if dtype == "float32" and "value per channel" not in str(plan.training_error):
        failure = None
        try:
            y = net.train()(x)
            if y.requires_grad:
                y.sum().backward()
        except RuntimeError as exc:
            failure = str(exc)
        assert (failure is None) == (plan.training_error is None), (texts, failure, plan.training_error)


def test_alexnet_memory_equals_torch():
    texts = ["Conv2d(3, 64, 11, stride=4, padding=2)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "Conv2d(64, 192, 5, padding=2)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "Conv2d(192, 384, 3, padding=1)", "ReLU(inplace=True)", "Conv2d(384, 256, 3, padding=1)",
             "ReLU(inplace=True)", "Conv2d(256, 256, 3, padding=1)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "AdaptiveAvgPool2d((6, 6))", "Dropout()", "Flatten()", "Linear(9216, 4096)", "ReLU(inplace=True)",
             "Dropout()", "Linear(4096, 4096)", "ReLU(inplace=True)", "Linear(4096, 1000)"]  # fmt: skip
    plan = check((2, 3, 224, 224), texts, texts)
    assert plan.saved_bytes == sum(s.saved_bytes for s in plan.stages) > 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_unpooling_after_max_and_adaptive_max_pools_equals_torch(dtype):
    texts = ["Conv2d(3, 3, 3, padding=1)", "MaxPool2d(2)", "ReLU()", "MaxUnpool2d(2)", "AdaptiveMaxPool2d(3)",
             "Sigmoid()", "MaxUnpool2d(3, stride=2)"]  # fmt: skip
    check((2, 3, 7, 7), texts, texts, dtype)


def test_the_same_tensor_saved_by_two_stages_counts_once():
    plan = plan_memory(trace_shapes((1, 3, 8, 8), parse_stages(["Conv2d(3, 4, 3)", "ReLU", "Conv2d(4, 4, 3)"])))
    relu, conv = plan.stages[1], plan.stages[2]
    assert relu.saved_bytes == 4 * 6 * 6 * 4 and conv.saved_bytes == 0
    assert conv.saved[0].shared_with == 2


def test_a_branch_the_output_does_not_use_releases_what_it_saved():
    texts = ["Conv2d(3, 4, 3)", "Conv2d(3, 2, 1)(@input)", "ReLU"]
    plan = check((2, 3, 8, 8), [Spec("Conv2d(3, 4, 3)"), Spec("Conv2d(3, 2, 1)", (0,)), "ReLU()"], texts)
    assert plan.stages[0].saved_bytes == 0 and plan.stages[0].saved[0].released
    assert plan.stages[1].saved_bytes == 2 * 3 * 8 * 8 * 4  # the input, saved by the conv that is used


def test_a_reader_of_a_tensor_overwritten_in_place_depends_on_the_overwrite():
    """ReLU(inplace=True)(@1) leaves nothing unused: the conv reading @1 afterwards reads its result."""
    torch_specs = ["Conv2d(3, 3, 1)", Spec("Conv2d(3, 3, 1)", (0,)), Spec("ReLU(inplace=True)", (2,)),
                   Spec("Conv2d(3, 3, 1)", (2,))]  # fmt: skip
    plan = check((2, 3, 4, 4), torch_specs, ["Conv2d(3, 3, 1)", "Conv2d(3, 3, 1)(@input)", "ReLU(inplace=True)(@2)",
                                            "Conv2d(3, 3, 1)(@2)"])  # fmt: skip
    assert plan.stages[2].saved_bytes == 2 * 3 * 4 * 4 * 4 and not plan.stages[2].saved[0].released


@settings(SETTINGS, max_examples=150)
@given(graphs())
def test_in_place_refusals_on_random_graphs_match_torch_backward(graph):
    shape, torch_specs, texts = graph
    plan = plan_memory(trace_shapes(shape, parse_stages(texts)))
    torch.manual_seed(0)
    net = network(torch_specs).train()
    failure = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = net(torch.randn(shape))
            if y.requires_grad:
                y.sum().backward()
    except (RuntimeError, ValueError) as exc:
        failure = str(exc)
    assert (failure is None) == (plan.training_error is None), (texts, failure, plan.training_error)


def test_nothing_is_saved_before_the_first_parameter():
    plan = plan_memory(trace_shapes((1, 3, 8, 8), parse_stages(["MaxPool2d(2)", "Sigmoid", "Conv2d(3, 4, 3)"])))
    assert [s.saved_bytes for s in plan.stages] == [0, 0, 3 * 4 * 4 * 4]


# --- parameters, gradients, buffers, optimizer state ----------------------------------------------------
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p),
    "adamw": lambda p: torch.optim.AdamW(p),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_parameter_gradient_buffer_and_optimizer_bytes_equal_torch(optimizer, dtype):
    torch_specs, texts = residual(False)
    plan = plan_memory(trace_shapes((2, 4, 8, 8), parse_stages(texts)), dtype, optimizer)
    net = network(torch_specs).to(DTYPES[dtype]).train()
    opt = OPTIMIZERS[optimizer](net.parameters())
    net(torch.randn(2, 4, 8, 8).to(DTYPES[dtype])).sum().backward()
    opt.step()
    params = list(net.parameters())
    assert plan.params_bytes == tensor_bytes(params)
    assert plan.grads_bytes == tensor_bytes(p.grad for p in params)
    assert plan.buffers_bytes == tensor_bytes(net.buffers())
    # the scalar step counters of Adam live on the CPU whatever the device: left out, as documented
    state = [t for s in opt.state.values() for name, t in s.items() if name != "step"]
    assert plan.optimizer_bytes == tensor_bytes(state)
    running = [t for name, t in net.named_buffers() if name.endswith(("running_mean", "running_var"))]
    assert plan.saved_buffer_bytes == tensor_bytes(running)  # autograd saves them: counted once
    assert plan.training_bytes == (plan.params_bytes * 2 + plan.optimizer_bytes + plan.buffers_bytes + plan.saved_bytes
                                   - plan.saved_buffer_bytes)  # fmt: skip


# --- refusals -----------------------------------------------------------------------------------------
def test_batchnorm_on_one_value_per_channel_is_refused_for_training_only():
    plan = plan_memory(trace_shapes((1, 8), parse_stages(["Linear(8, 4)", "BatchNorm1d(4)"])))
    with pytest.raises(LayerError, match="stage 2 BatchNorm1d.*more than 1 value per channel"):
        plan.raise_training_error()
    assert plan.inference_peak_bytes == 8 * 4 + 4 * 4 + 4 * 4


@pytest.mark.parametrize("texts", [["Conv2d(3, 3, 1)", "Sigmoid", "ReLU(inplace=True)"],
                                   ["Conv2d(3, 3, 1)", "ReLU(inplace=True)(@input)", "Add(@1, @2)"],
                                   ["Linear(4, 4)", "ReLU", "Dropout(inplace=True)"]])  # fmt: skip
def test_in_place_overwrite_of_a_saved_tensor_is_refused(texts):
    plan = plan_memory(trace_shapes((2, 3, 4, 4) if "Conv2d" in texts[0] else (2, 4), parse_stages(texts)))
    with pytest.raises(LayerError, match="overwrites in place a tensor that stage . saved for backward"):
        plan.raise_training_error()


@pytest.mark.parametrize("texts, refused", [
    (["Conv2d(3, 3, 1)", "LeakyReLU(-0.1, inplace=True)"], True),
    (["Conv2d(3, 3, 1)", "ELU(alpha=-0.5, inplace=True)"], True),
    (["Conv2d(3, 3, 1)", "Conv2d(3, 3, 1)(@input)", "LeakyReLU(-0.1, inplace=True)", "Add(@1, @input)"],
     False),  # a branch the output does not use: backward never reaches it
    (["LeakyReLU(-0.1, inplace=True)", "Conv2d(3, 3, 1)"], False),  # no gradient through it
    (["Conv2d(3, 3, 1)", "LeakyReLU(0.0, inplace=True)"], False),
    (["Conv2d(3, 3, 1)", "ELU(alpha=0.0, inplace=True)"], False),
    (["Conv2d(3, 3, 1)", "LeakyReLU(-0.1)"], False),
])  # fmt: skip
def test_in_place_negative_slope_is_refused_exactly_where_torch_backward_fails(texts, refused):
    """leaky_relu_/elu_ with a negative slope save their result, from which backward cannot work."""
    plan = plan_memory(trace_shapes((2, 3, 4, 4), parse_stages(texts)))
    torch.manual_seed(0)
    specs = [Spec(t.replace("(@input)", ""), reads=(0,)) if t.endswith("(@input)") else t for t in texts]
    if texts[-1] == "Add(@1, @input)":
        specs[-1] = Spec("Add()", reads=(1, 0))
    net = network(specs).train()
    failure = None
    try:
        y = net(torch.randn(2, 3, 4, 4))
        if y.requires_grad:
            y.sum().backward()
    except RuntimeError as exc:
        failure = str(exc)
    assert (failure is not None) == refused == (plan.training_error is not None), (texts, failure)
    if refused:
        assert "backward calculation is triggered with a negative slope" in failure
        with pytest.raises(LayerError, match=r"stage 2 .*inplace=True\) with (negative_slope|alpha)=-0\.\d+ < 0"):
            plan.raise_training_error()
    else:
        assert saved_bytes(net, torch.randn(2, 3, 4, 4)) == [s.saved_bytes for s in plan.stages]


@pytest.mark.parametrize("text", ["MaxUnpool2d(2)"])
def test_unpool_without_its_pool_is_refused(text):
    with pytest.raises(LayerError, match="MaxUnpool without a max pool"):
        plan_memory(trace_shapes((1, 1, 4, 4), [parse_stage(text)]))


def test_empty_tensors_are_refused():
    with pytest.raises(CnnopsError, match="empty tensor"):
        plan_memory(trace_shapes((1, 3, 4, 4), parse_stages(["AdaptiveAvgPool2d(0)"])))


@pytest.mark.slow
@settings(SETTINGS, max_examples=600)
@given(chains(), st.sampled_from(["float32", "bfloat16", "float16", "float64"]))
def test_saved_bytes_and_inference_peak_of_many_random_chains_equal_torch(chain, dtype):
    test_saved_bytes_and_inference_peak_of_random_chains_equal_torch.hypothesis.inner_test(chain, dtype)


@pytest.mark.slow
@settings(SETTINGS, max_examples=500)
@given(graphs(), st.sampled_from(["float32", "bfloat16", "float16", "float64"]))
def test_saved_bytes_and_inference_peak_of_many_random_graphs_equal_torch(graph, dtype):
    test_saved_bytes_and_inference_peak_of_random_graphs_equal_torch.hypothesis.inner_test(graph, dtype)


def test_layers_without_a_verified_rule_are_refused_not_guessed():
    """A layer kind added later (a new stage class, or a new name on an existing one) has no rule until its
    rule is checked against torch: memory and the tools' counts refuse it."""
    from cnnops.model import conventions
    from cnnops.model.stages import Activation, Stage
    from cnnops.records import record

    @record(frozen=True, kw_only=True)
    class Newcomer(Stage):
        pass

    for stage in (Newcomer(name="PReLU", call="PReLU()"), Activation(name="Hardtanh", call="Hardtanh()")):
        trace = trace_shapes((2, 3, 4, 4), [parse_stage("Conv2d(3, 3, 1)"), stage])
        with pytest.raises(LayerError, match=re.escape(f"stage 2 {stage.call}: cnnops has no verified memory rule for")):
            plan_memory(trace)
        assert conventions.count(trace.rows[1], "thop").value is None
        with pytest.raises(LayerError, match="has not checked how thop"):
            conventions.recount(trace, "thop")


@pytest.mark.filterwarnings("ignore:dropout2d")
def test_dropout2d_below_two_dimensions_is_refused_for_training_only():
    """Dropout2d keeps a 1-D input in eval mode, and its training forward raises in torch."""
    texts = ["Linear(8, 8)", "Dropout2d(0.5)"]
    plan = plan_memory(trace_shapes((8,), parse_stages(texts)))
    with pytest.raises(LayerError, match="stage 2 Dropout2d.*at least 2 dimensions"):
        plan.raise_training_error()
    net = network(texts).train()
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        net(torch.randn(8))
    assert inference_peak(net.eval(), torch.randn(8)) == plan.inference_peak_bytes
    check((8, 7), ["Linear(7, 8)", "Dropout2d(0.5)"], ["Linear(7, 8)", "Dropout2d(0.5)"])  # the mask is (8, 8)
