"""Read tensors from JSON, .npy and image files, stdin or inline JSON; write JSON and .npy results.

numpy, PIL and orjson are imported inside the functions that need them, so importing this module
costs nothing for ``cnnops shape`` and ``--help``.

>>> read_input("[[1, 2], [3, 4]]").data.shape
(2, 2)
>>> dumps({"output": {"data": [float("nan"), 0.5]}})
'{"output":{"data":["NaN",0.5]}}'
"""

from __future__ import annotations

import gc
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, BinaryIO

from cnnops.errors import InputError

if TYPE_CHECKING:
    import numpy as np

MAX_DEPTH = 32
DEFAULT_MAX_ELEMENTS = 2**28
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
INPUT_SUFFIXES = (".json", ".npy", *IMAGE_SUFFIXES)
OUTPUT_SUFFIXES = (".json", ".npy")
NPY_MAGIC = b"\x93NUMPY"
STDIN_CHUNK = 2**20
MAX_LEADING_WHITESPACE = 64 * 2**20
JSON_WHITESPACE = b" \t\r\n"
UTF8_BOM = b"\xef\xbb\xbf"
JSON_STARTS = {bytes([c]) for c in b'[{"-0123456789tfnNI'}  # what a JSON text (or NaN, Infinity) can start with

# What JSON cannot say: non-finite floats travel as these strings (and are read back from them).
NONFINITE_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf,
                   "nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # fmt: skip
DATA_KEYS = ("data", "shape", "indices")


@dataclass
class TensorInput:
    """A tensor read from one input, with the max-pool indices its document carried."""

    data: np.ndarray
    indices: np.ndarray | None
    source: str
    #: 1 or 2 when the input is a cnnops result whose last stage was a 1-D or 2-D layer, so a chained
    #: command keeps working in the same dimensionality
    spatial_dims: int | None = None


# ---------------------------------------------------------------------------------------------- reading


def read_input(arg: str, *, rgb: bool = False, stdin: BinaryIO | None = None,
               max_elements: int = DEFAULT_MAX_ELEMENTS) -> TensorInput:  # fmt: skip
    """Read one ``INPUT``: ``-`` (stdin), inline JSON, or a .json, .npy or image path.

    >>> t = read_input('{"data": [1, 2, 3, 4], "shape": [2, 2]}')
    >>> t.data.tolist(), t.data.dtype.name, t.source
    ([[1.0, 2.0], [3.0, 4.0]], 'float32', 'inline JSON')
    """
    import numpy as np

    if arg == "-":
        payload = _read_stdin(stdin)
        if payload.startswith(NPY_MAGIC):
            return TensorInput(_read_npy(payload, "stdin", max_elements), None, "stdin")
        text: bytes | str = payload
        source = label = "stdin"
    elif arg.lstrip()[:1] in ("[", "{"):
        text = arg
        source = label = "inline JSON"
    else:
        suffix = _input_suffix(arg)
        label = f"input file '{arg}'"
        if suffix == ".npy":
            return TensorInput(_read_npy(_read_file(arg, label), label, max_elements), None, arg)
        if suffix in IMAGE_SUFFIXES:
            _check_readable(arg, label)
            return TensorInput(_read_image(arg, label, rgb=rgb, max_elements=max_elements), None, arg)
        text = _read_file(arg, label)
        source = arg
    with _gc_paused():
        doc = _parse_json(text, label)
        data, indices = _tensor_from_document(doc, label, max_elements)
    with np.errstate(over="ignore"):  # beyond float32's range is ±inf, as in torch.tensor(…, dtype=float32)
        data = np.asarray(data, dtype=np.float32, order="C")
    return TensorInput(data, indices, source, _spatial_hint(doc))


