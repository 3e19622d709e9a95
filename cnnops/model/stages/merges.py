"""Merges of several outputs: Add and Mul (broadcasting as PyTorch does) and Cat (``torch.cat``)."""

from __future__ import annotations

from typing import ClassVar

from cnnops.errors import LayerError
from cnnops.model.stages.base import Shape, Stage, fmt_shape
from cnnops.records import record

_VERB = {"add": "add", "mul": "multiply", "cat": "concatenate"}


@record(frozen=True, kw_only=True)
class Merge(Stage):
    """``Add`` (``a + b``), ``Mul`` (``a * b``) or ``Cat`` (``torch.cat([a, b, …], dim)``)."""

    op: str  # "add" | "mul" | "cat"
    dim: int = 1
    kind: ClassVar[str] = "merge"
    keeps_layout: ClassVar[bool] = True
    merges: ClassVar[bool] = True

    def merge_shapes(self, shapes: list[Shape], names: list[str]) -> Shape:
        """The output shape for these inputs (``names`` say where each came from), or PyTorch's refusal."""
        if len(shapes) < 2:
            raise LayerError(f"{self.name} needs at least two inputs, got {len(shapes)} — "
                             f"write {self.name}(@a) for the previous output and @a, or {self.name}(@a, @b)")  # fmt: skip
        if self.op == "cat":
            return self._cat(shapes, names)
        out = shapes[0]
        for shape, name in zip(shapes[1:], names[1:]):
            out = self._broadcast(out, shape, names[0] if len(shapes) == 2 else "the inputs before it", name)
        return out

    def _broadcast(self, a: Shape, b: Shape, name_a: str, name_b: str) -> Shape:
        """torch's broadcasting: align the shapes on the right; each pair of sizes is equal or has a 1."""
        rank = max(len(a), len(b))
        pa, pb = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
        out = []
        for axis, (x, y) in enumerate(zip(pa, pb)):
            if x != y and x != 1 and y != 1:
                raise LayerError(
                    f"cannot {_VERB[self.op]} {name_a} {fmt_shape(a)} and {name_b} {fmt_shape(b)}: sizes {x} and {y} "
                    f"at dimension {axis} must be equal or 1 (PyTorch's broadcasting)"
                )
            out.append(y if x == 1 else x)
        return tuple(out)

    def _cat(self, shapes: list[Shape], names: list[str]) -> Shape:
        rank = len(shapes[0])
        for shape, name in zip(shapes[1:], names[1:]):
            if len(shape) != rank:
                raise LayerError(
                    f"cannot concatenate {names[0]} {fmt_shape(shapes[0])} and {name} {fmt_shape(shape)}: "
                    f"torch.cat needs inputs of the same rank ({rank}-D and {len(shape)}-D)"
                )
        if rank == 0:
            raise LayerError("cannot concatenate scalars (0-D tensors) — torch.cat needs at least 1-D inputs")
        if not -rank <= self.dim < rank:
            raise LayerError(f"dim {self.dim} is out of range for {rank}-D inputs (use {-rank} to {rank - 1})")
        dim = self.dim % rank
        for shape, name in zip(shapes[1:], names[1:]):
            for axis in range(rank):
                if axis != dim and shape[axis] != shapes[0][axis]:
                    raise LayerError(
                        f"cannot concatenate {names[0]} {fmt_shape(shapes[0])} and {name} {fmt_shape(shape)} on "
                        f"dim {self.dim}: every other dimension must match, but dimension {axis} is "
                        f"{shapes[0][axis]} and {shape[axis]}"
                    )
        return shapes[0][:dim] + (sum(s[dim] for s in shapes),) + shapes[0][dim + 1 :]

    def torch_repr(self) -> str:
        return f"Cat(dim={self.dim})" if self.op == "cat" else f"{self.name}()"
