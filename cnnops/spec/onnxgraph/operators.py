"""ONNX operators → cnnops stages: ``OPS`` is the table, one line per operator (a new layer is one line).
A handler returns the node's outputs (stage numbers, or constants); :class:`Unsupported` sends the node
to shape inference."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnops.errors import SpecError
from cnnops.model.stages import Merge
from cnnops.model.tensor_ops import SLICE_ALL, Index, Permute, Reduce, Reshape, Squeeze, Unsqueeze
from cnnops.spec.onnxgraph.constants import Const, Unsupported, _axes, _fold_constant, _fold_shape
from cnnops.spec.signatures import LAYERS

if TYPE_CHECKING:
    from cnnops.spec.onnxgraph.reader import OnnxReader


def _nd(reader: OnnxReader, x: int, node: Any) -> int:
    rank = len(reader.shape(x))
    if rank < 3:
        raise Unsupported(f"{node.op_type} on a {rank}-D input")
    return rank - 2


def _pads(attrs: dict[str, Any], nd: int, kernel: list[int], strides: list[int], dilations: list[int],
          lengths: tuple[int, ...]) -> list[tuple[int, int]]:  # fmt: skip
    """(begin, end) per spatial dim from ``pads`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for length, k, s, d in zip(lengths, kernel, strides, dilations):
            total = max((math.ceil(length / s) - 1) * s + (k - 1) * d + 1 - length, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * nd
    pads = attrs.get("pads", [0] * (2 * nd))
    return list(zip(pads[:nd], pads[nd:]))


def _symmetric(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    if any(b != e for b, e in pads):
        raise Unsupported(f"its padding is asymmetric ({', '.join(f'{b} before, {e} after' for b, e in pads)}), "
                           "which needs a padding layer cnnops does not have yet")  # fmt: skip
    return tuple(b for b, _ in pads)


def _padded(reader: OnnxReader, node: Any, index: int, x: int, pads: list[tuple[int, int]]) -> tuple[int, tuple[int, ...]]:
    """The input and the layer's own padding: an asymmetric padding becomes a ConstantPad stage before the
    layer (its two sides shown in that stage's formula), the layer then padding nothing."""
    if all(b == e for b, e in pads):
        return x, tuple(b for b, _ in pads)
    layer = f"ConstantPad{len(pads)}d"
    if layer not in LAYERS:
        _symmetric(pads)
    torch_order = tuple(v for b, e in reversed(pads) for v in (b, e))  # last dimension first, as F.pad takes them
    padded = reader.layer(node, index, layer, [("padding", torch_order), ("value", 0.0)], [x])
    return padded, (0,) * len(pads)


def conv(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    weight = reader.const(node.input[1])
    nd = len(weight.dims) - 2
    kernel = list(attrs.get("kernel_shape", weight.dims[2:]))
    strides, dilations = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
    groups = attrs.get("group", 1)
    x, padding = _padded(reader, node, index, x, _pads(attrs, nd, kernel, strides, dilations, reader.shape(x)[-nd:]))
    bias = len(node.input) > 2 and bool(node.input[2])
    weights = reader.weight_names(node, (1, 2))
    if weights and weights[0].startswith("onnx::") and "BatchNormalization" not in _ops(reader.graph):
        reader.folded_weights.append(len(reader.builder.nodes) + 1)
    keywords = [("in_channels", weight.dims[1] * groups), ("out_channels", weight.dims[0]), ("kernel_size", tuple(kernel)),
                ("stride", tuple(strides)), ("padding", padding), ("dilation", tuple(dilations)), ("groups", groups),
                ("bias", bias)]  # fmt: skip
    return [reader.layer(node, index, f"Conv{nd}d", keywords, [x], weights)]


def conv_transpose(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    weight = reader.const(node.input[1])
    nd = len(weight.dims) - 2
    kernel = list(attrs.get("kernel_shape", weight.dims[2:]))
    strides, dilations = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
    groups = attrs.get("group", 1)
    output_padding = list(attrs.get("output_padding", [0] * nd))
    lengths = reader.shape(x)[-nd:]
    if "output_shape" in attrs:
        pads = []
        for i, (length, k, s, d) in enumerate(zip(lengths, kernel, strides, dilations)):
            total = s * (length - 1) + output_padding[i] + (k - 1) * d + 1 - attrs["output_shape"][-nd:][i]
            small, big = total // 2, total - total // 2
            pads.append((small, big) if attrs.get("auto_pad") == "SAME_UPPER" else (big, small))
    elif attrs.get("auto_pad", "NOTSET") != "NOTSET" and attrs.get("auto_pad") != "VALID":
        raise Unsupported(f"auto_pad={attrs['auto_pad']} on a transposed convolution")
    else:
        pads = _pads(attrs, nd, kernel, strides, dilations, lengths)
    padding = _symmetric(pads)
    keywords = [("in_channels", weight.dims[0]), ("out_channels", weight.dims[1] * groups), ("kernel_size", tuple(kernel)),
                ("stride", tuple(strides)), ("padding", padding), ("output_padding", tuple(output_padding)),
                ("groups", groups), ("bias", len(node.input) > 2 and bool(node.input[2])), ("dilation", tuple(dilations))]  # fmt: skip
    return [reader.layer(node, index, f"ConvTranspose{nd}d", keywords, [x], reader.weight_names(node, (1, 2)))]


def pool(mode: str) -> Callable[..., list[Any]]:
    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        if len(node.output) > 1 and node.output[1] and reader.consumers.get(node.output[1]):
            raise Unsupported("its indices output is used")
        x = reader.activation(node.input[0])
        kernel = list(attrs["kernel_shape"])
        nd = len(kernel)
        strides, dilations = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
        pads = _pads(attrs, nd, kernel, strides, dilations, reader.shape(x)[-nd:])
        if attrs.get("ceil_mode", 0):
            padding = _symmetric(pads)  # ceil mode counts windows against the padding: no separate pad stage
        else:
            x, padding = _padded(reader, node, index, x, pads)
        keywords: list[tuple[str, Any]] = [("kernel_size", tuple(kernel)), ("stride", tuple(strides)), ("padding", padding),
                                           ("ceil_mode", bool(attrs.get("ceil_mode", 0)))]  # fmt: skip
        if mode == "max":
            keywords.append(("dilation", tuple(dilations)))
            return [reader.layer(node, index, f"MaxPool{nd}d", keywords, [x])]
        if any(d != 1 for d in dilations):
            raise Unsupported("average pooling with dilation")
        keywords.append(("count_include_pad", bool(attrs.get("count_include_pad", 0))))
        return [reader.layer(node, index, f"AvgPool{nd}d", keywords, [x])]

    return handler


def global_pool(mode: str) -> Callable[..., list[Any]]:
    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        x = reader.activation(node.input[0])
        nd = _nd(reader, x, node)
        name = f"Adaptive{'Avg' if mode == 'avg' else 'Max'}Pool{nd}d"
        return [reader.layer(node, index, name, [("output_size", 1)], [x])]

    return handler


def gemm(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    weight = reader.const(node.input[1])
    if attrs.get("transA", 0) or len(weight.dims) != 2:
        raise Unsupported("Gemm with a transposed input")
    out, into = weight.dims if attrs.get("transB", 0) else weight.dims[::-1]
    bias = len(node.input) > 2 and bool(node.input[2])
    if bias and reader.const(node.input[2]).numel not in (out, 1):
        raise Unsupported("Gemm whose bias is not one value per output")
    keywords = [("in_features", into), ("out_features", out), ("bias", bias)]
    return [reader.layer(node, index, "Linear", keywords, [x], reader.weight_names(node, (1, 2)))]


def matmul(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    """MatMul by a constant (K, N) matrix is a Linear; an Add of a constant (N,) right after it is its bias."""
    x = reader.activation(node.input[0])
    weight = reader.const(node.input[1])
    if len(weight.dims) != 2:
        raise Unsupported("MatMul by a constant that is not a matrix")
    into, out = weight.dims
    weights = reader.weight_names(node, (1,))
    bias_node = _single_consumer(reader, node.output[0], index, "Add")
    bias = False
    if bias_node is not None:
        other = [n for n in bias_node[1].input if n != node.output[0]]
        value = reader.values.get(other[0]) if other else None
        if other and (other[0] in reader.initializers or isinstance(value, Const)):
            const = reader.const(other[0])
            if const.dims == (out,) and const.floating:
                bias = True
                weights += [const.initializer or other[0]]
                reader.skip.add(bias_node[0])
    number = reader.layer(node, index, "Linear", [("in_features", into), ("out_features", out), ("bias", bias)],
                          [x], weights)  # fmt: skip
    if bias and bias_node is not None:
        reader.values[bias_node[1].output[0]] = number
    return [number]


def _single_consumer(reader: OnnxReader, name: str, index: int, op: str) -> tuple[int, Any] | None:
    if reader.consumers.get(name) != 1:
        return None
    for later, node in enumerate(reader.graph.node[index:], index + 1):
        if name in node.input:
            return (later, node) if node.op_type == op else None
    return None


def elementwise(name: str, extra: Callable[[dict[str, Any]], list[tuple[str, Any]]] = lambda a: []) -> Callable[..., list[Any]]:
    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        return [reader.layer(node, index, name, extra(attrs), [reader.activation(node.input[0])])]

    return handler


def clip(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    bounds = [attrs.get("min"), attrs.get("max")]
    for i in (1, 2):
        if len(node.input) > i and node.input[i]:
            const = reader.const(node.input[i])
            bounds[i - 1] = const.values[0] if const.values else None
    if bounds == [0, 6] or bounds == [0.0, 6.0]:
        return [reader.layer(node, index, "ReLU6", [], [x])]
    return [reader.layer(node, index, "Hardtanh", [("min_val", bounds[0]), ("max_val", bounds[1])], [x])]


def hard_sigmoid(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    if not (math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and math.isclose(attrs.get("beta", 0.5), 0.5)):
        raise Unsupported("HardSigmoid with other constants than PyTorch's (1/6, 0.5)")
    return [reader.layer(node, index, "Hardsigmoid", [], [reader.activation(node.input[0])])]


def softmax(name: str) -> Callable[..., list[Any]]:
    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        return [reader.layer(node, index, name, [("dim", attrs.get("axis", -1))], [reader.activation(node.input[0])])]

    return handler


def batch_norm(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    rank = len(reader.shape(x))
    nd = {2: 1, 3: 1, 4: 2, 5: 3}.get(rank)
    if nd is None:
        raise Unsupported(f"BatchNormalization of a {rank}-D input")
    channels = reader.const(node.input[1]).dims[0]
    keywords = [("num_features", channels), ("eps", attrs.get("epsilon", 1e-5))]
    return [reader.layer(node, index, f"BatchNorm{nd}d", keywords, [x], reader.weight_names(node, (1, 2)))]


def dropout(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    ratio = attrs.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        values = reader.const(node.input[1]).values
        ratio = values[0] if values else ratio
    return [reader.layer(node, index, "Dropout", [("p", float(ratio))], [reader.activation(node.input[0])]), None]


def binary(name: str, rule: str) -> Callable[..., list[Any]]:
    """Add/Mul/Sub/Div: of two tensors a merge; with a scalar constant the tensor as it is; with a learned
    constant (an initializer of several values) a measured row that counts it."""

    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        a, b = (reader.value(n) for n in node.input[:2])
        if isinstance(a, int) and isinstance(b, int):
            return [reader.emit(node, Merge(name=name, call=f"{name}()", op=rule), [a, b])]
        tensor, const = (a, b) if isinstance(a, int) else (b, a)
        assert isinstance(const, Const)
        if const.numel == 1:
            return [tensor]  # by a number: the same shape, nothing learned, no stage
        raise Unsupported(f"{name} by a constant tensor {tuple(const.dims)}")

    return handler


def flatten(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    shape = reader.shape(x)
    axis = attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if axis == 1 and len(shape) >= 2:
        return [reader.layer(node, index, "Flatten", [("start_dim", 1), ("end_dim", -1)], [x])]
    target = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    return [reader.emit(node, Reshape(name="Flatten", call=f"Flatten(axis={axis})", target=target), [x])]


def reshape(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    target = reader.const(node.input[1]).ints("the target shape")
    if not attrs.get("allowzero", 0) and 0 in target:
        shape = reader.shape(x)
        target = [shape[i] if t == 0 and i < len(shape) else t for i, t in enumerate(target)]
    text = ", ".join(map(str, target))
    return [reader.emit(node, Reshape(name="Reshape", call=f"Reshape({text})", target=tuple(target)), [x])]


def transpose(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    perm = tuple(attrs.get("perm", range(len(reader.shape(x)) - 1, -1, -1)))
    return [reader.emit(node, Permute(name="Transpose", call=f"Transpose(perm={list(perm)})", dims=perm), [x])]


def squeeze(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    axes = _axes(reader, node, attrs)
    if axes is not None and any(reader.shape(x)[a] != 1 for a in axes):
        raise SpecError(f"Squeeze of axes {axes} that are not of size 1 in {reader.shape(x)}")
    call = "Squeeze()" if axes is None else f"Squeeze(axes={axes})"
    return [reader.emit(node, Squeeze(name="Squeeze", call=call, dims=None if axes is None else tuple(axes)), [x])]


def unsqueeze(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    axes = _axes(reader, node, attrs) or []
    rank = len(reader.shape(x)) + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = reader.emit(node, Unsqueeze(name="Unsqueeze", call=f"Unsqueeze({axis})", dim=axis), [x])
    return [x]


def concat(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    parts = [reader.value(n) for n in node.input if n]
    refs = [p for p in parts if isinstance(p, int)]
    if len(refs) != len(parts):
        raise Unsupported("Concat of tensors and constants")
    axis = attrs.get("axis", 0)
    if len(parts) == 1:
        return [parts[0]]
    stage = LAYERS["Cat"].build("Cat", {"dim": axis}, "Cat()" if axis == 1 else f"Cat(dim={axis})", 0)
    return [reader.emit(node, stage, refs)]


def reduce(op: str) -> Callable[..., list[Any]]:
    def handler(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
        x = reader.activation(node.input[0])
        axes = _axes(reader, node, attrs)
        keep = bool(attrs.get("keepdims", 1))
        if axes == [] and attrs.get("noop_with_empty_axes", 0):
            return [x]
        call = f"{node.op_type}({'' if axes is None else f'axes={axes}'}{', keepdims=0' if not keep else ''})".replace("(, ", "(")
        return [reader.emit(node, Reduce(name=node.op_type, call=call, dims=None if not axes else tuple(axes),
                                         keepdim=keep), [x])]  # fmt: skip

    return handler


def slice_(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    rank = len(reader.shape(x))
    if "starts" in attrs:  # opset < 10
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = reader.const(node.input[1]).ints("starts"), reader.const(node.input[2]).ints("ends")
        axes = reader.const(node.input[3]).ints("axes") if len(node.input) > 3 and node.input[3] else None
        steps = reader.const(node.input[4]).ints("steps") if len(node.input) > 4 and node.input[4] else None
    axes = [a % rank for a in (axes or range(len(starts)))]
    steps = steps or [1] * len(starts)
    if any(s <= 0 for s in steps):
        raise Unsupported("Slice with a negative step")
    items = [SLICE_ALL] * (max(axes) + 1)
    for a, s, e, st in zip(axes, starts, ends, steps):
        items[a] = ("slice", s, e, None if st == 1 else st)
    call = f"Slice(axes={axes}, starts={list(starts)}, ends={list(ends)})"
    return [reader.emit(node, Index(name="Slice", call=call, items=tuple(items)), [x])]


def split(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    shape = reader.shape(x)
    axis = attrs.get("axis", 0) % len(shape)
    outputs = len(node.output)
    if "split" in attrs:
        sizes = list(attrs["split"])
    elif len(node.input) > 1 and node.input[1]:
        sizes = reader.const(node.input[1]).ints("the split sizes")
    else:
        size = math.ceil(shape[axis] / (attrs.get("num_outputs") or outputs))
        sizes = [min(size, shape[axis] - i * size) for i in range(outputs)]
    if sum(sizes) != shape[axis] or len(sizes) != outputs:
        raise SpecError(f"Split sizes {sizes} do not cover dimension {axis} of size {shape[axis]} in {outputs} parts")
    out, start = [], 0
    for k, size in enumerate(sizes):
        items = (SLICE_ALL,) * axis + (("slice", start, start + size, None),)
        out.append(reader.emit(node, Index(name="Split", call=f"Split(axis={axis})[{k}]", items=items), [x]))
        start += size
    return out


def gather(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    indices = reader.const(node.input[1])
    if indices.dims != () or indices.values is None:
        raise Unsupported("Gather with several indices")
    axis = attrs.get("axis", 0) % len(reader.shape(x))
    items = (SLICE_ALL,) * axis + (("int", int(indices.values[0])),)
    return [reader.emit(node, Index(name="Gather", call=f"Gather(axis={axis}, index={indices.values[0]})", items=items), [x])]


def pad(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    pads = list(attrs["pads"]) if "pads" in attrs else reader.const(node.input[1]).ints("the pads")
    if not any(pads):
        return [x]
    rank = len(reader.shape(x))
    begins, ends = pads[: len(pads) // 2], pads[len(pads) // 2 :]
    if len(node.input) > 3 and node.input[3]:
        raise Unsupported("Pad with axes")
    padded = [i for i in range(rank) if begins[i] or ends[i]]
    n = rank - padded[0]
    if padded[0] < 2 or n > 3:
        raise Unsupported("Pad of the batch or channel dimension")
    torch_order = tuple(v for i in range(rank - 1, padded[0] - 1, -1) for v in (begins[i], ends[i]))
    mode = attrs.get("mode", "constant")
    names = {"constant": "ConstantPad{n}d", "reflect": "ReflectionPad{n}d", "edge": "ReplicationPad{n}d",
             "wrap": "CircularPad{n}d"}  # fmt: skip
    keywords: list[tuple[str, Any]] = [("padding", torch_order)]
    if mode == "constant":
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            values = reader.const(node.input[2]).values
            value = float(values[0]) if values else 0.0
        keywords.append(("value", value))
    return [reader.layer(node, index, names[mode].format(n=n), keywords, [x])]


def resize(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    x = reader.activation(node.input[0])
    shape = reader.shape(x)
    scales = reader.const(node.input[2]).values if len(node.input) > 2 and node.input[2] else None
    sizes = reader.const(node.input[3]).ints("sizes") if len(node.input) > 3 and node.input[3] else None
    if node.op_type == "Upsample":
        scales = reader.const(node.input[1]).values
    mode = {"nearest": "nearest", "linear": "bilinear" if len(shape) == 4 else "linear", "cubic": "bicubic"}[
        attrs.get("mode", "nearest")]
    keywords: list[tuple[str, Any]] = [("mode", mode)]
    if sizes:
        keywords.insert(0, ("size", tuple(sizes[2:])))
    elif scales:
        if list(scales[:2]) != [1.0, 1.0]:
            raise Unsupported("Resize of the batch or channel dimension")
        keywords.insert(0, ("scale_factor", tuple(float(s) for s in scales[2:])))
    if mode != "nearest":
        keywords.append(("align_corners", attrs.get("coordinate_transformation_mode") == "align_corners"))
    return [reader.layer(node, index, "Upsample", keywords, [x])]


def identity(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    value = reader.value(node.input[0])
    if isinstance(value, Const):
        return [Const(value.dims, value.values, value.floating, None)]  # a tensor of its own (see weight_names)
    return [reader.layer(node, index, "Identity", [], [value])]


def _act(name: str, **mapping: tuple[str, Any]) -> Callable[..., list[Any]]:
    """An activation whose ONNX attributes map to the layer's arguments: ``alpha=("negative_slope", 0.01)``."""
    return elementwise(name, lambda attrs: [(arg, attrs.get(key, default)) for key, (arg, default) in mapping.items()])


#: the inputs of an operator that hold learned values, where not all of them do (running statistics are not learned)
PARAM_INPUTS = {"BatchNormalization": (1, 2), "InstanceNormalization": (1, 2), "LayerNormalization": (1, 2),
                "GroupNormalization": (1, 2)}  # fmt: skip

Handler = Callable[["OnnxReader", Any, dict[str, Any], int], list[Any]]
#: op type → how it becomes stages; outside this table a node is measured by shape inference or refused
OPS: dict[str, Handler] = {
    "Conv": conv, "ConvTranspose": conv_transpose,
    "MaxPool": pool("max"), "AveragePool": pool("avg"),
    "GlobalAveragePool": global_pool("avg"), "GlobalMaxPool": global_pool("max"),
    "Gemm": gemm, "MatMul": matmul,
    "Relu": _act("ReLU"), "LeakyRelu": _act("LeakyReLU", alpha=("negative_slope", 0.01)),
    "Sigmoid": _act("Sigmoid"), "Tanh": _act("Tanh"), "HardSigmoid": hard_sigmoid, "HardSwish": _act("Hardswish"),
    "Clip": clip, "Elu": _act("ELU", alpha=("alpha", 1.0)), "Selu": _act("SELU"),
    "Celu": _act("CELU", alpha=("alpha", 1.0)), "Softplus": _act("Softplus"), "Softsign": _act("Softsign"),
    "Mish": _act("Mish"), "Gelu": _act("GELU", approximate=("approximate", "none")),
    "Softmax": softmax("Softmax"), "LogSoftmax": softmax("LogSoftmax"),
    "BatchNormalization": batch_norm, "Dropout": dropout, "Identity": identity,
    "Add": binary("Add", "add"), "Sub": binary("Sub", "add"), "Mul": binary("Mul", "mul"), "Div": binary("Div", "mul"),
    "Concat": concat, "Flatten": flatten, "Reshape": reshape, "Transpose": transpose,
    "Squeeze": squeeze, "Unsqueeze": unsqueeze, "Slice": slice_, "Split": split, "Gather": gather,
    "ReduceMean": reduce("mean"), "ReduceSum": reduce("sum"), "ReduceMax": reduce("amax"), "ReduceMin": reduce("amin"),
    "Pad": pad, "Resize": resize, "Upsample": resize,
}  # fmt: skip
# Shape reads a tensor's size, not its values: it folds whatever its input is
OPS["Shape"] = lambda reader, node, attrs, index: _fold_shape(reader, node, attrs)
OPS["Constant"] = lambda reader, node, attrs, index: _fold_constant(reader, node, attrs)


def _ops(graph: Any) -> set[str]:
    return {node.op_type for node in graph.node}
