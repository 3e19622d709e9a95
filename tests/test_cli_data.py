"""Data commands as a user runs them: piping, stdin, --output, --quiet, and every error path."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnops.cli import app

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, input=None, columns=200):
    return runner.invoke(app, [str(a) for a in args], input=input, env={"COLUMNS": str(columns)})


def test_run_prints_every_intermediate_tensor_and_the_tables():
    result = invoke("run", EX / "line5x5.json", "Conv2d(1, 1, 3, weight='gx', bias=False)", "relu", "maxpool:2,stride=1",
                    "--engine", "numpy")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ["input", "stage 1 Conv2d(1, 1, 3, bias=False, weight='gx')", "-4.", "stage 2 ReLU()",
                 "stage 3 MaxPool2d(2, stride=1) → 1×2×2", "Shapes", "⌊(5 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1",
                 "picked by the max pool of stage 3", "engine numpy"]:  # fmt: skip
        assert text in out, text
    assert "\x1b[" not in out


def test_default_weights_mention_the_seed():
    result = invoke("conv", "[[1, 2], [3, 4]]", "--kernel", "1", "--seed", "7")
    assert result.exit_code == 0 and "seed 7" in result.stdout


def test_pool_stride_defaults_to_kernel_and_options_map_to_pytorch_arguments():
    doc = json.loads(invoke("pool", "-k", "2", EX / "grid4x4.json", "--json").stdout)
    assert doc["stages"][0]["stage"] == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    doc = json.loads(invoke("pool", "-k", "2,3", "-s", "1,2", "--ceil-mode", EX / "grid4x4.json", "--json").stdout)
    assert doc["stages"][0]["stage"].startswith("MaxPool2d(kernel_size=(2, 3), stride=(1, 2)")
    assert doc["output"]["shape"] == [1, 3, 2]


def test_json_output_chains_through_stdin():
    first = invoke("conv", EX / "line5x5.json", "--weight", "gx", "--bias", "0", "--json")
    second = invoke("relu", "-", "--json", input=first.stdout)
    third = invoke("pool", "-", "-k", "2", "-s", "1", "--json", input=second.stdout)
    assert json.loads(third.stdout)["output"]["data"] == [[[0.0, 4.0], [0.0, 4.0]]]


def test_intermediates_add_every_stage_data():
    doc = json.loads(invoke("run", EX / "grid4x4.json", "maxpool:2", "unpool:2", "--json", "--intermediates").stdout)
    assert doc["input"]["data"] == [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
    assert doc["stages"][0]["data"] == [[[6.0, 8.0], [3.0, 4.0]]]
    assert doc["stages"][0]["indices"] == [[[5, 7], [8, 15]]]
    assert doc["stages"][1]["indices_from_stage"] == 1


def test_output_json_and_npy_files_are_written(tmp_path):
    json_path, npy_path = tmp_path / "out.json", tmp_path / "out.npy"
    assert invoke("pool", "-k", "2", EX / "grid4x4.json", "-o", json_path, "--quiet").exit_code == 0
    assert json.loads(json_path.read_text())["output"]["indices"] == [[[5, 7], [8, 15]]]
    assert invoke("pool", "-k", "2", EX / "grid4x4.json", "--output", npy_path, "--quiet").stdout == ""
    assert np.load(npy_path).tolist() == [[[6.0, 8.0], [3.0, 4.0]]]
    unpooled = invoke("unpool", json_path, "-k", "2", "--json")
    assert json.loads(unpooled.stdout)["output"]["shape"] == [1, 4, 4]


def test_unpool_with_an_indices_file(tmp_path):
    (tmp_path / "idx.json").write_text("[[5, 7], [8, 15]]")
    doc = json.loads(invoke("unpool", "[[6, 8], [3, 4]]", "-k", "2", "--indices", tmp_path / "idx.json", "--json").stdout)
    assert doc["output"]["data"] == [[[0, 0, 0, 0], [0, 6, 0, 8], [3, 0, 0, 0], [0, 0, 0, 4]]]


def test_act_with_names_and_calls():
    assert json.loads(invoke("act", "[-2, 0, 2]", "--fn", "leaky-relu", "--json").stdout)["output"]["data"] == [-0.02, 0.0, 2.0]
    out = json.loads(invoke("act", "[-2, 0, 2]", "--fn", "LeakyReLU(0.5)", "--json").stdout)["output"]["data"]
    assert out == [-1.0, 0.0, 2.0]
    sig = json.loads(invoke("act", "[0]", "--fn", "sigmoid", "--json").stdout)["output"]["data"]
    assert sig == [0.5]


def test_image_inputs_grayscale_and_rgb():
    gray = json.loads(invoke("adaptive-pool", EX / "street.png", "--output-size", "1", "--json").stdout)
    rgb = json.loads(invoke("adaptive-pool", EX / "street.png", "--output-size", "1", "--rgb", "--json").stdout)
    assert gray["output"]["shape"] == [1, 1, 1] and rgb["output"]["shape"] == [3, 1, 1]


def test_large_tensors_are_summarised_and_full_shows_all():
    data = json.dumps((np.arange(40 * 40) + 100).reshape(40, 40).tolist())
    short = invoke("relu", data)
    assert "…" in short.stdout and "1699." in short.stdout and "900." not in short.stdout
    full = invoke("relu", data, "--full", columns=2000)
    assert "900." in full.stdout


def test_a_file_named_like_a_layer_is_an_input_with_dot_slash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("relu").write_text("")
    Path("relu.json").write_text("[[-1, 1]]")
    doc = json.loads(invoke("run", "./relu.json", "relu", "--json").stdout)
    assert doc["output"]["data"] == [[0.0, 1.0]]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("pool", "-k", "2", "missing.json"), "does not exist"),
        (("pool", "-k", "2", "[[1, 2], [3]]"), "data[1]"),
        (("pool", "-k", "2", "[[1, 2], [3, 4]"), "line 1"),
        (("pool", "-k", "3", "[[1, 2], [3, 4]]"), "output size is too small"),
        (("pool", "-k", "2", "-p", "2", "[[1, 2], [3, 4]]"), "padding 2 is more than half the kernel size 2"),
        (("conv", EX / "line5x5.json", "--weight", "gx", "--kernel", "5"), "kernel_size"),
        (("conv", EX / "line5x5.json", "--weight", "sobl-x"), "did you mean"),
        (("conv", EX / "line5x5.json", "--weight", "[[1, 2], [3]]"), "weight"),
        (("run", EX / "grid4x4.json", "Conv2d(3, 8, 3)"), "expects 3 input channels, got 1"),
        (("run", EX / "grid4x4.json", "unpool:2"), "needs max-pool indices"),
        (("unpool", "[[6, 8], [3, 4]]", "-k", "2", "--indices", EX / "grid4x4.json"), "shape"),
        (("run", EX / "grid4x4.json", "Linear(5, 2)"), "in_features=5"),
        (("linear", "[1, 2]", "--out-features", "2", "--weight", "[[1, 2, 3]]"), "weight has shape"),
        (("run", EX / "grid4x4.json", "maxpool:2", "--max-elements", "10"), "more than the limit of 10"),
        (("run", EX / "grid4x4.json", "Conv2d(1, 4, 1)", "--max-elements", "20"), "64 elements, more than the limit 20"),
    ],
)
def test_invalid_inputs_give_one_error_line_and_exit_1(args, fragment):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert fragment in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [("pool", "[[1]]"), ("pool", "[[1]]", "-k", "a"), ("pool", "[[1]]", "-k", "2", "--mode", "median"),
     ("pool", "[[1]]", "-k", "2", "--mode", "avg", "--dilation", "2"), ("run",), ("pool", "-k", "2", "[[1]]", "[[2]]", "--json"),
     ("pool", "-k", "2", "[[1]]", "[[2]]", "-o", "x.json"), ("pool", "-k", "2", "-", "-")],
)  # fmt: skip
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_output_path_problems_are_caught_before_any_work(tmp_path):
    (tmp_path / "d.json").mkdir()
    result = invoke("pool", "-k", "2", EX / "grid4x4.json", "-o", tmp_path / "d.json")
    assert result.exit_code == 1 and "directory" in result.stderr
    result = invoke("pool", "-k", "2", EX / "grid4x4.json", "-o", tmp_path / "x.txt")
    assert result.exit_code == 1 and ".json" in result.stderr


def test_real_subprocess_pipe_between_two_cnnops_processes():
    exe = [sys.executable, "-m", "cnnops"]
    first = subprocess.run([*exe, "pool", "-k", "2", str(EX / "grid4x4.json"), "--json"], capture_output=True, text=True)
    second = subprocess.run([*exe, "unpool", "-k", "2", "-", "--json"], input=first.stdout, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["output"]["data"][0][1] == [0.0, 6.0, 0.0, 8.0]


def test_full_refuses_tensors_too_large_to_draw_and_points_to_output():
    result = invoke("relu", json.dumps(np.zeros((400, 400)).tolist()), "--full")
    assert result.exit_code == 1 and "--output" in result.stderr and result.stdout == ""


def test_one_dimensional_results_chain_as_one_dimensional():
    pooled = invoke("pool", "--kernel", "2", "[1, 5, 2, 8, 3, 1]", "--json").stdout
    doc = json.loads(invoke("unpool", "--kernel", "2", "-", "--json", input=pooled).stdout)
    assert doc["stages"][0]["stage"].startswith("MaxUnpool1d")
    assert doc["output"]["data"] == [[0.0, 5.0, 0.0, 8.0, 3.0, 0.0]]


def test_unpool_output_size_one_number_means_every_spatial_dim():
    pooled = invoke("pool", "-k", "2", EX / "grid4x4.json", "--json").stdout
    doc = json.loads(invoke("unpool", "-k", "2", "--output-size", "4", "-", "--json", input=pooled).stdout)
    assert doc["output"]["shape"] == [1, 4, 4]


@pytest.mark.parametrize("flag", ["--count-include-pad", "--no-count-include-pad"])
def test_count_include_pad_with_a_max_pool_is_refused_not_ignored(flag):
    result = invoke("pool", "[[1, 2], [3, 4]]", "-k", "2", "-p", "1", flag)
    assert result.exit_code == 2 and f"{flag} is for --mode avg" in result.stderr, result.output


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("flag", [None, "--count-include-pad", "--no-count-include-pad"])
def test_average_pool_count_include_pad_equals_torch(engine, flag):
    import torch

    x = [[1.0, 2.0, 3.0], [4.0, -0.0, 6.0], [7.0, 8.0, float("inf")]]
    result = invoke("pool", json.dumps(x), "-k", "2", "-s", "1", "-p", "1", "--mode", "avg", "--ceil-mode",
                    *([flag] if flag else []), "--engine", engine, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = torch.nn.functional.avg_pool2d(torch.tensor([x]), 2, 1, 1, ceil_mode=True,
                                              count_include_pad=flag != "--no-count-include-pad")  # fmt: skip
    got = json.loads(result.stdout)["output"]
    assert got["shape"] == list(expected.shape)
    assert [[v if v != "Infinity" else float("inf") for v in row] for row in got["data"][0]] == expected[0].tolist()


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("weight", "bias", "bias_value"), [
    ('[["Infinity", 1]]', '["-Infinity"]', -math.inf), ('[["-Infinity", 0.5]]', '"Infinity"', math.inf),
    ('[[2, 0.5]]', "-inf", -math.inf), ('[["NaN", 1]]', "0", 0.0), ('[[1, "-Infinity"]]', "false", None),
])  # fmt: skip
def test_weight_and_bias_take_json_named_nonfinite_numbers_as_inputs_do(engine, weight, bias, bias_value):
    """--weight/--bias read "NaN", "Infinity" and "-Infinity" (as cnnops' JSON writes them) like an input."""
    import torch

    def number(v):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v)

    x = [[1.0, -2.0, 0.0], [3.0, -0.0, 4.0]]
    result = invoke("conv", json.dumps(x), "--weight", weight, "--bias", bias, "--engine", engine, "--json")
    assert result.exit_code == 0, result.output
    w = torch.tensor([[[[number(v) for v in row] for row in json.loads(weight)]]])
    b = None if bias_value is None else torch.tensor([bias_value])
    expected = torch.nn.functional.conv2d(torch.tensor([x]), w, b)
    got = json.loads(result.stdout)["output"]
    assert got["shape"] == list(expected.shape)
    np.testing.assert_array_equal(np.array([[[number(v) for v in row] for row in got["data"][0]]]), expected.numpy())
