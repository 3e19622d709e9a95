"""Issue 13: what a learner pastes from a PyTorch tutorial works as pasted, typed here exactly as the
learner typed it (the stage-text cases — ``nn.`` prefixes, ``Linear(32 * 4 * 4, 128)``, print(model) —
are the stage parser's and are tested with it)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from cnnops.cli import app

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env={"COLUMNS": "200", "NO_COLOR": "1"})


def run_json(*args, input=None):
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


def f32(values) -> list:
    """JSON numbers (float32's shortest text) as the float32 values they stand for."""
    return np.array(values, dtype=np.float32).tolist()


def output(*args, input=None):
    return np.array(run_json(*args, input=input)["output"]["data"], dtype=np.float32)


# --- the reproductions ---------------------------------------------------------------------------


def test_relu_of_the_tutorials_literal():
    # was: Error: inline JSON is not valid JSON: expecting ',' delimiter…
    assert output("relu", "[[-4., 0., 4.]]").tolist() == [[0.0, 0.0, 4.0]]
    result = invoke("relu", "[[-4., 0., 4.]]")
    assert result.exit_code == 0 and "input inline tensor → 1×3" in result.stdout


def test_weight_written_the_tutorials_way():
    # was: …is not a valid JSON list
    x = torch.tensor(json.loads((EX / "line5x5.json").read_text()), dtype=torch.float32)[None, None]
    expected = F.conv2d(x, torch.tensor([[[[1.0, 0, -1.0]]]]), torch.tensor([0.0]))[0]
    assert output("conv", EX / "line5x5.json", "--weight", "[[1., 0, -1.]]", "--bias", "0").tolist() == expected.tolist()
    gx = "torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])"
    assert output("conv", EX / "line5x5.json", "--weight", gx, "--bias", "0.").tolist() == [[[-4, 0, 4]] * 3]
    linear = output("linear", "[1., 2., 3.]", "--out-features", "1", "--weight", "[[1., 0, -1.]]", "--bias", "0.5")
    assert linear.tolist() == [-1.5]


def test_the_same_literal_works_as_an_input_a_weight_and_in_a_stage():
    stage = output("run", EX / "line5x5.json", "Conv2d(1, 1, (1, 3), weight=[[1., 0, -1.]], bias=False)")
    option = output("conv", EX / "line5x5.json", "--weight", "[[1., 0, -1.]]", "--bias", "false")
    quoted = output("run", EX / "line5x5.json", "Conv2d(1, 1, (1, 3), weight='torch.tensor([[1., 0, -1.]])', bias=False)")
    assert stage.tolist() == option.tolist() == quoted.tolist()


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 - 1])
def test_torch_randn_as_an_input_is_torchs_tensor(seed):
    # was: torch.randn(1, 4, 4) tensors could not be made; the learner typed the printed values by hand
    torch.manual_seed(seed)
    expected = torch.randn(1, 4, 4)
    doc = run_json("run", "torch.randn(1, 4, 4)", "MaxPool2d(2)", "--seed", seed, "--intermediates")
    assert np.array_equal(np.array(doc["input"]["data"], dtype=np.float32).view(np.uint32),
                          expected.numpy().view(np.uint32))  # fmt: skip
    assert f32(doc["output"]["data"]) == F.max_pool2d(expected, 2).tolist()
    assert doc["input"]["source"] == f"torch.randn(1, 4, 4) (seed {seed})" and doc["seed"] == seed
    short = run_json("relu", "randn:1x4x4", "--seed", seed)
    assert short["input"]["source"] == f"randn:1x4x4 (seed {seed})"
    assert f32(short["output"]["data"]) == F.relu(expected).tolist()


def test_adaptive_pool_says_which_rank_it_chose_and_how_to_get_the_other():
    # was: silently AdaptiveMaxPool2d (1×10×10) where the tutorial meant AdaptiveMaxPool1d (1×10)
    result = invoke("adaptive-pool", "[[1,2,3]]", "--output-size", "10", "--mode", "max")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[:2]
    assert header[1] == ("--dims auto chose AdaptiveMaxPool2d, reading (1, 3) as one 1×3 image; --dims 1 gives "
                         "AdaptiveMaxPool1d, reading it as 1 channel of length 3")  # fmt: skip
    one_d = output("adaptive-pool", "[[1, 2, 3]]", "--output-size", "10", "--mode", "max", "--dims", "1")
    assert one_d.tolist() == F.adaptive_max_pool1d(torch.tensor([[1.0, 2.0, 3.0]]), 10).tolist()
    assert one_d.tolist() == [[1, 1, 1, 2, 2, 2, 3, 3, 3, 3]]


