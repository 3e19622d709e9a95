"""Named kernels and weight= / bias= specs: values, the term grammar, shape rules, errors.

torch is the oracle for what a kernel does to an image (imported lazily, as the project requires).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnops.errors import CnnopsError, SpecError
from cnnops.io.kernels import KERNELS, Kernel, describe_kernels, get_kernel, kernel_names, parse_kernel_terms
from cnnops.io.weights import fits, resolve_bias, resolve_weight, weight_layout

# not `import numpy`: ruff bans module-level numpy imports project-wide (TID253)
np = pytest.importorskip("numpy")

# The textbook matrices, written out (never derived from cnnops' table or from each other), in the
# correlation convention PyTorch uses (no flip): OpenCV's Sobel/Scharr/Laplacian (ksize=1) kernels and
# scikit-image's orientation (x: positive where intensity increases to the right, y: downward).
# "gx"/"gy" are Wikipedia's Sobel Gx/Gy as tutorials print them (written for a flipping convolution,
# so under correlation they are the negatives of OpenCV's); "vertical-edge" is Udacity's 4x4 filter;
# gaussian is the 1-2-1 binomial (OpenCV getGaussianKernel(3)) / 16; emboss is the usual 3x3 emboss.
EXPECTED: dict[str, list[list[float]]] = {
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "gx": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "gy": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian-8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "vertical-edge": [[-1, -1, 1, 1]] * 4,
    "horizontal-edge": [[-1] * 4, [-1] * 4, [1] * 4, [1] * 4],
    "gaussian": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "box": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
TRANSPOSE_PAIRS = [("sobel-x", "sobel-y"), ("gx", "gy"), ("prewitt-x", "prewitt-y"), ("scharr-x", "scharr-y"),
                   ("vertical-edge", "horizontal-edge")]  # fmt: skip
UDACITY_BANK = "vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T"


def kernel_array(name: str) -> Any:
    """The textbook kernel ``name`` from EXPECTED above (not from cnnops' table), as float32."""
    return np.array(EXPECTED[name], dtype=np.float32)


def vertical_line_image() -> Any:
    image = np.zeros((5, 5), dtype=np.float32)
    image[:, 2] = 1
    return image


def conv2d(image: Any, weight: Any) -> Any:
    import torch

    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    return torch.nn.functional.conv2d(x, torch.from_numpy(weight))[0].numpy()


# --- the table ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_kernel_has_its_documented_values_and_shape(name: str) -> None:
    kernel = KERNELS[name]
    assert kernel.values == tuple(tuple(float(v) for v in row) for row in EXPECTED[name])
    assert kernel.shape == (len(EXPECTED[name]), len(EXPECTED[name][0]))
    assert all(type(v) is float for row in kernel.values for v in row)


def test_table_is_pure_python_rectangular_and_described() -> None:
    assert set(EXPECTED) == set(KERNELS), "every named kernel needs its textbook values written out in EXPECTED"
    for name, kernel in KERNELS.items():
        assert isinstance(kernel, Kernel) and kernel.name == name
        assert isinstance(kernel.values, tuple) and all(isinstance(row, tuple) for row in kernel.values)
        assert len({len(row) for row in kernel.values}) == 1
        assert len(kernel.description) > 20


@pytest.mark.parametrize(("x", "y"), TRANSPOSE_PAIRS)
def test_transposed_x_kernel_term_gives_the_textbook_y_kernel(x: str, y: str) -> None:
    np.testing.assert_array_equal(resolve_weight(y, (1, 1, *kernel_array(y).shape))[0, 0], kernel_array(y))
    np.testing.assert_array_equal(resolve_weight(f"{x}.T", (1, 1, *kernel_array(y).shape))[0, 0], kernel_array(y))


def test_minus_sobel_is_the_tutorials_gx_and_gy() -> None:
    np.testing.assert_array_equal(resolve_weight("-sobel-x", (1, 1, 3, 3))[0, 0], kernel_array("gx"))
    np.testing.assert_array_equal(resolve_weight("-sobel-y", (1, 1, 3, 3))[0, 0], kernel_array("gy"))


def ramp_right() -> Any:
    return np.tile(np.arange(6, dtype=np.float32), (6, 1))  # x[i, j] = j


def ramp_down() -> Any:
    return ramp_right().T.copy()  # x[i, j] = i


def bright_spot() -> Any:
    image = np.zeros((5, 5), dtype=np.float32)
    image[2, 2] = 1
    return image


# What each kernel does, worked out by hand from its textbook definition, checked on cnnops' weight
# with torch's conv2d: gradients on unit ramps (so the sign convention is pinned independently of the
# matrices above), Laplacians and edge detectors on a bright spot, blurs on a flat image.
BEHAVIOUR = [
    ("sobel-x", ramp_right, 8), ("sobel-x", ramp_down, 0),
    ("sobel-y", ramp_down, 8), ("sobel-y", ramp_right, 0),
    ("gx", ramp_right, -8), ("gx", ramp_down, 0),
    ("gy", ramp_down, -8), ("gy", ramp_right, 0),
    ("prewitt-x", ramp_right, 6), ("prewitt-x", ramp_down, 0),
    ("prewitt-y", ramp_down, 6), ("prewitt-y", ramp_right, 0),
    ("scharr-x", ramp_right, 32), ("scharr-x", ramp_down, 0),
    ("scharr-y", ramp_down, 32), ("scharr-y", ramp_right, 0),
    ("vertical-edge", ramp_right, 16), ("vertical-edge", ramp_down, 0),
    ("horizontal-edge", ramp_down, 16), ("horizontal-edge", ramp_right, 0),
    ("laplacian", ramp_right, 0), ("laplacian-8", ramp_down, 0), ("edge", ramp_right, 0),
]  # fmt: skip


@pytest.mark.parametrize(("name", "image", "value"), BEHAVIOUR, ids=[f"{n}-{i.__name__}" for n, i, _ in BEHAVIOUR])
def test_gradient_kernels_give_their_textbook_response_to_a_unit_ramp(name: str, image: Any, value: float) -> None:
    out = conv2d(image(), resolve_weight(name, (1, 1, *kernel_array(name).shape)))
    np.testing.assert_array_equal(out, np.full_like(out, value))


@pytest.mark.parametrize(("name", "centre", "neighbour", "diagonal"), [
    ("laplacian", -4, 1, 0), ("laplacian-8", -8, 1, 1), ("edge", 8, -1, -1), ("sharpen", 5, -1, 0),
    ("identity", 1, 0, 0), ("gaussian", 4 / 16, 2 / 16, 1 / 16), ("box", 1 / 9, 1 / 9, 1 / 9),
])  # fmt: skip
def test_symmetric_kernels_on_a_bright_spot(name: str, centre: float, neighbour: float, diagonal: float) -> None:
    out = conv2d(bright_spot(), resolve_weight(name, (1, 1, 3, 3)))[0]
    expected = np.array([[diagonal, neighbour, diagonal], [neighbour, centre, neighbour],
                         [diagonal, neighbour, diagonal]], dtype=np.float32)  # fmt: skip
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["gaussian", "box", "sharpen", "identity", "emboss"])
def test_blurs_sharpen_identity_and_emboss_keep_a_flat_image(name: str) -> None:
    out = conv2d(np.full((5, 5), 3, dtype=np.float32), resolve_weight(name, (1, 1, 3, 3)))
    np.testing.assert_allclose(out, np.full((1, 3, 3), 3, dtype=np.float32), rtol=1e-6, atol=0)


