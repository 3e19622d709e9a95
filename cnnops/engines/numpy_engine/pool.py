"""Pooling with ATen's rules replayed exactly: max, average, adaptive average and max, and max unpooling.

No Python loop runs over the positions of a kernel window: max pooling reduces one spatial axis at a
time (a window maximum is the maximum of its rows' maxima, and ATen's tie rules survive that split),
folding short windows tap by tap and doubling long ones (log₂ k passes), in bands of output rows at
least a window tall so that no input row's pass is redone more than about twice; average pooling adds
the taps of short windows one by one and accumulates long windows in one call — bit for bit ATen's
float32 running sums — and when that order would cost far more than summing pairwise (a window of
10⁶ taps at every position), it sums pairwise one axis at a time (within float rounding of ATen's
sums; inputs whose sums could overflow stay in ATen's order). Every step works on a band of output
rows or a block of the plane, so the extra memory stays near the band size whatever the plane.
Max unpooling finds each position's last writer in linear time.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _quiet, has_negative_zero
from cnnops.model.arithmetic import adaptive_bins, pool_output_length, sums_pairwise

#: input elements per band of output rows: bounds the temporaries of a pooling step
BAND_ELEMENTS = 1 << 20
#: windows up to this many taps along an axis fold tap by tap; longer ones double (log₂ k passes)
FOLD_TAPS = 8
#: average pooling: windows of up to this many taps add tap by tap; larger ones accumulate in one call
ADD_TAPS = 16


def _pool_length(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The shape model's pooling length (ATen's pooling_output_shape_pad_lr)."""
    return pool_output_length(length, k, s, p, d, ceil_mode)


def _grid(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """One vector per spatial dim, reshaped to broadcast against each other (like np.ix_)."""
    nd = len(vectors)
    return [v.reshape([-1 if i == d else 1 for i in range(nd)]) for d, v in enumerate(vectors)]


def _outer(op, vectors: list[np.ndarray]) -> np.ndarray:
    """``op`` across the spatial dims: one value per output position, e.g. window sizes multiplied."""
    return functools.reduce(op, _grid(vectors))


# --------------------------------------------------------------------------- window geometry


class _Axis:
    """One spatial axis of a pooling window: length, kernel, stride, padding, dilation, output length."""

    def __init__(self, length: int, k: int, s: int, p: int, d: int, out: int):
        self.length, self.k, self.s, self.p, self.d, self.out = length, k, s, p, d, out
        self.span = d * (k - 1) + 1

    def rows(self, o0: int, o1: int) -> tuple[int, int]:
        """Input coordinates [a, b) the windows of outputs o0..o1−1 cover (padding included)."""
        a = o0 * self.s - self.p
        return a, (o1 - 1) * self.s - self.p + self.span

    def first_inside(self, o0: int, o1: int) -> np.ndarray:
        """ATen's starting cell for each window: its first tap inside the input (``while (i < 0) i += d``)."""
        start = np.arange(o0, o1, dtype=np.int64) * self.s - self.p
        return start + (np.maximum(-start, 0) + self.d - 1) // self.d * self.d


def _axes(shape: tuple[int, ...], nd: int, kernel_size, stride, padding, dilation, ceil_mode) -> list[_Axis]:
    """The two axes of a pooling problem on (B, H, W); a 1-D problem gets a row axis of length 1."""
    axes = [_Axis(length, k, s, p, d, _pool_length(length, k, s, p, d, ceil_mode))
            for length, k, s, p, d in zip(shape[-nd:], kernel_size, stride, padding, dilation)]  # fmt: skip
    return ([_Axis(1, 1, 1, 0, 1, 1)] if nd == 1 else []) + axes


def _as_planes(x: np.ndarray, nd: int) -> np.ndarray:
    """(B, H, W) view of (..., *spatial): lead dims merged, a 1-D signal as one row."""
    lead = math.prod(x.shape[:-nd])
    return x.reshape(lead, *((1,) if nd == 1 else ()), *x.shape[-nd:])


def _along(a: np.ndarray, axis: int, start: int, count: int, step: int = 1) -> np.ndarray:
    """``count`` entries of ``a`` along ``axis`` from ``start``, ``step`` apart (a view)."""
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + (count - 1) * step + 1, step) if count else slice(start, start)
    return a[tuple(index)]


