"""Run a tensor through a network of stages with an engine: every intermediate and the pool indices by
default, or only what the caller will read.

The shape model checks the whole chain first (same messages as ``cnnops shape``), so nothing is
computed for a chain PyTorch would reject, and nothing for a run that would need more memory than
allowed (:mod:`cnnops.run.budget`); then each row of the trace is executed in order. A caller that shows
only some tensors says so (:class:`Needs`): the others are let go as soon as no later stage reads them,
max-pool indices and winner masks are computed only where they are read, a ReLU overwrites a tensor
nobody else reads, and on the NumPy engine a conv → element-wise → pool chain on a large plane runs band
by band without its intermediates ever existing whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError, LayerError, SettingError, setting
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS, check_memory
from cnnops.model import stages as st
from cnnops.model.arithmetic import sums_pairwise
from cnnops.model.network import Network
from cnnops.model.trace import Row, Trace, trace_shapes
from cnnops.records import record
from cnnops.run.budget import estimate_peak
from cnnops.spec import LayerData

if TYPE_CHECKING:
    import numpy as np



@record(frozen=True)
class Needs:
    """What the caller will do with a run's result, decided once the shapes are known: the tensors it
    shows (``keep``: 0 the input, k stage k; None: every one; the result is always kept), the bytes
    it needs beside them (``reserve``: text, pictures), and the stages whose max-pool indices it reads
    (``indices``; None: every max pool's — a MaxUnpool's max pool computes them anyway)."""

    keep: Collection[int] | None = None
    reserve: int = 0
    indices: Collection[int] | None = None


@record
class StageResult:
    """One stage of a run: its trace row, its output and what it computed with."""

    row: Row
    output: np.ndarray  # None once dropped (a run that keeps only some tensors)
    indices: np.ndarray | None = None  # max pool / adaptive max pool: flat positions in each input plane
    weight: np.ndarray | None = None  # the weights a conv or linear stage used
    bias: np.ndarray | None = None
    winners: np.ndarray | None = None  # bool mask over the stage's input: cells a max pool picked


@record
class RunResult:
    """A whole run: the input, the shape trace and every stage's result."""

    input: np.ndarray  # None when the run did not keep it (typed as kept: every reader of a kept run)
    trace: Trace
    results: list[StageResult] = field(default_factory=list)
    seed: int = 0
    engine: str = "torch"
    device: str = "cpu"
    input_indices: np.ndarray | None = None  # max-pool indices that came with the input
    defaults_used: bool = False  # some weights came from PyTorch's default initialisation
    source: str = "input"  # where the input came from: a path, "stdin", "inline JSON"

    @property
    def output(self) -> np.ndarray:
        return self.results[-1].output if self.results else self.input

    def output_of(self, stage: int) -> np.ndarray:
        """Stage ``stage``'s output (0: the input)."""
        return self.input if stage == 0 else self.results[stage - 1].output

    def input_of(self, row: Row) -> np.ndarray:
        """What a one-input stage read (in a graph, not always the previous stage's output; after an
        in-place stage, the tensor it overwrote)."""
        return self.output_of(reads(self.trace)[row.index][0])

    @property
    def output_indices(self) -> np.ndarray | None:
        return self.results[-1].indices if self.results else None

    def as_dict(self, *, intermediates: bool = False) -> dict[str, Any]:
        """The ``--json`` document (SPEC §2): input, stages, output (with max-pool indices when the last
        stage has them); ``intermediates`` adds every stage's data, indices, weight and bias."""
        from cnnops.io.jsontext import array_to_json

        return _converted(self.document(intermediates=intermediates), array_to_json)

    def document(self, *, intermediates: bool = False) -> dict[str, Any]:
        """:meth:`as_dict` with the tensors left as arrays: what :func:`cnnops.io.jsontext.write_json`
        writes block by block, without a nested-list copy of any of them."""
        import numpy as np

        if intermediates and (self.input is None or any(r.output is None for r in self.results)):
            raise ValueError("this run did not keep its intermediate tensors (keep=…): run it again keeping them")
        stages = []
        for res in self.results:
            entry = res.row.as_dict(graph=self.trace.graph)
            if intermediates:
                entry["data"] = res.output
                if res.indices is not None:
                    entry["indices"] = res.indices
                if res.weight is not None:
                    entry["weight"] = res.weight
                if res.bias is not None:
                    entry["bias"] = res.bias
            stages.append(entry)
        output: dict[str, Any] = {"shape": list(self.output.shape), "data": np.asarray(self.output)}
        if self.output_indices is not None:
            output["indices"] = self.output_indices
        doc: dict[str, Any] = {
            "input": {"shape": list(self.trace.input_shape), "source": self.source},
            "engine": self.engine,
            "device": self.device,
            "seed": self.seed,
            "stages": stages,
            "output": output,
        }
        if intermediates:
            doc["input"]["data"] = self.input
        return doc


