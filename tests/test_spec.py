"""The stage-spec language: PyTorch call syntax, conveniences, files, printed models, refusals."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnnops.errors import CnnopsError, SpecError
from cnnops.model import stages as st
from cnnops.spec import looks_like_stage, parse_layer, parse_stage, parse_stage_file, parse_stages


@pytest.mark.parametrize(
    "text, call",
    [
        ("MaxPool2d(2, stride=1)", "MaxPool2d(2, stride=1)"),
        ("maxpool2d(2, stride=1)", "MaxPool2d(2, stride=1)"),
        ("MAXPOOL2D(2,stride=1)", "MaxPool2d(2, stride=1)"),
        ("maxpool:2,stride=1", "MaxPool2d(2, stride=1)"),
        ("pool:2,s=1", "MaxPool2d(2, stride=1)"),
        ("conv:1,4,k=3,p=1", "Conv2d(1, 4, 3, padding=1)"),
        ("conv(1, 4, kernel_size=(3, 5), d=2)", "Conv2d(1, 4, (3, 5), dilation=2)"),
        ("ReLU", "ReLU()"),
        ("relu()", "ReLU()"),
        ("relu:", "ReLU()"),
        ("leaky-relu:0.2", "LeakyReLU(negative_slope=0.2)"),
        ("leaky_relu(negative_slope=0.2)", "LeakyReLU(negative_slope=0.2)"),
        ("avgpool:2", "AvgPool2d(2)"),
        ("unpool:2", "MaxUnpool2d(2)"),
        ("adaptiveavgpool:(None, 7)", "AdaptiveAvgPool2d((None, 7))"),
        ("AdaptiveMaxPool1d(10)", "AdaptiveMaxPool1d(10)"),
        ("linear:9216,4096", "Linear(9216, 4096)"),
        ("flatten", "Flatten()"),
        ("Flatten(0, -1)", "Flatten(start_dim=0)"),
        ("Softmax(dim=1)", "Softmax(dim=1)"),
        ("GELU(approximate='tanh')", "GELU(approximate='tanh')"),
        ("Dropout(p=0.5, inplace=False)", "Dropout()"),
        ("BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)", "BatchNorm2d(64)"),
        ("ConvTranspose2d(16, 8, 2, stride=2)", "ConvTranspose2d(16, 8, 2, stride=2)"),
    ],
)
def test_every_syntax_form_parses_to_the_same_normalised_call(text, call):
    assert parse_stage(text).call == call


def test_printed_model_line_with_name_prefix_tuples_and_bare_words():
    stage = parse_stage(
        "(3): Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=same, bias=False, padding_mode=reflect)"
    )
    assert isinstance(stage, st.Conv)
    assert stage.padding == "same" and stage.padding_mode == "reflect" and stage.bias is False
    assert stage.kernel_size == (3, 3)


def test_tuples_strings_and_none_keep_their_meaning():
    conv = parse_stage("Conv2d(1, 2, (3, 5), stride=(2, 1), padding='valid')")
    assert conv.kernel_size == (3, 5) and conv.stride == (2, 1) and conv.padding == "valid"
    adaptive = parse_stage("AdaptiveAvgPool2d((None, 3))")
    assert adaptive.output_size == (None, 3)
    pool = parse_stage("MaxPool2d(3)")
    assert pool.stride == (3, 3), "pool stride defaults to the kernel size"
    unpool = parse_stage("MaxUnpool2d(2, output_size=(1, 1, 5, 5))")
    assert unpool.output_size == (1, 1, 5, 5)


def test_pytorch_positional_order_is_respected():
    pool = parse_stage("MaxPool2d(3, 2, 1, 2, False, True)")
    assert (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode) == (
        (3, 3), (2, 2), (1, 1), (2, 2), True,
    )
    convt = parse_stage("ConvTranspose2d(4, 2, 3, 2, 1, 1, 2, False, 1)")
    assert convt.output_padding == (1, 1) and convt.groups == 2 and convt.bias is False
    avg = parse_stage("AvgPool2d(2, 2, 0, True, False, 3)")
    assert avg.ceil_mode and not avg.count_include_pad and avg.divisor_override == 3


def test_weight_and_bias_values_travel_beside_the_stage_not_in_it():
    stage, data = parse_layer("Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge', bias=[0, 1, 2, 3], seed=7)")
    assert data.weight == "vertical-edge, -vertical-edge"
    assert stage.bias is True and data.bias == (0, 1, 2, 3) and data.seed == 7
    assert not hasattr(stage, "weight") and not hasattr(stage, "seed")
    assert parse_layer("Conv2d(1, 1, 3, weight=[[1, 0, -1], [2, 0, -2], [1, 0, -1]])")[1].weight[1] == (2, 0, -2)
    assert parse_layer("Conv2d(1, 1, 3, bias=False)") == (parse_stage("Conv2d(1, 1, 3, bias=False)"), None)
    network = parse_stages(["Conv2d(1, 1, 3, bias=0.5)", "ReLU"])
    assert network.data[0].bias == 0.5 and network.data[1] is None


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("MaxPol2d(2)", "did you mean MaxPool2d?"),
        ("RReLU()", "cnnops does not support PyTorch's nn.RReLU yet"),
        ("MaxPol2d(2)", "did you mean MaxPool2d?"),
        ("Conv2D(1, 2)", "needs kernel_size"),
        ("MaxPool2d(2, strid=1)", "did you mean stride?"),
        ("Conv2d(1, 2, 3, paddin=1)", "did you mean padding?"),
        ("AvgPool1d(2, divisor_override=2)", "AvgPool1d has no argument 'divisor_override'"),
        ("Conv2d(1, 2, (3, 3, 3))", "kernel_size must be an integer or a tuple of 2 integers"),
        ("Conv2d(1, 2, 3, padding='full')", "'same' or 'valid'"),
        ("Conv2d(1, 2, 3, padding_mode='mirror')", "'reflect'"),
        ("MaxPool2d(2, 1, 0, 1, False, False, 9)", "at most 6 positional arguments"),
        ("MaxPool2d(2, stride=1, stride=2)", "twice"),
        ("Linear(3.5, 2)", "in_features must be an integer"),
        ("MaxPool2d(2)(3)", "give the output it reads"),
        ("relu(", "not valid layer syntax"),
        ("", "empty stage"),
        ("GELU(approximate='fast')", "'none', 'tanh'"),
    ],
)
def test_errors_name_the_problem_and_suggest_a_fix(text, fragment):
    with pytest.raises(SpecError) as info:
        parse_stage(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hi')",
        "Conv2d(1, 2, __import__('os'))",
        "os.system('ls')",
        "Conv2d(1, 2, os.path)",
        "Conv2d(1, 2, [1][0])",
        "Conv2d(1, 2, (lambda: 3)())",
        "Conv2d(1, 2, 3 / 3)",
        "Conv2d(1, 2, 2 ** 99)",
        "Conv2d(1, 2, 3.0 * 2)",
        "Conv2d(1, 2, 1 // 0)",
        "Add(3)",
        "ReLU(@x)",
        "Conv2d(1, 2, 3)(4)",
        "input=ReLU",
        "Conv2d(1, 2, 10**100)",
        "Conv2d(1, 2, 123456789012345678901234567890)",
        "MaxPool2d(*[2])",
        "MaxPool2d(**{'kernel_size': 2})",
        "Conv2d(1, 2, __class__)",
        "MaxPool2d(2).__class__",
        "Conv2d(1, 2, f'{3}')",
    ],
)
def test_anything_that_would_need_evaluation_is_refused(text):
    with pytest.raises(SpecError):
        parse_stage(text)


def parsed_or_spec_error(text):
    """The stage ``text`` gives, after checking that its call reads back as the same call; or None
    after checking that parse_stage raised exactly SpecError (not another CnnopsError) with a message."""
    try:
        stage = parse_stage(text)
    except CnnopsError as error:
        assert type(error) is SpecError, f"{type(error).__name__}: {error}"
        assert str(error).strip()
        return None
    again = parse_stage(stage.call)
    assert type(again) is type(stage) and again.call == stage.call, (text, stage.call, again.call)
    return stage


@settings(max_examples=400, deadline=None, derandomize=True)
@given(hs.text(max_size=60))
def test_arbitrary_text_only_ever_raises_spec_error(text):
    parsed_or_spec_error(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(hs.sampled_from(["Conv2d(", "MaxPool2d(", "maxpool:", "Linear(", "AdaptiveAvgPool2d("]), hs.text(max_size=40))
def test_layer_names_with_arbitrary_arguments_only_raise_spec_error(head, tail):
    stage = parsed_or_spec_error(head + tail)
    if stage is not None:
        expected = {"Conv2d(": "Conv2d", "MaxPool2d(": "MaxPool2d", "maxpool:": "MaxPool2d", "Linear(": "Linear",
                    "AdaptiveAvgPool2d(": "AdaptiveAvgPool2d"}[head]  # fmt: skip
        assert stage.name == expected and stage.call.startswith(expected + "(")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(hs.sampled_from(["Conv2d", "MaxPool2d", "AvgPool1d", "Linear", "AdaptiveAvgPool2d", "ConvTranspose2d"]),
       hs.lists(hs.sampled_from(["1", "2", "3", "0", "-1", "(2, 3)", "None", "True", "'same'", "stride=2",
                                 "padding=1", "dilation=2", "bias=False", "ceil_mode=True", "groups=2", "x=1"]),
                max_size=4))  # fmt: skip
def test_layer_calls_with_plausible_arguments_parse_or_raise_spec_error(name, args):
    stage = parsed_or_spec_error(f"{name}({', '.join(args)})")
    if stage is not None:
        assert stage.name == name


def test_parse_stages_numbers_the_failing_stage():
    with pytest.raises(SpecError, match=r"^stage 2: unknown layer 'relux'"):
        parse_stages(["ReLU", "relux"])


def test_stage_file_with_comments_and_printed_model_nesting():
    text = """
    # my net
    Conv2d(1, 4, 3)   # first layer
    Net(
      (features): Sequential(
        (0): ReLU(inplace=True)
        (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
      )
      (blocks): ModuleList(
        (0-2): 3 x Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      )
    )
    """
    stages = parse_stage_file(text)
    assert [s.name for s in stages] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "Conv2d", "Conv2d"]


def test_stage_file_errors_name_the_line():
    with pytest.raises(SpecError, match=r"^net.txt line 3: unknown layer 'Conv4d'"):
        parse_stage_file("ReLU\n\nConv4d(1, 2, 3)\n", origin="net.txt")


@pytest.mark.parametrize(
    "word, is_stage",
    [("relu", True), ("ReLU", True), ("maxpool:2", True), ("MaxPool2d(2, stride=1)", True),
     ("conv(1,1,3)", True), ("input.json", False), ("./relu", False), ("-", False),
     ("[[1, 2]]", False), ("photo.png", False), ("relu.json", False)],
)  # fmt: skip
def test_inputs_end_where_the_first_stage_begins(word, is_stage):
    assert looks_like_stage(word) is is_stage


@pytest.mark.parametrize(
    "text",
    ["Conv2d(3, 64, 11, stride=4, padding=2)", "Conv2d(2, 4, 3, padding='same', padding_mode='reflect', bias=False, groups=2)",
     "Conv1d(1, 2, 3, padding=1, dilation=2)", "ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, dilation=2, groups=2)",
     "MaxPool2d(3, stride=2)", "MaxPool2d((2, 3), stride=1, padding=1, ceil_mode=True)", "MaxPool1d(2)", "AvgPool2d(2)",
     "AvgPool1d(3, 2, 1)", "AdaptiveAvgPool2d((None, 7))", "AdaptiveMaxPool1d(4)", "MaxUnpool2d(2)", "Linear(9216, 4096)",
     "Flatten()", "ReLU(inplace=True)", "LeakyReLU(0.2)", "GELU()", "ELU()", "Softmax(dim=1)", "Dropout(p=0.3)",
     "BatchNorm2d(64)", "Sigmoid()", "Identity()", "ReLU6(inplace=True)", "Hardswish(inplace=True)", "Mish()",
     "LeakyReLU(0.1, inplace=True)", "ELU(alpha=1, inplace=True)", "Softplus(beta=2)", "LogSoftmax()",
     "Dropout1d(0.2, True)", "Dropout2d()", "GELU(approximate='tanh')", "SiLU(inplace=True)", "Tanh()"],
)  # fmt: skip
def test_json_stage_text_is_exactly_pytorch_repr(text):
    import torch

    stage = parse_stage(text)
    module = eval(f"nn.{text}", {"nn": torch.nn})  # test-only oracle
    assert stage.torch_repr() == repr(module)


def test_weights_in_stage_text_take_the_same_tensor_syntax_as_inputs():
    stage, data = parse_layer("Conv2d(1, 1, 3, weight=torch.tensor([[1., 0, -1.], [2., 0, -2.], [1., 0, -1.]]), bias=0.)")
    assert data.weight == ((1.0, 0, -1.0), (2.0, 0, -2.0), (1.0, 0, -1.0)) and data.bias == 0.0
    _, data = parse_layer("Linear(2, 1, weight=[[1., float('nan')]], bias=math.inf)")
    assert math.isnan(data.weight[0][1]) and data.bias == math.inf
    with pytest.raises(SpecError, match="a function call is not allowed"):
        parse_stage("Conv2d(1, 2, len('ab'))")
