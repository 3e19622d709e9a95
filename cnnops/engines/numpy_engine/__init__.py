"""The NumPy engine: the torch engine's functions with PyTorch's CPU semantics, without importing torch.

Inputs and outputs are NumPy arrays (float32; indices int64). Loops run over kernel offsets, groups
or row blocks, never over pixels. Where PyTorch's CPU kernel is a plain sequential loop (max and
average pooling, adaptive pooling, unpooling, the default initialisation) the result is the same to
the bit: same order of float32 additions, same tie and NaN rules. Convolutions, linear layers and
the smooth activations go through BLAS or float64 and agree to float32 rounding.

>>> x = np.array([[[1, 3, 3, 2, 2]]], dtype=np.float32)
>>> y, idx = max_pool(x, nd=1, kernel_size=(2,), stride=(1,), padding=(0,), dilation=(1,), ceil_mode=False)
>>> y.tolist(), idx.tolist()
([[[3.0, 3.0, 3.0, 2.0]]], [[[1, 1, 2, 3]]])
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnops.model.arithmetic import adaptive_bins, conv_length, pool_length

NAME = "numpy"

_F32 = np.float32
_IM2COL_BUDGET = 1 << 22  # float32 elements per im2col block (16 MB): bounds the conv's extra memory


# ---------------------------------------------------------------- default initialisation


def _mt19937_key(seed: int) -> np.ndarray:
    """Knuth's init_genrand, as ``torch.Generator().manual_seed(seed)`` runs it (low 32 bits of the seed)."""
    key = np.empty(624, dtype=np.uint32)
    s = seed & 0xFFFFFFFF
    key[0] = s
    for i in range(1, 624):
        s = (1812433253 * (s ^ (s >> 30)) + i) & 0xFFFFFFFF
        key[i] = s
    return key


def _torch_fuses_multiply_add() -> bool:
    """Whether PyTorch's CPU kernels on this machine evaluate ``x * span + from`` as one fused
    multiply-add. The AVX2 and AVX-512 builds of its kernels do (one rounding); the baseline x86
    build (CPUs without AVX2, or ``ATEN_CPU_CAPABILITY=default``) multiplies and adds separately."""
    import os
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i386", "i686"):
        return True  # every aarch64 CPU has FMA and its builds contract it
    if os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower() == "default":
        return False
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
    return bool(features.get("AVX2") and features.get("FMA3"))


class Random:
    """PyTorch's default initialisation stream without torch: ``torch.Generator().manual_seed(seed)``
    followed by ``tensor.uniform_(-bound, bound, generator=g)`` on CPU float32, number for number.

    PyTorch draws one 32-bit MT19937 word per float32 element (serially, whatever the size), keeps its
    low 24 bits as ``u = k / 2**24`` and returns ``u * (to - from) + from`` in float32, mapping a result
    equal to ``to`` back to ``from``.

    >>> Random(0).uniform((3,), 1.0).tolist()  # torch.empty(3).uniform_(-1, 1, generator=...manual_seed(0))
    [-0.007486820220947266, 0.5364435911178589, -0.8230451345443726]
    """

    fused = _torch_fuses_multiply_add()

    def __init__(self, seed: int):
        self.bits = np.random.MT19937()
        self.bits.state = {"bit_generator": "MT19937", "state": {"key": _mt19937_key(int(seed)), "pos": 624}}

    def uniform(self, shape: tuple[int, ...], bound: float) -> np.ndarray:
        out = np.empty(math.prod(shape), dtype=_F32)
        low, high = _F32(-bound), _F32(bound)
        span = high - low
        for start in range(0, out.size, 1 << 17):  # blocks keep the uint64 words small
            y = out[start : start + (1 << 17)]
            words = self.bits.random_raw(y.size)
            y[...] = np.bitwise_and(words, 0xFFFFFF, out=words)
            if self.fused:
                # u·span + low = high·(2u − 1) exactly, and 2u − 1 = k·2⁻²³ − 1 is a float32:
                # one correctly rounded float32 product is exactly the fused multiply-add
                y *= _F32(2.0**-23)
                y -= _F32(1)
                y *= high
            else:
                y *= _F32(2.0**-24)
                y *= span
                y += low
            y[y == high] = low
        return out.reshape(shape)


