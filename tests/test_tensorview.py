"""Tensor grids: numbers formatted exactly as ``str(torch.tensor(x))`` formats them, laid out as planes."""

from __future__ import annotations

import io
import math
import re
import subprocess
import sys

import numpy as np  # noqa: TID253 - tests may import the heavy libraries
import pytest
import torch  # noqa: TID253 - tests may import the heavy libraries
import torch._tensor_str as torch_str  # noqa: TID253 - tests may import the heavy libraries
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from rich.console import Console
from rich.style import Style

from cnnops.render.tensor_grid import NumberMode, number_format, shown_indices, tensor_view

BOX_CHARACTERS = set("─━│┃┄┅┆┇┈┉┊┋┌┍┎┏┐┑┒┓└┕┖┗┘┙┚┛├┝┞┟┠┡┢┣┤┥┦┧┨┩┪┫┬┭┮┯┰┱┲┳┴┵┶┷┸┹┺┻┼╋═║╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬╭╮╯╰")


def console(width: int = 120) -> Console:
    return Console(record=True, width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")


def render(renderable, width: int = 120, styles: bool = False) -> str:
    c = console(width)
    c.print(renderable)
    return c.export_text(styles=styles)


def cell_styles(renderable, width: int = 120) -> dict:
    """Stripped text of every rendered segment → its style."""
    c = console(width)
    return {seg.text.strip(): seg.style for seg in c.render(renderable) if seg.text.strip()}


def torch_tokens(array: np.ndarray) -> list[str]:
    """The element strings of ``str(torch.tensor(array))``, in order, without the '...' of a summary."""
    text = str(torch.from_numpy(np.ascontiguousarray(array)))
    inner = re.sub(r",\s*dtype=[\w.]+\)$", ")", text)[len("tensor(") : -1]
    tokens = [t.strip() for t in re.split(r"[\[\],\n]", inner)]
    return [t for t in tokens if t and t != "..."]


def grid_tokens(text: str) -> list[str]:
    """Cell strings of a plain rendered rank-2 grid, row-major, without labels and gap markers."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    return [t for line in lines[1:] for t in line[1:] if t not in {"…", "⋮", "⋱"}]


# --- number_format -------------------------------------------------------------------------------------------


def test_integer_valued_floats_print_whole_with_a_trailing_dot():
    fmt = number_format(np.array([-4.0, 0.0, 12.0]))
    assert fmt.mode is NumberMode.WHOLE
    assert [fmt(v) for v in (-4.0, 0.0, 12.0)] == ["-4.", " 0.", "12."]


def test_fractions_print_with_four_decimals():
    fmt = number_format(np.array([0.25, -1.5], dtype=np.float32))
    assert [fmt(v) for v in (0.25, -1.5)] == [" 0.2500", "-1.5000"]


@pytest.mark.parametrize(
    "values, reason",
    [([1e-5, 1.0], "tiny"), ([1.0, 2e9], "huge"), ([1.0, 1001.0], "ratio over 1000"), ([3e8, 4e8], "whole but huge")],
)
def test_scientific_mode_when_magnitudes_are_extreme(values, reason):
    fmt = number_format(np.array(values))
    assert fmt.mode is NumberMode.SCIENTIFIC, reason
    assert fmt(values[0]).strip() == f"{values[0]:.4e}"


def test_nonfinite_values_print_as_python_does_and_do_not_widen():
    fmt = number_format(np.array([1.5, np.nan, np.inf, -np.inf]))
    assert [fmt(v).strip() for v in (np.nan, np.inf, -np.inf)] == ["nan", "inf", "-inf"]
    assert fmt.width == len("1.5000")


def test_all_zero_or_nonfinite_tensor_prints_whole_mode():
    fmt = number_format(np.array([0.0, -0.0, np.nan]))
    assert [fmt(v) for v in (0.0, -0.0, np.nan)] == ["0.", "-0.", "nan"]


def test_integer_and_bool_arrays_print_like_integer_and_bool_tensors():
    assert number_format(np.array([3, -12]))(3) == "  3"
    assert number_format(np.array([True, False]))(True) == " True"


def assert_formats_like_torch(array: np.ndarray) -> None:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    expected = torch_str._Formatter(tensor)
    fmt = number_format(array)
    assert fmt.width == expected.width()
    for value in tensor.reshape(-1).tolist():
        assert fmt(value) == expected.format(value), value
    ours = [fmt(v).strip() for v in array.ravel().tolist()]
    assert ours == torch_tokens(array)


float32 = st.floats(width=32)
specials = st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf])
whole = st.integers(-(10**6), 10**6).map(float)
small = st.floats(-100, 100, width=32)
scaled = st.tuples(st.floats(-10, 10), st.integers(-12, 12)).map(lambda t: float(np.float32(t[0] * 10.0 ** t[1])))
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        hnp.arrays(np.float32, shapes, elements=st.one_of(whole, specials)),
        hnp.arrays(np.float32, shapes, elements=st.one_of(small, whole)),
        hnp.arrays(np.float32, shapes, elements=st.one_of(small, scaled, specials)),
        hnp.arrays(np.float32, shapes, elements=float32),
        hnp.arrays(np.float64, shapes, elements=st.one_of(st.floats(), whole, scaled)),
        hnp.arrays(np.float16, shapes, elements=st.floats(width=16)),
    )
)
def test_float_formats_match_torch(array):
    assert_formats_like_torch(array)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(st.sampled_from([np.int64, np.int32, np.uint8, np.bool_]), shapes))
def test_integer_and_bool_formats_match_torch(array):
    assert_formats_like_torch(array)


# --- tensor_view layout --------------------------------------------------------------------------------------


def test_rank2_grid_shows_row_and_column_indices_and_numbers():
    text = render(tensor_view(np.array([[1.0, -2.0], [3.0, 4.5]]), plain=True))
    lines = [line.split() for line in text.splitlines() if line.strip()]
    assert lines == [["0", "1"], ["0", "1.0000", "-2.0000"], ["1", "3.0000", "4.5000"]]


def test_sobel_output_prints_like_torch():
    out = np.array([[[[-4.0, 0.0, 4.0], [-4.0, 0.0, 4.0], [-4.0, 0.0, 4.0]]]], dtype=np.float32)
    text = render(tensor_view(out, title="stage 1 Conv2d → 1×1×3×3", plain=True))
    assert text.splitlines()[0] == "stage 1 Conv2d → 1×1×3×3"
    assert "[0, 0]" in text
    assert grid_tokens("\n".join(text.splitlines()[2:])) == torch_tokens(out)
    assert "-4." in text and " 0." in text and " 4." in text


def test_rank4_planes_are_labelled_batch_and_channel():
    text = render(tensor_view(np.zeros((2, 3, 2, 2)), plain=True), width=200)
    for n in range(2):
        for c in range(3):
            assert f"[{n}, {c}]" in text


def test_rank3_planes_are_labelled_by_channel():
    text = render(tensor_view(np.zeros((3, 2, 2)), plain=True), width=200)
    assert all(f"channel {c}" in text for c in range(3))
    assert "[0" not in text


def test_planes_wrap_when_they_do_not_fit_side_by_side():
    wide = render(tensor_view(np.zeros((4, 2, 2)), plain=True), width=200)
    narrow = render(tensor_view(np.zeros((4, 2, 2)), plain=True), width=20)
    assert sum("channel" in line for line in wide.splitlines()) == 1
    assert sum("channel" in line for line in narrow.splitlines()) == 4


@pytest.mark.parametrize("plain", [True, False])
def test_plane_wider_than_the_console_splits_into_column_blocks_without_truncating(plain):
    data = np.arange(300.0).reshape(15, 20) + 100
    text = render(tensor_view(data, plain=plain), width=60)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 60
    assert "…" not in text
    numbers = {t for t in text.split() if t.endswith(".")}
    assert numbers == {f"{v:.0f}." for v in data.ravel()}
    # every block repeats the row indices
    assert sum(line.split()[:1] == ["14"] for line in text.splitlines()) == 3


@pytest.mark.parametrize("plain", [True, False])
@pytest.mark.parametrize("shape", [(1, 2), (3, 7), (12, 3), (9,)])
def test_plane_splits_only_when_it_does_not_fit(plain, shape):
    data = np.arange(math.prod(shape), dtype=np.float64).reshape(shape) - 5.5
    natural = max(len(line) for line in render(tensor_view(data, plain=plain), width=300).splitlines())

    def header_lines(text: str) -> int:
        return sum(bool(line.split()) and all(t.isdigit() for t in line.split()) for line in text.splitlines())

    assert header_lines(render(tensor_view(data, plain=plain), width=natural)) == 1
    assert header_lines(render(tensor_view(data, plain=plain), width=natural - 1)) == 2


def test_rank1_is_one_row_under_its_column_indices():
    lines = [line.split() for line in render(tensor_view(np.array([1.0, 2.5, -3.0]), plain=True)).splitlines()]
    assert lines[0] == ["0", "1", "2"]
    assert lines[1] == ["1.0000", "2.5000", "-3.0000"]


def test_rank0_is_the_number():
    assert render(tensor_view(np.array(3.5), plain=True)).strip() == "3.5000"
    assert render(tensor_view(np.float32(-4.0), plain=True)).strip() == "-4."


def test_empty_tensor_says_so():
    assert "empty tensor, shape 1×0×3" in render(tensor_view(np.zeros((1, 0, 3)), plain=True))


def test_summarised_grid_keeps_edge_rows_and_real_indices():
    data = 1000.0 + np.arange(10000, dtype=np.float32).reshape(100, 100)
    text = render(tensor_view(data, plain=True))
    lines = [line.split() for line in text.splitlines() if line.strip()]
    assert lines[0] == ["0", "1", "2", "…", "97", "98", "99"]
    assert [line[0] for line in lines[1:]] == ["0", "1", "2", "…", "97", "98", "99"]
    assert lines[-1] == ["99", "10900.", "10901.", "10902.", "…", "10997.", "10998.", "10999."]
    assert lines[4] == ["…", "⋮", "⋮", "⋮", "⋱", "⋮", "⋮", "⋮"]
    assert "5050." not in text


def test_summarised_grid_formats_the_shown_values_like_torch():
    data = np.random.default_rng(0).normal(size=(100, 100)).astype(np.float32)
    data[0, 0] = 1e-6  # the scale comes from what is shown, as in PyTorch
    assert grid_tokens(render(tensor_view(data, plain=True))) == torch_tokens(data)


def test_small_tensors_are_not_summarised_and_threshold_is_respected():
    data = np.arange(64.0).reshape(8, 8)
    assert "…" not in render(tensor_view(data, plain=True))
    assert "…" in render(tensor_view(data, plain=True, threshold=63))
    assert "⋮" in render(tensor_view(data, plain=True, threshold=63, edgeitems=2))


def test_full_shows_every_row_and_column():
    data = np.arange(1600.0).reshape(40, 40) + 100
    text = render(tensor_view(data, full=True, plain=True), width=500)
    lines = [line.split() for line in text.splitlines() if line.strip()]
    assert lines[0] == [str(c) for c in range(40)]
    assert [line[0] for line in lines[1:]] == [str(r) for r in range(40)]
    assert "…" not in text and "⋮" not in text


def test_leading_planes_are_summarised_with_a_count():
    text = render(tensor_view(np.zeros((1, 64, 2, 2)), plain=True, threshold=100), width=200)
    assert "… 58 more planes …" in text
    assert all(f"[0, {c}]" in text for c in (0, 1, 2, 61, 62, 63))
    assert "[0, 3]" not in text and "[0, 60]" not in text
    text = render(tensor_view(np.zeros((64, 2, 2)), plain=True, threshold=100), width=200)
    assert "channel 63" in text and "channel 3" not in text


def test_plane_summary_counts_across_batch_and_channels():
    text = render(tensor_view(np.zeros((10, 10, 8, 8)), plain=True), width=400)
    assert "… 94 more planes …" in text
    assert "[0, 0]" in text and "[9, 9]" in text and "[0, 3]" not in text


def test_huge_array_renders_only_what_is_shown():
    data = np.random.default_rng(1).random((2000, 2000), dtype=np.float32)
    text = render(tensor_view(data, plain=True))
    assert "1999" in text and "…" in text


def test_plain_output_has_no_box_drawing_and_no_escape_codes():
    data = np.array([[[[1.0, -2.0], [np.nan, 4.0]]]])
    highlight = np.array([[[[False, True], [False, False]]]])
    view = tensor_view(data, title="stage 2 ReLU", highlight=highlight, plain=True)
    text = render(view, styles=True)
    assert not BOX_CHARACTERS & set(text)
    assert "\x1b" not in text
    assert "-2.*" in text  # highlighted cells stay visible without styles
    styled = render(tensor_view(data, title="stage 2 ReLU", highlight=highlight), styles=True)
    assert "\x1b[" in styled and BOX_CHARACTERS & set(styled)


def test_styles_mark_negatives_nonfinite_and_highlighted_cells():
    data = np.array([[1.5, -2.0], [np.inf, 4.0]])
    highlight = np.array([[False, False], [False, True]])
    styles = cell_styles(tensor_view(data, highlight=highlight))
    assert styles["-2.0000"].color.name == "red"
    assert styles["inf"].color.name == "magenta"
    assert styles["4.0000"].bold and styles["4.0000"].bgcolor is not None
    plain_cell = styles["1.5000"] or Style()
    assert not plain_cell.bold and plain_cell.bgcolor is None and plain_cell.color is None
    assert styles["1"].dim  # indices


def test_max_pool_winners_highlighted_in_the_pool_input():
    data = np.arange(1.0, 17.0, dtype=np.float32).reshape(1, 1, 4, 4)
    winners = torch.nn.functional.max_pool2d(torch.from_numpy(data), 2, return_indices=True)[1].numpy()
    highlight = np.zeros(data.size, dtype=bool)
    highlight[winners.ravel()] = True
    view = tensor_view(data, highlight=highlight.reshape(data.shape))
    styles = cell_styles(view)
    assert {k for k, s in styles.items() if s and s.bgcolor} == {"6.", "8.", "14.", "16."}


def test_highlight_must_match_the_data_shape():
    with pytest.raises(ValueError, match="highlight shape"):
        tensor_view(np.zeros((2, 2)), highlight=np.zeros((3, 3), dtype=bool))


def test_shown_indices():
    assert shown_indices(7, True, 3) == [0, 1, 2, None, 4, 5, 6]
    assert shown_indices(7, False, 3) == list(range(7))
    assert shown_indices(5, True, 0) == [None]


def test_importing_tensorview_does_not_import_numpy():
    code = "import cnnops.render.tensor_grid, sys; assert 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