# --- the rest of the issue, as a learner would try it -------------------------------------------


@pytest.mark.parametrize(
    "command",
    [("pool", "-k", "2"), ("adaptive-pool", "--output-size", "2"), ("conv", "--kernel", "1"),
     ("unpool", "-k", "1", "--indices", "[[[0, 1], [2, 3]]]")],
)  # fmt: skip
def test_every_command_with_1d_and_2d_forms_says_what_auto_chose(command):
    result = invoke(command[0], "[[[1., 2.], [3., 4.]]]", *command[1:])
    assert result.exit_code == 0, result.output
    assert "--dims auto chose " in result.stdout and "--dims 1 gives " in result.stdout
    stated = invoke(command[0], "[[[1., 2.], [3., 4.]]]", *command[1:], "--dims", "2")
    assert "--dims auto" not in stated.stdout
    assert "--dims auto" not in invoke(command[0], "[[[1., 2.], [3., 4.]]]", *command[1:], "--json").stdout


def test_no_note_when_only_one_rank_fits():
    result = invoke("pool", "-k", "2", "ones:1x1x4x4")
    assert result.exit_code == 0 and "--dims auto" not in result.stdout


@pytest.mark.parametrize("command", [("relu",), ("pool", "-k", "1"), ("flatten",), ("act", "--fn", "tanh"),
                                     ("adaptive-pool", "--output-size", "2"), ("linear", "--out-features", "2")])  # fmt: skip
def test_seed_is_an_option_of_every_data_command(command):
    doc = run_json(command[0], "rand:1x2x2", *command[1:], "--seed", "3", "--intermediates")
    assert doc["seed"] == 3 and doc["input"]["source"] == "rand:1x2x2 (seed 3)"
    torch.manual_seed(3)
    assert f32(doc["input"]["data"]) == torch.rand(1, 2, 2).tolist()


def test_input_and_weights_draw_from_two_streams_each_started_at_the_seed():
    doc = run_json("run", "randn:1x1x5x5", "Conv2d(1, 2, 3)", "--seed", "7")
    torch.manual_seed(7)
    x = torch.randn(1, 1, 5, 5)
    torch.manual_seed(7)
    conv = torch.nn.Conv2d(1, 2, 3)
    np.testing.assert_allclose(doc["output"]["data"], conv(x).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "text, expected",
    [("zeros:1x1x5x5", torch.zeros(1, 1, 5, 5)), ("ones:4x4", torch.ones(4, 4)), ("full:3.5:2x2", torch.full((2, 2), 3.5)),
     ("arange:1x1x4x4", torch.arange(16.0).reshape(1, 1, 4, 4)), ("eye:5", torch.eye(5)),
     ("torch.zeros(2, 3)", torch.zeros(2, 3)), ("torch.arange(16).reshape(1,1,4,4)", torch.arange(16.0).reshape(1, 1, 4, 4)),
     ("torch.eye(3)", torch.eye(3)), ("torch.ones(1, 2)", torch.ones(1, 2))],
)  # fmt: skip
def test_constructed_inputs(text, expected):
    assert output("flatten", text, "--start-dim", "0").tolist() == expected.flatten().tolist()


def test_random_inputs_on_the_command_line_equal_torch():
    for text, make in [("rand:2x3", lambda: torch.rand(2, 3)), ("randint:0:5:1x1x4x4", lambda: torch.randint(0, 5, (1, 1, 4, 4))),
                       ("torch.rand(2, 3)", lambda: torch.rand(2, 3)),
                       ("torch.randint(0, 9, (1, 1, 4, 4)).float()", lambda: torch.randint(0, 9, (1, 1, 4, 4)))]:  # fmt: skip
        torch.manual_seed(42)
        expected = make().float()
        assert output("flatten", text, "--seed", "42", "--start-dim", "0").tolist() == expected.flatten().tolist(), text


def test_pasted_seed_and_lines():
    text = "import torch\ntorch.manual_seed(5)\nx = torch.randn(2, 8)\nprint(x)"
    doc = run_json("relu", text)
    torch.manual_seed(5)
    assert f32(doc["output"]["data"]) == F.relu(torch.randn(2, 8)).tolist()
    assert doc["input"]["source"].endswith("(seed 5)")


