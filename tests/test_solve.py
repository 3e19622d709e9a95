"""`cnnops solve`: which kernel/stride/padding/dilation give a wanted length, checked against torch.

The classic questions have the classic answers first (written out); every returned combination,
built as the torch layer (Conv1d/2d, MaxPool1d/2d, AvgPool1d/2d, MaxUnpool1d/2d, ConvTranspose1d/2d)
with the answer's numbers and run on zeros, gives the wanted length; and a brute force over the
documented search bounds, asking torch for every length, finds nothing that solve() missed. The
shape model is not the reference here: solve() already filters its answers through it. torch is
imported lazily.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnops.errors import CnnopsError, LayerError, SettingError
from cnnops.model.solve import (
    LayerKind,
    Solution,
    rank_key,
    solve,
    transpose_output_padding,
    unpool_output_range,
)
from cnnops.spec import parse_stage


@functools.cache
def _torch() -> Any:
    import torch

    torch.set_num_threads(1)
    return torch


def numbers(solutions: list[Solution]) -> list[tuple[int, int, int, int]]:
    return [(s.kernel_size, s.stride, s.padding, s.dilation) for s in solutions]


def torch_length(kind: LayerKind, s: Solution, length: int, nd: int = 1, avg: bool = False) -> int:
    """The output length torch gives on a (1, 1, L) or (1, 1, L, L) input of zeros, for the torch layer
    built from the solution's numbers (not from its text); every spatial dim must give the same."""
    torch = _torch()
    nn = torch.nn
    layers = {name: getattr(nn, f"{name}{nd}d") for name in ("Conv", "ConvTranspose", "AvgPool", "MaxPool", "MaxUnpool")}
    x = torch.zeros((1, 1) + (length,) * nd)
    k, st_, p, d = s.kernel_size, s.stride, s.padding, s.dilation
    with torch.no_grad():
        if kind is LayerKind.conv:
            out = layers["Conv"](1, 1, k, stride=st_, padding=p, dilation=d)(x)
        elif kind is LayerKind.conv_transpose:
            out = layers["ConvTranspose"](1, 1, k, stride=st_, padding=p, output_padding=s.output_padding,
                                          dilation=d)(x)  # fmt: skip
        elif kind is LayerKind.pool and avg:
            assert d == 1
            out = layers["AvgPool"](k, st_, p, ceil_mode=s.ceil_mode)(x)
        elif kind is LayerKind.pool:
            out = layers["MaxPool"](k, st_, p, d, ceil_mode=s.ceil_mode)(x)
        else:
            assert d == 1
            out = layers["MaxUnpool"](k, st_, p)(x, torch.zeros(x.shape, dtype=torch.long))
    assert set(out.shape[2:]) == {out.shape[-1]}, out.shape
    return out.shape[-1]


# --- the classic questions --------------------------------------------------------------------
def test_same_size_28_with_kernel_3_is_stride_1_padding_1_first():
    solutions = solve(28, 28, kernel_size=3)
    assert solutions[0] == Solution(3, 1, 1, 1)
    assert solutions[0].note == "same size"
    assert solutions[0].stage_text("conv") == "Conv2d(1, 1, kernel_size=3, stride=1, padding=1)"
    assert all(s.kernel_size == 3 for s in solutions)


def test_same_size_without_a_kernel_lists_odd_kernels_with_half_padding_then_pointwise():
    solutions = [s for s in solve(28, 28) if s.dilation == 1]
    assert numbers(solutions) == [(3, 1, 1, 1), (5, 1, 2, 1), (7, 1, 3, 1), (9, 1, 4, 1), (11, 1, 5, 1), (1, 1, 0, 1)]
    assert solutions[-1].note == "same size, pointwise"


def test_224_to_112_halves_with_stride_2():
    solutions = solve(224, 112)
    assert numbers(solutions[:3]) == [(2, 2, 0, 1), (3, 2, 1, 1), (4, 2, 1, 1)]
    assert (7, 2, 3, 1) in numbers(solutions), "ResNet's stem"
    assert (1, 2, 0, 1) in numbers(solutions), "ResNet's 1×1 downsampling shortcut"
    assert all(s.note.startswith("halves") for s in solutions if s.stride == 2 and s.dilation == 1)


