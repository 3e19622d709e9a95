"""Robustness (issue 6): whatever a user throws at cnnops, the worst outcome is one clear sentence.

Every bad input below must give its exit code (1 for input and layer errors, 2 for command-line
usage), exactly one ``Error: …`` line on stderr that names the problem, an empty stdout, and never
a traceback or an "internal error". Most cases run in-process with ``CliRunner``; a representative
subset runs the real program (``python -m cnnops``), including a closed stdout pipe, Ctrl-C and a
SIGKILL while an ``--output`` file is being written.

Temporary files: ``--output out.json`` is written to ``.out.json.XXXXXXXX.tmp`` (a hidden file in the
same directory, ``XXXXXXXX`` being eight of ``[a-z0-9_]`` made from the process id and a count) and renamed
onto ``out.json``; only a process killed between those two steps can leave that file behind.
"""

from __future__ import annotations

import io as stdio
import json
import math
import os
import pickle
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from numpy.lib import format as npy_format
from PIL import Image
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.errors import CnnopsError, InputError, LayerError, SettingError, SpecError
from cnnops.io import read
from cnnops.model.trace import parse_shape, trace_shapes
from cnnops.spec import parse_stage, parse_stage_file

runner = CliRunner()
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
TEMP_NAME = re.compile(r"^\.out\.(json|npy)\.[a-z0-9_]{8}\.tmp$")


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input,
                         env={"COLUMNS": "200", "CNNOPS_DEBUG": None, "NO_COLOR": "1"})  # fmt: skip


def cnnops_process(*args, input=None, cwd=None, timeout=60, **kwargs):
    """The real program in a subprocess, as a shell user runs it."""
    env = dict(os.environ, COLUMNS="200", OPENBLAS_NUM_THREADS="1")
    env.pop("CNNOPS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "cnnops", *map(str, args)], input=input, cwd=cwd, env=env,
                          capture_output=True, timeout=timeout, **kwargs)  # fmt: skip


def assert_one_error(code, stdout, stderr, expected_code, fragment, *, click_usage=False):
    """The exit code, one ``Error: …`` line naming the problem, nothing on stdout, no traceback."""
    assert "Traceback" not in stdout + stderr, stderr
    assert "internal error" not in stderr, stderr
    assert code == expected_code, (code, stderr)
    assert stdout == "", stdout
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    if click_usage:  # click's own usage errors: "Usage: …", "Try '… -h' for help.", then the Error line
        assert len(errors) == 1 and lines[-1] == errors[0], lines
    else:
        assert len(lines) == 1 and len(errors) == 1, lines
    assert fragment in errors[0], errors[0]


def assert_result_error(result, expected_code, fragment, *, click_usage=False):
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_error(result.exit_code, result.stdout, result.stderr, expected_code, fragment, click_usage=click_usage)


# ---------------------------------------------------------------------------------------------- fixtures


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width × height`` 8-bit gray pixels, with (almost) no pixel data:
    a decompression bomb's header at no cost."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b""))
            + png_chunk(b"IEND", b""))  # fmt: skip


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = stdio.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.kind == "O")
    return buffer.getvalue()


