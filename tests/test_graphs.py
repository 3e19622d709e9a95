"""Networks with branches — residual adds, concatenations, products — against torch itself.

Each building block is written twice: once in cnnops' stage syntax, once as a plain ``torch.nn.Module``
whose layers are built in the same order (so ``torch.manual_seed`` gives both the same default weights).
Shapes, parameters, MACs (counted by forward hooks) and values on both engines must agree.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs
from torch import nn

import cnnops
from cnnops.errors import LayerError, SpecError
from cnnops.spec import parse_stage_file, parse_stages


def hook_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs by forward hooks: conv = output elements × in/groups × kernel area; linear = rows × in × out."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d | nn.Conv1d):
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.ConvTranspose2d):
            total += inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += math.prod(inputs[0].shape[:-1]) * module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


class BasicBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.bn3 = nn.BatchNorm2d(16)

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.bn3(self.down(x)))


BASIC = ["Conv2d(8, 16, 3, stride=2, padding=1, bias=False)", "bn", "relu", "Conv2d(16, 16, 3, padding=1, bias=False)",
         "y=bn", "Conv2d(8, 16, 1, stride=2, bias=False)(@input)", "bn", "Add(@y)", "relu"]  # fmt: skip


class Bottleneck(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(16, 4, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.c = nn.Conv2d(4, 32, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.downsample = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))

    def forward(self, x):
        y = torch.relu(self.bn2(self.b(torch.relu(self.bn1(self.a(x))))))
        return torch.relu(self.bn3(self.c(y)) + self.downsample(x))


BOTTLENECK = ["Conv2d(16, 4, 1, bias=False)", "bn", "relu", "Conv2d(4, 4, 3, stride=2, padding=1, bias=False)", "bn",
              "relu", "Conv2d(4, 32, 1, bias=False)", "y=bn", "Conv2d(16, 32, 1, stride=2, bias=False)(@input)",
              "BatchNorm2d(32)", "Add(@y)", "relu"]  # fmt: skip


class DenseBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Conv2d(6, 4, 3, padding=1)
        self.l2 = nn.Conv2d(10, 4, 3, padding=1)

    def forward(self, x):
        a = torch.cat([x, self.l1(torch.relu(x))], 1)
        return torch.cat([a, self.l2(torch.relu(a))], 1)


DENSE = ["relu", "f1=Conv2d(6, 4, 3, padding=1)", "a=Cat(@input, @f1)", "relu", "f2=Conv2d(10, 4, 3, padding=1)",
         "Cat(@a, @f2)"]  # fmt: skip


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(3, 4, 1)
        self.b2a = nn.Conv2d(3, 2, 1)
        self.b2b = nn.Conv2d(2, 4, 3, padding=1)
        self.b3a = nn.Conv2d(3, 2, 1)
        self.b3b = nn.Conv2d(2, 4, 5, padding=2)
        self.b4 = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        b4 = self.b4(nn.functional.max_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.b1(x), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)), b4], 1)


INCEPTION = ["b1=Conv2d(3, 4, 1)", "Conv2d(3, 2, 1)(@input)", "b2=Conv2d(2, 4, 3, padding=1)",
             "Conv2d(3, 2, 1)(@input)", "b3=Conv2d(2, 4, 5, padding=2)",
             "MaxPool2d(3, stride=1, padding=1)(@input)", "b4=Conv2d(3, 4, 1)", "Cat(@b1, @b2, @b3, @b4)"]  # fmt: skip


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)))))
        return x * s


SE = ["AdaptiveAvgPool2d(1)", "Conv2d(8, 2, 1)", "relu", "Conv2d(2, 8, 1)", "Sigmoid", "Mul(@input)"]


class InvertedResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(4, 12, 1, bias=False)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False)
        self.project = nn.Conv2d(12, 4, 1, bias=False)

    def forward(self, x):
        return x + self.project(nn.functional.relu6(self.dw(nn.functional.relu6(self.expand(x)))))


INVERTED = ["Conv2d(4, 12, 1, bias=False)", "ReLU6", "Conv2d(12, 12, 3, padding=1, groups=12, bias=False)", "ReLU6",
            "Conv2d(12, 4, 1, bias=False)", "Add(@input)"]  # fmt: skip


class UNetLevel(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(2, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        skip = torch.relu(self.enc(x))
        y = self.up(torch.relu(self.down(nn.functional.max_pool2d(skip, 2))))
        return self.dec(torch.cat([y, skip], 1))


UNET = ["Conv2d(2, 4, 3, padding=1)", "skip=ReLU", "MaxPool2d(2)", "Conv2d(4, 8, 3, padding=1)", "ReLU",
        "ConvTranspose2d(8, 4, 2, stride=2)", "Cat(@skip)", "Conv2d(8, 4, 3, padding=1)"]  # fmt: skip

BLOCKS = [
    ("resnet basic block with downsample", BasicBlock, BASIC, (2, 8, 8, 8)),
    ("resnet bottleneck with downsample", Bottleneck, BOTTLENECK, (2, 16, 6, 6)),
    ("densenet dense block", DenseBlock, DENSE, (1, 6, 5, 5)),
    ("inception module", Inception, INCEPTION, (1, 3, 7, 7)),
    ("squeeze-and-excitation", SqueezeExcite, SE, (2, 8, 5, 5)),
    ("mobilenet inverted residual", InvertedResidual, INVERTED, (1, 4, 6, 6)),
    ("u-net level", UNetLevel, UNET, (1, 2, 8, 8)),
]


@pytest.mark.parametrize(("name", "module", "texts", "shape"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_block_shapes_params_and_macs_equal_torch(name, module, texts, shape):
    torch.manual_seed(0)
    model = module().eval()
    x = torch.zeros(shape)
    with torch.no_grad():
        expected = tuple(model(x).shape)
    trace = cnnops.trace_shapes(shape, texts)
    assert trace.output_shape == expected
    assert trace.total_params == sum(p.numel() for p in model.parameters())
    assert trace.total_macs == hook_macs(model, x)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("name", "module", "texts", "shape"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_block_values_equal_torch_on_both_engines(name, module, texts, shape, engine):
    data = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    model = module().eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(data)).numpy()
    result = cnnops.run_stages(data, texts, engine=engine, seed=0)
    np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-5)


def test_merges_broadcast_and_concatenate_as_torch():
    a, b = torch.zeros(2, 3, 1, 5), torch.zeros(3, 4, 1)
    net = parse_stages(["x=Identity", "y=AdaptiveAvgPool2d((4, 1))", "Mul(@input, @y)"])
    trace = cnnops.trace_shapes((2, 3, 1, 5), net)
    assert trace.output_shape == tuple((a * torch.zeros(2, 3, 4, 1)).shape)
    assert cnnops.trace_shapes((2, 3, 1, 5), ["Cat(@input, @input, dim=-1)"]).output_shape == (2, 3, 1, 10)
    assert b.shape == (3, 4, 1)


@pytest.mark.parametrize(("texts", "message"), [
    (["Conv2d(3, 8, 3)", "Add(@input)"],
     "cannot add stage 1's output (1, 8, 6, 6) and the network input (1, 3, 8, 8): sizes 8 and 3 at dimension 1"),
    (["Conv2d(3, 8, 3)", "Cat(@input)"],
     "cannot concatenate stage 1's output (1, 8, 6, 6) and the network input (1, 3, 8, 8) on dim 1: every other "
     "dimension must match, but dimension 2 is 6 and 8"),
    (["Flatten", "Cat(@input, @1)"], "torch.cat needs inputs of the same rank (4-D and 2-D)"),
])  # fmt: skip
def test_mismatched_merges_are_refused_as_torch_refuses_them(texts, message):
    with pytest.raises(LayerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cnnops.trace_shapes((1, 3, 8, 8), texts)
    torch_inputs = [torch.zeros(1, 8, 6, 6), torch.zeros(1, 3, 8, 8)]
    with pytest.raises(RuntimeError):
        torch.cat(torch_inputs, 1)
    with pytest.raises(RuntimeError):
        torch_inputs[0] + torch_inputs[1]


@pytest.mark.parametrize(("texts", "message"), [
    (["ReLU", "Add(@x)"], "no earlier stage is labelled 'x'"),
    (["ReLU", "Add(@2)"], "@2 is not an earlier stage"),
    (["x=ReLU", "x=ReLU"], "the label 'x' already labels stage 1"),
    (["ReLU", "ReLU()(@input, @1)"], "a layer reads one output"),
    (["Add(3)"], "Add takes outputs to merge as @references"),
    (["MaxPool2d(@input)"], "an @reference goes after a layer"),
])  # fmt: skip
def test_reference_mistakes_name_the_stage_and_the_fix(texts, message):
    with pytest.raises(SpecError, match=message):
        cnnops.trace_shapes((1, 3, 8, 8), texts)


@pytest.mark.parametrize("text", ["Conv2d(1, 1, 3, weight='a@b.json')", 'Conv2d(1, 1, 3, weight="w@2.npy")',
                                  "Conv2d(1, 1, 3, weight='''x@y.json''')"])  # fmt: skip
def test_an_at_sign_inside_a_string_is_not_a_reference(text):
    """A path with an '@' stays that path (it was rewritten to the parser's internal reference name), and
    an @reference after the call still reads the stage it names."""
    path = text.split("weight=")[1].strip("()'\"")
    network = parse_stages(["ReLU", "ReLU", f"{text}(@1)"])
    assert network.data[2].weight == path
    assert network.resolve()[2] == (1,)


def test_json_stages_carry_inputs_and_labels_only_for_graphs():
    chain = cnnops.trace_shapes((1, 3, 8, 8), ["ReLU", "MaxPool2d(2)"]).as_dict()
    assert "inputs" not in chain["stages"][0]
    graph = cnnops.trace_shapes((1, 3, 8, 8), ["a=ReLU", "MaxPool2d(2)", "Conv2d(3, 3, 2, stride=2)(@a)", "Add(@2)"])
    stages = graph.as_dict()["stages"]
    assert [s["inputs"] for s in stages] == [[0], [1], [1], [3, 2]]
    assert stages[0]["label"] == "a" and "label" not in stages[1]


def test_receptive_field_is_the_largest_over_paths_and_a_misaligned_skip_is_noted():
    trace = cnnops.trace_shapes((1, 1, 16, 16), ["a=Conv2d(1, 1, 5, padding=2)", "Conv2d(1, 1, 3, padding=1)(@input)",
                                                 "Add(@a)"])  # fmt: skip
    rf = trace.rows[-1].receptive_field
    assert rf is not None and rf[0].size == 5
    assert not any("misaligned" in n for n in trace.rows[-1].notes)
    # a 3×3 stride-2 conv centres its first output on pixel 0, a 2×2 max pool on pixel 0.5
    shifted = cnnops.trace_shapes((1, 1, 16, 16), ["a=Conv2d(1, 1, 3, stride=2, padding=1)", "MaxPool2d(2)(@input)",
                                                   "Add(@a)"])  # fmt: skip
    assert any("misaligned" in n for n in shifted.rows[-1].notes)


MODULE_LIST = """Encoder(
  (blocks): ModuleList(
    (0-2): 3 x Sequential(
      (0): Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    )
  )
)"""


def test_repeated_printed_block_runs_every_time_regression():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(
                [nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(2)) for _ in range(3)]
            )

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    model = Encoder()
    assert str(model) == MODULE_LIST
    trace = cnnops.trace_shapes((1, 8, 32, 32), MODULE_LIST)
    assert trace.output_shape == tuple(model(torch.zeros(1, 8, 32, 32)).shape) == (1, 8, 4, 4)
    assert trace.total_params == sum(p.numel() for p in model.parameters()) == 1752


def test_a_printed_block_whose_forward_is_not_shown_is_refused_naming_it():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x)) + x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)
            self.layer = nn.Sequential(Block(), Block())

    with pytest.raises(SpecError, match=r"net.txt line 4: \(0\): Block\( is a block whose forward\(\) the printed "
                                        r"text does not show"):  # fmt: skip
        parse_stage_file(str(Net()), origin="net.txt")


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(hs.integers(1, 3), hs.integers(1, 4), hs.integers(1, 4), hs.integers(0, 2), hs.booleans(), hs.integers(3, 9))
def test_a_printed_avgpool_hides_ceil_mode_so_it_is_sized_only_where_ceil_mode_changes_nothing(
    nd, kernel, stride, padding, ceil_mode, length
):
    """AvgPool's repr leaves ceil_mode out: sized like torch where both settings agree, refused where they differ."""
    padding = min(padding, kernel // 2)
    avg = getattr(nn, f"AvgPool{nd}d")
    shape = (1, 2) + (length,) * nd

    def torch_shape(ceil: bool) -> tuple[int, ...] | None:
        try:
            return tuple(avg(kernel, stride, padding, ceil_mode=ceil)(torch.zeros(shape)).shape)
        except RuntimeError:
            return None

    model = nn.Sequential(avg(kernel, stride, padding, ceil_mode=ceil_mode))
    expected, other = torch_shape(ceil_mode), torch_shape(not ceil_mode)
    assert "ceil_mode" not in str(model)
    if expected is None:
        with pytest.raises(LayerError):
            cnnops.trace_shapes(shape, str(model))
    elif other == expected:
        assert cnnops.trace_shapes(shape, str(model)).output_shape == expected
    else:
        with pytest.raises(LayerError, match="print\\(model\\) does not show AvgPool.d's ceil_mode"):
            cnnops.trace_shapes(shape, str(model))
        shown = str(model).replace("padding=", f"ceil_mode={ceil_mode}, padding=")
        assert cnnops.trace_shapes(shape, shown).output_shape == expected


@pytest.mark.parametrize(("layer", "hidden"), [
    (nn.AvgPool2d(2, padding=1), "count_include_pad, divisor_override"),
    (nn.AvgPool2d(2), "divisor_override"),
    (nn.AvgPool2d(2, divisor_override=3), "divisor_override"),  # its repr does not show it either
    (nn.Upsample(scale_factor=1.5, mode="bilinear"), "align_corners, recompute_scale_factor"),
    (nn.Upsample(scale_factor=2.0, mode="bilinear"), "align_corners"),
    (nn.Upsample(scale_factor=1.5), "recompute_scale_factor"),
    (nn.Upsample(scale_factor=2.0), None),
])  # fmt: skip
def test_a_run_of_printed_text_says_which_hidden_settings_its_values_assume(layer, hidden):
    """print(model) never shows AvgPool's count_include_pad and divisor_override, nor Upsample's align_corners
    and recompute_scale_factor: they change values, not shapes. A run's table and its JSON say which
    defaults the values assume; the shape table (which has no values) does not."""
    import re

    from rich.console import Console

    from cnnops.render import run_view

    printed = str(nn.Sequential(nn.Conv2d(1, 2, 3), layer))
    for name in ("count_include_pad", "divisor_override", "align_corners", "recompute_scale_factor"):
        assert name not in printed
    result = cnnops.run_stages(np.ones((1, 1, 8, 8), np.float32), [printed])
    assumed = [note for stage in result.as_dict()["stages"] for note in stage.get("notes", [])
               if note.startswith("values: default")]  # fmt: skip
    if hidden is None:
        assert assumed == []
        return
    assert assumed == [f"values: default {hidden} (print(model) hides {'them' if ',' in hidden else 'it'})"]
    console = Console(record=True, width=200, color_system=None)
    console.print(run_view.run_group(result, source="x", plain=True, full=False))
    assert f"↳ values: default {hidden}" in console.export_text()
    from cnnops.render.shape_tables import shape_table

    console = Console(record=True, width=200, color_system=None)
    console.print(shape_table(cnnops.trace_shapes((1, 1, 8, 8), printed), plain=True))  # no values, no such line
    assert "values: default" not in console.export_text()
    settings = {"count_include_pad": "True", "divisor_override": "None", "align_corners": "None",
                "recompute_scale_factor": "None"}  # fmt: skip
    stated = re.sub(r"^(\s*\(1\): .*)\)$", lambda m: m.group(1) + "".join(f", {n}={settings[n]}" for n in hidden.split(", ")) + ")",
                    printed, flags=re.M)  # fmt: skip
    assert stated != printed
    again = cnnops.run_stages(np.ones((1, 1, 8, 8), np.float32), [stated]).as_dict()
    assert not [n for stage in again["stages"] for n in stage.get("notes", []) if n.startswith("values: default")]


@pytest.mark.filterwarnings("ignore:Lazy modules")
@pytest.mark.parametrize("affine", [True, False])
def test_a_printed_unsized_lazy_batchnorm_shows_num_features_0_and_is_sized_from_its_input(affine):
    model = nn.Sequential(nn.Conv1d(3, 5, 1), nn.LazyBatchNorm1d(affine=affine), nn.Conv3d(2, 4, 1),
                          nn.LazyBatchNorm3d(0.1, None, affine, track_running_stats=False))  # fmt: skip
    printed = str(model)
    assert "LazyBatchNorm1d(0, eps=" in printed
    trace = cnnops.trace_shapes((2, 3, 7), printed[: printed.index("(2): ")] + ")")
    model.eval()
    assert trace.output_shape == tuple(model[:2](torch.zeros(2, 3, 7)).shape)
    assert trace.total_params == sum(p.numel() for p in model[:2].parameters())
    trace = cnnops.trace_shapes((1, 2, 3, 4, 5), "Net(\n" + printed[printed.index("  (2): "):])
    assert trace.output_shape == tuple(model[2:](torch.zeros(1, 2, 3, 4, 5)).shape)
    assert trace.total_params == sum(p.numel() for p in model[2:].parameters())


def test_a_mismatch_in_a_printed_model_blames_forward_not_a_correct_layer():
    printed = """Net(
  (conv1): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))
  (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (fc1): Linear(in_features=400, out_features=120, bias=True)
)"""  # the CIFAR tutorial's Net pools in forward(), which the text does not show
    with pytest.raises(LayerError) as caught:
        cnnops.trace_shapes((1, 3, 32, 32), printed)
    message = str(caught.value)
    assert "set in_features" not in message and "forward()" in message


def test_one_line_print_text_and_a_pasted_sequential_are_stages():
    one_line = ("Net( (conv): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), bias=False) (pool): MaxPool2d("
                "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False) )")  # fmt: skip
    assert [s.call for s in parse_stages([one_line])] == ["Conv2d(1, 4, 3, bias=False)", "MaxPool2d(2, stride=2)"]
    pasted = "nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 13 * 13, 10))"
    model = eval(pasted)  # the test's own text, as the tutorial writes it
    trace = cnnops.trace_shapes((1, 1, 28, 28), [pasted])
    assert trace.output_shape == tuple(model(torch.zeros(1, 1, 28, 28)).shape)
    assert trace.total_params == sum(p.numel() for p in model.parameters())


def test_run_json_of_a_graph_names_each_stages_inputs_and_label():
    result = cnnops.run_stages([[[1.0, 2.0], [3.0, 4.0]]], ["a=ReLU", "MaxPool2d(2)(@input)", "Add(@a)"], engine="numpy")
    stages = result.as_dict()["stages"]
    assert [s["inputs"] for s in stages] == [[0], [0], [2, 1]]
    assert stages[0]["label"] == "a"
    assert result.output.tolist() == [[[5.0, 6.0], [7.0, 8.0]]]  # max 4 broadcast onto relu(x)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True)
@given(hs.data())
def test_merge_shapes_and_refusals_equal_torch(data):
    """Add, Mul and Cat on random shape pairs: the same output shape as torch, or both refuse."""
    op = data.draw(hs.sampled_from(["Add", "Mul", "Cat"]))
    rank_a = data.draw(hs.integers(1, 4))
    rank_b = rank_a if op == "Cat" and data.draw(hs.booleans()) else data.draw(hs.integers(1, 4))
    a = tuple(data.draw(hs.integers(1, 4)) for _ in range(rank_a))
    b = tuple(data.draw(hs.integers(1, 4)) for _ in range(rank_b))
    dim = data.draw(hs.integers(-4, 3))
    x, y = torch.zeros(a), torch.zeros(b)
    try:
        expected = tuple((torch.cat([x, y], dim) if op == "Cat" else (x + y if op == "Add" else x * y)).shape)
    except (RuntimeError, IndexError):
        expected = None
    stage = parse_stages([f"Cat(@input, @input, dim={dim})" if op == "Cat" else f"{op}(@input, @input)"])[0]
    try:
        got = stage.merge_shapes([a, b], ["a", "b"])
    except LayerError:
        got = None
    assert got == expected, (op, a, b, dim)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_explain_and_animate_read_a_branch_from_its_own_input(engine, tmp_path):
    from cnnops.run.explain import explain

    data = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    result = cnnops.run_stages(data, ["a=Conv2d(1, 2, 3, padding=1)", "Conv2d(1, 2, 1)(@input)", "Add(@a)"],
                               engine=engine)  # fmt: skip
    expl = explain(result, (1, 2, 3), stage=2)
    weight, bias = result.results[1].weight, result.results[1].bias
    assert expl.value == pytest.approx(float(data[0, 2, 3] * weight[1, 0, 0, 0] + bias[1]), rel=1e-6)
    assert expl.value == result.results[1].output[1, 2, 3]


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_an_in_place_stage_overwrites_the_tensor_later_stages_read_as_in_torch(engine):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            a = self.conv(x)
            b = self.relu(a)  # overwrites a
            return a + b

    torch.manual_seed(0)
    model = Net().eval()
    data = np.array([[[-1.0, 2.0, -3.0, 4.0]]], dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(data)).numpy()
    result = cnnops.run_stages(data, ["Conv1d(1, 1, 1)", "ReLU(inplace=True)(@1)", "Add(@1, @2)"], engine=engine)
    np.testing.assert_allclose(result.output, expected, rtol=1e-6)
