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
import warnings
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torchnet import DTYPES, Spec, inference_peak, network, saved_bytes, tensor_bytes

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


# --- random chains ------------------------------------------------------------------------------------
ACTIVATIONS = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Sigmoid", "Tanh", "Softplus"]
IN_PLACE = {"ReLU", "ReLU6", "LeakyReLU", "ELU", "SiLU", "Mish", "Hardswish"}


def _activation(draw: Any, rank: int) -> str:
    name = draw(st.sampled_from([*ACTIVATIONS, "Softmax", "LogSoftmax"]))
    if name in ("Softmax", "LogSoftmax"):
        return f"{name}(dim={draw(st.integers(-rank, rank - 1))})"
    if name in IN_PLACE and draw(st.booleans()):
        return f"{name}(inplace=True)"
    return f"{name}()"


def _dropout(draw: Any, nd: int, rank: int) -> str:
    name = draw(st.sampled_from((["Dropout1d"] if nd == 1 else ["Dropout2d"] if nd == 2 else []) + ["Dropout", "Identity"]))
    if name == "Identity":
        return "Identity()"
    return f"{name}(p={draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))}, inplace={draw(st.booleans())})"


def _spatial_stage(draw: Any, shape: tuple[int, ...], nd: int) -> list[str]:
    channels = shape[-nd - 1]
    kind = draw(st.sampled_from(["act", "conv", "bn", "maxpool", "drop", "conv", "avgpool", "unpool", "act", "convt",
                                 "adaptive", "bn", "drop"]))  # fmt: skip
    k = draw(st.integers(1, 3))
    if kind == "conv":
        k = draw(st.integers(1, 4))
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        stride = draw(st.integers(1, 2))
        padding = draw(st.sampled_from(["0", "1", "'same'", "'valid'"] if stride == 1 else ["0", "1"]))
        dilation = draw(st.integers(1, 2))
        return [f"Conv{nd}d({channels}, {out}, {k}, stride={stride}, "
                f"padding={padding}, dilation={dilation}, groups={groups}, bias={draw(st.booleans())}, "
                f"padding_mode='{mode}')"]  # fmt: skip
    if kind == "convt":
        stride = draw(st.integers(1, 2))
        return [f"ConvTranspose{nd}d({channels}, {draw(st.integers(1, 4))}, {k}, stride={stride}, "
                f"padding={draw(st.integers(0, k // 2))}, output_padding={draw(st.integers(0, stride - 1))}, "
                f"bias={draw(st.booleans())})"]  # fmt: skip
    if kind in ("maxpool", "avgpool", "unpool"):
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
        if kind == "avgpool":
            return [f"AvgPool{nd}d({k}, stride={stride}, padding={padding}, ceil_mode={draw(st.booleans())}, "
                    f"count_include_pad={draw(st.booleans())})"]  # fmt: skip
        pool = f"MaxPool{nd}d({k}, stride={stride}, padding={padding}, dilation={draw(st.integers(1, 2))})"
        if kind == "maxpool":
            return [pool]
        between = [_activation(draw, len(shape))] if draw(st.booleans()) else []
        return [f"MaxPool{nd}d({k}, stride={stride}, padding={padding})", *between,
                f"MaxUnpool{nd}d({k}, stride={stride}, padding={padding})"]  # fmt: skip
    if kind == "adaptive":
        mode = draw(st.sampled_from(["Avg", "Max"]))
        size = draw(st.integers(1, 3))
        return [f"Adaptive{mode}Pool{nd}d({size})"]
    if kind == "bn":
        if len(shape) != nd + 2:
            return [_activation(draw, len(shape))]
        return [f"BatchNorm{nd}d({channels}, affine={draw(st.booleans())}, "
                f"track_running_stats={draw(st.booleans())})"]  # fmt: skip
    if kind == "drop":
        return [_dropout(draw, nd, len(shape))]
    return [_activation(draw, len(shape))]


def _flat_stage(draw: Any, shape: tuple[int, ...]) -> list[str]:
    kind = draw(st.sampled_from(["act", "linear", "bn", "drop", "linear"]))
    if kind == "linear":
        return [f"Linear({shape[-1]}, {draw(st.integers(1, 6))}, bias={draw(st.booleans())})"]
    if kind == "bn" and len(shape) == 2:
        return [f"BatchNorm1d({shape[-1]}, affine={draw(st.booleans())}, track_running_stats={draw(st.booleans())})"]
    if kind == "drop":
        return [_dropout(draw, 0, len(shape))]
    return [_activation(draw, len(shape))]


