"""Run a tensor through a network of stages with an engine: every intermediate and the pool indices by
default, or only what the caller will read.

The shape model checks the whole chain first (same messages as ``cnnops shape``), so nothing is
computed for a chain PyTorch would reject; then each row of the trace is executed in order. A caller
that shows only some tensors says so (``keep``, ``need_indices``): the others are let go as soon as
no later stage reads them, max-pool indices and winner masks are computed only where they are read,
a ReLU overwrites a tensor nobody else reads, and on the NumPy engine a conv → element-wise → pool
chain on a large plane runs band by band without its intermediates ever existing whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, LayerError, SettingError, setting
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS
from cnnops.model import stages as st
from cnnops.model.network import Network
from cnnops.model.trace import Row, Trace, trace_shapes
from cnnops.spec import LayerData

if TYPE_CHECKING:
    import numpy as np



#: tensor numbers (0: the input, k: stage k's output) or stage numbers, or a function of the trace giving them
Selection = Collection[int] | Callable[[Trace], Collection[int]] | None


@dataclass
class StageResult:
    row: Row
    output: np.ndarray  # None once let go (a run that keeps only some tensors: ``keep``)
    indices: np.ndarray | None = None  # max pool / adaptive max pool: flat positions in each input plane
    weight: np.ndarray | None = None  # the weights a conv or linear stage used
    bias: np.ndarray | None = None
    winners: np.ndarray | None = None  # bool mask over the stage's input: cells a max pool picked


@dataclass
class RunResult:
    input: np.ndarray  # None when the run did not keep it (``keep``)
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

    @property
    def output_indices(self) -> np.ndarray | None:
        return self.results[-1].indices if self.results else None

    def as_dict(self, *, intermediates: bool = False) -> dict[str, Any]:
        """The ``--json`` document (SPEC §2): input, stages, output (with max-pool indices when the last
        stage has them); ``intermediates`` adds every stage's data, indices, weight and bias. Tensors
        are nested lists of Python numbers."""
        from cnnops.io.jsontext import array_to_json

        return _converted(self.document(intermediates=intermediates), array_to_json)

    def document(self, *, intermediates: bool = False) -> dict[str, Any]:
        """:meth:`as_dict` with the tensors left as arrays, for :func:`cnnops.io.jsontext.dumps` to write
        straight from memory."""
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
        output: dict[str, Any] = {"shape": list(self.output.shape), "data": self.output}
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


def run_pipeline(
    data: np.ndarray,
    stage_list: Sequence[st.Stage],
    *,
    indices: np.ndarray | None = None,
    seed: int = 0,
    engine: str = "auto",
    device: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    keep: Selection = None,
    need_indices: Selection = None,
    plan: dict[str, Any] | None = None,
) -> RunResult:
    """Every stage's output for ``data``. ``indices``: max-pool indices that came with the input,
    used by a MaxUnpool that has no max pool before it. ``engine``: auto, numpy or torch;
    ``device`` (cpu, cuda, mps) runs the torch engine there. A :class:`~cnnops.spec.Network` brings
    the weights, bias values and seeds its stage texts gave.

    ``keep``: the tensors the caller will read (0 the input, k stage k's output; the result is always
    kept), or None for every one. Others are let go (``output`` None) once no later stage reads them.
    ``need_indices``: the stages whose max-pool indices the caller will read, or None for every max
    pool (a MaxUnpool's max pool always computes them). Winner masks come with a stage's indices when
    the tensor it read is kept. Either may be a function of the trace.

    ``plan``: a dict the caller keeps for runs of the same stages on inputs of one shape; the trace,
    the engine chosen and the weights are made on the first run and reused by the others."""
    from cnnops.engines import load_engine

    plan = {} if plan is None else plan
    if plan.get("shape") != tuple(data.shape):
        plan.clear()
        trace = trace_shapes(tuple(data.shape), stage_list)
        trace.raise_error()
        check_size(trace, max_elements)
        if device not in (None, "cpu") and engine == "numpy":
            raise SettingError(f"device {device!r} needs the torch engine — drop {setting('engine', 'numpy')}")
        plan.update(shape=tuple(data.shape), trace=trace, engine=choose_engine(engine, trace, device), parameters={})
    trace, engine = plan["trace"], plan["engine"]
    eng = load_engine(engine)
    if engine == "torch":
        eng.use_device(device or "cpu")
    reads = _Plan(trace, _selected(keep, trace), _selected(need_indices, trace), fuse=hasattr(eng, "conv_chain"))
    given = stage_list.data if isinstance(stage_list, Network) else [None] * len(stage_list)
    # numpy.random and the generator's state only when weights are drawn
    rng = _LazyRandom(eng, seed, _last_default(trace, given), plan["parameters"])
    result = RunResult(input=data, trace=trace, seed=seed, engine=engine, device=device or "cpu", input_indices=indices)
    rows = trace.rows
    k = 0
    while k < len(rows):
        row = rows[k]
        chain = reads.chains.get(row.index)
        try:
            if chain is not None:
                outs = _run_chain(eng, rng, [rows[i - 1] for i in chain], given, _tensor(result, row.inputs[0]), result)
            elif isinstance(row.stage, st.Merge):
                outs = [StageResult(row, eng.merge(row.stage.op, [_tensor(result, i) for i in row.inputs],
                                                   dim=row.stage.dim))]  # fmt: skip
            else:
                x = _tensor(result, row.inputs[0]).reshape(row.effective_input)
                outs = [_execute(eng, rng, row, given[row.index - 1], x, result, indices, plan=reads)]
        except LayerError as exc:
            if exc.index is not None:
                raise
            raise LayerError(exc.reason, index=row.index, stage=row.stage.call) from None
        for out in outs:
            result.results.append(out)
            reads.release(result, out.row)
        k += len(outs)
    return result


def _last_default(trace: Trace, given: Sequence[LayerData | None]) -> int:
    """The last stage that takes a weight or bias from PyTorch's default initialisation (0: none)."""
    last = 0
    for row in trace.rows:
        if isinstance(row.stage, st.Conv | st.ConvTranspose | st.Linear):
            data = given[row.index - 1] or LayerData()
            if data.weight is None or (row.stage.bias and data.bias is None):
                last = row.index
    return last


def _selected(selection: Selection, trace: Trace) -> frozenset[int] | None:
    if selection is None:
        return None
    return frozenset(selection(trace) if callable(selection) else selection)


def _tensor(result: RunResult, number: int) -> np.ndarray:
    tensor = result.input if number == 0 else result.results[number - 1].output
    assert tensor is not None, f"tensor {number} was let go before its last reader"
    return tensor


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


class _Plan:
    """Who reads what: which tensors to let go after which stage, which max pools compute indices and
    winner masks, which ReLUs may overwrite their input, and which chains run fused."""

    def __init__(self, trace: Trace, keep: frozenset[int] | None, need: frozenset[int] | None, *, fuse: bool):
        rows = trace.rows
        self.keep = keep
        self.last_reader: dict[int, int] = {}
        self.readers: dict[int, int] = {}
        for row in rows:
            for i in row.inputs:
                self.last_reader[i] = row.index
                self.readers[i] = self.readers.get(i, 0) + 1
        self.final = rows[-1].index if rows else 0
        unpooled = {row.unpool_source for row in rows if row.unpool_source is not None}
        self.indices = None if need is None else frozenset(need) | unpooled
        self.shown_indices = need
        self.chains: dict[int, list[int]] = {}
        if fuse and keep is not None and need is not None:
            self._find_chains(rows)

    def kept(self, number: int) -> bool:
        return self.keep is None or number in self.keep or number == self.final

    def wants_indices(self, stage: int) -> bool:
        return self.indices is None or stage in self.indices

    def wants_winners(self, row: Row) -> bool:
        shown = self.shown_indices is None or row.index in self.shown_indices
        return shown and self.kept(row.inputs[0])

    def may_overwrite(self, row: Row) -> bool:
        """Whether a stage may overwrite the tensor it reads: a stage's output (never the caller's input)
        that nobody keeps or reads after it."""
        source = row.inputs[0] if len(row.inputs) == 1 else 0
        return source != 0 and not self.kept(source) and self.last_reader.get(source) == row.index

    def release(self, result: RunResult, row: Row) -> None:
        """Let go of the tensors nobody reads after ``row`` and nobody keeps."""
        for number in (*row.inputs, row.index):
            if self.kept(number) or self.last_reader.get(number, 0) > row.index:
                continue
            if number == 0:
                result.input = None  # type: ignore[assignment]
            else:
                result.results[number - 1].output = None  # type: ignore[assignment]

    def _sole_reader(self, number: int) -> bool:
        return self.readers.get(number, 0) == 1 and not self.kept(number)

    def _find_chains(self, rows: list[Row]) -> None:
        for row in rows:
            stage = row.stage
            if not isinstance(stage, st.Conv) or stage.nd != 2 or math.prod(row.output_shape) < FUSE_ELEMENTS:
                continue
            if math.prod(row.output_shape) // max(1, row.output_shape[-2]) < 2:
                continue  # bands of one element: GELU's single-element rule would differ
            chain = [row.index]
            for nxt in rows[row.index :]:
                previous = rows[chain[-1] - 1]
                if nxt.inputs != (previous.index,) or not self._sole_reader(previous.index):
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
                    and (last.mode != "max" or not self.wants_indices(chain[-1]))):  # fmt: skip
                self.chains[row.index] = chain


