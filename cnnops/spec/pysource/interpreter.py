"""A reader of model code: it walks the :mod:`ast` of ``__init__`` and ``forward`` with known values.

Nothing is imported or run. Construction code is followed where every value is known from the file —
literals, integer and float arithmetic, constructor parameters with defaults, module-level constants,
``if``/``for``/``while`` on known values, helper methods and functions, the file's own classes. forward()
is followed as data flow: each layer call, functional call and tensor operation becomes a stage of the
network, and tensor sizes are known (the shape model runs as the reader goes), so ``x.size(0)`` and
``b, c, h, w = x.size()`` are numbers. What depends on tensor *values*, and every construct outside
this subset, is refused at its line.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from typing import Any

from cnnops.model.network import Node
from cnnops.model.stages import Stage
from cnnops.spec.pysource.builtins import BUILTINS, MAX_ITEMS, PY_METHODS, _checked, _PyMethod, plain
from cnnops.spec.pysource.values import (
    BoundMethod,
    Container,
    Module,
    Partial,
    ReadError,
    Ref,
    Tensor,
    UserClass,
    UserFunction,
    UserModule,
    container_item,
    set_attribute,
)

MAX_STEPS = 1_000_000
MAX_DEPTH = 48

#: names a pasted class uses without importing them
DEFAULT_NAMES = {"nn": Ref("torch.nn"), "F": Ref("torch.nn.functional"), "torch": Ref("torch"),
                 "Tensor": Ref("torch.Tensor"), "OrderedDict": Ref("collections.OrderedDict"),
                 "partial": Ref("functools.partial"), "math": Ref("math")}  # fmt: skip
#: libraries whose names mean what they say: anything else imported is a name the reader cannot know
KNOWN_LIBRARIES = ("torch", "collections", "functools", "math", "typing", "__future__", "numbers", "dataclasses")

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}  # fmt: skip
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: operator.contains(b, a), ast.NotIn: lambda a, b: not operator.contains(b, a),
}  # fmt: skip


class _Return(Exception):
    def __init__(self, value: Any):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Stop(Exception):
    """The shape model refused a stage while the reader needed a size: reading ends there, and the
    trace of the network so far shows the refusal."""


class Frame:
    def __init__(self, names: dict[str, Any], function: UserFunction | None = None):
        self.names = names
        self.function = function


class Interpreter:
    """Evaluates statements and expressions over known values; :mod:`.reader` adds modules and tensors."""

    def __init__(self, module: ast.Module):
        self.module = module
        self.globals: dict[str, Any] = {}
        self.lazy: dict[str, ast.expr] = {}
        self.steps = 0
        self.depth = 0

    # --- hooks the reader fills in ---------------------------------------------------------------
    def call_library(self, ref: Ref, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        raise NotImplementedError

    def call_module(self, module: Module, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        raise NotImplementedError

    def instantiate(self, cls: UserClass, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        raise NotImplementedError

    def tensor_attribute(self, tensor: Tensor, name: str, node: ast.AST) -> Any:
        raise NotImplementedError

    def tensor_binary(self, op: ast.operator, left: Any, right: Any, node: ast.AST, inplace: bool) -> Any:
        raise NotImplementedError

    def tensor_subscript(self, tensor: Tensor, index: Any, node: ast.AST) -> Any:
        raise NotImplementedError

    def module_attribute(self, module: Module, name: str, node: ast.AST) -> Any:
        raise NotImplementedError

    # --- names -----------------------------------------------------------------------------------
    def lookup(self, name: str, frame: Frame, node: ast.AST) -> Any:
        if name in frame.names:
            return frame.names[name]
        if name in self.globals:
            return self.globals[name]
        if name in self.lazy:
            expr = self.lazy.pop(name)
            self.globals[name] = self.eval(expr, Frame({}))
            return self.globals[name]
        if name in BUILTINS:
            return Ref("builtins." + name)
        if name in DEFAULT_NAMES:
            return DEFAULT_NAMES[name]
        raise ReadError(getattr(node, "lineno", None), f"the name '{name}' is not defined in the file")

    # --- statements ------------------------------------------------------------------------------
    def run(self, body: Iterable[ast.stmt], frame: Frame) -> None:
        for stmt in body:
            self.step(stmt)
            self.statement(stmt, frame)

    def step(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ReadError(getattr(node, "lineno", None), f"the code takes more than {MAX_STEPS:,} steps to read")

    def statement(self, stmt: ast.stmt, frame: Frame) -> None:
        if isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant):
                return  # a docstring
            self.eval(stmt.value, frame)
        elif isinstance(stmt, ast.Assign):
            value = self.eval(stmt.value, frame)
            for target in stmt.targets:
                self.assign(target, value, frame)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.assign(stmt.target, self.eval(stmt.value, frame), frame)
        elif isinstance(stmt, ast.AugAssign):
            self.aug_assign(stmt, frame)
        elif isinstance(stmt, ast.Return):
            raise _Return(None if stmt.value is None else self.eval(stmt.value, frame))
        elif isinstance(stmt, ast.If):
            self.run(stmt.body if self.truth(self.eval(stmt.test, frame), stmt.test) else stmt.orelse, frame)
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt, frame)
        elif isinstance(stmt, ast.While):
            self.while_loop(stmt, frame)
        elif isinstance(stmt, ast.Pass):
            return
        elif isinstance(stmt, ast.Break):
            raise _Break()
        elif isinstance(stmt, ast.Continue):
            raise _Continue()
        elif isinstance(stmt, ast.Assert):
            return  # an assertion states what holds; it changes no size
        elif isinstance(stmt, ast.Raise):
            text = ast.unparse(stmt)[:80]
            raise ReadError(stmt.lineno, f"the model's code raises an error here ({text}) with these settings",
                            suggest_model=False)  # fmt: skip
        elif isinstance(stmt, ast.With) and self.harmless_context(stmt, frame):
            self.run(stmt.body, frame)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self.imports(stmt, frame.names)
        elif isinstance(stmt, ast.FunctionDef):
            frame.names[stmt.name] = UserFunction(stmt)
        else:
            raise ReadError(stmt.lineno, f"'{_first_line(stmt)}' ({type(stmt).__name__} statement) is outside the "
                                         "code cnnops reads")  # fmt: skip

    def harmless_context(self, stmt: ast.With, frame: Frame) -> bool:
        """``with torch.no_grad():`` and friends change no size."""
        for item in stmt.items:
            value = item.context_expr
            callee = value.func if isinstance(value, ast.Call) else value
            target = self.eval(callee, frame)
            if not (isinstance(target, Ref) and target.path in ("torch.no_grad", "torch.inference_mode",
                                                                 "torch.enable_grad")):  # fmt: skip
                return False
        return True

    def imports(self, stmt: ast.Import | ast.ImportFrom, names: dict[str, Any]) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    names[alias.asname] = Ref(alias.name)
                else:
                    top = alias.name.split(".")[0]
                    names[top] = Ref(top)
            return
        if stmt.level:  # a relative import: code outside the file
            for alias in stmt.names:
                names[alias.asname or alias.name] = _Unknown(stmt.lineno, f"'{alias.name}' comes from another file")
            return
        for alias in stmt.names:
            if alias.name == "*":
                if stmt.module in ("torch.nn", "torch.nn.modules"):
                    from cnnops.spec.aliases import TORCH_NN

                    for name in TORCH_NN:
                        names[name] = Ref(f"torch.nn.{name}")
                continue
            names[alias.asname or alias.name] = Ref(f"{stmt.module}.{alias.name}")

    def assign(self, target: ast.expr, value: Any, frame: Frame) -> None:
        if isinstance(target, ast.Name):
            frame.names[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target, value, frame)
        elif isinstance(target, ast.Attribute):
            owner = self.eval(target.value, frame)
            if not isinstance(owner, UserModule):
                raise ReadError(target.lineno, f"'{ast.unparse(target)[:60]} = …' changes an object the reader "
                                               "does not model")  # fmt: skip
            set_attribute(owner, target.attr, value)
        elif isinstance(target, ast.Subscript):
            owner = self.eval(target.value, frame)
            key = self.eval(target.slice, frame)
            if isinstance(owner, (list, dict)) and plain(key):
                try:
                    owner[key] = value
                except (IndexError, TypeError, KeyError) as exc:
                    raise ReadError(target.lineno, f"'{ast.unparse(target)[:60]}': {exc}") from None
            elif isinstance(owner, Container) and isinstance(value, Module) and plain(key):
                owner.children[str(key)] = value
            else:
                raise ReadError(target.lineno, f"'{ast.unparse(target)[:60]} = …' is outside the code cnnops reads")
        else:
            raise ReadError(target.lineno, f"cannot assign to '{ast.unparse(target)[:60]}'")

    def unpack(self, target: ast.Tuple | ast.List, value: Any, frame: Frame) -> None:
        items = self.iterate(value, target)
        starred = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
        if starred:
            at = starred[0]
            after = len(target.elts) - at - 1
            if len(items) < len(target.elts) - 1:
                raise ReadError(target.lineno, f"not enough values to unpack into {ast.unparse(target)[:60]}")
            parts = items[:at] + [list(items[at : len(items) - after])] + items[len(items) - after :]
            for element, item in zip(target.elts, parts):
                self.assign(element.value if isinstance(element, ast.Starred) else element, item, frame)
            return
        if len(items) != len(target.elts):
            raise ReadError(target.lineno, f"{ast.unparse(target)[:60]} unpacks {len(target.elts)} values, "
                                           f"but there are {len(items)}")  # fmt: skip
        for element, item in zip(target.elts, items):
            self.assign(element, item, frame)

    def aug_assign(self, stmt: ast.AugAssign, frame: Frame) -> None:
        current = self.eval(stmt.target, frame)
        value = self.eval(stmt.value, frame)
        if isinstance(current, Tensor) or isinstance(value, Tensor):
            result = self.tensor_binary(stmt.op, current, value, stmt, inplace=isinstance(current, Tensor))
        elif isinstance(current, list) and isinstance(stmt.op, ast.Add):
            current.extend(self.iterate(value, stmt))
            result = current
        else:
            result = self.binary(stmt.op, current, value, stmt)
        self.assign(stmt.target, result, frame)

    def for_loop(self, stmt: ast.For, frame: Frame) -> None:
        if _initialisation_loop(stmt):
            return  # for m in self.modules(): nn.init.… — weight initialisation changes no size
        items = self.iterate(self.eval(stmt.iter, frame), stmt.iter)
        for item in items:
            self.assign(stmt.target, item, frame)
            try:
                self.run(stmt.body, frame)
            except _Break:
                return
            except _Continue:
                continue
        self.run(stmt.orelse, frame)

    def while_loop(self, stmt: ast.While, frame: Frame) -> None:
        while self.truth(self.eval(stmt.test, frame), stmt.test):
            self.step(stmt)
            try:
                self.run(stmt.body, frame)
            except _Break:
                return
            except _Continue:
                continue
        self.run(stmt.orelse, frame)

    # --- expressions -----------------------------------------------------------------------------
    def eval(self, node: ast.expr, frame: Frame) -> Any:
        self.step(node)
        method = getattr(self, "eval_" + type(node).__name__, None)
        if method is None:
            raise ReadError(getattr(node, "lineno", None), f"'{ast.unparse(node)[:60]}' "
                                                           f"({type(node).__name__}) is outside the code cnnops reads")  # fmt: skip
        value = method(node, frame)
        if isinstance(value, _Unknown):
            raise ReadError(getattr(node, "lineno", None), f"'{ast.unparse(node)[:60]}' cannot be known: {value.why}")
        return value

    def eval_Constant(self, node: ast.Constant, frame: Frame) -> Any:
        if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
            if node.value is Ellipsis:
                return Ellipsis
            raise ReadError(node.lineno, f"{type(node.value).__name__} constants are outside the code cnnops reads")
        return node.value

    def eval_Name(self, node: ast.Name, frame: Frame) -> Any:
        return self.lookup(node.id, frame, node)

    def eval_Tuple(self, node: ast.Tuple, frame: Frame) -> Any:
        return tuple(self.elements(node.elts, frame))

    def eval_List(self, node: ast.List, frame: Frame) -> Any:
        return self.elements(node.elts, frame)

    def eval_Set(self, node: ast.Set, frame: Frame) -> Any:
        return set(self.elements(node.elts, frame))

    def elements(self, elts: list[ast.expr], frame: Frame) -> list[Any]:
        out: list[Any] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                out.extend(self.iterate(self.eval(e.value, frame), e))
            else:
                out.append(self.eval(e, frame))
        return out

    def eval_Dict(self, node: ast.Dict, frame: Frame) -> Any:
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                out.update(self.eval(v, frame))
            else:
                key = self.eval(k, frame)
                if not plain(key) or isinstance(key, list):
                    raise ReadError(node.lineno, "dictionary keys must be constants")
                out[key] = self.eval(v, frame)
        return out

    def eval_JoinedStr(self, node: ast.JoinedStr, frame: Frame) -> Any:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
                continue
            assert isinstance(value, ast.FormattedValue)
            v = self.eval(value.value, frame)
            if not plain(v):
                raise ReadError(node.lineno, f"an f-string formats '{ast.unparse(value.value)[:40]}', which is not a constant")
            v = repr(v) if value.conversion == ord("r") else v
            spec = "" if value.format_spec is None else self.eval(value.format_spec, frame)
            parts.append(format(v, spec))
        return "".join(parts)

    def eval_BinOp(self, node: ast.BinOp, frame: Frame) -> Any:
        left, right = self.eval(node.left, frame), self.eval(node.right, frame)
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.tensor_binary(node.op, left, right, node, inplace=False)
        if isinstance(left, (list, tuple)) and isinstance(node.op, ast.Mult) and isinstance(right, int):
            if len(left) * right > MAX_ITEMS:
                raise ReadError(node.lineno, f"a list of more than {MAX_ITEMS:,} items")
        return self.binary(node.op, left, right, node)

    def binary(self, op: ast.operator, left: Any, right: Any, node: ast.AST) -> Any:
        function = _BINARY.get(type(op))
        if function is None or not (plain(left) and plain(right)):
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' is outside the arithmetic cnnops reads")
        if isinstance(op, ast.Pow) and isinstance(right, int) and abs(right) > 256:
            raise ReadError(getattr(node, "lineno", None), f"the power in '{_text(node)}' is too large")
        if isinstance(op, ast.LShift) and isinstance(right, int) and right > 64:
            raise ReadError(getattr(node, "lineno", None), f"the shift in '{_text(node)}' is too large")
        try:
            value = function(left, right)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' fails: {exc}", suggest_model=False) from None
        return _checked(value, node)

    def eval_UnaryOp(self, node: ast.UnaryOp, frame: Frame) -> Any:
        value = self.eval(node.operand, frame)
        if isinstance(node.op, ast.Not):
            return not self.truth(value, node.operand)
        if isinstance(value, Tensor):
            return self.tensor_binary(ast.Mult(), value, -1, node, inplace=False)
        if not isinstance(value, (int, float)):
            raise ReadError(node.lineno, f"'{ast.unparse(node)[:60]}' is outside the arithmetic cnnops reads")
        unary: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos,
                                                   ast.Invert: operator.invert}  # fmt: skip
        return unary[type(node.op)](value)

    def eval_BoolOp(self, node: ast.BoolOp, frame: Frame) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.eval(operand, frame)
            truth = self.truth(value, operand)
            if isinstance(node.op, ast.And) and not truth:
                return value
            if isinstance(node.op, ast.Or) and truth:
                return value
        return value

    def eval_Compare(self, node: ast.Compare, frame: Frame) -> Any:
        left = self.eval(node.left, frame)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.eval(comparator, frame)
            if isinstance(left, Tensor) or isinstance(right, Tensor):
                if isinstance(op, (ast.Is, ast.IsNot)):
                    result = (left is right) == isinstance(op, ast.Is)
                else:
                    raise ReadError(node.lineno, f"'{ast.unparse(node)[:60]}' compares tensor values: control "
                                                 "flow that depends on the data")  # fmt: skip
            elif isinstance(op, (ast.Is, ast.IsNot)):
                result = (left is right) == isinstance(op, ast.Is)
            else:
                try:
                    result = _COMPARE[type(op)](left, right)
                except TypeError as exc:
                    raise ReadError(node.lineno, f"'{ast.unparse(node)[:60]}' fails: {exc}") from None
            if not result:
                return False
            left = right
        return True

    def eval_IfExp(self, node: ast.IfExp, frame: Frame) -> Any:
        return self.eval(node.body if self.truth(self.eval(node.test, frame), node.test) else node.orelse, frame)

    def eval_Attribute(self, node: ast.Attribute, frame: Frame) -> Any:
        value = self.eval(node.value, frame)
        return self.attribute(value, node.attr, node)

    def attribute(self, value: Any, name: str, node: ast.AST) -> Any:
        if isinstance(value, _Super):
            return value.attribute(name, node)
        if name.startswith("__"):
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' is outside the code cnnops reads")
        if isinstance(value, Ref):
            return value.attr(name)
        if isinstance(value, Tensor):
            return self.tensor_attribute(value, name, node)
        if isinstance(value, Module):
            return self.module_attribute(value, name, node)
        if isinstance(value, UserClass):
            found = value.lookup(name)
            if found is None:
                raise ReadError(getattr(node, "lineno", None), f"class {value.name} has no attribute '{name}'")
            owner, member = found
            return UserFunction(member, owner) if isinstance(member, ast.FunctionDef) else member
        if isinstance(value, (list, dict, str, tuple)) and name in PY_METHODS.get(type(value), ()):
            return _PyMethod(value, name)
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' is outside the code cnnops reads")

    def eval_Subscript(self, node: ast.Subscript, frame: Frame) -> Any:
        value = self.eval(node.value, frame)
        index = self.eval(node.slice, frame)
        if isinstance(value, Tensor):
            return self.tensor_subscript(value, index, node)
        if isinstance(value, Container):
            return container_item(value, index, node)
        if isinstance(value, Ref) and value.path.startswith("typing."):
            return value
        if isinstance(value, (list, tuple, dict, str)) and (plain(index) or isinstance(index, slice)):
            try:
                return value[index]
            except (IndexError, KeyError, TypeError) as exc:
                raise ReadError(node.lineno, f"'{ast.unparse(node)[:60]}' fails: {exc!r}", suggest_model=False) from None
        raise ReadError(node.lineno, f"'{ast.unparse(node)[:60]}' is outside the code cnnops reads")

    def eval_Slice(self, node: ast.Slice, frame: Frame) -> Any:
        def part(e: ast.expr | None) -> Any:
            value = None if e is None else self.eval(e, frame)
            if value is not None and not isinstance(value, int):
                raise ReadError(node.lineno, "slice bounds must be whole numbers")
            return value

        return slice(part(node.lower), part(node.upper), part(node.step))

    def eval_Starred(self, node: ast.Starred, frame: Frame) -> Any:
        raise ReadError(node.lineno, f"'{ast.unparse(node)[:40]}' is outside the code cnnops reads")

    def eval_Lambda(self, node: ast.Lambda, frame: Frame) -> Any:
        return UserFunction(node)

    def eval_ListComp(self, node: ast.ListComp, frame: Frame) -> Any:
        return [self.eval(node.elt, f) for f in self.comprehension(node.generators, frame)]

    def eval_GeneratorExp(self, node: ast.GeneratorExp, frame: Frame) -> Any:
        return [self.eval(node.elt, f) for f in self.comprehension(node.generators, frame)]

    def eval_SetComp(self, node: ast.SetComp, frame: Frame) -> Any:
        return {self.eval(node.elt, f) for f in self.comprehension(node.generators, frame)}

    def eval_DictComp(self, node: ast.DictComp, frame: Frame) -> Any:
        return {self.eval(node.key, f): self.eval(node.value, f) for f in self.comprehension(node.generators, frame)}

    def comprehension(self, generators: list[ast.comprehension], frame: Frame) -> list[Frame]:
        frames = [Frame(dict(frame.names), frame.function)]
        for gen in generators:
            nxt = []
            for f in frames:
                for item in self.iterate(self.eval(gen.iter, f), gen.iter):
                    inner = Frame(dict(f.names), f.function)
                    self.assign(gen.target, item, inner)
                    if all(self.truth(self.eval(cond, inner), cond) for cond in gen.ifs):
                        nxt.append(inner)
                    if len(nxt) > MAX_ITEMS:
                        raise ReadError(gen.iter.lineno, f"a comprehension of more than {MAX_ITEMS:,} items")
            frames = nxt
        return frames

    def eval_Call(self, node: ast.Call, frame: Frame) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id == "super" and "super" not in frame.names:
            return self.super_call(node, frame)
        func = self.eval(node.func, frame)
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.iterate(self.eval(a.value, frame), a))
            else:
                args.append(self.eval(a, frame))
        kwargs: dict[str, Any] = {}
        for k in node.keywords:
            value = self.eval(k.value, frame)
            if k.arg is None:
                if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
                    raise ReadError(node.lineno, f"'**{ast.unparse(k.value)[:40]}' must be a dictionary of names")
                kwargs.update(value)
            else:
                kwargs[k.arg] = value
        return self.call(func, args, kwargs, node)

    def call(self, func: Any, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        if isinstance(func, Partial):
            return self.call(func.func, list(func.args) + args, dict(func.kwargs) | kwargs, node)
        if isinstance(func, UserFunction):
            return self.invoke(func, args, kwargs, node)
        if isinstance(func, BoundMethod):
            return self.invoke(func.function, [func.receiver, *args], kwargs, node)
        if isinstance(func, UserClass):
            return self.instantiate(func, args, kwargs, node)
        if isinstance(func, Module):
            return self.call_module(func, args, kwargs, node)
        if isinstance(func, _PyMethod):
            return func.call(args, kwargs, node, self)
        if isinstance(func, _TorchBaseMethod):
            return self.call_torch_base(func, args, kwargs, node)
        if isinstance(func, Ref):
            if func.path.startswith("builtins."):
                return self.builtin(func.path[9:], args, kwargs, node)
            return self.call_library(func, args, kwargs, node)
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' calls something that is not a function")

    def invoke(self, function: UserFunction, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ReadError(getattr(node, "lineno", None), f"calls nest more than {MAX_DEPTH} deep")
        try:
            names = self.bind(function, args, kwargs, node)
            frame = Frame(names, function)
            if isinstance(function.node, ast.Lambda):
                return self.eval(function.node.body, frame)
            try:
                self.run(function.node.body, frame)
            except _Return as ret:
                return ret.value
            return None
        finally:
            self.depth -= 1

    def bind(self, function: UserFunction, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> dict[str, Any]:
        """Python's argument binding for a function of the file; defaults read in the file's scope."""
        spec = function.node.args
        name = getattr(function.node, "name", "lambda")
        line = getattr(node, "lineno", None)
        positional = spec.posonlyargs + spec.args
        names: dict[str, Any] = {}
        for param, value in zip(positional, args):
            names[param.arg] = value
        extra = args[len(positional) :]
        if extra:
            if spec.vararg is None:
                raise ReadError(line, f"{name}() takes {len(positional)} positional arguments but {len(args)} were "
                                      "given", suggest_model=False)  # fmt: skip
            names[spec.vararg.arg] = tuple(extra)
        elif spec.vararg is not None:
            names[spec.vararg.arg] = ()
        leftover: dict[str, Any] = {}
        known = {p.arg for p in positional[len(args):]} | {p.arg for p in spec.kwonlyargs}
        for key, value in kwargs.items():
            if key in names and key != getattr(spec.vararg, "arg", None):
                raise ReadError(line, f"{name}() got multiple values for argument '{key}'", suggest_model=False)
            if key in known:
                names[key] = value
            elif spec.kwarg is not None:
                leftover[key] = value
            else:
                raise ReadError(line, f"{name}() got an unexpected keyword argument '{key}'", suggest_model=False)
        if spec.kwarg is not None:
            names[spec.kwarg.arg] = leftover
        defaults = spec.defaults
        for param, default in zip(positional[len(positional) - len(defaults) :], defaults):
            if param.arg not in names:
                names[param.arg] = self.eval(default, Frame({}))
        for param, kw_default in zip(spec.kwonlyargs, spec.kw_defaults):
            if param.arg not in names and kw_default is not None:
                names[param.arg] = self.eval(kw_default, Frame({}))
        missing = [p.arg for p in positional + spec.kwonlyargs if p.arg not in names]
        if missing:
            raise ReadError(line, f"{name}() needs a value for {', '.join(missing)} — give it a default or "
                                  "name the arguments", suggest_model=False)  # fmt: skip
        return names

    # --- helpers ---------------------------------------------------------------------------------
    def truth(self, value: Any, node: ast.AST) -> bool:
        if isinstance(value, Tensor):
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' tests a tensor's values: control flow "
                                                           "that depends on the data")  # fmt: skip
        if isinstance(value, Module):
            return True
        if plain(value) or isinstance(value, (dict, set, Ref, UserClass, UserFunction)):
            return bool(value)
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' cannot be tested as true or false here")

    def iterate(self, value: Any, node: ast.AST) -> list[Any]:
        if isinstance(value, (list, tuple, str, set)):
            return list(value)
        if isinstance(value, dict):
            return list(value)
        if isinstance(value, range):
            if len(value) > MAX_ITEMS:
                raise ReadError(getattr(node, "lineno", None), f"a loop of more than {MAX_ITEMS:,} steps")
            return list(value)
        if isinstance(value, Container):
            if value.kind == "ModuleDict":
                return [k for k, _ in value.items()]
            return [m for _, m in value.items()]
        if isinstance(value, Tensor):
            raise ReadError(getattr(node, "lineno", None), f"iterating over the tensor '{_text(node)}' is outside "
                                                           "the code cnnops reads")  # fmt: skip
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' cannot be iterated here")

    def builtin(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        from cnnops.spec.pysource.builtins import call_builtin

        return call_builtin(self, name, args, kwargs, node)

    def is_instance(self, value: Any, classes: Any) -> bool:
        from cnnops.spec.pysource.builtins import is_instance

        return is_instance(value, classes)

    def super_call(self, node: ast.Call, frame: Frame) -> Any:
        """``super()`` in a method (its class and receiver from the frame), or ``super(Cls, self)``."""
        if node.args:
            if len(node.args) != 2:
                raise ReadError(node.lineno, "super() takes no arguments or (Class, self)")
            owner, receiver = (self.eval(a, frame) for a in node.args)
        else:
            function = frame.function
            params = function.node.args.args if function is not None else []
            if function is None or function.owner is None or not params:
                raise ReadError(node.lineno, "super() outside a method of a class")
            owner, receiver = function.owner, frame.names.get(params[0].arg)
        if not isinstance(owner, UserClass):
            raise ReadError(node.lineno, "super() names a class the file does not define")
        return _Super(owner, receiver, self)

    def call_torch_base(self, method: _TorchBaseMethod, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        raise NotImplementedError


class _Unknown:
    """A name the reader cannot know (imported from another file): an error where it is used."""

    def __init__(self, line: int, why: str):
        self.line, self.why = line, why


class _Super:
    """``super()`` inside a method of ``owner`` called on ``receiver``."""

    def __init__(self, owner: UserClass, receiver: Any, reader: Interpreter):
        self.owner, self.receiver, self.reader = owner, receiver, reader

    def attribute(self, name: str, node: ast.AST) -> Any:
        for base in self.owner.bases:
            if isinstance(base, UserClass):
                found = base.lookup(name)
                if found is not None:
                    owner, member = found
                    if isinstance(member, ast.FunctionDef):
                        return BoundMethod(UserFunction(member, owner), self.receiver)
                    return member
            elif isinstance(base, Ref) and base.path.startswith("torch.nn."):
                return _TorchBaseMethod(base.path.rsplit(".", 1)[1], name, self.receiver)
        raise ReadError(getattr(node, "lineno", None), f"super() of {self.owner.name} has no '{name}'")


class _TorchBaseMethod:
    """``super().__init__(…)`` / ``super().forward(x)`` reaching nn.Module, nn.Sequential…"""

    def __init__(self, base: str, name: str, receiver: Any):
        self.base, self.name, self.receiver = base, name, receiver


def _initialisation_loop(stmt: ast.For) -> bool:
    it = stmt.iter
    return (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)
            and it.func.attr in ("modules", "named_modules", "parameters", "named_parameters"))  # fmt: skip


def _text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # pragma: no cover - every node the reader sees unparses
        return type(node).__name__


def _first_line(stmt: ast.stmt) -> str:
    return ast.unparse(stmt).splitlines()[0][:60]


__all__ = ["Interpreter", "Frame", "Stop", "plain", "Node", "Stage"]
