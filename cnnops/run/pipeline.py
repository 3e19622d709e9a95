"""Run a tensor through a network of stages with an engine, keeping every intermediate (or those asked
for) and the pool indices.

The shape model checks the whole chain first (same messages as ``cnnops shape``), so nothing is
computed for a chain PyTorch would reject, and nothing for a run that would need more memory than
allowed (:mod:`cnnops.run.budget`); then each row of the trace is executed in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, LayerError, SettingError, setting
from cnnops.io.memory import check_memory
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS
from cnnops.model import stages as st
from cnnops.model.network import Network
from cnnops.model.trace import Row, Trace, trace_shapes
from cnnops.run.budget import estimate_peak
from cnnops.spec import LayerData

if TYPE_CHECKING:
    import numpy as np



@dataclass(frozen=True)
class Needs:
    """What the caller will do with a run's result, decided once the shapes are known: the tensors it
    shows (``keep``: 0 the input, k stage k; None: every one; the result is always kept) and the bytes
    it needs beside them (``reserve``: text, pictures)."""

    keep: Collection[int] | None = None
    reserve: int = 0


@dataclass
class StageResult:
    row: Row
    output: np.ndarray  # None once dropped (a run that keeps only some tensors)
    indices: np.ndarray | None = None  # max pool / adaptive max pool: flat positions in each input plane
    weight: np.ndarray | None = None  # the weights a conv or linear stage used
    bias: np.ndarray | None = None
    winners: np.ndarray | None = None  # bool mask over the stage's input: cells a max pool picked


@dataclass
class RunResult:
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


#: Above these amounts of work torch's kernels win back its ~2.5 s import. On this project's machine
#: NumPy's im2col + BLAS convolution keeps pace with torch's (bench/run.py: 0.46 GMAC in ~0.3 s), so
#: only very large conv/linear work switches; transcendental activations, softmax and adaptive pooling
#: are 3–10× slower in NumPy, so ~2·10⁸ elements of them cost more than the import.
TORCH_MACS = 20_000_000_000
TORCH_SLOW_ELEMENTS = 200_000_000
SLOW_IN_NUMPY = ("GELU", "SiLU", "Mish", "ELU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax", "SELU", "CELU",
                 "Tanhshrink", "GLU", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                 "LocalResponseNorm")  # fmt: skip


def choose_engine(requested: str, trace: Trace, device: str | None = None) -> str:
    """``auto``: NumPy for small work, torch when the work is large enough to pay for importing it
    (or when it is already imported, or a device is asked for)."""
    import sys

    if requested != "auto":
        return requested
    if device not in (None, "cpu") or "torch" in sys.modules:
        return "torch"
    macs = trace.total_macs
    slow = sum(
        math.prod(row.output_shape) for row in trace.rows
        if row.stage.kind == "adaptive_pool" or row.stage.name in SLOW_IN_NUMPY
    )  # fmt: skip
    return "torch" if macs > TORCH_MACS or slow > TORCH_SLOW_ELEMENTS else "numpy"


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
) -> RunResult:
    """Every stage's output for ``data``. ``indices``: max-pool indices that came with the input,
    used by a MaxUnpool that has no max pool before it. ``engine``: auto, numpy or torch;
    ``device`` (cpu, cuda, mps) runs the torch engine there. A :class:`~cnnops.spec.Network` brings
    the weights, bias values and seeds its stage texts gave.

    ``needs`` (or a function of the trace that returns it, and may refuse the run) says which tensors
    to keep — every one by default — and what else the caller will need; a run whose estimated peak
    is above ``max_memory`` bytes (None: half the free memory) is refused before anything is computed."""
    from cnnops.engines import load_engine

    trace = trace_shapes(tuple(data.shape), stage_list)
    trace.raise_error()
    check_size(trace, max_elements)
    if device not in (None, "cpu") and engine == "numpy":
        raise SettingError(f"device {device!r} needs the torch engine — drop {setting('engine', 'numpy')}")
    needs = needs(trace) if callable(needs) else needs or Needs()
    keep = None if needs.keep is None else frozenset(needs.keep) | ({0} if not trace.rows else set())
    check_run_memory(trace, keep, needs.reserve, max_memory)
    engine = choose_engine(engine, trace, device)
    eng = load_engine(engine)
    if engine == "torch":
        eng.use_device(device or "cpu")
    rng = eng.Random(seed)
    kept_input = data if keep is None or 0 in keep else None
    result = RunResult(input=kept_input, trace=trace, seed=seed, engine=engine,  # type: ignore[arg-type]
                       device=device or "cpu", input_indices=indices)  # fmt: skip
    given = stage_list.data if isinstance(stage_list, Network) else [None] * len(stage_list)
    pending = {row.unpool_source for row in trace.rows if row.unpool_source is not None}
    sources = reads(trace)
    last_use = last_uses(trace)
    for row in trace.rows:
        showing = keep is None or row.index in keep
        xs = [data if i == 0 else result.results[i - 1].output for i in sources[row.index]]
        try:
            if isinstance(row.stage, st.Merge):
                out = StageResult(row, eng.merge(row.stage.op, xs, dim=row.stage.dim))
            else:
                out = _execute(eng, rng, row, given[row.index - 1], xs[0].reshape(row.effective_input), result, indices,
                               winners=showing)  # fmt: skip
        except LayerError as exc:
            if exc.index is not None:
                raise
            raise LayerError(exc.reason, index=row.index, stage=row.stage.call) from None
        result.results.append(out)
        if keep is not None:
            _drop_unkept(result, row, keep, pending, last_use)
    return result


def check_run_memory(trace: Trace, keep: Collection[int] | None, reserve: int, max_memory: int | None) -> None:
    """Refuse a run whose estimated peak memory is above ``max_memory`` (None: the default budget)."""
    estimate = estimate_peak(trace, keep=keep, reserve=reserve)
    if estimate.stage > len(trace.rows):
        where = " (with its result written or shown)"
    else:
        where = f" (at stage {estimate.stage} {trace.rows[estimate.stage - 1].stage.call})" if estimate.stage else ""
    kept = " keeping every intermediate tensor" if keep is None and len(trace.rows) > 1 else ""
    check_memory(estimate.bytes, max_memory, f"this run{kept}{where}", "use a smaller input")


def reads(trace: Trace) -> dict[int, tuple[int, ...]]:
    """The outputs each stage really reads. As in PyTorch, an in-place stage (``ReLU(inplace=True)``)
    overwrites the tensor it reads: a later stage that reads that tensor (``Add(@1)`` after
    ``ReLU(inplace=True)(@1)``) gets the overwritten values, that is, the in-place stage's output."""
    latest: dict[int, int] = {}  # an output → the in-place stage whose result now lives in its storage
    out: dict[int, tuple[int, ...]] = {}
    for row in trace.rows:
        out[row.index] = tuple(latest.get(i, i) for i in row.inputs)
        if in_place(row.stage) and row.inputs:
            storage = out[row.index][0]
            for key, value in list(latest.items()):
                if value == storage:
                    latest[key] = row.index
            latest[row.inputs[0]] = latest[storage] = row.index
    return out


