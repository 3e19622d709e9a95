"""JSON text in and out: orjson for speed, non-finite floats as "NaN", "Infinity" and "-Infinity".

>>> dumps({"output": {"data": [float("nan"), 0.5]}})
'{"output":{"data":["NaN",0.5]}}'
>>> parse_json(b'[1, NaN]', "input")
[1, nan]
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from cnnops.errors import InputError

if TYPE_CHECKING:
    import numpy as np

#: a tensor has at most this many dimensions (JSON nested deeper is refused)
MAX_DEPTH = 32
UTF8_BOM = b"\xef\xbb\xbf"
# What JSON cannot say: non-finite floats travel as these strings (and are read back from them).
NONFINITE_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf,
                   "nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # fmt: skip


class JSONSyntaxError(InputError):
    """Text that is not JSON (the reader of Python literals tries it next); ``reason`` says where."""

    def __init__(self, label: str, reason: str):
        self.label, self.reason = label, reason
        super().__init__(f"{label} is not valid JSON: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Rebuilt from its parts (a batch worker sends its inputs' errors back pickled)."""
        return type(self), (self.label, self.reason)


def parse_json(payload: bytes | str, label: str) -> Any:
    """orjson for speed; the stdlib parser only for what orjson refuses (NaN, Infinity, 1e400)."""
    import orjson

    if isinstance(payload, bytes) and payload.startswith(UTF8_BOM):
        payload = payload[3:]
    if not payload.strip():
        raise InputError(f"{label} is empty — give a JSON list of numbers")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if "memory" in str(exc).lower():  # orjson's word for running out of memory
            raise MemoryError(str(exc)) from None
    import json

    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{label} is not UTF-8 JSON text (bad byte at offset {exc.start}) — save it as UTF-8"
            ) from None
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        reason = exc.msg[:1].lower() + exc.msg[1:]
        raise JSONSyntaxError(label, f"{reason} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply — a tensor has at most {MAX_DEPTH} dimensions") from None
    except ValueError:  # Python refuses to convert integers longer than sys.get_int_max_str_digits()
        raise InputError(
            f"{label} has an integer of more than {sys.get_int_max_str_digits()} digits — write such a "
            f"number with an exponent, e.g. 1e5000 (beyond float32's range it is Infinity)"
        ) from None




def free_of_booleans(payload: bytes | str) -> bool:
    """Whether JSON bytes certainly hold no ``true`` or ``false``, so that numpy's reading of the numbers
    in them can be trusted (:func:`cnnops.io.nested.to_array`): a bare list of numbers has no ``t`` or
    ``f`` at all (one ``memchr`` pass each, well under a millisecond for 11 MB); a document's few, in its
    keys and strings, are looked at one by one. Many of them: not known (False)."""
    if not isinstance(payload, bytes):
        return False
    for word in (b"true", b"false"):
        at, seen = payload.find(word[:1]), 0
        while at >= 0:
            seen += 1
            if seen > _LETTERS_LOOKED_AT or payload.startswith(word, at):
                return False
            at = payload.find(word[:1], at + 1)
    return True


#: the t's (and the f's) of a document looked at before it counts as not known to be free of booleans
_LETTERS_LOOKED_AT = 256


