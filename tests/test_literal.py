"""The one literal reader (JSON or Python tensor text, never evaluated) and the generators, against torch."""

import io
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnnops.errors import InputError, SpecError
from cnnops.io import generators as gen
from cnnops.io.literal import parse_tensor_text, tensor_value
from cnnops.io.read import read_input
from cnnops.io.weights import resolve_weight
from cnnops.io.words import GENERATOR, INLINE, looks_inline, looks_like_generator

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(derandomize=True, deadline=None, max_examples=150)
SEEDS = [0, 1, 42, 2**31 - 1]
SHAPES = [(1,), (3,), (15,), (16,), (17,), (31,), (33,), (1, 4, 4), (2, 3, 5), (7, 11, 13), (1, 1, 28, 28)]


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def same(a, b) -> bool:
    """Equal as float32 bit patterns (-0.0 differs from 0.0), every NaN counted as one (text has no NaN sign)."""
    a, b = (np.where(np.isnan(x), np.float32(np.nan), x) for x in (np.asarray(a, np.float32), np.asarray(b, np.float32)))
    return a.shape == b.shape and np.array_equal(bits(a), bits(b))


# ---------------------------------------------------------------------------------------------- one reader, three spellings

floats = hs.floats(width=32, allow_nan=True, allow_infinity=True)


@hs.composite
def nested_floats(draw):
    shape = draw(hs.lists(hs.integers(1, 4), min_size=1, max_size=4))
    values = draw(hs.lists(floats, min_size=math.prod(shape), max_size=math.prod(shape)))
    return np.array(values, dtype=np.float32).reshape(shape).tolist()


def torch_text(values) -> str:
    return f"torch.tensor({values!r}, dtype=torch.float32)"


@SETTINGS
@given(nested_floats())
def test_python_json_and_torch_text_of_the_same_numbers_read_to_the_same_array(values):
    expected = torch.tensor(values, dtype=torch.float32).numpy()
    spellings = [
        repr(values),  # Python: nan, inf, 1.0
        json.dumps(values),  # JSON: NaN, Infinity
        torch_text(values),
        repr(np.array(values, dtype=np.float32).tolist()).replace("[", "(").replace("]", ",)"),  # tuples
        f"np.array({values!r})",
    ]
    for text in spellings:
        assert same(read_input(text).data, expected), text


@SETTINGS
@given(nested_floats())
def test_tensor_text_reads_as_torch_reads_it_when_pasted_as_a_weight(values):
    text = torch_text(values)
    value = tensor_value(text, "weight")
    assert same(np.array(value, dtype=np.float32), torch.tensor(values, dtype=torch.float32))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[[-4., 0., 4.]]", [[-4.0, 0.0, 4.0]]),
        ("[1., -0., 1e-3, .5, -.25, 1.e2, 1_000]", [1.0, -0.0, 1e-3, 0.5, -0.25, 100.0, 1000.0]),
        ("((1, 2), (3, 4))", [[1, 2], [3, 4]]),
        ("[1, 2,]", [1, 2]),
        ("[float('nan'), float('inf'), float('-inf'), -float('inf')]", [math.nan, math.inf, -math.inf, -math.inf]),
        ("[math.inf, -math.inf, np.nan, numpy.inf, torch.inf]", [math.inf, -math.inf, math.nan, math.inf, math.inf]),
        ("tensor([[ 1.5410, -0.2934], [nan, -inf]])", [[1.541, -0.2934], [math.nan, -math.inf]]),
        ("tensor([[0.5000, 2.0000]], grad_fn=<AddBackward0>)", [[0.5, 2.0]]),
        ("array([[1., 2.]], dtype=float32)", [[1.0, 2.0]]),
        ("torch.Tensor([1, 2])", [1, 2]),
        ("numpy.array([[1, 2]], dtype=np.float64)", [[1, 2]]),
        ("torch.tensor([1., 2.], requires_grad=True)", [1.0, 2.0]),
        ("torch.tensor(3.5)", 3.5),
        ("{'data': [1, 2, 3, 4], 'shape': (2, 2)}", [[1, 2], [3, 4]]),
    ],
)
def test_python_literal_forms(text, expected):
    assert same(read_input(text).data, np.array(expected, dtype=np.float32))


