"""The NumPy engine's functions compute what ``torch.nn.functional`` computes (property-based, both called directly).

Identical to the bit (NaN payloads aside) where PyTorch's CPU kernel is a plain loop: ReLU and the
other piecewise-linear activations, max pooling (values and indices, ties, NaN), average pooling,
adaptive pooling, unpooling, batch norm, and the default initialisation stream. Within rtol 1e-5
(plus an atol scaled to the terms summed) where BLAS or transcendental functions round differently:
convolutions, linear layers, the smooth activations and the 1×1 adaptive mean.
"""

import math
import os
import platform
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as hs

from cnnops.engines import ENGINES, load_engine
from cnnops.engines import numpy_engine as ne
from cnnops.engines.numpy_engine.elementwise import SMOOTH_BLOCK, _erfc_nonneg
from cnnops.errors import SettingError

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIES = np.array([-1.0, -0.0, 0.0, 1.0, 2.0], dtype=np.float32)
SPECIAL = np.array([-1.0, -0.0, 0.0, 1.0, 2.0, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-40, -7.5], dtype=np.float32)
# for sums: where an intermediate product overflows depends on the order and on fused multiply-adds
NONFINITE = np.array([-1.0, -0.0, 0.0, 1.0, 2.0, np.nan, np.inf, -np.inf, 1e-40, -7.5], dtype=np.float32)


def values(shape, kind, seed):
    """Test data: 'normal' (distinct values), 'ties' (few values: ties, zeros, −0), 'special' (also
    NaN, ±inf, near-overflow and subnormal values), 'nonfinite' (the same without near-overflow) or
    'large' (magnitudes up to 1e6)."""
    rng = np.random.default_rng(seed)
    if kind in ("ties", "special", "nonfinite"):
        return rng.choice({"ties": TIES, "special": SPECIAL, "nonfinite": NONFINITE}[kind], size=shape)
    scale = 10.0 ** rng.integers(-3, 7, size=shape) if kind == "large" else 1.0
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@hs.composite
def tensors(draw, nd, kinds=("normal", "ties", "special"), min_side=1, max_side=8, channels=None):
    """(N, C, *spatial) or unbatched (C, *spatial) float32 data."""
    batched = draw(hs.booleans())
    c = channels if channels is not None else draw(hs.integers(1, 3))
    spatial = tuple(draw(hs.integers(min_side, max_side)) for _ in range(nd))
    shape = ((draw(hs.integers(1, 2)), c) if batched else (c,)) + spatial
    return values(shape, draw(hs.sampled_from(kinds)), draw(hs.integers(0, 2**16)))


def identical(a, b):
    """Same shape, dtype and values, including the sign of zeros and the place of NaNs."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(a) & ~np.isnan(a), np.signbit(b) & ~np.isnan(b))


def close(a, b, scale=1.0, rtol=1e-5):
    """rtol 1e-5, and an atol of 1e-6 of the largest term that went into a sum (``scale``)."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6 * max(scale, 1.0), equal_nan=True)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_says(op, *args, **kwargs):
    """``op`` (from torch) on tensors, as NumPy arrays; a configuration torch rejects is not a test case."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = op(*args, **kwargs)
    except (RuntimeError, ValueError, IndexError):
        assume(False)
    return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()


def torch_uniform(generator, shape, bound):
    """What a layer's default initialisation draws: ``uniform_(-bound, bound)`` on CPU float32."""
    return torch.empty(shape).uniform_(-bound, bound, generator=generator).numpy()


def term_scale(x, w):
    finite = np.abs(x[np.isfinite(x)])
    return (finite.max() if finite.size else 1.0) * float(np.abs(w).max(initial=0)) * w[0].size


def tuples(nd, lo, hi):
    return hs.tuples(*[hs.integers(lo, hi)] * nd)


# ---------------------------------------------------------------- default initialisation


@pytest.mark.slow
@SETTINGS
@given(hs.integers(-(2**63), 2**64 - 1),
       hs.lists(hs.tuples(hs.integers(1, 1000), hs.sampled_from([1.0, 1 / 3, 0.0, 2.5, 1e-3, 1 / np.sqrt(27)])),
                min_size=1, max_size=4))  # fmt: skip
