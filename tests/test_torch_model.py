"""``--model``: the model built by torch on its meta device and traced (torch.fx, or forward hooks) — the
zoo's figures against torch's own, the fallbacks, failures shown up to the failing module, parameter
notes, and the static reader against --model on random model files."""

import json
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.engines.torch_model import parse_model_spec, trace_model
from cnnops.errors import CnnopsError, InputError, SpecError
from cnnops.model.trace import trace_shapes
from cnnops.spec.pysource import read_python_source
from cnnops.spec.signatures import LAYERS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "models"))
import model_zoo as zoo  # noqa: E402
import random_models  # noqa: E402

runner = CliRunner()


def sized(spec, shape):
    result = trace_model(spec, shape)
    trace = trace_shapes(shape, result.network)
    if result.error is not None and trace.error is None:
        trace.error = result.error
    return trace


@pytest.mark.parametrize("entry", zoo.params(pytest.mark.slow))
def test_model_gives_torchs_output_shape_parameters_and_macs(entry):
    trace = sized(f"{entry.path}:{entry.build}", entry.shape)
    torch.manual_seed(0)
    shape, params, macs = zoo.reference(zoo.build(entry), entry.shape)
    assert trace.error is None, trace.error
    assert (trace.output_shape, trace.total_params) == (shape, params)
    waiting = [layer for layer in entry.waits_for if layer not in LAYERS]
    measured = [r for r in trace.rows if r.stage.kind == "measured"]
    assert all(r.stage.source == "torch" for r in measured)
    if "Conv3d" in waiting:  # its convolutions are measured rows until the 3-D layers land: no MACs
        assert measured and trace.total_macs < macs
        return
    assert trace.total_macs == macs
    if not waiting:
        assert all(r.stage.name in entry.always_measured for r in measured), [r.stage.call for r in measured]


def test_the_model_is_built_on_the_meta_device_without_allocating_weights(tmp_path):
    huge = tmp_path / "huge.py"
    huge.write_text("import torch.nn as nn\n\n\nclass Huge(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.fc = nn.Linear(200_000, 200_000)\n\n    def forward(self, x):\n        return self.fc(x)\n")
    start = time.perf_counter()
    trace = sized(f"{huge}:Huge", (2, 200_000))  # 40 billion parameters: 160 GB as float32 on the CPU
    assert time.perf_counter() - start < 30
    assert trace.total_params == 200_000 * 200_001 and trace.output_shape == (2, 200_000)