def test_emboss_is_positive_towards_the_bottom_right() -> None:
    # on x[i, j] = i + j the window's weights times the offsets di + dj add up to 5 + 2 + 5 = 12
    out = conv2d(ramp_right() + ramp_down(), resolve_weight("emboss", (1, 1, 3, 3)))[0]
    centres = np.add.outer(np.arange(1, 5), np.arange(1, 5)).astype(np.float32)
    np.testing.assert_array_equal(out, centres + 12)


@pytest.mark.parametrize("spelling", ["sobel-x", "SOBEL_X", " Sobel_x ", "sobel-X"])
def test_names_are_case_insensitive_with_underscore_or_dash(spelling: str) -> None:
    assert get_kernel(spelling).name == "sobel-x"
    np.testing.assert_array_equal(resolve_weight(spelling, (1, 1, 3, 3))[0, 0], kernel_array("sobel-x"))


def test_describe_kernels_lists_every_kernel_as_json_ready_dicts() -> None:
    described = describe_kernels()
    assert [d["name"] for d in described] == kernel_names() == list(KERNELS)
    sobel = next(d for d in described if d["name"] == "sobel-x")
    assert sobel == {"name": "sobel-x", "shape": [3, 3], "values": EXPECTED["sobel-x"],
                     "description": KERNELS["sobel-x"].description}  # fmt: skip
    assert "right" in sobel["description"]
    json.dumps(described)