def test_random_is_pytorch_uniform_stream_number_for_number(seed, draws):
    mine, generator = ne.Random(seed), torch.Generator().manual_seed(seed)
    for count, bound in draws:  # successive draws continue the same stream
        identical(mine.uniform((count,), bound), torch_uniform(generator, (count,), bound))


def test_random_matches_on_a_multi_million_element_weight_and_keeps_shapes():
    for seed, shape, bound in ((7, (2048, 1024), 0.01), (3, (4, 1, 3, 3), 1 / 3)):
        expected = torch_uniform(torch.Generator().manual_seed(seed), shape, bound)
        identical(ne.Random(seed).uniform(shape, bound), expected)
    assert ne.Random(3).uniform((0, 5), 1.0).shape == (0, 5)
    # small, big (the stream moves to numpy.random at its first block), small again: one stream throughout
    mine, generator = ne.Random(11), torch.Generator().manual_seed(11)
    for count in (5000, 600_001, 7):
        identical(mine.uniform((count,), 0.5), torch_uniform(generator, (count,), 0.5))


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 kernel dispatch")
def test_random_under_baseline_kernels_matches_torch_there_too():
    """Without AVX2 PyTorch multiplies and adds separately (no fused multiply-add): both follow."""
    code = textwrap.dedent("""
        import numpy as np
        import torch
        from cnnops.engines import numpy_engine as ne
        assert not ne.Random.fused
        for seed in range(20):
            a, g = ne.Random(seed), torch.Generator().manual_seed(seed)
            for n, bound in ((9, 1 / 3), (500, 0.7), (64, 0.05)):
                expected = torch.empty(n).uniform_(-bound, bound, generator=g).numpy()
                assert np.array_equal(a.uniform((n,), bound), expected)
    """)
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ---------------------------------------------------------------- convolution


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.integers(1, 2), hs.integers(1, 2), hs.integers(1, 3),
       hs.sampled_from(["zeros", "reflect", "replicate", "circular"]), hs.booleans())  # fmt: skip
def test_conv_matches_torch(data, nd, groups, in_per_group, out_per_group, mode, bias):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "large", "nonfinite"), channels=groups * in_per_group))
    kernel = data.draw(tuples(nd, 1, 3))
    stride, dilation = data.draw(tuples(nd, 1, 2)), data.draw(tuples(nd, 1, 2))
    pads = tuple((data.draw(hs.integers(0, 2)), data.draw(hs.integers(0, 2))) for _ in range(nd))
    w = values((groups * out_per_group, in_per_group, *kernel), "normal", data.draw(hs.integers(0, 99)))
    b = values((groups * out_per_group,), "normal", 1) if bias else None
    flat = [amount for pair in reversed(pads) for amount in pair]  # F.pad lists the last dim first
    padded = torch_says(F.pad, t(x), flat, mode="constant" if mode == "zeros" else mode)
    expected = torch_says(F.conv1d if nd == 1 else F.conv2d, t(padded), t(w), b if b is None else t(b), stride, 0,
                          dilation, groups)  # fmt: skip
    mine = ne.conv(x, w, b, nd=nd, stride=stride, pads=pads, dilation=dilation, groups=groups, padding_mode=mode)
    close(mine, expected, term_scale(x, w))


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.integers(1, 2), hs.integers(1, 2), hs.integers(1, 2), hs.booleans())
def test_conv_transpose_matches_torch(data, nd, groups, in_per_group, out_per_group, bias):
    x = data.draw(
        tensors(nd, kinds=("normal", "ties", "large", "nonfinite"), channels=groups * in_per_group, max_side=6)
    )
    kernel, stride, dilation = data.draw(tuples(nd, 1, 3)), data.draw(tuples(nd, 1, 3)), data.draw(tuples(nd, 1, 2))
    padding = data.draw(tuples(nd, 0, 2))
    output_padding = tuple(data.draw(hs.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    w = values((groups * in_per_group, out_per_group, *kernel), "normal", data.draw(hs.integers(0, 99)))
    b = values((groups * out_per_group,), "normal", 2) if bias else None
    op = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    expected = torch_says(op, t(x), t(w), b if b is None else t(b), stride, padding, output_padding, groups, dilation)
    mine = ne.conv_transpose(x, w, b, nd=nd, stride=stride, padding=padding, output_padding=output_padding,
                             groups=groups, dilation=dilation)  # fmt: skip
    close(mine, expected, term_scale(x, w))


def test_conv_is_cross_correlation_like_torch():
    x = np.zeros((1, 5, 5), np.float32)
    x[:, :, 2] = 1
    gx = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], np.float32)
    y = ne.conv(x, gx, None, nd=2, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                padding_mode="zeros")  # fmt: skip
    assert y[0, 0].tolist() == [-4.0, 0.0, 4.0]