def _spatial_hint(doc: Any) -> int | None:
    """1 or 2 from the last stage of a cnnops result document (``"stage": "MaxPool1d(…)"``), else None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list) or not doc["stages"]:
        return None
    last = doc["stages"][-1]
    text = last.get("stage") if isinstance(last, dict) else None
    if not isinstance(text, str):
        return None
    head = text.split("(", 1)[0]
    return 1 if head.endswith("1d") else 2 if head.endswith("2d") else None


def read_array_file(path: str, what: str = "weight", *, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """The numbers in a .json or .npy file (``weight=``, ``--indices``), as float64.

    JSON takes the same forms as an input; for ``what="indices"`` a document's ``indices`` are
    preferred to its ``data``, so the ``--json`` result of a max pool can be given directly.
    """
    import numpy as np

    label = f"{what} file '{path}'"
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".json", ".npy"):
        if not os.path.exists(path):
            raise InputError(f"{label} does not exist")
        raise InputError(f"{label} must be a .json or .npy file, not '{suffix or path}'")
    payload = _read_file(path, label)
    if suffix == ".npy":
        return _read_npy(payload, label, max_elements, dtype=np.float64)
    data, indices = _tensor_from_json(payload, label, max_elements)
    if what == "indices" and indices is not None:
        return indices.astype(np.float64)
    return data.astype(np.float64)


def _input_suffix(arg: str) -> str:
    suffix = os.path.splitext(arg)[1].lower()
    try:
        exists = os.path.lexists(arg)
    except (ValueError, OSError):  # embedded NUL, name too long
        exists = False
    if suffix in INPUT_SUFFIXES:
        if not exists:
            raise InputError(f"input file '{arg}' does not exist")
        return suffix
    if not exists:
        raise InputError(
            f"input '{arg}' is neither a file nor inline JSON — give a .json, .npy or image path, "
            f"'-' for stdin, or JSON text starting with '[' or '{{'"
        )
    if os.path.isdir(arg):
        raise InputError(f"input '{arg}' is a directory — give a file inside it")
    raise InputError(f"input file '{arg}' has an unknown suffix — use one of {', '.join(INPUT_SUFFIXES)}")


def _check_readable(path: str, label: str) -> None:
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{label} does not exist") from None
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{label} is a directory — give a file inside it")
    if not stat.S_ISREG(mode):
        raise InputError(f"{label} is not a regular file — save the data to a file first")
    if not os.access(path, os.R_OK):
        raise InputError(f"{label} cannot be read: permission denied")


def _read_file(path: str, label: str) -> bytes:
    _check_readable(path, label)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None


def _read_stdin(stdin: BinaryIO | None) -> bytes:
    if stdin is None:
        if sys.stdin is None:
            raise InputError("stdin is closed — pipe a JSON list or .npy data into cnnops")
        stdin = sys.stdin.buffer
    try:
        interactive = stdin.isatty()
    except (AttributeError, ValueError, OSError):
        interactive = False
    if interactive:  # reading would wait for typing that nobody expects to do
        raise InputError(
            "stdin is a terminal — pipe a JSON list or .npy data into cnnops, e.g. `cat x.json | cnnops relu -`"
        )
    try:
        return _read_stream(stdin)
    except OSError as exc:
        raise InputError(f"stdin cannot be read: {exc.strerror or exc}") from None


def _read_stream(stdin: BinaryIO) -> bytes:
    """All of stdin, refused at its first bytes when they cannot start JSON or .npy data.

    ``cnnops relu - < /dev/zero`` or ``yes | cnnops relu -`` would otherwise fill memory before the
    parser could say anything.
    """
    chunks: list[bytes] = []
    blank = 0  # bytes of leading whitespace read so far
    sniffing = True
    while chunk := stdin.read(STDIN_CHUNK):
        if sniffing:
            head = chunk[3:] if not chunks and chunk.startswith(UTF8_BOM) else chunk
            head = head.lstrip(JSON_WHITESPACE)
            if head.startswith(NPY_MAGIC) or head[:1] in JSON_STARTS:
                sniffing = False  # a plausible start: the parser judges the rest
            elif head:
                raise InputError(
                    f"stdin holds neither JSON nor .npy data: it starts with {head[:16]!r} — pipe a JSON list "
                    "or .npy data into cnnops"
                )
            else:
                blank += len(chunk)
                if blank > MAX_LEADING_WHITESPACE:
                    raise InputError(
                        f"stdin holds over {MAX_LEADING_WHITESPACE:,} bytes of blank space and no data — pipe a "
                        "JSON list or .npy data into cnnops"
                    )
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------- JSON


def _parse_json(payload: bytes | str, label: str) -> Any:
    """orjson for speed; the stdlib parser only for what orjson refuses (NaN, Infinity, 1e400)."""
    import json

    import orjson

    if isinstance(payload, bytes) and payload.startswith(UTF8_BOM):
        payload = payload[3:]
    if not payload.strip():
        raise InputError(f"{label} is empty — give a JSON list of numbers")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
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
        raise InputError(f"{label} is not valid JSON: {reason} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply — a tensor has at most {MAX_DEPTH} dimensions") from None
    except ValueError:  # Python refuses to convert integers longer than sys.get_int_max_str_digits()
        raise InputError(
            f"{label} has an integer of more than {sys.get_int_max_str_digits()} digits — write such a "
            f"number with an exponent, e.g. 1e5000 (beyond float32's range it is Infinity)"
        ) from None


def _tensor_from_json(payload: bytes | str, label: str, max_elements: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(data as float64, indices as int64 or None) from a JSON document in any of the input forms."""
    with _gc_paused():
        return _tensor_from_document(_parse_json(payload, label), label, max_elements)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of freshly parsed lists would set off the cycle collector again and again (5× slower)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _tensor_from_document(doc: Any, label: str, max_elements: int) -> tuple[np.ndarray, np.ndarray | None]:
    data_path, data_obj, shape_obj, indices_obj = _document_parts(doc, label)
    prefix = data_path[: -len("data")]
    shape = None if shape_obj is None else _shape_from_json(shape_obj, f"{prefix}shape", label, max_elements)
    data = _array_from_json(data_obj, data_path, label, max_elements, integer=False)
    if shape is not None:
        data = _reshape(data, shape, data_path, label)
    indices = None
    if indices_obj is not None:
        path = f"{prefix}indices"
        indices = _array_from_json(indices_obj, path, label, max_elements, integer=True)
        if indices.shape != data.shape and indices.size == data.size and shape is not None:
            indices = indices.reshape(data.shape)
        if indices.shape != data.shape:
            raise InputError(
                f"{label}: {path} has shape {_shape_text(indices.shape)} but {data_path} has shape "
                f"{_shape_text(data.shape)} — give one index per number"
            )
    return data, indices