def test_importing_kernels_does_not_import_numpy() -> None:
    code = "import cnnops.io.kernels, sys; cnnops.io.kernels.describe_kernels(); assert 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- what the kernels do, with torch as the oracle ------------------------------------------------
def test_tutorial_gx_on_a_vertical_line_gives_minus_4_0_4() -> None:
    out = conv2d(vertical_line_image(), resolve_weight("gx", (1, 1, 3, 3)))
    np.testing.assert_array_equal(out, [[[-4, 0, 4]] * 3])


def test_sobel_x_is_positive_where_intensity_increases_to_the_right() -> None:
    step = np.tile(np.array([0, 0, 1, 1, 1], dtype=np.float32), (5, 1))
    out = conv2d(step, resolve_weight("sobel-x", (1, 1, 3, 3)))
    assert (out[0, :, 0] > 0).all() and (out[0, :, 2] == 0).all()
    out_y = conv2d(step.T, resolve_weight("sobel-y", (1, 1, 3, 3)))
    assert (out_y[0, 0] > 0).all()


def test_udacity_bank_gives_four_filters_f_minus_f_transpose_minus_transpose() -> None:
    f = kernel_array("vertical-edge")
    weight = resolve_weight(UDACITY_BANK, (4, 1, 4, 4), layer="Conv2d(1, 4, 4)")
    assert weight.shape == (4, 1, 4, 4) and weight.dtype == np.float32 and weight.flags.writeable
    np.testing.assert_array_equal(weight[:, 0], np.stack([f, -f, f.T, -f.T]))


def test_negated_kernels_have_no_negative_zeros() -> None:
    weight = resolve_weight("-edge, -sobel-x.T", (2, 1, 3, 3))
    assert not np.signbit(weight[weight == 0]).any()


def test_bank_kernels_are_repeated_across_input_channels() -> None:
    weight = resolve_weight("sobel-x, sobel-y", (2, 3, 3, 3), layer="Conv2d(3, 2, 3)")
    for c in range(3):
        np.testing.assert_array_equal(weight[0, c], kernel_array("sobel-x"))
        np.testing.assert_array_equal(weight[1, c], kernel_array("sobel-y"))
    assert weight.flags.c_contiguous and weight.flags.writeable


def test_a_tuple_of_strings_is_one_bank() -> None:
    weight = resolve_weight(("sobel-x", "sobel-y, 2*box"), (3, 1, 3, 3))
    np.testing.assert_array_equal(weight[:, 0], np.stack([kernel_array("sobel-x"), kernel_array("sobel-y"),
                                                          2 * kernel_array("box")]))  # fmt: skip


