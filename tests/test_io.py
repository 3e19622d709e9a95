"""Inputs and outputs: JSON in its three forms, .npy, images, stdin, inline JSON; atomic writes."""

from __future__ import annotations

import io as stdio
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from PIL import Image

from cnnops.errors import CnnopsError, InputError
from cnnops.io import jsontext, nested, read
from cnnops.io import write as writing

running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0


def read_text(text: str, **kwargs):
    """read_input on JSON text given through stdin."""
    return read.read_input("-", stdin=stdio.BytesIO(text.encode()), **kwargs)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = stdio.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.kind == "O")
    return buffer.getvalue()


def write(path, content: str | bytes) -> str:
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)
    return str(path)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values with equal signs of zero, NaN equal to NaN."""
    return (
        a.shape == b.shape
        and np.array_equal(a, b, equal_nan=True)
        and np.array_equal(np.signbit(a) | np.isnan(a), np.signbit(b) | np.isnan(b))
    )


# ---------------------------------------------------------------------------------------------- JSON forms


def test_nested_list_becomes_float32_tensor_of_that_shape():
    tensor = read.read_input("[[1, 2, 3], [4, 5, 6]]")
    assert tensor.data.dtype == np.float32
    assert tensor.data.shape == (2, 3)
    assert tensor.data.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert tensor.indices is None
    assert tensor.source == "inline JSON"


def test_inline_json_may_start_with_whitespace():
    assert read.read_input("  \n[1.5]").data.tolist() == [1.5]


def test_scalar_number_is_a_zero_dimensional_tensor():
    tensor = read_text("2.5")
    assert tensor.data.shape == ()
    assert tensor.data.dtype == np.float32
    assert float(tensor.data) == 2.5
    assert tensor.source == "stdin"


def test_data_object_with_scalar_data_is_zero_dimensional():
    assert read.read_input('{"data": 7}').data.shape == ()


def test_data_object_with_flat_data_is_reshaped_to_shape():
    tensor = read.read_input('{"data": [1, 2, 3, 4, 5, 6], "shape": [1, 2, 3]}')
    assert tensor.data.shape == (1, 2, 3)
    assert tensor.data.ravel().tolist() == [1, 2, 3, 4, 5, 6]


def test_data_object_with_nested_data_is_reshaped_to_shape():
    assert read.read_input('{"data": [[1, 2], [3, 4]], "shape": [4]}').data.tolist() == [1, 2, 3, 4]


def test_shape_that_does_not_match_the_data_names_both():
    with pytest.raises(InputError, match=r"data has 3 numbers but shape \[2, 2\] needs 4"):
        read.read_input('{"data": [1, 2, 3], "shape": [2, 2]}')


@pytest.mark.parametrize("shape", ['[2, "2"]', "[2, -1]", "[2, true]", "5", "[2.0]"])
def test_shape_must_be_a_list_of_whole_numbers(shape):
    with pytest.raises(InputError, match="shape must be a list of whole numbers"):
        read.read_input(f'{{"data": [1, 2], "shape": {shape}}}')


def test_null_shape_and_indices_are_absent():
    tensor = read.read_input('{"data": [1, 2], "shape": null, "indices": null}')
    assert tensor.data.tolist() == [1, 2]
    assert tensor.indices is None


def test_data_object_carries_indices_as_int64():
    tensor = read.read_input('{"data": [[5, 6], [7, 8]], "indices": [[0, 3], [8, 15]]}')
    assert tensor.indices.dtype == np.int64
    assert tensor.indices.tolist() == [[0, 3], [8, 15]]


def test_indices_are_reshaped_with_the_data_when_shape_is_given():
    tensor = read.read_input('{"data": [1, 2, 3, 4], "shape": [2, 2], "indices": [0, 1, 2, 3]}')
    assert tensor.indices.shape == (2, 2)


def test_indices_written_as_whole_floats_are_accepted():
    assert read.read_input('{"data": [1, 2], "indices": [3.0, 4]}').indices.tolist() == [3, 4]


def test_indices_of_another_shape_are_refused_with_both_shapes():
    with pytest.raises(InputError, match=r"indices has shape \(4,\) but data has shape \(2, 2\)"):
        read.read_input('{"data": [[1, 2], [3, 4]], "indices": [0, 1, 2, 3]}')


@pytest.mark.parametrize(
    "indices, message",
    [
        ("[0, 1.5]", r"indices\[1\] is 1.5 — indices must be whole numbers"),
        ("[0, true]", r"indices\[1\] is true"),
        ('[0, "NaN"]', r"indices\[1\] is the string 'NaN'"),
        ("[0, null]", r"indices\[1\] is null"),
        ("[0, 18446744073709551616]", r"indices\[1\] is 18446744073709551616 — an index must fit in 64 bits"),
        ("[0, NaN]", r"indices\[1\] is nan"),
    ],
)
def test_indices_must_be_whole_numbers(indices, message):
    with pytest.raises(InputError, match=message):
        read_text(f'{{"data": [1, 2], "indices": {indices}}}')


def test_cnnops_result_document_gives_its_output_with_indices():
    doc = {
        "input": {"shape": [1, 1, 4, 4]},
        "stages": [{"index": 1, "stage": "MaxPool2d(2)", "input_shape": [1, 1, 4, 4], "output_shape": [1, 1, 2, 2]}],
        "output": {"shape": [1, 1, 2, 2], "data": [[[[5.0, 7.0], [13.0, 15.0]]]], "indices": [[[[5, 7], [13, 15]]]]},
    }
    tensor = read_text(json.dumps(doc))
    assert tensor.data.shape == (1, 1, 2, 2)
    assert tensor.data.ravel().tolist() == [5, 7, 13, 15]
    assert tensor.indices.ravel().tolist() == [5, 7, 13, 15]


def test_commands_chain_through_dumps_and_stdin():
    data = np.array([[[0.1, np.nan], [-np.inf, -0.0]]], dtype=np.float32)
    indices = np.array([[[0, 1], [2, 3]]], dtype=np.int64)
    text = jsontext.dumps({"output": {"shape": list(data.shape), "data": data, "indices": indices}})
    tensor = read_text(text)
    assert same_bits(tensor.data, data)
    assert np.array_equal(tensor.indices, indices)


def test_result_document_errors_name_the_output_path():
    with pytest.raises(InputError, match=r"output.data\[1\] has 1 items where output.data\[0\] has 2"):
        read_text('{"output": {"data": [[1, 2], [3]]}}')


def test_result_document_without_output_data_is_refused():
    with pytest.raises(InputError, match='"output" holds no "data"'):
        read_text('{"output": {"shape": [1, 2]}}')


def test_shape_command_result_is_refused_with_an_explanation():
    doc = {"input_shape": [1, 3, 8, 8], "stages": [], "output_shape": [1, 3, 8, 8], "total_params": 0}
    with pytest.raises(InputError, match="`cnnops shape` result, which has shapes but no numbers"):
        read_text(json.dumps(doc))


def test_object_without_data_is_refused():
    with pytest.raises(InputError, match='the JSON object has no "data" key'):
        read.read_input('{"values": [1, 2]}')


def test_misspelt_key_is_named():
    with pytest.raises(InputError, match="unknown key 'indice'"):
        read.read_input('{"data": [1, 2], "indice": [0, 1]}')


# ---------------------------------------------------------------------------------------------- JSON validation


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[1, 2, 3], [4, 5]]", r"data\[1\] has 2 items where data\[0\] has 3"),
        ("[[1, 2, 3], [4, 5, 6], [7, 8, 9, 10]]", r"data\[2\] has 4 items where data\[0\] has 3"),
        ("[[[1, 2], [3, 4]], [[5, 6], [7]]]", r"data\[1\]\[1\] has 1 items where data\[1\]\[0\] has 2"),
        ("[[[1, 2], [3, 4]], [[5], [7, 8]]]", r"data\[1\]\[0\] has 1 items where data\[0\]\[0\] has 2"),
        ("[[1, 2], 3]", r"data\[1\] is a number where data\[0\] is a list of 2"),
        ("[[1, 2], [3, [4]]]", r"data\[1\]\[1\] is a list where data\[1\]\[0\] is a number"),
        ("[1, [2]]", r"data\[1\] is a list where data\[0\] is a number"),
        ("[[1], []]", r"data\[1\] has 0 items where data\[0\] has 1"),
        ('[[1, 2], "ab"]', r"data\[1\] is the string 'ab' — use a list of numbers"),
    ],
)
def test_ragged_lists_name_the_first_bad_row(text, message):
    with pytest.raises(InputError, match=message):
        read.read_input(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[1, "x"]', r"data\[1\] is the string 'x'"),
        ('[1, "1.5"]', r"data\[1\] is the string '1.5'"),
        ('[1, "Inf"]', r"data\[1\] is the string 'Inf'"),
        ('[[1, {"a": 1}]]', r"data\[0\]\[1\] is an object"),
        ("[[1, true]]", r"data\[0\]\[1\] is true"),
        ("[false]", r"data\[0\] is false"),
        ("[[1], [null]]", r"data\[1\]\[0\] is null"),
        ('{"data": {"a": 1}}', r"data is an object"),
        ('["' + "x" * 100 + '"]', r"data\[0\] is the string 'x{21}…'"),
    ],
)
def test_values_that_are_not_numbers_are_named_with_their_path(text, message):
    with pytest.raises(InputError, match=message):
        read.read_input(text)


@pytest.mark.parametrize("text", ["true", "null", '"hello"'])
def test_a_top_level_value_that_is_not_a_number_is_refused(text):
    with pytest.raises(InputError, match="data is"):
        read_text(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            '["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", 1]',
            [np.nan, np.inf, -np.inf, np.nan, np.inf, -np.inf, 1],
        ),
        ("[NaN, Infinity, -Infinity, 2]", [np.nan, np.inf, -np.inf, 2]),
        ('{"data": [[NaN, "Infinity"]]}', [[np.nan, np.inf]]),
        ('"NaN"', np.nan),
    ],
)
def test_nan_and_infinities_are_accepted_as_strings_and_literals(text, expected):
    assert np.array_equal(read_text(text).data, np.array(expected, dtype=np.float32), equal_nan=True)


@pytest.mark.parametrize("text, where", [("[]", "data"), ("[[]]", r"data\[0\]"), ("[[[]]]", r"data\[0\]\[0\]")])
def test_empty_tensors_are_refused(text, where):
    with pytest.raises(InputError, match=f"{where} is empty — a tensor needs at least one number"):
        read.read_input(text)


def test_empty_data_with_a_zero_shape_is_refused():
    with pytest.raises(InputError, match="is empty"):
        read.read_input('{"data": [], "shape": [0, 3]}')


def test_thirty_two_levels_are_allowed_and_thirty_three_are_not():
    assert read.read_input("[" * 32 + "1" + "]" * 32).data.ndim == 32
    with pytest.raises(InputError, match="nested more than 32 levels deep"):
        read.read_input("[" * 33 + "1" + "]" * 33)


@pytest.mark.parametrize("depth", [2000, 200_000])
def test_absurd_nesting_is_refused_without_a_traceback(depth):
    with pytest.raises(InputError, match="nested"):
        read.read_input("[" * depth + "]" * depth)


def test_too_many_numbers_are_refused_with_the_limit():
    with pytest.raises(InputError, match=r"data holds 12 numbers, more than the limit of 10 — raise max_elements"):
        read.read_input("[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]", max_elements=10)
    assert read.read_input("[1, 2, 3]", max_elements=3).data.size == 3


def test_a_huge_declared_shape_is_refused_before_any_array_is_built(monkeypatch):
    def no_arrays(*args, **kwargs):
        raise AssertionError("an array was built")

    monkeypatch.setattr(np, "array", no_arrays)
    with pytest.raises(InputError, match="more than the limit"):
        read.read_input('{"data": [1], "shape": [100000, 100000, 100000]}')
    with pytest.raises(InputError, match="more than the limit"):
        read.read_input("[" + ", ".join(["[1, 2, 3]"] * 10) + "]", max_elements=20)


def test_regular_lists_take_the_fast_path_without_a_per_number_walk(monkeypatch):
    def no_walk(*args, **kwargs):
        raise AssertionError("walked element by element")

    monkeypatch.setattr(nested, "_validated_numbers", no_walk)
    text = json.dumps(np.arange(3 * 40 * 50, dtype=np.float64).reshape(3, 40, 50).tolist())
    assert read.read_input(text).data.shape == (3, 40, 50)
    assert read_text('{"data": [1, "NaN", 2]}').data.shape == (3,)


@pytest.mark.parametrize(
    "text, where",
    [
        ("[1, 2", "line 1, column 6"),
        ('{"data": [1, 2],\n "shape": [2,,]}', "line 2, column 14"),
        ("[1 2]", "line 1, column 4"),
    ],
)
def test_invalid_json_names_line_and_column(text, where):
    with pytest.raises(InputError, match=f"is not valid JSON: .* at {where}; nor a Python literal: "):
        read.read_input(text)


def test_a_trailing_comma_is_python_and_read():
    assert read.read_input('{"data": [1, 2],\n "shape": [2,]}').data.tolist() == [1.0, 2.0]


def test_empty_stdin_is_refused():
    with pytest.raises(InputError, match="stdin is empty"):
        read.read_input("-", stdin=stdio.BytesIO(b"  \n"))


def test_stdin_that_is_not_utf8_is_refused():
    with pytest.raises(InputError, match="stdin is not UTF-8 JSON text"):
        read.read_input("-", stdin=stdio.BytesIO(b"[1, \xff]"))


def test_stdin_that_is_a_terminal_is_refused_instead_of_waiting():
    class Terminal(stdio.BytesIO):
        def isatty(self):
            return True

    with pytest.raises(InputError, match="stdin is a terminal"):
        read.read_input("-", stdin=Terminal(b"[1]"))


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path / "bom.json", b"\xef\xbb\xbf[1, 2]")
    assert read.read_input(path).data.tolist() == [1, 2]


def test_numbers_beyond_float32_become_infinity_as_in_torch():
    data = read.read_input("[1e39, -1e39, 1e400, 18446744073709551616, " + "9" * 400 + "]").data
    assert data.tolist()[:3] == [np.inf, -np.inf, np.inf]
    assert data[3] == np.float32(2.0**64)
    assert data[4] == np.inf


def test_large_integers_keep_float32_precision():
    assert read.read_input("[16777217, -3]").data.tolist() == [16777216.0, -3.0]


# ---------------------------------------------------------------------------------------------- paths


def test_json_file_is_read_and_named_by_its_path(tmp_path):
    path = write(tmp_path / "x.json", "[[1, 2], [3, 4]]")
    tensor = read.read_input(path)
    assert tensor.data.tolist() == [[1, 2], [3, 4]]
    assert tensor.source == path


def test_suffixes_are_case_insensitive(tmp_path):
    json_path = write(tmp_path / "X.JSON", "[1]")
    npy_path = write(tmp_path / "X.NPY", npy_bytes(np.array([2.0])))
    Image.new("L", (2, 1), 255).save(tmp_path / "x.PNG")
    assert read.read_input(json_path).data.tolist() == [1]
    assert read.read_input(npy_path).data.tolist() == [2]
    assert read.read_input(str(tmp_path / "x.PNG")).data.shape == (1, 1, 2)


def test_missing_file_says_it_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"^input file 'x.json' does not exist$"):
        read.read_input("x.json")


def test_missing_path_without_a_known_suffix_lists_what_an_input_can_be(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"input 'maxpol' is neither a file nor inline JSON — give a \.json, \.npy"):
        read.read_input("maxpol")


def test_existing_file_with_unknown_suffix_lists_the_known_ones(tmp_path):
    path = write(tmp_path / "x.txt", "[1]")
    with pytest.raises(InputError, match="unknown suffix") as info:
        read.read_input(path)
    for suffix in read.INPUT_SUFFIXES:
        assert suffix in str(info.value)


@pytest.mark.parametrize("name", ["folder", "folder.json", "folder.png", "folder.npy"])
def test_directory_is_refused(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match="is a directory"):
        read.read_input(str(tmp_path / name))


def test_broken_symlink_does_not_exist(tmp_path):
    (tmp_path / "link.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(InputError, match="does not exist"):
        read.read_input(str(tmp_path / "link.json"))


def test_fifo_is_refused_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(InputError, match="is not a regular file"):
        read.read_input(str(tmp_path / "pipe.json"))


@pytest.mark.skipif(running_as_root, reason="root can read any file")
def test_unreadable_file_is_refused(tmp_path):
    path = write(tmp_path / "secret.json", "[1]")
    os.chmod(path, 0)
    with pytest.raises(InputError, match="cannot be read"):
        read.read_input(path)


def test_unreadable_file_is_refused_even_for_root(tmp_path, monkeypatch):
    path = write(tmp_path / "secret.json", "[1]")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == path else real_access(p, mode))
    with pytest.raises(InputError, match="cannot be read: permission denied"):
        read.read_input(path)


# ---------------------------------------------------------------------------------------------- .npy


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint16, ">f8"])
def test_npy_numbers_become_float32(tmp_path, dtype):
    array = np.arange(12).reshape(3, 4).astype(dtype)
    path = write(tmp_path / "x.npy", npy_bytes(array))
    tensor = read.read_input(path)
    assert tensor.data.dtype == np.float32
    assert tensor.data.flags.c_contiguous
    assert np.array_equal(tensor.data, np.arange(12).reshape(3, 4))


def test_npy_in_fortran_order_keeps_its_values(tmp_path):
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    assert np.array_equal(read.read_input(write(tmp_path / "f.npy", npy_bytes(array))).data, array)


def test_npy_zero_dimensional_array_is_a_scalar_tensor():
    tensor = read.read_input("-", stdin=stdio.BytesIO(npy_bytes(np.array(3.5))))
    assert tensor.data.shape == ()
    assert float(tensor.data) == 3.5


def test_npy_on_stdin_is_recognised_by_its_magic():
    tensor = read.read_input("-", stdin=stdio.BytesIO(npy_bytes(np.ones((2, 2)))))
    assert tensor.data.shape == (2, 2)
    assert tensor.source == "stdin"


@pytest.mark.parametrize(
    "array, what",
    [
        (np.array([True, False]), "booleans"),
        (np.array(["a", "b"]), "strings"),
        (np.array([b"a"]), "bytes"),
        (np.array([1 + 2j]), "complex numbers"),
        (np.array([{}], dtype=object), "Python objects"),
        (np.zeros(2, dtype=[("a", "f4")]), "structured records"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "dates"),
    ],
)
def test_npy_that_is_not_real_numbers_is_refused(tmp_path, array, what):
    path = write(tmp_path / "x.npy", npy_bytes(array))
    with pytest.raises(InputError, match=f"holds {what}"):
        read.read_input(path)


def test_npy_object_array_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(InputError):
        read.read_input(write(tmp_path / "o.npy", npy_bytes(np.array([{"a": 1}], dtype=object))))


def test_truncated_npy_is_refused(tmp_path):
    path = write(tmp_path / "t.npy", npy_bytes(np.arange(100.0))[:-17])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read.read_input(path)


@pytest.mark.parametrize("shape", ["(-2, -3)", "(-6,)", "(2, -3)"])
def test_npy_header_with_a_negative_size_is_refused(tmp_path, shape):
    # numpy's header reader takes any whole numbers; (-2, -3) has 6 numbers by its product alone
    payload = npy_bytes(np.arange(6, dtype=np.float32)).replace(b"(6,)", shape.encode().ljust(4))
    for source in (str(write(tmp_path / "neg.npy", payload)), "-"):
        with pytest.raises(InputError, match=rf"is corrupt: its header gives the shape {re.escape(shape)}, with a negative"):
            read.read_input(source, stdin=stdio.BytesIO(payload))


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"\x93NUMPY\x01\x00garbage", b"\x93NUMPY\x09\x09xx"])
def test_file_that_is_not_npy_is_refused(tmp_path, content):
    with pytest.raises(InputError, match="is not a valid .npy file"):
        read.read_input(write(tmp_path / "bad.npy", content))


def test_empty_npy_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"empty array of shape \(3, 0\)"):
        read.read_input(write(tmp_path / "e.npy", npy_bytes(np.zeros((3, 0)))))


def test_npy_over_the_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    path = write(tmp_path / "big.npy", npy_bytes(np.zeros((100, 100))))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the array was loaded"))
    with pytest.raises(InputError, match="holds 10,000 numbers, more than the limit of 9,999"):
        read.read_input(path, max_elements=9999)


# ---------------------------------------------------------------------------------------------- images


def test_grayscale_png_becomes_one_channel_in_unit_range(tmp_path):
    pixels = np.array([[0, 51, 255], [128, 1, 254]], dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "g.png")
    tensor = read.read_input(str(tmp_path / "g.png"))
    assert tensor.data.dtype == np.float32
    assert tensor.data.shape == (1, 2, 3)
    assert np.array_equal(tensor.data[0], pixels.astype(np.float32) / np.float32(255))
    assert tensor.indices is None


def test_colour_image_is_grayscale_by_default_and_three_channels_with_rgb(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[..., 0] = 255  # pure red
    pixels[1, 2] = (0, 0, 255)  # one blue pixel
    Image.fromarray(pixels).save(tmp_path / "c.png")
    gray = read.read_input(str(tmp_path / "c.png")).data
    colour = read.read_input(str(tmp_path / "c.png"), rgb=True).data
    assert gray.shape == (1, 2, 3)
    assert gray[0, 0, 0] == pytest.approx(76 / 255)  # ITU-R 601 luma of red
    assert colour.shape == (3, 2, 3)
    assert colour[0, 0, 0] == 1.0 and colour[1, 0, 0] == 0.0 and colour[2, 0, 0] == 0.0
    assert colour[:, 1, 2].tolist() == [0.0, 0.0, 1.0]


def test_alpha_is_dropped(tmp_path):
    Image.new("RGBA", (2, 2), (0, 255, 0, 0)).save(tmp_path / "a.png")
    colour = read.read_input(str(tmp_path / "a.png"), rgb=True).data
    assert colour.shape == (3, 2, 2)
    assert np.all(colour[1] == 1.0)
    gray_with_alpha = Image.new("LA", (2, 2), (200, 0))
    gray_with_alpha.save(tmp_path / "la.png")
    assert np.all(read.read_input(str(tmp_path / "la.png")).data == np.float32(200) / np.float32(255))


def test_sixteen_bit_png_is_scaled_by_65535(tmp_path):
    pixels = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "g16.png")
    gray = read.read_input(str(tmp_path / "g16.png")).data
    colour = read.read_input(str(tmp_path / "g16.png"), rgb=True).data
    assert np.allclose(gray[0], pixels / 65535.0)
    assert gray.max() == 1.0
    assert colour.shape == (3, 2, 2)
    assert np.array_equal(colour[2], gray[0])


def test_float_tiff_in_unit_range_is_read_as_it_is_and_refused_beyond(tmp_path):
    """A float image's values are read as they are within [0, 1]; beyond, they were clipped unseen (exit 0)."""
    Image.fromarray(np.array([[0.0, 0.25], [np.nan, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert np.array_equal(read.read_input(str(tmp_path / "f.tif")).data, np.float32([[[0.0, 0.25], [np.nan, 1.0]]]),
                          equal_nan=True)  # fmt: skip
    Image.fromarray(np.array([[-1.0, 0.25], [2.5, 1.0]], dtype=np.float32)).save(tmp_path / "o.tif")
    with pytest.raises(InputError, match="floating-point image with values from -1 to 2.5, outside the \\[0, 1\\]"):
        read.read_input(str(tmp_path / "o.tif"))


def test_32_bit_integer_image_is_scaled_as_16_bit_and_refused_beyond(tmp_path):
    within = np.array([[0, 1000, 65535]], dtype=np.int32)
    Image.fromarray(within).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    assert np.array_equal(read.read_input(str(tmp_path / "i.tif")).data[0], within.astype(np.float32) / np.float32(65535))
    for values, shown in (([[-5, 0, 1000]], "-5 to 1,000"), ([[0, 70000, 10]], "0 to 70,000")):
        Image.fromarray(np.array(values, dtype=np.int32)).save(tmp_path / "o.tif")
        with pytest.raises(InputError, match=f"is a 32-bit integer image with values from {shown}, outside the 16-bit"):
            read.read_input(str(tmp_path / "o.tif"))


def test_jpeg_loads_in_unit_range(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)).save(tmp_path / "p.jpg")
    data = read.read_input(str(tmp_path / "p.jpg"), rgb=True).data
    assert data.shape == (3, 8, 6)
    assert 0.0 <= data.min() and data.max() <= 1.0


@pytest.mark.parametrize("suffix", [".bmp", ".gif", ".tiff", ".webp", ".jpeg"])
def test_other_image_formats_load(tmp_path, suffix):
    Image.new("L", (4, 3), 255).save(tmp_path / f"x{suffix}")
    data = read.read_input(str(tmp_path / f"x{suffix}")).data
    assert data.shape == (1, 3, 4)
    assert data.max() == pytest.approx(1.0, abs=0.02)


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("L", (3, 2), value) for value in (10, 200, 90)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    data = read.read_input(str(tmp_path / "a.gif")).data
    assert data.shape == (1, 2, 3)
    assert np.allclose(data, 10 / 255)


def test_file_that_is_not_an_image_is_refused(tmp_path):
    path = write(tmp_path / "fake.png", b"this is not a png")
    with pytest.raises(InputError, match="cannot be decoded as an image"):
        read.read_input(path)


def test_truncated_image_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "full.png")
    content = (tmp_path / "full.png").read_bytes()
    path = write(tmp_path / "cut.png", content[: len(content) // 2])
    with pytest.raises(InputError, match="cannot be decoded as an image .* truncated"):
        read.read_input(path)


def test_image_over_the_limit_names_its_pixels_and_the_option(tmp_path):
    Image.new("L", (100, 50)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match=r"has 5,000 pixels, more than max_elements 4,000 — raise max_elements"):
        read.read_input(str(tmp_path / "big.png"), max_elements=4000)
    with pytest.raises(InputError, match=r"has 5,000 pixels × 3 channels, more than max_elements 14,999"):
        read.read_input(str(tmp_path / "big.png"), rgb=True, max_elements=14_999)
    assert read.read_input(str(tmp_path / "big.png"), rgb=True, max_elements=15_000).data.shape == (3, 50, 100)


def test_pillow_decompression_bomb_becomes_a_clear_error_and_its_limit_is_restored(tmp_path):
    Image.new("L", (100, 100)).save(tmp_path / "bomb.png")
    before = Image.MAX_IMAGE_PIXELS
    for limit in (9_999, 4_000):  # Pillow's warning (over the limit) and its error (over twice the limit)
        with pytest.raises(InputError, match="10,000 pixels, more than max_elements"):
            read.read_input(str(tmp_path / "bomb.png"), max_elements=limit)
    assert Image.MAX_IMAGE_PIXELS == before


def test_raising_max_elements_admits_images_pillow_would_call_bombs(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "wide.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert read.read_input(str(tmp_path / "wide.png"), max_elements=10_000).data.shape == (1, 100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000


# ---------------------------------------------------------------------------------------------- read_array_file


def test_array_file_json_is_float64(tmp_path):
    path = write(tmp_path / "w.json", "[[0.1, 2], [3, 4]]")
    weight = read.read_array_file(path)
    assert weight.dtype == np.float64
    assert weight.tolist() == [[0.1, 2.0], [3.0, 4.0]]


def test_array_file_npy_keeps_float64_precision(tmp_path):
    array = np.array([0.1, 1 / 3, 2.0**60 + 1], dtype=np.float64)
    weight = read.read_array_file(write(tmp_path / "w.npy", npy_bytes(array)))
    assert weight.dtype == np.float64
    assert np.array_equal(weight, array)


def test_indices_file_takes_the_indices_of_a_pool_result(tmp_path):
    doc = {"output": {"shape": [1, 2], "data": [[9.5, 8.5]], "indices": [[3, 6]]}}
    path = write(tmp_path / "pool.json", json.dumps(doc))
    assert read.read_array_file(path, what="indices").tolist() == [[3.0, 6.0]]
    assert read.read_array_file(path, what="weight").tolist() == [[9.5, 8.5]]


def test_array_file_errors_name_what_the_file_is_for(tmp_path):
    with pytest.raises(InputError, match=r"^weight file '.*w.json' does not exist$"):
        read.read_array_file(str(tmp_path / "w.json"))
    with pytest.raises(InputError, match="indices file .* must be a .json or .npy file"):
        read.read_array_file(write(tmp_path / "i.csv", "1,2"), what="indices")
    with pytest.raises(InputError, match=r"weight file .*: data\[1\] has 1 items where data\[0\] has 2"):
        read.read_array_file(write(tmp_path / "r.json", "[[1, 2], [3]]"))
    with pytest.raises(InputError, match="bias file .* holds booleans"):
        read.read_array_file(write(tmp_path / "b.npy", npy_bytes(np.array([True]))), what="bias")


# ---------------------------------------------------------------------------------------------- dumps, array_to_json


def test_dumps_writes_float32_in_shortest_form_and_nonfinite_as_strings():
    data = np.array([0.1, 1 / 3, -0.0, np.nan, np.inf, -np.inf, 1e-45, 3.4028235e38], dtype=np.float32)
    text = jsontext.dumps({"data": data})
    assert text == '{"data":[0.1,0.33333334,-0.0,"NaN","Infinity","-Infinity",1e-45,3.4028235e+38]}'
    assert json.loads(text)["data"][:3] == [0.1, 0.33333334, -0.0]


def test_dumps_keeps_ints_as_ints_and_handles_numpy_scalars():
    text = jsontext.dumps({"n": 3, "i": np.int64(7), "f": np.float32(0.1), "b": np.bool_(True), "u": np.uint8(4)})
    assert json.loads(text) == {"n": 3, "i": 7, "f": 0.1, "b": True, "u": 4}


def test_dumps_names_python_float_nan_and_keeps_real_nulls():
    doc = {"a": float("nan"), "b": [1.5, float("-inf")], "c": None, "d": (float("inf"),), "e": np.float64("nan")}
    assert json.loads(jsontext.dumps(doc)) == {"a": "NaN", "b": [1.5, "-Infinity"], "c": None, "d": ["Infinity"], "e": "NaN"}


def test_dumps_checks_every_row_even_when_a_null_elsewhere_forces_the_slow_path():
    doc = {"note": None, "rows": [[1e308, 1e308, 2], [0.5] * 1000 + [float("nan")], [1, 2]]}
    parsed = json.loads(jsontext.dumps(doc))
    assert parsed["note"] is None
    assert parsed["rows"][0] == [1e308, 1e308, 2]
    assert parsed["rows"][1][-1] == "NaN" and parsed["rows"][1][0] == 0.5
    assert parsed["rows"][2] == [1, 2]


def test_dumps_of_int_arrays_and_zero_dimensional_arrays():
    assert jsontext.dumps({"i": np.array([[1, 2]]), "s": np.array(np.float32(-0.0)), "n": np.array(np.nan)}) == (
        '{"i":[[1,2]],"s":-0.0,"n":"NaN"}'
    )


def test_dumps_refuses_objects_it_cannot_write():
    with pytest.raises(TypeError):
        jsontext.dumps({"x": object()})


def test_array_to_json_gives_nested_lists_of_shortest_float32_values():
    value = jsontext.array_to_json(np.array([[0.1, 0.2], [np.nan, -np.inf]], dtype=np.float32))
    assert value == [[0.1, 0.2], ["NaN", "-Infinity"]]
    assert type(value[0][0]) is float


def test_array_to_json_handles_views_float64_float16_and_empty_arrays():
    view = np.arange(12, dtype=np.float32).reshape(3, 4)[::2, ::-1]
    assert jsontext.array_to_json(view) == view.tolist()
    assert jsontext.array_to_json(np.array([0.1])) == [0.1]
    assert jsontext.array_to_json(np.array([0.1], dtype=np.float16)) == [float(str(np.float32(np.float16(0.1))))]
    assert jsontext.array_to_json(np.zeros((0, 3), dtype=np.float32)) == []
    assert jsontext.array_to_json(np.array([True, False])) == [True, False]


# ---------------------------------------------------------------------------------------------- writing


def test_write_json_without_a_document_writes_shape_data_and_indices(tmp_path):
    data = np.array([[0.5, np.nan]], dtype=np.float32)
    path = str(tmp_path / "out.json")
    writing.write_output(path, data, indices=np.array([[1, 3]]))
    written = json.loads(Path(path).read_text())
    assert written == {"shape": [1, 2], "data": [[0.5, "NaN"]], "indices": [[1, 3]]}
    back = read.read_input(path)
    assert same_bits(back.data, data)
    assert back.indices.tolist() == [[1, 3]]


def test_write_json_with_a_document_writes_that_document(tmp_path):
    path = str(tmp_path / "doc.JSON")
    writing.write_output(path, np.zeros(1, np.float32), doc={"output": {"shape": [1], "data": np.array([0.25], np.float32)}})
    assert json.loads(Path(path).read_text()) == {"output": {"shape": [1], "data": [0.25]}}


def test_write_npy_saves_the_data(tmp_path):
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    writing.write_output(str(tmp_path / "out.npy"), data)
    loaded = np.load(tmp_path / "out.npy", allow_pickle=False)
    assert loaded.dtype == np.float32
    assert np.array_equal(loaded, data)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(array=hnp.arrays(dtype=hs.sampled_from([np.float32, np.float64, np.int64, np.dtype(">f4"), np.uint8]),
                        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)),
       layout=hs.sampled_from(["c", "f", "strided"]))  # fmt: skip
def test_npy_output_is_byte_for_byte_what_np_save_writes(array, layout):
    if layout == "f":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim:
        array = array[..., ::2]
    ours, theirs = stdio.BytesIO(), stdio.BytesIO()
    writing.write_npy(ours, array)
    np.save(theirs, array, allow_pickle=False)
    assert ours.getvalue() == theirs.getvalue()


@pytest.mark.parametrize("name", ["out.txt", "out", "out.png", "out.json.bak"])
def test_unknown_output_suffix_names_the_allowed_ones(tmp_path, name):
    for check in (lambda p: writing.write_output(p, np.zeros(1)), writing.check_output_path):
        with pytest.raises(InputError, match=r"must end in \.json or \.npy"):
            check(str(tmp_path / name))
    assert not (tmp_path / name).exists()


def test_output_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "d.json").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        writing.check_output_path(str(tmp_path / "d.json"))
    with pytest.raises(InputError, match="is a directory"):
        writing.write_output(str(tmp_path / "d.json"), np.zeros(1))
    assert (tmp_path / "d.json").is_dir()


def test_output_in_a_missing_directory_is_refused(tmp_path):
    path = str(tmp_path / "nope" / "out.json")
    with pytest.raises(InputError, match="directory .*nope' does not exist — create it first"):
        writing.check_output_path(path)
    with pytest.raises(InputError, match="does not exist"):
        writing.write_output(path, np.zeros(1))
    assert not (tmp_path / "nope").exists()


def test_output_under_a_file_is_refused(tmp_path):
    write(tmp_path / "plain", "x")
    with pytest.raises(InputError, match="is not a directory"):
        writing.check_output_path(str(tmp_path / "plain" / "out.json"))


def test_output_in_an_unwritable_directory_is_refused(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(InputError, match="is not writable"):
        writing.check_output_path(str(tmp_path / "out.json"))
    with pytest.raises(InputError, match="is not writable"):
        writing.write_output(str(tmp_path / "out.npy"), np.zeros(1))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(running_as_root, reason="root can write anywhere")
def test_output_in_a_read_only_directory_is_refused(tmp_path):
    os.chmod(tmp_path, 0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            writing.check_output_path(str(tmp_path / "out.json"))
    finally:
        os.chmod(tmp_path, 0o700)


def test_output_that_is_a_special_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(InputError, match="exists and is not a regular file"):
        writing.check_output_path(str(tmp_path / "pipe.json"))


def test_check_output_path_accepts_a_writable_place_and_creates_nothing(tmp_path):
    writing.check_output_path(str(tmp_path / "out.json"))
    writing.check_output_path(str(tmp_path / "out.NPY"))
    assert list(tmp_path.iterdir()) == []


def test_new_output_file_has_the_usual_permissions_and_an_existing_one_keeps_its_own(tmp_path):
    old_umask = os.umask(0o022)
    try:
        writing.atomic_write_bytes(str(tmp_path / "new.json"), b"[1]")
        existing = write(tmp_path / "old.json", "[0]")
        os.chmod(existing, 0o640)
        writing.atomic_write_bytes(existing, b"[2]")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "old.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "old.json").read_bytes() == b"[2]"


def test_atomic_write_replaces_an_existing_file(tmp_path):
    path = write(tmp_path / "out.json", "old")
    writing.atomic_write_bytes(path, b"new contents")
    assert Path(path).read_bytes() == b"new contents"
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_failed_replace_leaves_the_target_and_no_temp_file(tmp_path, monkeypatch):
    path = write(tmp_path / "out.json", "original")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InputError, match="cannot be written: No space left on device"):
        writing.write_output(path, np.ones((2, 2), dtype=np.float32))
    assert Path(path).read_text() == "original"
    assert os.listdir(tmp_path) == ["out.json"]


def test_failed_fsync_leaves_the_target_and_no_temp_file(tmp_path, monkeypatch):
    path = write(tmp_path / "out.npy", "original")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(InputError, match="Input/output error"):
        writing.write_output(path, np.ones(3))
    assert Path(path).read_text() == "original"
    assert os.listdir(tmp_path) == ["out.npy"]


def test_interrupt_midway_leaves_the_target_and_no_temp_file(tmp_path, monkeypatch):
    path = write(tmp_path / "out.json", "original")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fchmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writing.atomic_write_bytes(path, b"new")
    assert Path(path).read_text() == "original"
    assert os.listdir(tmp_path) == ["out.json"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_a_batch_replacing_files_lets_go_of_every_replaced_file(tmp_path):
    import threading

    paths = [write(tmp_path / f"out{i}.npy", "old") for i in range(5)]
    before = _open_fds()
    with writing.deferred_sync():
        for i, path in enumerate(paths):
            writing.write_output(path, np.full(3, i, dtype=np.float32))
    assert _open_fds() == before  # each replaced file was held across its rename, then closed
    assert not any(t.name == "cnnops-close" for t in threading.enumerate())  # the closing thread ended
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)
    assert [np.load(p).tolist() for p in paths] == [[float(i)] * 3 for i in range(5)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_a_failed_replace_in_a_batch_lets_go_of_the_held_file(tmp_path, monkeypatch):
    path = write(tmp_path / "out.npy", "original")
    before = _open_fds()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with writing.deferred_sync(), pytest.raises(InputError, match="No space left on device"):
        writing.write_output(path, np.ones(3, dtype=np.float32))
    assert _open_fds() == before
    assert Path(path).read_text() == "original"
    assert os.listdir(tmp_path) == ["out.npy"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_held_files_beyond_the_bound_are_closed_by_the_writer(tmp_path, monkeypatch):
    from cnnops.io import release

    monkeypatch.setattr(release, "MAX_HELD", 0)  # the closing thread may hold none: every one closed at once
    paths = [write(tmp_path / f"out{i}.npy", "old") for i in range(3)]
    before = _open_fds()
    with writing.deferred_sync():
        for path in paths:
            writing.write_output(path, np.zeros(2, dtype=np.float32))
            assert _open_fds() < before + release.HELD_GROUP  # at most a group waits to be handed over
    assert _open_fds() == before
    assert all(np.load(p).tolist() == [0.0, 0.0] for p in paths)


@pytest.mark.parametrize("written", [0, 1, 5, 9, 10])
def test_unbuffered_write_all_completes_a_short_writev(written, monkeypatch):
    read_end, write_end = os.pipe()
    try:
        monkeypatch.setattr(os, "writev", lambda fd, parts: os.write(fd, b"".join(bytes(p) for p in parts)[:written]))
        writing._Unbuffered(write_end).write_all(b"head", memoryview(b"body!!"))
        assert os.read(read_end, 100) == b"headbody!!"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_failing_serializer_leaves_the_target_untouched(tmp_path, monkeypatch):
    path = write(tmp_path / "out.json", "original")

    def broken_dumps(doc, stream):
        raise RuntimeError("serializer failed")

    monkeypatch.setattr(writing, "write_json", broken_dumps)
    with pytest.raises(RuntimeError, match="serializer failed"):
        writing.write_output(path, np.ones(2, dtype=np.float32))
    assert Path(path).read_text() == "original"
    assert os.listdir(tmp_path) == ["out.json"]


# ---------------------------------------------------------------------------------------------- properties

float32_arrays = hnp.arrays(
    dtype=np.float32,
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4),
    elements=hs.one_of(
        hs.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True),
        hs.sampled_from([np.float32(-0.0), np.float32(1e-45), np.float32(-1.1754942e-38), np.float32(3.4028235e38)]),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=float32_arrays)
def test_json_round_trip_keeps_every_bit_that_json_can_carry(tmp_path, data):
    path = str(tmp_path / "round.json")
    writing.write_output(path, data)
    back = read.read_input(path)
    assert back.data.dtype == np.float32
    assert same_bits(back.data, data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=float32_arrays)
def test_npy_round_trip_is_exact(tmp_path, data):
    path = str(tmp_path / "round.npy")
    writing.write_output(path, data)
    back = read.read_input(path).data
    assert back.tobytes() == np.ascontiguousarray(data).tobytes()
    assert back.shape == data.shape


@settings(max_examples=200, deadline=None)
@given(data=float32_arrays)
def test_dumps_is_standard_json_whose_numbers_are_the_float32_values(data):
    text = jsontext.dumps({"output": {"shape": list(data.shape), "data": data}})
    parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    values = np.array(parsed["output"]["data"], dtype=object)
    numbers = np.array(
        [jsontext.NONFINITE_NAMES[v] if isinstance(v, str) else v for v in values.ravel().tolist()], dtype=np.float32
    ).reshape(data.shape)
    assert same_bits(numbers, data)
    assert same_bits(read_text(text).data, data)


@settings(max_examples=100, deadline=None)
@given(data=float32_arrays)
def test_numbers_are_written_in_numpy_shortest_float32_form(data):
    values = jsontext.array_to_json(data)
    for value in np.ravel(np.array(values, dtype=object)).tolist():
        if isinstance(value, float):
            shortest = str(np.float32(value))  # numpy prints float32 in its shortest round-tripping form
            assert value == float(shortest)
            assert significant_digits(json.dumps(value)) == significant_digits(shortest)


def significant_digits(number: str) -> str:
    """'5.35621e+11' and '535621000000.0' both give '535621'."""
    return number.split("e")[0].lstrip("-").replace(".", "").strip("0")


# The reference for what an accepted input holds, written from the SPEC's three JSON forms (a nested
# list; {"data", "shape"?, "indices"?}; a cnnops result whose "output" is taken) and numpy's .npy
# reader. It does not validate: it is consulted only for inputs cnnops accepted.
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "nan": math.nan, "inf": math.inf,
             "-inf": -math.inf}  # fmt: skip


def leaves(node):
    if isinstance(node, list):
        for child in node:
            yield from leaves(child)
    else:
        yield node


def nested_shape(node) -> tuple[int, ...]:
    shape = []
    while isinstance(node, list):
        shape.append(len(node))
        node = node[0] if node else None
    return tuple(shape)


def as_float(value) -> float:
    if isinstance(value, str):
        return NONFINITE[value]
    try:
        return float(value)
    except OverflowError:  # an integer beyond float64: ±inf in float32, as torch.tensor gives
        return math.inf if value > 0 else -math.inf


def expected_tensor(doc):
    part = (doc["output"] if "output" in doc else doc) if isinstance(doc, dict) else {"data": doc}
    data, shape = part["data"], part.get("shape")
    with np.errstate(over="ignore"):
        values = np.array([as_float(v) for v in leaves(data)], dtype=np.float64).astype(np.float32)
    values = values.reshape(nested_shape(data) if shape is None else shape)
    indices = part.get("indices")
    if indices is not None:
        indices = np.array(list(leaves(indices)), dtype=np.int64).reshape(values.shape)
    return values, indices


def expected_from_stdin(payload: bytes):
    if payload.startswith(b"\x93NUMPY"):
        with np.errstate(over="ignore"):
            return np.load(stdio.BytesIO(payload), allow_pickle=False).astype(np.float32), None
    text = payload.decode("utf-8").removeprefix("\ufeff")
    try:
        return expected_tensor(json.loads(text))
    except ValueError:  # not JSON: tensor text is also read in Python literal syntax (issue 13)
        import ast

        def listed(value):  # a tuple is a list of values to torch.tensor: (0,) and 0, are [0]
            return [listed(v) for v in value] if isinstance(value, (list, tuple)) else value

        return expected_tensor(listed(ast.literal_eval(text.strip())))


def assert_tensor_is(tensor, expected) -> None:
    data, indices = expected
    assert tensor.data.dtype == np.float32 and tensor.data.size >= 1
    assert same_bits(tensor.data, data), (tensor.data, data)
    if indices is None:
        assert tensor.indices is None
    else:
        assert tensor.indices.dtype == np.int64 and np.array_equal(tensor.indices, indices), (tensor.indices, indices)


def assert_input_error(error: CnnopsError, *user_text: str) -> None:
    """Exactly an InputError (not another kind) with a message: one line, unless it quotes user text that
    has a line break (a known bug, see test_robustness)."""
    assert type(error) is InputError, f"{type(error).__name__}: {error}"
    message = str(error)
    assert message.strip() and ("\n" not in message or any("\n" in text for text in user_text)), message


@pytest.fixture(scope="module")
def empty_directory(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=400, deadline=None)
@given(text=hs.text())
def test_any_text_is_read_or_refused_with_an_input_error(empty_directory, text):
    cwd = os.getcwd()
    os.chdir(empty_directory)
    try:
        tensor = read.read_input(text, stdin=stdio.BytesIO(b""))
    except CnnopsError as error:
        assert_input_error(error, text)
    else:  # no file there: only inline JSON can be read
        assert text.lstrip()[:1] in ("[", "{") and tensor.source == "inline JSON"
        assert_tensor_is(tensor, expected_tensor(json.loads(text)))
    finally:
        os.chdir(cwd)


json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats() | hs.text(max_size=5) | hs.sampled_from(["NaN", "-inf"]),
    lambda inner: (
        hs.lists(inner, max_size=4) | hs.dictionaries(hs.sampled_from(["data", "shape", "indices", "output"]), inner)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values)
def test_any_json_document_is_read_or_refused_with_an_input_error(value):
    text = json.dumps(value)  # bare NaN/Infinity included, as the stdlib writes them
    try:
        tensor = read_text(text)
    except CnnopsError as error:
        assert_input_error(error, text)
    else:
        assert_tensor_is(tensor, expected_tensor(value))


@settings(max_examples=200, deadline=None)
@given(value=hs.binary(max_size=64))
def test_any_bytes_on_stdin_are_read_or_refused_with_an_input_error(value):
    for payload in (value, read.NPY_MAGIC + value):
        try:
            tensor = read.read_input("-", stdin=stdio.BytesIO(payload))
        except CnnopsError as error:
            assert_input_error(error)
        else:
            assert_tensor_is(tensor, expected_from_stdin(payload))


# ---------------------------------------------------------------------------------------------- import cost


def test_importing_io_loads_neither_numpy_nor_pillow_nor_orjson():
    code = "import cnnops.io.read, cnnops.io.write, cnnops.io.jsontext, cnnops.io.nested, cnnops.io.images, sys; print(sorted(m for m in ('numpy', 'PIL', 'orjson') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
