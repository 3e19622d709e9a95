"""What the static reader's values are: Python constants as they are, and stand-ins for what the model
code builds — layers, containers, instances of the file's own classes, library names, and tensors (a
box holding the number of the stage whose output it is)."""

from __future__ import annotations

import ast
from dataclasses import field
from typing import Any

from cnnops.model.stages import Stage
from cnnops.records import record
from cnnops.spec.signatures import LayerData

MISSING = object()


class ReadError(Exception):
    """What the reader cannot follow, at a line of the file; the reader words it as a SpecError."""

    def __init__(self, line: int | None, message: str, *, suggest_model: bool = True):
        super().__init__(message)
        self.line, self.message, self.suggest_model = line, message, suggest_model


@record(frozen=True)
class Ref:
    """A name from a library, as its dotted path: ``torch.nn.Conv2d``, ``torch.nn.functional.relu``, ``math.ceil``."""

    path: str

    def attr(self, name: str) -> Ref:
        return Ref(f"{self.path}.{name}")


@record(frozen=True)
class Partial:
    """``functools.partial(f, *args, **kwargs)``."""

    func: Any
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


class Module:
    """An ``nn.Module`` the code built: children in registration order, as ``named_modules`` walks them."""

    kind = "module"

    def __init__(self, line: int):
        self.line = line
        self.children: dict[str, Module | None] = {}

    def named_modules(self, prefix: str = "", seen: set[int] | None = None):
        seen = set() if seen is None else seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.children.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)


class LayerModule(Module):
    """A layer cnnops has a stage for (``nn.Conv2d(3, 64, 3)``)."""

    kind = "layer"

    def __init__(self, line: int, stage: Stage, data: LayerData | None, torch_name: str):
        super().__init__(line)
        self.stage, self.data, self.torch_name = stage, data, torch_name

    def option(self, name: str) -> Any:
        """An attribute as PyTorch's module has it (``conv.out_channels``, ``conv.kernel_size``)."""
        value = getattr(self.stage, name, MISSING)
        if value is MISSING and hasattr(self.stage, "option"):
            value = self.stage.option(name, MISSING)  # type: ignore[attr-defined]
        return value



class UnsupportedModule(Module):
    """A class of torch.nn that cnnops has no stage for: refused where forward() calls it."""

    kind = "unsupported"

    def __init__(self, line: int, torch_name: str, reason: str):
        super().__init__(line)
        self.torch_name, self.reason = torch_name, reason


class Container(Module):
    """``nn.Sequential``, ``nn.ModuleList`` or ``nn.ModuleDict``."""

    def __init__(self, line: int, kind: str):
        super().__init__(line)
        self.kind = kind

    def items(self) -> list[tuple[str, Module]]:
        return [(k, v) for k, v in self.children.items() if v is not None]


class UserModule(Container):
    """An instance of a class the file defines; ``kind`` is the torch container it derives from, if any
    (``class Transition(nn.Sequential)``), else ``module``."""

    def __init__(self, line: int, cls: UserClass, kind: str):
        super().__init__(line, kind)
        self.cls = cls
        self.attrs: dict[str, Any] = {}


@record
class UserClass:
    """A class the file defines, with its methods and class attributes."""

    node: ast.ClassDef
    bases: list[Any]
    methods: dict[str, ast.FunctionDef] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name

    def lookup(self, name: str) -> tuple[UserClass, Any] | None:
        """A method or class attribute, searched through the file's own base classes."""
        if name in self.methods:
            return self, self.methods[name]
        if name in self.attrs:
            return self, self.attrs[name]
        for base in self.bases:
            if isinstance(base, UserClass):
                found = base.lookup(name)
                if found is not None:
                    return found
        return None

    def torch_base(self) -> str | None:
        """The torch.nn class at the root of its bases: ``Module``, ``Sequential``, ``ModuleList``…"""
        for base in self.bases:
            if isinstance(base, Ref) and base.path.startswith("torch.nn."):
                return base.path.rsplit(".", 1)[1]
            if isinstance(base, UserClass):
                found = base.torch_base()
                if found:
                    return found
        return None


@record
class UserFunction:
    node: ast.FunctionDef | ast.Lambda
    owner: UserClass | None = None  # a method's class (for super())


@record
class BoundMethod:
    function: UserFunction
    receiver: Any


@record(eq=False)
class Tensor:
    """A tensor in forward(): the stage whose output it holds (0: the network input). A box, so an
    in-place operation (``x += y``, ``relu(inplace=True)``) is seen by every name bound to the tensor."""

    ref: int
    #: came from permute/transpose without .contiguous(): a .view may then be refused by PyTorch
    strided: bool = False


def set_attribute(owner: UserModule, name: str, value: Any) -> None:
    """``self.name = value`` on a module: modules are registered as children, in order, as torch does."""
    if isinstance(value, Module):
        owner.attrs.pop(name, None)
        owner.children[name] = value
    elif value is None and name in owner.children:
        owner.children[name] = None
    else:
        owner.children.pop(name, None) if name in owner.children and owner.children[name] is None else None
        owner.attrs[name] = value


def container_item(container: Container, index: Any, node: ast.AST) -> Any:
    items = container.items()
    line = getattr(node, "lineno", None)
    if container.kind == "ModuleDict":
        if index not in container.children:
            raise ReadError(line, f"the ModuleDict has no key {index!r}", suggest_model=False)
        return container.children[index]
    if isinstance(index, slice):
        part = Container(container.line, container.kind)
        for i, (_, m) in enumerate(items[index]):
            part.children[str(i)] = m
        return part
    if not isinstance(index, int) or not -len(items) <= index < len(items):
        raise ReadError(line, f"index {index!r} is out of range for a {container.kind} of {len(items)}",
                        suggest_model=False)  # fmt: skip
    return items[index][1]
