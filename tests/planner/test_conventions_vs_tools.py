"""Each counting convention against the real tool, stage by stage, on random chains and the graph zoo.

The tools (the ``conventions`` extra: thop, ptflops, fvcore, torchinfo; and torch.utils.flop_counter) run on
the plain torch network built from the raw stage text, in eval mode, with every stage a direct child named
by its number, so each tool's per-module count is that stage's count. A tool that is not installed is skipped.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from importlib.metadata import version

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchnet import DagNet, network
from zoo import GRAPHS, chains, graphs

from cnnops.model import conventions
from cnnops.model.conventions import TOOLS, Convention, compare
from cnnops.model.trace import trace_shapes
from cnnops.spec import parse_stages

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _quiet():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)
    torch.set_num_threads(threads)


def _stages(net: DagNet) -> list[str]:
    return [str(n) for n in range(1, len(net.specs) + 1)]


def thop_counts(net: DagNet, x: torch.Tensor) -> list[int]:
    thop = pytest.importorskip("thop")
    with contextlib.redirect_stdout(io.StringIO()):
        total, _, layers = thop.profile(net, inputs=(x,), verbose=False, ret_layer_info=True)
    counts = [layers[name][0] for name in _stages(net)]
    assert total == sum(counts)
    return [int(c) for c in counts]


def ptflops_counts(net: DagNet, x: torch.Tensor) -> list[int]:
    ptflops = pytest.importorskip("ptflops")
    from ptflops.aten_engine import FlopCounterMode

    params = {"serialize_params": {"units": None, "precision": 2}, "print_params": {"file": io.StringIO()}}
    counter = FlopCounterMode(net, False, False, params)
    with counter:
        net(x)
    counts = [sum(counter.flop_counts[name].values()) for name in _stages(net)]
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = ptflops.get_model_complexity_info(net, tuple(x.shape), input_constructor=lambda _: x,
                                                     backend="aten", print_per_layer_stat=False, as_strings=False)  # fmt: skip
    assert total == sum(counts)
    return counts


def fvcore_counts(net: DagNet, x: torch.Tensor) -> list[int]:
    fvcore = pytest.importorskip("fvcore.nn")
    analysis = fvcore.FlopCountAnalysis(net, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_module = analysis.by_module()
    return [by_module.get(name, 0) for name in _stages(net)]


def torchinfo_counts(net: DagNet, x: torch.Tensor) -> list[int]:
    torchinfo = pytest.importorskip("torchinfo")
    summary = torchinfo.summary(net, input_data=x, verbose=0)
    layers = [layer for layer in summary.summary_list if layer.depth == 1]
    assert [layer.var_name for layer in layers] == _stages(net)
    return [layer.macs for layer in layers]


def flop_counter_counts(net: DagNet, x: torch.Tensor) -> list[int]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        net(x)
    counts = counter.get_flop_counts()
    return [sum(counts.get(f"DagNet.{name}", {}).values()) for name in _stages(net)]


TOOL_COUNTS = {Convention.thop: thop_counts, Convention.ptflops: ptflops_counts, Convention.fvcore: fvcore_counts,
               Convention.torchinfo: torchinfo_counts, Convention.flop_counter: flop_counter_counts}  # fmt: skip


def check(shape, torch_specs, texts, convention: Convention) -> list[int]:
    trace = trace_shapes(shape, parse_stages(texts))
    trace.raise_error()
    torch.manual_seed(0)
    net = network(torch_specs).eval()
    used = conventions.used_stages(trace)
    counts = [conventions.count(row, convention, row.index in used) for row in trace.rows]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if any(c.value is None for c in counts):  # the tool itself fails on this network
            with pytest.raises(Exception):  # noqa: B017 - each tool fails its own way
                TOOL_COUNTS[convention](net, torch.randn(shape))
            return []
        expected = TOOL_COUNTS[convention](net, torch.randn(shape))
    assert [c.value for c in counts] == expected, texts
    for count, row, value in zip(counts, trace.rows, expected):
        assert (count.reason is not None) == (value != row.macs), (row.stage.call, count)
    return expected


@SETTINGS
@given(chains(), st.sampled_from([c for c in Convention if c != Convention.cnnops]))
def test_each_convention_equals_its_tool_stage_by_stage_on_random_chains(chain, convention):
    shape, texts = chain
    check(shape, texts, texts, convention)


@settings(SETTINGS, max_examples=40)
@given(graphs(), st.sampled_from([c for c in Convention if c != Convention.cnnops]))
def test_each_convention_equals_its_tool_on_random_graphs(graph, convention):
    shape, torch_specs, texts = graph
    check(shape, torch_specs, texts, convention)


@pytest.mark.parametrize("convention", [c for c in Convention if c != Convention.cnnops])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_each_convention_equals_its_tool_on_graphs(graph, convention):
    torch_specs, texts = GRAPHS[graph](False)
    check((2, 4, 8, 8), torch_specs, texts, convention)


LAYERS = [
    ("Conv2d(4, 6, 4, padding='same')", (2, 4, 8, 8)), ("Conv2d(4, 6, 3, padding='valid', bias=False)", (4, 8, 8)),
    ("Conv2d(4, 6, 3, padding=1, padding_mode='reflect')", (2, 4, 8, 8)),
    ("Conv2d(4, 6, 4, padding='same', padding_mode='circular', groups=2)", (2, 4, 8, 8)),
    ("ConvTranspose2d(4, 6, 3, stride=2, groups=2)", (2, 4, 5, 5)), ("ConvTranspose1d(4, 2, 3, stride=3)", (4, 5)),
    ("Conv1d(4, 2, 3, dilation=2)", (4, 9)), ("BatchNorm2d(4)", (2, 4, 3, 3)),
    ("BatchNorm2d(4, affine=False)", (2, 4, 3, 3)), ("BatchNorm2d(4, track_running_stats=False)", (2, 4, 3, 3)),
    ("BatchNorm1d(4, affine=False, track_running_stats=False)", (3, 4)), ("AdaptiveAvgPool2d((2, None))", (4, 7, 5)),
    ("AdaptiveAvgPool2d(3)", (2, 4, 7, 5)), ("AdaptiveAvgPool1d(3)", (2, 4, 7)), ("AvgPool1d(3)", (4, 7)),
    ("Softmax(dim=-1)", (2, 3, 5)), ("Linear(5, 3)", (5,)), ("Linear(5, 3)", (2, 4, 5)), ("Linear(5, 3, bias=False)", (2, 5)),
]  # fmt: skip


@pytest.mark.parametrize("convention", [c for c in Convention if c != Convention.cnnops])
@pytest.mark.parametrize(("text", "shape"), LAYERS)
def test_each_convention_equals_its_tool_on_single_layers(text, shape, convention):
    check(shape, [text], [text], convention)


def test_thop_fails_on_softmax_without_dim_and_cnnops_says_so():
    thop = pytest.importorskip("thop")
    net = network(["Softmax()"]).eval()
    with pytest.raises(TypeError), contextlib.redirect_stdout(io.StringIO()):
        thop.profile(net, inputs=(torch.randn(2, 3),), verbose=False)
    trace = trace_shapes((2, 3), parse_stages(["Softmax()"]))
    count = conventions.count(trace.rows[0], "thop")
    assert count.value is None and "fails" in count.reason
    with pytest.raises(Exception, match="thop fails on Softmax"):
        conventions.recount(trace, "thop")


def test_matched_versions_are_the_installed_ones():
    from packaging.version import Version

    for convention, package in [(Convention.thop, "thop"), (Convention.ptflops, "ptflops"),
                                (Convention.fvcore, "fvcore"), (Convention.torchinfo, "torchinfo")]:  # fmt: skip
        try:
            installed = Version(version(package))
        except Exception:
            pytest.skip(f"{package} is not installed")
        assert f"{package} {installed}" in TOOLS[convention]
    assert torch.__version__.startswith("2.13") and "2.13" in TOOLS[Convention.flop_counter]


def test_comparison_explains_every_difference_and_totals():
    trace = trace_shapes((1, 3, 32, 32), parse_stages(["Conv2d(3, 8, 3, padding='same')", "BatchNorm2d(8)", "ReLU",
                                                       "ConvTranspose2d(8, 4, 2, stride=2)", "AdaptiveAvgPool2d(1)",
                                                       "Flatten", "Linear(4, 10)"]))  # fmt: skip
    comparison = compare(trace)
    for row, _convention, found in comparison.differences():
        assert found.value != row.macs and found.reason
    assert comparison.total(Convention.flop_counter) == 2 * trace.total_macs
    assert comparison.total(Convention.cnnops) == trace.total_macs
    doc = comparison.as_dict()
    assert set(doc["totals"]) == {c.value for c in Convention} and math.isfinite(len(doc["stages"]))


@pytest.mark.slow
@settings(SETTINGS, max_examples=400)
@given(chains(), st.sampled_from([c for c in Convention if c != Convention.cnnops]))
def test_each_convention_equals_its_tool_on_many_random_chains(chain, convention):
    check(chain[0], chain[1], chain[1], convention)


@pytest.mark.slow
@settings(SETTINGS, max_examples=250)
@given(graphs(), st.sampled_from([c for c in Convention if c != Convention.cnnops]))
def test_each_convention_equals_its_tool_on_many_random_graphs(graph, convention):
    check(graph[0], graph[1], graph[2], convention)