def test_term_grammar_signs_factors_and_transpose() -> None:
    terms = parse_kernel_terms(" edge ,-edge,+2*box.T, -0.5 * sobel-x.t, 1e1*identity")
    assert [(t.kernel.name, t.factor, t.transpose) for t in terms] == [
        ("edge", 1.0, False), ("edge", -1.0, False), ("box", 2.0, True), ("sobel-x", -0.5, True),
        ("identity", 10.0, False),
    ]  # fmt: skip
    np.testing.assert_array_equal(np.array(terms[3].values), -0.5 * kernel_array("sobel-x").T)


# --- nested lists, numbers, files ------------------------------------------------------------------
@pytest.mark.parametrize(("given_shape", "expected"), [
    ((3, 3), (1, 1, 3, 3)),  # one filter for Conv2d(1, 1, 3)
    ((4, 3, 3), (4, 1, 3, 3)),  # four filters for Conv2d(1, 4, 3)
    ((3, 3, 3), (1, 3, 3, 3)),  # one filter over three channels for Conv2d(3, 1, 3)
    ((), (1, 1, 1, 1)),  # a number is a 1×1 kernel
    ((3,), (1, 1, 1, 3)),  # a row for a 1×3 kernel
    ((2, 1, 3, 3), (2, 1, 3, 3)),
    ((4, 5), (4, 1, 5)),  # Conv1d(1, 4, 5)
    ((5,), (1, 1, 5)),
    ((3,), (1, 3)),  # Linear(3, 1)
    ((3,), (3, 1)),  # Linear(1, 3)
])  # fmt: skip
def test_weight_may_leave_out_size_1_dimensions_before_the_kernel(given_shape: tuple, expected: tuple) -> None:
    values = np.arange(math.prod(given_shape), dtype=np.float32).reshape(given_shape)
    layer = "Linear" if len(expected) == 2 else "Conv2d"
    weight = resolve_weight(values.tolist(), expected, layer=layer)
    assert weight.shape == expected and weight.dtype == np.float32
    np.testing.assert_array_equal(weight.ravel(), values.ravel())


def test_nested_tuples_from_the_stage_parser_work_like_lists() -> None:
    weight = resolve_weight(((1, 0, -1), (2, 0, -2), (1, 0, -1)), (1, 1, 3, 3))
    np.testing.assert_array_equal(weight[0, 0], kernel_array("gx"))


def test_non_finite_numbers_are_kept_and_overflow_to_inf_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weight = resolve_weight([math.inf, -math.inf, math.nan, 1e300], (1, 1, 1, 4))
    assert weight[0, 0, 0, :2].tolist() == [math.inf, -math.inf]
    assert math.isnan(weight[0, 0, 0, 2]) and weight[0, 0, 0, 3] == math.inf


def test_weight_files_json_and_npy(tmp_path: Any) -> None:
    (tmp_path / "gx.json").write_text(json.dumps(EXPECTED["gx"]))
    np.save(tmp_path / "bank.npy", np.stack([kernel_array("gx"), kernel_array("gy")]))
    weight = resolve_weight(str(tmp_path / "gx.json"), (1, 1, 3, 3))
    np.testing.assert_array_equal(weight[0, 0], kernel_array("gx"))
    bank = resolve_weight(str(tmp_path / "bank.npy"), (2, 1, 3, 3))
    assert bank.dtype == np.float32
    np.testing.assert_array_equal(bank[1, 0], kernel_array("gy"))


def test_random_is_uniform_in_minus_1_to_1_and_reproducible() -> None:
    weight = resolve_weight("random", (8, 3, 5, 5))
    assert weight.shape == (8, 3, 5, 5) and weight.dtype == np.float32
    assert weight.min() >= -1 and weight.max() < 1 and weight.std() > 0.4
    np.testing.assert_array_equal(weight, resolve_weight(" RANDOM ", (8, 3, 5, 5), seed=0))
    assert not np.array_equal(weight, resolve_weight("random", (8, 3, 5, 5), seed=1))
    assert resolve_weight("random", (4, 9), layer="Linear(9, 4)").shape == (4, 9)