@st.composite
def chains(draw: Any) -> tuple[tuple[int, ...], list[str]]:
    """A chain PyTorch accepts: spatial layers, then perhaps Flatten and fully connected ones."""
    nd = draw(st.integers(1, 2))
    batched = draw(st.booleans())
    shape = (((draw(st.integers(1, 3)),) if batched else ()) + (draw(st.integers(1, 4)),)
             + tuple(draw(st.integers(3, 9)) for _ in range(nd)))  # fmt: skip
    texts: list[str] = []
    current, flat = shape, False
    for _ in range(draw(st.integers(2, 8))):
        if not flat and draw(st.sampled_from([False, False, False, False, False, True])):
            candidate = ["Flatten()"] if batched else ["Flatten(start_dim=0)"]
        else:
            candidate = _flat_stage(draw, current) if flat else _spatial_stage(draw, current, nd)
        trace = trace_shapes(shape, parse_stages(texts + candidate))
        if trace.error is None and 0 not in trace.output_shape:
            texts += candidate
            current, flat = trace.output_shape, flat or candidate[0].startswith("Flatten")
    assume(texts)
    return shape, texts


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


# --- graphs -------------------------------------------------------------------------------------------
def residual(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 8, 3, stride=2, padding=1, bias=False)", "BatchNorm2d(8)", relu,
                   "Conv2d(8, 8, 3, padding=1, bias=False)", "BatchNorm2d(8)",
                   Spec("Conv2d(4, 8, 1, stride=2, bias=False)", (0,)), "BatchNorm2d(8)", Spec("Add()", (7, 5)), relu]  # fmt: skip
    texts = ["Conv2d(4, 8, 3, stride=2, padding=1, bias=False)", "BatchNorm2d(8)", relu,
             "Conv2d(8, 8, 3, padding=1, bias=False)", "y=BatchNorm2d(8)", "Conv2d(4, 8, 1, stride=2, bias=False)(@input)",
             "BatchNorm2d(8)", "Add(@y)", relu]  # fmt: skip
    return torch_specs, texts


def dense(inplace: bool) -> tuple[list, list]:
    act = "LeakyReLU(inplace=True)" if inplace else "LeakyReLU()"
    torch_specs = ["Conv2d(4, 4, 3, padding=1)", act, Spec("Conv2d(4, 4, 1)", (2,)),
                   Spec("MaxPool2d(3, stride=1, padding=1)", (2,)), Spec("Cat()", (2, 3, 4)), "BatchNorm2d(12)",
                   "ReLU()", "Conv2d(12, 6, 1)", Spec("Cat(dim=1)", (8, 5))]  # fmt: skip
    texts = ["Conv2d(4, 4, 3, padding=1)", f"a={act}", "b=Conv2d(4, 4, 1)", "c=MaxPool2d(3, stride=1, padding=1)(@a)",
             "d=Cat(@a, @b, @c)", "BatchNorm2d(12)", "ReLU()", "Conv2d(12, 6, 1)", "Cat(@d)"]  # fmt: skip
    return torch_specs, texts


def squeeze_excite(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 8, 3, padding=1)", relu, "AdaptiveAvgPool2d(1)", "Conv2d(8, 2, 1)", relu,
                   "Conv2d(2, 8, 1)", "Sigmoid()", Spec("Mul()", (2, 7)), Spec("Add()", (8, 2))]  # fmt: skip
    texts = ["Conv2d(4, 8, 3, padding=1)", f"x={relu}", "AdaptiveAvgPool2d(1)", "Conv2d(8, 2, 1)", relu,
             "Conv2d(2, 8, 1)", "Sigmoid()", "Mul(@x)", "Add(@x)"]  # fmt: skip
    return torch_specs, texts


