"""Every stage kind computed by the pipeline equals torch.nn on the same input (property-based).

Weights not given come from PyTorch's default initialisation under the seed, so the reference is
simply ``torch.manual_seed(seed)`` followed by building the same nn modules in order.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, currently_in_test_context, given, settings
from hypothesis import strategies as hs

from cnnops.model.trace import trace_shapes
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stage, parse_stages

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@hs.composite
def tensors(draw, rank_min=3, rank_max=4, channels=None, min_side=1, max_side=9, ties=None):
    rank = draw(hs.integers(rank_min, rank_max))
    nd = 2 if rank_min >= 3 else 1
    spatial = [draw(hs.integers(min_side, max_side)) for _ in range(nd)]
    c = channels if channels is not None else draw(hs.integers(1, 3))
    lead = [draw(hs.integers(1, 2)), c] if rank == nd + 2 else [c]
    shape = tuple(lead + spatial)
    seed = draw(hs.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    use_ties = draw(hs.booleans()) if ties is None else ties
    if use_ties:  # few distinct values: many ties, zeros and negative zeros
        data = rng.choice(np.array([-1.0, -0.0, 0.0, 1.0, 2.0], dtype=np.float32), size=shape)
    else:
        data = rng.standard_normal(shape).astype(np.float32)
    return data


def torch_reference(texts, data, seed):
    """Build the nn modules from their PyTorch text in a fresh seeded state and run them."""
    torch.manual_seed(seed)
    modules = [eval(f"torch.nn.{parse_stage(t).call}") for t in texts]  # test-only oracle
    x = torch.from_numpy(data.copy())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in modules:
            m.eval()
            x = m(x)
    return x.numpy()


def check_against_torch(texts, data, seed=0, rtol=1e-5, atol=1e-6):
    trace = trace_shapes(data.shape, parse_stages(texts))
    if currently_in_test_context():
        assume(trace.error is None)
    else:
        assert trace.error is None, trace.error
    result = run_pipeline(data, parse_stages(texts), seed=seed)
    expected = torch_reference(texts, data, seed)
    assert result.output.shape == expected.shape
    np.testing.assert_allclose(result.output, expected, rtol=rtol, atol=atol, equal_nan=True)
    return result


@SETTINGS
@given(tensors(), hs.integers(1, 4), hs.integers(1, 4), hs.integers(1, 3), hs.sampled_from([0, 1, 2, "'same'", "'valid'"]),
       hs.integers(1, 2), hs.sampled_from(["zeros", "reflect", "replicate", "circular"]), hs.booleans(),
       hs.integers(0, 1000))  # fmt: skip
def test_conv2d_with_default_init_equals_torch(data, out_c, k, s, p, d, mode, bias, seed):
    c = data.shape[-3]
    if p in ("'same'",):
        s = 1
    text = f"Conv2d({c}, {out_c}, {k}, stride={s}, padding={p}, dilation={d}, bias={bias}, padding_mode='{mode}')"
    check_against_torch([text], data, seed)


@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12), hs.integers(1, 4), hs.integers(1, 5), hs.integers(1, 3),
       hs.integers(0, 2), hs.integers(1, 3), hs.integers(0, 1000))  # fmt: skip
def test_conv1d_with_groups_equals_torch(data, out_mult, k, s, p, d, seed):
    c = data.shape[-2]
    text = f"Conv1d({c}, {c * out_mult}, {k}, stride={s}, padding={p}, dilation={d}, groups={c})"
    check_against_torch([text], data, seed)


@SETTINGS
@given(tensors(), hs.integers(1, 3), hs.integers(1, 3), hs.integers(1, 3), hs.integers(0, 1), hs.integers(0, 2),
       hs.integers(0, 1000))  # fmt: skip
def test_conv_transpose2d_equals_torch(data, out_c, k, s, p, op, seed):
    c = data.shape[-3]
    text = f"ConvTranspose2d({c}, {out_c}, {k}, stride={s}, padding={p}, output_padding={op})"
    check_against_torch([text], data, seed)


@SETTINGS
@given(tensors(ties=True), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2), hs.integers(1, 2), hs.booleans())
def test_max_pool2d_values_and_indices_equal_torch_including_ties(data, k, s, p, d, ceil):
    text = f"MaxPool2d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})"
    result = check_against_torch([text], data)
    _, idx = torch.nn.functional.max_pool2d(torch.from_numpy(data), k, s, p, d, ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(result.output_indices, idx.numpy())


@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12, ties=True), hs.integers(1, 4), hs.integers(1, 3),
       hs.integers(0, 2), hs.integers(1, 2), hs.booleans())  # fmt: skip
def test_max_pool1d_values_and_indices_equal_torch(data, k, s, p, d, ceil):
    text = f"MaxPool1d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})"
    result = check_against_torch([text], data)
    _, idx = torch.nn.functional.max_pool1d(torch.from_numpy(data), k, s, p, d, ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(result.output_indices, idx.numpy())


@SETTINGS
@given(tensors(), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2), hs.booleans(), hs.booleans(),
       hs.sampled_from([None, 3, -2, 1]))  # fmt: skip
def test_avg_pool2d_equals_torch(data, k, s, p, ceil, cip, div):
    text = f"AvgPool2d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={cip}, divisor_override={div})"
    check_against_torch([text], data)


@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2),
       hs.booleans(), hs.booleans())  # fmt: skip
def test_avg_pool1d_equals_torch(data, k, s, p, ceil, cip):
    check_against_torch([f"AvgPool1d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={cip})"], data)


@SETTINGS
@given(tensors(ties=True), hs.sampled_from(["1", "2", "(3, 5)", "(None, 2)", "(10, 1)"]), hs.sampled_from(["Avg", "Max"]))
def test_adaptive_pool2d_equals_torch(data, size, kind):
    result = check_against_torch([f"Adaptive{kind}Pool2d({size})"], data)
    if kind == "Max":
        out_size = result.output.shape[-2:]
        _, idx = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(data), out_size, return_indices=True)
        np.testing.assert_array_equal(result.output_indices, idx.numpy())


@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12, ties=True), hs.integers(1, 14), hs.sampled_from(["Avg", "Max"]))
def test_adaptive_pool1d_equals_torch(data, size, kind):
    check_against_torch([f"Adaptive{kind}Pool1d({size})"], data)


@SETTINGS
@given(tensors(ties=True, min_side=2), hs.integers(1, 3), hs.integers(1, 3))
def test_max_pool_then_unpool_restores_values_at_saved_indices(data, k, s):
    texts = [f"MaxPool2d({k}, stride={s})", f"MaxUnpool2d({k}, stride={s})"]
    trace = trace_shapes(data.shape, parse_stages(texts))
    assume(trace.error is None)
    result = run_pipeline(data, parse_stages(texts))
    x = torch.from_numpy(data)
    y, idx = torch.nn.functional.max_pool2d(x, k, s, return_indices=True)
    expected = torch.nn.functional.max_unpool2d(y, idx, k, s, output_size=data.shape[-2:])
    np.testing.assert_array_equal(result.output, expected.numpy())


@SETTINGS
@given(tensors(rank_min=1, rank_max=3, max_side=6), hs.integers(1, 5), hs.booleans(), hs.integers(0, 1000))
def test_linear_with_default_init_equals_torch(data, out_f, bias, seed):
    data = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data
    check_against_torch([f"Linear({data.shape[-1]}, {out_f}, bias={bias})"], data, seed)


ACTIVATIONS = ["ReLU()", "ReLU6()", "LeakyReLU(0.2)", "ELU(alpha=0.5)", "GELU()", "GELU(approximate='tanh')",
               "SiLU()", "Mish()", "Hardswish()", "Sigmoid()", "Tanh()", "Softplus(beta=2.0)", "Softmax(dim=1)",
               "LogSoftmax(dim=-1)", "Softmax()", "Dropout(0.3)", "Identity()", "BatchNorm2d(2)"]  # fmt: skip


@SETTINGS
@given(tensors(rank_min=4, rank_max=4, channels=2), hs.sampled_from(ACTIVATIONS))
def test_activations_and_shape_keeping_layers_equal_torch(data, text):
    check_against_torch([text], data)


def test_nan_and_inf_propagate_like_torch():
    data = np.array([[[[1.0, np.nan, -np.inf, 3.0], [np.inf, 0.0, -0.0, 2.0]]]], dtype=np.float32)
    for texts in (["ReLU()"], ["MaxPool2d(2)"], ["AvgPool2d(2)"], ["AdaptiveMaxPool2d(1)"], ["Sigmoid()"]):
        check_against_torch(texts, data)


def test_a_whole_chain_equals_the_same_torch_model_under_the_seed():
    data = np.random.default_rng(3).standard_normal((1, 1, 12, 12)).astype(np.float32)
    texts = ["Conv2d(1, 4, 3, padding=1)", "ReLU()", "MaxPool2d(2)", "Conv2d(4, 8, 3)", "ReLU()",
             "AdaptiveMaxPool2d(2)", "Flatten()", "Linear(32, 5)"]  # fmt: skip
    check_against_torch(texts, data, seed=42)


def test_given_weights_keep_later_default_weights_aligned_with_torch():
    data = np.random.default_rng(5).standard_normal((1, 1, 6, 6)).astype(np.float32)
    result = run_pipeline(data, parse_stages(["Conv2d(1, 1, 3, weight='gx')", "Conv2d(1, 2, 3)"]), seed=9)
    torch.manual_seed(9)
    first, second = torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 2, 3)
    np.testing.assert_array_equal(result.results[1].weight, second.weight.detach().numpy())
    np.testing.assert_array_equal(result.results[0].bias, first.bias.detach().numpy())


@pytest.mark.parametrize("seed", [0, 1, 1234])
def test_default_weights_are_exactly_pytorch_init_under_the_seed(seed):
    result = run_pipeline(np.zeros((1, 3, 5, 5), np.float32), parse_stages(["Conv2d(3, 4, 3)", "Flatten", "Linear(36, 2)"]), seed=seed)
    torch.manual_seed(seed)
    conv, lin = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(36, 2)
    np.testing.assert_array_equal(result.results[0].weight, conv.weight.detach().numpy())
    np.testing.assert_array_equal(result.results[0].bias, conv.bias.detach().numpy())
    np.testing.assert_array_equal(result.results[2].weight, lin.weight.detach().numpy())
