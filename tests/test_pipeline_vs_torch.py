"""Every stage kind computed by the pipeline, on each engine, equals torch.nn on the same input (property-based).

The reference is plain PyTorch built from the very stage texts the test writes (``torch.nn.`` + text),
nothing from cnnops. Weights not given come from PyTorch's default initialisation under the seed, so
the reference is simply ``torch.manual_seed(seed)`` followed by building the same nn modules in order.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import assume, currently_in_test_context, given, settings
from hypothesis import strategies as hs

from cnnops.errors import CnnopsError
from cnnops.model.trace import trace_shapes
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stages

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_POOLS = (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d, torch.nn.AdaptiveMaxPool1d,
             torch.nn.AdaptiveMaxPool2d, torch.nn.AdaptiveMaxPool3d)
UNPOOLS = (torch.nn.MaxUnpool1d, torch.nn.MaxUnpool2d, torch.nn.MaxUnpool3d)
WEIGHTED = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
            torch.nn.ConvTranspose3d, torch.nn.Linear)  # fmt: skip


@hs.composite
def tensors(draw, rank_min=3, rank_max=4, channels=None, min_side=1, max_side=9, ties=None, nd=None):
    rank = draw(hs.integers(rank_min, rank_max))
    nd = nd or (2 if rank_min >= 3 else 1)
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


@dataclass
class Step:
    """One reference module and what it gave."""

    module: torch.nn.Module
    output: np.ndarray
    indices: np.ndarray | None = None


def torch_reference(texts, data, seed):
    """Build ``torch.nn.<text>`` for each of the test's own stage texts in a fresh seeded state and run
    them in evaluation mode. Max pools also return their indices, which a later MaxUnpool takes."""
    torch.manual_seed(seed)
    modules = [eval("torch.nn." + text) for text in texts]  # the test's literals: a test-only oracle
    x, indices, steps = torch.from_numpy(data.copy()), None, []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in modules:
            m.eval()
            if isinstance(m, MAX_POOLS):
                m.return_indices = True
                x, indices = m(x)
                steps.append(Step(m, x.numpy(), indices.numpy()))
                continue
            x = m(x, indices) if isinstance(m, UNPOOLS) else m(x)
            steps.append(Step(m, x.numpy()))
    return steps


def check_against_torch(texts, data, engine, seed=0, rtol=1e-5, atol=1e-6):
    """The pipeline's output, max-pool indices and default weights equal the reference's. A chain the
    shape model refuses is not a test case here (test_shape_vs_torch checks refusals against torch)."""
    trace = trace_shapes(data.shape, parse_stages(texts))
    if currently_in_test_context():
        assume(trace.error is None)
    else:
        assert trace.error is None, trace.error
    result = run_pipeline(data, parse_stages(texts), seed=seed, engine=engine)
    assert result.engine == engine
    steps = torch_reference(texts, data, seed)
    for mine, step in zip(result.results, steps, strict=True):
        if isinstance(step.module, WEIGHTED):  # default weights: the same numbers as torch
            np.testing.assert_array_equal(mine.weight, step.module.weight.detach().numpy())
            if step.module.bias is not None:
                np.testing.assert_array_equal(mine.bias, step.module.bias.detach().numpy())
        if step.indices is not None:
            np.testing.assert_array_equal(mine.indices, step.indices)
    expected = steps[-1].output
    assert result.output.shape == expected.shape
    np.testing.assert_allclose(result.output, expected, rtol=rtol, atol=atol, equal_nan=True)
    return result


@pytest.mark.slow
@SETTINGS
@given(tensors(), hs.integers(1, 4), hs.integers(1, 4), hs.integers(1, 3), hs.sampled_from([0, 1, 2, "'same'", "'valid'"]),
       hs.integers(1, 2), hs.sampled_from(["zeros", "reflect", "replicate", "circular"]), hs.booleans(),
       hs.integers(0, 1000))  # fmt: skip
def test_conv2d_with_default_init_equals_torch(engine, data, out_c, k, s, p, d, mode, bias, seed):
    c = data.shape[-3]
    if p in ("'same'",):
        s = 1
    text = f"Conv2d({c}, {out_c}, {k}, stride={s}, padding={p}, dilation={d}, bias={bias}, padding_mode='{mode}')"
    check_against_torch([text], data, engine, seed)


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12), hs.integers(1, 4), hs.integers(1, 5), hs.integers(1, 3),
       hs.integers(0, 2), hs.integers(1, 3), hs.integers(0, 1000))  # fmt: skip
def test_conv1d_with_groups_equals_torch(engine, data, out_mult, k, s, p, d, seed):
    c = data.shape[-2]
    text = f"Conv1d({c}, {c * out_mult}, {k}, stride={s}, padding={p}, dilation={d}, groups={c})"
    check_against_torch([text], data, engine, seed)


@pytest.mark.slow
@SETTINGS
@given(tensors(), hs.integers(1, 3), hs.integers(1, 3), hs.integers(1, 3), hs.integers(0, 1), hs.integers(0, 2),
       hs.integers(0, 1000))  # fmt: skip
def test_conv_transpose2d_equals_torch(engine, data, out_c, k, s, p, op, seed):
    c = data.shape[-3]
    text = f"ConvTranspose2d({c}, {out_c}, {k}, stride={s}, padding={p}, output_padding={op})"
    check_against_torch([text], data, engine, seed)


@pytest.mark.slow
@SETTINGS
@given(tensors(ties=True), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2), hs.integers(1, 2), hs.booleans())
def test_max_pool2d_values_and_indices_equal_torch_including_ties(engine, data, k, s, p, d, ceil):
    check_against_torch([f"MaxPool2d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12, ties=True), hs.integers(1, 4), hs.integers(1, 3),
       hs.integers(0, 2), hs.integers(1, 2), hs.booleans())  # fmt: skip
def test_max_pool1d_values_and_indices_equal_torch(engine, data, k, s, p, d, ceil):
    check_against_torch([f"MaxPool1d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(tensors(), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2), hs.booleans(), hs.booleans(),
       hs.sampled_from([None, 3, -2, 1]))  # fmt: skip
def test_avg_pool2d_equals_torch(engine, data, k, s, p, ceil, cip, div):
    text = f"AvgPool2d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={cip}, divisor_override={div})"
    check_against_torch([text], data, engine)


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12), hs.integers(1, 4), hs.integers(1, 3), hs.integers(0, 2),
       hs.booleans(), hs.booleans())  # fmt: skip
def test_avg_pool1d_equals_torch(engine, data, k, s, p, ceil, cip):
    text = f"AvgPool1d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={cip})"
    check_against_torch([text], data, engine)


@pytest.mark.slow
@SETTINGS
@given(
    tensors(ties=True), hs.sampled_from(["1", "2", "(3, 5)", "(None, 2)", "(10, 1)"]), hs.sampled_from(["Avg", "Max"])
)
def test_adaptive_pool2d_equals_torch(engine, data, size, kind):
    check_against_torch([f"Adaptive{kind}Pool2d({size})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=2, rank_max=3, max_side=12, ties=True), hs.integers(1, 14), hs.sampled_from(["Avg", "Max"]))
def test_adaptive_pool1d_equals_torch(engine, data, size, kind):
    check_against_torch([f"Adaptive{kind}Pool1d({size})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(tensors(ties=True, min_side=2), hs.integers(1, 3), hs.integers(1, 3))
def test_max_pool_then_unpool_restores_values_at_the_pool_input_size(engine, data, k, s):
    """cnnops gives a MaxUnpool after a max pool that pool's input size, as ``output_size=x.shape``."""
    texts = [f"MaxPool2d({k}, stride={s})", f"MaxUnpool2d({k}, stride={s})"]
    trace = trace_shapes(data.shape, parse_stages(texts))
    assume(trace.error is None)
    result = run_pipeline(data, parse_stages(texts), engine=engine)
    x = torch.from_numpy(data)
    y, idx = torch.nn.functional.max_pool2d(x, k, s, return_indices=True)
    expected = torch.nn.functional.max_unpool2d(y, idx, k, s, output_size=data.shape[-2:])
    np.testing.assert_array_equal(result.output, expected.numpy())


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=1, rank_max=3, max_side=6), hs.integers(1, 5), hs.booleans(), hs.integers(0, 1000))
def test_linear_with_default_init_equals_torch(engine, data, out_f, bias, seed):
    data = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data
    check_against_torch([f"Linear({data.shape[-1]}, {out_f}, bias={bias})"], data, engine, seed)