def test_the_json_fast_path_is_taken_for_json_and_for_plain_python_lists(monkeypatch):
    import ast

    def no_ast(*args, **kwargs):
        raise AssertionError("parsed with ast")

    monkeypatch.setattr(ast, "parse", no_ast)
    assert parse_tensor_text("[[1, 2.5], [NaN, -Infinity]]", "x").syntax == "JSON"
    assert parse_tensor_text("[[1., .5, -0.], [nan, -inf],]", "x").syntax == "Python"
    assert read_input("[[1., .5], [nan, -inf]]").source == "inline tensor"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("torch.tensor([[1, 2], [3, 4]]).reshape(4)", [1, 2, 3, 4]),
        ("torch.tensor([1, 2, 3, 4]).view(2, -1)", [[1, 2], [3, 4]]),
        ("torch.tensor([1, 2, 3, 4]).reshape((1, 2, 2))", [[[1, 2], [3, 4]]]),
        ("np.array([1, 2]).unsqueeze(0)", [[1, 2]]),
        ("torch.tensor([1, 2]).unsqueeze(-1).float()", [[1], [2]]),
        ("torch.tensor([[1, 2], [3, 4]]).flatten()", [1, 2, 3, 4]),
    ],
)
def test_methods_after_a_wrapper(text, expected):
    assert read_input(text).data.tolist() == expected


def test_true_and_false_are_refused_as_numbers_in_the_usual_words():
    with pytest.raises(InputError, match=r"inline tensor: data\[0\]\[0\] is true — use a number"):
        read_input("[[True, 1.]]")
    with pytest.raises(InputError, match=r"data\[1\] is null"):
        read_input("[1., None]")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[[1., 2.], [3.]]", r"inline tensor: data\[1\] has 1 items where data\[0\] has 2"),
        ("[[1., 2.], 3.]", r"data\[1\] is a number where"),
        ("tensor([1., ..., 9.])", "torch or numpy left numbers out"),
        ("torch.tensor([1, 2], dtype=torch.float64)", "dtype=torch.float64 is not float32"),
        ("torch.tensor([1, 2], dtype=torch.long)", "is not float32"),
        ("torch.Tensor(2, 3)", "uninitialised memory"),
        ("torch.Tensor(3)", "uninitialised memory"),
        ("torch.empty(2, 3)", "holds whatever memory held"),
        ("np.random.randn(3)", "not torch's"),
        ("torch.tensor([1, 2]).reshape(3)", "does not fit 2 numbers"),
        ("torch.tensor([1, 2]).unsqueeze(5)", "out of range"),
        ("[1, 2].reshape(2)", r"a list has no \.reshape\(\)"),
        ("torch.tensor([1, 2]).numpy()", r"the method \.numpy\(\) is not understood"),
        ("torch.tensor([1, 2], device='cuda')", "device= of torch.tensor is not understood"),
        ("torch.manual_seed(1.5); torch.randn(2)", "one whole number"),
        ("torch.randn(2); torch.randn(3)", "more than one tensor"),
        ("torch.randn(2); torch.manual_seed(0)", "comes after the tensor"),
        ("import torch", "holds no tensor"),
        ("[1, 2", "not valid JSON: .*; nor a Python literal: '\\[' was never closed"),
        ("[1] [2]", "a subscript is not allowed"),
        ("[1] x", "nor a Python literal: invalid syntax"),
        ("torch.randn()", "needs sizes"),
        ("torch.randint(5, 0, (2,))", "needs low < high"),
        ("torch.arange(0, 1, 0.1)", r"its value 0.1 is not exact in float32, and torch rounds such values "
                                    "differently on different CPUs"),
        ("torch.zeros(-1, 2)", "not whole numbers ≥ 0"),
        ("np.zeros(2, 3)", "takes the shape as one tuple"),
        ("torch.randn(2, 3, dtype=torch.float64)", "is not float32"),
    ],
)
def test_what_is_not_a_tensor_is_refused_with_the_reason(text, fragment):
    with pytest.raises(InputError, match=fragment):
        read_input(text)


# ---------------------------------------------------------------------------------------------- never evaluated

