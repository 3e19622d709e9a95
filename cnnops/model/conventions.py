"""Multiply-accumulates per stage as other tools count them, and why they differ from cnnops.

Each convention reproduces one tool's number for one stage exactly, from the tool's own source, and is
checked against the installed tool (``tests/planner``) for these versions:

=============  ===========================  ===================================================================
convention     tool, version matched        how it counts (per stage; x: the stage's input, y: its output)
=============  ===========================  ===================================================================
cnnops         —                            conv: y elements × in/groups × kernel area; ConvTranspose: x elements
                                            × out/groups × kernel area; Linear: rows × in × out; the rest 0
thop           thop 0.1.1.post2209072238    ``thop.profile`` (eval mode): conv and ConvTranspose: y elements × x.shape[1]
                                            / groups × kernel area; BatchNorm 4 × x elements (2 without affine);
                                            AvgPool: y elements; AdaptiveAvgPool: (x/y spatial ratio product + 1) × y
                                            elements; Softmax: (3·n − 1) per row; Linear as cnnops; the rest 0
ptflops        ptflops 0.7.5, backend aten  conv, ConvTranspose, Linear as cnnops + one per output element for a bias
fvcore         fvcore 0.1.5.post20221221    as cnnops, but conv with padding='same'/'valid' is skipped (it traces as
                                            aten::_convolution_mode); BatchNorm 2 × x elements (1 without affine;
                                            5 and 4 when it uses batch statistics); AdaptiveAvgPool2d: x elements
torchinfo      torchinfo 1.8.0              conv and ConvTranspose: (weight + bias) × y.shape[0] × y's last dims;
                                            Linear and BatchNorm: parameters × y.shape[0]; the rest 0
flop-counter   torch.utils.flop_counter     FLOPs: 2 × cnnops for conv, ConvTranspose and Linear; the rest 0
               (torch 2.13)
=============  ===========================  ===================================================================

A stage kind cnnops has not verified against a tool gets no number (``None``), with the reason.

>>> from cnnops.model.trace import trace_shapes
>>> from cnnops.spec import parse_stages
>>> trace = trace_shapes((1, 3, 8, 8), parse_stages(["Conv2d(3, 4, 3)", "BatchNorm2d(4)"]))
>>> [count(row, "thop").value for row in trace.rows], [count(row, "ptflops").value for row in trace.rows]
([3888, 576], [4032, 0])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cnnops.choices import Convention
from cnnops.errors import LayerError
from cnnops.model.memory_rules import verified
from cnnops.model.stages import (
    Activation,
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Linear,
    Pool,
    Unpool,
)  # fmt: skip
from cnnops.model.trace import Row, Trace
from cnnops.records import record

#: the tool and version each convention reproduces
TOOLS = {
    Convention.cnnops: "cnnops",
    Convention.thop: "thop 0.1.1.post2209072238",
    Convention.ptflops: "ptflops 0.7.5 (backend='aten')",
    Convention.fvcore: "fvcore 0.1.5.post20221221",
    Convention.torchinfo: "torchinfo 1.8.0",
    Convention.flop_counter: "torch.utils.flop_counter (torch 2.13)",
}
UNITS = {c: "FLOPs" if c == Convention.flop_counter else "MACs" for c in Convention}


@record(frozen=True)
class Count:
    """One tool's count for one stage; ``reason`` says why it differs from cnnops' (None: it does not)."""

    value: int | None
    reason: str | None = None


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _x(row: Row) -> tuple[int, ...]:
    return row.effective_input


def _kernel_area(stage: Conv | ConvTranspose) -> int:
    return math.prod(stage.kernel_size)


def _weight(stage: Conv | ConvTranspose) -> int:
    return stage.params() - (stage.out_channels if stage.bias else 0)


def _thop(row: Row) -> Count:
    stage, x, y = row.stage, _x(row), row.output_shape
    if isinstance(stage, Conv | ConvTranspose):
        value = _numel(y) * (x[1] // stage.groups) * _kernel_area(stage)
        if isinstance(stage, ConvTranspose):
            return Count(value, "counts every output position × in_channels/groups × kernel (cnnops: input positions "
                                "× out_channels/groups × kernel)")  # fmt: skip
        if len(x) == stage.nd + 1:
            return Count(value, f"reads in_channels from the input's dim 1, which is {x[1]} for an unbatched input")
        return Count(value)
    if isinstance(stage, BatchNorm):
        return Count(2 * _numel(x) * (2 if stage.affine else 1),
                     f"{4 if stage.affine else 2} per element: normalisation{' and affine' if stage.affine else ''}")
    if isinstance(stage, Pool) and stage.mode == "avg":
        return Count(_numel(y), "1 per output element")
    if isinstance(stage, AdaptivePool) and stage.mode == "avg":
        ratio = 1.0  # float64 as thop computes it: the product of input/output sizes of dims 2…
        for a, b in zip(x[2:], y[2:]):
            ratio *= a / b
        return Count(int((ratio + 1) * _numel(y)), "(window area + 1) per output element, the area as a float ratio")
    if isinstance(stage, Activation) and stage.name == "Softmax":
        dim = stage.option("dim")
        if dim is None:
            return Count(None, "thop fails on Softmax(dim=None): it indexes the input's size with None")
        features = x[dim]
        return Count(_numel(x) // features * (3 * features - 1), "3·n − 1 per row of n: exp, add, divide")
    return Count(row.macs)


def _ptflops(row: Row) -> Count:
    stage = row.stage
    if isinstance(stage, Conv | ConvTranspose | Linear) and stage.bias:
        return Count(row.macs + _numel(row.output_shape), "adds 1 per output element for the bias")
    return Count(row.macs)


def _fvcore(row: Row) -> Count:
    stage, x = row.stage, _x(row)
    if isinstance(stage, Unpool):
        return Count(None, "fvcore fails: torch.jit.trace (torch 2.13) cannot trace MaxUnpool, so fvcore counts nothing")
    if isinstance(stage, Conv) and isinstance(stage.padding, str) and stage.padding_mode == "zeros":
        return Count(0, f"skipped: padding='{stage.padding}' traces as aten::_convolution_mode, which fvcore does not count")
    if isinstance(stage, BatchNorm):
        if stage.track_running_stats:
            return Count(_numel(x) * (2 if stage.affine else 1),
                         f"{2 if stage.affine else 1} per element (batch_norm in eval mode)")
        return Count(_numel(x) * (5 if stage.affine else 4),
                     f"{5 if stage.affine else 4} per element: without running statistics it normalises with the "
                     "batch's own, as in training")  # fmt: skip
    if isinstance(stage, AdaptivePool) and stage.mode == "avg" and stage.nd == 2:
        return Count(_numel(x), "1 per input element (aten::adaptive_avg_pool2d)")
    return Count(row.macs)


def _torchinfo(row: Row) -> Count:
    stage, y = row.stage, row.output_shape
    if isinstance(stage, Conv | ConvTranspose):
        value = stage.params() * _numel(y[:1] + y[2:])
        if len(y) == stage.nd + 1:
            why = f"(weight + bias) × output dims 0 and 2…, which for an unbatched output {y} are not batch and positions"
        elif isinstance(stage, ConvTranspose):
            why = "(weight + bias) × batch × output positions (cnnops: input positions, no bias)"
        else:
            why = "(weight + bias) × batch × output positions: the bias adds 1 per output element"
        return Count(value, why if value != row.macs else None)
    if isinstance(stage, Linear | BatchNorm):
        value = y[0] * stage.params()
        return Count(value, f"all its parameters (weights and bias) × output dim 0 ({y[0]})" if value != row.macs else None)
    return Count(row.macs)


def _flop_counter(row: Row) -> Count:
    return Count(2 * row.macs, "FLOPs: 2 per multiply-accumulate" if row.macs else None)


_COUNTERS: dict[Convention, Callable[[Row], Count]] = {
    Convention.cnnops: lambda row: Count(row.macs), Convention.thop: _thop, Convention.ptflops: _ptflops,
    Convention.fvcore: _fvcore, Convention.torchinfo: _torchinfo, Convention.flop_counter: _flop_counter,
}  # fmt: skip


def count(row: Row, convention: Convention | str, used: bool = True) -> Count:
    """How ``convention`` counts one stage of a trace; ``used``: the network's output depends on the stage."""
    convention = Convention(convention)
    if convention != Convention.cnnops and not verified(row.stage):
        return Count(None, f"cnnops has not checked how {TOOLS[convention]} counts {row.stage.name}")
    found = _COUNTERS[convention](row)
    if convention == Convention.fvcore and not used and found.value:
        found = Count(0, "skipped: the network's output does not use it, and torch.jit.trace drops it")
    if found.value == row.macs and convention != Convention.flop_counter:
        return Count(found.value)
    return found