def test_resolve_bias() -> None:
    assert resolve_bias(True, 3) is None and resolve_bias(False, 3) is None and resolve_bias(None, 3) is None
    filled = resolve_bias(0.5, 3)
    assert filled is not None and filled.tolist() == [0.5, 0.5, 0.5]
    bias = resolve_bias((1, 2, math.inf), 3)
    assert bias is not None and bias.dtype == np.float32 and bias.tolist() == [1, 2, math.inf]


def test_weight_layout_gives_filter_count_and_kernel_size_for_cnnops_conv(tmp_path: Any) -> None:
    np.save(tmp_path / "w.npy", np.zeros((6, 3, 5, 5)))
    assert weight_layout(UDACITY_BANK, 2) == (4, (4, 4))
    assert weight_layout(("sobel-x", "sobel-y"), 2) == (2, (3, 3))
    assert weight_layout("[[1, 0, -1]]", 2) == (1, (1, 3))
    assert weight_layout("[[1, 0, -1], [2, 0, -2]]", 1) == (2, (3,))
    assert weight_layout("[[[1, 2], [3, 4]]] ", 2) == (1, (2, 2))
    assert weight_layout("0.5", 2) == (1, (1, 1))
    assert weight_layout(str(tmp_path / "w.npy"), 2) == (6, (5, 5))
    assert weight_layout("random", 2) is None and weight_layout("sobel-x", 1) is None


# --- errors ----------------------------------------------------------------------------------------
def raises(spec: Any, expected: tuple, layer: str = "Conv2d", **kwargs: Any) -> str:
    with pytest.raises(SpecError) as info:
        resolve_weight(spec, expected, layer=layer, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_kernel_size_mismatch_names_both_sizes_and_the_fix() -> None:
    assert raises("edge", (4, 1, 5, 5), "Conv2d(1, 4, 5)") == (
        "weight 'edge' is 3×3 but Conv2d(1, 4, 5) has kernel_size 5×5 — use kernel_size=3")
    assert "use kernel_size=4" in raises("vertical-edge", (1, 1, 3, 3))


def test_filter_count_mismatch_says_how_many_to_list() -> None:
    message = raises("sobel-x, sobel-y", (4, 1, 3, 3), "Conv2d(1, 4, 3)")
    assert message == ("weight 'sobel-x, sobel-y' gives 2 filters but Conv2d(1, 4, 3) has out_channels 4 — "
                       "list 4 kernel terms or use out_channels=2")  # fmt: skip
    assert "in_channels 3" in raises("edge", (3, 2, 3, 3), "ConvTranspose2d(3, 2, 3)")


def test_mixed_kernel_sizes_in_one_bank() -> None:
    assert "mixes kernel sizes (3×3, 4×4)" in raises("edge, vertical-edge", (2, 1, 3, 3))


@pytest.mark.parametrize(("typo", "suggestion"), [("sobelx", "sobel-x"), ("laplace", "laplacian"),
                                                   ("gausian", "gaussian"), ("Vertical_Edges", "vertical-edge")])
def test_unknown_kernel_suggests_the_closest_name(typo: str, suggestion: str) -> None:
    message = raises(f"edge, -{typo}.T", (2, 1, 3, 3))
    assert f"unknown kernel '{typo}'" in message and f"did you mean '{suggestion}'" in message
    assert "cnnops kernels" in message


def test_unknown_kernel_without_a_close_name_points_to_the_list() -> None:
    message = raises("zzzz", (1, 1, 3, 3))
    assert "did you mean" not in message and "cnnops kernels" in message


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "an empty term"),
    ("edge,,box", "an empty term"),
    ("edge,", "an empty term"),
    ("2*", "'2*', which is not a kernel term"),
    ("edge*2", "'edge*2', which is not a kernel term"),
    ("--edge", "not a kernel term"),
    ("edge.X", "not a kernel term"),
    ("sobel x", "not a kernel term"),
])  # fmt: skip
def test_malformed_terms_show_the_grammar(text: str, fragment: str) -> None:
    message = raises(text, (1, 1, 3, 3))
    assert fragment in message and "[-][NUMBER*]NAME[.T]" in message


