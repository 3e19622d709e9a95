"""Golden files: what a user sees today, byte for byte, so a refactor can prove it changed nothing visible.

Every case runs the CLI the way a user does — ``python -m cnnops …`` in a subprocess from the repository
root — and never imports cnnops' internal modules, whose names are free to change. The environment is
pinned (width, terminal or not, colour, encoding) so the output depends on the code alone.

The snapshots live in ``tests/__snapshots__/test_goldens.ambr``. After an intended change of the output,
``python -m pytest tests/test_goldens.py --snapshot-update`` rewrites them; review that diff line by line.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Variables that change what rich, click/typer or cnnops print; the test sets the ones it needs.
UNSET = {
    "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM", "TERM", "COLUMNS", "LINES",
    "JUPYTER_COLUMNS", "JUPYTER_LINES", "CLICOLOR", "CLICOLOR_FORCE", "PYTHONPATH", "PYTHONSTARTUP",
    "PYTHONWARNINGS", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONHOME",
}  # fmt: skip
UNSET_PREFIXES = ("CNNOPS_", "_CNNOPS", "TYPER_", "_TYPER")

GX_CHAIN = ["run", "examples/line5x5.json", "Conv2d(1, 1, 3, weight='gx', bias=False)", "relu",
            "MaxPool2d(2, stride=1)"]  # fmt: skip
LENET_ISH = ["shape", "1x1x28x28", "Conv2d(1, 6, 5, padding=2)", "MaxPool2d(2)", "Conv2d(6, 16, 5)",
             "AvgPool2d(2, ceil_mode=True)"]  # fmt: skip
ALEXNET = ["shape", "1x3x224x224", "-f", "examples/alexnet.txt"]


def environment(columns: int = 80, terminal: bool = False, path_prefix: Path | None = None) -> dict[str, str]:
    """The caller's environment without anything that changes the output, plus a fixed width and
    terminal mode. ``terminal``: rich (15) is told through ``TTY_COMPATIBLE=1`` that stdout/stderr are a
    terminal (it then uses colour and box drawing exactly as on a pty — checked against ``script``),
    ``TERM=xterm-256color`` without ``COLORTERM`` fixes the colour system at 256 colours, and
    ``TTY_INTERACTIVE=0`` keeps out cursor movement. Off a terminal: a pipe, ``TERM=dumb``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith(UNSET_PREFIXES)}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's cnnops, not whatever copy is installed
        PYTHONUTF8="1",  # UTF-8 for stdio and files whatever the machine's locale
        PYTHONIOENCODING="utf-8",
        COLUMNS=str(columns),
        LINES="50",
    )
    if terminal:
        env.update(TTY_COMPATIBLE="1", TTY_INTERACTIVE="0", TERM="xterm-256color")
    else:
        env.update(TERM="dumb")
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    return env


def visible(text: str) -> str:
    """ESC as a visible ␛, so the terminal snapshots are readable and diffable (nothing else changes;
    cnnops never prints ␛ itself)."""
    return text.replace("\x1b", "␛")


def cnnops(*args: str, columns: int = 80, terminal: bool = False) -> dict:
    result = subprocess.run([sys.executable, "-m", "cnnops", *args], cwd=ROOT, env=environment(columns, terminal),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8",
                            timeout=120)  # fmt: skip
    return {
        "command": shlex.join(["cnnops", *args]),
        "exit_code": result.returncode,
        "stdout": visible(result.stdout),
        "stderr": visible(result.stderr),
    }


