"""The shape model on fixed cases: AlexNet, a small net, 1-D layers, ceil_mode edges, unpooling."""

from pathlib import Path

import pytest

from cnnops.errors import InputError, LayerError
from cnnops.model.trace import parse_shape, trace_shapes
from cnnops.spec import parse_stage_file, parse_stages

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def trace(shape, *texts):
    return trace_shapes(shape, parse_stages(texts))


def rejected(t, index: int, fragment: str) -> str:
    """The trace stopped at stage ``index`` with exactly a LayerError whose message has ``fragment``."""
    assert type(t.error) is LayerError, repr(t.error)
    assert t.error.index == index and len(t.rows) == index - 1
    assert fragment in str(t.error), str(t.error)
    return str(t.error)


def test_alexnet_from_its_printed_text_sizes_to_1000_classes():
    t = trace_shapes((1, 3, 224, 224), parse_stage_file((EXAMPLES / "alexnet.txt").read_text()))
    assert t.error is None
    assert t.output_shape == (1, 1000)
    assert t.total_params == 61_100_840
    conv1 = t.rows[0]
    assert conv1.output_shape == (1, 64, 55, 55)
    assert conv1.params == 23_296 and conv1.macs == 70_276_800
    assert "54.25 → 54" in conv1.formulas[0].note
    assert [r.output_shape for r in t.rows if r.stage.name == "MaxPool2d"] == [
        (1, 64, 27, 27), (1, 192, 13, 13), (1, 256, 6, 6),
    ]  # fmt: skip
    first_linear = next(r for r in t.rows if r.stage.name == "Linear")
    assert first_linear.input_shape == (1, 256, 6, 6) and first_linear.flattened_shape == (1, 9216)
    assert t.rows[12].receptive_field[0].size == 195 and t.rows[12].receptive_field[0].jump == 32


def test_small_net_conv_relu_pool_conv_relu_adaptive_max_flatten_linear():
    t = trace_shapes((1, 1, 28, 28), parse_stage_file((EXAMPLES / "small_net.txt").read_text()))
    assert t.error is None
    assert [r.output_shape for r in t.rows] == [
        (1, 8, 28, 28), (1, 8, 28, 28), (1, 8, 14, 14), (1, 16, 12, 12), (1, 16, 12, 12),
        (1, 16, 4, 4), (1, 256), (1, 10),
    ]  # fmt: skip
    assert t.total_params == (8 * 9 + 8) + (16 * 8 * 9 + 16) + (256 * 10 + 10)
    assert t.rows[3].macs == 16 * 12 * 12 * 8 * 9
    assert t.rows[7].macs == 256 * 10
    assert t.rows[6].flattened_shape is None, "an explicit Flatten needs no implicit one"


def test_one_dimensional_layers():
    t = trace((1, 2, 50), "Conv1d(2, 4, 5, stride=2, padding=2)", "MaxPool1d(3, stride=2, ceil_mode=True)",
              "AvgPool1d(2)", "AdaptiveAvgPool1d(4)", "Flatten", "Linear(16, 3)")  # fmt: skip
    assert t.error is None
    assert [r.output_shape for r in t.rows] == [(1, 4, 25), (1, 4, 12), (1, 4, 6), (1, 4, 4), (1, 16), (1, 3)]


def test_unbatched_inputs_and_the_rank_rule():
    t = trace((5, 5), "MaxPool2d(2, stride=1)")
    assert t.rows[0].promoted_shape == (1, 5, 5) and t.output_shape == (1, 4, 4)
    t = trace((3,), "AdaptiveAvgPool1d(8)")
    assert t.output_shape == (1, 8)
    t = trace((3, 32, 32), "Conv2d(3, 8, 3)")
    assert t.rows[0].promoted_shape is None and t.output_shape == (8, 30, 30)


def test_unbatched_implicit_flatten_flattens_everything():
    t = trace((3, 8, 8), "Conv2d(3, 4, 3)", "Linear(144, 10)")
    assert t.rows[1].flattened_shape == (144,) and t.output_shape == (10,)


def test_ceil_mode_rescues_a_too_small_output():
    assert trace((1, 2, 2), "MaxPool2d(3, ceil_mode=True)").output_shape == (1, 1, 1)
    rejected(trace((1, 2, 2), "MaxPool2d(3)"), 1, "output size is too small: input (2, 2) gives 0 × 0")


def test_ceil_mode_drops_window_starting_in_right_padding():
    # L=5, k=2, s=2, p=1: ceil gives 4 windows, but the 4th would start at 6 ≥ L + p = 6
    t = trace((1, 1, 5), "MaxPool1d(2, stride=2, padding=1, ceil_mode=True)")
    assert t.output_shape == (1, 1, 3)
    assert "dropped" in t.rows[0].formulas[0].note
    assert trace((1, 1, 6), "MaxPool1d(2, stride=2, padding=1, ceil_mode=True)").output_shape == (1, 1, 4)


