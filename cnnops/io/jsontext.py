"""JSON text in and out: orjson for speed, non-finite floats as "NaN", "Infinity" and "-Infinity".

>>> dumps({"output": {"data": [float("nan"), 0.5]}})
'{"output":{"data":["NaN",0.5]}}'
>>> parse_json(b'[1, NaN]', "input")
[1, nan]
"""

from __future__ import annotations

import gc
import math
import re
import secrets
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
        self.reason = reason
        super().__init__(f"{label} is not valid JSON: {reason}")


def parse_json(payload: bytes | str, label: str) -> Any:
    """orjson for speed; the stdlib parser only for what orjson refuses (NaN, Infinity, 1e400)."""
    import json

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


def json_pieces(doc: object) -> Iterator[bytes]:
    """The JSON text of ``doc`` in pieces. numpy arrays that are values of a dict (``data``, ``indices``,
    ``weight``…) are written straight from the array, block by block, in the same text
    :func:`array_to_json` and orjson would give."""
    import orjson

    arrays: list[Any] = []
    token = secrets.token_hex(8)
    skeleton = _lift_arrays(doc, arrays, token)
    options = orjson.OPT_NON_STR_KEYS
    text = orjson.dumps(skeleton, default=_json_default, option=options)
    if b"null" in text:  # orjson writes non-finite floats as null; find and name them
        text = orjson.dumps(_name_nonfinite(skeleton), default=_json_default, option=options)
    if not arrays:
        yield text
        return
    parts = re.split(rb'"\\u0000' + token.encode() + rb':(\d+)\\u0000"', text)
    yield parts[0]
    for k in range(1, len(parts), 2):
        yield from _array_pieces(arrays[int(parts[k])])
        yield parts[k + 1]


def _lift_arrays(value: Any, arrays: list[Any], token: str) -> Any:
    """The document with each array in a dict (or a list of dicts) swapped for a placeholder string."""
    if isinstance(value, dict):
        return {key: _lift_arrays(item, arrays, token) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_lift_arrays(item, arrays, token) for item in value]
    if type(value).__name__ == "ndarray" and getattr(value, "ndim", 0) > 0:
        arrays.append(value)
        return f"\x00{token}:{len(arrays) - 1}\x00"
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
    import numpy as np
    import orjson

    a = np.ascontiguousarray(a)
    text = orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
    if a.dtype == np.float32:
        # the shortest float32 digits, written as the Python floats they read back as (1e+14 as
        # 100000000000000.0), as array_to_json gives them
        with gc_paused():
            text = orjson.dumps(orjson.loads(text))
    if a.dtype.kind == "f" and b"null" in text:  # the non-finite numbers, in order
        names = iter([_nonfinite_name(float(v)).encode() for v in a[~np.isfinite(a)]])
        text = re.sub(rb"null", lambda m: b'"' + next(names) + b'"', text)
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
    finite = np.isfinite(a)
    all_finite = bool(finite.all())
    # orjson prints float32 in its shortest form; reading that text back gives the Python floats that print so.
    with gc_paused():
        nested = orjson.loads(
            orjson.dumps(a if all_finite else np.where(finite, a, 0), option=orjson.OPT_SERIALIZE_NUMPY)
        )
    if not all_finite:
        for position in zip(*np.nonzero(~finite), strict=True):
            row = nested
            for i in position[:-1]:
                row = row[i]
            row[position[-1]] = _nonfinite_name(float(a[position]))
    return nested


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


def _name_nonfinite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else _nonfinite_name(value)
    if isinstance(value, dict):
        return {key: _name_nonfinite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        kinds = set(map(type, value))
        if kinds <= {int, float} and (float not in kinds or math.isfinite(sum(value))):
            return value  # a row of finite numbers, checked at C speed (the usual case in a big document)
        return [_name_nonfinite(item) for item in value]
    return value