# --- the 3-D family ------------------------------------------------------------------------------
def volumes(ties=None, max_side=5, channels=None):
    """(C, D, H, W) or (N, C, D, H, W) tensors."""
    return tensors(rank_min=4, rank_max=5, max_side=max_side, ties=ties, channels=channels, nd=3)


@pytest.mark.slow
@SETTINGS
@given(volumes(), hs.integers(1, 3), hs.integers(1, 3), hs.integers(1, 2), hs.sampled_from([0, 1, "'same'"]),
       hs.integers(1, 2), hs.sampled_from(["zeros", "reflect", "replicate", "circular"]), hs.booleans(),
       hs.integers(0, 1000))  # fmt: skip
def test_conv3d_with_default_init_equals_torch(engine, data, out_c, k, s, p, d, mode, bias, seed):
    c = data.shape[-4]
    if p == "'same'":
        s = 1
    text = f"Conv3d({c}, {out_c}, {k}, stride={s}, padding={p}, dilation={d}, bias={bias}, padding_mode='{mode}')"
    check_against_torch([text], data, engine, seed)


@pytest.mark.slow
@SETTINGS
@given(volumes(), hs.integers(1, 3), hs.integers(1, 3), hs.integers(1, 2), hs.integers(0, 1), hs.integers(0, 1),
       hs.integers(1, 2), hs.integers(0, 1000))  # fmt: skip