def in_place(stage: st.Stage) -> bool:
    """A stage that writes its result into the tensor it reads (an activation with ``inplace=True``)."""
    return isinstance(stage, st.Activation) and bool(stage.option("inplace", False))


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
            res.output = res.weight = res.bias = res.winners = None  # type: ignore[assignment]
            if source not in pending:
                res.indices = None


def _fan_in_bound(fan_in: int) -> tuple[float, float]:
    """PyTorch's bounds: kaiming_uniform_(a=√5) for the weight, 1/√fan_in for the bias."""
    if fan_in <= 0:
        return 0.0, 0.0
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    return weight_bound, 1 / math.sqrt(fan_in)


def _parameters(rng: Any, stage: Any, given: LayerData | None, result: RunResult) -> tuple[np.ndarray, np.ndarray | None]:
    """The weight and bias of a conv or linear stage: given ones, else PyTorch's default init.

    Default draws happen in layer order, weight then bias, as ``torch.manual_seed(seed)`` and
    building the model would: the same seed gives the same numbers as PyTorch."""
    import numpy as np

    from cnnops.io.weights import resolve_bias, resolve_weight

    given = given or LayerData()
    weight_shape, fan_in = stage.weight_shape(), stage.fan_in()
    out_features = weight_shape[1] * stage.groups if isinstance(stage, st.ConvTranspose) else weight_shape[0]
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
             indices: np.ndarray | None, *, winners: bool = True) -> StageResult:  # fmt: skip
    import numpy as np

    stage = row.stage
    if isinstance(stage, st.Conv):
        weight, bias = _parameters(rng, stage, given, result)
        out = eng.conv(
            x, weight, bias, nd=stage.nd, stride=stage.stride, pads=stage.pads(),
            dilation=stage.dilation, groups=stage.groups, padding_mode=stage.padding_mode,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if isinstance(stage, st.ConvTranspose):
        weight, bias = _parameters(rng, stage, given, result)
        out = eng.conv_transpose(
            x, weight, bias, nd=stage.nd, stride=stage.stride, padding=stage.padding,
            output_padding=stage.output_padding, groups=stage.groups, dilation=stage.dilation,
        )  # fmt: skip
        return StageResult(row, out, weight=weight, bias=bias)
    if isinstance(stage, st.Linear):
        weight, bias = _parameters(rng, stage, given, result)
        return StageResult(row, eng.linear(x, weight, bias), weight=weight, bias=bias)
    if isinstance(stage, st.Pool):
        if stage.mode == "max":
            out, idx = eng.max_pool(
                x, nd=stage.nd, kernel_size=stage.kernel_size, stride=stage.stride, padding=stage.padding,
                dilation=stage.dilation, ceil_mode=stage.ceil_mode,
            )  # fmt: skip
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if winners else None
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
            mask = winner_mask(x, idx, stage.nd).reshape(row.input_shape) if winners else None
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
    if isinstance(stage, st.PReLU):
        weight = np.full(stage.num_parameters, stage.init, dtype=np.float32)  # PyTorch's fill_(init)
        return StageResult(row, eng.prelu(x, weight), weight=weight)
    if isinstance(stage, st.GLU):
        return StageResult(row, eng.glu(x, stage.dim))
    if isinstance(stage, st.Activation):
        return StageResult(row, eng.activation(stage.name, x, dict(stage.options)))
    if isinstance(stage, st.BatchNorm):
        return StageResult(row, eng.batch_norm(x, eps=stage.eps, batch_stats=not stage.track_running_stats))
    if isinstance(stage, st.LayerNorm):
        out = eng.layer_norm(x, normalized_ndim=len(stage.normalized_shape), eps=stage.eps,
                             affine=stage.elementwise_affine)  # fmt: skip
        return StageResult(row, out)
    if isinstance(stage, st.GroupNorm):
        return StageResult(row, eng.group_norm(x, num_groups=stage.num_groups, eps=stage.eps, affine=stage.affine))
    if isinstance(stage, st.InstanceNorm):
        out = eng.instance_norm(x, nd=stage.nd, eps=stage.eps, input_stats=not stage.track_running_stats,
                                affine=stage.affine)  # fmt: skip
        return StageResult(row, out)
    if isinstance(stage, st.LocalResponseNorm):
        out = eng.local_response_norm(x, size=stage.size, alpha=stage.alpha, beta=stage.beta, k=stage.k)
        return StageResult(row, out)
    if isinstance(stage, st.Pad):
        return StageResult(row, eng.pad(x, padding=stage.padding, mode=stage.mode, value=stage.value))
    if isinstance(stage, st.Upsample):
        out = eng.upsample(
            x, output_size=row.output_shape[2:], size=stage.size, scale_factor=stage.scale_factor, mode=stage.mode,
            align_corners=stage.align_corners, recompute_scale_factor=stage.recompute_scale_factor,
        )  # fmt: skip
        return StageResult(row, out)
    if isinstance(stage, st.PixelShuffle):
        return StageResult(row, eng.pixel_shuffle(x, factor=stage.factor, unshuffle=stage.unshuffle))
    if isinstance(stage, st.ChannelShuffle):
        return StageResult(row, eng.channel_shuffle(x, groups=stage.groups))
    if isinstance(stage, st.Unflatten):
        return StageResult(row, np.ascontiguousarray(x).reshape(row.output_shape))
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