def _converted(value: Any, convert: Callable[[Any], Any]) -> Any:
    """``value`` with every array in its dicts (and lists of dicts) converted."""
    if isinstance(value, dict):
        return {key: _converted(item, convert) for key, item in value.items()}
    if isinstance(value, list):
        return [_converted(item, convert) for item in value]
    if type(value).__name__ == "ndarray":
        return convert(value)
    return value


def check_size(trace: Trace, max_elements: int) -> None:
    """Refuse, before allocating anything, a chain whose tensors would exceed ``max_elements``."""
    shapes = [trace.input_shape] + [r.output_shape for r in trace.rows]
    for index, shape in enumerate(shapes):
        count = math.prod(shape)
        if count > max_elements:
            where = "the input" if index == 0 else f"stage {index} {trace.rows[index - 1].stage.call}"
            raise InputError(
                f"{where} would hold {count:,} elements, more than the limit {max_elements:,} — "
                f"use a smaller input or raise {setting('max_elements')}"
            )
    for row in trace.rows:
        stage = row.stage
        weight_shape = stage.weight_shape()
        weights = math.prod(weight_shape) if weight_shape is not None else 0
        if weights > max_elements:
            raise InputError(
                f"stage {row.index} {stage.call} would create {weights:,} weights, more than the limit "
                f"{max_elements:,} — use a smaller layer or raise {setting('max_elements')}"
            )


def choose_engine(requested: str, trace: Trace, device: str | None = None, rates: Any = None) -> str:
    """``auto``: the engine estimated to finish first (:mod:`cnnops.run.costs`: each stage's work at this
    machine's measured rates, torch's import included) — torch when it is already imported or a device
    is asked for."""
    import sys

    if requested != "auto":
        return requested
    if device not in (None, "cpu") or "torch" in sys.modules:
        return "torch"
    from cnnops.run.costs import estimate, load_rates

    numpy_s, torch_s = estimate(trace, rates if rates is not None else load_rates())
    return "torch" if torch_s < numpy_s else "numpy"


def check_device(engine: str, device: str | None) -> None:
    """Refuse a device the engine cannot use or this machine lacks. It is the same for every input, so a
    caller with many checks it once before reading any; a device other than the CPU loads the torch engine."""
    if device in (None, "cpu"):
        return
    if engine == "numpy":
        raise SettingError(f"device {device!r} needs the torch engine — drop {setting('engine', 'numpy')}")
    from cnnops.engines import load_engine

    load_engine("torch").use_device(device)


