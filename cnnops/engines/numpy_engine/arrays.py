"""Array helpers the engine's modules share: float32 inputs, quiet IEEE arithmetic, padding, strided views."""

from __future__ import annotations

import functools

import numpy as np

_F32 = np.float32


def _quiet(op):
    """IEEE arithmetic without RuntimeWarnings (inf − inf is NaN, as in PyTorch, not a warning)."""

    @functools.wraps(op)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return op(*args, **kwargs)

    return quiet


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=_F32)


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