INJECTION = [
    "__import__('os').system('touch PWNED')",
    "[__import__('os').system('touch PWNED')]",
    "torch.tensor(__import__('os').system('touch PWNED'))",
    "np.array([1], dtype=__import__('os').system('touch PWNED'))",
    "().__class__.__bases__[0].__subclasses__()",
    "[().__class__]",
    "torch.tensor([1]).__class__",
    "torch.tensor([1]).__reduce__()",
    "[eval('1')]",
    "[exec('open(\"PWNED\", \"w\")')]",
    "open('PWNED', 'w')",
    "torch.load('PWNED')",
    "np.load('PWNED')",
    "torch.tensor(open('PWNED', 'w'))",
    "[os.system]",
    "[x]",
    "[x for x in range(3)]",
    "[(lambda: 1)()]",
    "[{1, 2}]",
    "[1 if True else 2]",
    "[f'{1}']",
    "[a := 1]",
    "[*[1, 2]]",
    "{**{'data': [1]}}",
    "[[1, 2][0]]",
    "[1 + 1]",
    "[2 ** 100000]",
    "[not 1]",
    "[1 < 2]",
    "torch.tensor([1], dtype=torch.__dict__)",
    "import os; torch.tensor([1])",
    "from os import system; torch.tensor([1])",
    "torch.manual_seed(__import__('os').getpid()); torch.randn(2)",
    "x = torch.tensor([1]); x.__class__",
    "del x",
    "def f(): pass",
    "torch.randn(2).__class__",
    "torch.tensor([1]).reshape(__import__('os').getpid())",
]


@pytest.mark.parametrize("text", INJECTION)
def test_code_injection_is_refused_and_nothing_runs(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        parse_tensor_text(text, "input")
        read_input(text)  # what parsing let through (nothing here) would be refused when made into numbers
    message = str(info.value)
    assert message.startswith("input") and " — " in message, message
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("__import__('os')", "the name '__import__' is not allowed"),
        ("torch.tensor([1]).__class__", "the name '__class__' is not allowed"),
        ("[os.sep]", "'os.sep' is not allowed"),
        ("[x]", "the name 'x' is not allowed"),
        ("[len([1])]", "calling 'len' is not allowed"),
        ("torch.load('a.pt')", "calling 'torch.load' is not allowed"),
        ("[1 + 1]", "arithmetic is not allowed"),
        ("[[1, 2][0]]", "a subscript is not allowed"),
        ("[lambda: 1]", "a lambda is not allowed"),
        ("import os; [1]", "importing 'os' is not allowed"),
    ],
)
def test_the_refusal_names_what_was_found(text, fragment):
    with pytest.raises(InputError, match=fragment):
        parse_tensor_text(text, "input")


@SETTINGS
@given(hs.text(alphabet="[](),.:;=-+*/_ '\"eE0123456789abcdnotrchfilmpysuxTFN\n", max_size=60))
def test_any_text_is_read_or_refused_with_an_input_error(text):
    try:
        parse_tensor_text(text, "input")
    except InputError:
        pass


@pytest.mark.parametrize(
    "text, inline",
    [("[1]", True), ("(1, 2)", True), ("torch.randn(2)", True), ("np.array([1])", True), ("tensor([1.])", True),
     ("array([1.])", True), ("x = torch.randn(2)", True), ("import torch; torch.randn(2)", True),
     ("examples/line5x5.json", False), ("relu", False), ("randn:1x4x4", False), ("./torch.json", False)],
)  # fmt: skip
def test_what_counts_as_inline_tensor_text(text, inline):
    assert looks_inline(text) is inline


@SETTINGS
@given(hs.lists(hs.sampled_from([*"[{(=:.x ,\t\n\x1c\u3000_0123456789", "import", "from", "torch", "np", "randn",
                                 "zeros", "a", "é"]), max_size=12).map("".join))  # fmt: skip
def test_word_kinds_are_their_patterns(text):
    """The quick checks before the patterns (a ':', a bracket, an '=' or an import) never change an answer."""
    assert looks_inline(text) is bool(INLINE.match(text))
    assert looks_like_generator(text) is bool(GENERATOR.match(text))


# ---------------------------------------------------------------------------------------------- weights, biases, indices