def _inside(x: np.ndarray, rows: _Axis, a: int, b: int, base: int = 0) -> np.ndarray:
    """The rows of a..b−1 that are inside the planes, from ``x`` holding the rows from ``base`` on."""
    lo = min(max(a, 0), rows.length)
    return x[:, lo - base : max(min(b, rows.length), lo) - base]


def _band_rows(planes: int, rows: int, width: int, step: int, budget: int = BAND_ELEMENTS) -> int:
    """Output rows per band so that a band's input (``rows`` for the first output row, ``step`` more for
    each further one, ``width`` wide, over all planes) stays near ``budget`` elements."""
    per_row = max(1, planes * width)
    return max(1, (budget // per_row - rows) // max(step, 1) + 1)


def _overlap_rows(per_band: int, planes: int, rows: _Axis, row_width: int, bytes_per: int, limit: int) -> int:
    """Output rows per band, raised so that consecutive bands share few input rows: a band's first
    pass (along the rows) covers its ``rows.span + (n − 1)·s`` input rows, so a band much shorter than
    a window would redo that pass for nearly every output row (k times over for stride 1). A band of
    span/s output rows reads each input row at most about twice; it is kept while its first pass's result
    (``row_width`` values of ``bytes_per`` bytes per input row and plane) fits ``limit`` bytes."""
    wanted = min(rows.out, -(-rows.span // max(rows.s, 1)))
    if per_band >= wanted:
        return per_band
    fits = (limit // max(1, planes * row_width * bytes_per) - rows.span) // max(rows.s, 1) + 1
    return max(per_band, min(wanted, fits))


def _padded(x: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], fill: float, base: int = 0,
            height: int | None = None) -> np.ndarray:  # fmt: skip
    """Rows a..b−1 and columns c..e−1 of planes of ``height`` rows padded with ``fill`` outside them, from
    ``x`` (B, rows, W) holding the rows from ``base`` on (a view when nothing is outside)."""
    (a, b), (c, e) = rows, cols
    height = base + x.shape[1] if height is None else height
    width = x.shape[2]
    if a >= 0 and c >= 0 and b <= height and e <= width:
        return x[:, a - base : b - base, c:e]
    out = np.full((x.shape[0], b - a, e - c), fill, dtype=x.dtype)
    ra, rb, ca, cb = max(a, 0), min(b, height), max(c, 0), min(e, width)
    if ra < rb and ca < cb:
        out[:, ra - a : rb - a, ca - c : cb - c] = x[:, ra - base : rb - base, ca:cb]
    return out


# --------------------------------------------------------------------------- max pooling


def _windows(v: np.ndarray, axis: int, ax: _Axis, count: int) -> np.ndarray:
    """The ``count`` windows along ``axis`` as a view with their taps on a new last axis."""
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(v, ax.span, axis=axis)[..., :: ax.d]
    return _along(windows, axis, 0, count, ax.s)


def _strategy(length: int, ax: _Axis, count: int) -> str:
    """How to reduce windows along an axis: ``fold`` short windows tap by tap; read each window once
    (``windows``) when they hardly overlap; else ``double`` (log₂ k passes over the axis)."""
    if ax.k <= FOLD_TAPS:
        return "fold"
    return "windows" if count * ax.k <= 4 * length * math.ceil(math.log2(ax.k)) else "double"


def _max_along(v: np.ndarray, axis: int, ax: _Axis, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """The maximum of each of ``count`` windows along ``axis`` (windows start ``ax.s`` apart at 0), in
    ``out`` when given. ``np.maximum`` propagates NaN; which of two equal zeros it keeps is checked by the
    caller. Every path compares the taps in the same order (the first tap with the second, the result with
    the third…), so the bits do not depend on where the result is written."""
    k, s, d = ax.k, ax.s, ax.d
    how = _strategy(v.shape[axis], ax, count)
    if how == "windows":
        return np.max(_windows(v, axis, ax, count), axis=-1, out=out)
    if how == "fold":
        if k == 1:
            first = _along(v, axis, 0, count, s)
            return np.array(first) if out is None else _copied(out, first)
        best = np.maximum(_along(v, axis, 0, count, s), _along(v, axis, d, count, s), out=out)
        for tap in range(2, k):
            np.maximum(best, _along(v, axis, tap * d, count, s), out=best)
        return best
    span = 1  # doubling: m[i] is the maximum of taps i, i + d, …, i + (span − 1)·d
    while 2 * span <= k:
        n = v.shape[axis] - span * d
        v = np.maximum(_along(v, axis, 0, n), _along(v, axis, span * d, n))
        span *= 2
    if span < k:  # two overlapping spans cover the window
        return np.maximum(_along(v, axis, 0, count, s), _along(v, axis, (k - span) * d, count, s), out=out)
    first = _along(v, axis, 0, count, s)
    return np.array(first) if out is None else _copied(out, first)


def _copied(out: np.ndarray, value: np.ndarray) -> np.ndarray:
    out[...] = value
    return out


def _select_along(v: np.ndarray, at: np.ndarray, axis: int, ax: _Axis, count: int,
                  nan: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """ATen's winner of each window along ``axis``: values and their positions (``at``, broadcastable
    to ``v``). Scanning a window in order, a tap wins when ``val > best or isnan(val)``: the first
    maximum wins a tie, the last NaN wins. That rule is a maximum in a total order, so windows split
    into overlapping halves (doubling) pick the same winner as the scan."""

    def take(best, where, value, position):
        wins = value > best
        if nan:
            wins |= np.isnan(value)
        np.copyto(best, value, where=wins)
        np.copyto(where, position, where=wins)

    k, s, d = ax.k, ax.s, ax.d
    how = _strategy(v.shape[axis], ax, count)
    if how == "windows":
        windows = _windows(v, axis, ax, count)
        tap = np.argmax(windows, axis=-1)  # the first maximum, or the first NaN
        if nan:  # the last NaN instead
            last = k - 1 - np.argmax(windows[..., ::-1], axis=-1)
            first = np.take_along_axis(windows, tap[..., None], axis=-1)[..., 0]
            np.copyto(tap, last, where=np.isnan(first))
        best = np.take_along_axis(windows, tap[..., None], axis=-1)[..., 0]
        cell = np.arange(count, dtype=np.int64).reshape([-1 if i == axis else 1 for i in range(v.ndim)]) * s + tap * d
        return best, np.take_along_axis(np.broadcast_to(at, v.shape), cell, axis=axis)
    if how == "fold":
        best = np.array(_along(v, axis, 0, count, s))
        where = np.array(np.broadcast_to(_along(at, axis, 0, count, s), best.shape))
        for tap in range(1, k):
            take(best, where, _along(v, axis, tap * d, count, s), _along(at, axis, tap * d, count, s))
        return best, where
    at = np.broadcast_to(at, v.shape)
    span = 1
    while 2 * span <= k:
        n = v.shape[axis] - span * d
        best, where = np.array(_along(v, axis, 0, n)), np.array(_along(at, axis, 0, n))
        take(best, where, _along(v, axis, span * d, n), _along(at, axis, span * d, n))
        v, at = best, where
        span *= 2
    best, where = np.array(_along(v, axis, 0, count, s)), np.array(_along(at, axis, 0, count, s))
    if span < k:
        take(best, where, _along(v, axis, (k - span) * d, count, s), _along(at, axis, (k - span) * d, count, s))
    return best, where


def _max_band(x: np.ndarray, rows: _Axis, cols: _Axis, o0: int, o1: int, exact: bool, positions: bool,
              base: int = 0, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Output rows o0..o1−1 of a max pool over (B, H, W): the row maxima first (in chunks of input
    rows), then the maxima of those down each window's rows. ``exact`` replays ATen's rule (ties,
    NaN, positions); otherwise np.maximum gives the values (written into ``out`` when given)."""
    planes, width = x.shape[0], x.shape[2]
    a, b = rows.rows(o0, o1)
    c, e = cols.rows(0, cols.out)
    nan = exact and bool(np.isnan(np.max(_inside(x, rows, a, b, base), initial=-np.inf)))
    shape = (planes, b - a, cols.out)
    # per input row: each window's maximum along the row (padding rows stay −inf)
    padding_rows = a < 0 or b > rows.length
    row_best = np.full(shape, -np.inf, dtype=_F32) if exact or padding_rows else np.empty(shape, dtype=_F32)
    row_at = np.zeros(shape, dtype=np.int64) if exact else None
    inside = range(max(a, 0), max(min(b, rows.length), max(a, 0)))
    step = max(1, BAND_ELEMENTS // max(1, planes * (e - c)))
    col_at = np.arange(c, e, dtype=np.int64)[None, None, :]
    col_first = cols.first_inside(0, cols.out)[None, None, :] if exact and (c < 0 or e > width) else None
    for r in range(inside.start, inside.stop, step):
        r1 = min(r + step, inside.stop)
        chunk = _padded(x, (r, r1), (c, e), -np.inf, base, rows.length)
        if exact:
            best, where = _select_along(chunk, col_at, 2, cols, cols.out, nan)
            if col_first is not None:  # a window of −inf (or padding) keeps its first cell inside
                np.copyto(where, col_first, where=best == -np.inf)
            assert row_at is not None
            row_best[:, r - a : r1 - a], row_at[:, r - a : r1 - a] = best, where
        else:
            _max_along(chunk, 2, cols, cols.out, out=row_best[:, r - a : r1 - a])
    count = o1 - o0
    band_rows = _Axis(rows.length, rows.k, rows.s, 0, rows.d, count)
    if not exact:
        return _max_along(row_best, 1, band_rows, count, out=out), None
    row_at += (np.arange(a, b, dtype=np.int64) * width)[None, :, None]
    best, where = _select_along(row_best, row_at, 1, band_rows, count, nan)
    if a < 0 or b > rows.length or col_first is not None:
        first = rows.first_inside(o0, o1)[None, :, None] * width + cols.first_inside(0, cols.out)[None, None, :]
        np.copyto(where, first, where=best == -np.inf)
    return best, where if positions else None


@_quiet
def max_pool(x, *, nd, kernel_size, stride, padding, dilation, ceil_mode,
             return_indices: bool = True) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """``F.max_pool1d/2d/3d(..., return_indices=True)`` with ATen's rule: scanning a window in row-major
    order, a tap replaces the running maximum when ``val > max or isnan(val)`` — the first maximum wins
    a tie (−0 and +0 included), the last NaN wins, padding never wins, and a window of −inf keeps its
    first in-bounds cell. Indices are flat positions in each input plane; with ``return_indices``
    False they are not computed (None), and the values come from plain maxima unless a −0 could tie.
    """
    x = _f32(x)
    if nd == 3:
        return _max_pool_3d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    lead = x.shape[:-nd]
    rows, cols = _axes(x.shape, nd, kernel_size, stride, padding, dilation, ceil_mode)
    planes = _as_planes(x, nd)
    out_shape = lead + ((rows.out,) if nd == 2 else ()) + (cols.out,)
    y = np.empty((planes.shape[0], rows.out, cols.out), dtype=_F32)
    index = np.empty(y.shape, dtype=np.int64) if return_indices else None
    if y.size:
        per_band = _band_rows(planes.shape[0], rows.span, cols.span + (cols.out - 1) * cols.s, rows.s)
        per_band = _overlap_rows(per_band, planes.shape[0], rows, cols.out, 12 if return_indices else 4,
                                 max(BAND_ELEMENTS * 16, planes.nbytes))  # fmt: skip
        for o0 in range(0, rows.out, per_band):
            o1 = min(o0 + per_band, rows.out)
            # values only: written straight into the result (the bits do not depend on where they go)
            target = None if return_indices else y[:, o0:o1]
            best, where = _max_band(planes, rows, cols, o0, o1, return_indices, return_indices, out=target)
            if not return_indices and not best.all():
                # a zero in the result: np.maximum may have kept the wrong one of a −0/+0 tie
                if has_negative_zero(_inside(planes, rows, *rows.rows(o0, o1))):
                    best, _ = _max_band(planes, rows, cols, o0, o1, True, False)
            if best is not target:
                y[:, o0:o1] = best
            if index is not None and where is not None:
                index[:, o0:o1] = where
    return y.reshape(out_shape), None if index is None else index.reshape(out_shape)


def _max_pool_3d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """A 3-D max pool as a 2-D one over each depth slice, then the winners of those down each window's
    slices (ATen's rule splits the same way: the first slice holding the maximum, its first cell)."""
    lead, (depth, height, width) = x.shape[:-3], x.shape[-3:]
    planes = x.reshape(-1, height, width)
    exact = return_indices
    while True:
        best, where = max_pool(planes, nd=2, kernel_size=kernel_size[1:], stride=stride[1:], padding=padding[1:],
                               dilation=dilation[1:], ceil_mode=ceil_mode, return_indices=exact)  # fmt: skip
        d = _Axis(depth, kernel_size[0], stride[0], padding[0], dilation[0],
                  _pool_length(depth, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode))  # fmt: skip
        slices = best.reshape(-1, depth, best.shape[-2] * best.shape[-1])
        a, b = d.rows(0, d.out)
        values = np.full((slices.shape[0], b - a, slices.shape[2]), -np.inf, dtype=_F32)
        lo, hi = max(a, 0), min(b, depth)
        values[:, lo - a : hi - a] = slices[:, lo:hi]
        axis = _Axis(depth, d.k, d.s, 0, d.d, d.out)
        if not exact:
            out = _max_along(values, 1, axis, d.out)
            if out.all() or not has_negative_zero(x):
                return out.reshape(*lead, d.out, *best.shape[-2:]), None
            exact = True  # a −0 could tie with a +0: replay ATen's rule with positions
            continue
        at = np.zeros(values.shape, dtype=np.int64)
        at[:, lo - a : hi - a] = where.reshape(slices.shape)[:, lo:hi] + (np.arange(lo, hi) * height * width)[None, :, None]
        nan = bool(np.isnan(np.max(slices, initial=-np.inf))) if slices.size else False
        out, index = _select_along(values, at, 1, axis, d.out, nan)
        if a < 0 or b > depth:  # a window of −inf keeps its first in-bounds cell (ATen's adjusted starts)
            rows, cols = _axes((height, width), 2, kernel_size[1:], stride[1:], padding[1:], dilation[1:], ceil_mode)
            plane = rows.first_inside(0, rows.out)[:, None] * width + cols.first_inside(0, cols.out)[None, :]
            cell = (d.first_inside(0, d.out) * height * width)[None, :, None] + plane.reshape(1, 1, -1)
            np.copyto(index, cell, where=out == -np.inf)
        shape = (*lead, d.out, *best.shape[-2:])
        return out.reshape(shape), index.reshape(shape) if return_indices else None


# --------------------------------------------------------------------------- average pooling


def _window_sums(x: np.ndarray, rows: _Axis, cols: _Axis, o0: int, o1: int, base: int = 0) -> np.ndarray:
    """Float32 sums of the windows of output rows o0..o1−1, each from +0 in row-major tap order (as
    ATen's loop adds them; zero padding adds nothing). Short windows add tap by tap over the band;
    long ones are copied out as rows of taps and accumulated in one call, a block of windows at a time."""
    a, b = rows.rows(o0, o1)
    band = _padded(x, (a, b), cols.rows(0, cols.out), 0.0, base, rows.length)
    count = o1 - o0
    taps = rows.k * cols.k
    if taps <= ADD_TAPS:
        total = np.zeros((x.shape[0], count, cols.out), dtype=_F32)
        for i in range(rows.k):
            line = _along(band, 1, i * rows.d, count, rows.s)
            for j in range(cols.k):
                total += _along(line, 2, j * cols.d, cols.out, cols.s)
        return total
    from numpy.lib.stride_tricks import sliding_window_view

    planes = x.shape[0]
    windows = sliding_window_view(band, (rows.span, cols.span), axis=(1, 2))
    windows = windows[:, :: rows.s, :: cols.s, :: rows.d, :: cols.d][:, :count, : cols.out]
    total = np.empty((planes, count, cols.out), dtype=_F32)
    # a block of windows, a few kernel rows of each at a time, carrying the running sums
    kernel_rows = max(1, min(rows.k, BAND_ELEMENTS // (planes * cols.k)))
    per_block = max(1, BAND_ELEMENTS // (planes * kernel_rows * cols.k))
    width = min(cols.out, per_block)
    height = max(1, per_block // width)
    for r in range(0, count, height):
        for c in range(0, cols.out, width):
            block = windows[:, r : r + height, c : c + width]
            sums = np.zeros(block.shape[:3], dtype=_F32)
            for i in range(0, rows.k, kernel_rows):
                part = block[:, :, :, i : i + kernel_rows]
                run = np.empty((*block.shape[:3], 1 + part.shape[3] * cols.k), dtype=_F32)
                run[..., 0] = sums
                run[..., 1:].reshape(part.shape)[...] = part
                sums = np.add.accumulate(run, axis=-1)[..., -1]
            total[:, r : r + height, c : c + width] = sums
    return total + _F32(0)  # from +0: a sum of −0 cells is +0


# pairwise sums: the windows of a large kernel in O(log k) passes per axis instead of k additions each


def _sums_along(v: np.ndarray, axis: int, k: int, s: int, count: int) -> np.ndarray:
    """The sums of ``count`` windows of ``k`` consecutive entries along ``axis``, ``s`` apart from 0:
    sums of 2ʲ entries are built by doubling (each from two of the previous ones), and a window adds the
    ones its length's binary digits name. Only additions: inf and NaN spread as in a running sum."""
    total: np.ndarray | None = None
    offset, span = 0, 1
    while True:
        if k & span:
            part = _along(v, axis, offset, count, s)
            total = np.array(part) if total is None else np.add(total, part, out=total)
            offset += span
        if 2 * span > k:
            assert total is not None
            return total
        n = v.shape[axis] - span
        v = _along(v, axis, 0, n) + _along(v, axis, span, n)
        span *= 2


def _use_pairwise(x: np.ndarray, shape: tuple[int, ...], axes: list[_Axis]) -> bool:
    """Sum pairwise when ATen's order would cost far more and no running sum can overflow (a sum near
    float32's limit can be inf in one order and finite in another: those stay in ATen's order)."""
    lengths, kernel, padding = (tuple(getattr(ax, a) for ax in axes) for a in ("length", "k", "p"))
    if not sums_pairwise(shape[0], lengths, kernel, padding, tuple(ax.out for ax in axes)):
        return False
    taps = math.prod(ax.k for ax in axes)
    finite = x[np.isfinite(x)] if not np.isfinite(np.max(x, initial=0.0)) else x
    return float(np.max(np.abs(finite), initial=0.0)) * taps < float(np.finfo(_F32).max) / 2


def _pairwise_sums(planes: np.ndarray, axes: list[_Axis]) -> np.ndarray:
    """Each window's sum over (B, *spatial) (zero padding adds nothing): one axis at a time, the last
    first, float64 pairwise sums rounded to float32 — within a few float32 roundings of the exact sum, as
    ATen's running float32 sum is (the two differ only by rounding). Each pass works on blocks of
    about BAND_ELEMENTS, so the extra memory is the first pass's result and a block."""
    v = planes
    for axis in range(v.ndim - 1, 0, -1):
        ax = axes[axis - 1]
        right = max(0, (ax.out - 1) * ax.s + ax.k - ax.length - ax.p)
        other = 1 if axis != 1 else 2  # blocks split along another axis, whose entries are independent
        out_shape = list(v.shape)
        out_shape[axis] = ax.out
        result = np.empty(out_shape, dtype=_F32)
        width = math.prod(v.shape) // max(1, v.shape[other]) * 2  # float64 elements per entry of ``other``
        step = max(1, BAND_ELEMENTS // max(1, width))
        for b0 in range(0, v.shape[other], step):
            block = _along(v, other, b0, min(step, v.shape[other] - b0)).astype(np.float64)
            if ax.p or right:
                pads = [(0, 0)] * v.ndim
                pads[axis] = (ax.p, right)
                block = np.pad(block, pads)
            sums = _sums_along(block, axis, ax.k, ax.s, ax.out)
            index = [slice(None)] * v.ndim
            index[other] = slice(b0, b0 + sums.shape[other])
            result[tuple(index)] = sums
        v = result
    return v + _F32(0)  # from +0: a sum of −0 cells is +0


@_quiet
def avg_pool(x, *, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) -> np.ndarray:
    """``F.avg_pool1d/2d/3d``: float32 sums in ATen's order (zero padding adds nothing), then ATen's divisor.

    The divisor counts padding but not the ceil overhang past L + p (count_include_pad), or only the
    in-bounds cells, or is ``divisor_override`` (2-D and 3-D only, as in PyTorch). Large windows whose
    sums in that order would take far longer are summed pairwise (see :func:`_pairwise_sums`)."""
    x = _f32(x)
    if nd == 3:
        return _avg_pool_3d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    rows, cols = _axes(x.shape, nd, kernel_size, stride, padding, (1,) * nd, ceil_mode)
    planes = _as_planes(x, nd)
    total = np.empty((planes.shape[0], rows.out, cols.out), dtype=_F32)
    if total.size and _use_pairwise(planes, planes.shape, [rows, cols]):
        total = _pairwise_sums(planes, [rows, cols])
    elif total.size:
        per_band = _band_rows(planes.shape[0], rows.span, cols.span + (cols.out - 1) * cols.s, rows.s)
        for o0 in range(0, rows.out, per_band):
            o1 = min(o0 + per_band, rows.out)
            total[:, o0:o1] = _window_sums(planes, rows, cols, o0, o1)
    divisor, empty = _divisor([rows, cols], count_include_pad, divisor_override if nd >= 2 else None)
    _divide(total, divisor, empty)
    return total.reshape(x.shape[:-nd] + ((rows.out,) if nd == 2 else ()) + (cols.out,))


def _avg_pool_3d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) -> np.ndarray:
    """``F.avg_pool3d``: each window's float32 sum from +0 in ATen's (depth, row, column) order — a few taps
    added one by one, larger windows accumulated an output slice at a time — then ATen's divisor."""
    import itertools

    from numpy.lib.stride_tricks import sliding_window_view

    axes = [_Axis(n, k, s, p, 1, _pool_length(n, k, s, p, 1, ceil_mode))
            for n, k, s, p in zip(x.shape[-3:], kernel_size, stride, padding)]  # fmt: skip
    lead = x.shape[:-3]
    planes = x.reshape(-1, *x.shape[-3:])
    pads = [(ax.p, max(0, (ax.out - 1) * ax.s + ax.k - ax.length - ax.p)) for ax in axes]
    xp = np.pad(planes, [(0, 0), *pads]) if any(left or right for left, right in pads) else planes
    outs = tuple(ax.out for ax in axes)
    total = np.zeros((planes.shape[0], *outs), dtype=_F32)
    taps = math.prod(kernel_size)
    if total.size and _use_pairwise(planes, planes.shape, axes):
        total = _pairwise_sums(planes, axes)
    elif total.size and taps <= ADD_TAPS:
        for tap in itertools.product(*(range(k) for k in kernel_size)):
            total += xp[(slice(None), *(slice(t, t + (ax.out - 1) * ax.s + 1, ax.s) for t, ax in zip(tap, axes)))]
    elif total.size:
        windows = sliding_window_view(xp, kernel_size, axis=(1, 2, 3))[:, :: stride[0], :: stride[1], :: stride[2]]
        windows = windows[:, : outs[0], : outs[1], : outs[2]]
        chunk = max(1, min(kernel_size[0], BAND_ELEMENTS // max(1, planes.shape[0] * outs[1] * outs[2] * taps // kernel_size[0])))
        for o in range(outs[0]):
            sums = np.zeros((planes.shape[0], outs[1], outs[2]), dtype=_F32)
            for i in range(0, kernel_size[0], chunk):
                part = windows[:, o, :, :, i : i + chunk]
                run = np.empty((*sums.shape, 1 + part[0, 0, 0].size), dtype=_F32)
                run[..., 0] = sums
                run[..., 1:].reshape(part.shape)[...] = part
                sums = np.add.accumulate(run, axis=-1)[..., -1]
            total[:, o] = sums
    _divide(total, *_divisor(axes, count_include_pad, divisor_override))
    return total.reshape(*lead, *outs)


def _divisor(axes: list[_Axis], count_include_pad: bool, divisor_override) -> tuple[np.ndarray, np.ndarray]:
    """ATen's divisor for each output position (over the axes, float32) and the windows with no cell inside."""
    sizes, counts = [], []
    for ax in axes:
        start = np.arange(ax.out, dtype=np.int64) * ax.s - ax.p
        end = np.minimum(start + ax.k, ax.length + ax.p)
        sizes.append(end - start)
        counts.append(np.minimum(end, ax.length) - np.maximum(start, 0))
    count = _outer(np.multiply, counts)
    if divisor_override is not None:
        divisor = np.full(count.shape, divisor_override, dtype=np.int64)
    else:
        divisor = _outer(np.multiply, sizes) if count_include_pad else count
    return divisor.astype(_F32), _outer(np.logical_or, [c <= 0 for c in counts])


def _divide(total: np.ndarray, divisor: np.ndarray, empty: np.ndarray) -> None:
    """In place: ATen adds the quotient to a zeroed output (−0 becomes +0) and skips windows with no cell."""
    total /= divisor
    total += _F32(0)
    total[..., empty] = 0


@_quiet
def pool_rows(x, *, base, height, o0, o1, mode, kernel_size, stride, padding, dilation=(1, 1), ceil_mode,
              count_include_pad=True, divisor_override=None, out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Output rows o0..o1−1 of a 2-D ``max_pool`` (values) or ``avg_pool`` over planes of ``height``
    rows, from ``x`` (..., rows, W) holding the input rows from ``base`` on (every row those windows
    read): the same numbers, to the bit, as the whole pool — for a caller that has the input in bands.
    ``out``: where to write them (float32, of the result's shape); it is returned."""
    x = _f32(x)
    lead = x.shape[:-2]
    shape = (*lead, height, x.shape[-1])
    planes = x.reshape(math.prod(lead), *x.shape[-2:])
    if mode == "max":
        rows, cols = _axes(shape, 2, kernel_size, stride, padding, dilation, ceil_mode)
        target = None
        if out is not None:  # the planes of ``out`` as one (B, rows, W) view, when they are one
            target = out.reshape(planes.shape[0], o1 - o0, cols.out)
            target = target if np.may_share_memory(target, out) else None
        best, _ = _max_band(planes, rows, cols, o0, o1, False, False, base, out=target)
        if not best.all() and has_negative_zero(_inside(planes, rows, *rows.rows(o0, o1), base)):
            best, _ = _max_band(planes, rows, cols, o0, o1, True, False, base)
            target = None
        result = best.reshape(*lead, o1 - o0, cols.out)
    else:
        rows, cols = _axes(shape, 2, kernel_size, stride, padding, (1, 1), ceil_mode)
        total = _window_sums(planes, rows, cols, o0, o1, base)
        divisor, empty = _divisor([rows, cols], count_include_pad, divisor_override)
        _divide(total, divisor[o0:o1], empty[o0:o1])
        result, target = total.reshape(*lead, o1 - o0, cols.out), None
    if out is None:
        return result
    if target is None:
        out[...] = result
    return out


# --------------------------------------------------------------------------- adaptive pooling and unpooling


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
        # the last writer of each position: the largest order number written there (linear, no sort)
        last = np.full(y.size, -1, dtype=np.int64)
        np.maximum.at(last, key, np.arange(key.size, dtype=np.int64))
        written = last >= 0
        y.reshape(-1)[written] = x.reshape(-1)[last[written]]
    return y.reshape(*lead, *output_size)