def test_conv_transpose3d_equals_torch(engine, data, out_c, k, s, p, op, d, seed):
    c = data.shape[-4]
    text = f"ConvTranspose3d({c}, {out_c}, {k}, stride={s}, padding={p}, output_padding={op}, dilation={d})"
    check_against_torch([text], data, engine, seed)


@pytest.mark.slow
@SETTINGS
@given(volumes(ties=True), hs.integers(1, 3), hs.integers(1, 3), hs.integers(0, 1), hs.integers(1, 2), hs.booleans())
def test_max_pool3d_values_and_indices_equal_torch_including_ties(engine, data, k, s, p, d, ceil):
    check_against_torch([f"MaxPool3d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(volumes(), hs.integers(1, 3), hs.integers(1, 3), hs.integers(0, 1), hs.booleans(), hs.booleans(),
       hs.sampled_from([None, 3, -2, 1]))  # fmt: skip
def test_avg_pool3d_equals_torch_including_divisor_override(engine, data, k, s, p, ceil, cip, div):
    text = f"AvgPool3d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={cip}, divisor_override={div})"
    check_against_torch([text], data, engine)


@pytest.mark.slow
@SETTINGS
@given(volumes(ties=True), hs.sampled_from(["1", "2", "(3, 1, 5)", "(None, 2, None)", "(7, 1, 2)"]),
       hs.sampled_from(["Avg", "Max"]))  # fmt: skip
def test_adaptive_pool3d_equals_torch(engine, data, size, kind):
    check_against_torch([f"Adaptive{kind}Pool3d({size})"], data, engine)


@pytest.mark.slow
@SETTINGS
@given(volumes(ties=True), hs.integers(1, 3), hs.integers(1, 3))
def test_max_pool3d_then_unpool3d_restores_values_at_the_pool_input_size(engine, data, k, s):
    texts = [f"MaxPool3d({k}, stride={s})", f"MaxUnpool3d({k}, stride={s})"]
    trace = trace_shapes(data.shape, parse_stages(texts))
    assume(trace.error is None)
    result = run_pipeline(data, parse_stages(texts), engine=engine)
    x = torch.from_numpy(data)
    y, idx = torch.nn.functional.max_pool3d(x, k, s, return_indices=True)
    expected = torch.nn.functional.max_unpool3d(y, idx, k, s, output_size=data.shape[-3:])
    np.testing.assert_array_equal(result.output, expected.numpy())


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=5, rank_max=5, channels=2, nd=3, max_side=4),
       hs.sampled_from(["BatchNorm3d(2)", "BatchNorm3d(2, track_running_stats=False)", "LazyBatchNorm3d()",
                        "Dropout3d(0.4)"]))  # fmt: skip
