"""Modules and tensors for the interpreter: ``nn.*`` layers and containers built in ``__init__``, and the
network forward() makes of them — every layer call, functional call and tensor operation one stage."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from cnnops.errors import SpecError
from cnnops.model.network import Network, Node
from cnnops.model.stages import Merge, Shape, Stage
from cnnops.spec.builder import NetworkBuilder, Refused
from cnnops.spec.pysource import tensors
from cnnops.spec.pysource.builtins import plain
from cnnops.spec.pysource.interpreter import Frame, Interpreter, Stop, _TorchBaseMethod
from cnnops.spec.pysource.values import (
    MISSING,
    Container,
    LayerModule,
    Module,
    Partial,
    ReadError,
    Ref,
    Tensor,
    UnsupportedModule,
    UserClass,
    UserFunction,
    UserModule,
    container_item,
    set_attribute,
)
from cnnops.spec.signatures import LAYERS

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
#: nn.Module methods that change no size (weight initialisation, hooks, buffers of constants)
IGNORED_MODULE_METHODS = ("apply", "register_forward_hook", "register_forward_pre_hook", "train", "eval",
                          "requires_grad_", "zero_grad", "to", "cpu", "cuda", "float", "double", "half")  # fmt: skip
#: library calls that change no size and whose result the code does not use
IGNORED_CALLS = ("torch.nn.init.", "torch.manual_seed", "warnings.warn", "logging.")


class TensorMethod:
    """``x.view`` before it is called."""

    def __init__(self, tensor: Tensor, name: str):
        self.tensor, self.name = tensor, name


class ModuleMethod:
    """``self.features.add_module``, ``self.blocks.append``, ``self.layers.items`` before they are called."""

    def __init__(self, module: Module, name: str):
        self.module, self.name = module, name


class Reader(Interpreter):
    def __init__(self, module: ast.Module, origin: str, input_shape: Shape):
        super().__init__(module)
        self.origin = origin
        self.builder = NetworkBuilder(input_shape)
        self.notes = self.builder.notes
        self.qualnames: dict[int, str] = {}
        self.calls: dict[int, list[int]] = {}

    # --- the network -----------------------------------------------------------------------------
    def emit(self, stage: Stage, inputs: list[Tensor], *, label: str | None = None, shares: int | None = None,
             data: Any = None) -> Tensor:  # fmt: skip
        try:
            return Tensor(self.builder.emit(stage, [t.ref for t in inputs], label=label, shares=shares, data=data))
        except Refused as exc:
            raise ReadError(None, str(exc), suggest_model=False) from None

    @property
    def nodes(self) -> list[Node]:
        return self.builder.nodes

    def network(self) -> Network:
        return self.builder.network()

    def shape(self, tensor: Tensor) -> Shape:
        """The tensor's shape, from the shape model over the stages so far."""
        try:
            return self.builder.shape(tensor.ref)
        except Refused:
            raise Stop() from None

    # --- calls -----------------------------------------------------------------------------------
    def call(self, func: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        if isinstance(func, TensorMethod):
            return tensors.call_method(self, func.tensor, func.name, args, kwargs, node)
        if isinstance(func, ModuleMethod):
            return self.module_method(func, args, kwargs, node)
        return super().call(func, args, kwargs, node)

    def call_library(self, ref: Ref, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        path = ref.path
        line = getattr(node, "lineno", None)
        if path.startswith("torch.nn.") and path.count(".") == 2 and path[9:10].isupper():
            return self.build(path[9:], args, kwargs, node)
        if path.startswith("torch.nn.modules.") and path.rsplit(".", 1)[1][:1].isupper():
            return self.build(path.rsplit(".", 1)[1], args, kwargs, node)
        if path.startswith(IGNORED_CALLS):
            return None
        if path in ("collections.OrderedDict", "builtins.dict"):
            return dict(self.iterate(args[0], node)) if args else {}
        if path == "functools.partial":
            return Partial(args[0], tuple(args[1:]), tuple(kwargs.items()))
        if path.startswith("math."):
            return self.math(path[5:], args, node)
        if path in ("torch.jit.is_scripting", "torch.jit.is_tracing", "torch.is_grad_enabled"):
            return False
        if path in ("torch.jit.annotate", "typing.cast"):
            return args[1]
        if any(isinstance(a, Tensor) for a in args) or any(isinstance(a, (list, tuple)) and any(isinstance(t, Tensor) for t in a) for a in args):
            return tensors.call_function(self, path, args, kwargs, node)
        raise ReadError(line, f"'{_call_text(node)}' calls {path}, which the reader does not follow")

    def math(self, name: str, args: list[Any], node: ast.AST) -> Any:
        functions: dict[str, Callable[..., Any]] = {"ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "log": math.log, "log2": math.log2,
                     "prod": math.prod, "gcd": math.gcd, "isqrt": math.isqrt, "pow": math.pow, "exp": math.exp,
                     "trunc": math.trunc}  # fmt: skip
        if name not in functions or not all(plain(a) for a in args):
            raise ReadError(getattr(node, "lineno", None), f"'{_call_text(node)}' is outside the code cnnops reads")
        try:
            return functions[name](*args)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ReadError(getattr(node, "lineno", None), f"'{_call_text(node)}' fails: {exc}") from None

    def build(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        """``nn.Conv2d(…)``: a layer through the one parser, a container, or a class cnnops has no stage for."""
        line = getattr(node, "lineno", 0)
        if name in CONTAINERS:
            container = Container(line, name)
            self.torch_init(name, container, args, kwargs, node)
            return container
        if name == "Module":
            return UserModule(line, UserClass(ast.ClassDef(name="Module", bases=[], keywords=[], body=[],
                                                            decorator_list=[]), [Ref("torch.nn.Module")]), "module")  # fmt: skip
        if name == "Parameter":
            raise ReadError(line, "an nn.Parameter (a learned tensor used directly in forward()) has no stage in "
                                  "cnnops")  # fmt: skip
        if name not in LAYERS:
            from cnnops.spec.aliases import TORCH_NN

            if name in TORCH_NN:
                return UnsupportedModule(line, name, f"cnnops does not support PyTorch's nn.{name} yet")
            raise ReadError(line, f"torch.nn has no class {name}", suggest_model=False)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("device", "dtype")}
        if not all(plain(a) for a in [*args, *kwargs.values()]):
            bad = next(a for a in [*args, *kwargs.values()] if not plain(a))
            raise ReadError(line, f"nn.{name} gets {_describe(bad)} as an argument; layer arguments must be numbers, "
                                  "strings or tuples")  # fmt: skip
        text = f"{name}({', '.join([literal_text(a) for a in args] + [f'{k}={literal_text(v)}' for k, v in kwargs.items()])})"
        from cnnops.spec.parser import parse_layer

        try:
            stage, data = parse_layer(text)
        except SpecError as exc:
            raise ReadError(line, str(exc), suggest_model=False) from None
        return LayerModule(line, stage, data, name)

    def torch_init(self, kind: str, module: Container, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> None:
        """What nn.Module / Sequential / ModuleList / ModuleDict's constructors register."""
        line = getattr(node, "lineno", None)
        if kind == "Sequential":
            if len(args) == 1 and isinstance(args[0], dict):
                items = list(args[0].items())
            else:
                items = [(str(i), a) for i, a in enumerate(args)]
        elif kind == "ModuleList":
            items = [(str(i), a) for i, a in enumerate(self.iterate(args[0], node))] if args else []
        elif kind == "ModuleDict":
            source = args[0] if args else {}
            items = list(source.items()) if isinstance(source, dict) else [tuple(p) for p in self.iterate(source, node)]
        else:
            items = []
        for key, value in items:
            if not isinstance(value, Module):
                raise ReadError(line, f"nn.{kind} holds {_describe(value)}, not a module", suggest_model=False)
            module.children[str(key)] = value

    def call_torch_base(self, method: _TorchBaseMethod, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        receiver = method.receiver
        if method.name == "__init__":
            if isinstance(receiver, Container):
                self.torch_init(method.base, receiver, args, kwargs, node)
            return None
        if method.name == "forward" and method.base == "Sequential" and isinstance(receiver, Container):
            return self.chain(receiver, args, node)
        if method.name in IGNORED_MODULE_METHODS:
            return None
        raise ReadError(getattr(node, "lineno", None), f"super().{method.name} of nn.{method.base} is outside the code "
                                                       "cnnops reads")  # fmt: skip

    def instantiate(self, cls: UserClass, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        line = getattr(node, "lineno", 0)
        base = cls.torch_base()
        if base is None:
            raise ReadError(line, f"class {cls.name} is not an nn.Module; the reader builds modules only")
        if base not in ("Module", *CONTAINERS):
            raise ReadError(line, f"class {cls.name} derives from nn.{base}, whose inner workings the reader does "
                                  "not know")  # fmt: skip
        module = UserModule(line, cls, "module" if base == "Module" else base)
        found = cls.lookup("__init__")
        if found is not None and isinstance(found[1], ast.FunctionDef):
            result = self.invoke(UserFunction(found[1], found[0]), [module, *args], kwargs, node)
            if result is not None:
                raise ReadError(line, f"{cls.name}.__init__ returns a value")
        else:
            self.torch_init(module.kind, module, args, kwargs, node)
        return module

    # --- modules ---------------------------------------------------------------------------------
    def module_attribute(self, module: Module, name: str, node: ast.AST) -> Any:
        line = getattr(node, "lineno", None)
        if name in module.children:
            return module.children[name]
        if isinstance(module, UserModule):
            if name in module.attrs:
                return module.attrs[name]
            found = module.cls.lookup(name)
            if found is not None:
                owner, member = found
                if isinstance(member, ast.FunctionDef):
                    return bind_method(member, owner, module)
                return member
        if name == "training":
            return False  # the model is sized as it is evaluated (model.eval())
        if isinstance(module, LayerModule):
            value = module.option(name)
            if value is not MISSING and plain(value):
                return value
            raise ReadError(line, f"the reader does not know {module.torch_name}'s attribute '{name}'")
        if name in ("add_module", "register_module", "append", "extend", "insert", "items", "keys", "values",
                    "children", "named_children", "register_buffer", "register_parameter",
                    *IGNORED_MODULE_METHODS):  # fmt: skip
            return ModuleMethod(module, name)
        if name == "forward" and isinstance(module, Container) and module.kind == "Sequential":
            return ModuleMethod(module, "forward")
        raise ReadError(line, f"'{_call_text(node)}': the module has no attribute '{name}' the reader knows")

    def module_method(self, method: ModuleMethod, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        module, name = method.module, method.name
        line = getattr(node, "lineno", None)
        if name in IGNORED_MODULE_METHODS:
            return module if name in ("train", "eval", "to", "cpu", "cuda", "float", "double", "half",
                                      "requires_grad_") else None  # fmt: skip
        if name in ("add_module", "register_module"):
            if not isinstance(args[1], Module) and args[1] is not None:
                raise ReadError(line, f"add_module is given {_describe(args[1])}, not a module")
            if isinstance(module, UserModule) and module.kind == "module":
                set_attribute(module, str(args[0]), args[1])
            else:
                module.children[str(args[0])] = args[1]
            return None
        if name in ("register_buffer", "register_parameter"):
            raise ReadError(line, f"{name}(…): tensors held outside layers have no stage in cnnops")
        if not isinstance(module, Container):
            raise ReadError(line, f"'{_call_text(node)}' is outside the code cnnops reads")
        if name == "forward":
            return self.chain(module, args, node)
        if name == "append":
            module.children[str(len(module.children))] = args[0]
            return module
        if name == "extend":
            for item in self.iterate(args[0], node):
                module.children[str(len(module.children))] = item
            return module
        if name == "insert":
            items = [m for _, m in module.items()]
            items.insert(args[0], args[1])
            module.children = {str(i): m for i, m in enumerate(items)}
            return None
        if name in ("items", "named_children"):
            return [(k, m) for k, m in module.items()]
        if name == "keys":
            return [k for k, _ in module.items()]
        if name in ("values", "children"):
            return [m for _, m in module.items()]
        raise ReadError(line, f"'{_call_text(node)}' is outside the code cnnops reads")

    def call_module(self, module: Module, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        line = getattr(node, "lineno", None)
        if isinstance(module, UnsupportedModule):
            raise ReadError(line, f"{self.name_of(module) or 'the layer'} is nn.{module.torch_name} (line "
                                  f"{module.line}): {module.reason}")  # fmt: skip
        if isinstance(module, UserModule):
            found = module.cls.lookup("forward")
            if found is not None and isinstance(found[1], ast.FunctionDef):
                return self.invoke(UserFunction(found[1], found[0]), [module, *args], kwargs, node)
        if isinstance(module, Container):
            if module.kind == "Sequential":
                return self.chain(module, args, node)
            raise ReadError(line, f"{self.name_of(module) or 'an ' + module.kind} is an nn.{module.kind}, which "
                                  "PyTorch cannot call — call its layers")  # fmt: skip
        assert isinstance(module, LayerModule)
        if kwargs or len(args) != 1 or not isinstance(args[0], Tensor):
            raise ReadError(line, f"'{_call_text(node)}': a layer is called on one tensor here")
        return self.call_layer(module, args[0], node)

    def chain(self, module: Container, args: list[Any], node: ast.AST) -> Any:
        if len(args) != 1:
            raise ReadError(getattr(node, "lineno", None), "an nn.Sequential is called on one input")
        x = args[0]
        for _, child in module.items():
            x = self.call_module(child, [x], {}, node)
        return x

    def call_layer(self, module: LayerModule, x: Tensor, node: ast.AST) -> Tensor:
        stage = module.stage
        line = getattr(node, "lineno", None)
        if getattr(stage, "return_indices", False):
            raise ReadError(line, f"{stage.call} returns indices as well; pairing pools with unpools in code is "
                                  "outside what the reader follows")  # fmt: skip
        if stage.kind == "unpool":
            raise ReadError(line, f"{stage.call} takes indices from a pool; that pairing in code is outside what the "
                                  "reader follows")  # fmt: skip
        name = self.name_of(module)
        calls = self.calls.setdefault(id(module), [])
        label = None if name is None else (name if not calls else f"{name}#{len(calls) + 1}")
        shares = calls[0] if calls and stage.params() else None
        out = self.emit(stage, [x], label=label, shares=shares, data=module.data)
        calls.append(out.ref)
        if name is None and stage.params():
            self.notes.append(f"line {module.line}: {stage.call} is not registered with the model (a plain list or a "
                              "layer made in forward()): PyTorch's model.parameters() leaves out its "
                              f"{stage.params():,} parameters, which the table counts")  # fmt: skip
        return tensors.inplace(x, out) if tensors.is_inplace(stage) else out

    def name_of(self, module: Module) -> str | None:
        return self.qualnames.get(id(module))

    # --- tensors ---------------------------------------------------------------------------------
    def tensor_attribute(self, tensor: Tensor, name: str, node: ast.AST) -> Any:
        if name == "shape":
            return self.shape(tensor)
        if name == "ndim":
            return len(self.shape(tensor))
        if name in ("device", "dtype"):
            return Ref("torch." + name)
        return TensorMethod(tensor, name)

    def tensor_binary(self, op: ast.operator, left: Any, right: Any, node: ast.AST, inplace: bool) -> Any:
        return tensors.binary(self, op, left, right, node, inplace)

    def tensor_subscript(self, tensor: Tensor, index: Any, node: ast.AST) -> Any:
        return tensors.subscript(self, tensor, index, node)

    # --- the whole model -------------------------------------------------------------------------
    def read_forward(self, model: Module, line: int) -> Network:
        for name, module in model.named_modules():
            self.qualnames.setdefault(id(module), name)
        self.qualnames.pop(id(model), None)
        try:
            x = Tensor(0)
            result = self.call_module(model, [x], {}, ast.Constant(value=None, lineno=line))
            if not isinstance(result, Tensor):
                raise ReadError(line, f"forward() returns {_describe(result)}; cnnops sizes a model with one output "
                                      "tensor")  # fmt: skip
            if result.ref != len(self.nodes) or not self.nodes:
                self.emit(_identity(), [result], label="return")
        except Stop:
            return self.network()
        self.unused(model)
        return self.network()

    def unused(self, model: Module) -> None:
        for name, module in model.named_modules():
            if id(module) in self.calls or not name:
                continue
            if isinstance(module, LayerModule) and module.stage.params():
                self.notes.append(f"{name} = {module.stage.call} (line {module.line}) is never called by forward(): "
                                  f"its {module.stage.params():,} parameters are not in the table")  # fmt: skip
            elif isinstance(module, UnsupportedModule):
                self.notes.append(f"{name} = nn.{module.torch_name} (line {module.line}) is never called by forward(); "
                                  "cnnops cannot count its parameters")  # fmt: skip


def bind_method(member: ast.FunctionDef, owner: UserClass, receiver: Any) -> Any:
    """A method looked up on an instance: bound to it, unless it is a staticmethod (or a classmethod)."""
    from cnnops.spec.pysource.values import BoundMethod

    decorators = {ast.unparse(d) for d in member.decorator_list}
    if "staticmethod" in decorators:
        return UserFunction(member, owner)
    if "classmethod" in decorators:
        return BoundMethod(UserFunction(member, owner), owner)
    return BoundMethod(UserFunction(member, owner), receiver)


def _identity() -> Stage:
    from cnnops.spec.parser import parse_stage

    return parse_stage("Identity()")


def literal_text(value: Any) -> str:
    """A constant as stage text the one parser reads back to the same value."""
    if isinstance(value, (list, tuple)):
        inner = ", ".join(literal_text(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float) and not math.isfinite(value):
        raise ReadError(None, f"the argument {value} is not a finite number")
    return repr(value)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, Module):
        return "a module"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _call_text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # pragma: no cover
        return type(node).__name__


__all__ = ["Reader", "Frame", "literal_text", "Merge", "container_item"]
