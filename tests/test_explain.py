"""--explain: the terms of one output value re-add to it, and that value is torch's (property-based).

Each case writes a stage as PyTorch text, runs it through cnnops with the numpy and the torch engine
explicitly, and builds the torch module from the same text (weights from ``torch.manual_seed``, as
PyTorch's own initialisation draws them, which is what cnnops reproduces for weights not given).
"""

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as hs

from cnnops.errors import SettingError
from cnnops.model.trace import trace_shapes
from cnnops.run.explain import explain, parse_position
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stages

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
ENGINES = ["numpy", "torch"]


def torch_run(texts: list[str], data: np.ndarray, seed: int) -> list:
    """Every module's output, built from the stage texts in a fresh seeded state (test-only oracle);
    a max pool's indices ride along as (output, indices)."""
    torch.manual_seed(seed)
    modules = [eval(f"torch.nn.{t}") for t in texts]
    x = torch.from_numpy(data.copy())
    outs = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        indices = None
        for m in modules:
            if isinstance(m, torch.nn.MaxUnpool1d | torch.nn.MaxUnpool2d):
                x = m(x, indices)
            else:
                x = m(x)
            if isinstance(x, tuple):
                x, indices = x
                outs.append((x.numpy(), indices.numpy()))
            else:
                outs.append((x.numpy(), None))
    return outs


def values(shape, seed, ties):
    rng = np.random.default_rng(seed)
    if ties:
        return rng.choice(np.array([-1.0, 0.0, 1.0, 2.0], dtype=np.float32), size=shape)
    return rng.standard_normal(shape).astype(np.float32)


def positions(shape, draw):
    return tuple(draw(hs.integers(0, n - 1)) for n in shape)


def run_both(texts, data, seed, engine):
    stages = parse_stages(texts)
    trace = trace_shapes(data.shape, stages)
    assume(trace.error is None)
    assume(all(math.prod(r.output_shape) > 0 for r in trace.rows))
    return run_pipeline(data, stages, seed=seed, engine=engine)


def tolerance(e) -> float:
    scale = max([abs(t) for t in e.terms] + [abs(e.bias or 0.0), abs(e.value), 1.0])
    return 1e-5 * scale * max(1, len(e.terms)) ** 0.5


def check_sum(e):
    """sum(terms) (+ bias) = value, to float32 rounding of the engine's own order of additions."""
    total = math.fsum(e.terms) + (e.bias or 0.0)
    assert abs(total - e.value) <= tolerance(e), (total, e.value, e.as_dict())


def check_torch(e, expected, position=None):
    want = float(expected[position if position is not None else e.position])
    assert math.isclose(e.value, want, rel_tol=1e-5, abs_tol=1e-5) or (math.isnan(want) and math.isnan(e.value))