def run_pipeline(
    data: np.ndarray,
    stage_list: Sequence[st.Stage],
    *,
    indices: np.ndarray | None = None,
    seed: int = 0,
    engine: str = "auto",
    device: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_memory: int | None = None,
    needs: Needs | Callable[[Trace], Needs] | None = None,
    keep: Collection[int] | None = None,
    need_indices: Collection[int] | None = None,
    plan: dict[str, Any] | None = None,
) -> RunResult:
    """Every stage's output for ``data``. ``indices``: max-pool indices that came with the input,
    used by a MaxUnpool that has no max pool before it. ``engine``: auto, numpy or torch;
    ``device`` (cpu, cuda, mps) runs the torch engine there. A :class:`~cnnops.spec.Network` brings
    the weights, bias values and seeds its stage texts gave.

    ``needs`` (or a function of the trace that returns it, and may refuse the run) says which tensors
    to keep and which max-pool indices to compute — every one by default — and what else the caller
    will need; ``keep`` and ``need_indices`` say the first two without it. A run whose estimated peak is
    above ``max_memory`` bytes (None: half the free memory) is refused before anything is computed.

    ``plan``: a dict the caller keeps for runs of the same stages on inputs of one shape; the trace,
    the engine chosen and the weights are made on the first run and reused by the others."""
    from cnnops.engines import load_engine
    from cnnops.io.generators import check_seed

    check_seed(seed)
    plan = {} if plan is None else plan
    if plan.get("shape") != tuple(data.shape):
        plan.clear()
        trace = trace_shapes(tuple(data.shape), stage_list)
        trace.raise_error()
        check_size(trace, max_elements)
        check_device(engine, device)
        plan.update(shape=tuple(data.shape), trace=trace, engine=choose_engine(engine, trace, device), parameters={})
    trace = plan["trace"]
    # what the caller needs, and all that follows from it and the trace alone, is worked out once a plan
    asked = (needs, keep, need_indices, max_memory)
    if plan.get("asked") != asked:
        plan.pop("asked", None)
        plan["run"] = _RunPlan.make(trace, plan["engine"], stage_list, needs, keep, need_indices, max_memory)
        plan["asked"] = asked
    how: _RunPlan = plan["run"]
    keep, sources, last_use, wanted, chains, given = how.keep, how.sources, how.last_use, how.wanted, how.chains, how.given
    engine = plan["engine"]
    pending = set(how.pending)
    eng = plan["module"] = plan.get("module") or load_engine(engine)
    if engine == "torch":
        eng.use_device(device or "cpu")
    # numpy.random and the generator's state only when weights are drawn
    rng = _LazyRandom(eng, seed, how.last_default, plan["parameters"])
    kept_input = data if keep is None or 0 in keep else None
    result = RunResult(input=kept_input, trace=trace, seed=seed, engine=engine,  # type: ignore[arg-type]
                       device=device or "cpu", input_indices=indices)  # fmt: skip
    rows = trace.rows
    k = 0
    while k < len(rows):
        row = rows[k]
        # a max pool's winner mask marks the tensor it read: made when that tensor or the pool is shown
        showing = keep is None or row.index in keep or bool(set(sources[row.index]) & keep)
        xs = [data if i == 0 else result.results[i - 1].output for i in sources[row.index]]
        # (st.loaded: a layer's module is not imported to learn that a stage is not one of its layers)
        if st.loaded("Merge") and isinstance(row.stage, st.Merge):  # an in-place stage's values read through a view: in its shape
            xs = [x.reshape(shape) if x.shape != tuple(shape) else x for x, shape in zip(xs, row.input_shapes, strict=True)]
        try:
            if row.index in chains:
                outs = _run_chain(eng, rng, [rows[i - 1] for i in chains[row.index]], given, xs[0], result)
            elif st.loaded("Merge") and isinstance(row.stage, st.Merge):
                outs = [StageResult(row, eng.merge(row.stage.op, xs, dim=row.stage.dim))]
            else:
                # a stage's output that nobody keeps or reads after this stage may be overwritten by it
                source = sources[row.index][0] if sources[row.index] else 0
                mine = source != 0 and (keep is not None and source not in keep) and last_use.get(source) == row.index
                mine = mine and not _aliased(xs[0], data, result, source)
                outs = [_execute(eng, rng, row, given[row.index - 1], xs[0].reshape(row.effective_input), result,
                                 indices, winners=showing, wanted=wanted, overwrite=mine)]  # fmt: skip
        except LayerError as exc:
            if exc.index is not None:
                raise
            raise LayerError(exc.reason, index=row.index, stage=row.stage.call) from None
        for out in outs:
            if out.output is not None and out.output.shape != tuple(out.row.output_shape):
                # the shape model and the engine disagree: refused, never a tensor of another shape
                raise CnnopsError(
                    f"stage {out.row.index} {out.row.stage.call} computed a {st.fmt_shape(tuple(out.output.shape))} tensor "
                    f"where PyTorch gives {st.fmt_shape(tuple(out.row.output_shape))} — a cnnops bug: please report it"
                )
            result.results.append(out)
            if keep is not None:
                _drop_unkept(result, out.row, keep, pending, last_use)
        k += len(outs)
    return result


def _aliased(x: np.ndarray, data: np.ndarray, result: RunResult, source: int) -> bool:
    """Whether ``x``, stage ``source``'s output, shares memory with the input or with another output still
    held: a Flatten or Unflatten gives a view of what it read, which nobody may overwrite in place."""
    import numpy as np

    if np.may_share_memory(x, data):
        return True
    return any(res.output is not None and res.row.index != source and np.may_share_memory(x, res.output)
               for res in result.results)  # fmt: skip