def test_pool_32_to_16_is_kernel_2_stride_2_first():
    solutions = solve(32, 16, kind=LayerKind.pool)
    assert solutions[0] == Solution(2, 2, 0, 1)
    assert solutions[0].stage_text("pool") == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert "non-overlapping" in solutions[0].note
    kernel_1 = [s for s in solutions if s.kernel_size == 1]
    assert kernel_1 and all(rank_key(s) > rank_key(solutions[0]) for s in kernel_1)


def test_5_to_3_is_the_valid_3x3_conv_then_stride_2_with_padding_1():
    assert solve(5, 3)[0] == Solution(3, 1, 0, 1, note="valid (no padding)")
    assert solve(5, 3)[0].note == "valid (no padding)"
    solutions = solve(5, 3, kernel_size=3, dilation=1)
    assert numbers(solutions) == [(3, 1, 0, 1), (3, 2, 1, 1), (3, 3, 2, 1)]
    assert solutions[-1].note == "padding over half the window"


def test_alexnet_conv1_224_to_55_with_kernel_11_and_stride_4():
    solutions = solve(224, 55, kernel_size=11, stride=4)
    assert (11, 4, 2, 1) in numbers(solutions)
    assert all(s.kernel_size == 11 and s.stride == 4 for s in solutions)


@pytest.mark.parametrize(
    "fixed",
    [{"kernel_size": 5}, {"stride": 2}, {"padding": 1}, {"dilation": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}],
)
@pytest.mark.parametrize("kind", list(LayerKind))
def test_fixed_values_are_respected(kind, fixed):
    if kind is LayerKind.unpool and fixed.get("dilation", 1) != 1:
        return
    for lin, lout in [(28, 28), (28, 14), (7, 14), (5, 3), (9, 9)]:
        for s in solve(lin, lout, kind=kind, **fixed):
            assert all(getattr(s, name) == value for name, value in fixed.items())


def test_fixed_values_beyond_the_search_bounds_are_used_as_given():
    assert solve(64, 64, kernel_size=13, dilation=1) == [Solution(13, 1, 6, 1)]
    assert numbers(solve(100, 10, stride=10, dilation=1, max_kernel=1)) == [(1, 10, 0, 1)]
    # a fixed conv padding is not held to the sensible bound d·(k−1) either
    assert (1, 1, 2, 1) in numbers(solve(5, 9, padding=2))


@pytest.mark.parametrize(
    "lin, lout, kind",
    [(10, 100, "conv"), (4, 10, "pool"), (1, 100, "unpool"), (1, 1000, "conv_transpose"), (28, 5, "unpool")],
)
def test_impossible_sizes_give_an_empty_list(lin, lout, kind):
    assert solve(lin, lout, kind=kind) == []


def test_pool_ceil_mode_listed_only_where_it_changes_the_result():
    # MaxPool(3, stride=3) on 2: floor gives 0 (an error), ceil_mode gives 1
    solutions = solve(2, 1, kind="pool", kernel_size=3, stride=3, dilation=1)
    assert [(s.padding, s.ceil_mode) for s in solutions] == [(1, False), (0, True)]
    assert solutions[1].stage_text("pool", nd=2) == "MaxPool2d(kernel_size=3, stride=3, padding=0, ceil_mode=True)"
    assert solutions[1].as_dict() == {"kernel_size": 3, "stride": 3, "padding": 0, "dilation": 1, "ceil_mode": True}
    # 6 → 3 with 2/2 is exact: ceil_mode changes nothing, so it is not listed again
    assert solve(6, 3, kind="pool", kernel_size=2, stride=2, dilation=1) == [Solution(2, 2, 0, 1)]


def test_ceil_mode_solutions_rank_after_floor_ones_of_the_same_dilation():
    # 5 → 3 with kernel 2, stride 2: padding 1 with floor rounding, or no padding with ceil_mode
    solutions = solve(5, 3, kind="pool", kernel_size=2, stride=2, dilation=1)
    assert [(s.padding, s.ceil_mode) for s in solutions] == [(1, False), (0, True)]
    assert "ceil_mode" in solutions[1].note


def test_unpool_lists_pytorch_default_sizes():
    solutions = solve(2, 4, kind="unpool")
    assert solutions[0] == Solution(2, 2, 0, 1)
    assert solutions[0].stage_text("unpool") == "MaxUnpool2d(kernel_size=2, stride=2, padding=0)"
    assert all(s.dilation == 1 for s in solutions)


