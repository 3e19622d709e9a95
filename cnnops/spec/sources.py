"""A network from a file, whatever it holds: stage lines or print(model) text, Python source (read
statically), or an ONNX graph — each through its own reader, all giving a
:class:`~cnnops.model.network.Network` for the one shape model.

>>> import io
>>> network, shape = read_network_file("-", (1, 3, 8, 8), stdin=io.StringIO("Conv2d(3, 8, 3)\\nReLU"))
>>> [s.call for s in network], shape
(['Conv2d(3, 8, 3)', 'ReLU()'], (1, 3, 8, 8))
"""

from __future__ import annotations

from typing import Any

from cnnops.errors import InputError, SpecError, setting
from cnnops.model.network import Network
from cnnops.model.stages import Shape
from cnnops.spec.files import MAX_STAGE_FILE, parse_stage_file

#: an ONNX file may be large (weights); it is read whole by the onnx package
MAX_ONNX_FILE = 2 * 2**30


def is_onnx_path(path: str) -> bool:
    return str(path).lower().endswith(".onnx")


def is_python_path(path: str) -> bool:
    return str(path).lower().endswith(".py")


def read_network_file(path: str, input_shape: Shape | None, *, class_name: str | None = None,
                      stdin: Any = None) -> tuple[Network, Shape]:  # fmt: skip
    """The network a file describes and the input shape to size it with (an ONNX file's own when
    ``input_shape`` is None). ``-`` reads ``stdin`` (text: stage lines, print(model) text or Python)."""
    if path != "-" and is_onnx_path(path):
        from cnnops.spec.onnxgraph import read_onnx_file

        if class_name is not None:
            raise SpecError(f"{setting('class')} chooses a class in Python source; {path} is an ONNX graph")
        return read_onnx_file(path, input_shape)
    text = _read_text(path, stdin)
    python = is_python_path(path) or _python_text(text)
    if not python:
        if class_name is not None:
            raise SpecError(f"{setting('class')} chooses a class in Python source, but {path} holds stage lines")
        if input_shape is None:
            raise InputError("give the input shape first, e.g. 1x3x224x224")
        return parse_stage_file(text, origin=str(path)), input_shape
    from cnnops.spec.pysource import read_python_source

    if input_shape is None:
        raise InputError(f"give the input shape of the model in {path}, e.g. 1x3x224x224")
    origin = "<stdin>" if path == "-" else str(path)
    return read_python_source(text, origin, input_shape, class_name), input_shape


def looks_like_python(text: str) -> bool:
    """Python model code rather than stage lines or print(model) text: it defines a class or imports.
    (Here rather than in :mod:`cnnops.spec.pysource`, so that telling needs no reader imported.)"""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("class ", "import ", "from ", "def ")) and not stripped.startswith("from:"):
            return True
    return False


def _python_text(text: str) -> bool:
    return looks_like_python(text)


def _read_text(path: str, stdin: Any) -> str:
    try:
        if str(path) == "-":
            text = stdin.read(MAX_STAGE_FILE + 1)
        else:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read(MAX_STAGE_FILE + 1)
    except FileNotFoundError:
        raise InputError(f"file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"'{path}' is a directory — give a file") from None
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not text: give stage lines, print(model) text, Python source, or an ONNX "
                         "file named *.onnx") from None  # fmt: skip
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc}") from None
    if len(text) > MAX_STAGE_FILE:
        raise InputError(f"'{path}' is longer than {MAX_STAGE_FILE:,} characters")
    return text
