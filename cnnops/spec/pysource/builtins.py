"""Python's own functions and methods over the reader's values — ``range``, ``len``, ``max``, ``isinstance``,
``getattr``, ``list.append``, ``str.format``… — applied with Python's semantics to known values only."""

from __future__ import annotations

import ast
import math
from typing import Any

from cnnops.spec.pysource.values import Container, Module, ReadError, Ref, Tensor, UserClass, UserModule, set_attribute

MAX_ITEMS = 100_000
MAX_INT = 2**64
_PLAIN = (int, float, bool, str, type(None))


def plain(value: Any) -> bool:
    """A value made only of Python constants (what layer arguments may be)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list)):
        return all(plain(v) for v in value)
    return False


def _text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # pragma: no cover - every node the reader sees unparses
        return type(node).__name__


def call_builtin(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """A Python builtin applied to known values, as Python does."""
    line = getattr(node, "lineno", None)
    if name == "isinstance":
        return reader.is_instance(args[0], args[1])
    if name in ("getattr", "hasattr"):
        try:
            value = reader.attribute(args[0], args[1], node)
        except ReadError:
            if name == "hasattr":
                return False
            if len(args) > 2:
                return args[2]
            raise
        return True if name == "hasattr" else value
    if name == "setattr":
        if not isinstance(args[0], UserModule) or not isinstance(args[1], str):
            raise ReadError(line, "setattr works on the model's own modules only")
        set_attribute(args[0], args[1], args[2])
        return None
    if name == "print":
        return None
    if name == "len":
        value = args[0]
        if isinstance(value, Container):
            return len(value.items())
        if isinstance(value, Tensor):
            return reader.tensor_attribute(value, "shape", node)[0]
    if name in ("list", "tuple", "sorted", "reversed", "set", "enumerate", "zip", "any", "all", "sum",
                "max", "min") and args:  # fmt: skip
        if name in ("list", "tuple", "sorted", "reversed", "set", "enumerate", "any", "all"):
            args = [reader.iterate(args[0], node), *args[1:]]
        elif name == "zip":
            args = [reader.iterate(a, node) for a in args]
        elif len(args) == 1:
            args = [reader.iterate(args[0], node)]
        if name in ("max", "min", "sum") and any(isinstance(a, Tensor) for a in (args[0] if len(args) == 1 else args)):
            raise ReadError(line, f"{name}() over tensors is outside the code cnnops reads")
    function = BUILTINS[name]
    if not all(plain(a) or isinstance(a, (list, tuple, dict, range, set)) or name in _ANY_ARGS for a in args):
        raise ReadError(line, f"{name}() of '{_text(node)}' is outside the code cnnops reads")
    try:
        value = function(*args, **kwargs)
    except (TypeError, ValueError, ArithmeticError, IndexError, KeyError) as exc:
        raise ReadError(line, f"'{_text(node)}' fails: {exc}", suggest_model=False) from None
    if isinstance(value, (zip, enumerate, reversed, map)):
        value = list(value)
    return _checked(value, node)

def is_instance(value: Any, classes: Any) -> bool:
    """``isinstance`` over the reader's values: the file's classes, torch.nn classes, tensors, Python types."""
    options = classes if isinstance(classes, tuple) else (classes,)
    for cls in options:
        if isinstance(cls, UserClass) and isinstance(value, UserModule):
            c: Any = value.cls
            stack = [c]
            while stack:
                c = stack.pop()
                if c is cls:
                    return True
                stack.extend(b for b in c.bases if isinstance(b, UserClass))
        elif isinstance(cls, Ref):
            path = cls.path
            if path in ("torch.Tensor", "torch.tensor") and isinstance(value, Tensor):
                return True
            if path.startswith("torch.nn.") and isinstance(value, Module):
                kind = path.rsplit(".", 1)[1]
                if kind == "Module" or getattr(value, "torch_name", None) == kind or value.kind == kind:
                    return True
            if path.startswith("builtins.") and BUILTINS.get(path[9:]) in _TYPES:
                if isinstance(value, BUILTINS[path[9:]]) and not isinstance(value, (Tensor, Module)):
                    return True
    return False


class _PyMethod:
    """A method of a list, dict, str or tuple, applied with Python's own semantics."""

    def __init__(self, owner: Any, name: str):
        self.owner, self.name = owner, name

    def call(self, args: list[Any], kwargs: dict[str, Any], node: ast.AST, reader: Any) -> Any:
        if self.name == "extend":
            args = [reader.iterate(args[0], node)]
        if self.name in ("format", "join") and not all(plain(a) or isinstance(a, list) for a in [*args, *kwargs.values()]):
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' formats values that are not constants")
        try:
            value = getattr(self.owner, self.name)(*args, **kwargs)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' fails: {exc!r}", suggest_model=False) from None
        if isinstance(self.owner, list) and len(self.owner) > MAX_ITEMS:
            raise ReadError(getattr(node, "lineno", None), f"a list of more than {MAX_ITEMS:,} items")
        if type(value).__name__ in ("dict_items", "dict_keys", "dict_values"):
            value = [tuple(v) if isinstance(v, tuple) else v for v in value]
        return value


PY_METHODS: dict[type, tuple[str, ...]] = {
    list: ("append", "extend", "insert", "pop", "index", "count", "copy", "reverse"),
    dict: ("items", "keys", "values", "get", "update", "copy", "pop", "setdefault"),
    str: ("format", "join", "startswith", "endswith", "lower", "upper", "split", "replace", "strip"),
    tuple: ("index", "count"),
}
_TYPES = (int, float, bool, str, list, tuple, dict, set)
_ANY_ARGS = ("list", "tuple", "len", "enumerate", "zip", "reversed", "sorted", "any", "all", "set", "dict")


def _round(value: float, digits: int | None = None) -> Any:
    return round(value) if digits is None else round(value, digits)


BUILTINS: dict[str, Any] = {
    "range": range, "len": len, "int": int, "float": float, "bool": bool, "str": str, "abs": abs, "max": max,
    "min": min, "sum": sum, "round": _round, "divmod": divmod, "list": list, "tuple": tuple, "dict": dict,
    "zip": zip, "enumerate": enumerate, "reversed": reversed, "sorted": sorted, "any": any, "all": all,
    "set": set, "isinstance": isinstance, "getattr": getattr, "hasattr": hasattr, "setattr": setattr,
    "print": print, "super": super, "pow": pow,
}  # fmt: skip


def _checked(value: Any, node: ast.AST) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ReadError(getattr(node, "lineno", None), f"the number in '{_text(node)}' is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' is not a finite number")
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_ITEMS:
        raise ReadError(getattr(node, "lineno", None), f"'{_text(node)}' is too long")
    return value