def test_batchnorm3d_and_dropout3d_equal_torch(engine, data, text):
    check_against_torch([text], data, engine)


NORMS_4D = ["LayerNorm(5)", "LayerNorm((3, 5, 5), elementwise_affine=False)", "LayerNorm([5, 5], eps=0.01, bias=False)",
            "GroupNorm(3, 6)", "GroupNorm(2, 6, affine=False)", "GroupNorm(6, 6, eps=0.1)", "GroupNorm(1, 6)",
            "InstanceNorm2d(6)", "InstanceNorm2d(6, affine=True)", "InstanceNorm2d(6, track_running_stats=True)",
            "LocalResponseNorm(1)", "LocalResponseNorm(2)", "LocalResponseNorm(5, alpha=0.5, beta=2.0, k=0.5)"]  # fmt: skip


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=4, rank_max=4, channels=6, min_side=5, max_side=5), hs.sampled_from(NORMS_4D))
def test_norms_equal_torch(engine, data, text):
    if text.startswith("LayerNorm((3"):
        data = data[:, :3]
    check_against_torch([text], np.ascontiguousarray(data), engine, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@SETTINGS
@given(hs.one_of(tensors(rank_min=2, rank_max=3, channels=3, min_side=2, max_side=12),
                 volumes(channels=3, max_side=4).filter(lambda a: math.prod(a.shape[-3:]) > 1)),
       hs.sampled_from(["InstanceNorm{nd}d(3)", "InstanceNorm{nd}d(3, affine=True, eps=0.1)",
                        "InstanceNorm{nd}d(3, track_running_stats=True)", "LocalResponseNorm(3, k=2.0)",
                        "GroupNorm(3, 3)"]))  # fmt: skip
def test_instance_norm_1d_3d_and_other_ranks_equal_torch(engine, data, text):
    nd = 3 if data.ndim >= 4 else 1
    if data.ndim < 3 and text.startswith(("LocalResponseNorm", "GroupNorm")):
        data = data[None]  # batched: these take no unbatched input
    check_against_torch([text.format(nd=nd)], data, engine, rtol=1e-5, atol=1e-5)


@hs.composite
def upsample_cases(draw):
    mode = draw(hs.sampled_from(["nearest", "nearest", "linear", "bilinear", "bicubic", "trilinear"]))
    nd = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(mode) or draw(hs.integers(1, 3))
    data = draw(tensors(rank_min=nd + 2, rank_max=nd + 2, nd=nd, max_side=6 if nd < 3 else 4))
    if draw(hs.booleans()):
        factor = hs.sampled_from([0.5, 0.7, 1.0, 1.3, 1.5, 2, 2.1, 2.5, 3, 0.34, 1.75])
        scale = draw(hs.one_of(factor, hs.tuples(*[factor] * nd)))
        args = f"scale_factor={scale}, recompute_scale_factor={draw(hs.sampled_from([None, True, False]))}"
    else:  # 2-D outputs up to 70 on a side: both of ATen's nearest kernels (the switch is at H + W = 128)
        side = hs.integers(1, 70 if nd == 2 else 12)
        args = f"size={draw(hs.one_of(side, hs.tuples(*[side] * nd)))}"
    if mode != "nearest":
        args += f", align_corners={draw(hs.sampled_from([None, True, False]))}"
    return data, f"Upsample({args}, mode='{mode}')"


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True)
@given(upsample_cases())
def test_upsample_equals_torch_nearest_to_the_bit(engine, case):
    data, text = case
    exact = "'nearest'" in text
    check_against_torch([text], data, engine, rtol=0 if exact else 1e-5, atol=0 if exact else 1e-6)