def test_unpool_output_range_for_2x2_on_2_is_3_to_5_around_4():
    assert unpool_output_range(2, 2) == (4, 3, 5)
    assert unpool_output_range(2, 2, stride=2, padding=0) == (4, 3, 5)
    # MaxPool2d(2) on 5×5 gives 2×2: the range lets MaxUnpool restore 5
    default, smallest, largest = unpool_output_range(2, 2)
    assert smallest <= 5 <= largest


def test_unpool_output_range_agrees_with_torch():
    torch = _torch()
    for lin, k, s, p in [(2, 2, 2, 0), (3, 3, 1, 1), (1, 3, 3, 1), (1, 1, 1, 0), (4, 5, 2, 2)]:
        default, smallest, largest = unpool_output_range(lin, k, s, p)
        x, i = torch.zeros(1, 1, lin), torch.zeros(1, 1, lin, dtype=torch.long)
        unpool = torch.nn.MaxUnpool1d(k, s, p)
        accepted = []
        for size in range(default - s - 2, default + s + 3):
            try:
                unpool(x, i, output_size=[size])
            except (ValueError, RuntimeError):
                continue
            accepted.append(size)
        assert accepted == list(range(smallest, largest + 1)), (lin, k, s, p)


def test_unpool_output_range_with_a_negative_default():
    # MaxUnpool1d(3, 3, padding=2) on 1: default −1, torch still takes output_size 0 or 1
    assert unpool_output_range(1, 3, 3, 2) == (-1, 0, 1)
    with pytest.raises(LayerError, match="no valid output size"):
        unpool_output_range(1, 1, 1, 2)


def test_transpose_output_padding():
    assert transpose_output_padding(7, 14, kernel_size=3, stride=2, padding=1) == 1
    assert transpose_output_padding(7, 13, kernel_size=3, stride=2, padding=1) == 0
    assert transpose_output_padding(7, 15, kernel_size=3, stride=2, padding=1) is None
    assert transpose_output_padding(7, 12, kernel_size=3, stride=2, padding=1) is None
    # output_padding may reach the dilation instead of the stride
    assert transpose_output_padding(5, 10, kernel_size=2, stride=1, padding=0, dilation=5) == 0
    assert transpose_output_padding(5, 11, kernel_size=2, stride=1, padding=0, dilation=5) == 1
    assert transpose_output_padding(5, 15, kernel_size=2, stride=1, padding=0, dilation=5) is None
    assert solve(7, 14, kind="conv_transpose", kernel_size=3, stride=2, padding=1, dilation=1) == [
        Solution(3, 2, 1, 1, output_padding=1)
    ]


def test_transposed_conv_doubling_7_to_14():
    solutions = solve(7, 14, kind="conv_transpose", dilation=1)
    assert [(s.kernel_size, s.stride, s.padding, s.output_padding) for s in solutions[:3]] == [
        (2, 2, 0, 0), (3, 2, 1, 1), (4, 2, 1, 0)
    ]  # fmt: skip
    assert solutions[2].stage_text("conv_transpose") == "ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1)"
    assert all(s.output_padding is not None for s in solutions)
    assert solutions[1].as_dict() == {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1, "output_padding": 1}
    assert solutions[0].note.startswith("doubles")


def test_json_objects_have_exactly_the_four_keys():
    for kind in ("conv", "pool", "unpool"):
        for s in solve(28, 14, kind=kind):
            if not s.ceil_mode:
                assert list(s.as_dict()) == ["kernel_size", "stride", "padding", "dilation"]


def test_stage_text_reads_back_with_dilation_and_channels():
    s = Solution(3, 1, 2, 2)
    text = s.stage_text("conv", nd=2, in_channels=3, out_channels=8)
    assert text == "Conv2d(3, 8, kernel_size=3, stride=1, padding=2, dilation=2)"
    assert parse_stage(text).output_shape((1, 3, 28, 28)) == (1, 8, 28, 28)
    torch = _torch()
    with torch.no_grad():  # test-only: the text comes from stage_text, checked literally just above
        assert eval(text, {"__builtins__": {}}, vars(torch.nn))(torch.zeros(1, 3, 28, 28)).shape == (1, 8, 28, 28)
    assert Solution(3, 2, 1, 2).stage_text("pool", nd=1) == "MaxPool1d(kernel_size=3, stride=2, padding=1, dilation=2)"


