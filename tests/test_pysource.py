"""Python source read statically: the zoo and the tutorial fixtures against torch itself, refusals at
file:line, the command line, and random model files written by hypothesis.

torch is the oracle: each model file is also imported and run by torch (output shape, ``sum(p.numel())``,
MACs counted by forward hooks); the reader itself never imports torch (checked in a subprocess).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.errors import SpecError
from cnnops.model.trace import trace_shapes
from cnnops.spec.pysource import read_python_source
from cnnops.spec.signatures import LAYERS

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "models"
sys.path.insert(0, str(MODELS))
import model_zoo as zoo  # noqa: E402
import random_models  # noqa: E402

runner = CliRunner()


def read(path, shape, build=None):
    text = Path(path).read_text()
    network = read_python_source(text, str(path), shape, build)
    return trace_shapes(shape, network)


def static_build(entry):
    """What --class gets: the class name alone when the file picks it by default."""
    return None if entry.name in ("resnet18", "my_conv_net", "cifar_net", "lenet5", "unet") else entry.build


@pytest.mark.parametrize("entry", zoo.ZOO, ids=[e.name for e in zoo.ZOO])
def test_static_reader_gives_torchs_output_shape_parameters_and_macs(entry):
    waiting = [layer for layer in entry.waits_for if layer not in LAYERS]
    if waiting or entry.refused:
        with pytest.raises(SpecError) as caught:
            read(entry.path, entry.shape, static_build(entry))
        message = str(caught.value)
        assert message.startswith(f"{entry.path}:"), message
        assert f"--model {entry.path}:" in caught.value.worded(lambda n, v: f"--{n} {v}")
        assert any(layer in message for layer in waiting) or (entry.refused and entry.refused in message), message
        return
    trace = read(entry.path, entry.shape, static_build(entry))
    assert trace.error is None, trace.error
    torch.manual_seed(0)
    assert (trace.output_shape, trace.total_params, trace.total_macs) == zoo.reference(zoo.build(entry), entry.shape)


def test_cifar_tutorial_net_reuses_one_pool_and_shows_both_calls():
    trace = read(MODELS / "cifar_net.py", (4, 3, 32, 32))
    labels = [row.label for row in trace.rows]
    assert labels[:7] == ["conv1", None, "pool", "conv2", None, "pool#2", None]
    assert trace.output_shape == (4, 10) and trace.total_params == 62006


def test_my_conv_net_linear_written_as_32_times_4_times_4():
    trace = read(MODELS / "my_conv_net.py", (1, 1, 28, 28))
    assert [r.stage.call for r in trace.rows][-2:] == ["view(1, -1)", "Linear(512, 10)"]
    assert trace.rows[-2].output_shape == (1, 512)


def test_resnet18_downsample_none_and_block_class_from_the_same_file():
    trace = read(MODELS / "resnet18.py", (1, 3, 224, 224))
    assert trace.error is None and trace.output_shape == (1, 1000)
    assert trace.total_params == 11_689_512
    labels = [r.label for r in trace.rows if r.label]
    assert "layer2.0.downsample.0" in labels and "layer1.0.downsample.0" not in labels
    merges = [r for r in trace.rows if r.stage.kind == "merge"]
    assert len(merges) == 8 and all(len(r.inputs) == 2 for r in merges)


def test_unet_skips_are_concatenations_of_earlier_outputs():
    trace = read(MODELS / "unet.py", (1, 3, 64, 64))
    cats = [r for r in trace.rows if r.stage.name == "Cat"]
    assert [r.input_shapes for r in cats] == [((1, 64, 16, 16), (1, 64, 16, 16)), ((1, 32, 32, 32), (1, 32, 32, 32)),
                                              ((1, 16, 64, 64), (1, 16, 64, 64))]  # fmt: skip


# --- the subset and its refusals -----------------------------------------------------------------
def source(forward: str, init: str = "self.conv = nn.Conv2d(3, 8, 3, padding=1)", extra: str = "") -> str:
    """A model file: ``init`` lines for __init__ and ``forward`` lines for forward(), each joined by newlines."""
    return ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + extra +
            "\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n" +
            textwrap.indent(init, " " * 8) + "\n\n    def forward(self, x):\n" + textwrap.indent(forward, " " * 8) + "\n")


def network_of(text, shape=(1, 3, 8, 8), build=None):
    return trace_shapes(shape, read_python_source(text, "net.py", shape, build))


def torch_figures(text, shape=(1, 3, 8, 8), build="Net()"):
    namespace: dict = {}
    exec(compile(text, "net.py", "exec"), namespace)
    return zoo.reference(eval(build, namespace).eval(), shape)


@pytest.mark.parametrize("forward, construct", [
    ("if x.sum() > 0:\n    x = self.conv(x)\nreturn x", "x.sum() > 0"),
    ("for row in x:\n    pass\nreturn x", "iterating over the tensor"),
    ("return self.conv(x).numpy()", "numpy"),
    ("return torch.matmul(x, x)", "matrices"),
    ("y = self.conv(x)\nreturn y, x", "one output"),
    ("return x[x > 0]", "compares tensor values"),
    ("while x.mean() > 1:\n    x = x / 2\nreturn x", "data"),
])
def test_data_dependent_or_unknown_code_is_refused_at_its_line(forward, construct):
    text = source(forward)
    with pytest.raises(SpecError) as caught:
        network_of(text)
    message = str(caught.value)
    assert message.startswith("net.py:") and construct in message, message
    line = int(message.split(":")[1])
    assert text.splitlines()[line - 1].strip(), "the line named holds the code"


def test_a_layer_cnnops_lacks_is_refused_where_forward_calls_it_and_noted_when_unused():
    missing = next(name for name in ("RNNCell", "Bilinear", "Fold") if name not in LAYERS)
    with pytest.raises(SpecError, match=rf"net\.py:\d+: .*nn\.{missing} .*not support"):
        network_of(source("return self.odd(x)", f"self.odd = nn.{missing}(3, 3)"))
    trace = network_of(source("return self.conv(x)", f"self.conv = nn.Conv2d(3, 8, 3)\nself.odd = nn.{missing}(3, 3)"))
    assert trace.error is None and any("cannot count its parameters" in n for n in trace.notes)


def test_an_unused_layer_is_noted_with_its_parameters():
    trace = network_of(source("return self.conv(x)", "self.conv = nn.Conv2d(3, 8, 3)\nself.fc = nn.Linear(10, 2)"))
    assert trace.notes == ["fc = Linear(10, 2) (line 10) is never called by forward(): its 22 parameters are not in the "
                           "table"]  # fmt: skip


def test_a_layer_called_twice_counts_its_parameters_once():
    text = source("x = self.conv(x)\nreturn self.conv(x)", "self.conv = nn.Conv2d(3, 3, 3, padding=1)")
    trace = network_of(text)
    assert [r.shares for r in trace.rows] == [None, 1] and trace.total_params == 84
    assert (trace.output_shape, trace.total_params, trace.total_macs) == torch_figures(text)


def test_no_implicit_flatten_or_rank_rule_for_code_a_missing_flatten_fails_as_in_torch():
    text = source("return self.fc(self.conv(x))", "self.conv = nn.Conv2d(3, 2, 3)\nself.fc = nn.Linear(72, 10)")
    trace = network_of(text)
    assert trace.error is not None and "in_features=72, got 6" in str(trace.error)
    with pytest.raises(RuntimeError):
        torch_figures(text)
    two_d = network_of(source("return self.conv(x)"), shape=(8, 8))
    assert two_d.error is not None and "expects a 3-D or 4-D input" in str(two_d.error)


def test_in_place_add_cannot_grow_its_target_as_in_torch():
    text = source("y = self.conv(x)\ny += x.mean((1, 2, 3), keepdim=True) + torch.zeros(1)\nreturn y")
    with pytest.raises(SpecError, match="torch.zeros"):
        network_of(text)
    grow = source("s = x.mean((2, 3), keepdim=True)\ns += x\nreturn s")
    trace = network_of(grow)
    assert trace.error is not None and "in-place" in str(trace.error)
    with pytest.raises(RuntimeError):
        torch_figures(grow)


def test_view_of_a_transposed_tensor_is_refused_but_reshape_and_contiguous_work():
    with pytest.raises(SpecError, match=r"net\.py:12: .*\.view of a transposed"):
        network_of(source("return x.transpose(1, 2).view(1, -1)"))
    for forward in ("return x.transpose(1, 2).reshape(1, -1)", "return x.transpose(1, 2).contiguous().view(1, -1)"):
        text = source(forward)
        assert network_of(text).output_shape == torch_figures(text)[0]


def test_constructor_arguments_with_class_and_a_missing_default():
    text = source("return self.conv(x)", "self.conv = nn.Conv2d(3, width, 3)").replace(
        "def __init__(self):", "def __init__(self, width):")
    with pytest.raises(SpecError) as caught:
        network_of(text)
    assert "Net() needs a value for width" in str(caught.value) and "class='Net(width=…)'" in str(caught.value)
    assert network_of(text, build="Net(width=5)").output_shape == (1, 5, 6, 6)


def test_the_reader_never_imports_torch():
    code = ("import sys; from cnnops.spec.pysource import read_python_source; from pathlib import Path; "
            "read_python_source(Path('tests/models/resnet18.py').read_text(), 'r.py', (1, 3, 64, 64)); "
            "from typer.testing import CliRunner; from cnnops.cli import app; "
            "r = CliRunner().invoke(app, ['shape', '1x3x32x32', '-f', 'tests/models/cifar_net.py']); "
            "assert r.exit_code == 0, r.output; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- the command line ----------------------------------------------------------------------------
def test_cli_sizes_a_python_file_with_the_same_tables_and_json():
    result = runner.invoke(app, ["shape", "4x3x32x32", "-f", str(MODELS / "cifar_net.py")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("conv1 = Conv2d(3, 6, 5)", "pool#2 = MaxPool2d(2, stride=2)", "62,006", "⌊26/2⌋ + 1 = 14"):
        assert text in result.stdout, text
    doc = json.loads(runner.invoke(app, ["shape", "4x3x32x32", "-f", str(MODELS / "cifar_net.py"), "--json"]).stdout)
    assert doc["output_shape"] == [4, 10] and doc["total_params"] == 62006
    assert doc["stages"][0]["label"] == "conv1"


def test_cli_reads_python_from_stdin_and_chooses_a_class():
    text = (MODELS / "resnet50.py").read_text()
    result = runner.invoke(app, ["shape", "1x3x64x64", "-f", "-", "--class", "resnet50()", "--json"], input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 25_557_032
    several = runner.invoke(app, ["shape", "1x3x64x64", "-f", "-"], input=text)
    assert several.exit_code == 1
    assert "several models (Bottleneck, ResNet)" in several.stderr and "--class NAME" in several.stderr


def test_cli_refusal_names_file_line_and_suggests_model():
    result = runner.invoke(app, ["shape", "1x3x8x8", "-f", str(MODELS / "video3d.py")])
    if "Conv3d" in LAYERS:
        pytest.skip("the 3-D layers have landed")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {MODELS / 'video3d.py'}:")
    assert f"--model {MODELS / 'video3d.py'}:VideoNet" in result.stderr


def test_cli_python_file_with_stages_or_without_shape_is_a_usage_error():
    path = str(MODELS / "cifar_net.py")
    assert runner.invoke(app, ["shape", "1x3x32x32", "ReLU", "-f", path]).exit_code == 2
    no_shape = runner.invoke(app, ["shape", "-f", path])
    assert no_shape.exit_code == 1 and "give the input shape" in no_shape.stderr


# --- random model files --------------------------------------------------------------------------
@settings(derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(random_models.model_files())
def test_random_model_files_read_statically_agree_with_torch(case):
    text, shape = case
    try:
        expected = torch_figures(text, shape)
    except RuntimeError:
        expected = None
    trace = network_of(text, shape)
    if expected is None:
        assert trace.error is not None, f"torch refuses this model but cnnops sized it:\n{text}"
        return
    assert trace.error is None, f"{trace.error}\n{text}"
    assert (trace.output_shape, trace.total_params, trace.total_macs) == expected, text