def test_weight_and_bias_text_use_the_same_reader():
    weight = resolve_weight("torch.tensor([[1., 0, -1.]])", (1, 1, 1, 3))
    assert weight.tolist() == [[[[1.0, 0.0, -1.0]]]]
    assert resolve_weight("[[1., 0, -1.]]", (1, 1, 1, 3)).tolist() == weight.tolist()
    assert resolve_weight("torch.ones(3, 3)", (1, 1, 3, 3)).sum() == 9
    with pytest.raises(SpecError, match="calling 'os.system' is not allowed"):
        resolve_weight("[os.system('ls')]", (1, 1, 1, 1))
    with pytest.raises(SpecError, match="draws random numbers, which only an input can"):
        resolve_weight("torch.randn(1, 1, 3, 3)", (1, 1, 3, 3))


# ---------------------------------------------------------------------------------------------- generators vs torch


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_randn_rand_and_randint_equal_torch_bit_for_bit(seed, shape):
    spec = "x".join(map(str, shape))
    torch.manual_seed(seed)
    assert same(gen.generate(gen.parse_generator(f"randn:{spec}"), seed=seed), torch.randn(*shape))
    torch.manual_seed(seed)
    assert same(gen.generate(gen.parse_generator(f"rand:{spec}"), seed=seed), torch.rand(*shape))
    for low, high in [(0, 5), (-3, 7), (0, 2**28 - 1), (0, 2**28), (-(2**40), 2**40), (-(2**63), 2**63 - 1)]:
        torch.manual_seed(seed)
        made = gen.generate(gen.parse_generator(f"randint:{low}:{high}:{spec}"), seed=seed)
        assert same(made, torch.randint(low, high, shape).float()), (low, high)


@pytest.mark.parametrize("count", [gen.DRAW_BLOCK + 7, 3 * gen.DRAW_BLOCK, 2**19 + 33])
def test_generators_drawn_in_blocks_equal_torch(count):
    """Drawn and transformed block by block (and past the switch to numpy.random's MT19937): the same
    numbers as torch's one call, the Box–Muller groups and the 64-bit randint draws included."""
    for text, made in [("randn", lambda: torch.randn(count)), ("rand", lambda: torch.rand(count)),
                       ("randint:-5:9", lambda: torch.randint(-5, 9, (count,)).float()),
                       (f"randint:{-(2**63)}:{2**63 - 1}", lambda: torch.randint(-(2**63), 2**63 - 1, (count,)).float())]:  # fmt: skip
        torch.manual_seed(3)
        assert same(gen.generate(gen.parse_generator(f"{text}:{count}"), seed=3, max_elements=count), made()), text


def _rounded_once(exact: Fraction) -> np.float32:
    """``exact`` rounded to the nearest float32, ties to even: the reference for a fused multiply-add."""
    guess = np.float32(float(exact))
    if not np.isfinite(guess):
        return guess
    near = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    near = [v for v in near if np.isfinite(v)]
    return min(near, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.float32(v).view(np.uint32)) & 1))


@settings(derandomize=True, deadline=None, max_examples=300)
@given(hs.lists(hs.tuples(hs.integers(-(2**12), 2**12), hs.integers(-(2**12), 2**12), hs.integers(-(2**24), 2**24),
                          hs.integers(-140, 20)), min_size=1, max_size=8),  # fmt: skip
       hs.sampled_from(["normal", "ties", "subnormal"]))
def test_fma32_rounds_once(terms, kind):
    """The Box–Muller kernel's fused multiply-add, fast path and all: a·b + c rounded once to float32,
    with sums exactly halfway between two float32 numbers (where rounding twice goes wrong) and sums in
    float32's subnormal range among the cases."""
    a, b, c = [], [], []
    for x, y, z, e in terms:
        if kind == "ties":  # a product of two odd 13-bit numbers below 2**25 lies halfway between two float32
            # numbers; an addend too small for float64 to keep decides which one is nearer
            odd_a, odd_b = 4097 + 2 * (abs(x) % 848), 4097 + 2 * (abs(y) % 848)
            a.append(np.float32(odd_a * 2.0**e)), b.append(np.float32(odd_b))
            c.append(np.float32((1 if z >= 0 else -1) * 2.0 ** (e - 29 - abs(z) % 40)) if z % 5 else np.float32(0))
        elif kind == "subnormal":
            a.append(np.float32(x * 2.0**-80)), b.append(np.float32(y * 2.0**-60)), c.append(np.float32(z * 2.0**-150))
        else:
            a.append(np.float32(x * 2.0**e)), b.append(np.float32(y + 0.5)), c.append(np.float32(z * 2.0**-20))
    a, b, c = (np.array(v, dtype=np.float32) for v in (a, b, c))
    got = gen._fma32(a, b, c)
    want = [_rounded_once(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))) for x, y, z in zip(a, b, c)]
    assert got.view(np.uint32).tolist() == np.array(want, dtype=np.float32).view(np.uint32).tolist()


