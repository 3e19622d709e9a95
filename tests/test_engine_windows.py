"""Sliding-window work without Python loops over kernel positions: pooling and (transposed) convolution
against plain torch, on both engines, for every strategy the NumPy engine picks (tap folds, one read of
each window, doubling; bands of rows; col2im by tap or by input position) and with values only.

Bands are made tiny here (``BAND_ELEMENTS``) so that small inputs cross many band boundaries.
"""

from contextlib import ExitStack
from importlib import import_module
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as hs

from cnnops.engines import load_engine
from cnnops.engines.numpy_engine.arrays import has_negative_zero, maximum_zero

# the modules (the package's ``conv`` is the function of that name)
conv_module = import_module("cnnops.engines.numpy_engine.conv")
pool_module = import_module("cnnops.engines.numpy_engine.pool")

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPECIAL = np.array([-1.0, -0.0, 0.0, 1.0, 2.0, np.nan, np.inf, -np.inf, -7.5], dtype=np.float32)


def data_of(shape, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "special":
        return rng.choice(SPECIAL, size=shape)
    if kind == "zeros":  # ±0 ties everywhere: the values-only path must keep the first zero's sign
        return rng.choice(np.array([-0.0, 0.0, -1.0], np.float32), size=shape)
    return rng.standard_normal(shape).astype(np.float32)


def identical(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(a) & ~np.isnan(a), np.signbit(b) & ~np.isnan(b))


def torch_says(op, *args, **kwargs):
    try:
        with torch.no_grad():
            out = op(*args, **kwargs)
    except (RuntimeError, ValueError, IndexError):
        assume(False)
    return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()


def tiny_bands(band: int):
    """Bands of ``band`` elements (and small conv bands), so a test input crosses many of them."""
    stack = ExitStack()
    stack.enter_context(mock.patch.object(pool_module, "BAND_ELEMENTS", band))
    stack.enter_context(mock.patch.object(conv_module, "_IM2COL_BUDGET", band))
    stack.enter_context(mock.patch.object(conv_module, "_SMALL_BAND_COLUMNS", max(1, band // 8)))
    stack.enter_context(mock.patch.object(conv_module, "_COL2IM_BUDGET", band))
    return stack


@hs.composite
def pooling(draw, nd, max_kernel=20):
    """A pooling configuration torch accepts (padding ≤ k/2), kernels long enough for every strategy."""
    # up to FOLD_TAPS taps fold; long windows that hardly overlap are read once; long overlapping ones double
    kernel = tuple(draw(hs.integers(1, max_kernel) | hs.integers(24, 2 * max_kernel)) for _ in range(nd))
    stride = tuple(draw(hs.sampled_from([1, 1, 2, 3, k, k + 1])) for k in kernel)
    padding = tuple(draw(hs.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(hs.integers(1, 3)) for _ in range(nd))
    lengths = tuple(draw(hs.integers(max(1, (k - 1) * d + 1 - 2 * p), (k - 1) * d + 1 + draw(hs.sampled_from([12, 4 * k]))))
                    for k, p, d in zip(kernel, padding, dilation))  # fmt: skip
    lead = draw(hs.sampled_from([(1,), (2,), (2, 3), (1, 1)]))
    return lead + lengths, kernel, stride, padding, dilation, draw(hs.booleans())


@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from(["normal", "special", "zeros"]), hs.booleans(),
       hs.sampled_from([7, 64, 1 << 20]))  # fmt: skip
def test_max_pool_matches_torch_for_any_window_on_both_engines(engine, data, nd, kind, indices, band):
    shape, kernel, stride, padding, dilation, ceil_mode = data.draw(pooling(nd))
    x = data_of(shape, kind, data.draw(hs.integers(0, 2**16)))
    op = F.max_pool1d if nd == 1 else F.max_pool2d
    ty, tidx = torch_says(op, torch.from_numpy(x), kernel, stride, padding, dilation, ceil_mode=ceil_mode,
                          return_indices=True)  # fmt: skip
    with tiny_bands(band):
        y, idx = load_engine(engine).max_pool(x, nd=nd, kernel_size=kernel, stride=stride, padding=padding,
                                              dilation=dilation, ceil_mode=ceil_mode, return_indices=indices)  # fmt: skip
    identical(y, ty)
    if indices:
        identical(idx, tidx)
    else:
        assert idx is None


@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from(["normal", "special", "zeros"]), hs.booleans(),
       hs.booleans(), hs.sampled_from([7, 64, 1 << 20]))  # fmt: skip
def test_avg_pool_matches_torch_to_the_bit_for_any_window(engine, data, nd, kind, ceil_mode, include_pad, band):
    shape, kernel, stride, padding, _, _ = data.draw(pooling(nd, max_kernel=12))
    x = data_of(shape, kind, data.draw(hs.integers(0, 2**16)))
    if nd == 1:
        expected = torch_says(F.avg_pool1d, torch.from_numpy(x), kernel, stride, padding, ceil_mode, include_pad)
    else:
        expected = torch_says(F.avg_pool2d, torch.from_numpy(x), kernel, stride, padding, ceil_mode, include_pad)
    with tiny_bands(band):
        mine = load_engine(engine).avg_pool(x, nd=nd, kernel_size=kernel, stride=stride, padding=padding,
                                            ceil_mode=ceil_mode, count_include_pad=include_pad,
                                            divisor_override=None)  # fmt: skip
    identical(mine, expected)


def test_a_window_as_large_as_the_plane_picks_torch_s_cell():
    """One window over the whole plane (the `pool -k 2000` case, smaller): first maximum, last NaN."""
    rng = np.random.default_rng(5)
    x = rng.choice(np.array([1.0, 3.0, 3.0, -np.inf], np.float32), size=(2, 300, 300))
    x[1, 17, 3] = x[1, 200, 7] = np.nan
    ty, tidx = F.max_pool2d(torch.from_numpy(x), 300, return_indices=True)
    for engine in ("numpy", "torch"):
        y, idx = load_engine(engine).max_pool(x, nd=2, kernel_size=(300, 300), stride=(300, 300), padding=(0, 0),
                                              dilation=(1, 1), ceil_mode=False)  # fmt: skip
        identical(y, ty.numpy())
        identical(idx, tidx.numpy())
    assert idx.ravel().tolist() == [int(np.argmax(x[0].ravel() == 3.0)), 200 * 300 + 7]


def close(a, b, scale):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(scale, 1.0), equal_nan=True)


@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.integers(1, 2), hs.integers(1, 2), hs.sampled_from([7, 64, 1 << 20]))
def test_conv_transpose_by_tap_or_by_position_matches_torch(engine, data, nd, groups, per_group, band):
    small_input = data.draw(hs.booleans())  # more kernel taps than input positions, or fewer
    kernel = tuple(data.draw(hs.integers(4, 9) if small_input else hs.integers(1, 3)) for _ in range(nd))
    lengths = tuple(data.draw(hs.integers(1, 3) if small_input else hs.integers(3, 8)) for _ in range(nd))
    stride, dilation = (tuple(data.draw(hs.integers(1, 3)) for _ in range(nd)) for _ in range(2))
    padding = tuple(data.draw(hs.integers(0, 2)) for _ in range(nd))
    output_padding = tuple(data.draw(hs.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    seed = data.draw(hs.integers(0, 99))
    x = data_of((data.draw(hs.integers(1, 2)), groups * per_group, *lengths), "normal", seed)
    w = data_of((groups * per_group, data.draw(hs.integers(1, 2)), *kernel), "normal", seed + 1)
    b = data_of((groups * w.shape[1],), "normal", seed + 2) if data.draw(hs.booleans()) else None
    op = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    expected = torch_says(op, torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                          stride, padding, output_padding, groups, dilation)  # fmt: skip
    with tiny_bands(band):
        mine = load_engine(engine).conv_transpose(x, w, b, nd=nd, stride=stride, padding=padding,
                                                  output_padding=output_padding, groups=groups, dilation=dilation)  # fmt: skip
    close(mine, expected, float(np.abs(x).max() * np.abs(w).max() * np.prod(kernel) * per_group))


@SETTINGS
@given(hs.data(), hs.sampled_from([1, 2]), hs.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       hs.sampled_from([7, 64, 1 << 20]))  # fmt: skip
def test_conv_in_bands_matches_torch_and_its_bands_are_the_whole(engine, data, nd, mode, band):
    kernel = tuple(data.draw(hs.integers(1, 4)) for _ in range(nd))
    stride, dilation = (tuple(data.draw(hs.integers(1, 2)) for _ in range(nd)) for _ in range(2))
    pads = tuple((data.draw(hs.integers(0, 5 if mode == "zeros" else 1)),) * 2 for _ in range(nd))
    lengths = tuple(data.draw(hs.integers(2, 12)) for _ in range(nd))
    seed = data.draw(hs.integers(0, 99))
    x = data_of((data.draw(hs.integers(1, 2)), 2, *lengths), "normal", seed)
    w = data_of((3, 2, *kernel), "normal", seed + 1)
    b = data_of((3,), "normal", seed + 2)
    flat = [amount for pair in reversed(pads) for amount in pair]
    padded = torch_says(F.pad, torch.from_numpy(x), flat, mode="constant" if mode == "zeros" else mode)
    op = F.conv1d if nd == 1 else F.conv2d
    expected = torch_says(op, torch.from_numpy(padded), torch.from_numpy(w), torch.from_numpy(b), stride, 0, dilation)
    args = dict(nd=nd, stride=stride, pads=pads, dilation=dilation, groups=1, padding_mode=mode)
    with tiny_bands(band):
        mine = load_engine(engine).conv(x, w, b, **args)
        close(mine, expected, float(np.abs(x).max() * np.abs(w).max() * w[0].size))
        if engine == "numpy":
            blocks = [block for _, _, block in conv_module.conv_rows(x, w, b, **args)]
            identical(np.concatenate(blocks, axis=2) if blocks else mine, mine)


def test_negative_zero_is_found_in_any_layout():
    x = np.zeros((3, 5, 7), np.float32)
    assert not has_negative_zero(x) and not has_negative_zero(x[:, 1:3, 2:])
    x[2, 4, 6] = -0.0
    assert has_negative_zero(x) and has_negative_zero(x[:, 3:, 5:]) and not has_negative_zero(x[:2])
    assert has_negative_zero(x[:, ::2, ::3]) and not has_negative_zero(np.array([np.nan, -np.inf, -1e-45], np.float32))


def test_maximum_with_zero_gives_numpys_bits_in_every_layout_and_length():
    """The vectorised ``max(x, 0)`` (against an array of zeros): NumPy's ``np.maximum(x, 0)`` bit for bit,
    NaN payloads included, past the shared block of zeros, strided, and in place."""
    rng = np.random.default_rng(3)
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FC12345], np.uint32).view(np.float32)
    pool = np.concatenate([SPECIAL[SPECIAL.view(np.int32) != np.int32(-(2**31))], nans, np.array([1e-45, -1e-45], np.float32)])
    for size in (1, 7, 17, 1000, (1 << 16) + 3, 3 * (1 << 16)):
        x = rng.choice(pool, size=size).astype(np.float32)
        expected = np.maximum(x, np.float32(0)).view(np.int32)
        np.testing.assert_array_equal(maximum_zero(x).view(np.int32), expected)
        inplace = x.copy()
        assert maximum_zero(inplace, out=inplace) is inplace
        np.testing.assert_array_equal(inplace.view(np.int32), expected)
        np.testing.assert_array_equal(maximum_zero(x[::2]).view(np.int32), expected[::2])


def test_relu_beyond_the_block_of_zeros_matches_torch_to_the_bit(engine):
    x = data_of((3, 200, 301), "special", 5)
    x.reshape(-1)[::7919] = -0.0
    expected = torch.relu(torch.from_numpy(x)).numpy()
    mine = load_engine(engine).activation("ReLU", x.copy(), {}, inplace=True)
    identical(mine, expected)
    np.testing.assert_array_equal(mine.view(np.int32)[~np.isnan(mine)], expected.view(np.int32)[~np.isnan(mine)])


@pytest.mark.parametrize("kind", ["normal", "special", "zeros"])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooled_rows_written_into_a_view_are_the_returned_ones(kind, mode):
    x = data_of((2, 3, 9, 11), kind, 11)
    args = {"mode": mode, "kernel_size": (3, 2), "stride": (2, 2), "padding": (1, 0), "ceil_mode": True}
    if mode == "max":
        args["dilation"] = (1, 1)
    whole = pool_module.pool_rows(x, base=0, height=9, o0=0, o1=5, **args)
    y = np.full((2, 3, 7, whole.shape[-1]), 5.0, np.float32)
    for o0, o1 in ((0, 2), (2, 5)):
        a = max(0, o0 * 2 - 1)
        out = y[:, :, 1 + o0 : 1 + o1]
        assert pool_module.pool_rows(x[..., a:, :], base=a, height=9, o0=o0, o1=o1, **args, out=out) is out
    identical(y[:, :, 1:6], whole)
    assert (y[:, :, [0, 6]] == 5.0).all()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hs.data(), hs.sampled_from(["normal", "special", "zeros"]), hs.booleans())