def test_random_cannot_be_mixed_with_kernel_terms() -> None:
    assert "give it alone" in raises("random, edge", (2, 1, 3, 3))


def test_names_are_not_weights_for_linear_or_1d_convolutions() -> None:
    message = raises("sobel-x", (4, 9), "Linear(9, 4)")
    assert "Linear(9, 4) takes no named kernels" in message and "'random'" in message
    assert "Conv1d(1, 1, 3) has 1-D kernels" in raises("sobel-x", (1, 1, 3), "Conv1d(1, 1, 3)")


def test_shape_mismatch_names_both_shapes_and_the_axes() -> None:
    bank = np.zeros((4, 3, 3)).tolist()
    assert raises(bank, (2, 1, 3, 3), "Conv2d(1, 2, 3)") == (
        "weight has shape (4, 3, 3) but Conv2d(1, 2, 3) needs (2, 1, 3, 3) — (out_channels, in_channels/groups, kH, kW)")
    assert "(out_features, in_features)" in raises([[1, 2]], (4, 9), "Linear(9, 4)")
    assert "(in_channels, out_channels/groups, kH, kW)" in raises([1], (2, 1, 3, 3), "ConvTranspose2d(2, 1, 3)")
    assert "(out_channels, in_channels/groups, kL)" in raises([1, 2], (1, 1, 3), "Conv1d(1, 1, 3)")
    assert "needs (2, 2, 3, 3)" in raises(np.zeros((2, 3, 3)).tolist(), (2, 2, 3, 3))  # both axes > 1
    assert "has shape (1, 1, 1, 1, 3, 3)" in raises([[[[[[0] * 3] * 3]]]], (1, 1, 3, 3))


def test_file_weight_with_wrong_shape_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "w.json"
    path.write_text("[[1, 2], [3, 4]]")
    assert f"weight from '{path}' has shape (2, 2)" in raises(str(path), (1, 1, 3, 3))


def test_missing_weight_file_is_a_user_error(tmp_path: Any) -> None:
    with pytest.raises(CnnopsError, match="does not exist"):
        resolve_weight(str(tmp_path / "nope.npy"), (1, 1, 3, 3))


@pytest.mark.parametrize(("spec", "fragment"), [
    ([[1, 2, 3], [1, 2]], "weight[1] has 2 items where weight[0] has 3 — make every row the same length"),
    ([[[1], [2]], [[1], [2, 3]]], "weight[1][1] has 2 items where weight[1][0] has 1"),
    ([[1, 2], 3], "weight[1] is a number where weight[0] is a list of 2 — give every row the same nesting"),
    ([[1, [2]], [3, 4]], "weight[0][1] is a list where weight[0][0] is a number"),
    ([[1, "a"]], "weight[0][1] is the string 'a' — use a number"),
    ([[1, True]], "weight[0][1] is true — use a number"),
    ([[1, None]], "weight[0][1] is null — use a number"),
    ([[10**400, 0, 0]], None),  # beyond float32's range: infinity, as for inputs (torch.tensor does the same)
    (None, "weight is None"),
    ({"data": [1]}, "weight is {'data': [1]}"),
    (True, "weight is True"),
])  # fmt: skip
def test_bad_nested_lists_name_the_bad_row(spec: Any, fragment: str | None) -> None:
    if fragment is None:
        assert resolve_weight(spec, (1, 1, 1, 3)).tolist() == [[[[float("inf"), 0.0, 0.0]]]]
        return
    assert fragment in raises(spec, (1, 1, 1, 3) if spec != [[1, 2], 3] else (1, 1, 2, 2))


