"""Convolution and transposed convolution (``F.conv1d/2d/3d``, ``F.conv_transpose1d/2d/3d``) through BLAS.

A convolution is computed in bands of output rows: each band's input windows are copied out as
columns (im2col) and multiplied by the weights in one matmul, so the extra memory is one band's
columns (and the padded input, when there is padding) whatever the plane. The bands are fixed by the
shapes alone, so a caller that consumes the rows band by band (:func:`conv_rows`, for a fused conv → activation → pool) gets the same numbers
to the bit as :func:`conv`. A transposed convolution multiplies once, then adds each kernel tap's
plane into the output — or each input position's kernel-sized block, whichever there are fewer of.

>>> import numpy as np
>>> x = np.array([[[0, 1, 2, 3]]], dtype=np.float32)
>>> conv(x, np.array([[[1, -1]]], np.float32), None, nd=1, stride=(1,), pads=((0, 0),), dilation=(1,),
...      groups=1, padding_mode="zeros").tolist()
[[[-1.0, -1.0, -1.0]]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _pad, _quiet, blas_threads
from cnnops.model.arithmetic import conv_output_length

#: columns (output positions) per band when each column is cheap to multiply: the band's columns stay
#: near the cache, and the bands are few enough that Python's share is small
_SMALL_BAND_COLUMNS = 1 << 14
#: float32 elements of im2col columns per band otherwise (2 MB): one buffer that every band reuses, so a
#: convolution touches 2 MB of fresh memory for its columns, not the whole im2col matrix — in a fresh
#: process, first-touched pages cost more than the copy into them (Conv2d(64, 64, 3) on 224²: 48 → 37 ms)
_IM2COL_BUDGET = 1 << 19
#: below this many multiply-adds per column a matmul is memory-bound: one BLAS thread does it as fast
_MEMORY_BOUND_MACS = 1 << 10
#: float32 elements of a transposed convolution's columns computed at once
_COL2IM_BUDGET = 1 << 22

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _batched(x: np.ndarray, nd: int) -> tuple[np.ndarray, bool]:
    """(N, C, *spatial) and whether a batch dim was added."""
    x = _f32(x)
    return (x[None], True) if x.ndim == nd + 1 else (x, False)


def conv_shape(
    x_shape: tuple[int, ...], weight_shape: tuple[int, ...], *, nd, stride, pads, dilation
) -> tuple[int, ...]:
    """The output shape of :func:`conv` (batch dim as in ``x_shape``)."""
    lengths = [n + left + right for n, (left, right) in zip(x_shape[-nd:], pads)]
    outs = [conv_output_length(n, k, s, 0, d) for n, k, s, d in zip(lengths, weight_shape[2:], stride, dilation)]
    return (*x_shape[: -nd - 1], weight_shape[0], *outs)


def band_rows(x_shape: tuple[int, ...], weight_shape: tuple[int, ...], outs: list[int], groups: int) -> int:
    """Output rows per band: fixed by the shapes, so every caller gets the same bands (and numbers)."""
    n, c = (x_shape[0], x_shape[1]) if len(x_shape) == len(weight_shape) else (1, x_shape[0])
    taps = math.prod(weight_shape[2:])
    depth = (c // groups) * taps  # multiply-adds per column per output channel
    rest = math.prod(outs[1:])
    if depth * weight_shape[0] // groups < _MEMORY_BOUND_MACS:
        return max(1, _SMALL_BAND_COLUMNS // max(1, n * rest))
    return max(1, _IM2COL_BUDGET // max(1, n * c * taps * rest))


@_quiet
def conv_rows(
    x, weight, bias, *, nd, stride, pads, dilation, groups, padding_mode, into: Callable[[int, int], Any] | None = None
) -> Iterator[tuple[int, int, np.ndarray]]:
    """The convolution's output in bands of rows along the first spatial dim: ``(r0, r1, block)`` with
    ``block`` (N, C_out, r1 − r0, …) — unbatched inputs give unbatched blocks. Bias included.
    ``into(r0, r1)``: where to write that band (an array of the block's shape); the matmul writes there
    directly when it can, and the block yielded is that array."""
    x, added = _batched(x, nd)
    weight = _f32(weight)
    out_c, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    outs = list(conv_shape(x.shape, weight.shape, nd=nd, stride=stride, pads=pads, dilation=dilation)[2:])
    if not all(outs) or x.shape[0] == 0 or out_c == 0:
        return
    n = x.shape[0]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    # torch's reflect/replicate/circular pads are numpy's reflect (edge not repeated)/edge/wrap
    x = _pad(x, [tuple(p) for p in pads], mode=_PAD_MODES[padding_mode])
    w = weight.reshape(groups, out_c // groups, cg * math.prod(kernel))
    b = None if bias is None else _f32(bias).reshape((-1,) + (1,) * nd)
    rows = band_rows(x.shape, weight.shape, outs, groups)
    rest = math.prod(outs[1:])
    depth = cg * math.prod(kernel)
    # (N, C, *kernel, *outs) windows, then per band (N, G, Cg·Πk, positions) columns
    windows = _windows(x, spans, kernel, outs, stride, dilation)
    threads = 1 if depth * out_c // groups < _MEMORY_BOUND_MACS else None
    buffer = np.empty(n * x.shape[1] * math.prod(kernel) * min(rows, outs[0]) * rest, dtype=_F32)  # every band's columns
    with blas_threads(threads):
        for r0 in range(0, outs[0], rows):
            r1 = min(outs[0], r0 + rows)
            band = windows[(Ellipsis, slice(r0, r1)) + (slice(None),) * (nd - 1)]
            cols = buffer[: band.size].reshape(band.shape)
            np.copyto(cols, band)
            cols = cols.reshape(n, groups, depth, (r1 - r0) * rest)
            target = None if into is None else into(r0, r1)
            if target is None:
                block = np.matmul(w, cols).reshape(n, out_c, r1 - r0, *outs[1:])  # (N, G, Cout/G, positions)
            else:
                block = target[None] if added else target
                flat = block.reshape(n, groups, out_c // groups, (r1 - r0) * rest)
                if np.may_share_memory(flat, block):  # a view: the matmul fills the target itself
                    np.matmul(w, cols, out=flat)
                else:
                    block[...] = np.matmul(w, cols).reshape(block.shape)
            if b is not None:
                block += b
            yield r0, r1, block[0] if added else block


def _windows(x: np.ndarray, spans: list[int], kernel: tuple[int, ...], outs: list[int], stride, dilation) -> np.ndarray:
    """The (N, C, *kernel, *outs) view of ``x``'s windows: tap t of the window at output o is input cell
    o·stride + t·dilation. Made from the strides directly when ``x`` is one block of memory (what
    sliding_window_view and three slicings give, without their ~15 µs), else through them."""
    nd = len(kernel)
    if x.flags.c_contiguous and x.size:
        steps = x.strides[2:]
        strides = (*x.strides[:2], *(a * d for a, d in zip(steps, dilation)), *(a * s for a, s in zip(steps, stride)))
        return np.ndarray((*x.shape[:2], *kernel, *outs), x.dtype, x, 0, strides)
    windows = sliding_window_view(x, spans, axis=tuple(range(2, 2 + nd)))
    windows = windows[(Ellipsis,) + tuple(slice(None, None, s) for s in stride)
                      + tuple(slice(None, None, d) for d in dilation)]  # fmt: skip
    windows = windows[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]
    return windows.transpose(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))


@_quiet
def conv(x, weight, bias, *, nd, stride, pads, dilation, groups, padding_mode) -> np.ndarray:
    """Cross-correlation (no kernel flip), as ``F.conv1d/2d/3d`` after ``F.pad`` with ``padding_mode``.

    ``pads``: (left, right) per spatial dim. im2col in row bands and one batched matmul per band."""
    x = _f32(x)
    weight = _f32(weight)
    shape = conv_shape(x.shape, weight.shape, nd=nd, stride=stride, pads=pads, dilation=dilation)
    y = np.empty(shape, dtype=_F32)
    if y.size == 0:
        return y
    if math.prod(weight.shape[1:]) == 0:  # no input channel or an empty kernel: only the bias
        y[...] = 0 if bias is None else _f32(bias).reshape((-1,) + (1,) * nd)
        return y
    def band(r0: int, r1: int) -> np.ndarray:
        return y[(Ellipsis, slice(r0, r1)) + (slice(None),) * (nd - 1)]

    for _ in conv_rows(x, weight, bias, nd=nd, stride=stride, pads=pads, dilation=dilation, groups=groups,
                       padding_mode=padding_mode, into=band):  # fmt: skip
        pass
    return y


@_quiet
def conv_transpose(x, weight, bias, *, nd, stride, padding, output_padding, groups, dilation) -> np.ndarray:
    """``F.conv_transpose1d/2d/3d``: the weights times the input as columns, then each column added where
    its kernel tap lands (col2im). The loop runs over kernel taps or over input positions, whichever
    are fewer, each step adding a whole plane or kernel-sized block — at most √(work) steps."""
    x, added = _batched(x, nd)
    weight = _f32(weight)
    n, c = x.shape[:2]
    cg, og = weight.shape[0] // groups, weight.shape[1]
    kernel = tuple(weight.shape[2:])
    lengths = tuple(x.shape[2:])
    full = [(length - 1) * s + d * (k - 1) + 1 + op
            for length, k, s, d, op in zip(lengths, kernel, stride, dilation, output_padding)]  # fmt: skip
    taps, positions = math.prod(kernel), math.prod(lengths)
    y = np.zeros((n, groups * og, *full), dtype=_F32)
    if y.size and x.size and taps:
        wg = weight.reshape(groups, cg, og, taps)
        xs = x.reshape(n, groups, cg, positions)
        with blas_threads(None):  # the usual thread count
            if taps <= positions:
                _add_by_tap(y, wg, xs, kernel, lengths, stride, dilation)
            else:
                _add_by_position(y, wg, xs, kernel, lengths, stride, dilation)
    y = y[(Ellipsis,) + tuple(slice(p, f - p) for p, f in zip(padding, full))]
    if bias is not None:
        y = y + _f32(bias).reshape((-1,) + (1,) * nd)
    y = np.ascontiguousarray(y, dtype=_F32)
    return y[0] if added else y


def _region(offsets, steps, counts) -> tuple[Any, ...]:
    """Index of ``counts[i]`` cells ``steps[i]`` apart from ``offsets[i]`` on each trailing dim."""
    return (Ellipsis,) + tuple(slice(o, o + (n - 1) * s + 1, s) for o, s, n in zip(offsets, steps, counts))


def _add_by_tap(y, wg, xs, kernel, lengths, stride, dilation) -> None:
    """Per kernel tap: its output channels × all input positions, added to a strided plane of ``y``."""
    groups, cg, og, taps = wg.shape
    n, positions = xs.shape[0], xs.shape[-1]
    per = max(1, _COL2IM_BUDGET // max(1, n * groups * og * positions))
    for t0 in range(0, taps, per):
        t1 = min(taps, t0 + per)
        w = wg[..., t0:t1].transpose(0, 2, 3, 1).reshape(groups, og * (t1 - t0), cg)
        cols = np.matmul(w, xs).reshape(n, groups * og, t1 - t0, *lengths)
        for t in range(t0, t1):
            tap = np.unravel_index(t, kernel)
            y[_region([i * d for i, d in zip(tap, dilation)], stride, lengths)] += cols[:, :, t - t0]


def _add_by_position(y, wg, xs, kernel, lengths, stride, dilation) -> None:
    """Per input position: all output channels × the kernel, added to a (dilated) kernel-sized block of ``y``."""
    groups, cg, og, taps = wg.shape
    n, positions = xs.shape[0], xs.shape[-1]
    rest = math.prod(kernel[1:])
    # kernel rows per chunk, then positions per chunk, so the columns stay within the budget
    rows = max(1, min(kernel[0], _COL2IM_BUDGET // max(1, n * groups * og * rest)))
    wk = wg.reshape(groups, cg, og, kernel[0], rest)
    for i0 in range(0, kernel[0], rows):
        i1 = min(kernel[0], i0 + rows)
        w = wk[:, :, :, i0:i1].transpose(0, 2, 3, 4, 1).reshape(groups, og * (i1 - i0) * rest, cg)
        per = max(1, _COL2IM_BUDGET // max(1, n * groups * og * (i1 - i0) * rest))
        for p0 in range(0, positions, per):
            p1 = min(positions, p0 + per)
            cols = np.matmul(w, xs[..., p0:p1]).reshape(n, groups * og, i1 - i0, *kernel[1:], p1 - p0)
            for p in range(p0, p1):
                at = np.unravel_index(p, lengths)
                offsets = [at[0] * stride[0] + i0 * dilation[0], *(a * s for a, s in zip(at[1:], stride[1:]))]
                y[_region(offsets, dilation, (i1 - i0, *kernel[1:]))] += cols[..., p - p0]