@contextmanager
def gc_paused() -> Iterator[None]:
    """Millions of freshly parsed lists would set off the cycle collector again and again (5× slower)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()



def dumps(doc: object) -> str:
    """JSON text: float32 numbers in their shortest exact form, NaN and ±inf as "NaN", "Infinity", "-Infinity".

    >>> import numpy as np
    >>> dumps({"x": np.array([0.1, -np.inf], dtype=np.float32), "n": np.int64(3)})
    '{"x":[0.1,"-Infinity"],"n":3}'
    """
    return b"".join(json_pieces(doc)).decode("utf-8")


def write_json(doc: object, stream: BinaryIO) -> None:
    """``doc`` as JSON text and a newline, written to the binary ``stream`` piece by piece: a tensor in
    the document is written in blocks of its text, so no whole copy of it (as text or as Python
    numbers) is ever held."""
    for piece in json_pieces(doc):
        stream.write(piece)
    stream.write(b"\n")


#: numbers per block of a tensor's JSON text: about 600 KB of text, and some 12 MB while it is made
#: (no slower than larger blocks)
BLOCK_ELEMENTS = 1 << 16


#: marks where an array's text goes in the serialised rest of a document (NUL never occurs in its strings)
_SLOT = "\x00cnnops-array\x00"
_SLOT_TEXT = b'"\\u0000cnnops-array\\u0000"'


def json_pieces(doc: object) -> Iterator[bytes]:
    """The JSON text of ``doc`` in pieces. numpy arrays that are values of a dict (``data``, ``indices``,
    ``weight``…) are written straight from the array, block by block, in the same text
    :func:`array_to_json` and orjson would give; the rest of the document is serialised once, its
    non-finite numbers named as it is walked."""
    import orjson

    arrays: list[Any] = []
    skeleton = _skeleton(doc, arrays)
    options = orjson.OPT_NON_STR_KEYS
    text = orjson.dumps(skeleton, default=_json_default, option=options)
    if not arrays:
        yield text
        return
    parts = text.split(_SLOT_TEXT)
    if len(parts) != len(arrays) + 1:  # a string of the document held the marker itself: no arrays lifted
        yield orjson.dumps(_skeleton(doc, None), default=_json_default, option=options)
        return
    yield parts[0]
    for array, part in zip(arrays, parts[1:]):
        yield from _array_pieces(array)
        yield part


def _skeleton(value: Any, arrays: list[Any] | None) -> Any:
    """The document with each array swapped for a marker (kept in ``arrays``), or converted to lists when
    ``arrays`` is None, and non-finite floats named ("NaN", "Infinity", "-Infinity")."""
    if isinstance(value, dict):
        return {key: _skeleton(item, arrays) for key, item in value.items()}
    if isinstance(value, float):
        return value if math.isfinite(value) else _nonfinite_name(value)
    if isinstance(value, list | tuple):
        kinds = set(map(type, value))
        if kinds <= {int, float} and (float not in kinds or math.isfinite(sum(value))):
            return value  # a row of finite numbers, checked at C speed (the usual case in a big document)
        return [_skeleton(item, arrays) for item in value]
    if type(value).__name__ == "ndarray":
        if value.ndim == 0 or arrays is None:
            return array_to_json(value)
        arrays.append(value)
        return _SLOT
    return value


def _array_pieces(a: Any) -> Iterator[bytes]:
    import numpy as np
    import orjson

    if a.dtype.kind == "f":
        a = np.asarray(a, dtype=np.float64 if a.dtype.itemsize >= 8 else np.float32)
    elif a.dtype.kind not in "iub" or a.size == 0:
        yield orjson.dumps(a.tolist())
        return
    yield from _blocks(a)


def _blocks(a: Any) -> Iterator[bytes]:
    """``a``'s text in blocks of rows of about BLOCK_ELEMENTS numbers (each row split again if longer)."""
    if a.size <= BLOCK_ELEMENTS:
        yield _block_text(a)
        return
    row = a.size // a.shape[0]
    yield b"["
    if a.ndim == 1 or row <= BLOCK_ELEMENTS:
        step = max(1, BLOCK_ELEMENTS // row)
        for start in range(0, a.shape[0], step):
            yield (b"," if start else b"") + _block_text(a[start : start + step])[1:-1]
    else:
        for i in range(a.shape[0]):
            if i:
                yield b","
            yield from _blocks(a[i])
    yield b"]"


def _block_text(a: Any) -> bytes:
    return array_text(a)


def _may_differ(a: Any) -> Any:
    """Where a float32 array holds a number in (or near) the ranges orjson's float32 writer spells
    differently from its float64 writer (1e-6 ≤ |x| < 1e-5 plainly, 1e13 ≤ |x| < 1e16 with an
    exponent): a few passes over the numbers instead of a search of their much longer text."""
    magnitude = abs(a)
    return ((magnitude >= 0.9e-6) & (magnitude < 1.1e-5)) | ((magnitude >= 0.9e13) & (magnitude < 1.1e16))


#: numbers per block of a float32 array's text
_BLOCK = 1 << 12


def _float32_text(a: Any, special: Any) -> bytes:
    """A float32 array's text in the float64 writer's spelling (Python's), block by block: a block
    without such a number is written as is; one with them is spelled as Python numbers (read back and
    written again — only those blocks, which in real data are few)."""
    import orjson

    def respelled(block: Any) -> bytes:
        with gc_paused():
            return orjson.dumps(orjson.loads(orjson.dumps(block, option=orjson.OPT_SERIALIZE_NUMPY)))

    if a.size <= _BLOCK or a.ndim == 0:
        return respelled(a)
    if a.shape[0] == 1:
        return b"[" + _float32_text(a[0], special[0]) + b"]"
    flagged = special.reshape(a.shape[0], -1).any(axis=1)
    parts, start = [], 0
    for row in (int(i) for i in flagged.nonzero()[0]):  # rows between flagged ones go in one piece
        if row > start:
            parts.append(orjson.dumps(a[start:row], option=orjson.OPT_SERIALIZE_NUMPY)[1:-1])
        parts.append(_float32_text(a[row], special[row]))
        start = row + 1
    if start < a.shape[0]:
        parts.append(orjson.dumps(a[start:], option=orjson.OPT_SERIALIZE_NUMPY)[1:-1])
    return b"[" + b",".join(parts) + b"]"


def array_text(a: Any) -> bytes:
    """An array's JSON text, as :func:`array_to_json` and orjson would write its nested lists, made
    straight from the array: numbers as Python prints them (a float32 in its shortest exact digits),
    non-finite ones as "NaN", "Infinity" and "-Infinity".

    >>> import numpy as np
    >>> array_text(np.array([[1e-6, np.nan], [3e14, 2.5]], dtype=np.float32))
    b'[[1e-6,"NaN"],[300000000000000.0,2.5]]'
    """
    import numpy as np
    import orjson

    a = np.asarray(a)
    kind = a.dtype.kind
    if kind == "f":
        a = np.asarray(a, dtype=np.float64 if a.dtype.itemsize >= 8 else np.float32, order="C")
    elif kind in "iub" and a.dtype.byteorder in "=|":
        a = np.asarray(a, order="C")
    else:
        return orjson.dumps(array_to_json(a))
    if a.ndim == 0:
        return orjson.dumps(array_to_json(a))
    if kind != "f":
        return orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
    special = _may_differ(a) if a.dtype == np.float32 else None
    if special is not None and special.any():
        text = _float32_text(a, special)
    else:
        text = orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
    finite = np.isfinite(a)
    if not finite.all():  # orjson writes non-finite numbers as null: name them, in order
        names = [b'"' + _nonfinite_name(float(v)).encode() + b'"' for v in a[~finite]]
        parts = text.split(b"null")
        text = b"".join(part for pair in zip(parts, [*names, b""]) for part in pair)
    return text


def array_to_json(a: np.ndarray) -> object:
    """Nested lists for an array: float32 numbers that print in their shortest exact float32 form.

    >>> import numpy as np
    >>> array_to_json(np.array([[0.1, np.nan]], dtype=np.float32))
    [[0.1, 'NaN']]
    """
    import numpy as np
    import orjson

    a = np.asarray(a)
    if a.dtype.kind != "f":
        return a.tolist()
    a = np.asarray(a, dtype=np.float64 if a.dtype.itemsize >= 8 else np.float32, order="C")
    if a.ndim == 0:
        return _float_to_json(a[()])
    if a.size == 0:
        return a.tolist()
    # Python numbers that print as the float32's shortest digits: read back from the array's own text
    with gc_paused():
        return orjson.loads(array_text(a))


def _float_to_json(value: Any) -> float | str:
    import numpy as np

    if not np.isfinite(value):
        return _nonfinite_name(float(value))
    if isinstance(value, np.floating) and value.dtype.itemsize <= 4:
        return float(str(np.float32(value)))  # numpy's str is the shortest float32 form
    return float(value)


def _nonfinite_name(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return array_to_json(value)
    if isinstance(value, np.floating):
        return _float_to_json(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
