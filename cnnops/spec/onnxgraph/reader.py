"""The walk over an ONNX graph: each node through the operator table (or folded when its inputs are
constants), parameters counted once per initializer, and what cnnops cannot map measured by ONNX shape
inference or refused by node."""

from __future__ import annotations

from typing import Any

from cnnops.errors import SpecError
from cnnops.model.network import Network
from cnnops.model.stages import Shape, Stage
from cnnops.model.tensor_ops import Measured, MeasuredMerge
from cnnops.spec.builder import NetworkBuilder, Refused
from cnnops.spec.onnxgraph.constants import FOLDABLE, Const, Unsupported, _initializer_const
from cnnops.spec.onnxgraph.operators import OPS, PARAM_INPUTS
from cnnops.spec.signatures import LAYERS


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
        raise Unsupported(f"the input '{name}' is produced by no earlier node")

    def activation(self, name: str) -> int:
        value = self.value(name)
        if isinstance(value, Const):
            raise Unsupported(f"the input '{name}' is a constant where the layer takes a tensor")
        return value

    def const(self, name: str) -> Const:
        value = self.value(name)
        if not isinstance(value, Const):
            raise Unsupported(f"the input '{name}' is computed from the network's input, not a constant")
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
            raise Unsupported(f"it needs nn.{name}, which cnnops does not support yet")
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
                if isinstance(value, Const) and value.floating and value.learned:
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
                if any(isinstance(v := self.value(n), Const) and v.learned for n in node.input if n):
                    for out in outputs:
                        if isinstance(out, Const):
                            out.learned = True
            elif handler is None:
                raise Unsupported(f"cnnops has no stage for {node.op_type}")
            else:
                outputs = handler(self, node, attrs, index)
        except Unsupported as exc:
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


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _names(values: Any) -> set[str]:
    return {v.name for v in values}


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