def test_limit_keeps_the_first_solutions():
    assert solve(224, 112, limit=3) == solve(224, 112)[:3]
    assert solve(224, 112, limit=0) == []


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((0, 5), {}, "input length must be at least 1"),
        ((5, 0), {}, "output length must be at least 1"),
        ((5, 3), {"kernel_size": 0}, "kernel_size must be at least 1"),
        ((5, 3), {"stride": -1}, "stride must be at least 1"),
        ((5, 3), {"padding": -1}, "padding must be at least 0"),
        ((5, 3), {"dilation": 0}, "dilation must be at least 1"),
        ((5, 3), {"max_kernel": 0}, "largest kernel size must be at least 1"),
        ((5, 3), {"kernel_size": True}, "kernel_size must be an integer"),
        ((5.0, 3), {}, "input length must be an integer"),
        ((5, 3), {"kind": "linear"}, "unknown layer kind 'linear'"),
        ((5, 3), {"kind": "unpool", "dilation": 2}, "MaxUnpool has no dilation"),
        ((5, 3), {"limit": -1}, "limit must be at least 0"),
        ((5, 3), {"max_kernel": 1000, "max_stride": 1000}, "more than 200000"),
        ((5, 3), {"kernel_size": 2**20}, "kernel_size must be at most"),
    ],
)
def test_bad_arguments_are_usage_errors(args, kwargs, message):
    with pytest.raises(SettingError, match=message) as caught:
        solve(*args, **kwargs)
    assert caught.value.exit_code == 2


def test_a_fixed_pool_padding_over_half_the_fixed_kernel_is_a_layer_error():
    with pytest.raises(LayerError, match=r"padding 2 with kernel_size 2 — use padding ≤ 1") as caught:
        solve(8, 5, kind="pool", kernel_size=2, padding=2)
    assert caught.value.exit_code == 1


def test_too_many_solutions_is_refused_not_slow():
    with pytest.raises(CnnopsError, match="fix the kernel size, stride or padding"):
        solve(5, 3, max_kernel=100, max_stride=100, max_dilation=10)


def test_helpers_validate_too():
    with pytest.raises(SettingError):
        unpool_output_range(0, 2)
    with pytest.raises(SettingError):
        transpose_output_padding(7, 14, kernel_size=3, stride=0)


# --- properties -------------------------------------------------------------------------------
def _torch_length(function: Any, *args: Any, **kwargs: Any) -> int | None:
    """The output length of a torch functional call, or None when torch refuses the configuration."""
    try:
        return function(*args, **kwargs).shape[-1]
    except RuntimeError:
        return None


def _brute_force(kind: LayerKind, lin: int, lout: int, q: dict[str, Any]) -> set[tuple]:
    """Every combination within the documented bounds for which torch gives ``lout`` from ``lin``
    (functional calls on CPU zeros: the meta device skips ConvTranspose's output_padding check)."""
    torch = _torch()
    F = torch.nn.functional
    x = torch.zeros(1, 1, lin)
    indices = torch.zeros(1, 1, lin, dtype=torch.long)

    def values(name: str, bound: int) -> range:
        return range(q[name], q[name] + 1) if q.get(name) is not None else range(1, bound + 1)

    found = set()
    dilations = range(1, 2) if kind is LayerKind.unpool else values("dilation", q.get("max_dilation", 4))
    for d in dilations:
        for k in values("kernel_size", q.get("max_kernel", 11)):
            w = torch.zeros(1, 1, k)
            for s in values("stride", q.get("max_stride", 8)):
                most = d * (k - 1) if kind in (LayerKind.conv, LayerKind.conv_transpose) else k // 2
                paddings = [q["padding"]] if q.get("padding") is not None else range(most + 1)
                for p in paddings:
                    if kind is LayerKind.conv:
                        if _torch_length(F.conv1d, x, w, stride=s, padding=p, dilation=d) == lout:
                            found.add((k, s, p, d, None, False))
                    elif kind is LayerKind.pool:
                        floor = _torch_length(F.max_pool1d, x, k, s, p, d, ceil_mode=False)
                        ceil = _torch_length(F.max_pool1d, x, k, s, p, d, ceil_mode=True)
                        if floor == lout:
                            found.add((k, s, p, d, None, False))
                        elif ceil == lout:
                            found.add((k, s, p, d, None, True))
                    elif kind is LayerKind.unpool:
                        if _torch_length(F.max_unpool1d, x, indices, k, s, p) == lout:
                            found.add((k, s, p, d, None, False))
                    else:
                        for op in range(max(s, d) + 1):  # one past PyTorch's limit: torch must refuse it
                            length = _torch_length(F.conv_transpose1d, x, w, stride=s, padding=p, output_padding=op,
                                                   dilation=d)  # fmt: skip
                            if length == lout:
                                found.add((k, s, p, d, op, False))
    return found


