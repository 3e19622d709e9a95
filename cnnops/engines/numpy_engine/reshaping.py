"""Layers that move values: ``F.pad`` (constant, reflect, replicate, circular, negative amounts crop),
pixel shuffle and unshuffle, channel shuffle. Exact: values are copied, never computed."""

from __future__ import annotations

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32


def pad(x, *, padding: tuple[int, ...], mode: str, value: float = 0.0) -> np.ndarray:
    """``F.pad(x, padding, mode, value)``; ``padding`` in F.pad's order (last dimension first).

    Negative amounts crop. PyTorch crops first for constant and circular padding (circular then
    wraps what is left) and pads first for reflect and replicate, which copy from the original edges."""
    x = _f32(x)
    nd = len(padding) // 2
    pairs = [(padding[2 * i], padding[2 * i + 1]) for i in reversed(range(nd))]
    lead = x.ndim - nd
    grow = [(0, 0)] * lead + [(max(b, 0), max(a, 0)) for b, a in pairs]

    def crop(y: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
        index = tuple(slice(max(-b, 0), y.shape[lead + i] - max(-a, 0)) for i, (b, a) in enumerate(offsets))
        return y[(Ellipsis,) + index] if index else y

    if mode in ("reflect", "replicate"):
        y = crop(np.pad(x, grow, mode="reflect" if mode == "reflect" else "edge"), pairs)
    elif mode == "constant":
        y = np.pad(crop(x, pairs), grow, mode="constant", constant_values=_F32(value))
    else:
        y = np.pad(crop(x, pairs), grow, mode="wrap")
    return np.ascontiguousarray(y, dtype=_F32)


def pixel_shuffle(x, *, factor: int, unshuffle: bool = False) -> np.ndarray:
    """``F.pixel_shuffle`` (…, C·r², H, W) → (…, C, H·r, W·r), or ``F.pixel_unshuffle``, the reverse."""
    x = _f32(x)
    lead, (c, h, w), r = x.shape[:-3], x.shape[-3:], factor
    k = len(lead)
    if unshuffle:
        if x.size == 0:
            return x.copy()  # PyTorch hands back an empty input as it is
        y = x.reshape(*lead, c, h // r, r, w // r, r)
        y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
        return np.ascontiguousarray(y).reshape(*lead, c * r * r, h // r, w // r)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return np.ascontiguousarray(y).reshape(*lead, c // (r * r), h * r, w * r)


def channel_shuffle(x, *, groups: int) -> np.ndarray:
    """``F.channel_shuffle``: channels (dim 1) read as a groups × C/groups grid, transposed."""
    x = _f32(x)
    n, c = x.shape[:2]
    y = x.reshape(n, groups, c // groups, *x.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(y).reshape(x.shape)