@record(frozen=True)
class _RunPlan:
    """What a run of a trace does, decided before it starts: the tensors kept, each stage's sources and
    last reader, the max-pool indices computed, the fused chains; its memory was checked."""

    keep: frozenset[int] | None
    pending: frozenset[int]
    sources: dict[int, tuple[int, ...]]
    last_use: dict[int, int]
    wanted: frozenset[int] | None
    chains: dict[int, list[int]]
    given: Sequence[LayerData | None]
    last_default: int

    @classmethod
    def make(cls, trace: Trace, engine: str, stage_list: Sequence[st.Stage], needs: Needs | Callable[[Trace], Needs] | None,
             keep: Collection[int] | None, need_indices: Collection[int] | None,
             max_memory: int | None) -> _RunPlan:  # fmt: skip
        if needs is None and (keep is not None or need_indices is not None):
            needs = Needs(keep=keep, indices=need_indices)
        needs = needs(trace) if callable(needs) else needs or Needs()
        kept = None if needs.keep is None else frozenset(needs.keep) | ({0} if not trace.rows else set())
        pending = frozenset(row.unpool_source for row in trace.rows if row.unpool_source is not None)
        sources = reads(trace)
        last_use = last_uses(trace)
        wanted = None if needs.indices is None else frozenset(needs.indices) | pending
        chains = _chains(trace, kept, wanted, sources, last_use) if engine == "numpy" else {}
        fused = {i for chain in chains.values() for i in chain[:-1]}
        check_run_memory(trace, kept, needs.reserve, max_memory, fused)
        given = stage_list.data if isinstance(stage_list, Network) else [None] * len(stage_list)
        return cls(kept, pending, sources, last_use, wanted, chains, given, _last_default(trace, given))


def _last_default(trace: Trace, given: Sequence[LayerData | None]) -> int:
    """The last stage that takes a weight or bias from PyTorch's default initialisation (0: none)."""
    last = 0
    for row in trace.rows:
        if (st.loaded("Conv") and isinstance(row.stage, st.Conv | st.ConvTranspose)) or (
                st.loaded("Linear") and isinstance(row.stage, st.Linear)):
            data = given[row.index - 1] or LayerData()
            if data.weight is None or (row.stage.bias and data.bias is None):
                last = row.index
    return last


class _LazyRandom:
    """The engine's Random(seed), built on the first draw. ``needed_until``: the last stage that takes a
    default value (draws after it would feed nobody); ``made``: each stage's weight and bias once made
    (reused by later runs of a plan)."""

    def __init__(self, eng: Any, seed: int, needed_until: int = 2**62, made: dict[int, Any] | None = None):
        self.eng, self.seed, self.needed_until = eng, seed, needed_until
        self.rng: Any = None
        self.made = {} if made is None else made

    def uniform(self, shape: tuple[int, ...], bound: float) -> np.ndarray:
        if self.rng is None:
            self.rng = self.eng.Random(self.seed)
        return self.rng.uniform(shape, bound)


#: a conv → element-wise → pool chain runs band by band when the conv's output has at least this many elements
FUSE_ELEMENTS = 1 << 20
_ELEMENTWISE_EXCLUDED = ("Softmax", "LogSoftmax")  # they reduce over a dim


def _chains(trace: Trace, keep: frozenset[int] | None, wanted: frozenset[int] | None,
            sources: dict[int, tuple[int, ...]], last_use: dict[int, int]) -> dict[int, list[int]]:  # fmt: skip
    """The conv → element-wise → pool chains that may run fused: a 2-D conv on a large plane whose
    output, and each element-wise result after it, is read by the next stage alone and kept by nobody,
    ending in a 2-D max (whose indices nobody reads) or average pool."""
    if keep is None or wanted is None:
        return {}
    rows = trace.rows
    readers: dict[int, int] = {}
    for index in sources:
        for i in sources[index]:
            readers[i] = readers.get(i, 0) + 1
    final = rows[-1].index if rows else 0
    chains: dict[int, list[int]] = {}
    for row in rows:
        stage = row.stage
        if not (st.loaded("Conv") and isinstance(stage, st.Conv)) or stage.nd != 2 or math.prod(row.output_shape) < FUSE_ELEMENTS:
            continue
        if math.prod(row.output_shape) // max(1, row.output_shape[-2]) < 2:
            continue  # bands of one element: GELU's single-element rule would differ
        chain = [row.index]
        for nxt in rows[row.index :]:
            previous = rows[chain[-1] - 1]
            alone = readers.get(previous.index) == 1 and previous.index not in keep and previous.index != final
            if sources[nxt.index] != (previous.index,) or not alone or last_use.get(previous.index) != nxt.index:
                break
            if tuple(nxt.effective_input) != tuple(previous.output_shape):
                break
            chain.append(nxt.index)
            if isinstance(nxt.stage, st.Pool):
                break
            if not _elementwise(nxt.stage):
                chain.pop()
                break
        last = rows[chain[-1] - 1].stage
        if (len(chain) > 1 and isinstance(last, st.Pool) and last.nd == 2
                and (last.mode != "max" or chain[-1] not in wanted) and not _pairwise(rows[chain[-1] - 1])):  # fmt: skip
            chains[row.index] = chain
    return chains


