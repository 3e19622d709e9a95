"""Convolution and transposed convolution (``F.conv1d/2d/3d``, ``F.conv_transpose1d/2d/3d``) through BLAS.

>>> import numpy as np
>>> x = np.array([[[0, 1, 2, 3]]], dtype=np.float32)
>>> conv(x, np.array([[[1, -1]]], np.float32), None, nd=1, stride=(1,), pads=((0, 0),), dilation=(1,),
...      groups=1, padding_mode="zeros").tolist()
[[[-1.0, -1.0, -1.0]]]
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _offset_view, _pad, _quiet
from cnnops.model.arithmetic import conv_length

_IM2COL_BUDGET = 1 << 22  # float32 elements per im2col block (16 MB): bounds the conv's extra memory


def _batched(x: np.ndarray, nd: int) -> tuple[np.ndarray, bool]:
    """(N, C, *spatial) and whether a batch dim was added."""
    x = _f32(x)
    return (x[None], True) if x.ndim == nd + 1 else (x, False)


_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@_quiet
def conv(x, weight, bias, *, nd, stride, pads, dilation, groups, padding_mode) -> np.ndarray:
    """Cross-correlation (no kernel flip), as ``F.conv1d/2d/3d`` after ``F.pad`` with ``padding_mode``.

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
            cols = windows[(Ellipsis, slice(r0, r1)) + (slice(None),) * (nd - 1)]
            cols = cols.reshape(n, groups, cg * math.prod(kernel), (r1 - r0) * rest)
            block = np.matmul(w, cols)  # (N, G, Cout/G, positions)
            y[:, :, r0:r1] = block.reshape(n, out_c, r1 - r0, *outs[1:])
    if bias is not None:
        y += _f32(bias).reshape((-1,) + (1,) * nd)
    return y[0] if added else y


@_quiet
def conv_transpose(x, weight, bias, *, nd, stride, padding, output_padding, groups, dilation) -> np.ndarray:
    """``F.conv_transpose1d/2d/3d``: one matmul to columns, then each kernel tap scatter-added (col2im)."""
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
