"""A model class read from its Python source — statically: never imported, never run, no torch.

``__init__`` is followed with the values the file gives (literals, arithmetic, constructor defaults,
module constants, helper methods, the file's own block classes); ``forward()`` as data flow, each
layer call, functional call, merge and reshape one stage of a :class:`~cnnops.model.network.Network`.
Sizes are known while reading (the shape model runs along), so ``x.view(x.size(0), -1)`` is exact.
Anything else is refused at its ``file:line``.

>>> src = '''
... import torch.nn as nn
... import torch.nn.functional as F
... class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(3, 8, 3, padding=1)
...         self.fc = nn.Linear(8 * 4 * 4, 10)
...     def forward(self, x):
...         x = F.max_pool2d(F.relu(self.conv(x)), 2)
...         return self.fc(x.view(x.size(0), -1))
... '''
>>> [node.text() for node in read_python_source(src, "net.py", (1, 3, 8, 8)).nodes]
['conv = Conv2d(3, 8, 3, padding=1)', 'ReLU()', 'MaxPool2d(2)', 'view(1, -1)', 'fc = Linear(128, 10)']
"""

from __future__ import annotations

import ast
from typing import Any

from cnnops.errors import SpecError, setting
from cnnops.model.network import Network
from cnnops.model.stages import Shape
from cnnops.spec.pysource.interpreter import Frame, _Unknown
from cnnops.spec.pysource.reader import Reader
from cnnops.spec.pysource.values import Module, ReadError, Ref, UserClass, UserFunction
from cnnops.spec.sources import looks_like_python

MAX_SOURCE = 4 * 2**20


def read_python_source(text: str, origin: str, input_shape: Shape, class_name: str | None = None) -> Network:
    """The network of the model class in ``text`` (``class_name``: ``Net`` or ``Net(width=32)`` with
    literal arguments; by default the one class no other class uses) for an input of ``input_shape``.
    Raises :class:`SpecError` naming ``origin:line`` for code outside the subset the reader follows."""
    if len(text) > MAX_SOURCE:
        raise SpecError(f"{origin} is longer than {MAX_SOURCE:,} characters")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise SpecError(f"{origin}:{line}: not valid Python ({getattr(exc, 'msg', exc)})") from None
    except (RecursionError, MemoryError):
        raise SpecError(f"{origin}: the code is nested too deeply to read") from None
    reader = Reader(tree, origin, input_shape)
    chosen = "the model"
    try:
        classes = _module_scope(reader, tree)
        target, args, kwargs, line, chosen = _choose(reader, classes, class_name, origin)
        if isinstance(target, UserClass):
            _check_arguments(reader, target, args, kwargs, line, origin, chosen)
            model = reader.instantiate(target, args, kwargs, ast.Constant(value=None, lineno=line))
        else:
            model = target
        return reader.read_forward(model, line)
    except ReadError as exc:
        where = f"{origin}:{exc.line}" if exc.line else origin
        hint = ""
        if exc.suggest_model:
            spec = f"{origin}:{chosen}" if origin not in ("-", "<stdin>") else f"FILE.py:{chosen}"
            hint = f" — the reader never runs code; {setting('model', spec)} lets torch run the model instead"
        raise SpecError(f"{where}: {exc.message}{hint}") from None
    except RecursionError:
        raise SpecError(f"{origin}: the code nests too deeply to read") from None


