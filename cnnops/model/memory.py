"""The memory of a network at a dtype: per stage, the output and what autograd saves for backward; in total,
parameters, gradients, optimizer state, buffers, saved activations, the inference peak and a training step.

>>> from cnnops.model.trace import trace_shapes
>>> from cnnops.spec import parse_stages
>>> plan = plan_memory(trace_shapes((8, 3, 32, 32), parse_stages(["Conv2d(3, 16, 3, padding=1)", "ReLU", "MaxPool2d(2)"])))
>>> [s.saved_bytes for s in plan.stages]  # conv: its input; ReLU: its output; pool: the same tensor + indices
[98304, 524288, 262144]
>>> plan.inference_peak_bytes  # input, conv output and ReLU output live together
1146880

What the figures mean (all exact integers of bytes; the rules per layer are in :mod:`cnnops.model.memory_rules`):

- ``saved_bytes``: the tensors autograd keeps from a training forward until backward, each storage once —
  activations, max-pool indices, dropout masks, batch statistics and BatchNorm's running statistics —
  never the parameters. A stage's figure counts the storages it is the first to save. A stage the network's
  output does not depend on frees its graph, and what it saved, with its unused output: it counts 0.
- ``inference_peak_bytes``: the most bytes of tensors alive at once in a no-grad forward in eval mode: the
  input (held by the caller throughout), each output until the last stage that reads it has run, and the
  temporaries of a stage (a padded copy, max-pool indices nobody keeps) while it runs.
- ``training_bytes``: parameters + gradients + optimizer state + buffers + saved tensors, every storage once:
  what a training step holds when backward starts. Not modelled: backward's own temporary gradients,
  workspaces, the loss, and the allocator's caching and fragmentation.
- ``inference_bytes``: parameters + buffers + the inference peak.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from typing import Any

from cnnops.choices import Dtype, Optimizer
from cnnops.errors import LayerError, SettingError
from cnnops.model import memory_rules as rules
from cnnops.model.stages import Merge
from cnnops.model.trace import Row, Trace
from cnnops.records import record

DTYPE_BYTES = {Dtype.float32: 4, Dtype.float16: 2, Dtype.bfloat16: 2, Dtype.float64: 8}
#: state tensors shaped like each parameter (``momentum_buffer``; ``exp_avg``, ``exp_avg_sq``). Adam's
#: scalar ``step`` counters are left out: PyTorch keeps them on the CPU unless capturable or fused.
OPTIMIZER_STATES = {Optimizer.sgd: 0, Optimizer.momentum: 1, Optimizer.adam: 2, Optimizer.adamw: 2}


@record(frozen=True)
class SavedTensor:
    what: str
    nbytes: int  # 0 when an earlier stage saved the same storage, or when it is released
    shared_with: int | None = None  # that stage
    released: bool = False  # the stage's output is not used: its graph, and what it saved, die before backward

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"tensor": self.what, "bytes": self.nbytes}
        if self.shared_with is not None:
            doc["shared_with_stage"] = self.shared_with
        if self.released:
            doc["released"] = True
        return doc


@record
class StageMemory:
    index: int
    output_bytes: int
    saved_bytes: int = 0
    params_bytes: int = 0
    saved: list[SavedTensor] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"output_bytes": self.output_bytes, "saved_bytes": self.saved_bytes, "params_bytes": self.params_bytes,
                "saved": [s.as_dict() for s in self.saved]}  # fmt: skip


@record
class MemoryPlan:
    dtype: str
    optimizer: str
    stages: list[StageMemory]
    input_bytes: int
    params_bytes: int
    buffers_bytes: int
    saved_bytes: int
    saved_buffer_bytes: int  # the running statistics among the saved tensors (already in buffers_bytes)
    inference_peak_bytes: int
    training_error: LayerError | None = None  # PyTorch refuses a training forward of this network

    @property
    def grads_bytes(self) -> int:
        return self.params_bytes

    @property
    def optimizer_bytes(self) -> int:
        return OPTIMIZER_STATES[Optimizer(self.optimizer)] * self.params_bytes

    @property
    def training_bytes(self) -> int:
        return (self.params_bytes + self.grads_bytes + self.optimizer_bytes + self.buffers_bytes + self.saved_bytes
                - self.saved_buffer_bytes)  # fmt: skip

    @property
    def inference_bytes(self) -> int:
        return self.params_bytes + self.buffers_bytes + self.inference_peak_bytes

    def total(self, inference: bool = False) -> int:
        if not inference:
            self.raise_training_error()
        return self.inference_bytes if inference else self.training_bytes

    def raise_training_error(self) -> None:
        if self.training_error is not None:
            raise self.training_error

    def as_dict(self) -> dict[str, Any]:
        """The ``"memory"`` object of ``--json`` (the first six names are a contract)."""
        self.raise_training_error()
        return {
            "params_bytes": self.params_bytes, "grads_bytes": self.grads_bytes, "optimizer_bytes": self.optimizer_bytes,
            "saved_bytes": self.saved_bytes, "inference_peak_bytes": self.inference_peak_bytes,
            "training_bytes": self.training_bytes, "buffers_bytes": self.buffers_bytes,
            "inference_bytes": self.inference_bytes, "input_bytes": self.input_bytes, "dtype": self.dtype,
            "optimizer": self.optimizer,
        }  # fmt: skip

    def annotate(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A shape document (``Trace.as_dict()``) with ``output_bytes``/``saved_bytes`` on every stage and ``memory``."""
        for stage_doc, stage in zip(doc["stages"], self.stages, strict=True):
            stage_doc.update(stage.as_dict())
        doc["memory"] = self.as_dict()
        return doc