# ---------------------------------------------------------------- pooling


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.booleans())
def test_max_pool_values_and_indices_are_identical(data, nd, ceil_mode):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "special"), max_side=9))
    kernel = data.draw(tuples(nd, 1, 4))
    padding = tuple(data.draw(hs.integers(0, k // 2)) for k in kernel)
    stride, dilation = data.draw(tuples(nd, 1, 3)), data.draw(tuples(nd, 1, 3))
    ty, tidx = torch_says(F.max_pool1d if nd == 1 else F.max_pool2d, t(x), kernel, stride, padding, dilation,
                          ceil_mode=ceil_mode, return_indices=True)  # fmt: skip
    y, idx = ne.max_pool(x, nd=nd, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                         ceil_mode=ceil_mode)  # fmt: skip
    identical(y, ty)
    identical(idx, tidx)


def _pool1(x, **kw):
    args = dict(nd=1, kernel_size=(3,), stride=(1,), padding=(0,), dilation=(1,), ceil_mode=False) | kw
    x = np.array([x], np.float32)
    mine = ne.max_pool(x, **args)
    expected = F.max_pool1d(t(x), args["kernel_size"], args["stride"], args["padding"], args["dilation"],
                            ceil_mode=args["ceil_mode"], return_indices=True)  # fmt: skip
    expected = [e.numpy() for e in expected]
    identical(mine[0], expected[0])
    identical(mine[1], expected[1])
    return mine[0][0].tolist(), mine[1][0].tolist()


def test_max_pool_first_maximum_in_the_window_wins_a_tie():
    assert _pool1([2.0, 5.0, 5.0, 1.0]) == ([5.0, 5.0], [1, 1])


def test_max_pool_nan_propagates_and_the_last_nan_wins():
    values_, index = _pool1([np.nan, 1.0, np.nan, 0.0])
    assert np.isnan(values_).all() and index == [2, 2]


def test_max_pool_window_of_minus_inf_gives_its_first_in_bounds_cell_never_padding():
    assert _pool1([-np.inf, -np.inf], kernel_size=(3,), padding=(1,)) == ([-np.inf, -np.inf], [0, 0])
    # dilation 3 from the left padding: the window has no cell inside the input at all
    assert _pool1([-np.inf, 4.0], kernel_size=(2,), dilation=(3,), padding=(1,)) == ([-np.inf], [2])


def test_max_pool_negative_zero_keeps_its_sign_and_loses_a_tie_to_the_earlier_zero():
    assert _pool1([-0.0, 0.0, -0.0, -1.0], kernel_size=(2,)) == ([-0.0, 0.0, -0.0], [0, 1, 2])


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.booleans(), hs.booleans(), hs.sampled_from([None, 3, -2, 1]))
def test_avg_pool_is_identical_including_divisor_rules(data, nd, ceil_mode, count_include_pad, divisor_override):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "large", "special"), max_side=9))
    kernel = data.draw(tuples(nd, 1, 4))
    padding = tuple(data.draw(hs.integers(0, k // 2)) for k in kernel)
    stride = data.draw(tuples(nd, 1, 3))
    if nd == 1:  # AvgPool1d has no divisor_override in PyTorch
        divisor_override = None
        expected = torch_says(F.avg_pool1d, t(x), kernel, stride, padding, ceil_mode, count_include_pad)
    else:
        expected = torch_says(F.avg_pool2d, t(x), kernel, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)  # fmt: skip
    mine = ne.avg_pool(x, nd=nd, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                       count_include_pad=count_include_pad, divisor_override=divisor_override)  # fmt: skip
    identical(mine, expected)


def test_avg_pool_divisor_counts_padding_but_not_the_ceil_overhang():
    x = np.arange(1, 7, dtype=np.float32)[None]
    args = dict(nd=1, kernel_size=(3,), stride=(2,), padding=(1,), ceil_mode=True, divisor_override=None)
    assert ne.avg_pool(x, count_include_pad=True, **args).tolist() == [[1.0, 3.0, 5.0, 3.0]]
    assert ne.avg_pool(x, count_include_pad=False, **args).tolist() == [[1.5, 3.0, 5.0, 6.0]]


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]))
def test_adaptive_avg_pool_matches_torch(data, nd):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "large", "special"), max_side=12))
    size = data.draw(tuples(nd, 0, 14))
    expected = torch_says(F.adaptive_avg_pool1d if nd == 1 else F.adaptive_avg_pool2d, t(x), size)
    mine = ne.adaptive_avg_pool(x, nd=nd, output_size=size)
    if all(o == 1 for o in size):  # PyTorch's mean (vectorised sum) there
        close(mine, expected, float(np.abs(x[np.isfinite(x)]).max(initial=1)))
    else:
        identical(mine, expected)


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]))
def test_adaptive_max_pool_values_and_indices_are_identical(data, nd):
    x = data.draw(tensors(nd, max_side=12))
    size = data.draw(tuples(nd, 0, 14))
    ty, tidx = torch_says(F.adaptive_max_pool1d if nd == 1 else F.adaptive_max_pool2d, t(x), size, return_indices=True)
    y, idx = ne.adaptive_max_pool(x, nd=nd, output_size=size)
    identical(y, ty)
    identical(idx, tidx)


