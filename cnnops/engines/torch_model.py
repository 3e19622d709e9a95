"""``--model``: a model torch builds on its meta device (no weights allocated, nothing downloaded), traced
into a :class:`~cnnops.model.network.Network`.

``torch.fx`` symbolic tracing where it works — every layer, functional call, merge and reshape becomes a
stage, with every size known from running the traced graph on meta tensors; forward hooks on the leaf
layers otherwise (layers in execution order, the code between them as measured rows). Layers cnnops
knows become their cnnops stage (built from the module's ``extra_repr`` through the one stage parser)
and must agree with torch's shape; layers it does not know keep torch's shape and parameter count,
marked as measured. When construction or forward needs real values, the model is built on the CPU
instead, and the notes say so. When forward fails, the rows up to the failing module are kept and the
failure names it (``layer3.0.conv1``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnops.errors import CnnopsError, InputError, LayerError, SpecError
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
from cnnops.spec.aliases import FUNCTIONAL, Functional, functional_arguments
from cnnops.spec.builder import NetworkBuilder
from cnnops.spec.pysource.tensors import DROPOUTS
from cnnops.spec.signatures import LAYERS

_SPEC = re.compile(r"^\s*(?P<target>[^()]+?):(?P<attr>[A-Za-z_][\w.]*)\s*(?P<call>\(.*\))?\s*$", re.S)


@dataclass
class ModelTrace:
    """The network torch's run gave, and the failure where forward stopped (None: it ran through)."""

    network: Network
    error: CnnopsError | None = None
    #: ids of the model's parameters some row counts
    claimed: set[int] = field(default_factory=set)


def parse_model_spec(spec: str) -> tuple[str, str, list[Any], dict[str, Any]]:
    """``pkg.mod:factory(num_classes=10)`` / ``net.py:Net(width=32)`` → (target, attribute, args, kwargs);
    the arguments are Python literals, read with :mod:`ast` and never evaluated.

    >>> parse_model_spec("torchvision.models:resnet18(num_classes=10)")
    ('torchvision.models', 'resnet18', [], {'num_classes': 10})
    """
    match = _SPEC.match(spec)
    if not match:
        raise SpecError(f"model '{spec}': write MODULE:NAME or FILE.py:NAME, maybe with literal arguments, e.g. "
                        "torchvision.models:resnet18 or 'net.py:Net(width=32)'")  # fmt: skip
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if match.group("call"):
        try:
            call = ast.parse("f" + match.group("call"), mode="eval").body
            assert isinstance(call, ast.Call)
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
            if any(k.arg is None for k in call.keywords):
                raise ValueError("**")
        except (SyntaxError, ValueError, AssertionError):
            raise SpecError(f"model '{spec}': the arguments must be Python literals (numbers, strings, tuples, "
                            "lists, dicts, True/False/None)") from None  # fmt: skip
    return match.group("target").strip(), match.group("attr"), args, kwargs


def load_target(target: str, attr: str) -> Any:
    """The object ``attr`` of a module path or a Python file (its folder goes on sys.path for its imports)."""
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    try:
        if is_file:
            path = Path(target).resolve()
            if not path.is_file():
                raise InputError(f"model file '{target}' does not exist")
            sys.path.insert(0, str(path.parent))
            name = f"cnnops_model_{abs(hash(str(path)))}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except CnnopsError:
        raise
    except Exception as exc:  # whatever the model's own code raises while it is imported
        raise InputError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise InputError(f"{target} has no '{attr}'")
        value = getattr(value, part)
    return value