def _document_parts(doc: Any, label: str) -> tuple[str, Any, Any, Any]:
    """(path of the data, data, shape or None, indices or None) for the three JSON input forms."""
    if not isinstance(doc, dict):
        return "data", doc, None, None
    if "output" in doc:
        output = doc["output"]
        if not isinstance(output, dict) or "data" not in output:
            raise InputError(
                f'{label}: the result document\'s "output" holds no "data" — make it with --json from a data '
                f"command such as `cnnops run`"
            )
        return "output.data", output["data"], output.get("shape"), output.get("indices")
    if "data" not in doc:
        if "output_shape" in doc:
            raise InputError(
                f"{label} is a `cnnops shape` result, which has shapes but no numbers — give a tensor, or the "
                f"--json result of a data command"
            )
        raise InputError(
            f'{label}: the JSON object has no "data" key — give {{"data": [...]}} or a nested list of numbers'
        )
    unknown = [key for key in doc if key not in DATA_KEYS]
    if unknown:
        raise InputError(
            f"{label}: unknown key {unknown[0]!r} in the JSON object — the keys are data, shape and indices"
        )
    return "data", doc["data"], doc.get("shape"), doc.get("indices")


def _shape_from_json(obj: Any, path: str, label: str, max_elements: int) -> tuple[int, ...]:
    if not isinstance(obj, list) or not all(type(n) is int and n >= 0 for n in obj):
        raise InputError(f"{label}: {path} must be a list of whole numbers ≥ 0, such as [1, 5, 5], not {_found(obj)}")
    if len(obj) > MAX_DEPTH:
        raise InputError(f"{label}: {path} has {len(obj)} dimensions — at most {MAX_DEPTH} are allowed")
    count = math.prod(obj)
    if count > max_elements:
        raise InputError(
            f"{label}: {path} {obj} holds {count:,} numbers, more than the limit of {max_elements:,} — raise --max-elements to allow it"
        )
    return tuple(obj)