def test_stdin_takes_python_text_too():
    assert output("relu", "-", input="[[-4., 0., 4.]]").tolist() == [[0.0, 0.0, 4.0]]
    torch.manual_seed(1)
    assert output("relu", "-", "--seed", "1", input="torch.randn(3)").tolist() == F.relu(torch.randn(3)).tolist()


def test_indices_can_be_given_inline():
    pooled = run_json("pool", "-k", "2", EX / "grid4x4.json")
    indices = json.dumps(pooled["output"]["indices"])
    data = json.dumps(pooled["output"]["data"])
    assert output("unpool", "-k", "2", data, "--indices", indices).tolist() == output(
        "unpool", "-k", "2", "-", input=json.dumps(pooled)).tolist()  # fmt: skip
    result = invoke("unpool", "-k", "2", data, "--indices", "[[[0.5, 1], [2, 3]]]")
    assert result.exit_code == 1 and "indices must hold whole numbers" in result.stderr


def test_batch_of_generated_inputs_names_their_files(tmp_path):
    result = invoke("relu", "randn:2x2", "torch.ones(2, 2)", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input-2.json", "randn_2x2.json"]


@pytest.mark.parametrize(
    "args, fragment",
    [(("relu", "[[1., 2.], [3.]]"), "inline tensor: data[1] has 1 items where data[0] has 2"),
     (("relu", "torch.tensor([os.getcwd()])"), "calling 'os.getcwd' is not allowed"),
     (("relu", "[__import__('os')]"), "the name '__import__' is not allowed"),
     (("conv", "[[1., 2.]]", "--weight", "[[__import__('os')]]"), "the name '__import__' is not allowed"),
     (("linear", "[1., 2.]", "--out-features", "1", "--bias", "torch.tensor([os.sep])"), "'os.sep' is not allowed"),
     (("relu", "full:abc:2x2"), "'full:abc:2x2' has the value 'abc'"),
     (("relu", "torch.randn(2, generator=g)"), "the argument generator= of torch.randn is not understood")],
)  # fmt: skip
def test_what_is_refused_says_why_in_one_line(args, fragment):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr


# --- the tutorials' tensors ----------------------------------------------------------------------


def test_image1_pools_like_the_tutorial():
    assert output("pool", "--kernel", "2", "--stride", "1", EX / "image1.json").tolist() == [[[2, 3, 3]] * 3]
    assert output("pool", "--kernel", "2", EX / "image1.json").tolist() == [[[2, 3], [2, 3]]]


def test_the_tutorials_linear_3_4_with_bias_one_half():
    out = output("linear", EX / "seq3.json", "--out-features", "4", "--weight", EX / "linear_weight.json", "--bias", "0.5")
    assert out.tolist() == [6.5, 12.5, 18.5, 24.5]


def test_examples_readme_states_each_files_numbers():
    readme = (EX / "README.md").read_text()
    for name in ["image1.json", "grid4x4.json", "linear_weight.json", "seq3.json"]:
        numbers = json.loads((EX / name).read_text())
        assert f"`{json.dumps(numbers)}`" in readme or all(f"`{json.dumps(row)}`" in readme for row in numbers), name


def test_non_finite_numbers_in_weight_and_bias_options():
    doc = run_json("linear", "[1., 2.]", "--out-features", "2", "--weight", "[[1., 0], [float('nan'), 1]]",
                   "--bias", "[float('inf'), -math.inf]")  # fmt: skip
    weight = torch.tensor([[1.0, 0.0], [math.nan, 1.0]])
    expected = F.linear(torch.tensor([1.0, 2.0]), weight, torch.tensor([math.inf, -math.inf]))
    assert doc["output"]["data"] == ["Infinity", "NaN"] and torch.isnan(expected[1]) and expected[0] == math.inf
    result = invoke("linear", "[1., 2.]", "--out-features", "2", "--bias", "[0.5, float('nan')]")
    assert result.exit_code == 2 and "--bias cannot be NaN" in result.stderr


def test_files_named_like_torch_calls_are_still_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("torch.json").write_text("[[1, -2]]")
    Path("tensor(1).json").write_text("[[3, -4]]")
    assert output("relu", "torch.json").tolist() == [[1.0, 0.0]]
    assert output("relu", "tensor(1).json").tolist() == [[3.0, 0.0]]
    result = invoke("relu", "torch.json", "tensor(1).json", "--output-dir", "out")
    assert result.exit_code == 0 and sorted(p.name for p in Path("out").iterdir()) == ["tensor(1).json", "torch.json"]  # output names keep the input names (issue 15)