def test_nearest_upsampling_takes_atens_shortcuts_only_where_its_kernel_does(engine):
    # scale 2.1 on 4 gives 8 = 2·4: the small 2-D kernel halves the index (row 6 reads row 3), while
    # 1-D (and 2-D past H + W = 128) compute ⌊6/2.1⌋ = 2
    row = np.arange(4, dtype=np.float32)
    one_d = run_pipeline(row.reshape(1, 1, 4), parse_stages(["Upsample(scale_factor=2.1)"]), engine=engine)
    assert one_d.output.reshape(-1).tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    plane = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    two_d = run_pipeline(plane, parse_stages(["Upsample(scale_factor=2.1)"]), engine=engine)
    assert two_d.output[0, 0, 6].tolist() == [12, 12, 13, 13, 14, 14, 15, 15]
    check_against_torch(["UpsamplingBilinear2d(scale_factor=2)", "UpsamplingNearest2d(size=(5, 7))"],
                        plane, engine)  # fmt: skip


ACTIVATIONS = ["ReLU()", "ReLU6()", "LeakyReLU(0.2)", "ELU(alpha=0.5)", "GELU()", "GELU(approximate='tanh')",
               "SiLU()", "Mish()", "Hardswish()", "Sigmoid()", "Tanh()", "Softplus(beta=2.0)", "Softmax(dim=1)",
               "LogSoftmax(dim=-1)", "Softmax()", "Dropout(0.3)", "Identity()", "BatchNorm2d(2)",
               "BatchNorm2d(2, track_running_stats=False)", "PReLU()", "PReLU(2)", "PReLU(2, init=-0.3)",
               "Hardsigmoid()", "Hardtanh()", "Hardtanh(-2, 0.5)", "Hardtanh(min_val=0.0, max_val=6.0)", "SELU()",
               "CELU()", "CELU(0.5)", "CELU(-2.0)", "Softsign()", "Tanhshrink()", "Threshold(0.1, 20)",
               "Threshold(0, -1.5)", "GLU(1)", "GLU()", "GLU(-2)", "AlphaDropout(0.2)", "FeatureAlphaDropout(0.3)",
               "ChannelShuffle(2)", "ChannelShuffle(1)"]  # fmt: skip


@pytest.mark.slow
@SETTINGS
@given(tensors(rank_min=4, rank_max=4, channels=2), hs.sampled_from(ACTIVATIONS))
def test_activations_and_shape_keeping_layers_equal_torch(engine, data, text):
    if text.startswith("GLU(") and text != "GLU(1)":
        data = np.ascontiguousarray(np.concatenate([data, data[..., ::-1]], axis=-1 if text == "GLU()" else -2))
    check_against_torch([text], data, engine)


LOW_RANK = [*ACTIVATIONS, "Softmax(dim=0)", "LogSoftmax()", "Flatten(0)", "Flatten()", "Unflatten(0, (1, -1))",
            "Linear(1, 2)", "LayerNorm(())", "LayerNorm(3)", "AdaptiveAvgPool1d(1)", "MaxPool1d(1)"]  # fmt: skip


