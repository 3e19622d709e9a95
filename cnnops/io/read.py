"""Read one input: a .json, .npy or image file, stdin, inline tensor text (JSON or Python), or a
generator (``randn:1x4x4``), into a float32 array.

>>> read_input("[[1, 2], [3, 4]]").data.shape
(2, 2)
>>> t = read_input('{"data": [1, 2, 3, 4], "shape": [2, 2]}')
>>> t.data.tolist(), t.data.dtype.name, t.source
([[1.0, 2.0], [3.0, 4.0]], 'float32', 'inline JSON')
>>> read_input("[[-4., 0., 4.]]").source, read_input("randn:1x4x4", seed=0).source
('inline tensor', 'randn:1x4x4 (seed 0)')
"""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

from cnnops.errors import InputError, setting
from cnnops.io.images import IMAGE_SUFFIXES, read_image
from cnnops.io.jsontext import UTF8_BOM, gc_paused
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS, check_memory, default_max_memory, file_size, size_text
from cnnops.io.words import looks_inline, looks_like_generator
from cnnops.records import record
from cnnops.text import echo, safe_text, show, tuple_text

if TYPE_CHECKING:
    import numpy as np

    from cnnops.io.literal import TensorText

# The readers of generators, tensor text and nested lists (cnnops.io.generators, .literal, .nested) are
# imported where an input needs them: a .npy file or an image needs none of them.

INPUT_SUFFIXES = (".json", ".npy", *IMAGE_SUFFIXES)
NPY_MAGIC = b"\x93NUMPY"
STDIN_CHUNK = 2**20
MAX_LEADING_WHITESPACE = 64 * 2**20
JSON_WHITESPACE = b" \t\r\n"
# what a JSON text (or NaN, Infinity), a Python literal or a torch/numpy call can start with
TEXT_STARTS = {bytes([c]) for c in b'[{("-0123456789tfnNIai'}
#: a generated input's source names the text that made it; longer text is cut
SOURCE_CHARS = 60
DATA_KEYS = ("data", "shape", "indices")
#: reading JSON text holds up to this many times its size (the text, Python's numbers, the arrays)
JSON_MEMORY_FACTOR = 20
NPY_MAX_HEADER = 10_000  # numpy's own limit, said in one line


@record
class TensorInput:
    """A tensor read from one input, with the max-pool indices its document carried."""

    data: np.ndarray
    indices: np.ndarray | None
    source: str
    #: the last stage's text when the input is a cnnops result document (``"MaxPool1d(…)"``), so a
    #: chained command can keep working in the same dimensionality
    last_stage: str | None = None


# ---------------------------------------------------------------------------------------------- reading