def test_randn_of_many_numbers_equals_torch():
    torch.manual_seed(5)
    assert same(gen.generate(gen.Generator("randn", (3, 224, 224)), seed=5), torch.randn(3, 224, 224))


@pytest.mark.parametrize(
    "text, torch_value",
    [
        ("zeros:1x1x5x5", lambda: torch.zeros(1, 1, 5, 5)),
        ("ones:4x4", lambda: torch.ones(4, 4)),
        ("full:3.5:2x2", lambda: torch.full((2, 2), 3.5)),
        ("full:-inf:3", lambda: torch.full((3,), -math.inf)),
        ("arange:1x1x4x4", lambda: torch.arange(16).reshape(1, 1, 4, 4).float()),
        ("eye:5", lambda: torch.eye(5)),
        ("eye:3x4", lambda: torch.eye(3, 4)),
        ("randint:5:2x3", lambda: torch.randint(5, (2, 3)).float()),
    ],
)
def test_constructed_generators_equal_torch(text, torch_value):
    torch.manual_seed(0)
    assert same(gen.generate(gen.parse_generator(text)), torch_value())


TORCH_SPELLINGS = [
    "torch.randn(1, 4, 4)", "torch.randn((2, 9))", "torch.randn([17])", "torch.randn(size=(3, 3))", "torch.randn(())",
    "torch.rand(2, 3)", "torch.randint(0, 5, (1, 1, 4, 4))", "torch.randint(9, (20,))",
    "torch.randint(low=-2, high=2, size=(3, 3))", "torch.randint(0, 9, (1, 1, 4, 4)).float()",
    "torch.zeros(1, 1, 5, 5)", "torch.ones((4, 4))", "torch.full((2, 2), 3.5)", "torch.arange(16).reshape(1, 1, 4, 4)",
    "torch.arange(2, 11, 3)", "torch.arange(10, 0, -3)", "torch.arange(-5, 5).view(2, 5)", "torch.eye(3)",
    "torch.eye(2, 4)", "torch.randn(1, 4, 4, dtype=torch.float32, requires_grad=True)", "torch.randn(2, 8).unsqueeze(0)",
]  # fmt: skip


@pytest.mark.parametrize("seed", [0, 42])
@pytest.mark.parametrize("text", TORCH_SPELLINGS)
def test_torch_spellings_give_what_torch_gives(text, seed):
    torch.manual_seed(seed)
    expected = eval(text, {"torch": torch}).detach().float()  # the test's own trusted text
    assert same(read_input(text, seed=seed).data, expected)


@pytest.mark.parametrize(
    "value", ["1e39", "-1e39", "3.4028235e38", "-3.4028235e38", "3.4028234663852886e38", "340282366920938463463374607431768211456",
              "float('inf')", "float('nan')", "-1e-46", "16777217"],
)  # fmt: skip
def test_torch_full_refuses_exactly_the_values_torch_refuses(value):
    """torch.full takes no finite value beyond float32's range (3.4028235e38 included, though it rounds to
    the largest float32), and takes inf and nan: cnnops neither makes infinities of those nor refuses others."""
    try:
        expected = torch.full((2,), eval(value))  # the test's own trusted text
    except (RuntimeError, OverflowError):
        expected = None
    for text in (f"torch.full((2,), {value})", f"full:{eval(value)!r}:2"):
        if expected is None:
            with pytest.raises(InputError, match=r"beyond float32's range .*, which torch.full refuses"):
                read_input(text)
        else:
            assert same(read_input(text).data, expected)


