"""The one reader of nested lists of numbers (inputs, weights, biases, indices): their shape, checked,
and an array — or one message naming the first element that does not fit.

>>> to_array([[1, 2], [3, 4]], root="data").tolist()
[[1.0, 2.0], [3.0, 4.0]]
>>> to_array([[1, 2], [3]], root="weight")
Traceback (most recent call last):
...
cnnops.errors.InputError: weight[1] has 1 items where weight[0] has 2 — make every row the same length
"""

from __future__ import annotations

import math
from itertools import chain
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError, setting
from cnnops.io.jsontext import MAX_DEPTH, NONFINITE_NAMES
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
from cnnops.text import is_int, is_number

if TYPE_CHECKING:
    import numpy as np

_LISTS = (list, tuple)


def _prefix(label: str | None) -> str:
    return f"{label}: " if label else ""


def _over_limit(count: int, max_elements: int) -> str:
    return (f"holds {count:,} numbers, more than the limit of {max_elements:,} — raise {setting('max_elements')} "
            "to allow it")  # fmt: skip


def shape_from_json(obj: Any, path: str, label: str | None, max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[int, ...]:
    """A document's ``shape`` entry: a list of whole numbers ≥ 0, within the limits."""
    if not isinstance(obj, list) or not all(type(n) is int and n >= 0 for n in obj):
        raise InputError(
            f"{_prefix(label)}{path} must be a list of whole numbers ≥ 0, such as [1, 5, 5], not {_found(obj)}"
        )
    if len(obj) > MAX_DEPTH:
        raise InputError(f"{_prefix(label)}{path} has {len(obj)} dimensions — at most {MAX_DEPTH} are allowed")
    count = math.prod(obj)
    if count > max_elements:
        raise InputError(f"{_prefix(label)}{path} {obj} {_over_limit(count, max_elements)}")
    return tuple(obj)


def reshape_to(array: np.ndarray, shape: tuple[int, ...], path: str, label: str | None) -> np.ndarray:
    """``array`` in ``shape``, or the message saying the counts differ."""
    if array.size != math.prod(shape):
        raise InputError(
            f"{_prefix(label)}{path} has {array.size} numbers but shape {list(shape)} needs {math.prod(shape)} — "
            f"fix the shape or the data"
        )
    return array.reshape(shape)


def nested_shape(obj: Any) -> tuple[int, ...]:
    """The shape the first element at each depth implies (:func:`to_array` checks the rest against it).

    >>> nested_shape([[1, 2, 3], [4, 5, 6]]), nested_shape(0.5), nested_shape(((1,),))
    ((2, 3), (), (1, 1))
    """
    shape: list[int] = []
    node = obj
    while isinstance(node, _LISTS) and len(shape) <= MAX_DEPTH:
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    return tuple(shape)


def to_array(obj: Any, *, root: str = "data", label: str | None = None, max_elements: int = DEFAULT_MAX_ELEMENTS,
             integer: bool = False, error: type[CnnopsError] = InputError, numbers_only: bool = False) -> np.ndarray:  # fmt: skip
    """A number or nested list (or tuple) of numbers as a float64 array (int64 with ``integer``), or
    ``error`` naming the first element that does not fit (``root[1][0] is …``, after ``label:``).

    The happy path flattens one level at a time and checks types and lengths with C-level
    ``map``/``set`` calls, then converts in one numpy call: no Python loop per number. (``np.asarray``
    alone would quietly take true/false as 1/0, null as NaN and "1.5" as 1.5.) ``numbers_only``: the
    JSON text ``obj`` was parsed from holds no true or false (:func:`cnnops.io.jsontext.free_of_booleans`),
    so numpy's own reading of the nesting checks the rest: numbers alone at one depth give a numeric
    array of the shape; a string, a null or an object among them, another.
    """
    try:
        return _to_array(obj, root, label, max_elements, integer, numbers_only)
    except InputError as exc:
        if error is InputError:
            raise
        raise error(exc.worded(setting)) from None


def _to_array(obj: Any, path: str, label: str | None, max_elements: int, integer: bool,
              numbers_only: bool = False) -> np.ndarray:  # fmt: skip
    import numpy as np

    shape = nested_shape(obj)
    if len(shape) > MAX_DEPTH:
        raise InputError(
            f"{_prefix(label)}{path} is nested more than {MAX_DEPTH} levels deep — a tensor has at most "
            f"{MAX_DEPTH} dimensions"
        )
    count = math.prod(shape)
    if count > max_elements:
        raise InputError(f"{_prefix(label)}{path} {_over_limit(count, max_elements)}")
    if 0 in shape:
        raise InputError(
            f"{_prefix(label)}{path + '[0]' * shape.index(0)} is empty — a tensor needs at least one number"
        )
    if numbers_only:
        # no booleans: numpy's discovery of the nesting is the whole check (a ragged list raises; a leaf
        # deeper than the first gives another shape; a string, a null, an object or an int past 64 bits
        # give a dtype that is not a number's) — anything else takes the checked path below
        try:
            array = np.array(obj)
        except (ValueError, OverflowError, TypeError):
            array = None
        if array is not None and array.shape == shape and array.dtype.kind in ("i" if integer else "fiu"):
            return array.astype(np.int64 if integer else np.float64, copy=False)
    level = [obj]
    for size in shape:
        if not set(map(type, level)) <= {list, tuple} or set(map(len, level)) != {size}:
            return _from_validated(obj, shape, path, label, integer)
        level = list(chain.from_iterable(level))
    kinds = set(map(type, level))
    if str in kinds and not integer:
        level = [NONFINITE_NAMES.get(v, v) if type(v) is str else v for v in level]
        kinds = set(map(type, level))
    if not kinds <= {int, float} or (integer and float in kinds):
        return _from_validated(obj, shape, path, label, integer)
    try:
        return np.array(level, dtype=np.int64 if integer else np.float64).reshape(shape)
    except OverflowError:  # an integer beyond 64 bits
        return _from_validated(obj, shape, path, label, integer)


def _from_validated(obj: Any, shape: tuple[int, ...], path: str, label: str | None, integer: bool) -> np.ndarray:
    import numpy as np

    flat = _validated_numbers(obj, shape, path, label, integer=integer)
    return np.array(flat, dtype=np.int64 if integer else np.float64).reshape(shape)


def _validated_numbers(obj: Any, shape: tuple[int, ...], root: str, label: str | None, *, integer: bool) -> list:
    """Every number of ``obj`` in order, or an InputError naming the first element that does not fit."""
    flat: list = []
    index: list[int] = []

    def where(idx: list[int]) -> str:
        return root + "".join(f"[{i}]" for i in idx)

    def reference(idx: list[int]) -> str:
        # The element the shape was taken from: the first sibling, or the first element at that depth.
        return where(idx[:-1] + [0]) if idx and idx[-1] else where([0] * len(idx))

    def fail(problem: str, fix: str) -> InputError:
        return InputError(f"{_prefix(label)}{where(index)} {problem} — {fix}")

    def number(value: Any) -> float | int:
        kind = type(value)
        if kind is not float and kind is not int and is_number(value):  # numpy scalars
            value, kind = (int(value), int) if is_int(value) else (float(value), float)
        if kind is float or kind is int:
            if not integer:
                return value if kind is float or -(2**63) <= value < 2**63 else _big_int_to_float(value)
            if kind is float and not (math.isfinite(value) and value == int(value)):
                raise fail(f"is {value!r}", "indices must be whole numbers")
            if not -(2**63) <= value < 2**63:
                raise fail(f"is {int(value)}", "an index must fit in 64 bits")
            return int(value)
        if kind is str and value in NONFINITE_NAMES and not integer:
            return NONFINITE_NAMES[value]
        if kind is list or kind is tuple:
            raise fail(f"is a list where {reference(index)} is a number", "give every row the same nesting")
        fix = "indices must be whole numbers" if integer else 'use a number, or "NaN", "Infinity" or "-Infinity"'
        raise fail(f"is {_found(value)}", fix)

    def walk(node: Any, depth: int) -> None:
        if depth == len(shape):
            flat.append(number(node))
            return
        if not isinstance(node, _LISTS):
            if isinstance(node, int | float) and not isinstance(node, bool):
                raise fail(
                    f"is a number where {reference(index)} is a list of {shape[depth]}",
                    "give every row the same nesting",
                )
            raise fail(f"is {_found(node)}", "use a list of numbers")
        if len(node) != shape[depth]:
            raise fail(
                f"has {len(node)} items where {reference(index)} has {shape[depth]}", "make every row the same length"
            )
        index.append(0)
        for i, child in enumerate(node):
            index[-1] = i
            walk(child, depth + 1)
        index.pop()

    walk(obj, 0)
    return flat


def _big_int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _found(value: Any) -> str:
    """How a JSON value that is not a number reads in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 24 else value[:21] + "…"
        return f"the string {text!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