def _pairwise(row: Row) -> bool:
    """An average pool whose windows the engine may sum pairwise (ATen's order, the fused pool's, would
    take far longer: minutes for AvgPool2d(500, stride=1) on 1100², under a second pairwise)."""
    stage: Any = row.stage
    if stage.mode == "max":
        return False
    shape = tuple(row.effective_input)
    return sums_pairwise(math.prod(shape[:-2]), shape[-2:], tuple(stage.kernel_size), tuple(stage.padding),
                         tuple(row.output_shape[-2:]))  # fmt: skip


def _elementwise(stage: st.Stage) -> bool:
    if st.loaded("Activation") and type(stage) is st.Activation:  # PReLU has weights, GLU halves a dim: not cell by cell through activation()
        return stage.name not in _ELEMENTWISE_EXCLUDED
    if st.loaded("BatchNorm") and isinstance(stage, st.BatchNorm):
        return stage.track_running_stats
    return st.loaded("Passthrough") and type(stage) is st.Passthrough


def _run_chain(eng: Any, rng: Any, rows: list[Row], given: Sequence[LayerData | None], x: np.ndarray, result: RunResult) -> list[StageResult]:
    """A fused conv → element-wise → pool chain: the conv's weights drawn as usual, the intermediates
    never held (their results carry no output)."""
    conv_row, pool_row = rows[0], rows[-1]
    stage: Any = conv_row.stage
    pool: Any = pool_row.stage
    weight, bias = _parameters(rng, stage, given[conv_row.index - 1], result, conv_row.index)
    steps: list[tuple[str, dict[str, Any]]] = []
    for row in rows[1:-1]:
        if isinstance(row.stage, st.Activation):
            steps.append(("activation", {"name": row.stage.name, "options": dict(row.stage.options)}))
        elif isinstance(row.stage, st.BatchNorm):
            steps.append(("batch_norm", {"eps": row.stage.eps}))
        else:
            steps.append(("copy", {}))
    pooling: dict[str, Any] = {"mode": pool.mode, "kernel_size": pool.kernel_size, "stride": pool.stride,
                               "padding": pool.padding, "ceil_mode": pool.ceil_mode}  # fmt: skip
    if pool.mode == "max":
        pooling["dilation"] = pool.dilation
    else:
        pooling.update(count_include_pad=pool.count_include_pad, divisor_override=pool.divisor_override)
    conv = {"stride": stage.stride, "pads": stage.pads(), "dilation": stage.dilation, "groups": stage.groups,
            "padding_mode": stage.padding_mode}  # fmt: skip
    y = eng.conv_chain(x.reshape(conv_row.effective_input), weight, bias, conv=conv, steps=steps, pool=pooling)
    outs = [StageResult(conv_row, None, weight=weight, bias=bias)]  # type: ignore[arg-type]
    outs += [StageResult(row, None) for row in rows[1:-1]]  # type: ignore[arg-type]
    return [*outs, StageResult(pool_row, y)]


def check_run_memory(trace: Trace, keep: Collection[int] | None, reserve: int, max_memory: int | None,
                     fused: Collection[int] = ()) -> None:  # fmt: skip
    """Refuse a run whose estimated peak memory is above ``max_memory`` (None: the default budget)."""
    estimate = estimate_peak(trace, keep=keep, reserve=reserve, fused=fused)
    if estimate.stage > len(trace.rows):
        where = " (with its result written or shown)"
    else:
        where = f" (at stage {estimate.stage} {trace.rows[estimate.stage - 1].stage.call})" if estimate.stage else ""
    kept = " keeping every intermediate tensor" if keep is None and len(trace.rows) > 1 else ""
    check_memory(estimate.bytes, max_memory, f"this run{kept}{where}", "use a smaller input")