# ---------------------------------------------------------------- helpers


def _quiet(op):
    """IEEE arithmetic without RuntimeWarnings (inf − inf is NaN, as in PyTorch, not a warning)."""

    @functools.wraps(op)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return op(*args, **kwargs)

    return quiet


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=_F32)


def _batched(x: np.ndarray, nd: int) -> tuple[np.ndarray, bool]:
    """(N, C, *spatial) and whether a batch dim was added."""
    x = _f32(x)
    return (x[None], True) if x.ndim == nd + 1 else (x, False)


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


def _offset_view(xp: np.ndarray, offsets, steps, lengths) -> np.ndarray:
    """``xp[..., o : o + (n-1)·s + 1 : s]`` on each trailing dim: the inputs one kernel tap sees."""
    nd = len(offsets)
    index = tuple(slice(o, o + (n - 1) * s + 1, s) for o, s, n in zip(offsets, steps, lengths))
    return xp[(Ellipsis,) + index] if nd else xp


def _pad(x: np.ndarray, pads: list[tuple[int, int]], **how) -> np.ndarray:
    """np.pad over the last dims; a negative amount crops, as torch's F.pad does."""
    if not any(left or right for left, right in pads):
        return x
    lead = x.ndim - len(pads)
    if any(left < 0 or right < 0 for left, right in pads):
        crop = tuple(slice(max(-left, 0), x.shape[lead + i] - max(-right, 0)) for i, (left, right) in enumerate(pads))
        x = x[(Ellipsis,) + crop]
        pads = [(max(left, 0), max(right, 0)) for left, right in pads]
    return np.pad(x, [(0, 0)] * lead + list(pads), **how)


# ---------------------------------------------------------------- convolution