def _reshape(array: np.ndarray, shape: tuple[int, ...], path: str, label: str) -> np.ndarray:
    if array.size != math.prod(shape):
        raise InputError(
            f"{label}: {path} has {array.size} numbers but shape {list(shape)} needs {math.prod(shape)} — "
            f"fix the shape or the data"
        )
    return array.reshape(shape)


def _array_from_json(obj: Any, path: str, label: str, max_elements: int, *, integer: bool) -> np.ndarray:
    """A nested list as an array, or an InputError naming the first element that does not fit.

    The happy path flattens one level at a time and checks types and lengths with C-level
    ``map``/``set`` calls, then converts in one numpy call: no Python loop per number. (``np.asarray``
    alone would quietly take true/false as 1/0, null as NaN and "1.5" as 1.5.)
    """
    import numpy as np

    shape = _leading_shape(obj, path, label)
    count = math.prod(shape)
    if count > max_elements:
        raise InputError(
            f"{label}: {path} holds {count:,} numbers, more than the limit of {max_elements:,} — raise --max-elements to allow it"
        )
    if 0 in shape:
        raise InputError(f"{label}: {path + '[0]' * shape.index(0)} is empty — a tensor needs at least one number")
    level = [obj]
    for size in shape:
        if set(map(type, level)) != {list} or set(map(len, level)) != {size}:
            return _array_from_validated(obj, shape, path, label, integer=integer)
        level = list(chain.from_iterable(level))
    kinds = set(map(type, level))
    if str in kinds and not integer:
        level = [NONFINITE_NAMES.get(v, v) if type(v) is str else v for v in level]
        kinds = set(map(type, level))
    if not kinds <= {int, float} or (integer and float in kinds):
        return _array_from_validated(obj, shape, path, label, integer=integer)
    try:
        return np.array(level, dtype=np.int64 if integer else np.float64).reshape(shape)
    except OverflowError:  # an integer beyond 64 bits
        return _array_from_validated(obj, shape, path, label, integer=integer)


def _array_from_validated(obj: Any, shape: tuple[int, ...], path: str, label: str, *, integer: bool) -> np.ndarray:
    import numpy as np

    flat = _validated_numbers(obj, shape, path, label, integer=integer)
    return np.array(flat, dtype=np.int64 if integer else np.float64).reshape(shape)


def _leading_shape(obj: Any, path: str, label: str) -> tuple[int, ...]:
    """The shape the first element of every level implies; the rest must agree with it."""
    shape: list[int] = []
    node = obj
    while isinstance(node, list):
        if len(shape) == MAX_DEPTH:
            raise InputError(
                f"{label}: {path} is nested more than {MAX_DEPTH} levels deep — a tensor has at most {MAX_DEPTH} dimensions"
            )
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    return tuple(shape)