def npy_header_only(shape: tuple[int, ...]) -> bytes:
    """A .npy header that claims ``shape`` float32 numbers, followed by next to no data."""
    buffer = stdio.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 16


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory) -> Path:
    """A directory of broken, fake and oversized inputs; the corpus refers to them by name."""
    d = tmp_path_factory.mktemp("bad")
    (d / "multiline.json").write_text("[\n  [1, 2],\n  [3 4]\n]\n")
    (d / "ragged.json").write_text('{"data": [[1, 2], [3, 4, 5]]}')
    (d / "blank.json").write_text("  \n\t\n")
    (d / "latin1.json").write_bytes(b"[1, 2, \xe9]")
    (d / "shape_result.json").write_text(json.dumps({"input_shape": [1, 1, 4, 4], "stages": [], "output_shape": [1, 1, 4, 4]}))
    (d / "object.npy").write_bytes(npy_bytes(np.array([{"a": 1}, None], dtype=object)))
    (d / "strings.npy").write_bytes(npy_bytes(np.array(["a", "b"])))
    (d / "complex.npy").write_bytes(npy_bytes(np.array([1 + 2j])))
    (d / "bools.npy").write_bytes(npy_bytes(np.array([True, False])))
    (d / "pickled.npy").write_bytes(pickle.dumps([1.0, 2.0]))
    (d / "empty.npy").write_bytes(npy_bytes(np.zeros((0, 3), dtype=np.float32)))
    (d / "truncated.npy").write_bytes(npy_bytes(np.zeros((100, 100), dtype=np.float32))[:300])
    (d / "huge_header.npy").write_bytes(npy_header_only((100_000, 100_000)))
    (d / "grid100.npy").write_bytes(npy_bytes(np.zeros((100, 100), dtype=np.float32)))
    (d / "text.png").write_text("this is not a picture")
    (d / "empty.png").write_bytes(b"")
    Image.new("L", (64, 64), 128).save(d / "gray64.png")
    whole = (d / "gray64.png").read_bytes()
    (d / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (d / "bomb.png").write_bytes(png_header_only(30_000, 30_000))
    (d / "data.csv").write_text("1,2,3\n")
    (d / "adir").mkdir()
    (d / "dir.json").mkdir()
    (d / "afile").write_text("")
    os.mkfifo(d / "fifo.json")
    os.symlink(d / "nowhere.json", d / "dangling.json")
    (d / "stages_bad_line.txt").write_text("Conv2d(1, 2, 3)\nMaxPool2d(2).__class__\n")
    (d / "idx_out_of_range.json").write_text("[[0, 1], [2, 99]]")
    (d / "idx.json").write_text("[[0, 1], [2, 3]]")
    return d


# ---------------------------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Bad:
    id: str
    kind: str
    args: tuple
    code: int
    fragment: str
    stdin: str | None = None
    click_usage: bool = False


DEEP = "[" * 33 + "1" + "]" * 33
ABSURD = "[" * 100_000
LONG_INT = "1" * 5000

# fmt: off
CORPUS = [
    # invalid JSON, with line and column
    Bad("json-unclosed", "invalid JSON", ("relu", "[[1, 2], [3, 4]"), 1, "not valid JSON: expecting ',' delimiter at line 1, column 16"),
    Bad("json-multiline", "invalid JSON", ("relu", "multiline.json"), 1, "at line 3, column 6"),
    Bad("json-trailing", "invalid JSON", ("relu", "[1] x"), 1, "at line 1, column 5"),
    Bad("json-stdin", "invalid JSON", ("relu", "-"), 1, "stdin is not valid JSON", stdin="[1, 2,,]"),
    Bad("json-not-utf8", "invalid JSON", ("relu", "latin1.json"), 1, "not UTF-8"),
    # ragged lists name the first bad row
    Bad("ragged-row", "ragged", ("relu", "[[1, 2], [3]]"), 1, "data[1] has 1 items where data[0] has 2"),
    Bad("ragged-deep", "ragged", ("relu", "[[[1], [2]], [[3], 4]]"), 1, "data[1][1] is a number where"),
    Bad("ragged-file", "ragged", ("relu", "ragged.json"), 1, "data[1] has 3 items"),
    Bad("ragged-shape", "ragged", ("relu", '{"data": [1, 2, 3], "shape": [2, 2]}'), 1, "needs 4"),
    # non-numbers, bool and None
    Bad("string", "non-number", ("relu", '[[1, "a"]]'), 1, "data[0][1] is the string 'a'"),
    Bad("object", "non-number", ("relu", "[1, {}]"), 1, "data[1] is an object"),
    Bad("bool", "bool/None", ("relu", "[true, 1]"), 1, "data[0] is true"),
    Bad("null", "bool/None", ("relu", "[1, null]"), 1, "data[1] is null"),
    Bad("bool-index", "bool/None", ("relu", '{"data": [1, 2], "indices": [0, false]}'), 1, "indices[1] is false"),
    Bad("long-int", "non-number", ("relu", f"[{LONG_INT}]"), 1, "more than 4300 digits"),
    Bad("unknown-key", "non-number", ("relu", '{"data": [1], "dat": 2}'), 1, "unknown key 'dat'"),
    Bad("shape-result", "non-number", ("relu", "shape_result.json"), 1, "`cnnops shape` result"),
    # empty tensors
    Bad("empty-list", "empty", ("relu", "[]"), 1, "data is empty"),
    Bad("empty-rows", "empty", ("relu", "[[], []]"), 1, "data[0] is empty"),
    Bad("empty-file", "empty", ("relu", "blank.json"), 1, "is empty"),
    Bad("empty-stdin", "empty", ("relu", "-"), 1, "stdin is empty", stdin=""),
    Bad("empty-npy", "empty", ("relu", "empty.npy"), 1, "empty array of shape (0, 3)"),
    # nesting too deep
    Bad("deep-33", "nesting", ("relu", DEEP), 1, "nested more than 32 levels"),
    Bad("deep-absurd", "nesting", ("relu", ABSURD), 1, "nested too deeply"),
    # .npy that is not real numbers (never unpickled)
    Bad("npy-object", ".npy dtype", ("relu", "object.npy"), 1, "holds Python objects"),
    Bad("npy-str", ".npy dtype", ("relu", "strings.npy"), 1, "holds strings"),
    Bad("npy-complex", ".npy dtype", ("relu", "complex.npy"), 1, "holds complex numbers"),
    Bad("npy-bool", ".npy dtype", ("relu", "bools.npy"), 1, "holds booleans"),
    Bad("npy-pickle", ".npy dtype", ("relu", "pickled.npy"), 1, "is not a valid .npy file"),
    Bad("npy-truncated", ".npy dtype", ("relu", "truncated.npy"), 1, "truncated or corrupt"),
    # truncated and fake images
    Bad("png-text", "image", ("relu", "text.png"), 1, "cannot be decoded as an image"),
    Bad("png-empty", "image", ("relu", "empty.png"), 1, "cannot be decoded as an image"),
    Bad("png-truncated", "image", ("relu", "truncated.png"), 1, "truncated"),
    Bad("png-bomb", "image", ("relu", "bomb.png"), 1, "has 900,000,000 pixels, more than --max-elements 268,435,456"),
    # unknown file types, missing files, directories, special files
    Bad("unknown-suffix", "file", ("relu", "data.csv"), 1, "has an unknown suffix"),
    Bad("missing-file", "file", ("relu", "missing.json"), 1, "'missing.json' does not exist"),
    Bad("neither", "file", ("relu", "hello"), 1, "is neither a file nor inline JSON"),
    Bad("directory", "file", ("relu", "adir"), 1, "'adir' is a directory"),
    Bad("directory-json", "file", ("relu", "dir.json"), 1, "is a directory"),
    Bad("fifo", "file", ("relu", "fifo.json"), 1, "is not a regular file"),
    Bad("dangling-link", "file", ("relu", "dangling.json"), 1, "does not exist"),
    Bad("stage-file-dir", "file", ("shape", "1x1x4x4", "-f", "adir"), 1, "stage file 'adir' is a directory"),
    Bad("stage-file-missing", "file", ("shape", "1x1x4x4", "-f", "nope.txt"), 1, "stage file 'nope.txt' does not exist"),
    # --max-elements, by an input and by a stage output (checked before allocating: see below)
    Bad("limit-json", "max-elements", ("relu", "[1, 2, 3, 4]", "--max-elements", "3"), 1, "more than the limit of 3"),
    Bad("limit-npy", "max-elements", ("relu", "grid100.npy", "--max-elements", "1000"), 1, "holds 10,000 numbers"),
    Bad("limit-npy-header", "max-elements", ("relu", "huge_header.npy"), 1, "holds 10,000,000,000 numbers"),
    Bad("limit-image", "max-elements", ("relu", "gray64.png", "--max-elements", "100"), 1, "has 4,096 pixels"),
    Bad("limit-convtranspose", "max-elements", ("run", "[[1, 2], [3, 4]]", "ConvTranspose2d(1, 1, 1, stride=100000)"), 1,
        "ConvTranspose2d(1, 1, 1, stride=100000) would hold 10,000,200,001 elements"),
    Bad("limit-adaptive", "max-elements", ("run", "[[1]]", "AdaptiveAvgPool2d(100000)"), 1,
        "would hold 10,000,000,000 elements, more than the limit 268,435,456"),
    Bad("limit-adaptive-cmd", "max-elements", ("adaptive-pool", "[[1]]", "--output-size", "100000,100000"), 1, "would hold"),
    Bad("limit-unpool", "max-elements", ("unpool", "[[1, 2], [3, 4]]", "-k", "1", "-s", "100000", "--indices", "idx.json"), 1,
        "MaxUnpool2d(1, stride=100000) would hold"),
    Bad("limit-linear", "max-elements", ("linear", "[1]", "--out-features", "99999999999"), 1, "would hold 99,999,999,999"),
    Bad("limit-conv", "max-elements", ("run", "[[1]]", "Conv2d(1, 300000000, 1)"), 1, "would hold 300,000,000"),
    Bad("limit-lowered", "max-elements", ("run", "[[1, 2], [3, 4]]", "Linear(2, 100)", "--max-elements", "50"), 1, "200 elements"),
    # stage text that would need evaluation
    Bad("stage-attribute", "stage text", ("shape", "1x1x4x4", "MaxPool2d(2).__class__"), 1, "must be a single layer call"),
    Bad("stage-attribute-arg", "stage text", ("shape", "1x1x4x4", "MaxPool2d(os.sep)"), 1, "attribute access is not allowed"),
    Bad("stage-subscript", "stage text", ("shape", "1x1x4x4", "MaxPool2d(x[0])"), 1, "a subscript is not allowed"),
    Bad("stage-lambda", "stage text", ("shape", "1x1x4x4", "MaxPool2d(lambda: 2)"), 1, "a lambda is not allowed"),
    Bad("stage-call-arg", "stage text", ("shape", "1x1x4x4", "MaxPool2d(len('ab'))"), 1, "a function call is not allowed"),
    Bad("stage-dunder", "stage text", ("shape", "1x1x4x4", "MaxPool2d(__import__)"), 1, "the name '__import__' is not allowed"),
    Bad("stage-dunder-head", "stage text", ("shape", "1x1x4x4", "__import__('os').system('true')"), 1, "is not allowed"),
    Bad("stage-huge-literal", "stage text", ("shape", "1x1x4x4", "MaxPool2d(123456789012345678901234567890)"), 1, "is too large"),
    Bad("stage-power", "stage text", ("shape", "1x1x4x4", "MaxPool2d(10**100)"), 1, "is out of range"),
    Bad("stage-long-string", "stage text", ("shape", "1x1x4x4", f"Conv2d(1, 1, 3, padding='{'s' * 5000}')"), 1, "too long"),
    Bad("stage-double-star", "stage text", ("shape", "1x1x4x4", "MaxPool2d(**{'kernel_size': 2})"), 1, "* and ** arguments"),
    Bad("stage-star", "stage text", ("shape", "1x1x4x4", "MaxPool2d(*[2])"), 1, "* and ** arguments"),
    Bad("stage-syntax", "stage text", ("run", "[[1]]", "Conv2d(1, 1, 3"), 1, "not valid layer syntax"),
    Bad("stage-unknown", "stage text", ("shape", "1x1x4x4", "MaxPol2d(2)"), 1, "did you mean MaxPool2d"),
    Bad("stage-keyword", "stage text", ("shape", "1x1x4x4", "MaxPool2d(2, strid=1)"), 1, "has no argument 'strid'"),
    Bad("stage-file-line", "stage text", ("shape", "1x1x4x4", "-f", "stages_bad_line.txt"), 1, "stages_bad_line.txt line 2"),
    # tensor text that would need evaluation: inputs, --weight, --bias, --indices and weight= share one reader
    Bad("tensor-dunder", "tensor text", ("relu", "[__import__('os').system('true')]"), 1, "the name '__import__' is not allowed"),
    Bad("tensor-dunder-attr", "tensor text", ("relu", "torch.tensor([1.]).__class__"), 1, "the name '__class__' is not allowed"),
    Bad("tensor-subclasses", "tensor text", ("relu", "().__class__.__bases__[0].__subclasses__()"), 1, "is not allowed"),
    Bad("tensor-call", "tensor text", ("relu", "torch.tensor(open('x'))"), 1, "calling 'open' is not allowed"),
    Bad("tensor-torch-call", "tensor text", ("relu", "torch.load('model.pt')"), 1, "calling 'torch.load' is not allowed"),
    Bad("tensor-attribute", "tensor text", ("relu", "np.array([os.sep])"), 1, "'os.sep' is not allowed"),
    Bad("tensor-name", "tensor text", ("relu", "[x, 1.]"), 1, "the name 'x' is not allowed"),
    Bad("tensor-arithmetic", "tensor text", ("relu", "[1. / 3]"), 1, "arithmetic is not allowed"),
    Bad("tensor-power", "tensor text", ("relu", "[10 ** 100000]"), 1, "arithmetic is not allowed"),
    Bad("tensor-comprehension", "tensor text", ("relu", "[i for i in range(9)]"), 1, "a comprehension is not allowed"),
    Bad("tensor-import", "tensor text", ("relu", "import os; [1.]"), 1, "importing 'os' is not allowed"),
    Bad("tensor-ellipsis", "tensor text", ("relu", "tensor([1., ..., 9.])"), 1, "left numbers out"),
    Bad("tensor-dtype", "tensor text", ("relu", "torch.tensor([1.], dtype=torch.float64)"), 1, "is not float32"),
    Bad("tensor-unclosed", "tensor text", ("relu", "[[1., 2.], [3., 4.]"), 1, "nor a Python literal: '[' was never closed"),
    Bad("tensor-weight", "tensor text", ("conv", "[[1.]]", "--weight", "[[eval('1')]]"), 1, "calling 'eval' is not allowed"),
    Bad("tensor-bias", "tensor text", ("linear", "[1.]", "--out-features", "1", "--bias", "[os.sep]"), 1, "'os.sep' is not allowed"),
    Bad("tensor-indices", "tensor text", ("unpool", "[[1.]]", "-k", "1", "--indices", "[[getattr(os, 'x')]]"), 1,
        "calling 'getattr' is not allowed"),
    Bad("tensor-stage-weight", "tensor text", ("run", "[[1.]]", "Conv2d(1, 1, 1, weight='[[__import__(0)]]')"), 1,
        "the name '__import__' is not allowed"),
    Bad("tensor-random-weight", "tensor text", ("conv", "[[1.]]", "--weight", "torch.randn(1, 1, 1, 1)"), 1,
        "draws random numbers, which only an input can"),
    # generators
    Bad("generator-form", "generator", ("relu", "randint:5"), 1, "has 1 part after 'randint:' — write randint:LOW:HIGH:SHAPE"),
    Bad("generator-bounds", "generator", ("relu", "randint:3:3:2x2"), 1, "needs low < high"),
    Bad("generator-empty", "generator", ("relu", "zeros:0x4"), 1, "is empty"),
    Bad("generator-numpy-random", "generator", ("relu", "np.random.rand(3)"), 1, "not torch's"),
    Bad("generator-empty-memory", "generator", ("relu", "torch.empty(2, 2)"), 1, "holds whatever memory held"),
    Bad("limit-generator", "max-elements", ("relu", "randn:100000x100000"), 1, "would hold 10,000,000,000 numbers"),
    # shapes for `cnnops shape`
    Bad("shape-zero", "shape", ("shape", "0x3x4x4"), 1, "has a zero dimension"),
    Bad("shape-letters", "shape", ("shape", "1xax4"), 1, "cannot read the shape '1xax4'"),
    Bad("shape-negative", "shape", ("shape", "1x-3x4"), 1, "cannot read the shape"),
    Bad("shape-empty", "shape", ("shape", ""), 1, "cannot read the shape"),
    Bad("shape-too-many", "shape", ("shape", "1x1x1x1x1x1x1x1x1"), 1, "has 9 dimensions; cnnops handles at most 8"),
    Bad("shape-too-big", "shape", ("shape", "1x3x99999999999x3"), 1, "has a dimension over 2147483647"),
    # bad option values and usage: exit 2
    Bad("opt-choice", "option", ("pool", "[[1]]", "-k", "2", "--mode", "median"), 2, "Invalid value for '--mode'", click_usage=True),
    Bad("opt-limit-zero", "option", ("relu", "[[1]]", "--max-elements", "0"), 2, "Invalid value for '--max-elements'", click_usage=True),
    Bad("opt-limit-word", "option", ("relu", "[[1]]", "--max-elements", "lots"), 2, "'lots' is not a valid", click_usage=True),
    Bad("opt-int", "option", ("conv", "[[1]]", "--groups", "two"), 2, "Invalid value for '--groups'", click_usage=True),
    Bad("opt-unknown", "option", ("relu", "[[1]]", "--bogus"), 2, "No such option: --bogus", click_usage=True),
    Bad("opt-command", "option", ("relux", "[[1]]"), 2, "No such command 'relux'", click_usage=True),
    Bad("opt-missing", "option", ("pool", "[[1]]"), 2, "Missing option '--kernel'", click_usage=True),
    Bad("opt-kernel-word", "option", ("pool", "[[1]]", "-k", "a"), 2, "--kernel takes an integer or two"),
    Bad("opt-kernel-three", "option", ("pool", "[[1]]", "-k", "2,3,4"), 2, "got '2,3,4'"),
    Bad("opt-avg-dilation", "option", ("pool", "[[1]]", "-k", "1", "--mode", "avg", "--dilation", "2"), 2, "no dilation"),
    Bad("opt-divisor-max", "option", ("pool", "[[1]]", "-k", "1", "--divisor-override", "2"), 2, "--divisor-override is for --mode avg"),
    Bad("opt-json-batch", "option", ("relu", "[1]", "[2]", "--json"), 2, "with several inputs use --jsonl"),
    Bad("opt-output-batch", "option", ("relu", "[1]", "[2]", "-o", "x.json"), 2, "--output names one file"),
    Bad("opt-output-both", "option", ("relu", "[1]", "-o", "x.json", "--output-dir", "out"), 2, "choose one of --output and --output-dir"),
    Bad("opt-format-output", "option", ("relu", "[1]", "-o", "x.json", "--format", "npy"), 2, "--output takes it from the file name"),
    Bad("opt-int-huge", "option", ("relu", "[1]", "--max-elements", "99999999999999"), 2, "out of range — at most 1,099,511,627,776"),
    Bad("opt-size-negative", "option", ("conv", "[[1]]", "-k", "1", "--padding", "-99999999999999"), 2,
        "out of range — at least -1,099,511,627,776"),
    Bad("opt-format-alone", "option", ("relu", "[1]", "--format", "npy"), 2, "--format chooses the format of --output-dir's files"),
    Bad("opt-formats", "option", ("shape", "1x1x4x4", "--json", "--csv"), 2, "choose one of --json, --csv and --jsonl"),
    Bad("opt-no-input", "option", ("run", "relu"), 2, "give an input first"),
    Bad("opt-act", "option", ("act", "[1]", "--fn", "Conv2d(1, 1, 1)"), 2, "--fn takes an activation"),
    Bad("stdin-twice", "stdin twice", ("relu", "-", "-"), 2, "stdin ('-') can be read only once", stdin="[1]"),
    # output paths: refused before any work (the input does not even exist, and is never looked at)
    Bad("out-directory", "output path", ("relu", "missing.json", "-o", "dir.json"), 1, "output file 'dir.json' is a directory"),
    Bad("out-missing-dir", "output path", ("relu", "missing.json", "-o", "nodir/x.json"), 1, "does not exist — create it first"),
    Bad("out-under-file", "output path", ("relu", "missing.json", "-o", "afile/x.json"), 1, "is not a directory"),
    Bad("out-suffix", "output path", ("relu", "missing.json", "-o", "x.txt"), 1, "must end in .json or .npy"),
    Bad("out-dir-is-file", "output path", ("relu", "missing.json", "--output-dir", "afile"), 1, "output directory 'afile' is a file"),
    Bad("out-fifo", "output path", ("relu", "missing.json", "-o", "fifo.json"), 1, "exists and is not a regular file"),
    # layer errors found by the shape model or at run time
    Bad("layer-channels", "layer", ("run", "[[1, 2], [3, 4]]", "Conv2d(3, 8, 1)"), 1, "expects 3 input channels, got 1"),
    Bad("layer-unpool-index", "layer", ("unpool", "[[6, 8], [3, 4]]", "-k", "2", "--indices", "idx_out_of_range.json"), 1,
        "index 99 is outside the 4×4 output plane"),
    Bad("layer-weight", "layer", ("run", "[[1, 2], [3, 4]]", "relu", "Conv2d(1, 1, 1, weight=[[1, 2]])"), 1, "weight has shape"),
]
# fmt: on
BY_ID = {case.id: case for case in CORPUS}


def test_the_corpus_has_at_least_forty_bad_inputs_across_the_kinds_of_the_issue():
    kinds = {case.kind for case in CORPUS}
    assert len(BY_ID) == len(CORPUS) >= 40
    assert {"invalid JSON", "ragged", "non-number", "empty", "bool/None", "nesting", ".npy dtype", "image", "file",
            "max-elements", "stage text", "shape", "option", "output path", "stdin twice", "tensor text",
            "generator"} <= kinds  # fmt: skip


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_bad_input_gives_one_clear_error_line_and_its_exit_code(case, bad_dir, monkeypatch):
    monkeypatch.chdir(bad_dir)
    result = invoke(*case.args, input=case.stdin)
    assert_result_error(result, case.code, case.fragment, click_usage=case.click_usage)


@pytest.mark.parametrize("name", ["gray64.png", "grid100.npy", "ragged.json"])
def test_unreadable_file_is_refused_with_permission_denied(name, bad_dir, monkeypatch):
    # faked, so that it holds for root too: os.access is what cnnops asks before opening
    monkeypatch.chdir(bad_dir)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path).endswith(name) else real_access(path, mode, **kw))
    assert_result_error(invoke("relu", name), 1, "cannot be read: permission denied")


