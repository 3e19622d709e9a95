"""``cnnops.records.record`` behaves as ``dataclasses.dataclass`` does, class by class: the same class
body is decorated both ways and every observable behaviour compared."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, ClassVar

import pytest

from cnnops.records import record

OPTIONS = [{}, {"frozen": True}, {"kw_only": True}, {"frozen": True, "kw_only": True}, {"eq": False},
           {"frozen": True, "eq": False}]  # fmt: skip


def both(body: Any, **options: Any) -> tuple[type, type]:
    """The class made by ``dataclass`` and by ``record`` from fresh copies of one body."""
    return dataclass(**options)(body()), record(**options)(body())


def plain() -> type:
    class Point:
        """A point."""

        x: int
        y: float = 2.5
        tags: list[str] = field(default_factory=list)
        note: str = field(default="", compare=False, repr=False)
        cached: int = field(default=0, init=False)
        kind: ClassVar[str] = "point"

        def norm(self) -> float:
            return math.hypot(self.x, self.y)

    return Point


def behaviour(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """Everything a caller can see of ``cls``'s instances, as plain values (errors as their type)."""

    def attempt(make: Any) -> Any:
        try:
            return make()
        except Exception as error:  # noqa: BLE001 - the error's type is the behaviour compared
            return type(error).__name__

    kw = options.get("kw_only", False)
    a = cls(x=1, y=3.0, tags=["a"], note="n") if kw else cls(1, 3.0, ["a"], "n")
    same = cls(x=1, y=3.0, tags=["a"], note="other")
    other = cls(x=2)
    seen: dict[str, Any] = {
        "fields": [(f.name, f.init, f.compare, f.repr, f.kw_only) for f in dataclasses.fields(cls)],
        "values": (a.x, a.y, a.tags, a.note, a.cached, other.tags, other.note),
        "repr": repr(a).replace(cls.__qualname__, "C"),
        "eq": (a == same, a == other, a != same, a == 1, a == a),
        "hashable": attempt(lambda: hash(a) == hash(same)),
        "positional": attempt(lambda: repr(cls(1)).replace(cls.__qualname__, "C")),
        "too many": attempt(lambda: cls(1, 2.0, [], "", 5)),
        "unknown keyword": attempt(lambda: cls(x=1, z=2)),
        "twice": attempt(lambda: cls(1, x=1)),
        "missing": attempt(lambda: cls()),
        "init=False": attempt(lambda: cls(x=1, cached=3)),
        "set": attempt(lambda: setattr(a, "x", 5)),
        "set new": attempt(lambda: setattr(a, "other", 5)),
        "delete": attempt(lambda: delattr(other, "y")),
        "replace": attempt(lambda: (r := dataclasses.replace(a, x=7), r.x, r.y, r.tags)[1:]),
        "asdict": dataclasses.asdict(cls(x=1)),
        "pickle": attempt(lambda: pickle.loads(pickle.dumps(a)) == a),
        "deepcopy": attempt(lambda: copy.deepcopy(a) == a),
        "match": cls.__match_args__,
        "classvar": cls.kind,
        "method": a.norm(),
        "factories are fresh": cls(x=1).tags is not cls(x=1).tags,
    }
    return seen


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_a_record_behaves_as_the_same_dataclass(options):
    reference, mine = both(plain, **options)
    assert behaviour(mine, options) == behaviour(reference, options)


def test_nan_fields_compare_as_dataclass_tuples_do():
    """dataclass compares field tuples, where the same NaN object equals itself."""
    reference, mine = both(plain, frozen=True)
    nan = float("nan")
    assert (mine(1, nan) == mine(1, nan)) == (reference(1, nan) == reference(1, nan)) is True
    assert (mine(1, float("nan")) == mine(1, float("nan"))) is False


def test_subclasses_add_fields_and_methods_are_made_as_dataclass_makes_them():
    def base() -> type:
        class Stage:
            name: str
            nd: int = 0

            def __repr__(self) -> str:
                return f"<{self.name}>"

        return Stage

    reprs = []
    for decorate in (dataclass(frozen=True, kw_only=True), record(frozen=True, kw_only=True)):
        parent = decorate(base())

        class Conv(parent):  # type: ignore[valid-type,misc]
            kernel: tuple[int, ...] = (1,)

        child = decorate(Conv)
        c = child(name="c", kernel=(3,))
        assert repr(parent(name="p")) == "<p>"  # a method the class defines itself is kept
        reprs.append(repr(c).rsplit(".", 1)[-1])  # the subclass gets a generated one, as dataclass gives it
        assert [f.name for f in dataclasses.fields(child)] == ["name", "nd", "kernel"]
        assert c == child(name="c", kernel=(3,)) and c != parent(name="c")
        assert hash(c) == hash(child(name="c", kernel=(3,)))
        with pytest.raises(FrozenInstanceError):
            c.kernel = (5,)  # type: ignore[misc]
    assert reprs[0] == reprs[1] == "Conv(name='c', nd=0, kernel=(3,))"


def test_an_explicit_hash_or_eq_is_kept():
    @record(frozen=True)
    class Keyed:
        key: str
        payload: list[int] = field(default_factory=list)

        def __hash__(self) -> int:
            return hash(self.key)

    assert hash(Keyed("a", [1])) == hash("a")
    assert Keyed("a", [1]) == Keyed("a", [1]) and Keyed("a", [1]) != Keyed("a", [2])


def test_post_init_runs_after_the_fields_are_set():
    @record(frozen=True)
    class Checked:
        low: int
        high: int

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError("low > high")

    assert Checked(1, 2).high == 2
    with pytest.raises(ValueError, match="low > high"):
        Checked(3, 2)


def test_mixing_frozen_and_mutable_records_is_refused():
    @record(frozen=True)
    class Frozen:
        a: int = 0

    with pytest.raises(TypeError, match="both be frozen or both not"):

        @record
        class Thawed(Frozen):
            b: int = 0