def _module_scope(reader: Reader, tree: ast.Module) -> dict[str, UserClass]:
    """Imports, classes, functions and (lazily evaluated) constants of the file; other statements
    (``net = Net()``, ``if __name__ == "__main__":``) are ignored."""
    classes: dict[str, UserClass] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            reader.imports(stmt, reader.globals)
        elif isinstance(stmt, ast.ClassDef):
            cls = UserClass(stmt, _bases(reader, stmt))
            for item in stmt.body:
                if isinstance(item, ast.FunctionDef):
                    cls.methods[item.name] = item
                elif isinstance(item, (ast.Assign, ast.AnnAssign)) and item.value is not None:
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    try:
                        value = reader.eval(item.value, Frame({}))
                    except ReadError as exc:
                        value = _Unknown(item.lineno, exc.message)
                    for target in targets:
                        if isinstance(target, ast.Name):
                            cls.attrs[target.id] = value
            reader.globals[stmt.name] = cls
            classes[stmt.name] = cls
        elif isinstance(stmt, ast.FunctionDef):
            reader.globals[stmt.name] = UserFunction(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    reader.globals.pop(target.id, None)
                    reader.lazy[target.id] = stmt.value
    return classes


def _bases(reader: Reader, stmt: ast.ClassDef) -> list[Any]:
    bases = []
    for base in stmt.bases:
        try:
            bases.append(reader.eval(base, Frame({})))
        except ReadError:
            bases.append(None)
    return bases


def _is_model(cls: UserClass) -> bool:
    return cls.torch_base() in ("Module", "Sequential", "ModuleList", "ModuleDict")


def _choose(reader: Reader, classes: dict[str, UserClass], class_name: str | None,
            origin: str) -> tuple[Any, list[Any], dict[str, Any], int, str]:  # fmt: skip
    models = {name: cls for name, cls in classes.items() if _is_model(cls)}
    if class_name is not None:
        try:
            spec = ast.parse(class_name.strip(), mode="eval").body
        except SyntaxError:
            raise SpecError(f"the class '{class_name}' must be a name such as Net, or a call with literal "
                            "arguments such as Net(width=32)") from None
        call = spec if isinstance(spec, ast.Call) else None
        head = call.func if call is not None else spec
        if not isinstance(head, ast.Name):
            raise SpecError(f"the class '{class_name}' must be a name such as Net, or a call such as Net(width=32)")
        name = head.id
        if name in classes:
            target: Any = classes[name]
        elif name in reader.lazy or (name in reader.globals and isinstance(reader.globals[name], UserFunction)):
            target = reader.lookup(name, Frame({}), head)
            if call is None and isinstance(target, UserFunction):
                target = reader.invoke(target, [], {}, head)
        else:
            known = ", ".join(models) or "none"
            raise SpecError(f"{origin} defines no class '{name}' (nn.Module classes: {known})")
        args, kwargs = [], {}
        if call is not None:
            args = [reader.eval(a, Frame({})) for a in call.args]
            kwargs = {k.arg: reader.eval(k.value, Frame({})) for k in call.keywords if k.arg}
            if isinstance(target, UserFunction):
                target, args, kwargs = reader.invoke(target, args, kwargs, call), [], {}
        if not isinstance(target, (UserClass, Module)):
            raise SpecError(f"{origin}: '{name}' is not an nn.Module class or model")
        line = target.node.lineno if isinstance(target, UserClass) else target.line
        return target, args, kwargs, line, name
    if not models:
        sequential = _module_level_model(reader)
        if sequential is not None:
            return sequential
        raise SpecError(f"{origin} defines no nn.Module class (a class deriving from nn.Module) — give a file "
                        "that defines the model")  # fmt: skip
    used = _used_names(reader.module)
    top = [name for name in models if name not in used]
    if len(top) == 1:
        cls = models[top[0]]
        return cls, [], {}, cls.node.lineno, cls.name
    listed = ", ".join(top or models)
    builders = [s.name for s in reader.module.body if isinstance(s, ast.FunctionDef) and not s.name.startswith("_")]
    also = f" or a function that builds it ({', '.join(builders)})" if builders and not top else ""
    raise SpecError(f"{origin} defines several models ({listed}) — choose one{also} with "
                    f"{setting('class', 'NAME')}")  # fmt: skip


def _module_level_model(reader: Reader) -> tuple[Any, list[Any], dict[str, Any], int, str] | None:
    """A file without classes whose one module-level model is ``name = nn.Sequential(…)``."""
    found = [(name, expr) for name, expr in reader.lazy.items()
             if isinstance(expr, ast.Call) and ast.unparse(expr.func).split(".")[-1] == "Sequential"]  # fmt: skip
    if len(found) != 1:
        return None
    name, expr = found[0]
    model = reader.lookup(name, Frame({}), expr)
    return model, [], {}, expr.lineno, name


def _used_names(tree: ast.Module) -> set[str]:
    """Names used inside the file's classes and functions (a class used there is a block, not the model)."""
    used: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and node.id != getattr(stmt, "name", None):
                    used.add(node.id)
    return used


def _check_arguments(reader: Reader, cls: UserClass, args: list[Any], kwargs: dict[str, Any], line: int,
                     origin: str, chosen: str) -> None:  # fmt: skip
    found = cls.lookup("__init__")
    if found is None or not isinstance(found[1], ast.FunctionDef):
        return
    spec = found[1].args
    positional = (spec.posonlyargs + spec.args)[1:]
    required = positional[: len(positional) - len(spec.defaults)] if spec.defaults else positional
    required += [p for p, d in zip(spec.kwonlyargs, spec.kw_defaults) if d is None]
    missing = [p.arg for i, p in enumerate(required) if p.arg not in kwargs and (p not in positional or
                                                                              positional.index(p) >= len(args))]  # fmt: skip
    if missing:
        example = ", ".join(f"{m}=…" for m in missing)
        raise SpecError(f"{origin}:{found[1].lineno}: {cls.name}() needs a value for {', '.join(missing)} — give "
                        f"its arguments with {setting('class', f'{cls.name}({example})')}")  # fmt: skip


__all__ = ["read_python_source", "looks_like_python", "Ref"]
