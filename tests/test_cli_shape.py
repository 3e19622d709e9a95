"""`cnnops shape` as a user runs it: tables, JSON, errors, and never importing torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cnnops import __version__
from cnnops.cli import app

ROOT = Path(__file__).resolve().parent.parent
ALEXNET = str(ROOT / "examples" / "alexnet.txt")
runner = CliRunner()


def invoke(*args, input=None, columns=250):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": str(columns)})


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"cnnops {__version__}"


def test_alexnet_table_shows_every_stage_and_totals():
    result = invoke("shape", "1x3x224x224", "-f", ALEXNET)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ["1×64×55×55", "1×256×6×6", "1×1000", "61,100,840", "714,188,480", "implicit flatten 1×9216",
                 "⌊217/4⌋ + 1 = 55", "54.25 → 54", "MACs", "multiply-accumulates, bias ignored"]:  # fmt: skip
        assert text in out, text
    assert "\x1b[" not in out, "no ANSI codes off a terminal"


def test_json_is_the_spec_document_and_nothing_else():
    result = invoke("shape", "1x3x224x224", "-f", ALEXNET, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["input_shape"] == [1, 3, 224, 224] and doc["output_shape"] == [1, 1000]
    assert doc["total_params"] == 61_100_840 and doc["total_macs"] == 714_188_480
    first = doc["stages"][0]
    assert first["stage"] == "Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))"
    assert (first["index"], first["input_shape"], first["output_shape"]) == (1, [1, 3, 224, 224], [1, 64, 55, 55])
    assert (first["params"], first["macs"]) == (23296, 70276800)
    assert first["receptive_field"][0] == {"size": 11, "jump": 4, "start": 3.0}


def test_stages_on_the_command_line_with_sugar():
    result = invoke("shape", "5x5", "maxpool:2,stride=1", "relu", "--json")
    doc = json.loads(result.stdout)
    assert doc["output_shape"] == [1, 4, 4]
    assert doc["stages"][0]["rank_rule_shape"] == [1, 5, 5]


def test_rejected_layer_prints_table_up_to_it_then_error_and_exit_1():
    result = invoke("shape", "1x3x8x8", "Conv2d(3, 8, 3)", "ReLU", "MaxPool2d(3, padding=2)")
    assert result.exit_code == 1
    assert "Conv2d(3, 8, 3)" in result.stdout and "1×8×6×6" in result.stdout
    assert result.stderr.strip() == (
        "Error: stage 3 MaxPool2d(3, padding=2): padding 2 is more than half the kernel size 3 — use padding ≤ 1"
    )
    assert "Traceback" not in result.output


def test_table_folds_to_80_columns_without_cutting_numbers():
    result = invoke("shape", "1x3x224x224", "-f", ALEXNET, columns=80)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "223,948,800" in result.stdout and "61,100,840" in result.stdout


def test_rejected_layer_with_json_leaves_stdout_empty():
    result = invoke("shape", "1x3x4x4", "Conv2d(3, 8, 9)", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: stage 1 Conv2d(3, 8, 9): kernel size can't be greater")


def test_unknown_layer_and_bad_shape_and_missing_file_are_one_line_errors(tmp_path):
    for args, fragment in [
        (("shape", "1x3x8x8", "Convv2d(3, 8, 3)"), "did you mean Conv2d?"),
        (("shape", "1x3xAx8", "relu"), "cannot read the shape"),
        (("shape", "1x3x8x8", "-f", str(tmp_path / "nope.txt")), "does not exist"),
        (("shape", "1x3x8x8", "-f", str(tmp_path)), "is a directory"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 1, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines


def test_stage_file_from_stdin():
    result = invoke("shape", "1x1x28x28", "-f", "-", "--json", input="Conv2d(1, 4, 3)\nMaxPool2d(2)\n")
    assert json.loads(result.stdout)["output_shape"] == [1, 4, 13, 13]


def test_usage_error_exits_2():
    result = invoke("shape")
    assert result.exit_code == 2


def _run_without_torch(tmp_path, *args):
    """Run cnnops with a poisoned torch first on the path: importing it fails loudly."""
    poison = tmp_path / "poison"
    (poison / "torch").mkdir(parents=True, exist_ok=True)
    (poison / "torch" / "__init__.py").write_text("raise ImportError('torch must not be imported here')")
    env = dict(os.environ, PYTHONPATH=str(poison), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "cnnops", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_shape_and_help_never_import_torch(tmp_path):
    for args in (["shape", "1x3x224x224", "-f", "examples/alexnet.txt"], ["--help"], ["shape", "--help"],
                 ["run", "--help"], ["pool", "--help"]):  # fmt: skip
        result = _run_without_torch(tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_small_data_commands_on_the_default_engine_never_import_torch(tmp_path):
    for args in (["pool", "-k", "2", "examples/grid4x4.json"],
                 ["run", "examples/street.png", "Conv2d(1, 4, 3)", "relu", "maxpool:2", "--json"],
                 ["conv", "examples/line5x5.json", "--weight", "gx", "--animate", str(tmp_path / "a.gif")],
                 ["solve", "--input", "28", "--output", "14"], ["kernels"]):  # fmt: skip
        result = _run_without_torch(tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr)
    forced = _run_without_torch(tmp_path, "pool", "-k", "2", "examples/grid4x4.json", "--engine", "torch")
    assert forced.returncode == 1 and "torch" in forced.stderr, "the poison really blocks torch"


def test_shape_imports_neither_torch_nor_numpy_nor_pil():
    code = (
        "import sys; from cnnops.cli import app; "
        "from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['shape', '1x3x224x224', '-f', 'examples/alexnet.txt']); "
        "assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_installed_console_script_runs_in_a_real_subprocess():
    exe = Path(sys.executable).with_name("cnnops")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnops"]
    result = subprocess.run([*command, "shape", "1x3x224x224", "-f", "examples/alexnet.txt", "--json"],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output_shape"] == [1, 1000]
    bad = subprocess.run([*command, "shape", "1x3x4x4", "Conv2d(3, 8, 9)"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.startswith("Error:") and "Traceback" not in bad.stderr