def read_input(arg: str, *, rgb: bool = False, stdin: BinaryIO | None = None,
               max_elements: int = DEFAULT_MAX_ELEMENTS, max_memory: int | None = None,
               seed: int = 0) -> TensorInput:  # fmt: skip
    """Read one ``INPUT``: ``-`` (stdin), inline tensor text, a generator, or a .json, .npy or image path.
    A random generator (``randn:1x4x4``, ``torch.randn(1, 4, 4)``) starts ``torch.manual_seed(seed)``.
    Reading is refused before it starts when it would need more than ``max_memory`` bytes (None: half
    the free memory).

    >>> read_input("torch.arange(4).reshape(2, 2)").data.tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    import numpy as np

    limit = default_max_memory() if max_memory is None else max_memory
    text: bytes | str | np.ndarray
    if arg == "-":
        text = _read_stdin(stdin, limit, max_elements)
        if isinstance(text, np.ndarray):
            return TensorInput(text, None, "stdin")
        source = label = "stdin"
    elif looks_like_generator(arg):
        from cnnops.io.generators import generate, parse_generator

        gen = parse_generator(arg)
        data = generate(gen, seed=seed, max_elements=max_elements, max_memory=limit)
        return TensorInput(data, None, _generated_source(" ".join(arg.split()), seed if gen.random else None))
    elif looks_inline(arg) and (arg.lstrip()[:1] in ("[", "{", "(") or not _exists(arg)):
        text = arg
        source = label = "inline tensor"
        _check_json_size(len(arg), label, limit)
    else:
        suffix = _input_suffix(arg)
        label = f"input file '{echo(arg)}'"
        if suffix == ".npy":
            return TensorInput(_read_npy_file(arg, label, max_elements, limit), None, safe_text(arg))
        if suffix in IMAGE_SUFFIXES:
            _check_readable(arg, label)
            data = read_image(arg, label, rgb=rgb, max_elements=max_elements, max_memory=limit)
            return TensorInput(data, None, safe_text(arg))
        _check_readable(arg, label)
        _check_json_size(file_size(arg) or 0, label, limit)
        text = _read_file(arg, label)
        from cnnops.io.jsontext import free_of_booleans, parse_json
        from cnnops.io.literal import TensorText

        with gc_paused():
            doc, plain = parse_json(text, label), free_of_booleans(text)
            del text
            return _tensor_input(TensorText(doc), label, safe_text(arg), max_elements, seed, numbers_only=plain)
    from cnnops.io.literal import parse_tensor_text

    with gc_paused():  # from parsing to the array: the parsed lists are garbage-free
        parsed = parse_tensor_text(text, label)
        if parsed.syntax == "JSON" and source == "inline tensor":
            source = label = "inline JSON"
        if parsed.generator is not None:
            shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            shown = " ".join(shown.split()) if source != "stdin" else "stdin"
            source = _generated_source(shown, (seed if parsed.seed is None else parsed.seed) if parsed.random else None)
        return _tensor_input(parsed, label, source, max_elements, seed, limit=limit)


def _tensor_input(parsed: TensorText, label: str, source: str, max_elements: int, seed: int, *,
                  numbers_only: bool = False, limit: int | None = None) -> TensorInput:  # fmt: skip
    import numpy as np

    from cnnops.io.literal import tensor_array

    doc = parsed.doc
    if parsed.generator is not None or parsed.steps:
        data, indices = tensor_array(parsed, label, seed=seed, max_elements=max_elements, max_memory=limit), None
    else:
        with gc_paused():
            data, indices = _tensor_from_document(doc, label, max_elements, numbers_only=numbers_only)
    with np.errstate(over="ignore"):  # beyond float32's range is ±inf, as in torch.tensor(…, dtype=float32)
        data = np.asarray(data, dtype=np.float32, order="C")
    return TensorInput(data, indices, source, _last_stage(doc))


def _check_json_size(nbytes: int, label: str, limit: int) -> None:
    check_memory(JSON_MEMORY_FACTOR * nbytes, limit, f"reading {label} ({size_text(nbytes)} of JSON text)",
                 "save the tensor as .npy (read at its own size)")  # fmt: skip


def _generated_source(text: str, seed: int | None) -> str:
    """``randn:1x4x4 (seed 0)``: the text that made an input, and the seed when it is random."""
    if len(text) > SOURCE_CHARS:
        text = text[: SOURCE_CHARS - 1] + "…"
    return text if seed is None else f"{text} (seed {seed})"


def _last_stage(doc: Any) -> str | None:
    """The last stage's text in a cnnops result document (``"stage": "MaxPool1d(…)"``), else None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list) or not doc["stages"]:
        return None
    last = doc["stages"][-1]
    text = last.get("stage") if isinstance(last, dict) else None
    return text if isinstance(text, str) else None


def read_array_file(path: str, what: str = "weight", *, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """The numbers in a .json or .npy file (``weight=``, ``--indices``), as float64.

    JSON takes the same forms as an input; for ``what="indices"`` a document's ``indices`` are
    preferred to its ``data``, so the ``--json`` result of a max pool can be given directly.
    """
    import numpy as np

    label = f"{what} file '{echo(path)}'"
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".json", ".npy"):
        if not os.path.exists(path):
            raise InputError(f"{label} does not exist")
        raise InputError(f"{label} must be a .json or .npy file, not '{echo(suffix or path)}'")
    limit = default_max_memory()
    if suffix == ".npy":
        return _read_npy_file(path, label, max_elements, limit, dtype=np.float64)
    _check_readable(path, label)
    _check_json_size(file_size(path) or 0, label, limit)
    payload = _read_file(path, label)
    data, indices = _tensor_from_json(payload, label, max_elements)
    if what == "indices" and indices is not None:
        return indices.astype(np.float64)
    return data.astype(np.float64)