@pytest.mark.parametrize(
    "case_id", ["limit-convtranspose", "limit-adaptive", "limit-unpool", "limit-linear", "limit-conv", "limit-npy-header",
                "png-bomb", "limit-generator"],  # fmt: skip
)
def test_oversized_tensors_are_refused_before_anything_is_allocated(case_id, bad_dir, monkeypatch):
    monkeypatch.chdir(bad_dir)
    case = BY_ID[case_id]
    invoke(*case.args)  # warm up: imports and caches are not what is measured
    tracemalloc.start()
    try:
        result = invoke(*case.args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_result_error(result, 1, case.fragment)
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_nan_and_infinities_are_accepted_like_torch():
    for text in ('[NaN, Infinity, -Infinity, 1e999, -2]', '["NaN", "Infinity", "-Infinity", 1e999, -2]'):
        result = invoke("relu", text, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        assert json.loads(result.stdout)["output"]["data"] == ["NaN", "Infinity", 0.0, "Infinity", 0.0]


def test_a_nan_flows_through_a_conv_and_a_max_pool_without_complaint():
    result = invoke("run", '[[1, "NaN"], [3, 4]]', "Conv2d(1, 1, 1, weight=[[[[2]]]], bias=0)", "MaxPool2d(2)", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"]["data"] == [[["NaN"]]]  # torch's max pool propagates NaN


# ---------------------------------------------------------------------------------------------- real bugs, not fixed here


@pytest.mark.parametrize(("args", "fragment"), [(("relu", "a\nb"), "is neither a file nor inline JSON"),
                                                (("shape", "0\n"), "has a zero dimension"),
                                                (("run", "[[1]]", "-f", "no\nfile.txt"), "does not exist")])  # fmt: skip
def test_an_argument_with_a_line_break_still_gives_one_error_line(args, fragment):
    assert_result_error(invoke(*args), 1, fragment)


def test_a_dimension_of_thousands_of_digits_is_a_clear_shape_error():
    assert_result_error(invoke("shape", "1x" + LONG_INT), 1, "has a dimension over")


def test_a_seed_beyond_64_bits_is_a_clear_error():
    result = invoke("conv", "[[1]]", "--kernel", "1", "--seed", "99999999999999999999", "--json")
    assert_result_error(result, 2, "Invalid value for '--seed'", click_usage=True)


def test_stdin_as_both_the_stage_file_and_the_input_is_a_usage_error():
    result = invoke("run", "-", "-f", "-", input="ReLU\n")
    assert_result_error(result, 2, "stdin ('-') can be read only once")


def test_weights_over_max_elements_are_refused_before_they_are_drawn():
    result = invoke("run", json.dumps([0.0] * 100), "Linear(100, 100)", "--max-elements", "1000")
    assert_result_error(result, 1, "more than the limit")


def test_running_out_of_memory_is_a_clear_error_not_an_internal_one(monkeypatch):
    import cnnops.run.pipeline

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cnnops.run.pipeline, "run_pipeline", no_memory)
    monkeypatch.setattr("cnnops.run.runner.run_pipeline", no_memory, raising=False)
    result = invoke("relu", "[[1, 2]]", "--max-elements", "1000000000000")
    assert_result_error(result, 1, "memory")


@pytest.mark.parametrize("args", [("flatten", "[1, 2]", "--start-dim", "100"),
                                  ("shape", "1x3", "Flatten(1099511627776)", "--json")])  # fmt: skip
def test_flatten_of_a_dimension_far_beyond_the_input_is_a_clear_error(args):
    assert_result_error(invoke(*args), 1, "dimension")


def limited_memory(megabytes: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (megabytes * 2**20, megabytes * 2**20))

    return limit


def test_a_huge_adaptive_output_size_is_sized_in_constant_memory():
    # under a 1 GiB address-space limit the list of 10^11 bins fails with MemoryError within a second
    shaped = cnnops_process("shape", "1x1x4x4", "AdaptiveAvgPool2d(100000000000)", "--json",
                            preexec_fn=limited_memory(1024), text=True, timeout=60)  # fmt: skip
    assert shaped.returncode == 0, shaped.stderr
    assert json.loads(shaped.stdout)["output_shape"] == [1, 1, 10**11, 10**11]
    ran = cnnops_process("run", "[[1]]", "AdaptiveAvgPool2d(100000000000)", preexec_fn=limited_memory(1024),
                         text=True, timeout=60)  # fmt: skip
    assert_one_error(ran.returncode, ran.stdout, ran.stderr, 1, "more than the limit")


def test_an_endless_stage_file_is_refused_without_filling_memory():
    result = cnnops_process("shape", "1x1x4x4", "-f", "/dev/zero", preexec_fn=limited_memory(1024), text=True)
    assert_one_error(result.returncode, result.stdout, result.stderr, 1, "/dev/zero")


# ---------------------------------------------------------------------------------------------- the real program

SUBPROCESS_CASES = ["json-stdin", "npy-object", "png-text", "png-bomb", "limit-adaptive", "stage-attribute",
                    "shape-letters", "opt-choice", "out-missing-dir", "stdin-twice", "tensor-dunder"]  # fmt: skip


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_real_program_gives_one_clear_error_line(case_id, bad_dir):
    case = BY_ID[case_id]
    proc = cnnops_process(*case.args, input=case.stdin or "", cwd=bad_dir, text=True)
    assert_one_error(proc.returncode, proc.stdout, proc.stderr, case.code, case.fragment, click_usage=case.click_usage)


@pytest.mark.parametrize("source", ["/dev/zero", "yes"])
def test_endless_garbage_on_stdin_is_refused_at_its_first_bytes(source):
    # without the check, reading all of stdin before parsing it would fill the memory
    if source == "/dev/zero":
        with open("/dev/zero", "rb") as zero:
            proc = cnnops_process("relu", "-", stdin=zero, text=True, preexec_fn=limited_memory(1024))
    else:
        yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
        try:
            proc = cnnops_process("relu", "-", stdin=yes.stdout, text=True, preexec_fn=limited_memory(1024))
        finally:
            yes.kill()
            yes.wait()
            yes.stdout.close()
    assert_one_error(proc.returncode, proc.stdout, proc.stderr, 1, "stdin holds neither JSON nor .npy data")


def test_blank_stdin_without_end_is_refused_after_a_bounded_read():
    data = b" \n" * (read.MAX_LEADING_WHITESPACE // 2 + 1)
    with pytest.raises(CnnopsError, match="bytes of blank space and no data"):
        read.read_input("-", stdin=stdio.BytesIO(data))


@pytest.mark.parametrize("args", [("relu", "big.npy", "--json"), ("relu", "big.npy"), ("kernels",),
                                  ("shape", "1x3x224x224", "Conv2d(3, 8, 3)", "--json")])  # fmt: skip
def test_closed_stdout_pipe_exits_quietly(args, tmp_path):
    np.save(tmp_path / "big.npy", np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32))
    command = " ".join(f"'{a}'" for a in (sys.executable, "-m", "cnnops", *args))
    proc = subprocess.run(f"set -o pipefail; {command} | head -c 1 > /dev/null", shell=True, executable="/bin/bash",
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def resident_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="watches the run's memory in /proc")
def test_ctrl_c_during_a_long_run_exits_130_quietly(tmp_path):
    np.save(tmp_path / "large.npy", np.random.default_rng(0).random((3000, 3000), dtype=np.float32))
    env = dict(os.environ)
    env.pop("CNNOPS_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnops", "run", "large.npy", "Conv2d(1, 8, 9)", "Conv2d(8, 8, 9)",
         "Conv2d(8, 8, 9)", "Conv2d(8, 8, 9)", "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    # Interrupt once it is computing: its memory then holds torch (about 220 MiB), the 36 MB input and the
    # first 288 MB output. An interrupt during Python's start-up or an import is CPython's business (it
    # may print a traceback, or be swallowed by an import-lock callback); four 8-channel 9×9
    # convolutions over nine million pixels take seconds more.
    deadline = time.monotonic() + 60
    while proc.poll() is None and resident_mib(proc.pid) < 450 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("cnnops kept running for 15 s after Ctrl-C") from None
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stdout == ""


# ---------------------------------------------------------------------------------------------- nothing lost


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def old_output(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')
    return target


def test_a_failed_rename_leaves_the_old_file_and_no_temp_file(old_output, monkeypatch):
    seen: list[str] = []

    def failing_replace(src, dst):
        seen.append(os.path.basename(src))
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", failing_replace)
    result = invoke("relu", "[[1, -2]]", "-o", "out.json", "-q")
    assert_result_error(result, 1, "output file 'out.json' cannot be written: Permission denied")
    assert old_output.read_text() == '{"old": true}\n'
    assert temp_files(old_output.parent) == []
    assert len(seen) == 1 and TEMP_NAME.match(seen[0]), seen  # the documented temp name


def test_a_full_disk_leaves_the_old_file_and_no_temp_file(old_output, monkeypatch):
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    result = invoke("relu", "[[1, -2]]", "-o", "out.json", "-q")
    assert_result_error(result, 1, "No space left on device")
    assert old_output.read_text() == '{"old": true}\n'
    assert temp_files(old_output.parent) == []


def test_ctrl_c_while_writing_leaves_the_old_file_and_no_temp_file(old_output, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    result = invoke("relu", "[[1, -2]]", "-o", "out.json", "-q")
    assert result.exit_code == 130
    assert old_output.read_text() == '{"old": true}\n'
    assert temp_files(old_output.parent) == []


def test_a_failing_serializer_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out.npy"
    np.save(target, np.zeros(3, dtype=np.float32))
    old = target.read_bytes()

    def failing_save(file, *args, **kwargs):
        file.write(b"\x93NUMPY half")
        raise OSError(5, "Input/output error")

    from cnnops.io import write

    monkeypatch.setattr(write, "write_npy", failing_save)  # what writes a .npy file's bytes
    result = invoke("relu", "[[1, -2]]", "-o", "out.npy", "-q")
    # the array is written to the file in pieces: a failing write is a write error, in one line
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.splitlines() == ["Error: output file 'out.npy' cannot be written: Input/output error"]
    assert target.read_bytes() == old
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(("run", "[[1, 2], [3, 4]]", "relu", "Conv2d(1, 1, 1, weight=[[1, 2]])"), "weight has shape (1, 2)"),  # stage 2
     (("unpool", "[[6, 8], [3, 4]]", "-k", "2", "--indices", "idx_out_of_range.json"), "index 99 is outside"),
     (("run", "[[1, 2], [3, 4]]", "relu", "Linear(5, 2)"), "Linear(5, 2)")],
)  # fmt: skip
def test_a_run_that_fails_never_creates_its_output_file(args, fragment, bad_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(bad_dir)
    target = tmp_path / "out.json"
    result = invoke(*args, "-o", target)
    assert_result_error(result, 1, fragment)
    assert not target.exists()
    assert temp_files(tmp_path) == []


def test_a_batch_writes_the_inputs_that_work_and_nothing_for_the_one_that_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("good.json").write_text("[[1, -2]]")
    Path("bad.json").write_text("[[1, -2], [3]]")
    result = invoke("relu", "good.json", "bad.json", "--output-dir", "out", "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: input file 'bad.json': data[1] has 1 items where data[0] has 2 — make every row the same length",
        "Error: 1 of 2 inputs failed: bad.json",
    ]
    assert sorted(os.listdir("out")) == ["good.json"]
    assert json.loads(Path("out/good.json").read_text())["output"]["data"] == [[1.0, 0.0]]


def test_sigkill_while_writing_leaves_the_old_file_or_the_whole_new_one(tmp_path):
    np.save(tmp_path / "big.npy", np.random.default_rng(1).standard_normal((2500, 2500)).astype(np.float32))
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')
    env = dict(os.environ)
    env.pop("CNNOPS_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "relu", "big.npy", "-o", "out.json", "-q"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if temp_files(tmp_path):  # the temp file is being written: kill now
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait(timeout=60)
    text = target.read_text()
    if text != '{"old": true}\n':  # the rename happened: then the new file is whole
        assert json.loads(text)["output"]["shape"] == [2500, 2500]
    assert all(TEMP_NAME.match(name) for name in temp_files(tmp_path)), temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")) == ["big.npy", "out.json"]


# ---------------------------------------------------------------------------------------------- rendering


def test_a_huge_tensor_is_rendered_summarised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("huge.npy", np.random.default_rng(2).standard_normal((2000, 2000)).astype(np.float32))
    result = invoke("relu", "huge.npy")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 5 < len(lines) < 200
    assert max(map(len, lines)) <= 200


# ---------------------------------------------------------------------------------------------- fuzzing the core


def result_or_error(error_class, func, *args, **kwargs):
    """``func``'s result, or None when it raised exactly ``error_class`` (not a subclass, not another
    CnnopsError) with a one-line message; any other exception escapes and fails the test."""
    try:
        return func(*args, **kwargs)
    except CnnopsError as error:
        assert type(error) is error_class, f"{type(error).__name__} instead of {error_class.__name__}: {error}"
        message = str(error)
        assert message.strip() and "Traceback" not in message, message
        # one line, unless it quotes user text that has a line break (see test_*_with_a_line_break_*)
        assert "\n" not in message or any("\n" in str(arg) for arg in args), message
        return None


# The reference for what an accepted input holds, written from the SPEC's three JSON forms (a nested
# list; {"data", "shape"?, "indices"?}; a cnnops result whose "output" is taken) and numpy's .npy reader.
# It does not validate: it is consulted only for inputs cnnops accepted.
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "nan": math.nan, "inf": math.inf,
             "-inf": -math.inf}  # fmt: skip


def leaves(node):
    if isinstance(node, list):
        for child in node:
            yield from leaves(child)
    else:
        yield node


def nested_shape(node) -> tuple[int, ...]:
    shape = []
    while isinstance(node, list):
        shape.append(len(node))
        node = node[0] if node else None
    return tuple(shape)


def as_float(value) -> float:
    if isinstance(value, str):
        return NONFINITE[value]
    try:
        return float(value)
    except OverflowError:  # an integer beyond float64: torch.tensor gives ±inf for it in float32
        return math.inf if value > 0 else -math.inf


def expected_tensor(doc) -> tuple[np.ndarray, np.ndarray | None]:
    part = (doc["output"] if "output" in doc else doc) if isinstance(doc, dict) else {"data": doc}
    data, shape = part["data"], part.get("shape")
    with np.errstate(over="ignore"):
        values = np.array([as_float(v) for v in leaves(data)], dtype=np.float64).astype(np.float32)
    values = values.reshape(nested_shape(data) if shape is None else shape)
    indices = part.get("indices")
    if indices is not None:
        indices = np.array(list(leaves(indices)), dtype=np.int64).reshape(values.shape)
    return values, indices


def expected_from_stdin(payload: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    if payload.startswith(b"\x93NUMPY"):
        with np.errstate(over="ignore"):
            return np.load(stdio.BytesIO(payload), allow_pickle=False).astype(np.float32), None
    return expected_tensor(json.loads(payload.decode("utf-8").removeprefix("\ufeff")))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values, NaN equal to NaN, and equal signs of zero."""
    return (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a) | np.isnan(a), np.signbit(b) | np.isnan(b)))  # fmt: skip


def assert_tensor_is(tensor, expected: tuple[np.ndarray, np.ndarray | None]) -> None:
    data, indices = expected
    assert tensor.data.dtype == np.float32 and 1 <= tensor.data.size <= 10_000
    assert same_bits(tensor.data, data), (tensor.data, data)
    if indices is None:
        assert tensor.indices is None
    else:
        assert tensor.indices.dtype == np.int64 and np.array_equal(tensor.indices, indices), (tensor.indices, indices)


def assert_round_trips(stage) -> None:
    """A parsed stage's normalised call reads back as a stage of the same kind with the same call.
    (Not always an equal stage: ``ReLU(inplace=True)`` keeps ``inplace`` in its options but not in its call.)"""
    again = parse_stage(stage.call)
    assert type(again) is type(stage) and again.call == stage.call, (stage, again)


@pytest.fixture(scope="module")
def empty_cwd(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-cwd")


@FUZZ
@given(text=hs.text(max_size=80))
def test_fuzz_read_input_on_any_text(text, empty_cwd):
    cwd = os.getcwd()
    os.chdir(empty_cwd)  # text that names no file there is inline JSON or an error
    try:
        tensor = result_or_error(InputError, read.read_input, text, stdin=stdio.BytesIO(b""), max_elements=10_000)
    finally:
        os.chdir(cwd)
    if tensor is not None:  # only inline JSON can be read there
        assert text.lstrip()[:1] in ("[", "{") and tensor.source == "inline JSON"
        assert_tensor_is(tensor, expected_tensor(json.loads(text)))


json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats()
    | hs.sampled_from(["NaN", "Infinity", "-inf", "1", "", 10**30, -(2**63), 2**64, 10**400])
    | hs.text(max_size=4),
    lambda inner: hs.lists(inner, max_size=4)
    | hs.dictionaries(hs.sampled_from(["data", "shape", "indices", "output", "input", "x"]), inner, max_size=3),
    max_leaves=25,
)  # fmt: skip


@FUZZ
@given(value=json_values, compact=hs.booleans())
def test_fuzz_read_input_on_any_json_value(value, compact):
    text = json.dumps(value, separators=(",", ":") if compact else None, indent=None if compact else 2)
    tensor = result_or_error(InputError, read.read_input, "-", stdin=stdio.BytesIO(text.encode()), max_elements=10_000)
    if tensor is not None:
        assert_tensor_is(tensor, expected_tensor(value))


@FUZZ
@given(payload=hs.binary(max_size=200), prefix=hs.sampled_from([b"", read.NPY_MAGIC, b"\xef\xbb\xbf", b"[", b" \n"]))
def test_fuzz_read_input_on_any_bytes_from_stdin(payload, prefix):
    tensor = result_or_error(InputError, read.read_input, "-", stdin=stdio.BytesIO(prefix + payload), max_elements=10_000)
    if tensor is not None:
        assert_tensor_is(tensor, expected_from_stdin(prefix + payload))


@FUZZ
@given(text=hs.text(max_size=40) | hs.from_regex(r"\(?\s*[0-9x×,* ]{0,30}\s*\)?", fullmatch=True))
def test_fuzz_parse_shape_on_any_text(text):
    shape = result_or_error(InputError, parse_shape, text)
    if shape is not None:  # the numbers written, in order
        assert shape == tuple(int(n) for n in re.findall(r"\d+", text))
        assert 1 <= len(shape) <= 8 and all(1 <= n < 2**31 for n in shape)


@FUZZ
@given(text=hs.text(max_size=80))
def test_fuzz_parse_stage_on_any_text(text):
    stage = result_or_error(SpecError, parse_stage, text)
    if stage is not None:
        assert_round_trips(stage)


@FUZZ
@given(lines=hs.lists(hs.text(max_size=40) | hs.sampled_from(
    ["Conv2d(3, 8, 3)", "(0): ReLU(inplace=True)", "(features): Sequential(", ")", "(1-3): 3 x MaxPool2d(2)",
     "# comment", "(9): 1001 x ReLU()", "  Linear(4, 2)  # fc", ""]), max_size=8))  # fmt: skip
def test_fuzz_parse_stage_file_on_any_text(lines):
    stages = result_or_error(SpecError, parse_stage_file, "\n".join(lines), origin="fuzz.txt")
    if stages is None:
        return
    for stage in stages:
        assert_round_trips(stage)
    # a file of plain stage lines (no nesting, no repeats) is exactly those stages, comments and blanks skipped
    meaningful = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    if all(len(line.splitlines()) == 1 for line in lines):
        alone = [result_or_error(SpecError, parse_stage, line) for line in meaningful]
        if None not in alone:
            assert stages == alone, (lines, stages)


# A grammar of stage texts: every layer, with small, zero, negative and very large argument values.
# (Adaptive pools and Flatten get no very large values: see test_a_huge_adaptive_output_size_is_sized_in_constant_memory
# and test_flatten_of_a_dimension_far_beyond_the_input_is_a_clear_error, which cover them.)
LAYER_NAMES = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
               "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
               "MaxUnpool1d", "MaxUnpool2d", "Linear", "Flatten", "ReLU", "Softmax", "Dropout", "Dropout2d",
               "BatchNorm1d", "BatchNorm2d", "Identity"]  # fmt: skip
KEYWORDS = ["stride", "padding", "dilation", "groups", "output_padding", "ceil_mode", "count_include_pad",
            "divisor_override", "output_size", "bias", "start_dim", "end_dim", "dim", "padding_mode", "p",
            "affine", "track_running_stats"]  # fmt: skip
small = hs.integers(-2, 9)
big = hs.sampled_from([2**31 - 1, 2**40])


def literal(name: str):
    ints = small if name.startswith(("Adaptive", "Flatten")) else small | big
    scalar = ints | hs.sampled_from(["None", "True", "False", "'same'", "'valid'", "'reflect'", "'circular'", "0.5"])
    sizes = hs.lists(ints | hs.just("None"), min_size=0, max_size=3).map(
        lambda xs: "(" + ", ".join(map(str, xs)) + ("," if len(xs) == 1 else "") + ")"
    )
    return (scalar | sizes).map(str)


@hs.composite
def stage_texts(draw):
    name = draw(hs.sampled_from(LAYER_NAMES))
    positional = draw(hs.lists(literal(name), max_size=4))
    keywords = draw(hs.dictionaries(hs.sampled_from(KEYWORDS), literal(name), max_size=3))
    return f"{name}({', '.join(positional + [f'{k}={v}' for k, v in keywords.items()])})"


shapes = hs.lists(hs.integers(0, 12) | hs.sampled_from([1, 2**31 - 1]), max_size=6).map(tuple)


@FUZZ
@given(shape=shapes, texts=hs.lists(stage_texts(), min_size=1, max_size=5))
def test_fuzz_trace_shapes_on_random_stage_lists(shape, texts):
    stages = [stage for stage in (result_or_error(SpecError, parse_stage, text) for text in texts) if stage is not None]
    trace = trace_shapes(shape, stages)  # never raises: a layer error is kept in trace.error
    json.dumps(trace.as_dict())
    # every row takes the shape the previous one gave
    assert [row.input_shape for row in trace.rows] == [shape, *(row.output_shape for row in trace.rows)][: len(trace.rows)]
    assert trace.output_shape == (trace.rows[-1].output_shape if trace.rows else shape)
    if trace.error is None:
        assert [row.stage for row in trace.rows] == stages
    else:  # the rows before the stage torch would reject, and the error names that stage
        assert type(trace.error) is LayerError, repr(trace.error)
        assert trace.error.index == len(trace.rows) + 1 and trace.error.stage == stages[len(trace.rows)].call
        assert [row.stage for row in trace.rows] == stages[: len(trace.rows)]
        assert str(trace.error).strip() and "\n" not in str(trace.error)


# ---------------------------------------------------------------------------------------------- fuzzing the CLI

COMMANDS = ["run", "relu", "conv", "pool", "adaptive-pool", "unpool", "linear", "flatten", "act", "shape", "kernels",
            "solve"]  # fmt: skip
WORDS = [
    "[[1, 2], [3, 4]]", "[1, -2, 3]", "[[[1, 0], [0, 1]]]", "[[1, 2], [3]]", "[]", "{}", "[", "-", "grid.json",
    "missing.json", "adir", "bad.npy", "1x1x4x4", "1x3x8x8", "axb", "relu", "maxpool:2", "Conv2d(1, 2, 1)",
    "AdaptiveAvgPool2d(3)", "AdaptiveAvgPool2d(100000)", "Linear(4, 2)", "MaxUnpool2d(2)", "flatten",
    "ConvTranspose2d(1, 1, 2, stride=50000)", "MaxPool2d(2).__class__",
    "--json", "--jsonl", "-q", "--full", "--rgb", "--intermediates", "--ceil-mode", "--help",
    "-k", "--kernel", "-s", "-p", "--mode", "--output-size", "--out-features", "--fn", "--weight", "--bias",
    "--max-elements", "--groups", "--dims", "--start-dim", "-o", "--output-dir", "--format", "-f", "--indices",
    "--input", "--output", "--csv", "--seed",
    "2", "1,2", "0", "-1", "x", "avg", "max", "none", "sigmoid", "edge", "[[1]]", "5", "100000", "out.json",
    "out.npy", "out.txt", "nodir/out.json", "outdir", "npy", "stages.txt", "2x2", "100000,100000", "1,None",
    "Flatten(5)", "Softmax(dim=9)", "LeakyReLU(0.2)", "MaxPool1d(2)", "BatchNorm2d(1)", "--padding-mode", "reflect",
    "same", "--count-include-pad", "--divisor-override", "--end-dim", "--out-channels", "--engine", "torch",
    "numpy", "auto", "--", "---", "", " ", "é",
]  # (no NUL: a real argv cannot hold one, and typer's Path type would then raise ValueError itself)  # fmt: skip


@pytest.fixture(scope="module")
def cli_cwd(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-fuzz")
    (d / "grid.json").write_text("[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]")
    (d / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    (d / "stages.txt").write_text("maxpool:2\nReLU\n")
    (d / "adir").mkdir()
    return d


# click's usage errors (typer >= 0.25 vendors its own copy of click, so take the class from typer)
CLICK_ERRORS = tuple(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


def handled_error(result):
    """What the CLI turned into its exit status: the CnnopsError or click usage error that the exit
    was raised while handling (Python keeps it as ``__context__`` even after ``raise … from None``)."""
    error = result.exception
    while error is not None and not isinstance(error, (CnnopsError, *CLICK_ERRORS)):
        error = error.__context__
    return error


BATCH_SUMMARY = re.compile(r"^(\d+) of (\d+) inputs failed: ")


def assert_the_promised_outcome(result):
    """Exit 0 with no error; or exit 2 for a usage error (click's or a SettingError) and 1 for any other
    CnnopsError, with exactly that error as the one ``Error:`` line, nothing on stdout (a batch also
    prints one line per failed input, after the results of those that worked), no traceback and no
    internal error."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    cause = handled_error(result)
    if result.exit_code == 0:
        assert cause is None and errors == [], result.stderr
        return
    assert cause is not None, f"exit {result.exit_code} without a user error: {result.exception!r}, {result.stderr}"
    if isinstance(cause, CLICK_ERRORS):
        assert result.exit_code == 2 and result.stdout == ""
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert errors == [lines[-1]] == [f"Error: {cause.format_message()}"], lines
        return
    assert result.exit_code == cause.exit_code == (2 if isinstance(cause, SettingError) else 1), (result.exit_code, cause)
    batch = BATCH_SUMMARY.match(str(cause))
    if batch:
        failed = int(batch.group(1))
        assert 1 <= failed <= int(batch.group(2)) and len(errors) == failed + 1, result.stderr
        assert result.stderr.splitlines() == errors and errors[-1] == f"Error: {cause}"
    else:
        assert result.stdout == "", result.stdout
        assert result.stderr.splitlines() == [f"Error: {cause}"], result.stderr


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(command=hs.sampled_from(COMMANDS), words=hs.lists(hs.sampled_from(WORDS), max_size=7),
       stdin=hs.sampled_from(["", "[[1, 2], [3, 4]]", "ReLU\n", "\x00"]))  # fmt: skip
def test_fuzz_the_cli_on_random_argument_lists(command, words, stdin, cli_cwd):
    cwd = os.getcwd()
    os.chdir(cli_cwd)
    try:
        result = invoke(command, *words, input=stdin)
    finally:
        os.chdir(cwd)
    assert_the_promised_outcome(result)