def plan_memory(trace: Trace, dtype: Dtype | str = Dtype.float32, optimizer: Optimizer | str = Optimizer.adam) -> MemoryPlan:
    """The memory plan of a traced network; a LayerError names a stage cnnops has no verified rule for."""
    trace.raise_error()
    dtype, optimizer = Dtype(dtype), Optimizer(optimizer)
    itemsize = DTYPE_BYTES[dtype]
    rows = trace.rows
    for shape in [trace.input_shape, *(s for r in rows for s in (*_inputs_of(r), r.output_shape))]:
        if math.prod(shape) == 0:
            raise LayerError("the network makes an empty tensor — cnnops plans memory only for non-empty tensors")
    keeps = {r.unpool_source for r in rows if r.unpool_source is not None}
    effects = []
    for row in rows:
        try:
            effects.append(rules.effects(_context(row, itemsize, keeps, (False,) * len(_inputs_of(row)))))
        except LayerError as exc:
            raise LayerError(exc.reason, index=row.index, stage=row.stage.call) from None
    plan = MemoryPlan(dtype.value, optimizer.value, [], math.prod(trace.input_shape) * itemsize,
                      params_bytes=trace.total_params * itemsize, buffers_bytes=sum(e.buffers_bytes for e in effects),
                      saved_bytes=0, saved_buffer_bytes=0, inference_peak_bytes=_inference_peak(trace, effects, itemsize))  # fmt: skip
    _training(trace, plan, itemsize, keeps)
    return plan


def _inputs_of(row: Row) -> tuple[tuple[int, ...], ...]:
    return row.input_shapes if isinstance(row.stage, Merge) else (row.effective_input,)


def _context(row: Row, itemsize: int, keeps: set[int], grads: tuple[bool, ...]) -> rules.Context:
    return rules.Context(row.stage, row.index, _inputs_of(row), row.output_shape, grads, itemsize,
                         keeps_indices=row.index in keeps, paired_pool=row.unpool_source)  # fmt: skip


def _training(trace: Trace, plan: MemoryPlan, itemsize: int, keeps: set[int]) -> None:
    """Walk a training forward: which tensors need a gradient, which storages autograd saves, and where."""
    grad = {0: False}
    storage = {0: "input"}  # output number -> storage key
    nbytes = {"input": plan.input_bytes}
    first_saved: dict[str, int] = {}
    backward_error = False
    effects = []
    for row in trace.rows:  # which inputs need a gradient decides what each stage saves
        effects.append(rules.effects(_context(row, itemsize, keeps, tuple(grad[i] for i in row.inputs))))
        grad[row.index] = effects[-1].has_params or any(grad[i] for i in row.inputs)
    used = _feeds_output(trace, effects)
    for row, effect in zip(trace.rows, effects):
        inputs = row.inputs
        if effect.training_error and (plan.training_error is None or backward_error):
            # PyTorch refuses this in the forward pass, before any backward error
            plan.training_error = LayerError(effect.training_error, index=row.index, stage=row.stage.call)
            backward_error = False
        if effect.inplace and storage[inputs[0]] in first_saved and plan.training_error is None:
            backward_error = True
            plan.training_error = LayerError(
                f"overwrites in place a tensor that stage {first_saved[storage[inputs[0]]]} saved for backward, so "
                "PyTorch's backward fails ('modified by an inplace operation') — use inplace=False",
                index=row.index, stage=row.stage.call,
            )  # fmt: skip
        if effect.backward_error and row.index in used and plan.training_error is None:
            backward_error = True
            plan.training_error = LayerError(effect.backward_error, index=row.index, stage=row.stage.call)
        out = storage[inputs[0]] if effect.train_alias else f"out {row.index}"
        nbytes.setdefault(out, math.prod(row.output_shape) * itemsize)
        if effect.indices_bytes:
            nbytes[f"indices {row.index}"] = effect.indices_bytes
        stage = StageMemory(row.index, math.prod(row.output_shape) * itemsize, params_bytes=row.params * itemsize)
        for number, item in enumerate(effect.saved):
            key = _saved_key(item, row, number, storage, out)
            if item.source in ("fresh", "buffer"):
                nbytes[key] = item.nbytes
            if row.index not in used:
                stage.saved.append(SavedTensor(item.what, 0, released=True))
                continue
            if key in first_saved:
                stage.saved.append(SavedTensor(item.what, 0, first_saved[key]))
                continue
            first_saved[key] = row.index
            stage.saved.append(SavedTensor(item.what, nbytes[key]))
            stage.saved_bytes += nbytes[key]
            if item.source == "buffer":
                plan.saved_buffer_bytes += item.nbytes
        plan.stages.append(stage)
        plan.saved_bytes += stage.saved_bytes
        storage[row.index] = out


