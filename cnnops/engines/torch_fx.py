"""``--model`` by ``torch.fx``: the traced graph run on the model's device (meta: no data) with every value
recorded, each node that yields a tensor one stage — a layer, a functional call, a merge, a reshape."""

from __future__ import annotations

import operator
from typing import Any

from cnnops.engines.torch_layers import (
    _NO_SHAPE_KEYWORDS,
    SAME_SHAPE,
    ModelTrace,
    _check_against_torch,
    _FxFailed,
    _index_text,
    _layer,
    _layer_functionals,
    _measured,
    _NotLiteral,
    _pad_stage,
    _Params,
    _short,
    _split_dim,
    module_stage,
)
from cnnops.errors import SpecError
from cnnops.model.stages import Merge, Shape, Stage
from cnnops.model.tensor_ops import (
    SLICE_ALL,
    Index,
    Permute,
    Reduce,
    Reshape,
    Squeeze,
    Unsqueeze,
)
from cnnops.spec.aliases import FUNCTIONAL, Functional, functional_arguments
from cnnops.spec.builder import NetworkBuilder
from cnnops.spec.pysource.tensors import DROPOUTS
from cnnops.spec.signatures import LAYERS


class FxReader:
    def __init__(self, model: Any, input_shape: Shape, device: str):
        self.model, self.device = model, device
        self.builder = NetworkBuilder(input_shape)
        self.refs: dict[Any, int] = {}
        self.values: dict[Any, Any] = {}
        self.params = _Params()
        self.claimed: set[int] = set()
        self.calls: dict[str, int] = {}
        self.torch_shapes: dict[int, tuple[int, ...]] = {}

    def read(self) -> ModelTrace:
        import torch
        import torch.fx

        try:
            graph_module = torch.fx.symbolic_trace(self.model)
        except Exception as exc:
            raise _FxFailed(_short(exc)) from None
        placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise _FxFailed(f"forward() takes {len(placeholders)} inputs")
        values = self.values

        class Recorder(torch.fx.Interpreter):
            def run_node(self, n: Any) -> Any:
                result = super().run_node(n)
                values[n] = result
                return result

        try:
            Recorder(graph_module).run(torch.zeros(self.builder.input_shape, device=self.device))
        except Exception as exc:
            raise _FxFailed(f"running the traced graph fails: {_short(exc)}") from None
        self.graph_module = graph_module
        output = None
        for node in graph_module.graph.nodes:
            if node.op == "placeholder":
                self.refs[node] = 0
            elif node.op == "output":
                output = node.args[0]
            elif node.op != "get_attr" and isinstance(values.get(node), torch.Tensor):
                self.refs[node] = self.node(node)
        if not isinstance(output, torch.fx.Node) or output not in self.refs:
            raise _FxFailed("forward() does not return one tensor")
        if self.refs[output] != len(self.builder.nodes):
            self.builder.emit(LAYERS["Identity"].build("Identity", {}, "Identity()", 0), [self.refs[output]],
                              label="output")  # fmt: skip
        network = self.builder.network()
        _check_against_torch(network, self.builder.input_shape, self.torch_shapes)
        return ModelTrace(network, claimed=set(self.params.owner))

    def tensor_inputs(self, node: Any) -> tuple[list[Any], list[Any]]:
        """The tensors a node reads: outputs of earlier stages, and tensors the model holds (get_attr)."""
        import torch
        import torch.fx

        found: list[Any] = []
        held: list[Any] = []
        torch.fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if n in self.refs else None)
        torch.fx.node.map_arg((node.args, node.kwargs), lambda n: held.append(n) if n.op == "get_attr" and
                              isinstance(self.values.get(n), torch.Tensor) else None)  # fmt: skip
        return list(dict.fromkeys(found)), held

    def node(self, node: Any) -> int:
        inputs, held = self.tensor_inputs(node)
        producer = node.args[0] if node.op == "call_function" and node.target is operator.getitem else None
        if producer is not None and isinstance(self.values.get(producer), (tuple, list)):
            inputs, held = self.tensor_inputs(producer)  # a part of chunk/split: it reads what they split
        out_shape = tuple(self.values[node].shape)
        refs = [self.refs[n] for n in inputs]
        if node.op == "call_module":
            module = self.graph_module.get_submodule(node.target)
            return self.module(node, module, refs, out_shape)
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
        stage: Stage | str | None = None
        if len(inputs) == 1 and not held:
            stage = self.function(node, name, inputs[0], out_shape)
            if stage == "same":
                return refs[0]
        elif len(inputs) >= 2 and not held:
            stage = self.merge(node, name, inputs)
        if not isinstance(stage, Stage):
            return self.measured(node, name, refs, out_shape, [self.values[n] for n in held])
        return self.emit(stage, refs, out_shape)

    def emit(self, stage: Stage, refs: list[int], out_shape: tuple[int, ...], *, label: str | None = None,
             params: list[Any] | tuple[()] = ()) -> int:  # fmt: skip
        number = len(self.builder.nodes) + 1
        shares = self.params.claim(list(params), number) if params else None
        self.builder.emit(stage, refs or [0], label=label, shares=shares)
        self.torch_shapes[number] = out_shape
        return number

    def module(self, node: Any, module: Any, refs: list[int], out_shape: tuple[int, ...]) -> int:
        name = node.target
        count = self.calls[name] = self.calls.get(name, 0) + 1
        label = name if count == 1 else f"{name}#{count}"
        params = list(module.parameters())
        stage = module_stage(module) if len(refs) == 1 and len(node.args) == 1 and not node.kwargs else None
        if stage is None:
            stage = _measured(type(module).__name__, f"{type(module).__name__}({module.extra_repr()})", out_shape,
                              sum(p.numel() for p in params), len(refs))  # fmt: skip
        return self.emit(stage, refs, out_shape, label=label, params=params)

    def function(self, node: Any, name: str, source: Any, out_shape: tuple[int, ...]) -> Stage | str | None:
        """A call on one tensor: a layer's functional form, or a tensor operation."""
        import torch

        args = torch.fx.node.map_arg(node.args, lambda n: self.values[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: self.values[n])
        in_shape = tuple(self.values[source].shape)
        base = name.rstrip("_")
        if base in ("cat", "concat", "concatenate") and out_shape == in_shape:
            return "same"  # one tensor concatenated: itself
        if base in SAME_SHAPE and out_shape == in_shape and base not in DROPOUTS:
            return "same"
        if base in ("add", "sub", "mul", "truediv", "div", "iadd", "isub", "imul", "itruediv", "floordiv", "pow",
                    "neg", "abs"):  # fmt: skip
            return "same" if out_shape == in_shape else None  # with a number: the tensor's shape
        functional = FUNCTIONAL.get(base) or _layer_functionals().get(base)
        if base in DROPOUTS:
            functional = Functional(DROPOUTS[base], ("p", "training", "inplace"))
        if functional is not None:
            constants = [a for a in args if not isinstance(a, torch.Tensor)]
            if len(constants) != len(args) - 1 or not isinstance(args[0], torch.Tensor):
                return None
            keywords = [(k, v) for k, v in kwargs.items() if k not in _NO_SHAPE_KEYWORDS]
            try:
                bound = functional_arguments(functional, constants, keywords)
                return _layer(functional.layer, [(str(k), v) for k, v in bound if k not in ("training", "train")])
            except (SpecError, _NotLiteral):
                return None
        rest = [a for a in args[1:]]
        if base in ("view", "reshape", "view_as", "reshape_as", "flatten_") or name == "reshape":
            return Reshape(name=base, call=f"{base}({', '.join(map(str, out_shape))})", target=out_shape)
        if base == "permute":
            dims = tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else tuple(rest)
            return Permute(name="permute", call=f"permute({', '.join(map(str, dims))})", dims=dims)
        if base in ("transpose", "swapaxes", "swapdims") and len(rest) == 2:
            return Permute(name="transpose", call=f"transpose({rest[0]}, {rest[1]})", swap=(rest[0], rest[1]))
        if base in ("mean", "sum", "amax", "amin"):
            dim = rest[0] if rest else kwargs.get("dim")
            keep = bool(rest[1] if len(rest) > 1 else kwargs.get("keepdim", False))
            reduced = None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
            return Reduce(name=base, call=f"{base}(dim={dim}{', keepdim=True' if keep else ''})", dims=reduced,
                          keepdim=keep)
        if base == "squeeze":
            dim = rest[0] if rest else kwargs.get("dim")
            return Squeeze(name="squeeze", call=f"squeeze({'' if dim is None else dim})",
                           dims=None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim)))  # fmt: skip
        if base == "unsqueeze":
            dim = rest[0] if rest else kwargs.get("dim")
            return Unsqueeze(name="unsqueeze", call=f"unsqueeze({dim})", dim=dim)
        if name == "getitem":
            return self.getitem(node, source, args[1])
        if base == "pad":
            return _pad_stage(args, kwargs, in_shape, out_shape)
        return None

    def getitem(self, node: Any, source: Any, index: Any) -> Stage | None:
        import torch

        value = self.values[node.args[0]]
        if isinstance(value, (tuple, list)):  # a part of chunk/split: where it lies along its dim
            producer = node.args[0]
            whole = self.values[source]
            dim = _split_dim(producer, self.values)
            if dim is None:
                return None
            start = sum(t.shape[dim] for t in value[:index])
            items = (SLICE_ALL,) * dim + (("slice", start, start + value[index].shape[dim], None),)
            name = producer.target if isinstance(producer.target, str) else producer.target.__name__
            assert isinstance(whole, torch.Tensor)
            return Index(name=name, call=f"{name}(…)[{index}]", items=items)
        items = index if isinstance(index, tuple) else (index,)
        out: list[tuple[Any, ...]] = []
        for item in items:
            if isinstance(item, slice):
                out.append(("slice", item.start, item.stop, item.step))
            elif isinstance(item, int) and not isinstance(item, bool):
                out.append(("int", item))
            elif item is None:
                out.append(("none",))
            elif item is Ellipsis:
                out.append(("ellipsis",))
            else:
                return None
        return Index(name="getitem", call=f"x[{', '.join(map(_index_text, items))}]", items=tuple(out))

    def merge(self, node: Any, name: str, inputs: list[Any]) -> Stage | None:
        import torch

        base = name.rstrip("_").removeprefix("i") if name not in ("cat", "concat", "concatenate") else name
        tensors = [a for a in torch.fx.node.map_arg(node.args, lambda n: n) if a in self.refs] if base not in (
            "cat", "concat", "concatenate", "stack") else None  # fmt: skip
        if base in ("add", "sub", "mul", "truediv", "div") and tensors is not None and len(tensors) == 2:
            label = {"add": "Add", "sub": "Sub", "mul": "Mul", "truediv": "Div", "div": "Div"}[base]
            return Merge(name=label, call=f"{label}()", op="add" if label in ("Add", "Sub") else "mul")
        if base in ("cat", "concat", "concatenate"):
            parts = node.args[0]
            if not isinstance(parts, (list, tuple)) or list(parts) != inputs:
                return None
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            return LAYERS["Cat"].build("Cat", {"dim": dim}, "Cat()" if dim == 1 else f"Cat(dim={dim})", 0)
        return None

    def measured(self, node: Any, name: str, refs: list[int], out_shape: tuple[int, ...], tensors: list[Any]) -> int:
        params = [t for t in tensors if t.__class__.__name__ == "Parameter"]
        stage = _measured(name, f"{name}()", out_shape, sum(p.numel() for p in params), len(refs))
        return self.emit(stage, refs, out_shape, params=params)