def build_model(factory: Any, args: list[Any], kwargs: dict[str, Any], device: str) -> Any:
    import torch

    with torch.device(device):
        if isinstance(factory, torch.nn.Module):
            model = factory.to(device)
        else:
            model = factory(*args, **kwargs)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"the model spec gives a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def trace_model(spec: str, input_shape: Shape) -> ModelTrace:
    """Build the model of ``spec`` and trace it for an input of ``input_shape``."""
    import torch

    target, attr, args, kwargs = parse_model_spec(spec)
    factory = load_target(target, attr)
    notes: list[str] = []
    try:
        model = build_model(factory, args, kwargs, "meta")
        device = "meta"
    except CnnopsError:
        raise
    except Exception as exc:
        notes.append(f"built on the CPU: on the meta device its constructor fails ({_short(exc)})")
        model, device = _build_on_cpu(factory, args, kwargs), "cpu"
    with torch.no_grad():
        result = _trace(model, input_shape, device)
        if result.error is not None and device == "meta":
            cpu = _build_on_cpu(factory, args, kwargs)
            on_cpu = _trace(cpu, input_shape, "cpu")
            if on_cpu.error is None:
                notes.append(f"ran on the CPU: on the meta device forward() fails ({result.error.bare})")  # type: ignore[attr-defined]
            result, model = on_cpu, cpu
    _account(result, model)
    result.network.notes[:0] = notes
    return result