@hs.composite
def conv_cases(draw):
    nd = draw(hs.sampled_from([1, 2]))
    groups = draw(hs.integers(1, 2))
    cin, cout = groups * draw(hs.integers(1, 2)), groups * draw(hs.integers(1, 2))
    k = draw(hs.integers(1, 3))
    s = draw(hs.integers(1, 2))
    p = draw(hs.integers(0, 2))
    d = draw(hs.integers(1, 2))
    mode = draw(hs.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    bias = draw(hs.booleans())
    lengths = [draw(hs.integers(3, 6)) for _ in range(nd)]
    batch = [draw(hs.integers(1, 2))] if draw(hs.booleans()) else []
    text = (f"Conv{nd}d({cin}, {cout}, {k}, stride={s}, padding={p}, dilation={d}, groups={groups}, "
            f"bias={bias}, padding_mode='{mode}')")  # fmt: skip
    return text, tuple(batch + [cin, *lengths]), draw(hs.integers(0, 99)), draw(hs.booleans())


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(case=conv_cases(), data=hs.data())
def test_conv_terms_add_up_to_torchs_value(engine, case, data):
    text, shape, seed, ties = case
    x = values(shape, seed, ties)
    result = run_both([text], x, seed, engine)
    pos = positions(result.output.shape, data.draw)
    e = explain(result, pos)
    check_sum(e)
    check_torch(e, torch_run([text], x, seed)[0][0])
    # the window holds exactly in/groups channels × kernel taps
    stage = result.trace.rows[0].stage
    assert len(e.terms) == stage.in_channels // stage.groups * math.prod(stage.kernel_size)


@hs.composite
def transposed_cases(draw):
    nd = draw(hs.sampled_from([1, 2]))
    groups = draw(hs.integers(1, 2))
    cin, cout = groups * draw(hs.integers(1, 2)), groups * draw(hs.integers(1, 2))
    k, s, d = draw(hs.integers(1, 3)), draw(hs.integers(1, 3)), draw(hs.integers(1, 2))
    p = draw(hs.integers(0, 1))
    op = draw(hs.integers(0, max(s, d) - 1))
    lengths = [draw(hs.integers(1, 4)) for _ in range(nd)]
    text = (f"ConvTranspose{nd}d({cin}, {cout}, {k}, stride={s}, padding={p}, output_padding={op}, "
            f"groups={groups}, dilation={d}, bias={draw(hs.booleans())})")  # fmt: skip
    return text, (cin, *lengths), draw(hs.integers(0, 99)), draw(hs.booleans())


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(case=transposed_cases(), data=hs.data())
def test_transposed_conv_scatter_adds_up_to_torchs_value(engine, case, data):
    text, shape, seed, ties = case
    x = values(shape, seed, ties)
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_sum(e)
    check_torch(e, torch_run([text], x, seed)[0][0])


@hs.composite
def pool_cases(draw):
    nd = draw(hs.sampled_from([1, 2]))
    mode = draw(hs.sampled_from(["Max", "Avg"]))
    k = draw(hs.integers(1, 3))
    s = draw(hs.integers(1, 3))
    p = draw(hs.integers(0, k // 2))
    ceil = draw(hs.booleans())
    args = [f"{k}", f"stride={s}", f"padding={p}", f"ceil_mode={ceil}"]
    if mode == "Max":
        args += [f"dilation={draw(hs.integers(1, 2))}", "return_indices=True"]
    else:
        args.append(f"count_include_pad={draw(hs.booleans())}")
        if nd == 2 and draw(hs.booleans()):
            args.append(f"divisor_override={draw(hs.sampled_from([-2, 1, 3]))}")
    lengths = [draw(hs.integers(1, 7)) for _ in range(nd)]
    batch = [draw(hs.integers(1, 2))] if draw(hs.booleans()) else []
    return f"{mode}Pool{nd}d({', '.join(args)})", tuple(batch + [draw(hs.integers(1, 2)), *lengths]), \
        draw(hs.integers(0, 99)), draw(hs.booleans())  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(case=pool_cases(), data=hs.data())
def test_pool_explanation_matches_torch(engine, case, data):
    text, shape, seed, ties = case
    x = values(shape, seed, ties)
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    out, indices = torch_run([text], x, seed)[0]
    check_torch(e, out)
    if text.startswith("Max"):
        assert e.winner_index == int(indices[e.position])
        window = e.windows[0]
        read = [t for t in window.taps if window.cells[t][1] == "in"]
        if not read:  # only padding: −inf, and an index outside the window
            assert e.value == -math.inf
            return
        # the tie rule: the winner is the first maximum in row-major window order
        winner = tuple(e.winner[-len(window.coords):])
        assert winner in read and window.cells[winner][0] == e.value
        assert all(window.cells[t][0] < e.value for t in read[: read.index(winner)])
        assert all(window.cells[t][0] == e.value for t in [tuple(t[-len(window.coords):]) for t in e.ties])
    else:
        check_sum(e)
        total = math.fsum(e.windows[0].cells[t][0] for t in e.windows[0].taps)
        assert math.isclose(total / e.divisor, e.value, rel_tol=1e-5, abs_tol=1e-6)


@hs.composite
def adaptive_cases(draw):
    nd = draw(hs.sampled_from([1, 2]))
    mode = draw(hs.sampled_from(["Max", "Avg"]))
    lengths = [draw(hs.integers(1, 7)) for _ in range(nd)]
    sizes = [draw(hs.integers(1, 9)) for _ in range(nd)]
    size = sizes[0] if nd == 1 else tuple(sizes)
    extra = ", return_indices=True" if mode == "Max" else ""
    return f"Adaptive{mode}Pool{nd}d({size}{extra})", (draw(hs.integers(1, 2)), *lengths), \
        draw(hs.integers(0, 99)), draw(hs.booleans())  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(case=adaptive_cases(), data=hs.data())
def test_adaptive_bins_match_torch(engine, case, data):
    text, shape, seed, ties = case
    x = values(shape, seed, ties)
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_pool_or_conv(e, text, x, seed)
    for (start, end), o, n, size in zip(e.bins, e.position[-len(e.bins):], shape[-len(e.bins):],
                                        result.output.shape[-len(e.bins):], strict=True):  # fmt: skip
        assert start == (o * n) // size and end == -((-(o + 1) * n) // size)


@hs.composite
def cases_3d(draw):
    kind = draw(hs.sampled_from(["Conv", "MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool"]))
    k = draw(hs.integers(1, 2))
    if kind == "Conv":
        text = (f"Conv3d(2, 2, {k}, stride={draw(hs.integers(1, 2))}, padding={draw(hs.integers(0, 1))}, "
                f"dilation={draw(hs.integers(1, 2))}, bias={draw(hs.booleans())})")  # fmt: skip
    elif kind == "MaxPool":
        text = f"MaxPool3d({k}, stride=1, padding={k // 2}, dilation={draw(hs.integers(1, 2))}, return_indices=True)"
    elif kind == "AvgPool":
        override = draw(hs.sampled_from(["", ", divisor_override=3"]))
        text = (f"AvgPool3d({k}, stride={draw(hs.integers(1, 2))}, padding={k // 2}, ceil_mode={draw(hs.booleans())}, "
                f"count_include_pad={draw(hs.booleans())}{override})")  # fmt: skip
    else:
        extra = ", return_indices=True" if kind == "AdaptiveMaxPool" else ""
        text = f"{kind}3d({draw(hs.integers(1, 3))}{extra})"
    return text, (draw(hs.integers(1, 2)), 2, *[draw(hs.integers(2, 4)) for _ in range(3)]), draw(hs.integers(0, 99))


@pytest.mark.parametrize("engine", ENGINES)
@settings(SETTINGS, max_examples=30)
@given(case=cases_3d(), data=hs.data())
def test_3d_explanations_add_up_to_torchs_value(engine, case, data):
    """AvgPool3d's explanation crashed on its divisor (2-D only); the rest must hold in 3-D too."""
    text, shape, seed = case
    x = values(shape, seed, False)
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_pool_or_conv(e, text, x, seed)


def check_pool_or_conv(e, text, x, seed):
    """The explained value is torch's; a max's winner is torch's index, anything else's terms add up."""
    out, indices = torch_run([text], x, seed)[0]
    check_torch(e, out)
    if "Max" in text:
        assert e.winner_index == int(indices[e.position])
    else:
        check_sum(e)


def test_3d_explanations_draw_a_grid_per_depth():
    x = "[[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]"
    conv = cli("run", x, "Conv3d(1, 1, 2, weight=[[[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]]], bias=False)",
               "--explain", "0,0,0,0")  # fmt: skip
    assert conv.returncode == 0, conv.stderr
    assert "kernel, depth 1" in conv.stdout and "1 + 4 + 9 + 16 + 25 + 36 + 49 + 64 = 204" in conv.stdout
    for stage, value in [("AvgPool3d(2)", "36 / 8 = 4.5"), ("MaxPool3d(2)", "8.*"), ("AdaptiveMaxPool3d(1)", "8.*")]:
        out = cli("run", x, stage, "--explain", "0,0,0,0")
        assert out.returncode == 0, out.stderr
        assert "window, depth 1" in out.stdout or "bin, depth 1" in out.stdout
        assert value in out.stdout


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(nd=hs.sampled_from([1, 2]), k=hs.integers(1, 3), s=hs.integers(1, 3), seed=hs.integers(0, 99),
       ties=hs.booleans(), data=hs.data())  # fmt: skip
def test_unpool_value_comes_from_the_saved_index(engine, nd, k, s, seed, ties, data):
    shape = (2, *([data.draw(hs.integers(k, 7))] * nd))
    texts = [f"MaxPool{nd}d({k}, stride={s}, return_indices=True)", f"MaxUnpool{nd}d({k}, stride={s})"]
    x = values(shape, seed, ties)
    result = run_both(texts, x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    pooled, indices = torch_run(texts[:1], x, seed)[0]
    size = result.output.shape[-nd:]
    expected = torch.nn.functional.__dict__[f"max_unpool{nd}d"](
        torch.from_numpy(pooled), torch.from_numpy(indices), k, s, output_size=size).numpy()  # fmt: skip
    check_torch(e, expected)
    if e.contributions:
        assert e.contributions[-1]["input_value"] == e.value
    else:
        assert e.value == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_unpool_names_the_value_the_output_holds_when_indices_repeat(engine):
    """Different values saved at one index: which one stays depends on PyTorch's threads (last on one)."""
    x = np.arange(1, 11, dtype=np.float32).reshape(1, 1, 10)
    result = run_pipeline(x, parse_stages(["MaxUnpool1d(2)"]), indices=np.full((1, 1, 10), 3), engine=engine)
    e = explain(result, (0, 0, 3))
    assert len(e.contributions) == 10 and e.value in [c["input_value"] for c in e.contributions]
    assert f"the pooled value {e.value:g} at" in e.notes[0] and "several threads race" in e.notes[1]


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(cin=hs.integers(1, 6), cout=hs.integers(1, 4), bias=hs.booleans(), rank=hs.integers(1, 3),
       seed=hs.integers(0, 99), data=hs.data())  # fmt: skip
def test_linear_dot_product_adds_up_to_torchs_value(engine, cin, cout, bias, rank, seed, data):
    text = f"Linear({cin}, {cout}, bias={bias})"
    shape = (*[2] * (rank - 1), cin)
    x = values(shape, seed, False)
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_sum(e)
    check_torch(e, torch_run([text], x, seed)[0][0])
    assert len(e.terms) == cin


ACTIVATIONS = ["ReLU()", "ReLU6()", "LeakyReLU(0.2)", "ELU(alpha=0.5)", "GELU()", "GELU(approximate='tanh')",
               "SiLU()", "Mish()", "Hardswish()", "Sigmoid()", "Tanh()", "Softplus(beta=2.0)", "Softmax(dim=1)",
               "LogSoftmax(dim=0)", "Hardtanh(-2.0, 2.0)", "Threshold(0.5, 7.0)", "Hardsigmoid()", "SELU()",
               "CELU(0.5)", "Softsign()", "Tanhshrink()", "PReLU(init=0.3)"]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("text", ACTIVATIONS)
@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=hs.integers(0, 99), data=hs.data())
def test_activation_at_its_input_matches_torch(engine, text, seed, data):
    x = values((2, 3), seed, False) * 3
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_torch(e, torch_run([text], x, seed)[0][0])
    assert e.operand == float(x[e.position]) and e.formula
    if "Softmax" not in text:  # the function written out at the input value, not just its name
        assert text.split("(")[0] not in e.formula.split(" ")[0] and any(ch.isdigit() for ch in e.formula)


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(dim=hs.integers(-3, 2), seed=hs.integers(0, 99), data=hs.data())
def test_glu_reads_a_and_b_half_the_dim_apart(engine, dim, seed, data):
    """GLU's value is a·σ(b): the explanation showed one input and the bare name 'GLU'."""
    x = values((2, 4, 2), seed, False) * 3
    text = f"GLU(dim={dim})"
    result = run_both([text], x, seed, engine)
    e = explain(result, positions(result.output.shape, data.draw))
    check_torch(e, torch_run([text], x, seed)[0][0])
    a, b = (c["input_value"] for c in e.contributions)
    assert [c["part"] for c in e.contributions] == ["a", "b"]
    assert (a, b) == (float(x[tuple(e.contributions[0]["input"])]), float(x[tuple(e.contributions[1]["input"])]))
    assert math.isclose(a / (1 + math.exp(-b)), e.value, rel_tol=1e-5, abs_tol=1e-6)


@pytest.mark.parametrize("engine", ENGINES)
def test_prelu_formula_uses_the_channels_slope(engine):
    x = values((2, 3, 2), 0, False)
    text = "PReLU(3, init=-0.2)"
    result = run_pipeline(x, parse_stages([text]), engine=engine)
    want = torch_run([text], x, 0)[0][0]
    for position in [(0, 0, 0), (1, 1, 1), (0, 2, 1)]:
        e = explain(result, position)
        check_torch(e, want)
        assert "else -0.2 · " in e.formula and f"(channel {position[1]}'s)" in e.notes[0]


def test_position_leaves_out_leading_zeros_and_defaults_to_the_last_computing_stage():
    x = np.zeros((5, 5), dtype=np.float32)
    x[:, 2] = 1
    result = run_pipeline(x, parse_stages(["Conv2d(1, 1, 3, weight='gx', bias=False)", "ReLU", "MaxPool2d(2, 1)",
                                           "Flatten"]), engine="numpy")  # fmt: skip
    e = explain(result, (0, 1))
    assert e.stage_index == 3 and e.position == (0, 0, 1) and e.value == 4
    assert explain(result, (0, 0), 1).value == -4
    assert explain(result, (0, 3), 4).source == (0, 1, 1)


@pytest.mark.parametrize("position, stage, words", [
    ((0, 0, 0, 0), 1, "has 4 coordinates"),
    ((0, 3), 1, "coordinate 2 runs from 0 to 2"),
    ((0,), 5, "is not a stage: give 1 to 2"),
])  # fmt: skip
def test_positions_outside_the_output_are_refused(position, stage, words):
    result = run_pipeline(np.zeros((5, 5), dtype=np.float32), parse_stages(["Conv2d(1, 1, 3)", "ReLU"]),
                          engine="numpy")  # fmt: skip
    with pytest.raises(SettingError, match=words):
        explain(result, position, stage)


def test_an_empty_output_has_no_value_to_explain():
    result = run_pipeline(np.ones((2, 2), dtype=np.float32), parse_stages(["AdaptiveAvgPool2d((0, 2))"]), engine="numpy")
    with pytest.raises(SettingError, match=r"output 1×0×2 of stage 1 .* is empty \(dimension 1 has size 0\)"):
        explain(result, (0, 0))


def test_batch_norm_is_not_explained_value_by_value():
    result = run_pipeline(np.ones((1, 2, 3, 3), dtype=np.float32), parse_stages(["BatchNorm2d(2)"]), engine="numpy")
    with pytest.raises(SettingError, match="no stage here computes"):
        explain(result, (0, 0, 0, 0))
    with pytest.raises(SettingError, match="cannot be explained"):
        explain(result, (0, 0, 0, 0), 1)


@pytest.mark.parametrize("text", ["a,b", "-1,0", "", "1.5"])
def test_position_text_must_be_non_negative_integers(text):
    with pytest.raises(SettingError, match="takes an output position"):
        parse_position(text)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnops", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "100"})  # fmt: skip


def test_json_explain_object_names_stage_position_terms_and_value():
    out = cli("conv", "examples/line5x5.json", "--weight", "gx", "--bias", "0.5", "--explain", "0,0", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    e = doc["explain"]
    assert e["stage"] == 1 and e["position"] == [0, 0, 0] and e["value"] == -3.5
    assert sum(e["terms"]) + e["bias"] == e["value"] == doc["output"]["data"][0][0][0]
    assert e["windows"][0]["kernel"] == [1, 0, -1, 2, 0, -2, 1, 0, -1]


def test_cli_errors_name_the_option():
    bad = cli("relu", "[[1, 2]]", "--explain", "x")
    assert bad.returncode == 2 and "--explain takes an output position" in bad.stderr and bad.stdout == ""
    outside = cli("relu", "[[1, 2]]", "--explain", "0,5")
    assert outside.returncode == 2 and "--explain 0,5 is outside the output 1×2" in outside.stderr
    stage = cli("run", "[[1, 2]]", "relu", "--explain", "0", "--explain-stage", "3")
    assert stage.returncode == 2 and "--explain-stage 3 is not a stage" in stage.stderr
    alone = cli("run", "[[1, 2]]", "relu", "--explain-stage", "1")  # was ignored, exit 0
    assert alone.returncode == 2 and "add --explain POS" in alone.stderr and alone.stdout == ""


def test_quiet_prints_no_explanation():
    out = cli("relu", "[[1, 2]]", "--explain", "0,1", "--quiet")
    assert out.returncode == 0 and out.stdout == ""
