"""``@record``: a dataclass without the start-up cost of one.

``dataclasses.dataclass`` writes the source of each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and (frozen) ``__setattr__``/``__delattr__`` and compiles it: about half a millisecond a
class on Python 3.11, which for the forty records a ``cnnops run`` meets was over half of cnnops' own
start-up. ``record`` lets ``dataclasses`` do the field bookkeeping only (``init=False, repr=False,
eq=False``: nothing is compiled), then gives the class generic methods with the same behaviour, built
from the class's fields once. ``dataclasses.fields``, ``replace``, ``asdict``, pickling and ``match``
work as on a dataclass; ``tests/test_records.py`` checks the behaviour against ``dataclass`` itself.
One difference shows: ``inspect.signature`` of a record's class reads ``(*args, **kwargs)`` (its
``__doc__`` names the fields), and a wrong call's TypeError is worded a little differently.

The options are dataclass's (``frozen``, ``kw_only``, ``eq``), with the same defaults; a method the
class defines itself is kept, as dataclass keeps it. A subclass of a record is a record too
(``dataclass`` itself reads a record as a non-frozen dataclass, and refuses a frozen subclass of it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError, field
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["field", "record"]

T = TypeVar("T", bound=type)


@overload
def record(cls: T, /) -> T: ...
@overload
def record(*, frozen: bool = False, kw_only: bool = False, eq: bool = True) -> Callable[[T], T]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: Any = None, /, *, frozen: bool = False, kw_only: bool = False, eq: bool = True) -> Any:
    """Decorate like ``@dataclass``: ``@record``, ``@record(frozen=True, kw_only=True)``."""

    def wrap(cls: T) -> T:
        return _process(cls, frozen=frozen, kw_only=kw_only, eq=eq)

    return wrap if cls is None else wrap(cls)


def _process(cls: T, *, frozen: bool, kw_only: bool, eq: bool) -> T:
    for base in cls.__mro__[1:]:
        if getattr(base, "__record_frozen__", frozen) != frozen:
            raise TypeError(f"{cls.__qualname__}: a record and its base must both be frozen or both not")
    if not cls.__doc__:  # dataclass would write one from inspect.signature: milliseconds, and *args here
        annotations = cls.__dict__.get("__annotations__", {})
        described = [name for name, kind in annotations.items() if "ClassVar" not in str(kind)]
        cls.__doc__ = f"{cls.__name__}({', '.join(described)})"
    _bookkeeping(cls, kw_only)
    fields = list(dataclasses.fields(cls))  # the class's own and its bases', in dataclass order
    own = cls.__dict__
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    if "__init__" not in own:
        cls.__init__ = _init(cls, fields, frozen)  # type: ignore[misc]
    if "__repr__" not in own:
        cls.__record_shown__ = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
        cls.__repr__ = _repr  # type: ignore[assignment]
    if eq and "__eq__" not in own:
        cls.__record_compared__ = tuple(f.name for f in fields if f.compare)  # type: ignore[attr-defined]
        cls.__eq__ = _eq  # type: ignore[assignment]
    if frozen:
        names = frozenset(f.name for f in fields)
        cls.__setattr__, cls.__delattr__ = _frozen(cls, names)  # type: ignore[assignment,method-assign]
    # dataclass's hash rule (no unsafe_hash): an explicit __hash__ stays; eq and frozen hash the
    # compared fields; eq alone makes instances unhashable
    explicit_hash = own.get("__hash__", MISSING) is not MISSING and not (own["__hash__"] is None and "__eq__" in own)
    if eq and not explicit_hash:
        hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        cls.__record_hashed__ = hashed  # type: ignore[attr-defined]
        cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    return cls


#: words that make an annotation's text one that dataclasses must read itself
_SPECIAL = ("ClassVar", "InitVar", "KW_ONLY")


def _bookkeeping(cls: type, kw_only: bool) -> None:
    """``dataclass(init=False, repr=False, eq=False)``: the fields recorded, nothing compiled.

    With ``from __future__ import annotations`` every annotation is text, and dataclasses matches each
    against ClassVar, InitVar and KW_ONLY with a regular expression, about a third of its time. Texts
    that cannot name one of them are shown to it as ``object`` while it records the fields, then each
    field gets its own text back."""
    own = cls.__dict__.get("__annotations__")
    if not own:
        dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
        return
    plain = {name: kind for name, kind in own.items() if isinstance(kind, str) and not any(w in kind for w in _SPECIAL)}
    cls.__annotations__ = {name: object if name in plain else kind for name, kind in own.items()}
    try:
        dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
    finally:
        cls.__annotations__ = own
    for f in dataclasses.fields(cls):
        if f.name in plain and f.type is object:
            f.type = plain[f.name]


def _init(cls: type, fields: list[Field[Any]], frozen: bool) -> Callable[..., None]:
    taken = [f for f in fields if f.init]
    positional = tuple(f.name for f in taken if not f.kw_only)
    accepted = frozenset(f.name for f in taken)
    required = frozenset(f.name for f in taken if f.default is MISSING and f.default_factory is MISSING)
    # (name, value, factory) in assignment order: dataclass sets init=False fields with the others
    plan = tuple((f.name, f.default, f.default_factory, f.init) for f in fields)
    post_init = hasattr(cls, "__post_init__")
    assign = object.__setattr__ if frozen else setattr
    title = f"{cls.__qualname__}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(positional):
            raise TypeError(f"{title} takes {len(positional) + 1} positional arguments but {len(args) + 1} were given")
        values = dict(zip(positional, args))
        for name, value in kwargs.items():
            if name not in accepted:
                raise TypeError(f"{title} got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{title} got multiple values for argument {name!r}")
            values[name] = value
        if not values.keys() >= required:
            missing = [f.name for f in taken if f.name in required and f.name not in values]
            raise TypeError(f"{title} missing {len(missing)} required argument(s): {', '.join(map(repr, missing))}")
        for name, default, factory, init in plan:
            if init and name in values:
                assign(self, name, values[name])
            elif factory is not MISSING:
                assign(self, name, factory())
            elif default is not MISSING:
                assign(self, name, default)
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


# one __repr__, __eq__ and __hash__ for every record, reading the class's names: nothing made per class


@recursive_repr()
def _repr(self: Any) -> str:
    return (
        f"{type(self).__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in self.__record_shown__)})"
    )


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    # tuples, as dataclass compares: an element that is the same object counts as equal (NaN)
    names = self.__record_compared__
    return tuple(getattr(self, name) for name in names) == tuple(getattr(other, name) for name in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in self.__record_hashed__))


def _frozen(cls: type[Any], names: frozenset[str]) -> tuple[Callable[..., None], Callable[..., None]]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__