def test_adaptive_bins_repeat_when_the_output_is_larger():
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    assert ne.adaptive_avg_pool(x, nd=1, output_size=(8,)).tolist() == [[1, 1, 1.5, 2, 2, 2.5, 3, 3]]
    assert ne.adaptive_max_pool(x, nd=1, output_size=(10,))[0].tolist() == [[1, 1, 1, 2, 2, 2, 3, 3, 3, 3]]


def test_adaptive_avg_pool_to_one_takes_any_rank():
    x = values((2, 1, 3, 4, 5), "normal", 0)
    close(ne.adaptive_avg_pool(x, nd=2, output_size=(1, 1)), F.adaptive_avg_pool2d(t(x), (1, 1)).numpy())


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]))
def test_unpool_of_a_max_pool_is_identical(data, nd):
    x = data.draw(tensors(nd, min_side=2, max_side=9))
    kernel, stride = data.draw(tuples(nd, 1, 3)), data.draw(tuples(nd, 1, 3))
    zero = (0,) * nd
    y, idx = torch_says(F.max_pool1d if nd == 1 else F.max_pool2d, t(x), kernel, stride, return_indices=True)
    size = x.shape[-nd:]
    expected = torch_says(F.max_unpool1d if nd == 1 else F.max_unpool2d, t(y), t(idx), kernel, stride, zero, size)
    mine = ne.max_unpool(y, idx, nd=nd, kernel_size=kernel, stride=stride, padding=zero, output_size=size)
    identical(mine, expected)


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]))
def test_unpool_with_repeated_indices_keeps_the_last_write_like_serial_torch(data, nd):
    """Different values sent to one position: ATen's serial loop keeps the last. (ATen splits the
    loop across threads, so with several threads torch's own answer is a race.)"""
    x = data.draw(tensors(nd, max_side=5))
    size = tuple(data.draw(hs.integers(1, 4)) for _ in range(nd))
    idx = np.random.default_rng(data.draw(hs.integers(0, 99))).integers(0, np.prod(size), x.shape)
    kernel = tuple(max(1, o // i) for o, i in zip(size, x.shape[-nd:]))  # torch checks output_size against it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = torch_says(F.max_unpool1d if nd == 1 else F.max_unpool2d, t(x), t(idx), kernel, kernel,
                              (0,) * nd, size)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    mine = ne.max_unpool(x, idx, nd=nd, kernel_size=kernel, stride=kernel, padding=(0,) * nd, output_size=size)
    identical(mine, expected)


def test_both_engines_keep_the_last_of_repeated_unpool_indices_however_many_threads():
    """Large enough for ATen to split the loop across threads (where its answer was a race: 100000 or
    200000 from run to run), the torch engine unpools on one thread and keeps the last value, as the
    NumPy engine does."""
    x = np.arange(1, 200_001, dtype=np.float32).reshape(1, 1, -1)
    idx = np.full(x.shape, 3, dtype=np.int64)
    torch_engine = load_engine("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the module's tests run on one thread (conftest)
    try:
        for _ in range(20):
            got = torch_engine.max_unpool(x, idx, nd=1, kernel_size=(2,), stride=(2,), padding=(0,), output_size=(400_000,))
            assert got[0, 0, 3] == 200_000 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    mine = ne.max_unpool(x, idx, nd=1, kernel_size=(2,), stride=(2,), padding=(0,), output_size=(400_000,))
    assert mine[0, 0, 3] == 200_000


# ---------------------------------------------------------------- linear, batch norm, activations


@pytest.mark.slow
@SETTINGS
@given(hs.integers(1, 3), hs.integers(1, 40), hs.integers(1, 6), hs.booleans(), hs.sampled_from(["normal", "large", "nonfinite"]),
       hs.integers(0, 999))  # fmt: skip
def test_linear_matches_torch(rank, in_features, out_features, bias, kind, seed):
    shape = (2, 3, in_features)[-rank:]
    x = values(shape, kind, seed)
    w = values((out_features, in_features), "normal", seed + 1)
    b = values((out_features,), "normal", seed + 2) if bias else None
    close(ne.linear(x, w, b), torch_says(F.linear, t(x), t(w), b if b is None else t(b)), term_scale(x, w))


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from([1e-5, 1e-3, 0.1]))
def test_batch_norm_with_fresh_running_statistics_is_identical(data, nd, eps):
    x = data.draw(tensors(nd))
    x = x if x.ndim == nd + 2 else x[None]
    layer = (torch.nn.BatchNorm1d if nd == 1 else torch.nn.BatchNorm2d)(x.shape[1], eps=eps)
    identical(ne.batch_norm(x, eps=eps), torch_says(layer.eval(), t(x)))


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from([1e-5, 1e-3, 0.1]))
def test_batch_norm_without_running_statistics_normalises_with_the_batch_like_torch(data, nd, eps):
    # squares that stay finite in float32: near FLT_MAX the two differ (the xfail below)
    x = data.draw(tensors(nd, kinds=("normal", "ties", "nonfinite", "large")))
    x = x if x.ndim == nd + 2 else x[None]
    layer = (torch.nn.BatchNorm1d if nd == 1 else torch.nn.BatchNorm2d)(x.shape[1], eps=eps, track_running_stats=False)
    expected = torch_says(layer.eval(), t(x))
    close(ne.batch_norm(x, eps=eps, batch_stats=True), expected)


