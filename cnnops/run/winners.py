"""Max-pool winners for the cells a table shows, without the pool's full indices.

A table of a large tensor shows a few rows and columns of a few planes. Whether such a cell was picked
by a max pool depends only on the windows that cover it, so those windows' winners are found here —
each window's cells in row-major order, ATen's rule (the last NaN, else the first maximum; padding
never wins) — and nothing else is computed.

>>> import numpy as np
>>> from cnnops.spec import parse_stage
>>> x = np.array([[[1, 5, 2, 0], [3, 4, 8, 6]]], np.float32)
>>> mask = shown_winners(x, parse_stage("MaxPool2d(2)"), [0, 1, 2, 3, 4, 5, 6, 7])
>>> mask.astype(int).tolist()
[[[0, 1, 0, 0], [0, 0, 1, 0]]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def shown_winners(x: np.ndarray, stage: Any, cells: Iterable[int]) -> np.ndarray:
    """A bool mask of ``x``'s shape, true at those of ``cells`` (flat indices into ``x``) that a max
    pool (``stage``, applied to ``x``) picked; every other cell false."""
    import numpy as np

    from cnnops.model.arithmetic import pool_length

    nd = stage.nd
    spatial = x.shape[-nd:]
    plane = math.prod(spatial)
    flat = np.ascontiguousarray(x).reshape(-1, plane) if plane else np.zeros((0, 0), x.dtype)
    axes = [(n, k, s, p, d, pool_length(n, k, s, p, d, stage.ceil_mode).result)
            for n, k, s, p, d in zip(spatial, stage.kernel_size, stage.stride, stage.padding, stage.dilation)]  # fmt: skip
    mask = np.zeros(x.shape, dtype=bool)
    out = mask.reshape(-1)
    found: dict[tuple[int, ...], int] = {}
    for cell in cells:
        if not 0 <= cell < x.size or plane == 0:
            continue
        where, position = divmod(int(cell), plane)
        coords = np.unravel_index(position, spatial)
        covering = [_covering(int(c), n, k, s, p, d, o) for c, (n, k, s, p, d, o) in zip(coords, axes)]
        for window in _product(covering):
            key = (where, *window)
            if key not in found:
                found[key] = _winner(flat[where], spatial, axes, window)
            if found[key] == position:
                out[cell] = True
                break
    return mask


def _covering(c: int, n: int, k: int, s: int, p: int, d: int, outs: int) -> list[int]:
    """The output positions along one axis whose window reads coordinate ``c``."""
    first = max(0, -(-(c + p - d * (k - 1)) // s))
    return [o for o in range(first, min(outs, (c + p) // s + 1)) if (c + p - o * s) % d == 0 and (c + p - o * s) // d < k]


def _product(lists: list[list[int]]) -> Iterable[tuple[int, ...]]:
    import itertools

    return itertools.product(*lists)


def _winner(values: np.ndarray, spatial: tuple[int, ...], axes: list[Any], window: tuple[int, ...]) -> int:
    """The flat in-plane position ATen's max pool picks for one window: the last NaN if there is one,
    else the first maximum of its in-bounds cells in row-major order (-1: no cell inside)."""
    import numpy as np

    per_axis = []
    for o, (n, k, s, p, d, _) in zip(window, axes):
        taps = o * s - p + d * np.arange(k)
        per_axis.append(taps[(taps >= 0) & (taps < n)])
    if any(t.size == 0 for t in per_axis):
        return -1
    grid = np.ix_(*per_axis)
    cells = values.reshape(spatial)[grid].reshape(-1)
    positions = np.ravel_multi_index(np.meshgrid(*per_axis, indexing="ij"), spatial).reshape(-1)
    nan = np.isnan(cells)
    if nan.any():
        return int(positions[len(cells) - 1 - int(np.argmax(nan[::-1]))])
    return int(positions[int(np.argmax(cells == cells.max()))])
