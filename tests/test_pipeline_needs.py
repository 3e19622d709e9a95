"""Only what is read is computed and kept: ``keep`` and ``need_indices`` in run_pipeline, the fused
conv → element-wise → pool path, in-place ReLU, the command line's choice of both, and the lazy RNG."""

import json
import math
import subprocess
import sys
from contextlib import ExitStack
from importlib import import_module
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnnops.cli.batch import DataOptions, run_needs
from cnnops.engines import numpy_engine
from cnnops.model.trace import trace_shapes
from cnnops.run import pipeline
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stages

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)

conv_module = import_module("cnnops.engines.numpy_engine.conv")
fused_module = import_module("cnnops.engines.numpy_engine.fused")


def identical(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a) & ~np.isnan(a), np.signbit(b) & ~np.isnan(b))


def fusing_small_planes(band_columns: int, pool_batch: int):
    """Fuse chains on small planes, with small conv bands and pooling rounds, so a test crosses many."""
    stack = ExitStack()
    stack.enter_context(mock.patch.object(pipeline, "FUSE_ELEMENTS", 1))
    stack.enter_context(mock.patch.object(conv_module, "_SMALL_BAND_COLUMNS", band_columns))
    stack.enter_context(mock.patch.object(conv_module, "_IM2COL_BUDGET", band_columns * 16))
    stack.enter_context(mock.patch.object(fused_module, "POOL_BATCH", pool_batch))
    return stack


ELEMENTWISE = ["ReLU", "LeakyReLU(0.1)", "GELU", "Tanh", "BatchNorm2d({c})", "Identity", "Dropout(0.5)"]


@SETTINGS
@given(hs.data(), hs.sampled_from(["normal", "ties"]))
def test_fused_chains_give_the_numbers_of_the_stages_run_one_by_one(data, kind):
    c = data.draw(hs.integers(1, 3))
    out_c = data.draw(hs.integers(1, 3))
    k, pad, dil = data.draw(hs.integers(1, 4)), data.draw(hs.integers(0, 2)), data.draw(hs.integers(1, 2))
    mode = data.draw(hs.sampled_from(["zeros", "reflect", "zeros"]))
    if mode != "zeros":
        pad = min(pad, 1)
    conv = f"Conv2d({c}, {out_c}, {k}, stride={data.draw(hs.integers(1, 2))}, padding={pad}, dilation={dil}, padding_mode='{mode}')"
    middle = [s.format(c=out_c) for s in data.draw(hs.lists(hs.sampled_from(ELEMENTWISE), max_size=2))]
    pk = data.draw(hs.integers(1, 4))
    pool = data.draw(hs.sampled_from([
        f"MaxPool2d({pk}, stride={data.draw(hs.integers(1, 3))}, padding={pk // 2}, dilation={data.draw(hs.integers(1, 2))}, ceil_mode={data.draw(hs.booleans())})",
        f"AvgPool2d({pk}, stride={data.draw(hs.integers(1, 3))}, padding={pk // 2}, ceil_mode={data.draw(hs.booleans())}, count_include_pad={data.draw(hs.booleans())})",
    ]))  # fmt: skip
    rng = np.random.default_rng(data.draw(hs.integers(0, 2**16)))
    shape = (*data.draw(hs.sampled_from([(), (2,)])), c, data.draw(hs.integers(12, 40)), data.draw(hs.integers(12, 40)))
    if kind == "ties":
        x = rng.choice(np.array([-1.0, -0.0, 0.0, 1.0], np.float32), size=shape)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    stages = parse_stages([conv, *middle, pool])
    trace = trace_shapes(x.shape, stages)
    if trace.error is not None:
        return  # a configuration PyTorch refuses is not a case
    # a stage that changes the layout (BatchNorm2d promoting an unbatched tensor) ends the chain
    fuses = all(tuple(row.effective_input) == tuple(trace.rows[row.index - 2].output_shape) for row in trace.rows[1:])
    # the same conv bands both ways (they are fixed by the shapes, and BLAS rounds by band)
    with fusing_small_planes(data.draw(hs.sampled_from([1, 7, 64])), data.draw(hs.sampled_from([1, 50, 1 << 18]))):
        whole = run_pipeline(x, stages, engine="numpy", seed=3)
        with mock.patch.object(numpy_engine, "conv_chain", wraps=numpy_engine.conv_chain) as chain:
            fused = run_pipeline(x, stages, engine="numpy", seed=3, keep=(), need_indices=())
    assert chain.call_count == int(fuses) and all(res.output is None for res in fused.results[:-1])
    identical(fused.output, whole.output)


