"""The tensors of a run as the pictures see them: which stage made each, its layout, its batch items and channel planes.

>>> check_batch_item(0, 2)
>>> check_batch_item(2, 2)
Traceback (most recent call last):
...
cnnops.errors.InputError: batch item 2 is out of range: the batch has 2 items — use batch_item 0 to 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnops.errors import InputError, setting
from cnnops.records import record

if TYPE_CHECKING:
    import numpy as np

    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import RunResult


@record
class MapTensor:
    """One tensor of a run as the pictures see it: which stage made it and how its planes lie."""

    position: int  # 0 for the input, else the stage index
    name: str  # lower-case layer name, or "input"
    title: str  # "01 Conv2d(1, 4, 4)"
    data: np.ndarray  # None in a layout made from the shapes alone (:func:`map_layout`)
    nd: int  # spatial dimensions (0: features, no spatial layout)
    kind: str  # the stage kind ("input" for the input)
    batched: bool = False
    shape: tuple[int, ...] = ()


def map_tensors(result: RunResult) -> list[MapTensor]:
    """The input and every stage output, with their layout: spatial dims and whether batched."""
    tensors = map_layout(result.trace)
    for t, data in zip(tensors, [result.input] + [res.output for res in result.results]):
        t.data = data
    return tensors


def map_layout(trace: Trace) -> list[MapTensor]:
    """:func:`map_tensors` from the shapes alone (``data`` None): what the pictures of a run will be,
    known before it is computed."""
    nd = _input_nd(trace)
    width = max(2, len(str(len(trace.rows))))
    tensors = [MapTensor(0, "input", f"{0:0{width}d} input", None, nd, "input", shape=tuple(trace.input_shape))]  # type: ignore[arg-type]
    for row in trace.rows:
        stage = row.stage
        if stage.spatial:
            nd = stage.output_spatial_nd(tuple(row.output_shape), nd)
        elif not stage.keeps_layout:
            nd = 0
        index = row.index
        tensors.append(MapTensor(index, stage.name.lower(), f"{index:0{width}d} {stage.call}", None,  # type: ignore[arg-type]
                                 nd, stage.kind, shape=tuple(row.output_shape)))  # fmt: skip
    batch = next((t.shape[0] for t in tensors if t.nd and len(t.shape) == t.nd + 2), None)
    for t in tensors:
        if t.nd:
            t.batched = len(t.shape) == t.nd + 2
        else:
            t.batched = batch is not None and len(t.shape) >= 2 and t.shape[0] == batch
    return tensors


def _input_nd(trace: Trace) -> int:
    for row in trace.rows:
        if row.stage.spatial and row.stage.output_spatial_nd(row.output_shape, 0):
            return row.stage.output_spatial_nd(row.output_shape, 0)
        if row.stage.nd and row.stage.keeps_layout:
            return row.stage.nd
        if not row.stage.keeps_layout:
            return 0
    return 2 if len(trace.input_shape) >= 2 else 0


def batch_size(tensors: list[MapTensor]) -> int:
    """Items in the run's batch (1 when no tensor is batched)."""
    return next((t.shape[0] for t in tensors if t.batched), 1)


def check_batch_item(batch_item: int, size: int) -> None:
    """Refuse a batch item the batch does not have, and an empty batch."""
    if size == 0:
        raise InputError("the batch is empty (0 items): there are no feature maps to draw — give at least one item")
    if not 0 <= batch_item < size:
        choices = "0" if size == 1 else f"0 to {size - 1}"
        items = "1 item" if size == 1 else f"{size} items"
        raise InputError(
            f"batch item {batch_item} is out of range: the batch has {items} — use {setting('batch_item')} {choices}"
        )


def planes_of(t: MapTensor, batch_item: int) -> tuple[np.ndarray, bool]:
    """``(P, h, w)`` float64 planes of one batch item, and whether they are 1-D strips (h = 1)."""
    import numpy as np

    a = np.asarray(t.data, dtype=np.float64)
    if t.batched and a.shape[0]:
        a = a[min(batch_item, a.shape[0] - 1)]
    if a.size == 0:
        return np.zeros((0, 1, 1)), False
    if t.nd == 1 or (t.nd == 0 and a.ndim <= 1) or a.ndim <= 1:
        return a.reshape(-1, 1, a.shape[-1] if a.ndim else 1), True
    return a.reshape(-1, a.shape[-2], a.shape[-1]), False


def plane_label(t: MapTensor, k: int) -> str:
    """The caption of plane ``k``: ``ch 3``, or ``ch 1 · d 2`` for the depth slices of a 3-D tensor."""
    if t.nd == 3 and len(t.shape) >= 3:
        depth = t.shape[-3]
        return f"ch {k // depth} · d {k % depth}" if depth else f"ch {k}"
    return f"ch {k}"