@pytest.mark.xfail(strict=True, reason="known difference: torch's float32 batch variance overflows to inf near FLT_MAX "
                   "and the output is 0; the NumPy engine's float64 statistics give ±1")  # fmt: skip
def test_batch_norm_with_batch_statistics_near_float32_overflow_matches_torch():
    x = np.array([[[-3e38, -0.0]]], np.float32)
    with torch.no_grad():
        expected = torch.nn.BatchNorm1d(1, track_running_stats=False).eval()(t(x)).numpy()
    identical(ne.batch_norm(x, eps=1e-5, batch_stats=True), expected)


PIECEWISE = [("ReLU", {}), ("ReLU6", {}), ("LeakyReLU", {"negative_slope": 0.01}), ("LeakyReLU", {"negative_slope": 0.2}),
             ("Hardswish", {})]  # fmt: skip
SMOOTH = [("ELU", {"alpha": 1.0}), ("ELU", {"alpha": 0.5}), ("GELU", {"approximate": "none"}),
          ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("Mish", {}), ("Sigmoid", {}), ("Tanh", {}),
          ("Softplus", {"beta": 1.0, "threshold": 20.0}), ("Softplus", {"beta": 2.0, "threshold": 5.0})]  # fmt: skip


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from(PIECEWISE))
def test_piecewise_linear_activations_are_identical(data, nd, activation):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "special", "large")))
    name, options = activation
    identical(ne.activation(name, x, options), torch_says(getattr(torch.nn, name)(**options), t(x)))


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from(SMOOTH))
def test_smooth_activations_match_torch(data, nd, activation):
    x = data.draw(tensors(nd, kinds=("normal", "ties", "special", "large")))
    name, options = activation
    close(ne.activation(name, x, options), torch_says(getattr(torch.nn, name)(**options), t(x)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hs.data(), hs.sampled_from(["ELU", "CELU"]), hs.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]))