def _validated_numbers(obj: Any, shape: tuple[int, ...], root: str, label: str, *, integer: bool) -> list:
    """Every number of ``obj`` in order, or an InputError naming the first element that does not fit."""
    flat: list = []
    index: list[int] = []

    def where(idx: list[int]) -> str:
        return root + "".join(f"[{i}]" for i in idx)

    def reference(idx: list[int]) -> str:
        # The element the shape was taken from: the first sibling, or the first element at that depth.
        return where(idx[:-1] + [0]) if idx and idx[-1] else where([0] * len(idx))

    def fail(problem: str, fix: str) -> InputError:
        return InputError(f"{label}: {where(index)} {problem} — {fix}")

    def number(value: Any) -> float | int:
        kind = type(value)
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
        if kind is list:
            raise fail(f"is a list where {reference(index)} is a number", "give every row the same nesting")
        fix = "indices must be whole numbers" if integer else 'use a number, or "NaN", "Infinity" or "-Infinity"'
        raise fail(f"is {_found(value)}", fix)

    def walk(node: Any, depth: int) -> None:
        if depth == len(shape):
            flat.append(number(node))
            return
        if not isinstance(node, list):
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


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# ---------------------------------------------------------------------------------------------- .npy


def _read_npy(payload: bytes, label: str, max_elements: int, dtype: Any = None) -> np.ndarray:
    """A .npy payload as float32 (or ``dtype``), its header checked before the array is built."""
    import io

    import numpy as np
    from numpy.lib import format as npy_format

    if dtype is None:
        dtype = np.float32
    stream = io.BytesIO(payload)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _, stored = npy_format.read_array_header_1_0(stream)
        else:
            shape, _, stored = npy_format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(f"{label} is not a valid .npy file ({exc}) — save it with numpy.save") from None
    kinds = {"b": "booleans", "O": "Python objects", "U": "strings", "S": "bytes", "c": "complex numbers",
             "V": "structured records", "M": "dates", "m": "time spans"}  # fmt: skip
    if stored.kind not in "iuf":
        raise InputError(
            f"{label} holds {kinds.get(stored.kind, stored.name)} — save real numbers, e.g. a.astype(numpy.float32)"
        )
    count = math.prod(shape)
    if count > max_elements:
        raise InputError(
            f"{label} holds {count:,} numbers, more than the limit of {max_elements:,} — raise --max-elements to allow it"
        )
    if count == 0:
        raise InputError(
            f"{label} holds an empty array of shape {_shape_text(shape)} — a tensor needs at least one number"
        )
    stream.seek(0)
    try:
        array = np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{label} is truncated or corrupt ({exc}) — save it again with numpy.save") from None
    with np.errstate(over="ignore"):
        return np.asarray(array, dtype=dtype, order="C")  # (ascontiguousarray would make 0-d 1-d)


# ---------------------------------------------------------------------------------------------- images