def reads(trace: Trace) -> dict[int, tuple[int, ...]]:
    """The outputs each stage really reads. As in PyTorch, an in-place stage (``ReLU(inplace=True)``)
    overwrites the tensor it reads, and with it every tensor that shares its storage: a later stage that
    reads one of them (``Add(@1)`` after ``ReLU(inplace=True)(@1)``, or after ``Flatten(@1)`` and
    ``ReLU(inplace=True)(@2)``) gets the overwritten values, that is, the in-place stage's output (in the
    shape of the tensor it reads: see :func:`shares_storage`)."""
    storage: dict[int, int] = {0: 0}  # an output → the output whose storage it is
    latest: dict[int, int] = {}  # an output → the in-place stage whose result now lives in its storage
    out: dict[int, tuple[int, ...]] = {}
    for row in trace.rows:
        out[row.index] = tuple(latest.get(i, i) for i in row.inputs)
        storage[row.index] = storage[row.inputs[0]] if row.inputs and shares_storage(row.stage) else row.index
        if in_place(row.stage) and row.inputs:
            for key, held in storage.items():
                if held == storage[row.index] and key != row.index:
                    latest[key] = row.index
    return out


def shares_storage(stage: st.Stage) -> bool:
    """A stage whose output is the tensor it reads, or a view of it, as in PyTorch: Identity and every
    Dropout in evaluation mode (the tensor itself), Flatten and Unflatten (a view of a contiguous tensor),
    and an in-place stage (the tensor it wrote)."""
    return ((st.loaded("Passthrough") and isinstance(stage, st.Passthrough | st.Flatten))
            or (st.loaded("Unflatten") and isinstance(stage, st.Unflatten)) or in_place(stage))  # fmt: skip


def in_place(stage: st.Stage) -> bool:
    """A stage that writes its result into the tensor it reads (an activation with ``inplace=True``)."""
    return st.loaded("Activation") and isinstance(stage, st.Activation) and bool(stage.option("inplace", False))


def last_uses(trace: Trace) -> dict[int, int]:
    """For each output (0: the input), the last stage that reads it."""
    last: dict[int, int] = {}
    for index, sources in reads(trace).items():
        for i in sources:
            last[i] = index
    return last


def _drop_unkept(result: RunResult, row: Row, keep: Collection[int], pending: set[int],
                 last_use: dict[int, int]) -> None:  # fmt: skip
    """Let go of the tensors nobody will show once the last stage that reads them has run."""
    if row.unpool_source is not None and row.unpool_source not in keep:
        pending.discard(row.unpool_source)
        result.results[row.unpool_source - 1].indices = None
    for source in set(row.inputs):
        if source and source not in keep and last_use.get(source) == row.index:
            res = result.results[source - 1]
            res.output = res.weight = res.bias = None  # type: ignore[assignment]
            if not set(res.row.inputs) & set(keep):  # the winner mask marks the tensor the pool read
                res.winners = None
            if source not in pending:
                res.indices = None


def _fan_in_bound(fan_in: int) -> tuple[float, float]:
    """PyTorch's bounds: kaiming_uniform_(a=√5) for the weight, 1/√fan_in for the bias."""
    if fan_in <= 0:
        return 0.0, 0.0
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    return weight_bound, 1 / math.sqrt(fan_in)


def _parameters(rng: Any, stage: Any, given: LayerData | None, result: RunResult,
                index: int = 0) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """The weight and bias of a conv or linear stage (stage ``index``): given ones, else PyTorch's default init.

    Default draws happen in layer order, weight then bias, as ``torch.manual_seed(seed)`` and
    building the model would: the same seed gives the same numbers as PyTorch. A layer whose values
    are all given still draws them (keeping the stream aligned for the layers after it), unless no
    layer after it needs a default."""
    if index in rng.made:  # an earlier run of the same plan made them
        weight, bias, defaults = rng.made[index]
    else:
        before, result.defaults_used = result.defaults_used, False
        weight, bias = _make_parameters(rng, stage, given, result, index)
        defaults, result.defaults_used = result.defaults_used, before
        rng.made[index] = (weight, bias, defaults)
    result.defaults_used |= defaults
    return weight, bias