def test_pool_padding_limit_message_names_stage_and_numbers():
    t = trace((1, 3, 8, 8), "Conv2d(3, 8, 3)", "ReLU", "MaxPool2d(3, padding=2)")
    assert len(t.rows) == 2, "rows before the failing stage are kept for the table"
    assert rejected(t, 3, "padding 2") == (
        "stage 3 MaxPool2d(3, padding=2): padding 2 is more than half the kernel size 3 — use padding ≤ 1"
    )


def test_dilation_does_not_relax_the_pool_padding_limit():
    t = trace((1, 1, 20, 20), "MaxPool2d(2, dilation=3, padding=2)")
    rejected(t, 1, "padding 2 is more than half the kernel size 2 — use padding ≤ 1")


def test_conv_channel_mismatch_and_kernel_too_big():
    rejected(trace((1, 1, 8, 8), "Conv2d(3, 4, 3)"), 1, "expects 3 input channels, got 1")
    rejected(trace((1, 3, 4, 4), "Conv2d(3, 8, 9)"), 1, "kernel size can't be greater than the input size")


def test_same_padding_keeps_size_and_is_refused_with_stride():
    assert trace((1, 1, 28, 28), "Conv2d(1, 1, 4, padding='same')").output_shape == (1, 1, 28, 28)
    rejected(trace((1, 1, 28, 28), "Conv2d(1, 1, 3, stride=2, padding='same')"), 1, "not supported for strided")


def test_unpool_restores_the_pool_input_and_flags_pytorch_default():
    t = trace((1, 1, 5, 5), "MaxPool2d(2)", "MaxUnpool2d(2)")
    assert t.output_shape == (1, 1, 5, 5)
    assert t.rows[1].unpool_source == 1
    assert "PyTorch's default would be 4" in t.rows[1].formulas[0].note
    alone = trace((1, 1, 2, 2), "MaxUnpool2d(2)")
    assert alone.output_shape == (1, 1, 4, 4), "without a pool, PyTorch's default size"


def test_unpools_pair_with_pools_like_an_encoder_decoder():
    t = trace((1, 1, 16, 16), "MaxPool2d(2)", "MaxPool2d(2)", "MaxUnpool2d(2)", "MaxUnpool2d(2)")
    assert [r.unpool_source for r in t.rows[2:]] == [2, 1]
    assert t.output_shape == (1, 1, 16, 16)


def test_unpool_cannot_restore_when_pytorch_range_forbids():
    t = trace((1, 1, 10, 10), "MaxPool2d(2, dilation=3)", "MaxUnpool2d(2)")
    rejected(t, 2, "cannot unpool to the max pool's input size 10 on H: PyTorch only accepts sizes strictly between 6 and 10")


def test_linear_mismatch_suggests_flatten_for_plain_inputs():
    rejected(trace((1, 4, 3, 3), "Linear(36, 10)"), 1, "in_features=36, got 3 (input (1, 4, 3, 3)) — add Flatten before it")


@pytest.mark.parametrize(("shape", "text"), [
    ((1, 2, 2), "MaxPool2d(3)"), ((1, 1, 20, 20), "MaxPool2d(2, dilation=3, padding=2)"),
    ((1, 1, 8, 8), "Conv2d(3, 4, 3)"), ((1, 3, 4, 4), "Conv2d(3, 8, 9)"),
    ((1, 1, 28, 28), "Conv2d(1, 1, 3, stride=2, padding='same')"), ((1, 4, 3, 3), "Linear(36, 10)"),
])  # fmt: skip
def test_the_single_stage_refusals_above_are_torchs(shape, text):
    import torch

    with pytest.raises((RuntimeError, ValueError)):  # building or calling the module
        eval(f"nn.{text}", {"nn": torch.nn})(torch.zeros(shape))  # test-only oracle: the texts are the literals above


def test_totals_and_activation_memory():
    t = trace((1, 1, 4, 4), "Conv2d(1, 2, 3)", "ReLU")
    assert t.total_params == 2 * 9 + 2
    assert t.total_macs == 2 * 2 * 2 * 9
    assert t.output_elements == 8
    assert t.activation_bytes == 4 * (16 + 8 + 8)


def test_receptive_field_with_dilation():
    t = trace((1, 1, 32, 32), "Conv2d(1, 1, 3, dilation=2)", "MaxPool2d(2)", "Conv2d(1, 1, 3)")
    sizes = [r.receptive_field[0].size for r in t.rows]
    jumps = [r.receptive_field[0].jump for r in t.rows]
    assert sizes == [5, 6, 10] and jumps == [1, 2, 2]


@pytest.mark.parametrize(
    "text, shape",
    [("1x3x224x224", (1, 3, 224, 224)), ("3x224x224", (3, 224, 224)), ("1,3,32,32", (1, 3, 32, 32)),
     ("(1, 3, 32, 32)", (1, 3, 32, 32)), ("5", (5,)), ("1×1×5×5", (1, 1, 5, 5))],
)  # fmt: skip
def test_shape_text_forms(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "x", "1x0x3", "1x-3", "axb", "1x2x3x4x5x6x7x8x9", "99999999999"])
def test_bad_shape_text_is_an_input_error(text):
    with pytest.raises(InputError):
        parse_shape(text)