def _read_image(path: str, label: str, *, rgb: bool, max_elements: int) -> np.ndarray:
    """An image as float32 in [0, 1]: (1, H, W) grayscale, or (3, H, W) with ``rgb``; first frame only."""
    from PIL import Image

    channels = 3 if rgb else 1
    pixel_limit = max(1, max_elements // channels)
    saved_limit = Image.MAX_IMAGE_PIXELS
    # Pillow's decompression-bomb guard follows --max-elements, so raising that option is the one fix.
    Image.MAX_IMAGE_PIXELS = pixel_limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": the pixels still decode, and io never prints
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height * channels > max_elements:
                        raise _too_many_pixels(label, width * height, channels, max_elements)
                    return _image_array(image, rgb)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                match = re.search(r"\((\d+) pixels\)", str(exc))
                pixels = int(match.group(1)) if match else pixel_limit + 1
                raise _too_many_pixels(label, pixels, channels, max_elements) from None
            except InputError:
                raise
            except PermissionError:
                raise InputError(f"{label} cannot be read: permission denied") from None
            except Exception as exc:  # Pillow's decoders raise many kinds for broken files
                raise InputError(
                    f"{label} cannot be decoded as an image ({exc}) — it may be truncated or not an image"
                ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit


def _too_many_pixels(label: str, pixels: int, channels: int, max_elements: int) -> InputError:
    per_channel = f" × {channels} channels" if channels > 1 else ""
    return InputError(
        f"{label} has {pixels:,} pixels{per_channel}, more than --max-elements {max_elements:,} — raise "
        f"--max-elements to read it"
    )


def _image_array(image: Any, rgb: bool) -> np.ndarray:
    import numpy as np

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Pillow's conversion to L clips rather than scales these, so scale them here.
        plane = np.asarray(image).astype(np.float32)
        if image.mode != "F":
            plane /= np.float32(65535)
        plane = np.clip(plane, 0, 1)[None]
        return np.ascontiguousarray(np.repeat(plane, 3, axis=0) if rgb else plane)
    target = "RGB" if rgb else "L"
    try:
        converted = image.convert(target)
    except ValueError:  # modes such as HSV convert only by way of RGB
        converted = image.convert("RGB").convert(target)
    pixels = np.asarray(converted, dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1) if rgb else pixels[None])


# ---------------------------------------------------------------------------------------------- writing


def dumps(doc: object) -> str:
    """JSON text: float32 numbers in their shortest exact form, NaN and ±inf as "NaN", "Infinity", "-Infinity".

    >>> import numpy as np
    >>> dumps({"x": np.array([0.1, -np.inf], dtype=np.float32), "n": np.int64(3)})
    '{"x":[0.1,"-Infinity"],"n":3}'
    """
    import orjson

    options = orjson.OPT_NON_STR_KEYS
    text = orjson.dumps(doc, default=_json_default, option=options)
    if b"null" in text:  # orjson writes non-finite floats as null; find and name them
        text = orjson.dumps(_name_nonfinite(doc), default=_json_default, option=options)
    return text.decode("utf-8")


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
    with _gc_paused():
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


def write_output(path: str, data: np.ndarray, *, indices: np.ndarray | None = None, doc: dict | None = None) -> None:
    """Write ``--output``: a .json document (``doc``, or shape, data and indices) or a .npy array, atomically."""
    import numpy as np

    suffix = _output_suffix(path)
    if suffix == ".json":
        if doc is None:
            doc = {"shape": list(np.shape(data)), "data": array_to_json(np.asarray(data))}
            if indices is not None:
                doc["indices"] = np.asarray(indices).tolist()
        payload = (dumps(doc) + "\n").encode("utf-8")
    else:
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data), allow_pickle=False)
        payload = buffer.getvalue()
    atomic_write_bytes(path, payload)


def check_output_path(path: str) -> None:
    """Fail before any work starts if ``--output`` cannot be written."""
    _output_suffix(path)
    _check_output_location(path)


def check_writable(path: str) -> None:
    """Fail before any work starts if a file (a picture, say) cannot be written at ``path``."""
    _check_output_location(path)


def _output_suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"output file '{path}' must end in .json or .npy")
    return suffix


def _check_output_location(path: str) -> str:
    """The directory ``path`` will be written in, after checking that it can be."""
    label = f"output file '{path}'"
    if not path or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise InputError(f"{label} is a directory — give a file name such as {os.path.join(path or '.', 'out.json')}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise InputError(f"{label} cannot be written: directory '{directory}' does not exist — create it first")
    if not os.path.isdir(directory):
        raise InputError(f"{label} cannot be written: '{directory}' is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{label} cannot be written: directory '{directory}' is not writable")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise InputError(f"{label} exists and is not a regular file — choose another name")
    return directory


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    directory = _check_output_location(path)
    mode = _new_file_mode(path)
    try:
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"output file '{path}' cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temp_path)
        if isinstance(exc, OSError):
            raise InputError(f"output file '{path}' cannot be written: {exc.strerror or exc}") from None
        raise
    _fsync_directory(directory)


def _new_file_mode(path: str) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask (mkstemp uses 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