def test_elu_and_celu_keep_the_sign_of_zeros_for_any_alpha(data, name, alpha):
    """ATen takes ±0 down the positive branch: ELU(alpha=−1) of ±0 is ±0, not expm1(±0)·(−1) = ∓0."""
    x = data.draw(tensors(1, kinds=("ties", "special")))
    if name == "CELU" and alpha == 0.0:
        return  # torch refuses CELU(alpha=0)
    options = {"alpha": alpha}
    got, expected = ne.activation(name, x, options), torch_says(getattr(torch.nn, name)(**options), t(x))
    close(got, expected)
    zeros = expected == 0
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(expected[zeros]))


@pytest.mark.slow
@SETTINGS
@given(hs.data(), hs.integers(1, 4), hs.sampled_from(["Softmax", "LogSoftmax"]))
def test_softmax_matches_torch_including_the_implicit_dim(data, rank, name):
    shape = tuple(data.draw(hs.integers(1, 4)) for _ in range(rank))
    x = values(shape, data.draw(hs.sampled_from(["normal", "ties", "special", "large"])), data.draw(hs.integers(0, 99)))
    dim = data.draw(hs.sampled_from([None, *range(-rank, rank)]))
    close(ne.activation(name, x, {"dim": dim}), torch_says(getattr(torch.nn, name)(dim=dim), t(x)))


@SETTINGS
@given(hs.integers(1, 16), hs.integers(1, 3), hs.integers(0, 2), hs.floats(-1e4, 1e4, width=32), hs.integers(0, 99))
def test_log_softmax_is_exact_where_the_other_terms_vanish(length, rows, axis, top, seed):
    """Every entry but one at least 20 below it: each exp is under 2⁻²⁸, so PyTorch's float32 sum is exactly 1
    and the log-probabilities are exactly x − max (the largest exactly 0) — in float64 they were off by ~1e-9."""
    rng = np.random.default_rng(seed)
    x = np.float32(top) - rng.uniform(20, 200, (rows, length, 3)).astype(np.float32)
    x[:, rng.integers(0, length), :] = np.float32(top)
    x = np.moveaxis(x, 1, axis)  # along the last dim (ATen's last-dim kernel) and along another one
    identical(ne.activation("LogSoftmax", np.ascontiguousarray(x), {"dim": axis}),
              F.log_softmax(t(np.ascontiguousarray(x)), dim=axis).numpy())  # fmt: skip


def test_erfc_behind_gelu_has_float32_accuracy_in_both_tails():
    z = np.linspace(0, 26, 20001)
    reference = np.array([math.erfc(v) for v in z])
    assert np.max(np.abs(_erfc_nonneg(z) - reference) / reference) < 1.2e-7


def test_relu_keeps_negative_zero_and_nan_like_torch():
    x = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -2.0, 3.0], np.float32)
    identical(ne.activation("ReLU", x, {}), F.relu(t(x)).numpy())
    x = np.repeat(x[None], 600, axis=0)  # the vectorised path too
    identical(ne.activation("ReLU", x, {}), F.relu(t(x)).numpy())