def read_array_text(text: str, what: str = "indices", *, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """The numbers of inline tensor text (``--indices '[[1, 3]]'``), as float64; like :func:`read_array_file`,
    a document's ``indices`` are preferred for ``what="indices"``."""
    import numpy as np

    from cnnops.io.literal import tensor_value

    label = f"{what} {show(text)}"
    value = tensor_value(text, label)
    if isinstance(value, np.ndarray):
        return value.astype(np.float64)
    with gc_paused():
        data, indices = _tensor_from_document(value, label, max_elements)
    return (indices if what == "indices" and indices is not None else data).astype(np.float64)


def _exists(arg: str) -> bool:
    try:
        return os.path.lexists(arg)
    except (ValueError, OSError):  # embedded NUL, name too long
        return False


def _input_suffix(arg: str) -> str:
    suffix = os.path.splitext(arg)[1].lower()
    exists = _exists(arg)
    if suffix in INPUT_SUFFIXES:
        if not exists:
            raise InputError(f"input file '{echo(arg)}' does not exist")
        return suffix
    if not exists:
        raise InputError(
            f"input '{echo(arg)}' is neither a file nor inline JSON — give a .json, .npy or image path, '-' for "
            f"stdin, a tensor such as '[[1., 2.]]' or 'torch.tensor([...])', or a generator such as randn:1x4x4"
        )
    if os.path.isdir(arg):
        raise InputError(f"input '{echo(arg)}' is a directory — give a file inside it")
    raise InputError(f"input file '{echo(arg)}' has an unknown suffix — use one of {', '.join(INPUT_SUFFIXES)}")


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


def _read_stdin(stdin: BinaryIO | None, limit: int, max_elements: int) -> bytes | np.ndarray:
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
        return _read_stream(stdin, limit, max_elements)
    except OSError as exc:
        raise InputError(f"stdin cannot be read: {exc.strerror or exc}") from None


def _read_stream(stdin: BinaryIO, limit: int, max_elements: int) -> bytes | np.ndarray:
    """JSON text from stdin, up to what fits in the memory budget, or a .npy array read straight into
    its array — refused at its first bytes when they cannot start JSON or .npy data.

    ``cnnops relu - < /dev/zero`` or ``yes | cnnops relu -`` would otherwise fill memory before the
    parser could say anything.
    """
    cap = max(1, limit // JSON_MEMORY_FACTOR)
    text = bytearray()
    blank = 0  # bytes of leading whitespace read so far
    sniffing = True
    while chunk := stdin.read(STDIN_CHUNK):
        if sniffing:
            head = chunk[3:] if not text and chunk.startswith(UTF8_BOM) else chunk
            stripped = head.lstrip(JSON_WHITESPACE)
            if not text and not blank and chunk.startswith(NPY_MAGIC[: len(chunk)]):
                return _read_npy_stream(_Prefixed(chunk, stdin), "stdin", max_elements, limit)
            if stripped[:1] in TEXT_STARTS:
                sniffing = False  # a plausible start: the parser judges the rest
            elif stripped:
                raise InputError(
                    f"stdin holds neither JSON nor .npy data: it starts with {echo(repr(stripped[:16]))} — pipe a "
                    "JSON list, a tensor such as torch.tensor([...]), or .npy data into cnnops"
                )
            else:
                blank += len(chunk)
                if blank > MAX_LEADING_WHITESPACE:
                    raise InputError(
                        f"stdin holds over {MAX_LEADING_WHITESPACE:,} bytes of blank space and no data — pipe a "
                        "JSON list or .npy data into cnnops"
                    )
                continue
        text += chunk
        if len(text) > cap:
            del text
            raise InputError(
                f"stdin holds more than {size_text(cap)} of JSON text, more than reading it within the memory "
                f"limit allows — save the tensor as .npy, or raise {setting('max_memory')}"
            )
    return bytes(text)


class _Prefixed:
    """A stream whose first bytes were already read: ``head`` then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if self.head:
            taken, self.head = (self.head, b"") if size < 0 or size >= len(self.head) else \
                (self.head[:size], self.head[size:])  # fmt: skip
            if size < 0:
                return taken + self.stream.read()
            return taken + (self.stream.read(size - len(taken)) if len(taken) < size else b"")
        return self.stream.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(self.head), len(view))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _tensor_from_json(payload: bytes | str, label: str, max_elements: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(data as float64, indices as int64 or None) from a JSON document in any of the input forms."""
    from cnnops.io.jsontext import free_of_booleans, parse_json

    with gc_paused():
        return _tensor_from_document(parse_json(payload, label), label, max_elements, numbers_only=free_of_booleans(payload))




def _tensor_from_document(doc: Any, label: str, max_elements: int, *,
                          numbers_only: bool = False) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    from cnnops.io.nested import reshape_to, shape_from_json, to_array

    data_path, data_obj, shape_obj, indices_obj = _document_parts(doc, label)
    prefix = data_path[: -len("data")]
    shape = None if shape_obj is None else shape_from_json(shape_obj, f"{prefix}shape", label, max_elements)
    data = to_array(data_obj, root=data_path, label=label, max_elements=max_elements, numbers_only=numbers_only)
    if shape is not None:
        data = reshape_to(data, shape, data_path, label)
    indices = None
    if indices_obj is not None:
        path = f"{prefix}indices"
        indices = to_array(indices_obj, root=path, label=label, max_elements=max_elements, integer=True)
        if indices.shape != data.shape and indices.size == data.size and shape is not None:
            indices = indices.reshape(data.shape)
        if indices.shape != data.shape:
            raise InputError(
                f"{label}: {path} has shape {tuple_text(indices.shape)} but {data_path} has shape "
                f"{tuple_text(data.shape)} — give one index per number"
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
            f"{label}: unknown key {echo(repr(unknown[0]))} in the JSON object — the keys are data, shape and indices"
        )
    return "data", doc["data"], doc.get("shape"), doc.get("indices")




# ---------------------------------------------------------------------------------------------- .npy


def _read_npy_file(path: str, label: str, max_elements: int, limit: int, dtype: Any = None) -> np.ndarray:
    _check_readable(path, label)
    try:
        with open(path, "rb") as stream:
            return _read_npy_stream(stream, label, max_elements, limit, dtype)
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}") from None


def _read_npy_stream(stream: Any, label: str, max_elements: int, limit: int, dtype: Any = None) -> np.ndarray:
    """A .npy array as float32 (or ``dtype``): its header checked first (kind, size, memory), then its
    numbers read straight into the array, never into a copy of the file."""
    import numpy as np
    from numpy.lib import format as npy_format

    if dtype is None:
        dtype = np.float32
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, stored = npy_format.read_array_header_1_0(stream, max_header_size=NPY_MAX_HEADER)
        else:
            shape, fortran, stored = npy_format.read_array_header_2_0(stream, max_header_size=NPY_MAX_HEADER)
    except ValueError as exc:
        if "max_header_size" in str(exc):
            raise InputError(
                f"{label} has a .npy header of over {NPY_MAX_HEADER:,} bytes, which numpy.save never writes — "
                "save the array again with numpy.save"
            ) from None
        raise InputError(f"{label} is not a valid .npy file ({echo(str(exc))}) — save it with numpy.save") from None
    except (OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(f"{label} is not a valid .npy file ({echo(str(exc))}) — save it with numpy.save") from None
    kinds = {"b": "booleans", "O": "Python objects", "U": "strings", "S": "bytes", "c": "complex numbers",
             "V": "structured records", "M": "dates", "m": "time spans"}  # fmt: skip
    if stored.kind not in "iuf":
        raise InputError(
            f"{label} holds {kinds.get(stored.kind, stored.name)} — save real numbers, e.g. a.astype(numpy.float32)"
        )
    if any(size < 0 for size in shape):  # numpy's header reader takes any whole numbers here
        raise InputError(
            f"{label} is corrupt: its header gives the shape {tuple_text(shape)}, with a negative size — save it "
            "again with numpy.save"
        )
    count = math.prod(shape)
    if count > max_elements:
        raise InputError(
            f"{label} holds {count:,} numbers, more than the limit of {max_elements:,} — raise {setting('max_elements')} to allow it"
        )
    if count == 0:
        raise InputError(
            f"{label} holds an empty array of shape {tuple_text(shape)} — a tensor needs at least one number"
        )
    wanted = np.dtype(dtype)
    converted = stored != wanted or fortran
    check_memory(count * stored.itemsize + (count * wanted.itemsize if converted else 0), limit, f"reading {label}")
    array = np.empty(count, dtype=stored)
    view = memoryview(array).cast("B")  # type: ignore[arg-type]
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            raise InputError(
                f"{label} is truncated or corrupt: its header promises {count:,} numbers but the data ends after "
                f"{filled // stored.itemsize:,} — save it again with numpy.save"
            )
        filled += n
    del view
    array = array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
    if not converted:
        return array
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(array, dtype=wanted, order="C")  # (ascontiguousarray would make 0-d 1-d)
