"""Pooling with ATen's loops replayed exactly: max, average, adaptive average and max, and max unpooling."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _offset_view, _pad, _quiet
from cnnops.model.arithmetic import adaptive_bins, pool_length


def _pool_length(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The shape model's pooling length (ATen's pooling_output_shape_pad_lr)."""
    return pool_length(length, k, s, p, d, ceil_mode).result


def _grid(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """One vector per spatial dim, reshaped to broadcast against each other (like np.ix_)."""
    nd = len(vectors)
    return [v.reshape([-1 if i == d else 1 for i in range(nd)]) for d, v in enumerate(vectors)]


def _outer(op, vectors: list[np.ndarray]) -> np.ndarray:
    """``op`` across the spatial dims: one value per output position, e.g. window sizes multiplied."""
    return functools.reduce(op, _grid(vectors))


@_quiet
def max_pool(x, *, nd, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[np.ndarray, np.ndarray]:
    """``F.max_pool1d/2d/3d(..., return_indices=True)``, replaying ATen's loop one kernel tap at a time.

    A tap replaces the running maximum when ``val > max or isnan(val)``: the first maximum in
    row-major window order wins a tie, the last NaN wins, padding (−inf here) never wins, and a window
    of −inf keeps its first in-bounds element. Indices are flat positions in each input plane.
    """
    x = _f32(x)
    lengths = x.shape[-nd:]
    outs = [_pool_length(*args, ceil_mode) for args in zip(lengths, kernel_size, stride, padding, dilation)]
    pads = [(p, max(0, (o - 1) * s + d * (k - 1) + 1 - length - p))
            for length, k, s, p, d, o in zip(lengths, kernel_size, stride, padding, dilation, outs)]  # fmt: skip
    xp = _pad(x, pads, constant_values=-np.inf)
    starts = [np.arange(o, dtype=np.int64) * s - p for o, s, p in zip(outs, stride, padding)]
    # each window starts on its first in-bounds tap (ATen's `while (i0 < 0) i0 += dilation`); the
    # winner is kept as a row-major tap number and turned into a flat input position at the end
    first_taps = [(np.maximum(-st, 0) + d - 1) // d for st, d in zip(starts, dilation)]
    radix = [math.prod(kernel_size[d + 1 :]) for d in range(nd)]
    winner = np.zeros(x.shape[:-nd] + tuple(outs), dtype=np.int32)
    winner[...] = _outer(np.add, [t * r for t, r in zip(first_taps, radix)])
    best = np.full(winner.shape, -np.inf, dtype=_F32)
    nan = bool(x.size) and bool(np.isnan(np.max(x)))
    # np.maximum is branch-free (several times faster) and agrees with the rule unless there is a
    # NaN or a −0 that could tie with +0
    fast = not nan and not np.any(x.view(np.uint32) == 0x80000000)
    for number, tap in enumerate(itertools.product(*(range(k) for k in kernel_size))):
        value = _offset_view(xp, [t * d for t, d in zip(tap, dilation)], stride, outs)
        take = value > best
        if fast:
            np.maximum(best, value, out=best)
        else:
            if nan:
                take |= np.isnan(value)
            np.copyto(best, value, where=take)
        # a tap that wins comes after the current winner in row-major order (taps before a
        # window's first in-bounds tap are padding), so "take ? number : winner" is a maximum
        np.maximum(winner, np.multiply(take, number, dtype=np.int32), out=winner)
    plane_strides = [math.prod(lengths[d + 1 :]) for d in range(nd)]
    tap_offsets = np.array([sum(t * dil * w for t, dil, w in zip(tap, dilation, plane_strides))
                            for tap in itertools.product(*(range(k) for k in kernel_size))], dtype=np.int64)  # fmt: skip
    window_starts = _outer(np.add, [start * w for start, w in zip(starts, plane_strides)])
    index = np.take(tap_offsets, winner)
    index += window_starts
    return best, index


@_quiet
def avg_pool(x, *, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) -> np.ndarray:
    """``F.avg_pool1d/2d/3d``: float32 sums in ATen's order (zero padding adds nothing), then ATen's divisor.

    The divisor counts padding but not the ceil overhang past L + p (count_include_pad), or only the
    in-bounds cells, or is ``divisor_override`` (2-D and 3-D only, as in PyTorch)."""
    x = _f32(x)
    lengths = x.shape[-nd:]
    ones = (1,) * nd
    outs = [_pool_length(*args, ceil_mode) for args in zip(lengths, kernel_size, stride, padding, ones)]
    pads = [(p, max(0, (o - 1) * s + k - length - p))
            for length, k, s, p, o in zip(lengths, kernel_size, stride, padding, outs)]  # fmt: skip
    xp = _pad(x, pads, constant_values=0)
    total = np.zeros(x.shape[:-nd] + tuple(outs), dtype=_F32)
    for tap in itertools.product(*(range(k) for k in kernel_size)):
        total += _offset_view(xp, tap, stride, outs)
    sizes, counts = [], []
    for length, k, s, p, o in zip(lengths, kernel_size, stride, padding, outs):
        start = np.arange(o, dtype=np.int64) * s - p
        end = np.minimum(start + k, length + p)
        sizes.append(end - start)
        counts.append(np.minimum(end, length) - np.maximum(start, 0))
    count = _outer(np.multiply, counts)
    if divisor_override is not None and nd >= 2:
        divisor = np.full(count.shape, divisor_override, dtype=np.int64)
    else:
        divisor = _outer(np.multiply, sizes) if count_include_pad else count
    empty = _outer(np.logical_or, [c <= 0 for c in counts])
    # ATen adds the quotient to a zeroed output (−0 becomes +0) and skips windows with no cell
    y = total / divisor.astype(_F32) + _F32(0)
    y[..., empty] = 0
    return y


def _bins(length: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """The shape model's adaptive bins, as (starts, sizes) arrays."""
    bins = np.array(adaptive_bins(length, out), dtype=np.int64).reshape(-1, 2)
    return bins[:, 0], bins[:, 1] - bins[:, 0]


def _gather_bins(x: np.ndarray, nd: int, output_size, fill: float):
    """Every bin's cells as one row-major sequence: values (lead, *outs, K) with ``fill`` past the
    bin's end, the flat plane positions (*outs, K), and each bin's size per dim."""
    lengths = x.shape[-nd:]
    index, positions, sizes, valid = [], [], [], []
    for d, (length, out) in enumerate(zip(lengths, output_size)):
        start, size = _bins(length, out)
        width = int(size.max()) if out else 0
        offs = np.arange(width, dtype=np.int64)
        pos = start[:, None] + offs[None, :]
        ok = offs[None, :] < size[:, None]
        pos = np.where(ok, pos, start[:, None])
        shape = [1] * (2 * nd)
        shape[d], shape[nd + d] = out, width
        index.append(pos.reshape(shape))
        valid.append(ok.reshape(shape))
        positions.append(pos.reshape(shape) * math.prod(lengths[d + 1 :]))
        sizes.append(size)
    values = x[(...,) + tuple(index)]
    mask = functools.reduce(np.logical_and, valid)
    flat = functools.reduce(np.add, positions)
    lead = values.shape[: values.ndim - 2 * nd]
    k = math.prod(values.shape[values.ndim - nd :])
    values = np.where(mask, values, _F32(fill)).reshape(*lead, *output_size, k)
    flat = np.broadcast_to(flat, mask.shape).reshape(*output_size, k)
    return values, flat, sizes


@_quiet
def adaptive_avg_pool(x, *, nd, output_size) -> np.ndarray:
    """``F.adaptive_avg_pool1d/2d/3d``. PyTorch computes a 1(×1) output as ``mean`` over the plane (any
    rank); other sizes sum each bin in float32, row-major, and divide by the bin height then width."""
    x = _f32(x)
    output_size = tuple(int(o) for o in output_size)
    lead = x.shape[:-nd]
    if all(o == 1 for o in output_size):
        axes = tuple(range(x.ndim - nd, x.ndim))
        # a float64 sum, rounded to float32 (so it overflows where PyTorch's float32 sum does)
        total = np.sum(x, axis=axes, dtype=np.float64, keepdims=True).astype(_F32)
        return np.asarray(total / _F32(math.prod(x.shape[-nd:])))
    if math.prod(output_size) == 0 or math.prod(lead) == 0:
        return np.zeros(lead + output_size, dtype=_F32)
    values, _, sizes = _gather_bins(x, nd, output_size, 0.0)
    # ATen's loop: float32 sum from +0 in row-major order (so −0 cells give +0)
    total = np.add.accumulate(values, axis=-1)[..., -1] + _F32(0)
    for divisor in _grid(sizes):
        total /= divisor.astype(_F32)
    return np.ascontiguousarray(total)


def _first_max_last_nan(values: np.ndarray) -> np.ndarray:
    """Position ATen's ``if (val > max || isnan(val))`` scan ends on, along the last axis: the last
    NaN if any, else the first maximum (position 0 when all are −inf)."""
    nan = np.isnan(values)
    last_nan = values.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    clean = np.where(nan, -np.inf, values)
    first_max = np.argmax(clean == clean.max(axis=-1, keepdims=True), axis=-1)
    return np.where(nan.any(axis=-1), last_nan, first_max)


@_quiet
def adaptive_max_pool(x, *, nd, output_size) -> tuple[np.ndarray, np.ndarray]:
    """``F.adaptive_max_pool1d/2d/3d(..., return_indices=True)`` with max pooling's tie and NaN rules."""
    x = _f32(x)
    output_size = tuple(int(o) for o in output_size)
    shape = x.shape[:-nd] + output_size
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=_F32), np.zeros(shape, dtype=np.int64)
    values, flat, _ = _gather_bins(x, nd, output_size, -np.inf)
    winner = _first_max_last_nan(values)[..., None]
    best = np.take_along_axis(values, winner, axis=-1)[..., 0]
    index = np.take_along_axis(np.broadcast_to(flat, values.shape), winner, axis=-1)[..., 0]
    return np.ascontiguousarray(best), np.ascontiguousarray(index, dtype=np.int64)


@_quiet
def max_unpool(x, indices, *, nd, kernel_size, stride, padding, output_size) -> np.ndarray:
    """``F.max_unpool1d/2d/3d``: zeros with each value written at its index. A position written twice
    keeps the later value in row-major order, as ATen's serial loop over each plane does."""
    x = _f32(x)
    lead = x.shape[:-nd]
    plane = math.prod(output_size)
    rows = math.prod(lead)
    y = np.zeros((rows, plane), dtype=_F32)
    if y.size and x.size:
        key = np.asarray(indices, dtype=np.int64).reshape(rows, -1)
        key = (key + np.arange(rows, dtype=np.int64)[:, None] * plane).reshape(-1)
        values = x.reshape(-1)
        _, first_from_end = np.unique(key[::-1], return_index=True)
        last = key.size - 1 - first_from_end
        y.reshape(-1)[key[last]] = values[last]
    return y.reshape(*lead, *output_size)