def _make_parameters(rng: Any, stage: Any, given: LayerData | None, result: RunResult,
                     index: int) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    import numpy as np

    from cnnops.io.weights import resolve_bias, resolve_weight

    given = given or LayerData()
    weight_shape = stage.weight_shape()
    out_features = weight_shape[1] * stage.groups if isinstance(stage, st.ConvTranspose) else weight_shape[0]
    if given.weight is not None and (not stage.bias or given.bias is not None) and index > rng.needed_until:
        weight = resolve_weight(given.weight, weight_shape, seed=given.seed, layer=stage.call)
        return weight, (resolve_bias(given.bias, out_features, layer=stage.call) if stage.bias else None)
    fan_in = stage.fan_in()
    w_bound, b_bound = _fan_in_bound(fan_in)
    drawn_weight = rng.uniform(weight_shape, w_bound)  # drawn even when given: keeps the stream aligned
    if given.weight is None:
        weight = drawn_weight
        result.defaults_used = True
    else:
        weight = resolve_weight(given.weight, weight_shape, seed=given.seed, layer=stage.call)
    bias = None
    if stage.bias:
        drawn_bias = rng.uniform((out_features,), b_bound) if fan_in > 0 else None
        if given.bias is None:
            bias = drawn_bias if drawn_bias is not None else np.zeros(out_features, dtype=np.float32)
            result.defaults_used = True
        else:
            bias = resolve_bias(given.bias, out_features, layer=stage.call)
    return weight, bias