def test_fused_chains_draw_the_default_weights_in_layer_order():
    """Two fused chains in a row: the second conv's default weights come after the first's in the
    stream, so the same result to the bit means both drew as the unfused run did."""
    x = np.random.default_rng(0).standard_normal((1, 1, 30, 30)).astype(np.float32)
    stages = parse_stages(["Conv2d(1, 2, 3)", "ReLU", "MaxPool2d(2)", "Conv2d(2, 2, 3)", "ReLU", "AvgPool2d(2)"])
    with fusing_small_planes(16, 40):
        whole = run_pipeline(x, stages, engine="numpy", seed=7)
        with mock.patch.object(numpy_engine, "conv_chain", wraps=numpy_engine.conv_chain) as chain:
            fused = run_pipeline(x, stages, engine="numpy", seed=7, keep=(), need_indices=())
    assert chain.call_count == 2
    identical(fused.output, whole.output)


def test_a_chain_ending_in_an_average_pool_summed_pairwise_is_not_fused():
    """The fused pool adds every tap in ATen's order; where the engine sums pairwise instead (4·10⁸ taps
    here, ~10⁶ pairwise) the chain runs stage by stage, as fast as without ``keep``, and within float32
    rounding of torch."""
    import torch

    x = np.random.default_rng(4).standard_normal((1, 1, 300, 300)).astype(np.float32)
    stages = parse_stages(["Conv2d(1, 2, 3, padding=1, bias=False)", "ReLU", "AvgPool2d(100, stride=1)"])
    with mock.patch.object(pipeline, "FUSE_ELEMENTS", 1):
        whole = run_pipeline(x, stages, engine="numpy", seed=3)
        with mock.patch.object(numpy_engine, "conv_chain", wraps=numpy_engine.conv_chain) as chain:
            lean = run_pipeline(x, stages, engine="numpy", seed=3, keep=(), need_indices=())
    assert chain.call_count == 0
    identical(lean.output, whole.output)
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, bias=False), torch.nn.ReLU(), torch.nn.AvgPool2d(100, stride=1))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(lean.output, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_indices_are_computed_exactly_where_they_are_read(engine):
    x = np.random.default_rng(1).standard_normal((1, 2, 8, 8)).astype(np.float32)
    stages = parse_stages(["MaxPool2d(2)", "ReLU", "MaxPool2d(2)", "MaxUnpool2d(2)", "AdaptiveMaxPool2d(2)"])
    everything = run_pipeline(x, stages, engine=engine)
    assert [r.indices is not None for r in everything.results] == [True, False, True, False, True]
    assert [r.winners is not None for r in everything.results] == [True, False, True, False, True]
    some = run_pipeline(x, stages, engine=engine, keep=(), need_indices={5})
    # stage 3's indices are read by the unpool (and let go after it); stage 1's by nobody; stage 5's by the caller
    assert [r.indices is not None for r in some.results] == [False, False, False, False, True]
    assert all(r.winners is None for r in some.results)  # the tensors they would mark are not kept
    identical(some.results[3].output if some.results[3].output is not None else some.output, some.output)
    identical(some.output, everything.output)
    identical(some.output_indices, everything.output_indices)
    shown = run_pipeline(x, stages, engine=engine, keep={0, 2}, need_indices={1, 3})
    assert [r.winners is not None for r in shown.results] == [True, False, True, False, False]


def test_tensors_nobody_keeps_are_let_go_and_the_caller_s_input_is_never_overwritten():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32)
    original = x.copy()
    stages = parse_stages(["ReLU", "Tanh", "ReLU", "Flatten(0)", "ReLU"])
    result = run_pipeline(x, stages, engine="numpy", keep={2})
    identical(x, original)
    assert result.input is None
    assert [r.output is not None for r in result.results] == [False, True, False, False, True]
    assert result.as_dict()["input"]["shape"] == [2, 2]
    default = run_pipeline(x, stages, engine="numpy")
    assert default.input is x and all(r.output is not None for r in default.results)
    identical(result.output, default.output)


