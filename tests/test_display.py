"""What the tables show: float noise as 0 (exact values elsewhere), folding at 80 columns, output levels."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnops.render.tensor_grid import noise_floor

ROOT = Path(__file__).resolve().parent.parent
NOISY = ["conv", "[[0.1, 0.2, 0.3, 0.4, 0.7]]", "--weight", "[[1, -2, 1]]", "--bias", "0"]


def cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": str(columns), "TERM": "dumb",
           "PYTHONUTF8": "1"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "cnnops", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, encoding="utf-8")  # fmt: skip


def test_noise_floor_is_relative_to_the_largest_magnitude():
    assert noise_floor(np.array([4.0, -1.1920929e-07], dtype=np.float32)) > 1.1920929e-07
    assert noise_floor(np.array([1e-7, 2e-7], dtype=np.float32)) == 0.0  # small but not noise: nothing larger
    assert noise_floor(np.array([1, 2, 3])) == 0.0
    assert noise_floor(np.array([np.inf, 1e-30], dtype=np.float32)) == 0.0  # inf is not a magnitude to compare


def test_float_noise_prints_as_zero_with_a_note():
    out = cli(*NOISY)
    assert out.returncode == 0, out.stderr
    assert "e-08" not in out.stdout and "0  0.0000  0.0000  0.2000" in out.stdout
    assert "shown as 0 (float noise); --full or --json show exact values." in out.stdout


def test_full_and_json_keep_exact_values():
    full = cli(*NOISY, "--full")
    assert "-2.9802e-08" in full.stdout and "float noise" not in full.stdout
    doc = json.loads(cli(*NOISY, "--json").stdout)
    assert doc["output"]["data"][0][0][1] == -2.9802322e-08


def test_no_note_without_noise():
    assert "float noise" not in cli("relu", "[[-1, 0, 1e-5]]").stdout


def test_max_pool_highlight_is_computed_on_exact_values():
    # 1e-9 is noise next to 1, printed 0, but the max pool still picks it over the exact 0
    out = cli("run", "[[0, 1e-9, 1, 1]]", "MaxPool2d((1, 2))", "--explain", "0,0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[3].split() == ["0", "0.", "0.*", "1.*", "1."]
    assert "flat index 1" in out.stdout


def terminal_cli(*args: str, columns: int) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": str(columns), "TERM": "xterm-256color",
           "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0", "NO_COLOR": "1", "PYTHONUTF8": "1"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "cnnops", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, encoding="utf-8")  # fmt: skip


@pytest.mark.parametrize("columns", [80, 100, 140])
@pytest.mark.parametrize("terminal", [False, True])
def test_numbers_shapes_and_names_are_never_split(columns, terminal):
    args = ["shape", "1x3x224x224", "-f", "examples/alexnet.txt", "--json"]
    doc = json.loads(cli(*args).stdout)
    out = (terminal_cli if terminal else cli)(*args[:-1], columns=columns).stdout
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert all(len(line) <= columns for line in plain.splitlines())
    words = set(plain.split())
    for stage in doc["stages"]:
        assert f"{stage['macs']:,}" in words and f"{stage['params']:,}" in words
        assert "×".join(map(str, stage["output_shape"])) in words
    assert "AdaptiveAvgPool2d((6," in words


def test_notes_once_per_command_and_none_with_no_notes():
    two = cli("relu", "[[1, -1]]", "[[2, -2]]")
    assert two.stdout.count("*MACs:") == 1
    assert "*MACs:" not in cli("relu", "[[1, -1]]", "--no-notes").stdout
    assert "*MACs:" not in cli("shape", "1x1x5x5", "conv", "--no-notes").stdout


def test_return_indices_are_shown_as_a_plane_grid():
    out = cli("run", "examples/grid4x4.json", "MaxPool2d(2, return_indices=True)").stdout
    assert "indices (flat h·W + w)" in out
    assert [line.split() for line in out.split("indices (flat")[1].splitlines()[2:5]] == [
        ["0", "1"], ["0", "5", "7"], ["1", "8", "15"]]
    assert "indices (flat" not in cli("run", "examples/grid4x4.json", "MaxPool2d(2)").stdout


def test_adaptive_bins_per_output_for_small_outputs_only():
    small = cli("adaptive-pool", "examples/seq3.json", "--output-size", "8", columns=140).stdout
    assert "bins [0,1) [0,1) [0,2) [1,2) [1,2) [1,3) [2,3) [2,3)" in small
    assert "bins [" not in cli("adaptive-pool", "examples/seq3.json", "--output-size", "17").stdout


def test_summary_prints_shapes_and_formulas_but_no_tensors():
    out = cli("run", "examples/line5x5.json", "Conv2d(1, 1, 3, weight='gx', bias=False)", "relu", "--summary")
    assert out.returncode == 0, out.stderr
    assert "Shapes" in out.stdout and "Output size per spatial dimension" in out.stdout
    assert "channel 0" not in out.stdout and "-4." not in out.stdout
    explained = cli("conv", "examples/line5x5.json", "--weight", "gx", "--summary", "--explain", "0,0")
    assert "Explain stage 1" in explained.stdout and "channel 0 ·" not in explained.stdout


def test_summary_contradicting_options_and_quiet():
    clash = cli("relu", "[[1]]", "--summary", "--json")
    assert clash.returncode == 2 and "choose one" in clash.stderr and clash.stdout == ""
    quiet = cli("relu", "[[1, -1]]", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    failing = cli("relu", "[[1, -1]", "--quiet")
    assert failing.returncode == 1 and failing.stdout == "" and failing.stderr.startswith("Error:")