def _execute(eng: Any, rng: Any, row: Row, given: LayerData | None, x: np.ndarray, result: RunResult,
             indices: np.ndarray | None, *, winners: bool = True, wanted: Collection[int] | None = None,
             overwrite: bool = False) -> StageResult:  # fmt: skip
    """One stage. ``wanted``: the stages whose max-pool indices are read (None: all); ``winners``: the
    stage is shown (its winner mask is made with its indices); ``overwrite``: ``x`` is read by nobody
    else, so an activation may write its result into it."""
    import numpy as np

    stage = row.stage
    wants_indices = wanted is None or row.index in wanted
    if st.loaded("Conv") and isinstance(stage, st.Conv):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        out = eng.conv(
            x, weight, bias, nd=stage.nd, stride=stage.stride, pads=stage.pads(),
            dilation=stage.dilation, groups=stage.groups, padding_mode=stage.padding_mode,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if st.loaded("ConvTranspose") and isinstance(stage, st.ConvTranspose):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        out = eng.conv_transpose(
            x, weight, bias, nd=stage.nd, stride=stage.stride, padding=stage.padding,
            output_padding=stage.output_padding, groups=stage.groups, dilation=stage.dilation,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if st.loaded("Linear") and isinstance(stage, st.Linear):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        return StageResult(row, eng.linear(x, weight, bias), weight=weight, bias=bias)
    if st.loaded("Pool") and isinstance(stage, st.Pool):
        if stage.mode == "max":
            out, idx = eng.max_pool(
                x, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride, padding=stage.padding,
                dilation=stage.dilation, ceil_mode=stage.ceil_mode, return_indices=wants_indices,
            )  # fmt: skip
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if winners and idx is not None else None
            return StageResult(row, out, indices=idx, winners=mask)
        out = eng.avg_pool(
            x, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride, padding=stage.padding,
            ceil_mode=stage.ceil_mode, count_include_pad=stage.count_include_pad,
            divisor_override=stage.divisor_override,
        )  # fmt: skip
        return StageResult(row, out)
    if st.loaded("AdaptivePool") and isinstance(stage, st.AdaptivePool):
        size = row.output_shape[-stage.nd :]
        if stage.mode == "max":
            out, idx = eng.adaptive_max_pool(x, nd=stage.nd, output_size=size)
            if not wants_indices:
                return StageResult(row, out)
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if winners else None
            return StageResult(row, out, indices=idx, winners=mask)
        return StageResult(row, eng.adaptive_avg_pool(x, nd=stage.nd, output_size=size))
    if st.loaded("Unpool") and isinstance(stage, st.Unpool):
        if row.unpool_source is not None:
            idx = result.results[row.unpool_source - 1].indices
        elif indices is not None:
            idx = indices
            if tuple(idx.shape) != tuple(row.input_shape):
                raise LayerError(
                    f"the indices have shape {st.fmt_shape(tuple(idx.shape))} but the input has "
                    f"{st.fmt_shape(row.input_shape)} — they must match"
                )
            idx = idx.reshape(row.effective_input)
        else:
            raise LayerError(
                f"needs max-pool indices: put a max pool before it, give {setting('indices')} (a file), "
                "or pipe in a max pool's JSON result"
            )
        size = row.output_shape[-stage.nd :]
        plane = math.prod(size)
        flat = idx.reshape(-1)
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= plane):
            bad = int(flat.max()) if int(flat.max()) >= plane else int(flat.min())
            raise LayerError(
                f"index {bad} is outside the {'×'.join(map(str, size))} output plane — "
                "give output_size the size of the max pool's input"
            )
        out = eng.max_unpool(
            x, idx, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride,
            padding=stage.padding, output_size=size,
        )  # fmt: skip
        return StageResult(row, out)
    if st.loaded("Flatten") and isinstance(stage, st.Flatten):
        return StageResult(row, np.ascontiguousarray(x).reshape(row.output_shape))
    if st.loaded("PReLU") and isinstance(stage, st.PReLU):
        weight = np.full(stage.num_parameters, stage.init, dtype=np.float32)  # PyTorch's fill_(init)
        return StageResult(row, eng.prelu(x, weight), weight=weight)
    if st.loaded("GLU") and isinstance(stage, st.GLU):
        return StageResult(row, eng.glu(x, stage.dim))
    if st.loaded("Activation") and isinstance(stage, st.Activation):
        return StageResult(row, eng.activation(stage.name, x, dict(stage.options), inplace=overwrite))
    if st.loaded("BatchNorm") and isinstance(stage, st.BatchNorm):
        return StageResult(row, eng.batch_norm(x, eps=stage.eps, batch_stats=not stage.track_running_stats))
    if st.loaded("LayerNorm") and isinstance(stage, st.LayerNorm):
        out = eng.layer_norm(x, normalized_ndim=len(stage.normalized_shape), eps=stage.eps,
                             affine=stage.elementwise_affine)  # fmt: skip
        return StageResult(row, out)
    if st.loaded("GroupNorm") and isinstance(stage, st.GroupNorm):
        return StageResult(row, eng.group_norm(x, num_groups=stage.num_groups, eps=stage.eps, affine=stage.affine))
    if st.loaded("InstanceNorm") and isinstance(stage, st.InstanceNorm):
        out = eng.instance_norm(x, nd=stage.nd, eps=stage.eps, input_stats=not stage.track_running_stats,
                                affine=stage.affine)  # fmt: skip
        return StageResult(row, out)
    if st.loaded("LocalResponseNorm") and isinstance(stage, st.LocalResponseNorm):
        out = eng.local_response_norm(x, size=stage.size, alpha=stage.alpha, beta=stage.beta, k=stage.k)
        return StageResult(row, out)
    if st.loaded("Pad") and isinstance(stage, st.Pad):
        return StageResult(row, eng.pad(x, padding=stage.padding, mode=stage.mode, value=stage.value))
    if st.loaded("Upsample") and isinstance(stage, st.Upsample):
        out = eng.upsample(
            x, output_size=row.output_shape[2:], size=stage.size, scale_factor=stage.scale_factor, mode=stage.mode,
            align_corners=stage.align_corners, recompute_scale_factor=stage.recompute_scale_factor,
        )  # fmt: skip
        return StageResult(row, out)
    if st.loaded("PixelShuffle") and isinstance(stage, st.PixelShuffle):
        return StageResult(row, eng.pixel_shuffle(x, factor=stage.factor, unshuffle=stage.unshuffle))
    if st.loaded("ChannelShuffle") and isinstance(stage, st.ChannelShuffle):
        return StageResult(row, eng.channel_shuffle(x, groups=stage.groups))
    if st.loaded("Unflatten") and isinstance(stage, st.Unflatten):
        return StageResult(row, np.ascontiguousarray(x).reshape(row.output_shape))
    if st.loaded("Passthrough") and isinstance(stage, st.Passthrough):
        return StageResult(row, x.copy())
    raise LayerError(f"cnnops cannot compute {stage.name} yet")  # pragma: no cover


def winner_mask(x: np.ndarray, idx: np.ndarray, nd: int) -> np.ndarray:
    """Cells of ``x`` that a max pool picked (for highlighting the pool's input)."""
    import numpy as np

    plane = math.prod(x.shape[-nd:])
    lead = x.shape[:-nd]
    mask = np.zeros((math.prod(lead) if lead else 1, plane), dtype=bool)
    if mask.size == 0 or idx.size == 0:
        return mask.reshape(x.shape)
    flat_idx = idx.reshape(mask.shape[0], -1)
    rows = np.repeat(np.arange(mask.shape[0]), flat_idx.shape[1])
    valid = (flat_idx.reshape(-1) >= 0) & (flat_idx.reshape(-1) < plane)
    mask[rows[valid], flat_idx.reshape(-1)[valid]] = True
    return mask.reshape(x.shape)