def unet(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 6, 3, padding=1)", relu, "MaxPool2d(2)", "Conv2d(6, 6, 3, padding=1)", relu,
                   "MaxUnpool2d(2)", Spec("Cat()", (6, 2)), "Conv2d(12, 4, 3, padding='same')", "Dropout2d(0.2)",
                   Spec("Linear(256, 10)", flatten=True)]  # fmt: skip
    texts = ["Conv2d(4, 6, 3, padding=1)", f"skip={relu}", "MaxPool2d(2)", "Conv2d(6, 6, 3, padding=1)", relu,
             "MaxUnpool2d(2)", "Cat(@skip)", "Conv2d(12, 4, 3, padding='same')", "Dropout2d(0.2)", "Linear(256, 10)"]  # fmt: skip
    return torch_specs, texts


def merges(inplace: bool) -> tuple[list, list]:
    act = "ELU(inplace=True)" if inplace else "ELU()"
    torch_specs = ["Conv2d(4, 4, 3, padding=1)", act, Spec("Mul()", (2, 0, 2)), Spec("Add()", (3, 1, 0)),
                   Spec("Linear(8, 1)", (0,)), Spec("Mul()", (5, 4)), "Softmax(dim=1)"]  # fmt: skip
    texts = ["Conv2d(4, 4, 3, padding=1)", act, "Mul(@2, @input, @2)", "Add(@3, @1, @input)", "Linear(8, 1)(@input)",
             "Mul(@5, @4)", "Softmax(dim=1)"]  # fmt: skip
    return torch_specs, texts


GRAPHS = {"residual": residual, "dense": dense, "squeeze-excite": squeeze_excite, "unet": unet, "merges": merges}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_graphs_saved_bytes_and_peak_equal_torch(graph, inplace, dtype):
    torch_specs, texts = GRAPHS[graph](inplace)
    check((2, 4, 8, 8), torch_specs, texts, dtype)


def test_alexnet_memory_equals_torch():
    texts = ["Conv2d(3, 64, 11, stride=4, padding=2)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "Conv2d(64, 192, 5, padding=2)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "Conv2d(192, 384, 3, padding=1)", "ReLU(inplace=True)", "Conv2d(384, 256, 3, padding=1)",
             "ReLU(inplace=True)", "Conv2d(256, 256, 3, padding=1)", "ReLU(inplace=True)", "MaxPool2d(3, stride=2)",
             "AdaptiveAvgPool2d((6, 6))", "Dropout()", "Flatten()", "Linear(9216, 4096)", "ReLU(inplace=True)",
             "Dropout()", "Linear(4096, 4096)", "ReLU(inplace=True)", "Linear(4096, 1000)"]  # fmt: skip
    plan = check((2, 3, 224, 224), texts, texts)
    assert plan.saved_bytes == sum(s.saved_bytes for s in plan.stages) > 0


def test_the_same_tensor_saved_by_two_stages_counts_once():
    plan = plan_memory(trace_shapes((1, 3, 8, 8), parse_stages(["Conv2d(3, 4, 3)", "ReLU", "Conv2d(4, 4, 3)"])))
    relu, conv = plan.stages[1], plan.stages[2]
    assert relu.saved_bytes == 4 * 6 * 6 * 4 and conv.saved_bytes == 0
    assert conv.saved[0].shared_with == 2


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


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
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
                                   ["Conv2d(3, 3, 1)", "Conv2d(3, 3, 1)(@input)", "ReLU(inplace=True)(@input)"],
                                   ["Linear(4, 4)", "ReLU", "Dropout(inplace=True)"]])  # fmt: skip
def test_in_place_overwrite_of_a_saved_tensor_is_refused(texts):
    plan = plan_memory(trace_shapes((2, 3, 4, 4) if "Conv2d" in texts[0] else (2, 4), parse_stages(texts)))
    with pytest.raises(LayerError, match="overwrites in place a tensor that stage . saved for backward"):
        plan.raise_training_error()


@pytest.mark.parametrize("text", ["MaxUnpool2d(2)"])
def test_unpool_without_its_pool_is_refused(text):
    with pytest.raises(LayerError, match="MaxUnpool without a max pool"):
        plan_memory(trace_shapes((1, 1, 4, 4), [parse_stage(text)]))


def test_empty_tensors_are_refused():
    with pytest.raises(CnnopsError, match="empty tensor"):
        plan_memory(trace_shapes((1, 3, 4, 4), parse_stages(["AdaptiveAvgPool2d(0)"])))