def test_bad_seed() -> None:
    assert "seed -1 is not a non-negative integer" in raises("random", (1, 1, 3, 3), seed=-1)
    assert "seed 1.5" in raises("random", (1, 1, 3, 3), seed=1.5)


def test_bias_errors() -> None:
    with pytest.raises(SpecError, match=r"^bias has 3 numbers but Conv2d\(1, 4, 3\) has out_channels 4 — give 4"):
        resolve_bias([1, 2, 3], 4, layer="Conv2d(1, 4, 3)")
    with pytest.raises(SpecError, match="has out_features 2"):
        resolve_bias([1], 2, layer="Linear(3, 2)")
    with pytest.raises(SpecError, match=r"bias must be a number or a flat list of 1 numbers, got shape \(1, 1\)"):
        resolve_bias([[1]], 1)
    with pytest.raises(SpecError, match="bias is 'zero'"):
        resolve_bias("zero", 1)


def test_weight_layout_errors_match_resolve_weight() -> None:
    with pytest.raises(SpecError, match="did you mean 'sobel-x'"):
        weight_layout("sobelx", 2)
    with pytest.raises(SpecError, match="is not valid JSON: expecting ',' delimiter"):
        weight_layout("[[1, 2]", 2)


# --- properties --------------------------------------------------------------------------------------
def nested(values: list[float], shape: tuple[int, ...]) -> Any:
    if not shape:
        return values[0]
    step = math.prod(shape[1:])
    return [nested(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
dims = st.integers(1, 4)


@st.composite
def fitting_weights(draw: st.DrawFn) -> tuple[Any, tuple[int, ...], tuple[int, ...], str]:
    """A PyTorch weight shape, and a shape that fits it (size-1 dimensions before the kernel left
    out, or leading ones of the kernel once those are gone), with values."""
    layer = draw(st.sampled_from(["Conv2d", "Conv1d", "Linear"]))
    kernel_rank = {"Conv2d": 2, "Conv1d": 1, "Linear": 0}[layer]
    lead = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(2))
    kernel = tuple(draw(dims) for _ in range(kernel_rank))
    kept = tuple(n for n in lead if n > 1 or draw(st.booleans()))
    if not kept and kernel_rank and draw(st.booleans()):
        drop = draw(st.integers(0, kernel_rank))
        given = kernel[drop:] if all(n == 1 for n in kernel[:drop]) else kernel
    else:
        given = kept + kernel
    values = draw(st.lists(floats32, min_size=math.prod(given), max_size=math.prod(given)))
    return nested(values, given), given, lead + kernel, layer


@given(fitting_weights())
def test_fitting_nested_lists_resolve_to_pytorchs_shape_with_the_same_values(case: Any) -> None:
    spec, given_shape, expected, layer = case
    weight = resolve_weight(spec, expected, layer=layer)
    assert weight.shape == expected and weight.dtype == np.float32
    np.testing.assert_array_equal(weight.ravel(), np.array(spec, dtype=np.float32).ravel())


@given(st.lists(dims, min_size=0, max_size=4), st.data())
def test_a_suffix_of_pytorchs_shape_gets_leading_ones(suffix: list[int], data: st.DataObject) -> None:
    expected = (1,) * (4 - len(suffix)) + tuple(suffix)
    values = data.draw(st.lists(floats32, min_size=math.prod(suffix), max_size=math.prod(suffix)))
    weight = resolve_weight(nested(values, tuple(suffix)), expected)
    assert weight.shape == expected
    np.testing.assert_array_equal(weight.ravel(), np.array(values, dtype=np.float32))


@given(st.lists(dims, max_size=5), st.lists(dims, min_size=4, max_size=4))
def test_any_other_shape_is_a_spec_error(given_shape: list[int], expected: list[int]) -> None:
    spec = np.zeros(given_shape).tolist()
    if fits(tuple(given_shape), tuple(expected), 2):
        assert resolve_weight(spec, tuple(expected)).shape == tuple(expected)
    else:
        assert "but Conv2d needs" in raises(spec, tuple(expected))


term = st.tuples(st.sampled_from(["", "-", "+"]), st.sampled_from(["", "2*", "0.5 * ", "1e-1*"]),
                 st.sampled_from(sorted(EXPECTED)), st.sampled_from(["", ".T", ".t"]))  # fmt: skip


@given(st.lists(term, min_size=1, max_size=5))
def test_kernel_terms_resolve_to_scaled_transposed_kernels(terms: list[tuple[str, str, str, str]]) -> None:
    text = ", ".join("".join(t) for t in terms)
    expected = []
    for sign, factor, name, transpose in terms:
        k = kernel_array(name).T if transpose else kernel_array(name)
        scale = float(factor.replace("*", "") or 1) * (-1 if sign == "-" else 1)
        expected.append((scale * k.astype(np.float64)).astype(np.float32))
    if len({k.shape for k in expected}) > 1:
        assert "mixes kernel sizes" in raises(text, (len(terms), 1, 3, 3))
        return
    weight = resolve_weight(text, (len(terms), 2, *expected[0].shape))
    np.testing.assert_array_equal(weight[:, 1], np.stack(expected))


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(alphabet="-+*., Tt0123456789eEabdgilosxy_", max_size=30)))
def test_term_parser_on_any_text_only_raises_spec_error(text: str) -> None:
    try:
        terms = parse_kernel_terms(text)
    except SpecError as error:
        assert "\n" not in str(error)
    else:
        assert terms and all(t.kernel.name in KERNELS for t in terms)
        for t in terms:  # each term is its textbook kernel, scaled and maybe transposed
            literal = kernel_array(t.kernel.name).astype(np.float64)
            # the blurs' 1/9 and 1/16 are float32 in the written-out table, float64 in the term
            np.testing.assert_allclose(np.array(t.values), t.factor * (literal.T if t.transpose else literal), rtol=1e-6)


