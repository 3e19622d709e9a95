"""Constants of an ONNX graph: initializers and the small integer tensors of shape arithmetic, folded
(``Shape → Gather → Unsqueeze → Concat`` feeding a ``Reshape``; the pads ``F.pad`` exports) with the sizes
the shape model gives, so the operators that take them get plain numbers."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnops.errors import SpecError
from cnnops.records import record

if TYPE_CHECKING:
    from cnnops.spec.onnxgraph.reader import OnnxReader

MAX_CONSTANT = 100_000  # elements of a constant the reader folds (shape arithmetic is tiny)
FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


@record
class Const:
    """A constant tensor: its dims, and its values (flat, row-major) when small enough to fold."""

    dims: tuple[int, ...]
    values: list[Any] | None
    floating: bool = False
    initializer: str | None = None  # the initializer it is (for parameter counting)
    #: computed from an initializer (a parameter, or an exporter's copy of one); a Constant node's values are not
    learned: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.dims)

    def ints(self, what: str) -> list[int]:
        if self.values is None or self.floating:
            raise Unsupported(f"{what} is not a constant list of whole numbers")
        return [int(v) for v in self.values]


class Unsupported(Exception):
    """The node cannot be mapped as written: it goes to shape inference (or is refused)."""



def _axes(reader: OnnxReader, node: Any, attrs: dict[str, Any], position: int = 1) -> list[int] | None:
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(node.input) > position and node.input[position]:
        return reader.const(node.input[position]).ints("the axes")
    return None


def _fold_shape(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = reader.value(node.input[0])
    shape = value.dims if isinstance(value, Const) else reader.shape(value)
    start, end = attrs.get("start", 0), attrs.get("end")
    picked = list(shape)[start:end]
    return [Const((len(picked),), picked)]


def _fold_constant(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    if "value" in attrs:
        return [_tensor_const(attrs["value"])]
    for key, floating in (("value_int", False), ("value_float", True)):
        if key in attrs:
            return [Const((), [attrs[key]], floating)]
    for key, floating in (("value_ints", False), ("value_floats", True)):
        if key in attrs:
            return [Const((len(attrs[key]),), list(attrs[key]), floating)]
    raise Unsupported("a Constant of a kind the reader does not fold")


def _elementwise(op: Callable[[Any, Any], Any]) -> Callable[..., list[Any]]:
    def fold(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
        a, b = (reader.const(n) for n in node.input[:2])
        if a.values is None or b.values is None:
            raise Unsupported("arithmetic on large constants")
        if a.numel != b.numel and 1 not in (a.numel, b.numel):
            raise Unsupported("broadcasting between constants")
        n = max(a.numel, b.numel)
        av = a.values if a.numel == n else a.values * n
        bv = b.values if b.numel == n else b.values * n
        dims = a.dims if a.numel == n else b.dims
        return [Const(dims, [op(x, y) for x, y in zip(av, bv)], a.floating or b.floating)]

    return fold


def _int_div(x: Any, y: Any) -> Any:
    return x / y if isinstance(x, float) or isinstance(y, float) else int(x / y)


def _fold_gather(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    data, indices = reader.const(node.input[0]), reader.const(node.input[1])
    if len(data.dims) != 1 or attrs.get("axis", 0) != 0 or data.values is None or indices.values is None:
        raise Unsupported("Gather on constants other than a list")
    picked = [data.values[int(i)] for i in indices.values]
    return [Const(indices.dims, picked, data.floating)]


def _fold_unsqueeze(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = reader.const(node.input[0])
    axes = _axes(reader, node, attrs) or []
    dims = list(value.dims)
    for axis in sorted(a % (len(dims) + len(axes)) for a in axes):
        dims.insert(axis, 1)
    return [Const(tuple(dims), value.values, value.floating)]


def _fold_squeeze(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = reader.const(node.input[0])
    axes = _axes(reader, node, attrs)
    dims = [d for i, d in enumerate(value.dims) if not (d == 1 and (axes is None or i in [a % len(value.dims) for a in axes]))]
    return [Const(tuple(dims), value.values, value.floating)]


def _take(value: Const, picks: list[list[int]]) -> Const:
    """The constant at every combination of the indices ``picks[axis]`` (row-major)."""
    strides = [math.prod(value.dims[i + 1 :]) for i in range(len(value.dims))]
    assert value.values is not None
    values = [value.values[sum(i * st for i, st in zip(index, strides))] for index in itertools.product(*picks)]
    return Const(tuple(len(p) for p in picks), values, value.floating)


def _values(reader: OnnxReader, name: str) -> Const:
    value = reader.const(name)
    if value.values is None:
        raise Unsupported("folding a large constant")
    return value


def _fold_concat(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    parts = [_values(reader, n) for n in node.input if n]
    rank = len(parts[0].dims)
    axis = attrs.get("axis", 0) % max(rank, 1)
    if any(len(p.dims) != rank or p.dims[:axis] + p.dims[axis + 1 :] != parts[0].dims[:axis] + parts[0].dims[axis + 1 :]
           for p in parts):  # fmt: skip
        raise SpecError("Concat of constants whose other dimensions differ")
    outer = math.prod(parts[0].dims[:axis])
    values: list[Any] = []
    for i in range(outer):
        for p in parts:
            block = math.prod(p.dims[axis:])
            values += p.values[i * block : (i + 1) * block]  # type: ignore[index]
    dims = parts[0].dims[:axis] + (sum(p.dims[axis] for p in parts),) + parts[0].dims[axis + 1 :]
    return [Const(dims, values, any(p.floating for p in parts))]


def _fold_reshape(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = _values(reader, node.input[0])
    target = reader.const(node.input[1]).ints("the target shape")
    target = [value.dims[i] if t == 0 and not attrs.get("allowzero", 0) else t for i, t in enumerate(target)]
    if -1 in target:
        known = math.prod(t for t in target if t != -1)
        target = [value.numel // known if t == -1 else t for t in target]
    if math.prod(target) != value.numel:
        raise SpecError(f"Reshape of a constant of {value.numel} values to {target}")
    return [Const(tuple(target), value.values, value.floating)]


def _fold_transpose(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = _values(reader, node.input[0])
    perm = list(attrs.get("perm", range(len(value.dims) - 1, -1, -1)))
    out_dims = [value.dims[p] for p in perm]
    strides = [math.prod(value.dims[i + 1 :]) for i in range(len(value.dims))]
    assert value.values is not None
    values = [value.values[sum(i * strides[p] for i, p in zip(index, perm))]
              for index in itertools.product(*(range(d) for d in out_dims))]  # fmt: skip
    return [Const(tuple(out_dims), values, value.floating)]


def _fold_cast(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = reader.const(node.input[0])
    floating = attrs.get("to") in FLOAT_TYPES
    values = None if value.values is None else [float(v) if floating else int(v) for v in value.values]
    return [Const(value.dims, values, floating)]


def _fold_slice(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = _values(reader, node.input[0])
    starts, ends = reader.const(node.input[1]).ints("starts"), reader.const(node.input[2]).ints("ends")
    axes = reader.const(node.input[3]).ints("axes") if len(node.input) > 3 and node.input[3] else range(len(starts))
    steps = reader.const(node.input[4]).ints("steps") if len(node.input) > 4 and node.input[4] else [1] * len(starts)
    picks = [list(range(d)) for d in value.dims]
    for axis, start, end, step in zip(axes, starts, ends, steps):
        axis %= len(value.dims)
        picks[axis] = list(range(*slice(start, end, step).indices(value.dims[axis])))
    return [_take(value, picks)]


def _fold_constant_of_shape(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    dims = tuple(reader.const(node.input[0]).ints("the shape"))
    fill = _tensor_const(attrs["value"]) if "value" in attrs else Const((1,), [0.0], True)
    n = math.prod(dims)
    return [Const(dims, (fill.values or [0]) * n if n <= MAX_CONSTANT else None, fill.floating)]


def _fold_identity(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
    value = reader.const(node.input[0])
    return [Const(value.dims, value.values, value.floating, None, value.learned)]


FOLDABLE: dict[str, Callable[[OnnxReader, Any, dict[str, Any]], list[Any]]] = {
    "Constant": _fold_constant, "Shape": _fold_shape, "Gather": _fold_gather, "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze, "Concat": _fold_concat, "Cast": _fold_cast, "Slice": _fold_slice,
    "Add": _elementwise(lambda x, y: x + y), "Sub": _elementwise(lambda x, y: x - y),
    "Mul": _elementwise(lambda x, y: x * y), "Div": _elementwise(_int_div),
    "ConstantOfShape": _fold_constant_of_shape, "Identity": _fold_identity, "Reshape": _fold_reshape,
    "Transpose": _fold_transpose,
}  # fmt: skip


def _tensor_const(tensor: Any) -> Const:
    dims = tuple(tensor.dims)
    floating = tensor.data_type in FLOAT_TYPES
    values = None
    if math.prod(dims) <= MAX_CONSTANT:
        from onnx import numpy_helper

        values = numpy_helper.to_array(tensor).reshape(-1).tolist()
    return Const(dims, values, floating)


def _initializer_const(init: Any) -> Const:
    const = _tensor_const(init) if init.data_type not in FLOAT_TYPES or math.prod(init.dims) <= 64 else Const(
        tuple(init.dims), None, True)
    const.initializer = init.name
    const.learned = True
    return const