def test_relu_in_place_keeps_negative_zero_and_nan_like_torch():
    import torch

    x = np.array([-0.0, 0.0, -1.0, np.nan, -np.inf, 3.0], np.float32)
    stages = parse_stages(["Identity", "ReLU"])
    for engine in ("numpy", "torch"):
        result = run_pipeline(x, stages, engine=engine, keep=())
        identical(result.output, torch.relu(torch.from_numpy(x)).numpy())


VIEW_CASES = [  # (stages, the same in torch): a Flatten or Unflatten gives a view of what it read
    (["Tanh", "Flatten", "ReLU", "Add(@1, @3)"], lambda torch, x: torch.tanh(x) + torch.relu(torch.tanh(x).flatten(1))),
    (["Flatten", "ReLU"], lambda torch, x: torch.relu(x.flatten(1))),
    (["Flatten", "ReLU", "Mul(@input, @2)"], lambda torch, x: x * torch.relu(x.flatten(1))),
    (["Tanh", "Unflatten(1, (5, 1))", "Flatten", "ReLU", "Add(@1, @4)"],
     lambda torch, x: torch.tanh(x) + torch.relu(torch.tanh(x))),
]  # fmt: skip


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("texts", "reference"), VIEW_CASES)
def test_an_in_place_relu_never_overwrites_a_tensor_its_input_is_a_view_of(engine, texts, reference):
    import torch

    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    original = x.copy()
    expected = reference(torch, torch.from_numpy(x.copy())).numpy()
    for keep in [(), {0}, None]:
        result = run_pipeline(x, parse_stages(texts), engine=engine, keep=keep, need_indices=())
        np.testing.assert_allclose(result.output, expected, rtol=1e-6, atol=1e-7)
        identical(x, original)
        if keep:
            identical(result.input, original)


SHARING = ["Identity()", "Dropout()", "Dropout(p=0.3, inplace=True)", "AlphaDropout()", "Flatten()", "Flatten(0, -1)", "Unflatten(1, (2, 3))"]
IN_PLACE = ["ReLU(inplace=True)", "LeakyReLU(0.2, inplace=True)", "Hardtanh(-0.5, 0.5, inplace=True)", "ELU(inplace=True)",
            "SiLU(inplace=True)", "Threshold(0.1, 20.0, inplace=True)"]  # fmt: skip
OTHERS = ["Tanh()", "Sigmoid()", "ReLU()", "Softsign()"]


@settings(derandomize=True, deadline=None, max_examples=150)
@given(hs.data(), hs.sampled_from(["numpy", "torch"]))
def test_in_place_stages_overwrite_every_tensor_that_shares_their_storage_like_torch(data, engine):
    """A graph of in-place activations, views (Flatten, Unflatten) and stages that give the very tensor
    they read (Identity, Dropout in evaluation mode), each reading the stage before it or an earlier one,
    then a merge of two earlier outputs — against plain torch.nn modules built from the same texts and
    called on the same tensors, so PyTorch's own aliasing decides what each in-place write reaches."""
    import torch

    x = np.random.default_rng(data.draw(hs.integers(0, 9))).standard_normal((1, 6, 2)).astype(np.float32) * 2
    texts, outs = [], [torch.from_numpy(x.copy())]
    for i in range(1, data.draw(hs.integers(2, 7)) + 1):
        text = data.draw(hs.sampled_from(SHARING + IN_PLACE + OTHERS))
        source = data.draw(hs.sampled_from([i - 1, *range(i - 1)]))
        if text.startswith("Unflatten") and tuple(outs[source].shape) != (1, 6, 2):
            text = "Identity()"
        if text.startswith("Flatten(0") and outs[source].dim() != 3 or text == "Flatten()" and outs[source].dim() < 2:
            text = "Dropout()"
        module = eval(f"torch.nn.{text}").eval()
        outs.append(module(outs[source]))
        texts.append(text if source == i - 1 else f"{text}(@{source})")
    pairs = [(a, b) for a in range(len(outs)) for b in range(len(outs)) if outs[a].shape == outs[b].shape]
    a, b = data.draw(hs.sampled_from(pairs))
    op = data.draw(hs.sampled_from(["Add", "Mul"]))
    expected = (outs[a] + outs[b]) if op == "Add" else (outs[a] * outs[b])
    for keep in [(), None]:
        result = run_pipeline(x, parse_stages([*texts, f"{op}(@{a}, @{b})"]), engine=engine, keep=keep, need_indices=())
        np.testing.assert_allclose(result.output, expected.numpy(), rtol=1e-6, atol=1e-7, err_msg=" ".join(texts))


