"""``F.interpolate``'s nearest, (bi/tri)linear and bicubic kernels (ATen ``UpSample.h``, ``cpu/UpSampleKernel.cpp``).

Source positions and weights are computed per axis in float32, exactly as ATen computes them —
including the multiply-adds its FMA builds fuse (checked weight by weight against torch) — so every
output reads the same input cells with the same weights as PyTorch's: nearest is identical to the bit.
Linear and cubic weighting sums in float64 and rounds once, so it agrees with ATen's float32 sums to
rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _quiet
from cnnops.engines.numpy_engine.random import _torch_fuses_multiply_add

_CUBIC_A = _F32(-0.75)
#: whether ATen's kernels fuse ``a·b + c`` (its AVX2/AVX-512 builds do, the baseline x86 build does not)
_FUSED = _torch_fuses_multiply_add()


def _fma(a, b, c) -> Any:
    """``a·b + c`` in float32 with one rounding where ATen fuses it, two where it does not."""
    if _FUSED:
        return (np.float64(a) * np.float64(b) + np.float64(c)).astype(_F32)
    return (_F32(a) * _F32(b)).astype(_F32) + _F32(c)


def _scale(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> np.float32:
    """ATen's ``area_pixel_compute_scale<float>``: the step between source positions."""
    if align_corners:
        return _F32(n_in - 1) / _F32(n_out - 1) if n_out > 1 else _F32(0)
    return _scales_value(n_in, n_out, scale)


def _scales_value(n_in: int, n_out: int, scale: float | None) -> np.float32:
    """ATen's ``compute_scales_value<float>``: 1/scale_factor when given, else L_in/L_out, in float32."""
    if scale is not None and scale > 0:
        return _F32(1.0 / scale)
    return _F32(n_in) / _F32(n_out)


def nearest_indices(n_in: int, n_out: int, scale: float | None, shortcuts: bool) -> np.ndarray:
    """The source cell of each output: ``min(⌊i·scale⌋, L_in − 1)`` in float32. ``shortcuts``: ATen's
    ``nearest_idx`` (the kernel 2-D nearest uses for small outputs) copies when L_out = L_in and halves
    the index when L_out = 2·L_in, whatever the scale says."""
    i = np.arange(n_out, dtype=np.int64)
    if shortcuts and n_out == n_in:
        return i
    if shortcuts and n_out == 2 * n_in:
        return i >> 1
    step = _scales_value(n_in, n_out, scale)
    return np.minimum(np.floor(i.astype(_F32) * step).astype(np.int64), n_in - 1)


def _source_index(step: np.float32, n_out: int, align_corners: bool, cubic: bool) -> np.ndarray:
    """ATen's ``area_pixel_compute_source_index<float>``."""
    i = np.arange(n_out).astype(_F32)
    if align_corners:
        return step * i
    real = _fma(step, i + _F32(0.5), _F32(-0.5))
    return real if cubic else np.maximum(real, _F32(0))


def _guard(real: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """ATen's ``guard_index_and_lambda``: the cell at or before ``real`` and the distance past it in [0, 1]."""
    index = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
    lam = np.minimum(np.maximum(real - index.astype(_F32), _F32(0)), _F32(1))
    return index, lam


def linear_taps(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Two source cells and their float32 weights per output (``compute_source_index_and_lambda``)."""
    if n_out == n_in:
        i = np.arange(n_out, dtype=np.int64)
        return np.stack([i, i], 1), np.stack([np.ones(n_out, _F32), np.zeros(n_out, _F32)], 1)
    real = _source_index(_scale(n_in, n_out, align_corners, scale), n_out, align_corners, cubic=False)
    i0, lam1 = _guard(real, n_in)
    i1 = i0 + (i0 < n_in - 1)
    return np.stack([i0, i1], 1), np.stack([_F32(1) - lam1, lam1], 1)


def _cubic1(x: np.ndarray) -> np.ndarray:
    """``((A+2)·x − (A+3))·x·x + 1``; ATen's build fuses the first multiply-add, not the last."""
    a = _CUBIC_A
    return (_fma(a + _F32(2), x, -(a + _F32(3))) * x) * x + _F32(1)


def _cubic2(x: np.ndarray) -> np.ndarray:
    """``((A·x − 5A)·x + 8A)·x − 4A``; ATen's build fuses the first two multiply-adds, not the last."""
    a = _CUBIC_A
    return _fma(_fma(a, x, -_F32(5) * a), x, _F32(8) * a) * x - _F32(4) * a


def cubic_taps(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Four source cells (clamped to the edges) and the float32 cubic-convolution weights (A = −0.75)."""
    real = _source_index(_scale(n_in, n_out, align_corners, scale), n_out, align_corners, cubic=True)
    i0, t = _guard(real, n_in)
    weights = np.stack([_cubic2(t + _F32(1)), _cubic1(t), _cubic1(_F32(1) - t), _cubic2((_F32(1) - t) + _F32(1))], 1)
    cells = np.clip(i0[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return cells, weights


@_quiet
def upsample(x, *, output_size: tuple[int, ...], mode: str, align_corners: bool | None,
             scale_factor: float | tuple[float, ...] | None, recompute_scale_factor: bool | None,
             size: object = None) -> np.ndarray:  # fmt: skip
    """``F.interpolate`` of an (N, C, *spatial) array to ``output_size`` (the shape model's). The kernels
    use ``scale_factor`` as given unless ``recompute_scale_factor``; otherwise they compute L_in/L_out."""
    x = _f32(x)
    nd = x.ndim - 2
    lengths = x.shape[2:]
    if scale_factor is None or recompute_scale_factor:
        scales: tuple[float | None, ...] = (None,) * nd
    else:
        scales = scale_factor if isinstance(scale_factor, tuple) else (scale_factor,) * nd
    align_corners = bool(align_corners)
    if mode == "nearest":
        # 2-D inputs with small outputs go through ATen's channels-last kernel, which takes nearest_idx's shortcuts
        shortcuts = nd == 2 and sum(output_size) <= 128
        index = [nearest_indices(n, o, s, shortcuts) for n, o, s in zip(lengths, output_size, scales)]
        return np.ascontiguousarray(x[(Ellipsis,) + np.ix_(*index)])
    taps = cubic_taps if mode == "bicubic" else linear_taps
    y = x.astype(np.float64)
    for axis in reversed(range(nd)):  # the last axis innermost, as ATen's recursion weights it
        cells, weights = taps(lengths[axis], output_size[axis], align_corners, scales[axis])
        dim = 2 + axis
        shape = [1] * y.ndim
        shape[dim] = output_size[axis]
        total = np.zeros(y.shape[:dim] + (output_size[axis],) + y.shape[dim + 1 :])
        for k in range(cells.shape[1]):
            total += np.take(y, cells[:, k], axis=dim) * weights[:, k].astype(np.float64).reshape(shape)
        y = total
    return np.ascontiguousarray(y.astype(_F32))