@pytest.mark.parametrize(
    "text, expected",
    [("np.zeros((2, 3))", np.zeros((2, 3))), ("np.ones(4)", np.ones(4)), ("np.full((2, 2), 7)", np.full((2, 2), 7)),
     ("np.arange(6).reshape(2, 3)", np.arange(6).reshape(2, 3)), ("numpy.eye(3)", np.eye(3))],
)  # fmt: skip
def test_numpy_spellings_give_what_numpy_gives(text, expected):
    assert same(read_input(text).data, expected)


def test_a_pasted_manual_seed_sets_the_seed_and_is_shown():
    tensor = read_input("torch.manual_seed(3)\nx = torch.randn(1, 4, 4)\nprint(x)", seed=0)
    torch.manual_seed(3)
    assert same(tensor.data, torch.randn(1, 4, 4))
    assert tensor.source.endswith("(seed 3)")


def test_a_generated_input_says_which_generator_and_seed_made_it():
    assert read_input("randn:1x4x4").source == "randn:1x4x4 (seed 0)"
    assert read_input("randn:1x4x4", seed=7).source == "randn:1x4x4 (seed 7)"
    assert read_input("torch.randn(1, 4, 4)", seed=7).source == "torch.randn(1, 4, 4) (seed 7)"
    assert read_input("zeros:2x2").source == "zeros:2x2"


@pytest.mark.parametrize(
    "text, fragment",
    [("randn:", "has the shape ''"), ("randn:1xax4", "which is not sizes"), ("full:2x2", "has 1 part"),
     ("full:abc:2x2", "'abc', which is not a number"), ("randint:5:0:3", "needs low < high"),
     ("randint:a:3", "not whole numbers"), ("eye:2x2x2", "has 3 sizes"), ("zeros:0x3", "is empty"),
     ("zeros:100000x100000x100", "more than the limit"), ("ones:" + "1x" * 33 + "1", "at most 32")],
)  # fmt: skip
def test_bad_generator_text_is_refused_with_its_form(text, fragment):
    with pytest.raises(InputError, match=fragment):
        read_input(text)