@record
class Comparison:
    """Every stage counted in every convention (``counts[convention][stage position]``)."""

    trace: Trace
    conventions: list[Convention]
    counts: dict[Convention, list[Count]]

    def total(self, convention: Convention) -> int | None:
        values = [c.value for c in self.counts[convention]]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def differences(self) -> list[tuple[Row, Convention, Count]]:
        """(stage, convention, count) for every count that differs from cnnops', in stage order."""
        return [(row, c, self.counts[c][i]) for i, row in enumerate(self.trace.rows) for c in self.conventions
                if self.counts[c][i].reason is not None]  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "tools": {c.value: TOOLS[c] for c in self.conventions},
            "units": {c.value: UNITS[c] for c in self.conventions},
            "stages": [
                {"index": row.index, "counts": {c.value: self.counts[c][i].value for c in self.conventions},
                 "reasons": {c.value: self.counts[c][i].reason for c in self.conventions if self.counts[c][i].reason}}
                for i, row in enumerate(self.trace.rows)
            ],
            "totals": {c.value: self.total(c) for c in self.conventions},
        }  # fmt: skip


def used_stages(trace: Trace) -> set[int]:
    """The stages the network's output (the last stage's) depends on."""
    rows = {row.index: row for row in trace.rows}
    todo = [trace.rows[-1].index] if trace.rows else []
    found: set[int] = set()
    while todo:
        index = todo.pop()
        if index not in found and index != 0:
            found.add(index)
            todo.extend(rows[index].inputs)
    return found


def compare(trace: Trace, conventions: list[Convention] | None = None) -> Comparison:
    trace.raise_error()
    chosen = conventions or list(Convention)
    used = used_stages(trace)
    return Comparison(trace, chosen, {c: [count(row, c, row.index in used) for row in trace.rows] for c in chosen})


def recount(trace: Trace, convention: Convention | str) -> Trace:
    """The trace with each row's ``macs`` counted as ``convention`` counts them, or a LayerError naming the
    first stage that convention cannot count."""
    convention = Convention(convention)
    trace.raise_error()
    rows = []
    used = used_stages(trace)
    for row in trace.rows:
        found = count(row, convention, row.index in used)
        if found.value is None:
            raise LayerError(found.reason or "no count", index=row.index, stage=row.stage.call)
        rows.append(replace(row, macs=found.value))
    return replace(trace, rows=rows)