def test_relu_puts_back_every_negative_zero_in_place_and_not():
    rng = np.random.default_rng(5)
    x = rng.choice(np.float32([-0.0, 0.0, -1.5, 2.0, np.nan]), size=(3, 70_001))  # several blocks of zeros
    expected = F.relu(t(x.copy())).numpy()
    identical(ne.activation("ReLU", x.copy(), {}), expected)
    inplace = x.copy()
    result = ne.activation("ReLU", inplace, {}, inplace=True)
    identical(result, expected)
    assert result is inplace


@pytest.mark.parametrize(("name", "options"), SMOOTH + [("SELU", {}), ("CELU", {"alpha": 0.7})])
def test_smooth_activations_over_several_blocks_match_torch(name, options):
    # blocks of SMOOTH_BLOCK elements and a shorter last one, each computed on its own
    x = np.random.default_rng(6).standard_normal((2, 2 * SMOOTH_BLOCK + 77), dtype=np.float32) * 4
    x.reshape(-1)[:: SMOOTH_BLOCK // 2] = np.float32([np.nan, np.inf, -np.inf, -0.0, 30.0, -30.0] * 3)[: x.size // (SMOOTH_BLOCK // 2) + 1]
    close(ne.activation(name, x, options), torch_says(getattr(torch.nn, name)(**options), t(x)))


#: a dense grid through both tails, where ATen's float32 steps overflow (exp(−x) past x ≈ −88.7) or cancel
#: (1 + tanh(…) in GELU's negative tail), and the values that are no number or beyond float32's range
TAILS = np.concatenate([np.linspace(-120, 40, 160_001, dtype=np.float32),
                        np.float32([-0.0, 0.0, np.inf, -np.inf, np.nan, 3e38, -3e38, 1e-45, -1e-45])])  # fmt: skip


@pytest.mark.parametrize("text", ["Sigmoid()", "SiLU()", "Mish()", "Softplus()", "Softplus(beta=2, threshold=5)",
                                  "GELU(approximate='tanh')"])  # fmt: skip
def test_smooth_activations_give_torch_s_zeros_in_the_tails(text):
    """ATen computes these in float32 steps: where they overflow or cancel, torch's result is 0 (a sigmoid
    of −100, a tanh GELU of −6), not the subnormal or tiny number of an exact formula. The NumPy engine
    follows the steps: the same zeros, and the rest within float32 rounding (the tanh GELU, whose 1 + tanh
    cancels, within 1e-7 where Sleef's tanh and the exact one differ by an ulp). Among subnormal numbers
    (below 1.2e-38, where Sleef's log1p of Mish and Softplus is not exact: 0 for 1e-45) a 0 may stand
    for a subnormal."""
    import cnnops

    expected = eval(f"torch.nn.{text}")(t(TAILS)).numpy()  # plain torch.nn from the stage's text
    got = cnnops.run_stages(TAILS, [text], engine="numpy").output
    normal = np.finfo(np.float32).tiny
    assert not np.any((got == 0) & (np.abs(expected) >= normal)) and not np.any((expected == 0) & (np.abs(got) >= normal))
    if text.startswith(("Sigmoid", "SiLU", "GELU")):  # no log1p: the very same zeros
        assert np.array_equal(got == 0, expected == 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7 if "tanh" in text else 1e-37, equal_nan=True)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_glu_over_several_blocks_matches_torch(dim):
    x = np.random.default_rng(7).standard_normal((4, 2 * SMOOTH_BLOCK + 6, 6), dtype=np.float32) * 5
    x[0, :3, 0] = np.float32([np.nan, np.inf, -np.inf])
    close(ne.glu(x, dim), F.glu(t(x), dim).numpy())


@SETTINGS
@given(hs.data())
def test_glu_gates_to_zero_where_torch_s_float32_exp_overflows(data):
    """ATen's ``a · (1/(1 + e^−b))`` in float32: e^−b is inf past −b ≈ 88.72, the gate 0 and the result 0
    even for a near FLT_MAX (a float64 sigmoid would give a · 2e−39 ≈ 0.7)."""
    n = data.draw(hs.integers(1, 40))
    seed = data.draw(hs.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    a = rng.choice(np.float32([3e38, -3e38, 1e30, 1.0, -0.0, np.inf, np.nan]), size=n)
    b = rng.uniform(-110, 80, size=n).astype(np.float32)
    b[rng.random(n) < 0.3] = rng.choice(np.float32([-88.72, -88.73, -89.0, -95.0, -np.inf, np.inf, np.nan]))
    x = np.stack([a, b], axis=data.draw(hs.sampled_from([0, 1])))
    dim = 0 if x.shape[0] == 2 else 1
    expected = F.glu(t(x), dim).numpy()
    mine = ne.glu(x, dim)
    # a gate below FLT_MIN is a subnormal, rounded to fewer bits in either engine: compare those loosely
    np.testing.assert_allclose(mine, expected, rtol=1e-5 if np.all(np.abs(b) < 87) else 1e-4, atol=1e-6, equal_nan=True)


# ---------------------------------------------------------------- the engine as the pipeline loads it


def test_numpy_engine_is_registered():
    assert "numpy" in ENGINES and load_engine("numpy") is ne


def test_an_unknown_engine_is_a_setting_error_in_library_words():
    with pytest.raises(SettingError, match="unknown engine 'jax' — choose one of: numpy, torch") as caught:
        load_engine("jax")
    assert "--" not in str(caught.value)


def test_auto_picks_numpy_for_a_small_input_when_torch_is_not_imported():
    """The default users get. (In this test process torch is imported, so ``auto`` would pick torch.)"""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from cnnops.run.pipeline import run_pipeline
        from cnnops.spec import parse_stages
        x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
        result = run_pipeline(x, parse_stages(["Conv2d(2, 3, 3)", "ReLU()", "AdaptiveAvgPool2d(1)"]), engine="auto")
        print(result.engine, "torch" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True)
    assert run.stdout.split() == ["numpy", "False"]


def test_numpy_engine_computes_nan_and_inf_without_warnings():
    x = values((2, 3, 6, 6), "special", 0)
    w = values((2, 3, 3, 3), "normal", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ne.conv(x, w, None, nd=2, stride=(1, 1), pads=((1, 1), (1, 1)), dilation=(1, 1), groups=1,
                padding_mode="zeros")  # fmt: skip
        ne.avg_pool(x, nd=2, kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True,
                    count_include_pad=False, divisor_override=None)  # fmt: skip
        ne.adaptive_avg_pool(x, nd=2, output_size=(1, 1))
        ne.linear(x, w.reshape(-1, 6), None)
        for name, options in SMOOTH + PIECEWISE + [("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": -1})]:
            ne.activation(name, x, options)


def test_numpy_engine_never_imports_torch():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import cnnops.engines.numpy_engine as e
        from cnnops.run.pipeline import run_pipeline
        from cnnops.spec import parse_stages
        x = np.arange(50, dtype=np.float32).reshape(2, 5, 5)
        e.max_pool(x, nd=2, kernel_size=(2, 2), stride=(1, 1), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
        e.activation("GELU", x, {})
        e.Random(0).uniform((3, 3), 1.0)
        run_pipeline(x, parse_stages(["Conv2d(2, 3, 3)", "ReLU", "MaxPool2d(2)", "MaxUnpool2d(2)", "Flatten",
                                      "Linear(9, 2)"]), engine="numpy")
        assert "torch" not in sys.modules, "torch was imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_engine_function_is_a_function_whichever_submodule_is_imported_first():
    """The engine package imports its submodules on demand; a submodule whose name is also a function's
    (``conv``) must not take the function's place on the package when another module imports it."""
    import importlib
    import pkgutil
    import types

    from cnnops.engines import numpy_engine

    for info in pkgutil.iter_modules(numpy_engine.__path__):
        importlib.import_module(f"{numpy_engine.__name__}.{info.name}")
    for name in numpy_engine.__all__:
        assert not isinstance(getattr(numpy_engine, name), types.ModuleType), name
