"""JSON documents are serialised once, arrays straight from memory: the text is what the nested lists
of Python numbers would give (the reference below builds them the slow way), for every float32."""

import json
import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from cnnops.io.jsontext import array_text, array_to_json, dumps

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


def reference(value):
    """The document as Python numbers (a float32 as the shortest decimal that reads back as it), then
    orjson: how every array used to be written."""
    if isinstance(value, dict):
        return {k: reference(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            flat = [float(np.format_float_positional(v, unique=True, trim="-")) if np.isfinite(v) else float(v)
                    for v in value.astype(np.float64 if value.dtype.itemsize >= 8 else np.float32).ravel()]  # fmt: skip
            return reference(np.array(flat, dtype=object).reshape(value.shape).tolist() if value.ndim else flat[0])
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def float32_arrays():
    bits = hnp.arrays(np.uint32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6))
    return bits.map(lambda b: b.view(np.float32))


@SETTINGS
@given(float32_arrays())
def test_any_float32_array_is_written_as_its_shortest_digits_in_python_s_form(a):
    assert array_text(a) == orjson.dumps(reference(a))
    assert array_to_json(a) == json.loads(orjson.dumps(reference(a)))


@SETTINGS
@given(hs.lists(hs.floats(width=32, allow_nan=True), min_size=1, max_size=20), hs.integers(-40, 38))
def test_magnitudes_where_float32_and_float64_texts_differ(values, exponent):
    with np.errstate(over="ignore"):  # beyond float32's range is ±inf, which is a case too
        a = (np.array(values, np.float64) * 10.0**exponent).astype(np.float32)
    assert array_text(a) == orjson.dumps(reference(a))


@SETTINGS
@given(hnp.arrays(hs.sampled_from([np.float64, np.int64, np.int32, np.bool_, np.float16, np.uint8]),
                  hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))  # fmt: skip
def test_other_dtypes_and_shapes_too(a):
    assert dumps({"a": a}) == orjson.dumps({"a": reference(a)}).decode()


def test_a_document_is_serialised_once_with_its_arrays_in_place():
    doc = {
        "input": {"shape": [2, 2], "source": 'a "quoted" \\ path'},
        "stages": [{"index": 1, "receptive_field": None, "start": float("inf")}],
        "output": {"data": np.array([[1e-6, np.nan], [3e14, -0.0]], np.float32), "indices": np.arange(4).reshape(2, 2)},
        "weights": [np.float32(0.1), np.int64(3), np.array(2.5, np.float32)],
        "rows": [[1, 2.5], [float("nan"), 3]],
    }
    assert dumps(doc) == orjson.dumps(reference({**doc, "weights": [0.1, 3, 2.5]})).decode()
    assert json.loads(dumps(doc))["output"]["data"] == [[1e-06, "NaN"], [300000000000000.0, -0.0]]


# --- reading: the fast path for texts free of booleans gives what the checked reader gives, array or error

def _leaves():
    numbers = hs.one_of(hs.integers(-(2**70), 2**70), hs.floats(allow_nan=False, allow_infinity=False),
                        hs.sampled_from([0, -0.0, 0.0, 2**63 - 1, -(2**63), 2**63, 2**64, 1e308]))  # fmt: skip
    others = hs.sampled_from([None, True, False, "NaN", "-Infinity", "1.5", "x", {}, {"a": 1}])
    return hs.one_of(numbers, numbers, numbers, others)


def _nested():
    """Nested lists of numbers — regular, ragged, with a list where a number is, or with a boolean, a null,
    a string or an object among them (as JSON texts go)."""
    return hs.recursive(hs.lists(_leaves(), max_size=4), lambda kids: hs.lists(kids, max_size=3), max_leaves=24)


@SETTINGS
@given(_nested(), hs.booleans(), hs.booleans())
def test_a_text_free_of_booleans_reads_as_the_checked_reader_reads_it(value, integer, as_document):
    from cnnops.errors import InputError
    from cnnops.io.jsontext import free_of_booleans, parse_json
    from cnnops.io.nested import to_array

    text = json.dumps({"output": {"source": "in.json", "data": value}} if as_document else value).encode()
    doc = parse_json(text, "input")  # as the reader parses it (orjson, or json for what orjson refuses)
    data = doc["output"]["data"] if as_document else doc
    fast_path = free_of_booleans(text)
    assert fast_path == ("true" not in text.decode() and "false" not in text.decode())

    def read(fast):
        try:
            return to_array(data, root="data", integer=integer, numbers_only=fast)
        except InputError as exc:
            return str(exc)

    fast, checked = read(fast_path), read(False)
    if isinstance(checked, str):
        assert fast == checked
    else:
        assert isinstance(fast, np.ndarray) and fast.dtype == checked.dtype and fast.shape == checked.shape
        assert fast.tobytes() == checked.tobytes()  # the same bits: −0 and NaN included


def test_only_texts_certainly_free_of_booleans_take_the_fast_path():
    from cnnops.io.jsontext import free_of_booleans

    assert free_of_booleans(b"[[1, -2.5e3], [0, 4]]\n") and free_of_booleans(b'{"output": {"data": [1, 2]}}')
    assert free_of_booleans(b'["NaN", null, {"a": 1}]')  # not booleans: numpy's dtype sends them the checked way
    for text in (b"[1, true]", b"[false]", b'{"a": "it is true"}', "[1]", b'{"t": 1}' + b' "t"' * 300):
        assert not free_of_booleans(text)