@pytest.mark.parametrize("shape", [(), (3,)])
@pytest.mark.parametrize("text", LOW_RANK)
def test_scalars_and_vectors_give_torch_s_shape_and_values_or_its_refusal(engine, text, shape):
    """A 0-d or 1-d input: the output has torch's shape (a scalar stays a scalar) and values, or is
    refused where torch refuses it. Torch gets the input with the leading 1s of the rank rule (README:
    a stage that needs more dimensions than the input has sees it with leading 1s), where it applies."""
    data = np.linspace(-2.5, 1.5, math.prod(shape), dtype=np.float32).reshape(shape)
    trace = trace_shapes(shape, parse_stages([text]))
    promoted = data.reshape(trace.rows[0].effective_input) if trace.error is None else data
    try:
        expected = torch_reference([text], promoted, 0)[-1].output
    except Exception:  # torch refuses this input: so does cnnops, with its own error
        refused = trace.error is not None
        if not refused:
            with pytest.raises(CnnopsError):
                run_pipeline(data, parse_stages([text]), engine=engine)
        return
    result = run_pipeline(data, parse_stages([text]), engine=engine)
    assert result.output.shape == expected.shape == result.trace.output_shape
    np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-6)  # default weights: seed 0 both


def test_a_stage_output_of_another_shape_than_the_shape_model_s_is_refused(monkeypatch):
    from cnnops.engines import numpy_engine

    monkeypatch.setattr(numpy_engine, "activation", lambda name, x, options, inplace=False: np.zeros((1,), np.float32))
    with pytest.raises(CnnopsError, match=r"stage 1 ReLU\(\) computed a .* tensor where PyTorch gives .* cnnops bug"):
        run_pipeline(np.float32(2.0), parse_stages(["ReLU"]), engine="numpy")


