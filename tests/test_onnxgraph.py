"""ONNX graphs: the zoo exported by torch (``torch.onnx.export(…, dynamo=False)``) gives torch's figures when
read without torch; padding forms, constant folding, BatchNorm folded by the exporter, measured and
refused operators, the input shape from the file, the command line."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.errors import InputError, SpecError
from cnnops.model.trace import trace_shapes
from cnnops.spec.onnxgraph import read_onnx_file, read_onnx_model
from cnnops.spec.signatures import LAYERS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "models"))
import model_zoo as zoo  # noqa: E402

runner = CliRunner()


def export(model, shape, path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(shape), str(path), dynamo=False, **options)
    return str(path)


def learned_batchnorms(model):
    """BatchNorm scales and shifts of their own (default ones are all equal, and the exporter merges equal
    initializers); a trained model has them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Zoo models exported on first use, with their BatchNorm layers kept (TrainingMode.PRESERVE), and torch's
    figures for each."""
    folder = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(name):
        if name not in cache:
            entry = next(e for e in zoo.ZOO if e.name == name)
            torch.manual_seed(0)
            model = learned_batchnorms(zoo.build(entry))
            path = export(model, entry.shape, folder / f"{name}.onnx", training=torch.onnx.TrainingMode.PRESERVE)
            cache[name] = (path, zoo.reference(model, entry.shape))
        return cache[name]

    return get


@pytest.mark.parametrize("entry", zoo.params(pytest.mark.slow))
def test_onnx_export_gives_torchs_output_shape_parameters_and_macs(entry, exported):
    path, (shape, params, macs) = exported(entry.name)
    network, input_shape = read_onnx_file(path)
    trace = trace_shapes(input_shape, network)
    assert input_shape == entry.shape and trace.error is None
    assert (trace.output_shape, trace.total_params) == (shape, params)
    waiting = [layer for layer in entry.waits_for if layer not in LAYERS]
    measured = [r for r in trace.rows if r.stage.kind == "measured"]
    if "Conv3d" in waiting:  # its convolutions are measured rows until the 3-D layers land: no MACs
        assert measured and trace.total_macs < macs
        return
    assert trace.total_macs == macs
    unexplained = [r.stage.name for r in measured if r.stage.name not in entry.always_measured]
    assert bool(measured) >= bool(waiting) and (waiting or not unexplained), unexplained


def test_onnx_is_read_without_torch(exported):
    path = exported("resnet18")[0]
    code = ("import sys, json; from typer.testing import CliRunner; from cnnops.cli import app; "
            f"r = CliRunner().invoke(app, ['shape', {path!r}, '--json']); assert r.exit_code == 0, r.output; "
            "doc = json.loads(r.stdout); print(doc['total_params'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(exported("resnet18")[1][1]), "False"]


def test_node_names_become_module_labels(exported):
    network, _ = read_onnx_file(exported("resnet18")[0])
    labels = [n.label for n in network.nodes]
    assert labels[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert "layer2.0.downsample.0" in labels


def test_batchnorm_folded_by_the_exporter_is_counted_as_the_file_holds_it_with_a_note(tmp_path):
    model = learned_batchnorms(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8),
                                                   torch.nn.ReLU())).eval()  # fmt: skip
    network, shape = read_onnx_file(export(model, (1, 3, 8, 8), tmp_path / "folded.onnx"))
    trace = trace_shapes(shape, network)
    assert [r.stage.call for r in trace.rows] == ["Conv2d(3, 8, 3)", "ReLU()"]
    assert trace.total_params == 3 * 8 * 9 + 8  # the folded bias; torch's model has 216 + 16
    assert any("BatchNorm folded into its convolution" in note for note in trace.notes)


def test_a_module_used_twice_shares_its_initializers(tmp_path):
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(torch.relu(self.conv(x)))

    network, shape = read_onnx_file(export(Twice().eval(), (1, 4, 6, 6), tmp_path / "twice.onnx"))
    trace = trace_shapes(shape, network)
    assert [r.shares for r in trace.rows] == [None, None, 1]
    assert trace.total_params == sum(p.numel() for p in Twice().parameters())


@pytest.mark.parametrize("layers", [
    [torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4)],  # InstanceNormalization with Constant ones and zeros
    [torch.nn.LayerNorm(6, bias=False)],  # LayerNormalization with a Constant zero bias
    [torch.nn.GroupNorm(1, 3, affine=False), torch.nn.Conv2d(3, 2, 1)],
], ids=["groupnorm", "layernorm-no-bias", "groupnorm-no-affine"])  # fmt: skip
def test_constants_the_exporter_writes_as_constant_nodes_are_not_parameters(layers, tmp_path):
    model = torch.nn.Sequential(*layers).eval()
    network, shape = read_onnx_file(export(model, (2, 3, 6, 6), tmp_path / "net.onnx"))
    trace = trace_shapes(shape, network)
    assert trace.output_shape == tuple(model(torch.zeros(2, 3, 6, 6)).shape)
    assert trace.total_params == sum(p.numel() for p in model.parameters())


# --- hand-made graphs ------------------------------------------------------------------------------
def graph(nodes, input_dims, output_dims, initializers=(), opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_dims)], list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def weight(name, dims):
    count = 1
    for d in dims:
        count *= d
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.1] * count)


def test_asymmetric_padding_is_measured_until_the_padding_layers_land_then_two_stages():
    model = graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 0, 1, 1], kernel_shape=[2, 2])],
                  [1, 1, 5, 5], [1, 1, 5, 5], [weight("w", [1, 1, 2, 2])])  # fmt: skip
    network, shape = read_onnx_model(model, "asym.onnx")
    trace = trace_shapes(shape, network)
    assert trace.output_shape == tuple(torch.nn.functional.conv2d(torch.nn.functional.pad(
        torch.zeros(1, 1, 5, 5), (0, 1, 0, 1)), torch.zeros(1, 1, 2, 2)).shape)  # fmt: skip
    assert trace.total_params == 4
    if "ConstantPad2d" not in LAYERS:
        assert [r.stage.kind for r in trace.rows] == ["measured"]
        assert "asymmetric (0 before, 1 after, 0 before, 1 after)" in trace.notes[0]


@pytest.mark.parametrize("auto_pad, size, stride, kernel", [("SAME_UPPER", 7, 1, 3), ("SAME_LOWER", 9, 1, 5),
                                                            ("VALID", 8, 2, 3), ("SAME_UPPER", 8, 2, 3)])
def test_auto_pad_gives_onnx_output_sizes(auto_pad, size, stride, kernel):
    import math

    expected = math.ceil(size / stride) if auto_pad.startswith("SAME") else (size - kernel) // stride + 1
    model = graph([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[stride, stride],
                                    kernel_shape=[kernel, kernel])],
                  [1, 2, size, size], [1, 3, expected, expected], [weight("w", [3, 2, kernel, kernel])])  # fmt: skip
    network, shape = read_onnx_model(model, "auto.onnx")
    trace = trace_shapes(shape, network)
    assert trace.output_shape == (1, 3, expected, expected)


def test_an_operator_without_a_static_shape_is_refused_by_name_op_and_position(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first"),
             helper.make_node("Frobnicate", ["r"], ["y"], name="mystery", domain="com.example")]
    model = graph(nodes, [1, 3, 4, 4], [1, 3, 4, 4])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(SpecError) as caught:
        read_onnx_model(model, "m.onnx")
    assert str(caught.value).startswith("m.onnx: node 2 'mystery' (Frobnicate): cnnops has no stage for Frobnicate")
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    result = runner.invoke(app, ["shape", str(path), "--json"])
    assert result.exit_code == 1 and result.stdout == "" and "node 2 'mystery'" in result.stderr


def test_an_operator_shape_inference_knows_is_measured_and_its_initializers_counted():
    nodes = [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["n"], name="norm"),
             helper.make_node("Relu", ["n"], ["y"])]
    model = graph(nodes, [2, 3, 4, 4], [2, 3, 4, 4], [weight("s", [3]), weight("b", [3])])
    network, shape = read_onnx_model(model, "m.onnx")
    trace = trace_shapes(shape, network)
    if "InstanceNorm2d" not in LAYERS:
        assert trace.rows[0].stage.kind == "measured" and trace.rows[0].params == 6
        assert trace.rows[0].as_dict()["measured_by"] == "ONNX shape inference"
    assert trace.output_shape == (2, 3, 4, 4) and trace.total_params == 6


def test_reshape_from_a_shape_subgraph_is_folded():
    """``x.view(x.size(0), -1)`` exported with a dynamic batch: Shape → Gather → Unsqueeze → Concat → Reshape."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT64, [], [0])),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("a", TensorProto.INT64, [1], [0])),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Constant", [], ["m1"], value=helper.make_tensor("m", TensorProto.INT64, [1], [-1])),
             helper.make_node("Concat", ["n1", "m1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    model = graph(nodes, ["batch", 3, 4, 4], ["batch", 48])
    with pytest.raises(InputError, match="symbolic dimension 'batch' — give the input shape, e.g. cnnops shape 1x3x4x4"):
        read_onnx_model(model, "m.onnx")
    network, shape = read_onnx_model(model, "m.onnx", (5, 3, 4, 4))
    trace = trace_shapes(shape, network)
    assert [r.stage.call for r in trace.rows] == ["Reshape(5, -1)"] and trace.output_shape == (5, 48)


def test_matmul_and_bias_add_become_one_linear():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    model = graph(nodes, [2, 7, 8], [2, 7, 5], [weight("w", [8, 5]), weight("b", [5])])
    network, shape = read_onnx_model(model, "m.onnx")
    trace = trace_shapes(shape, network)
    assert [r.stage.call for r in trace.rows] == ["Linear(8, 5)"] and trace.total_params == 45
    assert trace.total_macs == 2 * 7 * 8 * 5


def test_average_pool_keeps_onnxs_count_include_pad_default_and_ceil_mode():
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            ceil_mode=1)
    network, shape = read_onnx_model(graph([node], [1, 1, 6, 6], [1, 1, 4, 4]), "m.onnx")
    trace = trace_shapes(shape, network)
    stage = trace.rows[0].stage
    assert (stage.count_include_pad, stage.ceil_mode) == (False, True)
    expected = torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)(torch.zeros(1, 1, 6, 6)).shape
    assert trace.output_shape == tuple(expected)


