"""The largest batch, or square input side, whose memory fits a budget (``cnnops solve --max-memory``).

>>> from cnnops.spec import parse_stages
>>> net = parse_stages(["Conv2d(3, 16, 3, padding=1)", "ReLU", "MaxPool2d(2)"])
>>> found = fit_memory((1, 3, 32, 32), net, 64 * 2**20, grow="batch")
>>> found.value, found.total <= 64 * 2**20 < found.next_total
(606, True)

The memory of a network grows with its batch and with its input side (every output length is a
non-decreasing function of its input length), so the answer is found by exponential and binary search.
The batch only has to be at least 2 where BatchNorm trains on one value per channel. An input side is
probed along steps of the network's total stride from a side it accepts; sizes between steps are then tried
one by one, so that the result is the largest accepted side that fits and the next accepted side above it (if
there is one within a stride step) does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnops.choices import Dtype, Optimizer
from cnnops.errors import CnnopsError, InputError, LayerError, SettingError
from cnnops.model.memory import MemoryPlan, plan_memory
from cnnops.model.stages import AdaptivePool, Conv, ConvTranspose, Pool, Shape, Stage, Unpool
from cnnops.model.trace import MAX_DIM_SIZE, Trace, trace_shapes
from cnnops.records import record

_WINDOWS = (Conv, ConvTranspose, Pool, AdaptivePool, Unpool)
MAX_STEP = 4096


@record
class MemoryFit:
    """The answer: ``value`` (a batch or a side), its input shape, trace and plan, its ``total`` bytes; and the
    next size up that the network accepts with its total (None: no larger accepted size was found)."""

    grow: str
    value: int
    shape: Shape
    trace: Trace
    plan: MemoryPlan
    total: int
    budget: int
    inference: bool
    next_value: int | None = None
    next_total: int | None = None

    def as_dict(self) -> dict:
        key = "batch" if self.grow == "batch" else "side"
        doc = {key: self.value, "input_shape": list(self.shape), "budget_bytes": self.budget, "total_bytes": self.total,
               "total": "inference_bytes" if self.inference else "training_bytes",
               "next": None if self.next_value is None else {key: self.next_value, "total_bytes": self.next_total}}  # fmt: skip
        return doc | self.plan.annotate(self.trace.as_dict())


def with_batch(shape: Shape, network: Sequence[Stage], batch: int) -> Shape:
    """``shape`` with its batch (first) dimension set to ``batch``; an input without one is refused."""
    if not 1 <= batch <= MAX_DIM_SIZE:
        raise SettingError(f"the batch size must be between 1 and {MAX_DIM_SIZE}, got {batch}")
    first = next((s for s in network if isinstance(s, _WINDOWS)), None)
    unbatched = len(shape) < 2 or (first is not None and len(shape) <= first.nd + 1)
    if unbatched:
        wanted = (1,) * ((first.nd + 2 if first is not None else 2) - len(shape)) + tuple(shape)
        raise InputError(f"the input {'×'.join(map(str, shape))} has no batch dimension for "
                         f"{first.name if first is not None else 'this network'} — give it one, e.g. "
                         f"{'×'.join(map(str, wanted))}")  # fmt: skip
    return (batch, *shape[1:])


def _spatial_dims(network: Sequence[Stage]) -> int:
    first = next((s for s in network if isinstance(s, _WINDOWS)), None)
    if first is None:
        raise SettingError("the network has no convolution or pooling layer, so it has no input side to grow — "
                           "grow the batch instead")  # fmt: skip
    return first.nd


def _stride_step(network: Sequence[Stage]) -> int:
    step = 1
    for stage in network:
        if isinstance(stage, Conv | Pool):
            step = min(step * max(stage.stride), MAX_STEP)
    return step


class _Probe:
    def __init__(self, network, dtype, optimizer, inference, budget, make_shape):
        self.network, self.dtype, self.optimizer, self.inference, self.budget = network, dtype, optimizer, inference, budget
        self.make_shape = make_shape
        self.cache: dict[int, tuple[Trace, MemoryPlan, int] | None] = {}

    def __call__(self, value: int) -> tuple[Trace, MemoryPlan, int] | None:
        """(trace, plan, total) at ``value``, or None where PyTorch refuses the network at that size."""
        if value not in self.cache:
            trace = trace_shapes(self.make_shape(value), self.network)
            result = None
            if trace.error is None:
                plan = plan_memory(trace, self.dtype, self.optimizer)
                if self.inference or plan.training_error is None:
                    result = (trace, plan, plan.total(self.inference))
            self.cache[value] = result
        return self.cache[value]

    def fits(self, value: int) -> bool:
        found = self(value)
        return found is not None and found[2] <= self.budget


def fit_memory(shape: Shape, network: Sequence[Stage], budget: int, *, grow: str = "batch", inference: bool = False,
               dtype: Dtype | str = Dtype.float32, optimizer: Optimizer | str = Optimizer.adam) -> MemoryFit:  # fmt: skip
    """The largest batch (``grow="batch"``) or square side (``"resolution"``) whose training (or inference)
    total fits ``budget`` bytes."""
    if grow == "batch":
        with_batch(shape, network, 1)
        probe = _Probe(network, dtype, optimizer, inference, budget, lambda n: with_batch(shape, network, n))
        value, next_value = _largest_batch(probe, shape)
    else:
        nd = _spatial_dims(network)
        if len(shape) < nd:
            raise InputError(f"the input {'×'.join(map(str, shape))} has fewer than {nd} spatial dimensions")
        probe = _Probe(network, dtype, optimizer, inference, budget, lambda s: (*shape[: len(shape) - nd], *(s,) * nd))
        value, next_value = _largest_side(probe, shape[-1], _stride_step(network))
    trace, plan, total = probe(value)  # type: ignore[misc]
    after = probe(next_value) if next_value is not None else None
    return MemoryFit(grow, value, trace.input_shape, trace, plan, total, budget, inference,
                     next_value if after else None, after[2] if after else None)  # fmt: skip


def _too_small(probe: _Probe, value: int, what: str) -> CnnopsError:
    found = probe(value)
    needs = f"needs {found[2]:,} bytes" if found else "is refused by PyTorch"
    return CnnopsError(f"even {what} {value} {needs}, more than the {probe.budget:,} bytes allowed")


def _largest_batch(probe: _Probe, shape: Shape) -> tuple[int, int | None]:
    low = 1
    if probe(1) is None:
        trace = trace_shapes(probe.make_shape(1), probe.network)
        trace.raise_error()  # a layer PyTorch refuses at any batch size
        low = 2  # BatchNorm trains on more than one value per channel
        if probe(2) is None:
            plan_memory(trace_shapes(probe.make_shape(2), probe.network)).raise_training_error()
    if not probe.fits(low):
        raise _too_small(probe, low, "a batch of")
    high = low
    while probe.fits(high):
        if high >= MAX_DIM_SIZE:
            return MAX_DIM_SIZE, None  # the largest dimension cnnops sizes
        low, high = high, min(2 * high, MAX_DIM_SIZE)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if probe.fits(middle) else (low, middle)
    return low, high


def _last_true(predicate, low: int, high: int) -> int:
    """The largest k in [low, high) with predicate(k), given predicate(low) and a true-then-false order."""
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if predicate(middle) else (low, middle)
    return low


def _largest_side(probe: _Probe, start: int, step: int) -> tuple[int, int | None]:
    near = [start, *range(start - 1, max(start - step, 0), -1), *range(start + 1, start + step + 1)]
    anchor = next((s for s in near if 1 <= s <= MAX_DIM_SIZE and probe(s) is not None), None)
    if anchor is None:
        trace_shapes(probe.make_shape(start), probe.network).raise_error()
        plan_memory(trace_shapes(probe.make_shape(start), probe.network)).raise_training_error()
        raise LayerError(f"the network accepts no input side near {start}")

    def size(j: int) -> int:
        return anchor + j * step

    if probe.fits(anchor):  # grow along anchor + k·step while the sizes are accepted and fit
        top = (MAX_DIM_SIZE - anchor) // step
        k = 1
        while k <= top and probe.fits(size(k)):
            k *= 2
        low = size(_last_true(lambda j: probe.fits(size(j)), k // 2, min(k, top + 1)))
    else:  # smaller sides: first accepted but too big, then fitting, then perhaps refused
        bottom = (anchor - 1) // step
        prev, k = 0, 1
        while k <= bottom and probe(size(-k)) is not None and not probe.fits(size(-k)):
            prev, k = k, 2 * k
        k = min(k, bottom)
        if k > prev and probe(size(-k)) is None:
            k = _last_true(lambda j: probe(size(-j)) is not None, prev, k)
        if not probe.fits(size(-k)):
            raise _too_small(probe, size(-k), "an input side of")
        while k - prev > 1:  # the smallest step down that fits
            middle = (prev + k) // 2
            prev, k = (prev, middle) if probe.fits(size(-middle)) else (middle, k)
        low = size(-k)
    # the sizes between one step and the next were not probed: take the largest accepted one that fits
    while True:
        nxt = next((s for s in range(low + 1, min(low + step, MAX_DIM_SIZE) + 1) if probe(s) is not None), None)
        if nxt is None or not probe.fits(nxt):
            return low, nxt
        low = nxt


def budget_text(budget: int) -> str:
    return f"{budget:,} bytes ({budget / 2**30:.2f} GiB)" if budget >= 2**30 else f"{budget:,} bytes"