def test_the_cli_under_test_is_this_checkout():
    """The subprocesses import the cnnops package of this working tree (not an installed copy)."""
    out = subprocess.run([sys.executable, "-c", "import cnnops; print(cnnops.__file__)"], cwd=ROOT,
                         env=environment(), capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert Path(out.strip()).resolve().is_relative_to(ROOT)


TEXT_CASES = {
    "shape-alexnet-pipe-80": (ALEXNET, 80, False),
    "shape-alexnet-pipe-140": (ALEXNET, 140, False),
    "shape-alexnet-terminal-80": (ALEXNET, 80, True),
    "shape-alexnet-terminal-140": (ALEXNET, 140, True),
    "pool-highlights-pipe": (["pool", "--kernel", "2", "--stride", "1", "examples/grid4x4.json"], 80, False),
    "pool-highlights-terminal": (["pool", "--kernel", "2", "--stride", "1", "examples/grid4x4.json"], 80, True),
    "run-gx-relu-maxpool-pipe": (GX_CHAIN, 80, False),
    "shape-formulas-pipe": (LENET_ISH, 80, False),
    "shape-error-pipe": (["shape", "1x3x8x8", "Conv2d(3, 8, 3)", "ReLU", "MaxPool2d(3, padding=2)"], 80, False),
    "solve-28-to-14-pipe": (["solve", "--input", "28", "--output", "14"], 80, False),
    # readable at 80, 100 and 140 columns, on a terminal and off one
    "shape-alexnet-pipe-100": (ALEXNET, 100, False),
    "shape-alexnet-terminal-100": (ALEXNET, 100, True),
    "run-gx-relu-maxpool-terminal-80": (GX_CHAIN, 80, True),
    "run-gx-relu-maxpool-pipe-100": (GX_CHAIN, 100, False),
    "run-gx-relu-maxpool-terminal-100": (GX_CHAIN, 100, True),
    "run-gx-relu-maxpool-pipe-140": (GX_CHAIN, 140, False),
    "run-gx-relu-maxpool-terminal-140": (GX_CHAIN, 140, True),
    "run-street-pipe-80": (["run", "examples/street.png", "Conv2d(1, 2, 3, weight='sobel-x, sobel-y', bias=False)",
                            "AdaptiveAvgPool2d((6, 6))", "Flatten(0)", "Linear(72, 10)"], 80, False),  # fmt: skip
    "batch-notes-once-pipe": (["pool", "--kernel", "2", "examples/grid4x4.json", "examples/ones4x4.json"], 80, False),
    "no-notes-pipe": ([*GX_CHAIN, "--no-notes"], 80, False),
    # --explain on the tutorial cases
    "explain-gx-conv-pipe": (["conv", "examples/line5x5.json", "--weight", "gx", "--bias", "false",
                              "--explain", "0,0"], 80, False),  # fmt: skip
    "explain-gx-conv-terminal": (["conv", "examples/line5x5.json", "--weight", "gx", "--bias", "false",
                                  "--explain", "0,0"], 80, True),  # fmt: skip
    "explain-maxpool-ties-pipe": ([*GX_CHAIN, "--explain", "1,0"], 80, False),
    "explain-divisor-override-pipe": (["pool", "--mode", "avg", "--kernel", "2", "--stride", "2",
                                       "--divisor-override", "3", "examples/ones4x4.json", "--explain", "0,1"],
                                      80, False),  # fmt: skip
    "explain-adaptive-bins-pipe": (["adaptive-pool", "examples/seq3.json", "--output-size", "8", "--explain", "5"],
                                   80, False),  # fmt: skip
    "explain-linear-row-pipe": (["linear", "[1, 2, 3]", "--out-features", "4", "--weight",
                                 "[[1, 0, 0], [0, 1, 0], [0.5, 1.5, 3], [1, 1, 1]]", "--bias", "0", "--explain", "2"],
                                80, False),  # fmt: skip
    "explain-unpool-pipe": (["run", "examples/grid4x4.json", "MaxPool2d(2, return_indices=True)", "MaxUnpool2d(2)",
                             "--explain", "1,1"], 80, False),  # fmt: skip
}


@pytest.mark.parametrize("case", TEXT_CASES)
def test_text_output(case, snapshot):
    args, columns, terminal = TEXT_CASES[case]
    assert cnnops(*args, columns=columns, terminal=terminal) == snapshot


JSON_CASES = {
    "shape-alexnet-json": ALEXNET,
    "run-gx-relu-maxpool-json": GX_CHAIN,
    "explain-maxpool-ties-json": [*GX_CHAIN, "--explain", "1,0"],
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_json_output(case, snapshot):
    """Compared as parsed JSON: the values are pinned, not the key order or the spacing."""
    result = cnnops(*JSON_CASES[case], "--json")
    assert result["exit_code"] == 0, result["stderr"]
    assert result["stderr"] == ""
    assert json.loads(result["stdout"]) == snapshot


@pytest.mark.skipif(shutil.which("bash") is None, reason="examples/tutorials.sh needs bash")
def test_tutorials_script(tmp_path, snapshot):
    """Every step of examples/tutorials.sh; its ``cnnops`` is a shim that runs this checkout's module."""
    shim = tmp_path / "cnnops"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cnnops "$@"\n')
    shim.chmod(0o755)
    result = subprocess.run(["bash", "examples/tutorials.sh"], cwd=ROOT, env=environment(80, path_prefix=tmp_path),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8",
                            timeout=300)  # fmt: skip
    assert {"exit_code": result.returncode, "stdout": result.stdout, "stderr": result.stderr} == snapshot