def _feeds_output(trace: Trace, effects: list[rules.Effects]) -> set[int]:
    """The stages the network's output depends on, as autograd sees it: a stage that overwrites a tensor in
    place becomes what every later reader of that storage reads. Another stage's graph dies with its unused
    output, and with it what it saved."""
    storage: dict[int, str] = {0: "input"}
    writer: dict[str, int] = {}  # storage -> the last stage that overwrote it in place
    needs: dict[int, set[int]] = {}
    for row, effect in zip(trace.rows, effects):
        needs[row.index] = {max(i, writer.get(storage[i], 0)) for i in row.inputs}
        storage[row.index] = storage[row.inputs[0]] if effect.train_alias else f"out {row.index}"
        if effect.inplace:
            writer[storage[row.index]] = row.index
    todo = [trace.rows[-1].index] if trace.rows else []
    found: set[int] = set()
    while todo:
        index = todo.pop()
        if index not in found and index != 0:
            found.add(index)
            todo.extend(needs[index])
    return found


def _saved_key(item: rules.Saved, row: Row, number: int, storage: dict[int, str], out: str) -> str:
    if item.source == "input":
        return storage[row.inputs[item.ref]]
    if item.source == "output":
        return out
    if item.source == "indices":
        return f"indices {row.unpool_source or row.index}"
    return f"{item.source} {row.index}.{number}"


def _inference_peak(trace: Trace, effects: list[rules.Effects], itemsize: int) -> int:
    """The most bytes alive at once in a no-grad forward: every storage lives until the last stage that reads
    any tensor on it has run; the input and the network's output are never freed here."""
    rows = trace.rows
    storage = {0: "input"}
    for row, effect in zip(rows, effects):
        storage[row.index] = storage[row.inputs[0]] if effect.eval_alias else f"out {row.index}"
    last_use: dict[str, int] = {}
    for row in rows:
        last_use[storage[row.index]] = max(last_use.get(storage[row.index], 0), row.index)
        for i in row.inputs:
            last_use[storage[i]] = max(last_use.get(storage[i], 0), row.index)
        if row.unpool_source is not None:
            last_use[f"indices {row.unpool_source}"] = row.index
    kept = {"input", storage[rows[-1].index] if rows else "input"}
    live = {"input": math.prod(trace.input_shape) * itemsize}
    peak = current = live["input"]
    for row, effect in zip(rows, effects):
        for allocs, frees in effect.eval_ops:
            for name, size in allocs:
                key = {"out": f"out {row.index}", "indices": f"indices {row.index}"}.get(name, f"{name} {row.index}")
                live[key] = size
                current += size
            peak = max(peak, current)
            for name in frees:
                key = {"indices": f"indices {row.index}"}.get(name, f"{name} {row.index}")
                current -= live.pop(key)
        for key in [k for k in live if last_use.get(k) == row.index and k not in kept]:
            current -= live.pop(key)
    return peak


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_size(text: str) -> int:
    """``24GiB`` → 25769803776 bytes; also ``512MiB``, ``1.5 GiB``, ``16GB`` (10⁹), ``1000000``.

    >>> parse_size("24GiB"), parse_size("1.5 KiB"), parse_size("2GB")
    (25769803776, 1536, 2000000000)
    """
    match = re.fullmatch(r"\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise SettingError(f"cannot read the size '{text[:40]}' — write it like 24GiB, 512MiB, 16GB or a number of bytes")
    whole, _, fraction = match.group(1).partition(".")
    size = (int(whole) * 10 ** len(fraction) + int(fraction or 0)) * _UNITS[unit] // 10 ** len(fraction)
    if size <= 0:
        raise SettingError(f"the size '{text[:40]}' must be more than 0 bytes")
    return size
