"""The tutorials' walk-throughs, one cnnops command each, with the numbers the tutorials print."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cnnops.cli import app

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
runner = CliRunner()


def run_json(*args, input=None):
    result = runner.invoke(app, [*map(str, args), "--json"], input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def output(*args, input=None):
    return np.array(run_json(*args, input=input)["output"]["data"])


def test_gx_kernel_on_a_vertical_line_gives_minus4_0_4():
    out = output("conv", EX / "line5x5.json", "--weight", "gx", "--bias", "false")
    assert out.tolist() == [[[-4.0, 0.0, 4.0]] * 3]


def test_relu_after_gx_gives_0_0_4():
    out = output("run", EX / "line5x5.json", "Conv2d(1, 1, 3, weight='gx', bias=False)", "ReLU")
    assert out.tolist() == [[[0.0, 0.0, 4.0]] * 3]


def test_relu_command_on_its_own():
    assert output("relu", "[[-4, 0, 4]]").tolist() == [[0.0, 0.0, 4.0]]


def test_maxpool_2_stride_1_on_the_4x4_example():
    out = output("pool", "--kernel", "2", "--stride", "1", EX / "grid4x4.json")
    assert out.tolist() == [[[6, 7, 8], [6, 7, 8], [3, 3, 4]]]


def test_maxpool_2_on_the_4x4_example_and_its_indices():
    doc = run_json("pool", "--kernel", "2", EX / "grid4x4.json")
    assert doc["output"]["data"] == [[[6.0, 8.0], [3.0, 4.0]]]
    assert doc["output"]["indices"] == [[[5, 7], [8, 15]]]


@pytest.mark.parametrize(
    "mode, size, expected",
    [("avg", 8, [1, 1, 1.5, 2, 2, 2.5, 3, 3]), ("max", 10, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3]),
     ("avg", 10, None), ("max", 8, None)],
)  # fmt: skip
def test_adaptive_pooling_of_1_2_3(mode, size, expected):
    out = output("adaptive-pool", EX / "seq3.json", "--output-size", size, "--mode", mode)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    fn = torch.nn.functional.adaptive_avg_pool1d if mode == "avg" else torch.nn.functional.adaptive_max_pool1d
    assert out.tolist() == fn(x, size).tolist()
    if expected is not None:
        assert out.tolist() == [expected]


def test_avgpool_divisor_override_on_ones():
    out = output("pool", "--mode", "avg", "--kernel", "2", "--stride", "2", "--divisor-override", "3",
                 EX / "ones4x4.json")  # fmt: skip
    np.testing.assert_allclose(out, np.full((1, 2, 2), 4 / 3, dtype=np.float32))
    run = output("run", EX / "ones4x4.json", "AvgPool2d(2, 2, divisor_override=3)")
    assert run.tolist() == out.tolist()


def test_maxpool_with_indices_then_unpool_in_one_run_and_through_a_pipe():
    one_run = output("run", EX / "grid4x4.json", "MaxPool2d(2, return_indices=True)", "MaxUnpool2d(2)")
    expected = [[[0, 0, 0, 0], [0, 6, 0, 8], [3, 0, 0, 0], [0, 0, 0, 4]]]
    assert one_run.tolist() == expected
    pooled = runner.invoke(app, ["pool", "--kernel", "2", str(EX / "grid4x4.json"), "--json"]).stdout
    assert output("unpool", "--kernel", "2", "-", input=pooled).tolist() == expected


def test_unpool_restores_a_5x5_plane_that_pytorch_default_would_not():
    data = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 9], [0, 0, 0, 0, 0]]
    doc = run_json("run", json.dumps(data), "MaxPool2d(2)", "MaxUnpool2d(2)")
    assert doc["output"]["shape"] == [1, 5, 5]


def test_linear_3_to_4_with_set_weights():
    w = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]
    out = output("linear", "[1, 2, 3]", "--out-features", "4", "--weight", json.dumps(w), "--bias", "[0, 0, 0, 1]")
    assert out.tolist() == [1, 2, 3, 7]
    same = output("run", "[1, 2, 3]", f"Linear(3, 4, weight={w}, bias=[0, 0, 0, 1])")
    assert same.tolist() == out.tolist()


def test_four_filter_edge_bank_relu_maxpool_on_the_bundled_image():
    bank = "vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T"
    doc = run_json("run", EX / "street.png", f"Conv2d(1, 4, 4, weight='{bank}', bias=False)", "relu", "maxpool:2",
                   "--intermediates")  # fmt: skip
    assert doc["output"]["shape"] == [4, 30, 30]
    from PIL import Image

    img = torch.from_numpy(np.asarray(Image.open(EX / "street.png").convert("L"), dtype=np.float32) / 255)
    f = torch.tensor([[-1.0, -1, 1, 1]] * 4)
    weight = torch.stack([f, -f, f.T, -f.T]).unsqueeze(1)
    expected = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(img[None, None], weight)), 2)
    np.testing.assert_allclose(np.array(doc["output"]["data"]), expected[0].numpy(), rtol=1e-5, atol=1e-6)
    conv_data = np.array(doc["stages"][0]["data"])
    assert (conv_data[1] == -conv_data[0]).all(), "the negative filter gives the negative map"
