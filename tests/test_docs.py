"""The README's commands work exactly as written, and CI runs the README's test command."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console_commands():
    """(command, expected exit status, expected stderr line or None) for every `$ cnnops …` line."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ cnnops"):
                continue
            command, _, comment = line[2:].partition("  # ")
            status = int(comment.split()[-1]) if comment.startswith("exits") else 0
            expected = lines[i + 1] if status and i + 1 < len(lines) and not lines[i + 1].startswith("$") else None
            out.append((command.strip(), status, expected))
    return out


COMMANDS = console_commands()


def test_the_readme_has_usage_for_every_command():
    used = {name for c, _, _ in COMMANDS for name in re.findall(r"\bcnnops ([a-z-]+)", c)}
    assert {"shape", "run", "conv", "relu", "act", "pool", "adaptive-pool", "unpool", "linear", "flatten",
            "kernels"} <= used  # fmt: skip


@pytest.mark.parametrize("command, status, expected", COMMANDS, ids=[c[:60] for c, _, _ in COMMANDS])
def test_readme_command_runs_as_written(command, status, expected, tmp_path):
    cnnops = shutil.which("cnnops")
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    if cnnops is None:  # not installed as a script: run the module through a shim on PATH
        shim = tmp_path / "cnnops"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cnnops "$@"\n')
        shim.chmod(0o755)
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=120)  # fmt: skip
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    if status == 0:
        assert result.stdout.strip(), "every example prints something"
    if expected is not None:
        assert result.stderr.strip() == expected


def test_ci_runs_the_readme_test_command():
    test_command = re.search(r"Run the tests.*?```console\n\$ (.+?)\n```", README, re.S).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert "torch==2.13.0" in test_command


def test_examples_tutorial_script_runs_every_walk_through():
    result = subprocess.run(["bash", str(ROOT / "examples" / "tutorials.sh")], capture_output=True, text=True,
                            env=dict(os.environ, NO_COLOR="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"),
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = (ROOT / "examples" / "tutorials.sh").read_text(encoding="utf-8").count('\nstep "')
    assert steps >= 18 and result.stdout.count("### ") == steps
    assert "Traceback" not in result.stderr


def test_bundled_image_is_what_make_image_draws():
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import make_image
    finally:
        sys.path.pop(0)
    drawn = np.asarray(make_image.draw())
    assert (np.asarray(Image.open(ROOT / "examples" / "street.png")) == drawn).all()


def test_the_use_from_python_example_prints_what_its_comments_say(capsys):
    block = re.search(r"## Use from Python.*?```python\n(.*?)```", README, re.S).group(1)
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(old)
    printed = capsys.readouterr().out.splitlines()
    expected = [line.split("  # ", 1)[1] for line in block.splitlines() if "print(" in line]
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected, strict=True):
        assert got.startswith(want.rstrip("…").rstrip()), (got, want)