def _elementwise(stage: st.Stage) -> bool:
    if isinstance(stage, st.Activation):
        return stage.name not in _ELEMENTWISE_EXCLUDED
    if isinstance(stage, st.BatchNorm):
        return stage.track_running_stats
    return isinstance(stage, st.Passthrough)


def _run_chain(eng: Any, rng: Any, rows: list[Row], given: list, x: np.ndarray, result: RunResult) -> list[StageResult]:
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
             indices: np.ndarray | None, plan: _Plan | None = None) -> StageResult:  # fmt: skip
    import numpy as np

    stage = row.stage
    wants_indices = plan is None or plan.wants_indices(row.index)
    wants_winners = plan is None or plan.wants_winners(row)
    if isinstance(stage, st.Conv):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        out = eng.conv(
            x, weight, bias, nd=stage.nd, stride=stage.stride, pads=stage.pads(),
            dilation=stage.dilation, groups=stage.groups, padding_mode=stage.padding_mode,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if isinstance(stage, st.ConvTranspose):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        out = eng.conv_transpose(
            x, weight, bias, nd=stage.nd, stride=stage.stride, padding=stage.padding,
            output_padding=stage.output_padding, groups=stage.groups, dilation=stage.dilation,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if isinstance(stage, st.Linear):
        weight, bias = _parameters(rng, stage, given, result, row.index)
        return StageResult(row, eng.linear(x, weight, bias), weight=weight, bias=bias)
    if isinstance(stage, st.Pool):
        if stage.mode == "max":
            out, idx = eng.max_pool(
                x, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride, padding=stage.padding,
                dilation=stage.dilation, ceil_mode=stage.ceil_mode, return_indices=wants_indices,
            )  # fmt: skip
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if idx is not None and wants_winners else None
            return StageResult(row, out, indices=idx, winners=mask)
        out = eng.avg_pool(
            x, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride, padding=stage.padding,
            ceil_mode=stage.ceil_mode, count_include_pad=stage.count_include_pad,
            divisor_override=stage.divisor_override,
        )  # fmt: skip
        return StageResult(row, out)
    if isinstance(stage, st.AdaptivePool):
        size = row.output_shape[-stage.nd :]
        if stage.mode == "max":
            out, idx = eng.adaptive_max_pool(x, nd=stage.nd, output_size=size)
            if not wants_indices:
                return StageResult(row, out)
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if wants_winners else None
            return StageResult(row, out, indices=idx, winners=mask)
        return StageResult(row, eng.adaptive_avg_pool(x, nd=stage.nd, output_size=size))
    if isinstance(stage, st.Unpool):
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
    if isinstance(stage, st.Flatten):
        return StageResult(row, np.ascontiguousarray(x).reshape(row.output_shape))
    if isinstance(stage, st.Activation):
        inplace = plan is not None and plan.may_overwrite(row)
        return StageResult(row, eng.activation(stage.name, x, dict(stage.options), inplace=inplace))
    if isinstance(stage, st.BatchNorm):
        return StageResult(row, eng.batch_norm(x, eps=stage.eps, batch_stats=not stage.track_running_stats))
    if isinstance(stage, st.Passthrough):
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
