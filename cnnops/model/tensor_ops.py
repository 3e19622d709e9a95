"""Tensor operations that model code performs between its layers — ``view``/``reshape``, ``permute``/
``transpose``, indexing and ``chunk``/``split`` parts, ``mean``/``sum`` over dims, ``squeeze``/``unsqueeze`` —
and rows whose shapes an outside tool measured (torch, ONNX shape inference) where cnnops has no stage.

They are stages like the layers in :mod:`cnnops.model.stages`: the shape model runs them with PyTorch's
rules and refusals. None of them has parameters or MACs, and none keeps a receptive field.
Pure Python: no numpy, no torch.

>>> Reshape(name="view", call="view(-1, 400)", target=(-1, 400)).output_shape((4, 16, 5, 5))
(4, 400)
>>> Index(name="getitem", call="x[:, :8]", items=(SLICE_ALL, ("slice", None, 8, None))).output_shape((1, 24, 7, 7))
(1, 8, 7, 7)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.model.stages import Merge, Shape, Stage, fmt_shape
from cnnops.records import record

#: an index item: ("slice", start, stop, step) | ("int", i) | ("none",) | ("ellipsis",)
IndexItem = tuple[Any, ...]
SLICE_ALL: IndexItem = ("slice", None, None, None)


def _dim(d: int, rank: int, what: str = "dimension") -> int:
    """A dim as PyTorch wraps it: ``-rank ≤ d < rank`` (a scalar counts as rank 1)."""
    size = max(rank, 1)
    if not -size <= d < size:
        raise LayerError(f"{what} {d} is out of range: a {rank}-D tensor takes {-size} to {size - 1}")
    return d % size


def _shape_text(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


@record(frozen=True, kw_only=True)
class TensorOp(Stage):
    """Base of the operations here: no parameters, no MACs, any rank."""

    kind: ClassVar[str] = "tensor_op"

    @property
    def min_rank(self) -> int:
        return 0

    @property
    def max_rank(self) -> int | None:
        return None


@record(frozen=True, kw_only=True)
class Reshape(TensorOp):
    """``x.view(*target)`` / ``x.reshape(*target)``: one size may be -1 (inferred)."""

    target: tuple[int, ...]

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        numel = math.prod(shape)
        if sum(1 for t in self.target if t == -1) > 1:
            raise LayerError(f"only one dimension can be inferred (-1) in {_shape_text(self.target)}")
        bad = [t for t in self.target if t < -1]
        if bad:
            raise LayerError(f"invalid shape dimension {bad[0]} in {_shape_text(self.target)}")
        known = math.prod(t for t in self.target if t != -1)
        if -1 in self.target:
            if known == 0:
                raise LayerError(f"cannot reshape a tensor of {numel} elements into {_shape_text(self.target)}: "
                                 "the size -1 stands for is ambiguous next to a 0")  # fmt: skip
            if numel % known:
                raise LayerError(f"shape {_shape_text(self.target)} is invalid for an input of {numel} elements "
                                 f"{fmt_shape(shape)}: {numel} is not a multiple of {known}")  # fmt: skip
            out = tuple(numel // known if t == -1 else t for t in self.target)
        else:
            out = self.target
            if known != numel:
                raise LayerError(f"shape {_shape_text(self.target)} is invalid for an input of {numel} elements "
                                 f"{fmt_shape(shape)}: it holds {known}")  # fmt: skip
        return out, []


@record(frozen=True, kw_only=True)
class Permute(TensorOp):
    """``x.permute(*dims)``, or ``x.transpose(a, b)`` when ``swap`` is given."""

    dims: tuple[int, ...] = ()
    swap: tuple[int, int] | None = None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        rank = len(shape)
        if self.swap is not None:
            a, b = (_dim(d, rank) for d in self.swap)
            out = list(shape)
            if rank:
                out[a], out[b] = shape[b], shape[a]
            return tuple(out), []
        if len(self.dims) != rank:
            raise LayerError(f"permute needs one dim per input dimension: the input {fmt_shape(shape)} has {rank}, "
                             f"got {len(self.dims)} {fmt_shape(self.dims)}")  # fmt: skip
        dims = [_dim(d, rank) for d in self.dims]
        if len(set(dims)) != rank:
            raise LayerError(f"permute got a repeated dim in {fmt_shape(self.dims)}")
        return tuple(shape[d] for d in dims), []


@record(frozen=True, kw_only=True)
class Index(TensorOp):
    """Basic indexing ``x[…]`` (slices, integers, None, ...) — also the parts of ``chunk``/``split``."""

    items: tuple[IndexItem, ...]

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        ellipses = sum(1 for it in self.items if it[0] == "ellipsis")
        if ellipses > 1:
            raise LayerError("an index can only have a single ellipsis ('...')")
        used = sum(1 for it in self.items if it[0] in ("slice", "int"))
        if used > len(shape):
            raise LayerError(f"too many indices for a tensor of dimension {len(shape)}: {used} given")
        items: list[IndexItem] = []
        for it in self.items:
            if it[0] == "ellipsis":
                items.extend([SLICE_ALL] * (len(shape) - used))
            else:
                items.append(it)
        items.extend([SLICE_ALL] * (len(shape) - sum(1 for it in items if it[0] in ("slice", "int"))))
        out: list[int] = []
        axis = 0
        for it in items:
            if it[0] == "none":
                out.append(1)
                continue
            size = shape[axis]
            if it[0] == "int":
                if not -size <= it[1] < size:
                    raise LayerError(f"index {it[1]} is out of bounds for dimension {axis} with size {size}")
            else:
                _, start, stop, step = it
                if step is not None and step <= 0:
                    raise LayerError(f"a slice step must be greater than zero, got {step}")
                out.append(len(range(*slice(start, stop, step).indices(size))))
            axis += 1
        return tuple(out), []


@record(frozen=True, kw_only=True)
class Reduce(TensorOp):
    """``x.mean(dims, keepdim)``, ``sum``, ``amax``…: ``dims`` None reduces every dimension."""

    dims: tuple[int, ...] | None = None
    keepdim: bool = False

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        rank = len(shape)
        if self.dims is None:
            return ((1,) * rank if self.keepdim else ()), []
        dims = [_dim(d, rank) for d in self.dims]
        if len(set(dims)) != len(dims):
            raise LayerError(f"dim {self.dims[0]} appears multiple times in the dims to reduce {fmt_shape(self.dims)}")
        out = [1 if i in dims else n for i, n in enumerate(shape)] if self.keepdim else [
            n for i, n in enumerate(shape) if i not in dims
        ]
        return tuple(out), []


@record(frozen=True, kw_only=True)
class Squeeze(TensorOp):
    """``x.squeeze(dims)``: drops the given size-1 dims (all of them when ``dims`` is None)."""

    dims: tuple[int, ...] | None = None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.dims is None:
            return tuple(n for n in shape if n != 1), []
        dims = {_dim(d, len(shape)) for d in self.dims}
        return tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1)), []


@record(frozen=True, kw_only=True)
class Unsqueeze(TensorOp):
    """``x.unsqueeze(dim)``: a size-1 dim inserted (``-rank-1 ≤ dim ≤ rank``)."""

    dim: int

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        at = _dim(self.dim, len(shape) + 1)
        return shape[:at] + (1,) + shape[at:], []


@record(frozen=True, kw_only=True)
class Measured(Stage):
    """A row cnnops has no stage for, with the output shape and parameter count an outside tool measured
    (``source``: ``"torch"``, ``"ONNX shape inference"``). No formula, no MACs, no receptive field."""

    output: Shape
    param_count: int = 0
    source: str = "torch"
    kind: ClassVar[str] = "measured"

    @property
    def min_rank(self) -> int:
        return 0

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        return self.output, []

    def params(self) -> int:
        return self.param_count


@record(frozen=True, kw_only=True)
class MeasuredMerge(Merge):
    """A :class:`Measured` row that reads several outputs (``torch.matmul(a, b)``, an ONNX ``Where``)."""

    output: Shape
    param_count: int = 0
    source: str = "torch"
    kind: ClassVar[str] = "measured"
    keeps_layout: ClassVar[bool] = False

    def merge_shapes(self, shapes: list[Shape], names: list[str]) -> Shape:
        return self.output

    def params(self) -> int:
        return self.param_count

    def torch_repr(self) -> str:
        return self.call


@record(frozen=True, kw_only=True)
class InplaceMerge(Merge):
    """``x += y`` / ``x.mul_(y)``: the result is written into ``x``, so broadcasting may not grow it."""

    def merge_shapes(self, shapes: list[Shape], names: list[str]) -> Shape:
        out = super().merge_shapes(shapes, names)
        if out != shapes[0]:
            raise LayerError(f"the in-place {self.name.lower()} writes into {names[0]} {fmt_shape(shapes[0])}, but "
                             f"broadcasting with {fmt_shape(shapes[1])} gives {fmt_shape(out)} — PyTorch refuses "
                             "an in-place result of another shape")  # fmt: skip
        return out