def test_the_portable_normal_kernel_equals_torch_run_with_it():
    """ATEN_CPU_CAPABILITY=default makes torch use its portable normal_ kernel (C library logf/sinf/cosf);
    cnnops follows the same variable."""
    code = (
        "import sys, numpy as np, torch; sys.path.insert(0, sys.argv[1])\n"
        "from cnnops.io.generators import generate, Generator, normal_kernel\n"
        "assert normal_kernel() == 'scalar'\n"
        "for seed in (0, 1, 42, 2**31 - 1):\n"
        "    for shape in ((3,), (16,), (17,), (1, 28, 28), (5, 7, 9)):\n"
        "        torch.manual_seed(seed); t = torch.randn(*shape).numpy()\n"
        "        m = generate(Generator('randn', shape), seed=seed)\n"
        "        assert np.array_equal(t.view(np.uint32), m.view(np.uint32)), (seed, shape)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def exact_fma(a, b, c) -> np.float32:
    """a·b + c rounded once to float32, in exact rational arithmetic."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    lo = np.float32(float(exact))  # nearest double, then float32: may be off by one ulp
    candidates = [np.nextafter(lo, np.float32(-np.inf)), lo, np.nextafter(lo, np.float32(np.inf))]
    distance = [abs(Fraction(float(x)) - exact) for x in candidates]
    best = min(distance)
    ties = [x for x, d in zip(candidates, distance, strict=True) if d == best]
    return ties[0] if len(ties) == 1 else next(x for x in ties if not (int(x.view(np.uint32)) & 1))


finite32 = hs.floats(width=32, min_value=-(2.0**60), max_value=2.0**60, allow_nan=False, allow_subnormal=False)


@SETTINGS
@given(finite32, finite32, finite32)
def test_the_emulated_float32_fma_rounds_once(a, b, c):
    got = gen._fma32(np.float32(a), np.float32(b), np.float32(c))
    assert bits(got) == bits(exact_fma(a, b, c))


def test_the_emulated_fma_breaks_double_rounding_ties_by_the_exact_remainder():
    # a·b + c = 1 + 2⁻²⁴ + 2⁻⁷⁰: float64 drops the 2⁻⁷⁰ and lands on the float32 midpoint 1 + 2⁻²⁴, which
    # ties-to-even takes down to 1.0; the value once rounded is 1 + 2⁻²³
    a, b, c = np.float32(-(2**-24) * (1 - 2**-23)), np.float32(1 + 2**-23), np.float32(1 + 2**-23)
    assert np.float32(np.float64(a) * np.float64(b) + np.float64(c)) == np.float32(1.0)
    assert gen._fma32(a, b, c) == exact_fma(a, b, c) == np.float32(1 + 2**-23)


def test_the_stage_parser_can_read_an_argument_node_by_the_same_rules():
    import ast

    from cnnops.io.literal import node_value

    def arg(text):
        return ast.parse(text, mode="eval").body

    assert node_value(arg("[[1., 0, -1.]]"), "weight") == [[1.0, 0, -1.0]]
    assert node_value(arg("torch.tensor([[1., 0, -1.]], dtype=torch.float32)"), "weight") == [[1.0, 0, -1.0]]
    assert node_value(arg("torch.ones(2, 2)"), "weight") == [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(SpecError, match="the name '__class__' is not allowed"):
        node_value(arg("torch.tensor([1.]).__class__"), "weight", error=SpecError)
    with pytest.raises(InputError, match="draws random numbers"):
        node_value(arg("torch.randn(2)"), "weight")


@pytest.mark.parametrize("seed", [-1, -(2**63), 2**63, 2**64 - 1])
def test_a_pasted_manual_seed_takes_torchs_whole_range(seed):
    tensor = read_input(f"torch.manual_seed({seed}); x = torch.randn(2, 3)", seed=0)
    torch.manual_seed(seed)
    assert same(tensor.data, torch.randn(2, 3))
    assert tensor.source.endswith(f"(seed {seed})")


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_a_pasted_manual_seed_torch_refuses_is_refused_with_its_range(seed):
    with pytest.raises(ValueError):
        torch.manual_seed(seed)
    with pytest.raises(InputError, match=r"outside torch.manual_seed's range, -2\*\*63 to 2\*\*64 - 1"):
        read_input(f"torch.manual_seed({seed}); x = torch.randn(2, 3)")


# ---------------------------------------------------------------------------------------------- arange


ARANGES = [
    "torch.arange(30.)", "torch.arange(0., 3., 0.5)", "torch.arange(3)", "torch.arange(1e2)", "torch.arange(0.5)",
    "torch.arange(0, 3.3, 0.5)", "torch.arange(-0., -2., -1.)", "torch.arange(-0., 2.)", "torch.arange(end=5)",
    "torch.arange(1, end=5)", "torch.arange(start=1, end=5, step=2)", "torch.arange(1, 5, step=2)",
    "torch.arange(30., dtype=torch.int64)", "torch.arange(3, dtype=torch.float32)", "torch.arange(-1.25, 2, 0.75)",
    "torch.arange(16777212., 16777216.)", "torch.arange(0., 1073741824., 134217728.)",
    "np.arange(2, step=5)", "np.arange(3., step=0.5)", "np.arange(stop=5, step=2)", "np.arange(2, stop=8)",
    "np.arange(-0., 2.)", "np.arange(-0., -2., -1.)", "np.arange(0., 3., 0.5, dtype=np.float32)", "np.arange(30.)",
    "np.arange(1, 4, dtype=np.float32)", "np.arange(16777217., 16777220.)",
]  # fmt: skip


@pytest.mark.parametrize("text", ARANGES)
def test_arange_gives_what_torch_and_numpy_give(text):
    expected = np.asarray(eval(text, {"torch": torch, "np": np}), dtype=np.float32)  # the test's own text
    assert same(read_input(text).data, expected), (read_input(text).data, expected)


@pytest.mark.parametrize(
    "text, message, theirs",
    [  # theirs: torch or numpy refuse it too (else: cnnops cannot promise their values)
        ("torch.arange(3., step=0.5)", r"torch.arange\(end\) takes no step=", True),
        ("torch.arange(start=1)", r"takes \(end\), \(start, end\) or \(start, end, step\)", True),
        ("torch.arange(5, 0)", "goes from 5 to 0 with step 1, the wrong way", True),
        ("torch.arange(float('inf'))", "must be finite", True),
        ("torch.arange(0., 3., 0.5, dtype=torch.int64)", "cuts the fractions off its numbers", True),
        ("np.arange(start=3)", "needs its stop", True),
        ("torch.arange(0., 1., 0.1)", "its value 0.1 is not exact in float32", False),
        ("torch.arange(16777217, 16777257, dtype=torch.float32)", "its value 16777217.0 is not exact in float32", False),
        ("np.arange(-16777215, 16777216, 3, dtype=np.float32)", "numpy makes a float32 arange in float32 steps", False),
    ],
)  # fmt: skip
def test_arange_refusals_say_why(text, message, theirs):
    with pytest.raises(InputError, match=message):
        read_input(text)
    if theirs:
        with pytest.raises((TypeError, ValueError, RuntimeError)):
            eval(text, {"torch": torch, "np": np})  # the test's own text


def _exact32(value: Fraction) -> bool:
    return Fraction(float(np.float32(float(value)))) == value


ARANGE_NUMBERS = hs.one_of(
    hs.integers(-40, 40), hs.integers(-(2**25), 2**25),
    hs.builds(lambda k, shift: k / 2**shift, hs.integers(-400, 400), hs.integers(0, 12)),
    hs.sampled_from([0.1, -0.3, 1 / 3, 2.5e-8, 1e10, 2.0**30, 16777215.0, 16777217.0, -16777216.0, -0.0, 0.0]),
)


def _values(start, stop, step):
    """The exact values start + k·step (k < the length torch and numpy compute), or None when too many."""
    count = math.ceil((float(stop) - float(start)) / float(step))
    if count > 2000:
        return None
    return [Fraction(start) + k * Fraction(step) for k in range(max(count, 0))]


@hs.composite
def arange_numbers(draw):
    """start, stop, step: mostly a stop some steps away from the start (a stop written as a whole number
    when it is one, as people write it), sometimes any stop."""
    start, step = draw(ARANGE_NUMBERS), draw(ARANGE_NUMBERS.filter(lambda n: n != 0))
    if draw(hs.integers(0, 3)):
        stop = start + step * (draw(hs.integers(1, 300)) - draw(hs.sampled_from([0, 0.5])))
        return start, int(stop) if isinstance(stop, float) and stop.is_integer() and draw(hs.booleans()) else stop, step
    return start, draw(ARANGE_NUMBERS), step


@settings(derandomize=True, deadline=None, max_examples=500)
@given(numbers=arange_numbers(), module=hs.sampled_from(["torch", "np"]),
       dtype=hs.sampled_from(["", "", "torch.float32"]))  # fmt: skip
def test_arange_is_torchs_and_numpys_or_refused_and_read_whenever_every_value_is_exact(numbers, module, dtype):
    start, stop, step = numbers
    values = _values(start, stop, step)
    if values is None:
        return
    dtype = dtype.replace("torch", module)
    text = f"{module}.arange({start!r}, {stop!r}, {step!r}{', dtype=' + dtype if dtype else ''})"
    try:
        made = np.asarray(eval(text, {"torch": torch, "np": np}), dtype=np.float32)  # the test's own text
    except (RuntimeError, ValueError):
        made = None
    try:
        mine = read_input(text).data
    except InputError as exc:
        exact = all(_exact32(v) for v in values)
        # refused: torch or numpy refuse it, it is empty, or a value is not exact in float32 (numpy's float32
        # arange also when its float32 steps round); otherwise every value fits
        assert made is None or made.size == 0 or not exact or (module == "np" and dtype), (text, str(exc))
        return
    assert made is not None and same(mine, made), (text, mine, made)


@pytest.mark.parametrize(
    "text, reason",
    [('{"output": {"data": [1.0], "indices": null}}\nrc=0', "extra data at line 2, column 1"),
     ('{"data": [1], "shape": null}\n{"data": [2]}', "extra data at line 2, column 1")],
)  # fmt: skip
def test_broken_json_with_json_words_says_what_json_found(text, reason):
    """A --json result with text after it (`cnnops … --json; echo done | cnnops … -`, or two --jsonl lines)
    is JSON gone wrong: JSON's reason is given, not Python's complaint about the name null."""
    for source in (text, "-"):
        with pytest.raises(InputError, match=f"is not valid JSON: {reason}$"):
            read_input(source, stdin=io.BytesIO(text.encode()))