_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@_quiet
def conv(x, weight, bias, *, nd, stride, pads, dilation, groups, padding_mode) -> np.ndarray:
    """Cross-correlation (no kernel flip), as ``F.conv1d``/``F.conv2d`` after ``F.pad`` with ``padding_mode``.

    ``pads``: (left, right) per spatial dim. im2col in row blocks and one batched matmul per block."""
    x, added = _batched(x, nd)
    weight = _f32(weight)
    # torch's reflect/replicate/circular pads are numpy's reflect (edge not repeated)/edge/wrap
    x = _pad(x, [tuple(p) for p in pads], mode=_PAD_MODES[padding_mode])
    n, c = x.shape[:2]
    out_c, cg = weight.shape[:2]
    kernel = weight.shape[2:]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    outs = [conv_length(length, k, s, 0, d).result for length, k, s, d in zip(x.shape[2:], kernel, stride, dilation)]
    y = np.empty((n, out_c, *outs), dtype=_F32)
    if y.size:
        # (N, C, *outs, *kernel) windows, then (N, G, Cg·Πk, positions) columns
        windows = sliding_window_view(x, spans, axis=tuple(range(2, 2 + nd)))
        windows = windows[(Ellipsis,) + tuple(slice(None, None, s) for s in stride)
                          + tuple(slice(None, None, d) for d in dilation)]  # fmt: skip
        windows = windows[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]
        order = (0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
        windows = windows.transpose(order)  # (N, C, *kernel, *outs)
        w = weight.reshape(groups, out_c // groups, cg * math.prod(kernel))
        rest = math.prod(outs[1:])
        rows = max(1, _IM2COL_BUDGET // max(1, n * c * math.prod(kernel) * rest))
        for r0 in range(0, outs[0], rows):
            r1 = min(outs[0], r0 + rows)
            cols = windows[..., r0:r1, :] if nd == 2 else windows[..., r0:r1]
            cols = cols.reshape(n, groups, cg * math.prod(kernel), (r1 - r0) * rest)
            block = np.matmul(w, cols)  # (N, G, Cout/G, positions)
            y[:, :, r0:r1] = block.reshape(n, out_c, r1 - r0, *outs[1:])
    if bias is not None:
        y += _f32(bias).reshape((-1,) + (1,) * nd)
    return y[0] if added else y


@_quiet
def conv_transpose(x, weight, bias, *, nd, stride, padding, output_padding, groups, dilation) -> np.ndarray:
    """``F.conv_transpose1d/2d``: one matmul to columns, then each kernel tap scatter-added (col2im)."""
    x, added = _batched(x, nd)
    weight = _f32(weight)
    n, c = x.shape[:2]
    cg, og = weight.shape[0] // groups, weight.shape[1]
    kernel = weight.shape[2:]
    lengths = x.shape[2:]
    full = [(length - 1) * s + d * (k - 1) + 1 + op
            for length, k, s, d, op in zip(lengths, kernel, stride, dilation, output_padding)]  # fmt: skip
    taps = math.prod(kernel)
    # (G, Og·taps, Cg) @ (N, G, Cg, positions) → (N, G, Og·taps, positions)
    w = weight.reshape(groups, cg, og * taps).transpose(0, 2, 1)
    cols = np.matmul(w, x.reshape(n, groups, cg, math.prod(lengths)))
    cols = cols.reshape(n, groups * og, *kernel, *lengths)
    y = np.zeros((n, groups * og, *full), dtype=_F32)
    for tap in itertools.product(*(range(k) for k in kernel)):
        target = _offset_view(y, [t * d for t, d in zip(tap, dilation)], stride, lengths)
        target += cols[(slice(None), slice(None)) + tap]
    y = y[(Ellipsis,) + tuple(slice(p, f - p) for p, f in zip(padding, full))]
    if bias is not None:
        y = y + _f32(bias).reshape((-1,) + (1,) * nd)
    y = np.ascontiguousarray(y, dtype=_F32)
    return y[0] if added else y


# ---------------------------------------------------------------- pooling


@_quiet
def max_pool(x, *, nd, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[np.ndarray, np.ndarray]:
    """``F.max_pool1d/2d(..., return_indices=True)``, replaying ATen's loop one kernel tap at a time.

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
    """``F.avg_pool1d/2d``: float32 sums in ATen's order (zero padding adds nothing), then ATen's divisor.

    The divisor counts padding but not the ceil overhang past L + p (count_include_pad), or only the
    in-bounds cells, or is ``divisor_override`` (2-D only, as in PyTorch)."""
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
    if divisor_override is not None and nd == 2:
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
    """``F.adaptive_avg_pool1d/2d``. PyTorch computes a 1(×1) output as ``mean`` over the plane (any
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
    """``F.adaptive_max_pool1d/2d(..., return_indices=True)`` with max pooling's tie and NaN rules."""
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
    """``F.max_unpool1d/2d``: zeros with each value written at its index. A position written twice
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


# ---------------------------------------------------------------- dense, normalisation


@_quiet
def linear(x, weight, bias) -> np.ndarray:
    """``x @ weight.T + bias`` in float32 (BLAS sgemm)."""
    y = np.matmul(_f32(x), _f32(weight).T)
    if bias is not None:
        y = y + _f32(bias)
    return np.ascontiguousarray(y, dtype=_F32)


@_quiet
def batch_norm(x, *, eps, batch_stats=False) -> np.ndarray:
    """Evaluation mode with fresh running statistics (mean 0, variance 1) and affine 1, 0: ATen's
    ``x · (1/√(1 + eps)) + 0`` in float32 (so −0 becomes +0, as in PyTorch). ``batch_stats``
    (track_running_stats=False): normalise with the batch's own mean and biased variance per channel."""
    x = _f32(x)
    if batch_stats:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean = x.astype(np.float64).mean(axis=axes, keepdims=True)
        var = x.astype(np.float64).var(axis=axes, keepdims=True)
        return ((x - mean) / np.sqrt(var + eps)).astype(_F32) + _F32(0)
    scale = _F32(1) / np.sqrt(_F32(1) + _F32(eps))
    return x * scale + _F32(0)


# ---------------------------------------------------------------- activations


# Numerical Recipes' erfcc: a Chebyshev fit of erfc with relative error below 1.2e-7 for every
# z ≥ 0 (checked against math.erfc in the tests), tails included: float32 accuracy, no series
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
         0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)  # fmt: skip


def _erfc_nonneg(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z ≥ 0 (float64, relative error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC[-1])
    for c in _ERFC[-2::-1]:
        poly *= t
        poly += c
    return t * np.exp(poly - z * z)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = ½·erfc(−x/√2), computed without cancellation on both tails."""
    z = np.abs(x) / math.sqrt(2.0)
    upper = 0.5 * _erfc_nonneg(np.nan_to_num(z, nan=0.0))
    return np.where(np.isnan(x), np.nan, np.where(x < 0, upper, 1.0 - upper))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softmax_dim(ndim: int, dim: int | None) -> int:
    """torch.nn.Softmax(dim=None): dim 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1


@_quiet
def activation(name: str, x: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """The element-wise activations and (Log)Softmax. Piecewise-linear ones (ReLU, ReLU6, LeakyReLU,
    Hardswish) follow ATen's float32 expressions exactly; the smooth ones are computed in float64."""
    x = _f32(x)
    if name == "ReLU":
        # ATen keeps −0 and NaN; np.maximum (4× faster than np.where) turns −0 into +0
        if np.any(x.view(np.uint32) == 0x80000000):
            return np.where(x < 0, _F32(0), x)
        return np.maximum(x, _F32(0))
    if name == "ReLU6":
        return np.where(x < 0, _F32(0), np.where(x > 6, _F32(6), x))
    if name == "LeakyReLU":
        return np.where(x > 0, x, x * _F32(options.get("negative_slope", 0.01)))
    if name == "Hardswish":
        return x * np.clip(x + _F32(3), _F32(0), _F32(6)) / _F32(6)
    if name in ("Softmax", "LogSoftmax"):
        y = _softmax(x.astype(np.float64), _softmax_dim(x.ndim, options.get("dim")), log=name == "LogSoftmax")
        return y.astype(_F32)
    if name == "GELU" and options.get("approximate", "none") != "tanh":
        name = "GELU-scalar" if x.size == 1 else "GELU-vector"
    formula = _SMOOTH.get(name)
    if formula is None:  # pragma: no cover - the parser only builds known activations
        from cnnops.errors import LayerError

        raise LayerError(f"the numpy engine has no activation {name}")
    flat, y = x.reshape(-1), np.empty(x.shape, dtype=_F32)
    for start in range(0, flat.size, 1 << 15):  # float64 temporaries that stay in cache
        block = flat[start : start + (1 << 15)]
        y.reshape(-1)[start : start + block.size] = formula(block.astype(np.float64), block, options)
    return y


def _gelu_vector(v, x, options):
    # ATen's vectorised loop (any contiguous tensor of 2+ elements) forms x·(1 + erf(x/√2)) in
    # float32 before halving it: it overflows above FLT_MAX/2 and gives NaN at +inf
    y = (v * (2.0 * _normal_cdf(v))).astype(_F32).astype(np.float64) * 0.5
    y[v == np.inf] = np.nan
    return y


def _softplus(v, x, options):
    beta, threshold = options.get("beta", 1.0), options.get("threshold", 20.0)
    scaled = x * _F32(beta)  # ATen compares the float32 product with the threshold
    return np.where(scaled > _F32(threshold), v, np.logaddexp(0.0, v * beta) / beta)


_GELU_TANH_SCALE = math.sqrt(2.0 / math.pi)

# float64 formulas over (v = x as float64, x float32, options), applied block by block
_SMOOTH = {
    "ELU": lambda v, x, o: np.where(v > 0, v, o.get("alpha", 1.0) * np.expm1(v)),
    "GELU": lambda v, x, o: 0.5 * v * (1.0 + np.tanh(_GELU_TANH_SCALE * (v + 0.044715 * v**3))),
    "GELU-scalar": lambda v, x, o: v * _normal_cdf(v),  # ATen's scalar loop (a single element)
    "GELU-vector": _gelu_vector,
    "SiLU": lambda v, x, o: v * _sigmoid(v),
    "Mish": lambda v, x, o: v * np.tanh(np.logaddexp(0.0, v)),
    "Sigmoid": lambda v, x, o: _sigmoid(v),
    "Tanh": lambda v, x, o: np.tanh(v),
    "Softplus": _softplus,
}


def _softmax(v: np.ndarray, dim: int, *, log: bool) -> np.ndarray:
    if v.ndim == 0:
        return _softmax(v.reshape(1), 0, log=log).reshape(())
    if v.size == 0:
        return v
    shifted = v - v.max(axis=dim, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=dim, keepdims=True)
    if log:
        shifted -= np.log(total)
        return shifted
    e /= total
    return e