@hs.composite
def pad_texts(draw, nd):
    prefix = draw(hs.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
    amount = hs.integers(-2, 3)
    padding = draw(hs.one_of(amount, hs.tuples(*[amount] * (2 * nd))))
    value = f", {draw(hs.sampled_from([2.5, -1]))}" if prefix == "Constant" else ""
    return f"{prefix}Pad{nd}d({padding}{value})"


@pytest.mark.slow
@SETTINGS
@given(hs.integers(1, 3).flatmap(lambda nd: hs.tuples(tensors(rank_min=nd + 1, rank_max=nd + 2, nd=nd, min_side=2,
                                                              max_side=6, ties=False), pad_texts(nd))))  # fmt: skip
def test_padding_layers_equal_torch_including_crops(engine, case):
    data, text = case
    check_against_torch([text], data, engine, rtol=0, atol=0)


@pytest.mark.slow
@SETTINGS
@given(hs.integers(1, 3), hs.integers(1, 3), hs.integers(1, 2), hs.integers(1, 2), hs.integers(0, 2 ** 16))
def test_pixel_shuffle_unshuffle_and_unflatten_equal_torch(engine, r, c, h, w, seed):
    data = np.random.default_rng(seed).standard_normal((2, c * r * r, h * r, w * r)).astype(np.float32)
    for texts in ([f"PixelShuffle({r})"], [f"PixelUnshuffle({r})"], [f"PixelUnshuffle({r})", f"PixelShuffle({r})"],
                  ["Flatten()", f"Unflatten(1, ({c * r * r}, -1, {w * r}))"]):  # fmt: skip
        result = check_against_torch(texts, data, engine, rtol=0, atol=0)
        if texts[-1].startswith("PixelShuffle") and len(texts) == 2:
            np.testing.assert_array_equal(result.output, data)


def test_nan_and_inf_propagate_like_torch(engine):
    data = np.array([[[[1.0, np.nan, -np.inf, 3.0], [np.inf, 0.0, -0.0, 2.0]]]], dtype=np.float32)
    for texts in (["ReLU()"], ["MaxPool2d(2)"], ["AvgPool2d(2)"], ["AdaptiveMaxPool2d(1)"], ["Sigmoid()"],
                  ["Hardsigmoid()"], ["Hardtanh()"], ["Threshold(0.5, -2)"], ["Softsign()"], ["PReLU()"], ["SELU()"],
                  ["CELU(0.5)"], ["Tanhshrink()"], ["GLU()"], ["LayerNorm(4)"], ["ZeroPad2d(1)"]):  # fmt: skip
        check_against_torch(texts, data, engine)


def test_a_whole_chain_equals_the_same_torch_model_under_the_seed(engine):
    data = np.random.default_rng(3).standard_normal((1, 1, 12, 12)).astype(np.float32)
    texts = ["Conv2d(1, 4, 3, padding=1)", "ReLU()", "MaxPool2d(2)", "Conv2d(4, 8, 3)", "ReLU()",
             "AdaptiveMaxPool2d(2)", "Flatten()", "Linear(32, 5)"]  # fmt: skip
    check_against_torch(texts, data, engine, seed=42)


CHAINS = [
    ((1, 1, 9, 9), ["Conv2d(1, 4, 3, padding=1)", "ReLU()", "MaxPool2d(2, stride=1)", "MaxUnpool2d(2, stride=1)",
                    "AvgPool2d(3, stride=2, padding=1, ceil_mode=True)"]),
    ((1, 2, 7, 7), ["Conv2d(2, 4, 3, padding='same', padding_mode='reflect', groups=2)", "GELU()", "BatchNorm2d(4)",
                    "MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True)", "AdaptiveAvgPool2d((3, 5))",
                    "Flatten()", "Linear(60, 6)", "Softmax(dim=-1)"]),
    ((2, 7, 7), ["Conv2d(2, 4, 3, padding='same', padding_mode='reflect', groups=2)", "GELU()",
                 "MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True)", "AdaptiveAvgPool2d((3, 5))",
                 "Softmax(dim=-1)"]),
    ((2, 3, 11), ["Conv1d(3, 6, 3, stride=2, padding_mode='circular', padding=1)", "LeakyReLU(0.1)",
                  "AdaptiveMaxPool1d(4)", "ConvTranspose1d(6, 2, 3, stride=2, output_padding=1)", "Tanh()",
                  "AvgPool1d(2)", "Flatten()", "Linear(10, 3)", "LogSoftmax(dim=1)"]),
    ((1, 3, 8, 8), ["ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)", "SiLU()",
                    "AdaptiveMaxPool2d(5)", "AdaptiveAvgPool2d(1)", "Flatten()", "Linear(2, 4)"]),
]  # fmt: skip


@pytest.mark.parametrize("shape, texts", CHAINS)
@pytest.mark.parametrize("ties", [False, True])
def test_chains_of_every_kind_equal_torch_stage_by_stage(engine, shape, texts, ties):
    rng = np.random.default_rng(11)
    data = rng.choice(np.float32([-1, -0.0, 0, 1, 2]), shape) if ties else rng.standard_normal(shape, np.float32)
    check_against_torch(texts, data, engine, seed=5, rtol=1e-5, atol=1e-5)


def test_given_weights_keep_later_default_weights_aligned_with_torch(engine):
    data = np.random.default_rng(5).standard_normal((1, 1, 6, 6)).astype(np.float32)
    texts = ["Conv2d(1, 1, 3, weight='gx')", "Conv2d(1, 2, 3)"]  # weight='gx': cnnops' named kernel, no draw
    result = run_pipeline(data, parse_stages(texts), seed=9, engine=engine)
    torch.manual_seed(9)
    first, second = torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 2, 3)
    np.testing.assert_array_equal(result.results[1].weight, second.weight.detach().numpy())
    np.testing.assert_array_equal(result.results[0].bias, first.bias.detach().numpy())


@pytest.mark.parametrize("seed", [0, 1, 1234])
def test_default_weights_are_exactly_pytorch_init_under_the_seed(engine, seed):
    texts = ["Conv2d(3, 4, 3)", "Flatten()", "Linear(36, 2)"]
    result = run_pipeline(np.zeros((1, 3, 5, 5), np.float32), parse_stages(texts), seed=seed, engine=engine)
    torch.manual_seed(seed)
    conv, lin = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(36, 2)
    np.testing.assert_array_equal(result.results[0].weight, conv.weight.detach().numpy())
    np.testing.assert_array_equal(result.results[0].bias, conv.bias.detach().numpy())
    np.testing.assert_array_equal(result.results[2].weight, lin.weight.detach().numpy())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_named_as_a_setting_not_a_flag():
    with pytest.raises(CnnopsError, match="PyTorch sees no cuda device") as caught:
        run_pipeline(np.zeros((1, 2), np.float32), parse_stages(["ReLU()"]), engine="torch", device="cuda")
    assert "device='cpu'" in str(caught.value) and "--" not in str(caught.value)