@pytest.mark.parametrize(
    ("options", "keep", "need"),
    [
        (dict(), None, set()),  # the table shows every tensor; its winners are found for the cells shown
        (dict(quiet=True, intermediates=True, as_json=True), None, None),
        (dict(quiet=True, save_maps="maps"), None, set()),
        (dict(as_json=True), set(), {3}),
        (dict(jsonl=True), set(), {3}),
        (dict(quiet=True, output="x.json"), set(), {3}),
        (dict(quiet=True, output="x.npy"), set(), set()),
        (dict(quiet=True, output_dir="out", output_format="npy"), set(), set()),
        (dict(quiet=True, output="x.npy", animate="a.gif"), {0, 1}, {1}),
        (dict(quiet=True, output="x.npy", animate="a.gif", animate_stage=3), {2, 3}, {3}),
    ],
)
def test_the_command_line_asks_for_what_its_outputs_read(options, keep, need):
    from pathlib import Path

    from cnnops.choices import OutputFormat

    for name in ("output", "output_dir", "save_maps", "animate"):
        if name in options:
            options[name] = Path(options[name])
    if "output_format" in options:
        options["output_format"] = OutputFormat(options["output_format"])
    trace = trace_shapes((1, 1, 8, 8), parse_stages(["MaxPool2d(2)", "ReLU", "MaxPool2d(2)"]))
    needs = run_needs(DataOptions(**options))(trace)
    assert (None if needs.keep is None else set(needs.keep), None if needs.indices is None else set(needs.indices)) == (keep, need)


def test_json_of_a_max_pool_still_carries_its_indices_and_a_quiet_npy_run_draws_no_random_numbers(tmp_path):
    run = [sys.executable, "-m", "cnnops", "pool", "-k", "2", "[[1, 5, 2, 0], [3, 4, 8, 6]]"]
    doc = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, check=True).stdout)
    assert doc["output"]["indices"] == [[[1, 6]]]
    code = (  # cnnops ends the process itself once its exit handlers have run: the report is one
        "import atexit, sys, runpy; sys.argv = ['cnnops', 'pool', '-k', '2', '[[1, 5, 2, 0], [3, 4, 8, 6]]', '-q', '-o', sys.argv[1]];"
        "atexit.register(lambda: print('numpy.random' in sys.modules));"
        "runpy.run_module('cnnops', run_name='__main__')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "y.npy")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert np.load(tmp_path / "y.npy").tolist() == [[[5.0, 8.0]]]


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_given_weights_still_keep_the_default_stream_aligned_for_the_layers_after_them(engine):
    import torch

    x = np.random.default_rng(2).standard_normal((1, 1, 6, 6)).astype(np.float32)
    stages = parse_stages(["Conv2d(1, 2, 3, weight='sobel-x, sobel-y', bias=0.25)", "Conv2d(2, 1, 3)",
                           "Linear(2, 1, weight=[[1, 2]], bias=0)"])  # fmt: skip
    result = run_pipeline(x, stages, engine=engine, seed=11)
    torch.manual_seed(11)
    first, second = torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 1, 3)  # the given layer draws too
    identical(result.results[1].weight, second.weight.detach().numpy())
    identical(result.results[1].bias, second.bias.detach().numpy())
    assert first.weight.shape == (2, 1, 3, 3)