def _build_on_cpu(factory: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return build_model(factory, args, kwargs, "cpu")
    except CnnopsError:
        raise
    except Exception as exc:
        raise InputError(f"building the model fails: {type(exc).__name__}: {_short(exc)}") from None


def _trace(model: Any, input_shape: Shape, device: str) -> ModelTrace:
    try:
        return FxReader(model, input_shape, device).read()
    except _FxFailed as exc:
        result = HookReader(model, input_shape, device).read()
        if result.error is None:  # (when forward fails, the failure says what matters)
                result.network.notes.append(f"traced by forward hooks on its layers: torch.fx cannot trace it ({exc}); "
                                        "the code between layers shows as measured rows")  # fmt: skip
        return result


class _FxFailed(Exception):
    pass


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "…"


# --- layers -----------------------------------------------------------------------------------------
def module_stage(module: Any) -> Stage | None:
    """The cnnops stage of a torch.nn layer, from the module's own attributes named as the layer's
    arguments (``extra_repr`` leaves some out: AvgPool2d's ceil_mode); None for a class cnnops does not
    have (or a subclass, whose forward may differ)."""
    cls = type(module)
    if not cls.__module__.startswith("torch.nn.") or cls.__name__ not in LAYERS:
        return None
    layer = LAYERS[cls.__name__]
    keywords: list[tuple[str, Any]] = []
    for param in layer.params:
        if param.name in ("weight", "seed") or not hasattr(module, param.name):
            continue
        value = getattr(module, param.name)
        keywords.append((param.name, value is not None if param.name == "bias" else value))
    try:
        stage = _layer(cls.__name__, keywords)
    except (SpecError, _NotLiteral):
        return None
    if stage is None:
        return None
    own = sum(p.numel() for p in module.parameters())
    return stage if stage.params() == own else None


class _Params:
    """Which parameters (by identity) earlier stages counted, to count each once."""

    def __init__(self) -> None:
        self.owner: dict[int, int] = {}

    def claim(self, params: list[Any], number: int) -> int | None:
        """Record ``params`` for stage ``number``; the stage that already counted them, if any."""
        earlier = next((self.owner[id(p)] for p in params if id(p) in self.owner), None)
        for p in params:
            self.owner.setdefault(id(p), number)
        return earlier


def _account(result: ModelTrace, model: Any) -> None:
    """Say where the model's ``sum(p.numel())`` and the table's total part."""
    missing = [(name, p) for name, p in model.named_parameters() if id(p) not in result.claimed]
    if missing and result.error is None:
        numel = sum(p.numel() for _, p in missing)
        owners = sorted({name.rsplit(".", 1)[0] if "." in name else name for name, _ in missing})
        shown = ", ".join(owners[:6]) + (", …" if len(owners) > 6 else "")
        result.network.notes.append(f"{numel:,} of the model's {sum(p.numel() for p in model.parameters()):,} "
                                    f"parameters are in no row: {shown} (never used by forward())")  # fmt: skip


# --- torch.fx ---------------------------------------------------------------------------------------
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


class _NotLiteral(Exception):
    pass


def _layer(name: str, keywords: list[tuple[str, Any]]) -> Stage | None:
    from cnnops.spec.parser import parse_layer
    from cnnops.spec.pysource.reader import literal_text

    if name not in LAYERS:
        return None
    try:
        text = f"{name}({', '.join(f'{k}={literal_text(_plain(v))}' for k, v in keywords)})"
    except Exception:
        raise _NotLiteral() from None
    return parse_layer(text)[0]


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    raise _NotLiteral()


def _layer_functionals() -> dict[str, Functional]:
    from cnnops.spec.pysource.tensors import LAYER_FUNCTIONALS

    return LAYER_FUNCTIONALS


#: keyword arguments of functional calls that change no shape (dtype casts values; training is off)
_NO_SHAPE_KEYWORDS = ("training", "train", "input", "dtype", "_stacklevel")
SAME_SHAPE = frozenset(("contiguous", "clone", "detach", "float", "double", "half", "to", "cpu", "cuda", "type_as",
                        "clamp", "clip", "dropout", "identity"))  # fmt: skip


def _pad_stage(args: Any, kwargs: dict[str, Any], in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Any:
    """``F.pad``: nothing when it pads by nothing, else the padding layer of its mode (when cnnops has it)."""
    from cnnops.spec.pysource.tensors import PAD_LAYERS

    bound = dict(zip(("pad", "mode", "value"), args[1:])) | kwargs
    sizes, mode = tuple(bound.get("pad", ())), bound.get("mode", "constant")
    if not any(sizes) and out_shape == in_shape:
        return "same"
    if mode not in PAD_LAYERS or not sizes or len(sizes) % 2:
        return None
    keywords = [("padding", sizes)] + ([("value", float(bound.get("value") or 0.0))] if mode == "constant" else [])
    try:
        return _layer(PAD_LAYERS[mode].format(n=len(sizes) // 2), keywords)
    except (SpecError, _NotLiteral):
        return None


def _split_dim(producer: Any, values: dict[Any, Any]) -> int | None:
    name = producer.target if isinstance(producer.target, str) else getattr(producer.target, "__name__", "")
    if name not in ("chunk", "split", "tensor_split", "unbind"):
        return None
    args = [values.get(a, a) for a in producer.args]
    dim = args[2] if len(args) > 2 else producer.kwargs.get("dim", 0)
    rank = len(values[producer.args[0]].shape)
    return dim % rank


def _index_text(item: Any) -> str:
    if isinstance(item, slice):
        return ":".join("" if v is None else str(v) for v in (item.start, item.stop)) + (
            "" if item.step is None else f":{item.step}")
    return "None" if item is None else "..." if item is Ellipsis else str(item)


def _measured(name: str, call: str, out_shape: tuple[int, ...], params: int, inputs: int) -> Stage:
    if inputs > 1:
        return MeasuredMerge(name=name, call=call, op="measured", output=out_shape, param_count=params, source="torch")
    return Measured(name=name, call=call, output=out_shape, param_count=params, source="torch")


def _check_against_torch(network: Network, input_shape: Shape, torch_shapes: dict[int, tuple[int, ...]]) -> None:
    """Exact or refused: every cnnops stage must give torch's own shape."""
    from cnnops.model.trace import trace_shapes

    trace = trace_shapes(input_shape, network)
    if trace.error is not None:
        raise SpecError(f"cnnops refuses a stage torch ran ({trace.error}) — please report this model") from None
    for row in trace.rows:
        expected = torch_shapes.get(row.index)
        if expected is not None and row.output_shape != expected:
            raise SpecError(f"stage {row.index} {row.stage.call}: cnnops gives {row.output_shape} but torch "
                            f"{expected} — please report this model")  # fmt: skip


# --- forward hooks ---------------------------------------------------------------------------------
class HookReader:
    """Leaf layers in the order forward() calls them; the code between them (reshapes, merges) as
    measured rows, since hooks see layers but not the code that connects them."""

    def __init__(self, model: Any, input_shape: Shape, device: str):
        self.model, self.device = model, device
        self.builder = NetworkBuilder(input_shape)
        self.params = _Params()
        self.produced: dict[int, int] = {}  # id of an output tensor → its stage
        self.calls: dict[str, int] = {}
        self.stack: list[str] = []
        self.torch_shapes: dict[int, tuple[int, ...]] = {}

    def read(self) -> ModelTrace:
        import torch

        names = {id(m): name for name, m in self.model.named_modules()}
        handles = []
        for name, module in self.model.named_modules():
            handles.append(module.register_forward_pre_hook(self._enter(name)))
            handles.append(module.register_forward_hook(self._leave(name, module, leaf=not any(module.children()))))
        x = torch.zeros(self.builder.input_shape, device=self.device)
        self.produced[id(x)] = 0
        self.keep = [x]
        error: CnnopsError | None = None
        try:
            out = self.model(x)
        except Exception as exc:
            where = self.stack[-1] if self.stack else ""
            module = dict(self.model.named_modules()).get(where)
            kind = type(module).__name__ if module is not None else ""
            place = f"in {where} ({kind})" if where else "in forward() of the model itself"
            error = LayerError(f"torch fails {place}: {_short(exc)}", index=len(self.builder.nodes) + 1,
                               stage=where or type(self.model).__name__)  # fmt: skip
            out = None
        finally:
            for h in handles:
                h.remove()
        del names
        if error is None:
            if not isinstance(out, torch.Tensor):
                raise InputError(f"forward() returns a {type(out).__name__}; cnnops sizes a model with one output tensor")
            ref = self.produced.get(id(out))
            if ref is None:
                ref = self._code_row(tuple(out.shape))
            if ref != len(self.builder.nodes):
                self.builder.emit(LAYERS["Identity"].build("Identity", {}, "Identity()", 0), [ref], label="output")
            _check_against_torch(self.builder.network(), self.builder.input_shape, self.torch_shapes)
        return ModelTrace(self.builder.network(), error, claimed=set(self.params.owner))

    def _enter(self, name: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            self.stack.append(name)

        return hook

    def _leave(self, name: str, module: Any, leaf: bool) -> Any:
        import torch

        def hook(_: Any, args: Any, output: Any) -> None:
            self.stack.pop()
            if not leaf or not isinstance(output, torch.Tensor):
                return
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            refs = []
            for t in tensors:
                ref = self.produced.get(id(t))
                refs.append(self._code_row(tuple(t.shape)) if ref is None else ref)
            count = self.calls[name] = self.calls.get(name, 0) + 1
            label = name if count == 1 else f"{name}#{count}"
            params = list(module.parameters())
            stage = module_stage(module) if len(tensors) == 1 and len(args) == 1 else None
            if stage is None:
                stage = _measured(type(module).__name__, f"{type(module).__name__}({module.extra_repr()})",
                                  tuple(output.shape), sum(p.numel() for p in params), len(refs))  # fmt: skip
            number = len(self.builder.nodes) + 1
            shares = self.params.claim(params, number) if params else None
            self.builder.emit(stage, refs or [len(self.builder.nodes)], label=label, shares=shares)
            self.torch_shapes[number] = tuple(output.shape)
            self.produced[id(output)] = number
            self.keep.append(output)

        return hook

    def _code_row(self, shape: tuple[int, ...]) -> int:
        """A tensor no layer produced: forward() code made it from what came before."""
        stage = Measured(name="forward() code", call="forward() code", output=shape, source="torch")
        number = self.builder.emit(stage, [len(self.builder.nodes)])
        self.torch_shapes[number] = shape
        return number


__all__ = ["trace_model", "parse_model_spec", "ModelTrace"]