MODELS = '''
import torch
import torch.nn as nn


class Dynamic(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.fc = nn.Linear(width * 6 * 6, 10)
        self.spare = nn.Linear(5, 5)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > -1e9:  # a branch on the data: torch.fx cannot trace it, and the meta device has no data
            x = torch.relu(x)
        return self.fc(x.flatten(1))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(100, 10))

    def forward(self, x):
        return self.head(self.features(x))


class NeedsValues(nn.Module):
    def __init__(self):
        super().__init__()
        widths = torch.tensor([4, 8]).tolist()  # RegNet-style: the constructor computes with real values
        self.conv = nn.Conv2d(3, widths[1], 3)

    def forward(self, x):
        return self.conv(x)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.relu(self.conv(x)))


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.rnn = nn.GRUCell(4, 4)
        self.odd = nn.Bilinear(4, 4, 2)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return self.odd(y, self.rnn(y))
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "models.py"
    path.write_text(MODELS)
    return str(path)


def test_data_dependent_forward_falls_back_to_the_cpu_and_forward_hooks(models):
    trace = sized(f"{models}:Dynamic(width=4)", (1, 3, 8, 8))
    assert trace.error is None and trace.output_shape == (1, 10)
    assert [r.label for r in trace.rows if r.label] == ["conv", "fc"]
    assert any(note.startswith("ran on the CPU") for note in trace.notes)
    assert any("forward hooks" in note for note in trace.notes)
    assert any(note.startswith("30 of the model's 1,592 parameters are in no row: spare") for note in trace.notes)
    measured = [r for r in trace.rows if r.stage.kind == "measured"]
    assert [r.stage.call for r in measured] == ["forward() code"]  # the flatten between the layers


def test_a_constructor_that_needs_values_is_built_on_the_cpu(models):
    trace = sized(f"{models}:NeedsValues", (1, 3, 8, 8))
    assert trace.output_shape == (1, 8, 6, 6)
    assert trace.notes[0].startswith("built on the CPU: on the meta device its constructor fails")


def test_a_failing_forward_shows_the_rows_before_the_module_that_fails(models):
    result = runner.invoke(app, ["shape", "1x3x8x8", "--model", f"{models}:Broken"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "features.0 = Conv2d(3, 8, 3)" in result.stdout and "head.0 = Flatten" in result.stdout
    assert result.stderr.strip() == ("Error: stage 4 head.1: torch fails in head.1 (Linear): mat1 and mat2 shapes "
                                     "cannot be multiplied (1x288 and 100x10)")  # fmt: skip
    as_json = runner.invoke(app, ["shape", "1x3x8x8", "--model", f"{models}:Broken", "--json"])
    assert as_json.exit_code == 1 and as_json.stdout == ""


def test_a_module_called_twice_counts_its_parameters_once(models):
    trace = sized(f"{models}:Shared", (1, 4, 5, 5))
    assert [r.shares for r in trace.rows] == [None, None, 1]
    assert trace.total_params == 148


def test_layers_cnnops_lacks_keep_torchs_shapes_and_parameters_marked(models):
    trace = sized(f"{models}:Unknown", (2, 3, 6, 6))
    measured = {r.stage.name: r for r in trace.rows if r.stage.kind == "measured"}
    assert set(measured) >= {"GRUCell", "Bilinear"}
    assert measured["Bilinear"].params == 4 * 4 * 2 + 2 and measured["Bilinear"].output_shape == (2, 2)
    assert len(measured["Bilinear"].inputs) == 2
    assert trace.total_params == sum(p.numel() for p in torch.nn.Conv2d(3, 4, 3).parameters()) + 3 * 4 * 4 * 2 + 2 * 3 * 4 + 34
    assert measured["GRUCell"].as_dict()["measured_by"] == "torch"


@pytest.mark.parametrize("spec, message", [
    ("resnet18", "write MODULE:NAME or FILE.py:NAME"),
    ("x.py:Net(width=len('ab'))", "must be Python literals"),
    ("nowhere/net.py:Net", "model file 'nowhere/net.py' does not exist"),
    ("json:Missing", "json has no 'Missing'"),
    ("no_such_module_here:Net", "cannot import no_such_module_here: ModuleNotFoundError"),
    ("json:dumps({})", "not a torch.nn.Module"),
])
def test_model_spec_errors_say_what_to_write(spec, message):
    with pytest.raises(CnnopsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        trace_model(spec, (1, 3, 8, 8))


def test_model_spec_arguments_are_literals_never_evaluated():
    assert parse_model_spec("pkg.mod:factory(3, width=32, sizes=(1, 2))") == ("pkg.mod", "factory", [3],
                                                                              {"width": 32, "sizes": (1, 2)})
    assert parse_model_spec("path/to/net.py:Net")[:2] == ("path/to/net.py", "Net")
    with pytest.raises(SpecError):
        parse_model_spec("m:f(__import__('os'))")
    assert InputError  # the import of a model's file is the only code run, and only with --model


def test_cli_model_with_a_file_or_stages_or_without_a_shape_is_a_usage_error(models):
    assert runner.invoke(app, ["shape", "1x3x8x8", "--model", f"{models}:Shared", "-f", models]).exit_code == 2
    assert runner.invoke(app, ["shape", "1x3x8x8", "ReLU", "--model", f"{models}:Shared"]).exit_code == 2
    assert runner.invoke(app, ["shape", "--model", f"{models}:Shared"]).exit_code == 2


def test_cli_model_json_is_the_same_document(models):
    result = runner.invoke(app, ["shape", "1x4x5x5", "--model", f"{models}:Shared", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["total_params"] == 148 and doc["stages"][2]["shares_params_of"] == 1
    assert [s.get("label") for s in doc["stages"]] == ["conv", None, "conv#2"]


@settings(derandomize=True, deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow,
                                                                                    HealthCheck.function_scoped_fixture])
@given(random_models.model_files())
def test_static_reader_and_model_agree_on_random_model_files(tmp_path, case):
    text, shape = case
    path = tmp_path / "net.py"
    path.write_text(text)
    static = trace_shapes(shape, read_python_source(text, str(path), shape))
    model = sized(f"{path}:Net", shape)
    assert (static.error is None) == (model.error is None), (static.error, model.error, text)
    if static.error is None:
        assert (static.output_shape, static.total_params, static.total_macs) == (
            model.output_shape, model.total_params, model.total_macs), text
        assert [r.output_shape for r in static.rows if r.stage.kind in ("conv", "pool", "linear")] == [
            r.output_shape for r in model.rows if r.stage.kind in ("conv", "pool", "linear")], text