# --- the command line ----------------------------------------------------------------------------
def test_cli_takes_the_shape_from_the_file_or_the_command_line():
    example = str(ROOT / "examples" / "tiny.onnx")
    result = runner.invoke(app, ["shape", example, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["input_shape"] == [1, 1, 28, 28] and doc["output_shape"] == [1, 10] and doc["total_params"] == 1418
    bigger = json.loads(runner.invoke(app, ["shape", "4x1x64x64", "-f", example, "--json"]).stdout)
    assert bigger["input_shape"] == [4, 1, 64, 64] and bigger["output_shape"] == [4, 10]
    wrong_rank = runner.invoke(app, ["shape", "1x28x28", example])
    assert wrong_rank.exit_code == 1 and "is 4-D" in wrong_rank.stderr


def test_the_example_file_is_what_its_script_writes():
    sys.path.insert(0, str(ROOT / "examples"))
    import make_tiny_onnx

    assert (ROOT / "examples" / "tiny.onnx").read_bytes() == make_tiny_onnx.tiny_model().SerializeToString()


def test_cli_refuses_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    result = runner.invoke(app, ["shape", "-f", str(bad)])
    assert result.exit_code == 1 and "is not an ONNX model" in result.stderr
    missing = runner.invoke(app, ["shape", "-f", str(tmp_path / "none.onnx")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert onnx  # the package is a dependency
