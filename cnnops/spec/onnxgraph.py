"""ONNX graphs → networks: each operator node mapped to the cnnops stage that computes the same, with
the ``onnx`` package (imported only here, only when an ONNX file is read) and no torch.

Parameters are the float initializers a layer takes (weights, biases, BatchNorm's scale and shift — not
its running mean and variance), each counted once: one a second node reads directly is shared. Constant
subgraphs (``Shape → Gather → Concat`` feeding a ``Reshape``) are folded, with the sizes the shape model
gives. Operators outside the mapping get the shape ``onnx.shape_inference`` gives them, marked as
measured, with their initializers counted; where it gives no static shape, the node is refused by name,
op type and position.

``OPS`` is the table: one line per operator, a new layer one line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnops.errors import InputError, SpecError
from cnnops.model.network import Network
from cnnops.model.stages import Merge, Shape, Stage
from cnnops.model.tensor_ops import (
    SLICE_ALL,
    Index,
    Measured,
    MeasuredMerge,
    Permute,
    Reduce,
    Reshape,
    Squeeze,
    Unsqueeze,
)
from cnnops.spec.builder import NetworkBuilder, Refused
from cnnops.spec.signatures import LAYERS

MAX_CONSTANT = 100_000  # elements of a constant the reader folds (shape arithmetic is tiny)
FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


@dataclass
class Const:
    """A constant tensor: its dims, and its values (flat, row-major) when small enough to fold."""

    dims: tuple[int, ...]
    values: list[Any] | None
    floating: bool = False
    initializer: str | None = None  # the initializer it is (for parameter counting)

    @property
    def numel(self) -> int:
        return math.prod(self.dims)

    def ints(self, what: str) -> list[int]:
        if self.values is None or self.floating:
            raise _Unsupported(f"{what} is not a constant list of whole numbers")
        return [int(v) for v in self.values]


class _Unsupported(Exception):
    """The node cannot be mapped as written: it goes to shape inference (or is refused)."""


class OnnxReader:
    def __init__(self, model: Any, origin: str, input_shape: Shape):
        self.model, self.origin = model, origin
        self.graph = model.graph
        self.builder = NetworkBuilder(input_shape)
        self.values: dict[str, int | Const] = {}
        self.initializers = {init.name: init for init in self.graph.initializer}
        self.counted: dict[str, int] = {}  # initializer → the stage that counted it
        self.weight_numel: dict[str, int] = {}
        self.consumers: dict[str, int] = {}
        self.labels: set[str] = set()
        self.inferred: dict[str, tuple[int, ...] | None] | None = None
        self.skip: set[int] = set()
        self.folded_weights: list[int] = []
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1

    # --- values ------------------------------------------------------------------------------------
    def value(self, name: str) -> int | Const:
        if name in self.values:
            return self.values[name]
        if name in self.initializers:
            const = _initializer_const(self.initializers[name])
            self.values[name] = const
            return const
        raise _Unsupported(f"the input '{name}' is produced by no earlier node")

    def activation(self, name: str) -> int:
        value = self.value(name)
        if isinstance(value, Const):
            raise _Unsupported(f"the input '{name}' is a constant where the layer takes a tensor")
        return value

    def const(self, name: str) -> Const:
        value = self.value(name)
        if not isinstance(value, Const):
            raise _Unsupported(f"the input '{name}' is computed from the network's input, not a constant")
        return value

    def shape(self, ref: int) -> Shape:
        return self.builder.shape(ref)

    # --- stages -------------------------------------------------------------------------------------
    def layer(self, node: Any, index: int, name: str, keywords: list[tuple[str, Any]], inputs: list[int],
              weights: list[str] | tuple[()] = ()) -> int:  # fmt: skip
        """The layer ``name(k=v, …)`` through the one stage parser, reading ``inputs``."""
        from cnnops.spec.parser import parse_layer
        from cnnops.spec.pysource.reader import literal_text

        if name not in LAYERS:
            raise _Unsupported(f"it needs nn.{name}, which cnnops does not support yet")
        text = f"{name}({', '.join(f'{k}={literal_text(v)}' for k, v in keywords)})"
        stage, data = parse_layer(text)
        return self.emit(node, stage, inputs, weights)

    def emit(self, node: Any, stage: Stage, inputs: list[int], weights: list[str] | tuple[()] = ()) -> int:
        shares = None
        for weight in weights:
            if weight in self.counted:
                shares = self.counted[weight]
        label = module_name(node.name or "")
        if label is not None:
            base, k = label, 2
            while label in self.labels or label == "input":
                label, k = f"{base}#{k}", k + 1
            self.labels.add(label)
        number = self.builder.emit(stage, inputs, label=label, shares=shares)
        for weight in weights:
            self.counted.setdefault(weight, number)
        return number

    def weight_names(self, node: Any, positions: tuple[int, ...]) -> list[str]:
        """The initializers at ``positions`` of the node's inputs (an Identity of an initializer is a
        tensor of its own: exporters deduplicate equal values through Identity nodes)."""
        names = []
        for i in positions:
            if i < len(node.input) and node.input[i]:
                value = self.value(node.input[i])
                if isinstance(value, Const) and value.floating:
                    name = value.initializer or node.input[i]
                    self.weight_numel[name] = value.numel
                    names.append(name)
        return names

    # --- the walk ------------------------------------------------------------------------------------
    def read(self) -> Network:
        graph = self.graph
        inputs = [i for i in graph.input if i.name not in self.initializers]
        self.values[inputs[0].name] = 0
        try:
            for index, node in enumerate(graph.node, 1):
                if index in self.skip:
                    continue
                self.node(node, index)
            output = self.value(graph.output[0].name)
        except Refused:
            return self.builder.network()
        if isinstance(output, Const):
            raise SpecError(f"{self.origin}: the output '{graph.output[0].name}' is a constant")
        if output != len(self.builder.nodes) or not self.builder.nodes:
            self.builder.emit(LAYERS["Identity"].build("Identity", {}, "Identity()", 0), [output], label="output")
        if len(graph.output) > 1:
            others = ", ".join(o.name for o in graph.output[1:])
            self.builder.notes.append(f"the graph has {len(graph.output)} outputs; the table ends at the first, "
                                      f"'{graph.output[0].name}' (also: {others})")  # fmt: skip
        if self.folded_weights:
            self.builder.notes.append(
                f"the weights of stage{'s' if len(self.folded_weights) > 1 else ''} "
                f"{', '.join(map(str, self.folded_weights))} are constants the exporter computed (a BatchNorm folded "
                "into its convolution, as torch.onnx.export does in evaluation mode): parameters are counted as the "
                "file holds them; export with training=torch.onnx.TrainingMode.PRESERVE to keep the BatchNorm layers"
            )
        return self.builder.network()

    def node(self, node: Any, index: int) -> None:
        handler = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        attrs = _attributes(node)
        try:
            if node.op_type in FOLDABLE and self.constant_inputs(node):
                outputs = FOLDABLE[node.op_type](self, node, attrs)
            elif handler is None:
                raise _Unsupported(f"cnnops has no stage for {node.op_type}")
            else:
                outputs = handler(self, node, attrs, index)
        except _Unsupported as exc:
            outputs = [self.measured(node, index, str(exc))]
        except SpecError as exc:
            raise SpecError(f"{self.origin}: node {index} '{node.name}' ({node.op_type}): {exc}") from None
        for name, value in zip(node.output, outputs):
            if name and value is not None:
                self.values[name] = value

    def constant_inputs(self, node: Any) -> bool:
        for name in node.input:
            if name and not (isinstance(self.values.get(name), Const) or
                             (name not in self.values and name in self.initializers)):  # fmt: skip
                return False
        return True

    def measured(self, node: Any, index: int, reason: str) -> int:
        """A node cnnops cannot map: the shape ONNX shape inference gives, marked, or a refusal."""
        where = f"{self.origin}: node {index} '{node.name or '(unnamed)'}' ({node.op_type})"
        activations = [v for n in node.input if n and isinstance(v := self.values.get(n), int)]
        if not activations:
            raise SpecError(f"{where}: {reason}, and its inputs are constants the reader cannot fold")
        real_outputs = [o for o in node.output if o and self.consumers.get(o, 0) or o in _names(self.graph.output)]
        if len(real_outputs) > 1:
            raise SpecError(f"{where}: {reason}, and it has several outputs, which a measured row cannot give")
        shape = self.inferred_shape(node.output[0])
        if shape is None:
            raise SpecError(f"{where}: {reason}, and ONNX shape inference gives no static shape for its output — "
                            "cnnops cannot size it")  # fmt: skip
        positions = PARAM_INPUTS.get(node.op_type, tuple(range(len(node.input))))
        weights = [n for n in self.weight_names(node, positions) if n not in self.counted]
        params = sum(self.weight_numel.get(n, 0) for n in weights)
        call = f"{node.op_type}()"
        source = "ONNX shape inference"
        if len(activations) > 1:
            stage: Stage = MeasuredMerge(name=node.op_type, call=call, op="measured", output=shape, param_count=params,
                                         source=source)  # fmt: skip
        else:
            stage = Measured(name=node.op_type, call=call, output=shape, param_count=params, source=source)
        number = self.emit(node, stage, activations)
        for weight in weights:
            self.counted.setdefault(weight, number)
        self.builder.notes.append(f"stage {number} {node.op_type}: {reason}; its shape is ONNX shape inference's")
        return number

    def inferred_shape(self, name: str) -> tuple[int, ...] | None:
        if self.inferred is None:
            self.inferred = _infer(self.model, self.builder.input_shape)
        return self.inferred.get(name)


def module_name(name: str) -> str | None:
    """The module path a node name gives: torch's exporter writes ``/layer1/layer1.0/conv1/Conv`` for
    ``layer1.0.conv1`` (and ``/Relu`` for a functional call: no module); other names are kept as they are.

    >>> module_name("/layer1/layer1.0/conv1/Conv"), module_name("/Relu_1"), module_name("conv_5")
    ('layer1.0.conv1', None, 'conv_5')
    """
    if not name.startswith("/"):
        return name or None
    parts: list[str] = []
    for part in name.strip("/").split("/")[:-1]:
        if parts and part.startswith(parts[-1] + "."):
            parts[-1] = part
        else:
            parts.append(part)
    return ".".join(parts) or None


# --- the operators -----------------------------------------------------------------------------------
def _nd(reader: OnnxReader, x: int, node: Any) -> int:
    rank = len(reader.shape(x))
    if rank < 3:
        raise _Unsupported(f"{node.op_type} on a {rank}-D input")
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
        raise _Unsupported(f"its padding is asymmetric ({', '.join(f'{b} before, {e} after' for b, e in pads)}), "
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
        raise _Unsupported(f"auto_pad={attrs['auto_pad']} on a transposed convolution")
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
            raise _Unsupported("its indices output is used")
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
            raise _Unsupported("average pooling with dilation")
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
        raise _Unsupported("Gemm with a transposed input")
    out, into = weight.dims if attrs.get("transB", 0) else weight.dims[::-1]
    bias = len(node.input) > 2 and bool(node.input[2])
    if bias and reader.const(node.input[2]).numel not in (out, 1):
        raise _Unsupported("Gemm whose bias is not one value per output")
    keywords = [("in_features", into), ("out_features", out), ("bias", bias)]
    return [reader.layer(node, index, "Linear", keywords, [x], reader.weight_names(node, (1, 2)))]


def matmul(reader: OnnxReader, node: Any, attrs: dict[str, Any], index: int) -> list[Any]:
    """MatMul by a constant (K, N) matrix is a Linear; an Add of a constant (N,) right after it is its bias."""
    x = reader.activation(node.input[0])
    weight = reader.const(node.input[1])
    if len(weight.dims) != 2:
        raise _Unsupported("MatMul by a constant that is not a matrix")
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
        raise _Unsupported("HardSigmoid with other constants than PyTorch's (1/6, 0.5)")
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
        raise _Unsupported(f"BatchNormalization of a {rank}-D input")
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
        raise _Unsupported(f"{name} by a constant tensor {tuple(const.dims)}")

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


def _axes(reader: OnnxReader, node: Any, attrs: dict[str, Any], position: int = 1) -> list[int] | None:
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(node.input) > position and node.input[position]:
        return reader.const(node.input[position]).ints("the axes")
    return None


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
        raise _Unsupported("Concat of tensors and constants")
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
        raise _Unsupported("Slice with a negative step")
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
        raise _Unsupported("Gather with several indices")
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
        raise _Unsupported("Pad with axes")
    padded = [i for i in range(rank) if begins[i] or ends[i]]
    n = rank - padded[0]
    if padded[0] < 2 or n > 3:
        raise _Unsupported("Pad of the batch or channel dimension")
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
            raise _Unsupported("Resize of the batch or channel dimension")
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

Handler = Callable[[OnnxReader, Any, dict[str, Any], int], list[Any]]
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


# --- constants ---------------------------------------------------------------------------------------
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
    raise _Unsupported("a Constant of a kind the reader does not fold")


def _elementwise(op: Callable[[Any, Any], Any]) -> Callable[..., list[Any]]:
    def fold(reader: OnnxReader, node: Any, attrs: dict[str, Any]) -> list[Any]:
        a, b = (reader.const(n) for n in node.input[:2])
        if a.values is None or b.values is None:
            raise _Unsupported("arithmetic on large constants")
        if a.numel != b.numel and 1 not in (a.numel, b.numel):
            raise _Unsupported("broadcasting between constants")
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
        raise _Unsupported("Gather on constants other than a list")
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
        raise _Unsupported("folding a large constant")
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
    return [Const(value.dims, value.values, value.floating, None)]


FOLDABLE: dict[str, Callable[[OnnxReader, Any, dict[str, Any]], list[Any]]] = {
    "Constant": _fold_constant, "Shape": _fold_shape, "Gather": _fold_gather, "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze, "Concat": _fold_concat, "Cast": _fold_cast, "Slice": _fold_slice,
    "Add": _elementwise(lambda x, y: x + y), "Sub": _elementwise(lambda x, y: x - y),
    "Mul": _elementwise(lambda x, y: x * y), "Div": _elementwise(_int_div),
    "ConstantOfShape": _fold_constant_of_shape, "Identity": _fold_identity, "Reshape": _fold_reshape,
    "Transpose": _fold_transpose,
}  # fmt: skip
# Shape reads a tensor's size, not its values: it folds whatever its input is
OPS["Shape"] = lambda reader, node, attrs, index: _fold_shape(reader, node, attrs)
OPS["Constant"] = lambda reader, node, attrs, index: _fold_constant(reader, node, attrs)


# --- onnx ----------------------------------------------------------------------------------------
def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


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
    return const


def _names(values: Any) -> set[str]:
    return {v.name for v in values}


def _ops(graph: Any) -> set[str]:
    return {node.op_type for node in graph.node}


def _infer(model: Any, input_shape: Shape) -> dict[str, tuple[int, ...] | None]:
    """Every value's static shape by ONNX shape inference, with the input fixed to ``input_shape``."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    initializers = {i.name for i in copy.graph.initializer}
    graph_input = next(i for i in copy.graph.input if i.name not in initializers)
    dims = graph_input.type.tensor_type.shape.dim
    del dims[:]
    for n in input_shape:
        dims.add().dim_value = n
    # shapes the file states for other sizes (or by a tool's guess) must not stand in for inferred ones
    del copy.graph.value_info[:]
    for output in copy.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(copy, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises its own error types for graphs it cannot infer
        raise SpecError(f"ONNX shape inference failed on the graph: {exc}") from None
    out: dict[str, tuple[int, ...] | None] = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        shape = info.type.tensor_type.shape
        known = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
        out[info.name] = tuple(known) if info.type.tensor_type.HasField("shape") and None not in known else None  # type: ignore[arg-type]
    return out


def file_input_shape(model: Any, origin: str) -> tuple[list[int | str], str]:
    """The graph input's dims as the file states them (a name for a symbolic dim) and its name."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise SpecError(f"{origin}: the graph takes {len(inputs)} inputs ({names}); cnnops sizes a model with one input")
    dims = inputs[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?") for d in dims], inputs[0].name


def read_onnx_model(model: Any, origin: str, input_shape: Shape | None = None) -> tuple[Network, Shape]:
    """The network of an ``onnx.ModelProto`` and the input shape used (``input_shape``, or the file's own)."""
    dims, name = file_input_shape(model, origin)
    if input_shape is None:
        symbolic = [d for d in dims if not isinstance(d, int)]
        if symbolic:
            shown = "×".join(map(str, dims))
            raise InputError(f"{origin}: the input '{name}' has the shape {shown} with a symbolic dimension "
                             f"'{symbolic[0]}' — give the input shape, e.g. cnnops shape "
                             f"{'x'.join(str(d) if isinstance(d, int) else '1' for d in dims)} {origin}")  # fmt: skip
        input_shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    elif len(input_shape) != len(dims):
        raise InputError(f"{origin}: the input '{name}' is {len(dims)}-D ({'×'.join(map(str, dims))}); the shape "
                         f"given is {len(input_shape)}-D")  # fmt: skip
    reader = OnnxReader(model, origin, tuple(input_shape))
    return reader.read(), tuple(input_shape)


def read_onnx_file(path: str, input_shape: Shape | None = None) -> tuple[Network, Shape]:
    try:
        import onnx
    except ImportError:
        raise InputError("reading ONNX files needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(path)
    except FileNotFoundError:
        raise InputError(f"ONNX file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"'{path}' is a directory — give an .onnx file") from None
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors: the file is not a model
        raise InputError(f"'{path}' is not an ONNX model the onnx package can read ({type(exc).__name__})") from None
    return read_onnx_model(model, path, input_shape)