@given(st.text(max_size=30).filter(lambda s: not s.strip().lower().endswith((".json", ".npy"))))
def test_resolve_weight_on_any_text_gives_a_weight_or_a_spec_error(text: str) -> None:
    try:
        weight = resolve_weight(text, (2, 1, 3, 3))
    except SpecError:
        return
    assert weight.shape == (2, 1, 3, 3)
    if text.strip().lower() != "random":  # otherwise two 3×3 kernel terms, given by their textbook values
        terms = parse_kernel_terms(text)
        literals = [kernel_array(t.kernel.name).astype(np.float64) for t in terms]
        expected = [t.factor * (k.T if t.transpose else k) for t, k in zip(terms, literals)]
        np.testing.assert_array_equal(weight[:, 0], np.array(expected, dtype=np.float32))


json_like = st.recursive(
    st.one_of(floats32, st.integers(-(10**20), 10**20), st.booleans(), st.none(), st.text(max_size=3)),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children),
    max_leaves=20,
)


@given(json_like, st.sampled_from([(1, 1, 2, 2), (2, 1, 2), (2, 2)]))
def test_resolve_weight_on_any_nested_value_gives_a_weight_or_a_spec_error(spec: Any, expected: tuple) -> None:
    layer = "Linear" if len(expected) == 2 else "Conv"
    try:
        weight = resolve_weight(spec, expected, layer=layer)
    except SpecError:
        return
    assert weight.shape == expected and weight.dtype == np.float32

    def numbers(node: Any) -> list[float]:
        return [v for child in node for v in numbers(child)] if isinstance(node, (list, tuple)) else [float(node)]

    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(weight.ravel(), np.array(numbers(spec), dtype=np.float64).astype(np.float32))