def test_3d_pooling_matches_torch_to_the_bit(engine, data, kind, indices):
    kernel = tuple(data.draw(hs.integers(1, 4) | hs.integers(5, 9)) for _ in range(3))
    stride = tuple(data.draw(hs.sampled_from([1, 2, k])) for k in kernel)
    padding = tuple(data.draw(hs.integers(0, k // 2)) for k in kernel)
    dilation = tuple(data.draw(hs.integers(1, 2)) for _ in range(3))
    ceil_mode = data.draw(hs.booleans())
    lengths = tuple(data.draw(hs.integers(max(1, (k - 1) * d + 1 - 2 * p), (k - 1) * d + 6))
                    for k, p, d in zip(kernel, padding, dilation))  # fmt: skip
    if data.draw(hs.booleans()):  # windows with no cell inside along depth (dilation over the padding)
        kernel, padding, dilation, lengths = (2, *kernel[1:]), (1, *padding[1:]), (2, *dilation[1:]), (1, *lengths[1:])
    x = data_of((data.draw(hs.integers(1, 2)), *lengths), kind, data.draw(hs.integers(0, 2**16)))
    ty, tidx = torch_says(F.max_pool3d, torch.from_numpy(x), kernel, stride, padding, dilation, ceil_mode=ceil_mode,
                          return_indices=True)  # fmt: skip
    eng = load_engine(engine)
    y, idx = eng.max_pool(x, nd=3, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=ceil_mode, return_indices=indices)  # fmt: skip
    identical(y, ty)
    if indices:
        identical(idx, tidx)
    override = data.draw(hs.sampled_from([None, 3]))
    include = data.draw(hs.booleans())
    expected = torch_says(F.avg_pool3d, torch.from_numpy(x), kernel, stride, padding, ceil_mode, include, override)
    identical(eng.avg_pool(x, nd=3, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                           count_include_pad=include, divisor_override=override), expected)  # fmt: skip


def within_rounding(mine, expected, x, op, *args):
    """Float tolerance where only the summation order differs: non-finite results and zeros' signs are
    torch's exactly; a finite result is within 2·taps float32 roundings of the window's absolute sum
    (ATen's running sum errs by up to taps·eps·Σ|x|, the pairwise sums by far less)."""
    assert mine.shape == expected.shape and mine.dtype == expected.dtype
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(mine[~finite], expected[~finite])
    taps = np.prod(args[0])
    with torch.no_grad():
        scale = op(torch.from_numpy(np.abs(np.nan_to_num(x, posinf=0, neginf=0)).astype(np.float64)), *args).numpy()
    bound = 2 * taps * np.finfo(np.float32).eps * scale + 1e-30
    assert (np.abs(mine[finite].astype(np.float64) - expected[finite]) <= bound[finite]).all()
    zeros = (mine == 0) & (expected == 0)
    np.testing.assert_array_equal(np.signbit(mine[zeros]), np.signbit(expected[zeros]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hs.data(), hs.sampled_from([1, 2, 3]), hs.sampled_from(["normal", "special", "zeros"]),
       hs.sampled_from([7, 64, 1 << 20]))  # fmt: skip
def test_large_average_windows_are_summed_pairwise_within_rounding_of_torch(data, nd, kind, band):
    """Windows whose sums in ATen's order would cost far more are summed pairwise, one axis at a time
    (``AvgPool2d(1000, stride=1)`` on 2000² in a second, not an hour): torch's numbers within rounding."""
    kernel = tuple(data.draw(hs.integers(12, 40 if nd < 3 else 12)) for _ in range(nd))
    stride = tuple(data.draw(hs.sampled_from([1, 1, 2, 3])) for _ in kernel)
    padding = tuple(data.draw(hs.integers(0, k // 2)) for k in kernel)
    lengths = tuple(data.draw(hs.integers(max(1, k - 2 * p), k + 30)) for k, p in zip(kernel, padding))
    ceil_mode, include = data.draw(hs.booleans()), data.draw(hs.booleans())
    override = data.draw(hs.sampled_from([None, 7])) if nd > 1 else None
    x = data_of((data.draw(hs.integers(1, 3)), *lengths), kind, data.draw(hs.integers(0, 2**16)))
    op = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
    args = (kernel, stride, padding, ceil_mode, include) + ((override,) if nd > 1 else ())
    expected = torch_says(op, torch.from_numpy(x), *args)
    with tiny_bands(band), mock.patch("cnnops.model.arithmetic.PAIRWISE_WORK", 0):
        planes = x.reshape(-1, *(1,) * (nd == 1), *x.shape[-nd:])
        axes = [pool_module._Axis(n, k, s, p, 1, pool_module._pool_length(n, k, s, p, 1, ceil_mode))
                for n, k, s, p in zip(planes.shape[1:], (1,) * (nd == 1) + kernel, (1,) * (nd == 1) + stride,
                                      (0,) * (nd == 1) + padding)]  # fmt: skip
        assume(pool_module._use_pairwise(planes, planes.shape, axes))
        mine = load_engine("numpy").avg_pool(x, nd=nd, kernel_size=kernel, stride=stride, padding=padding,
                                             ceil_mode=ceil_mode, count_include_pad=include,
                                             divisor_override=override)  # fmt: skip
    within_rounding(mine, expected, x, op, *args)


def test_sums_that_could_overflow_stay_in_aten_s_order():
    """Near float32's limit a sum can be inf in one order and finite in another: such inputs are summed
    in ATen's order (bit-exact), however large the window."""
    x = np.full((1, 300, 300), 1e36, np.float32)
    x[0, ::2] = -1e36
    axes = pool_module._axes(x.shape, 2, (200, 200), (1, 1), (0, 0), (1, 1), False)
    assert not pool_module._use_pairwise(x, x.shape, axes)
    assert pool_module._use_pairwise(x / np.float32(1e30), x.shape, axes)
    expected = F.avg_pool2d(torch.from_numpy(x[:, :210, :210]), 200, 1).numpy()
    identical(load_engine("numpy").avg_pool(x[:, :210, :210], nd=2, kernel_size=(200, 200), stride=(1, 1),
                                            padding=(0, 0), ceil_mode=False, count_include_pad=True,
                                            divisor_override=None), expected)  # fmt: skip


@pytest.mark.parametrize("stage, shape, engine", [
    ("AvgPool2d(1000, stride=1)", (1, 1, 2000, 2000), "numpy"),  # pairwise sums: torch adds 10¹² taps
    ("MaxPool2d(1000, stride=1)", (1, 1, 2000, 2000), "numpy"),  # one axis at a time, doubling
    ("AvgPool2d(2)", (1, 1, 64, 64), "numpy"),
    ("GELU", (1, 128, 1024, 1024), "torch"),  # 134 M transcendental elements: torch's import pays back
    ("Tanh", (1, 64, 2048, 2048), "numpy"),  # NumPy's float32 tanh is nearly torch's speed: never worth the import
    ("GELU(approximate='tanh')", (1, 128, 1024, 1024), "numpy"),  # a seventh of the exact GELU's time on NumPy
])  # fmt: skip
def test_the_auto_engine_weighs_window_work_as_each_engine_does_it(stage, shape, engine, monkeypatch):
    """The auto engine counts a window's work the way each engine does it, so a large window never sends
    a run to the engine that would take minutes (rates: the defaults, not this machine's cache)."""
    import sys

    from cnnops.model.trace import trace_shapes
    from cnnops.run.costs import DEFAULTS
    from cnnops.run.pipeline import choose_engine
    from cnnops.spec import parse_stages

    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh process, where torch's import is a cost
    assert choose_engine("auto", trace_shapes(shape, parse_stages([stage])), rates=DEFAULTS) == engine