def test_a_run_whose_weights_are_all_given_draws_nothing():
    code = (
        "import sys, numpy as np\n"
        "from cnnops.run.pipeline import run_pipeline\nfrom cnnops.spec import parse_stages\n"
        "r = run_pipeline(np.ones((1, 4, 4), np.float32), parse_stages(['Conv2d(1, 1, 2, weight=[[[[1, 1], [1, 1]]]],"
        " bias=False)', 'Conv2d(1, 1, 2, weight=[[[[2, 2], [2, 2]]]], bias=0.5)']), engine='numpy')\n"
        "print(r.output.ravel().tolist(), 'numpy.random' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[32.5, 32.5, 32.5, 32.5] False"


@settings(max_examples=80, deadline=None, derandomize=True)
@given(hs.data(), hs.sampled_from([1, 2]))
def test_the_winners_a_table_shows_are_those_of_the_full_indices(data, nd):
    from cnnops.render.tensor_grid import shown_indices
    from cnnops.run.pipeline import winner_mask
    from cnnops.run.winners import shown_winners
    from cnnops.spec import parse_stage

    k = data.draw(hs.integers(1, 4))
    s, d = data.draw(hs.integers(1, 3)), data.draw(hs.integers(1, 2))
    stage = parse_stage(f"MaxPool{nd}d({k}, stride={s}, padding={data.draw(hs.integers(0, k // 2))}, dilation={d}, "
                        f"ceil_mode={data.draw(hs.booleans())})")  # fmt: skip
    shape = (data.draw(hs.integers(1, 3)),) + tuple(data.draw(hs.integers(d * (k - 1) + 1, 14)) for _ in range(nd))
    rng = np.random.default_rng(data.draw(hs.integers(0, 999)))
    x = rng.choice(np.array([0.0, -0.0, 1.0, 2.0, np.nan, -np.inf], np.float32), size=shape)
    if data.draw(hs.booleans()):
        x = rng.standard_normal(shape).astype(np.float32)
    _, idx = numpy_engine.max_pool(x, nd=nd, kernel_size=stage.kernel_size, stride=stage.stride,
                                   padding=stage.padding, dilation=stage.dilation, ceil_mode=stage.ceil_mode)  # fmt: skip
    full = winner_mask(x, idx, nd)
    grid = x.shape if x.ndim >= 2 else (1, *x.shape)
    picks = [[i for i in shown_indices(n, True, 2) if i is not None] for n in (int(np.prod(grid[:-2])), *grid[-2:])]
    cells = [(p * grid[-2] + r) * grid[-1] + c for p in picks[0] for r in picks[1] for c in picks[2]]
    mask = shown_winners(x, stage, cells)
    shown = np.zeros(x.size, bool)
    shown[cells] = True
    assert np.array_equal(mask.reshape(-1), full.reshape(-1) & shown)


@pytest.mark.parametrize("stages", [
    ["Conv2d(1, 4, 3)", "ReLU", "MaxPool2d(2)"],
    ["Conv2d(2, 4, 3, padding=1)", "GELU", "BatchNorm2d(4)", "AvgPool2d(3, stride=2, padding=1)"],
])  # fmt: skip
def test_the_memory_estimate_of_a_fused_chain_is_above_what_it_allocates(stages):
    """A fused chain never holds its conv's output: the budget counts it so, and stays above the truth."""
    import tracemalloc

    from cnnops.run.budget import estimate_peak
    from cnnops.run.pipeline import Needs, _chains, last_uses, reads

    network = parse_stages(stages)
    shape = (1, int(stages[0].split("(")[1].split(",")[0]), 1024, 1024)
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    trace = trace_shapes(shape, network)
    chains = _chains(trace, frozenset(), frozenset(), reads(trace), last_uses(trace))
    fused = {i for chain in chains.values() for i in chain[:-1]}
    assert fused == set(range(1, len(stages)))  # everything but the pool runs inside the chain
    run_pipeline(data, network, engine="numpy", needs=Needs(keep=(), indices=()))  # imports and caches first
    tracemalloc.start()
    try:
        run_pipeline(data, network, engine="numpy", needs=Needs(keep=(), indices=()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = estimate_peak(trace, keep=(), fused=fused).bytes - data.nbytes
    assert peak <= estimate < estimate_peak(trace, keep=()).bytes - data.nbytes
    assert peak < 3 * (data.nbytes + math.prod(trace.output_shape) * 4) + 64 * 2**20  # near input + output