#: seeds across torch.manual_seed's whole range, -2**63 to 2**64 - 1 (a negative one counts as seed + 2**64)
WIDE_SEEDS = [0, 2**31, 2**32, 2**40 + 1, 2**63 - 1, 2**63, 2**64 - 1, -1, -5, -(2**32), -(2**63)]


@pytest.mark.parametrize("seed", WIDE_SEEDS)
def test_every_seed_torch_takes_gives_torchs_inputs_and_default_weights(engine, seed):
    from cnnops.io.read import read_input

    for text, make in (("randn:2x3x5", lambda: torch.randn(2, 3, 5)), ("rand:2x3x5", lambda: torch.rand(2, 3, 5)),
                       ("randint:-3:9:2x3x5", lambda: torch.randint(-3, 9, (2, 3, 5)).float())):  # fmt: skip
        torch.manual_seed(seed)
        np.testing.assert_array_equal(read_input(text, seed=seed).data, make().numpy())
    texts = ["Conv2d(3, 4, 3)", "Flatten()", "Linear(36, 2)"]
    result = run_pipeline(np.zeros((1, 3, 5, 5), np.float32), parse_stages(texts), seed=seed, engine=engine)
    torch.manual_seed(seed)
    conv, lin = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(36, 2)
    for mine, theirs in ((result.results[0].weight, conv.weight), (result.results[0].bias, conv.bias),
                         (result.results[2].weight, lin.weight), (result.results[2].bias, lin.bias)):  # fmt: skip
        np.testing.assert_array_equal(mine, theirs.detach().numpy())


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_a_seed_torch_refuses_is_refused_with_its_range(engine, seed):
    from cnnops.errors import SettingError

    with pytest.raises(ValueError):
        torch.manual_seed(seed)
    with pytest.raises(SettingError, match=r"outside torch.manual_seed's range, -2\*\*63 to 2\*\*64 - 1"):
        run_pipeline(np.zeros((1, 3, 5, 5), np.float32), parse_stages(["Conv2d(3, 4, 3)"]), seed=seed, engine=engine)


def _cli(*args):
    """cnnops on the command line, in this process (torch is imported here already)."""
    from typer.testing import CliRunner

    from cnnops.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def test_seed_option_takes_torch_manual_seeds_whole_range_and_says_so():
    import json

    for seed in (2**40 + 1, 2**64 - 1, -1, -(2**63)):
        result = _cli("run", "randn:1x1x2x3", "--seed", seed, "--json")
        assert result.exit_code == 0, result.output
        torch.manual_seed(seed)
        got = np.array(json.loads(result.stdout)["output"]["data"], np.float32)
        np.testing.assert_array_equal(got, torch.randn(1, 1, 2, 3).numpy())
        assert json.loads(result.stdout)["seed"] == seed
    assert "-9223372036854775808<=x<=18446744073709551615" in _cli("run", "--help").stdout
    for seed in (2**64, -(2**63) - 1):
        refused = _cli("run", "randn:1x1x2x3", "--seed", seed)
        assert refused.exit_code == 2
        assert "is not in the range -9223372036854775808<=x<=18446744073709551615" in refused.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_once_before_any_input_is_read(tmp_path):
    (tmp_path / "a.json").write_text("[[1, 2], [3, 4]]")
    inputs = [tmp_path / "a.json", tmp_path / "missing.json"]  # a missing file: no input is read
    for named in (inputs[:1], inputs):
        result = _cli("relu", *named, "--device", "cuda", "-q")
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == ["Error: PyTorch sees no cuda device on this machine — use --device cpu"]