def _as_tuples(solutions: list[Solution]) -> set[tuple]:
    return {(s.kernel_size, s.stride, s.padding, s.dilation, s.output_padding, s.ceil_mode) for s in solutions}


@st.composite
def questions(draw: Any) -> tuple[LayerKind, int, int, dict[str, Any]]:
    kind = draw(st.sampled_from(list(LayerKind)))
    lin = draw(st.integers(1, 30))
    # mostly outputs near what the layer kind tends to give, sometimes anything
    lout = draw(st.one_of(st.integers(1, 60), st.sampled_from([lin, max(lin // 2, 1), (lin + 1) // 2, 2 * lin])))
    q: dict[str, Any] = {
        "max_kernel": draw(st.integers(1, 7)),
        "max_stride": draw(st.integers(1, 4)),
        "max_dilation": draw(st.integers(1, 3)),
    }
    for name, lowest, highest in [("kernel_size", 1, 9), ("stride", 1, 5), ("padding", 0, 4), ("dilation", 1, 3)]:
        if draw(st.booleans()) and draw(st.booleans()):
            q[name] = draw(st.integers(lowest, highest))
    if kind is LayerKind.unpool:
        q["dilation"] = draw(st.sampled_from([None, 1]))
    if kind is LayerKind.pool and q.get("kernel_size") is not None and q.get("padding") is not None:
        q["padding"] = min(q["padding"], q["kernel_size"] // 2)
    return kind, lin, lout, q


_SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(questions(), st.sampled_from([1, 2]))
def test_every_solution_gives_the_length_in_torch(question, nd):
    kind, lin, lout, q = question
    solutions = solve(lin, lout, kind=kind, **q)
    assert solutions == sorted(solutions, key=rank_key)
    assert len(set(solutions)) == len(solutions)
    for s in solutions:
        assert torch_length(kind, s, lin, nd) == lout, s
        if kind is LayerKind.pool and s.dilation == 1:
            assert torch_length(kind, s, lin, nd, avg=True) == lout, ("AvgPool", s)
        assert (s.output_padding is not None) == (kind is LayerKind.conv_transpose)
        assert not s.ceil_mode or kind is LayerKind.pool
        if kind is LayerKind.conv_transpose:
            assert (
                transpose_output_padding(lin, lout, s.kernel_size, s.stride, s.padding, s.dilation) == s.output_padding
            )
        if kind is LayerKind.unpool:
            default, smallest, largest = unpool_output_range(lin, s.kernel_size, s.stride, s.padding)
            assert default == lout and smallest <= lout <= largest


@_SETTINGS
@given(questions())
def test_solve_misses_nothing_torch_accepts_within_the_bounds(question):
    kind, lin, lout, q = question
    solutions = solve(lin, lout, kind=kind, **q)
    assert _as_tuples(solutions) == _brute_force(kind, lin, lout, q)
    n = len(solutions) // 2
    assert solve(lin, lout, kind=kind, limit=n, **q) == solutions[:n]


@pytest.mark.parametrize(
    "kind, lin, lout",
    [("conv", 28, 28), ("conv", 224, 112), ("conv", 5, 3), ("pool", 32, 16), ("pool", 5, 3), ("unpool", 2, 4),
     ("unpool", 5, 10), ("conv_transpose", 7, 14)],
)  # fmt: skip
def test_solve_misses_nothing_at_the_default_bounds(kind, lin, lout):
    kind = LayerKind(kind)
    q = {"dilation": 1} if kind is LayerKind.conv_transpose else {}  # keeps the brute force quick
    assert _as_tuples(solve(lin, lout, kind=kind, **q)) == _brute_force(kind, lin, lout, q)
