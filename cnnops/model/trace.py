"""The shape model: an input shape through a network of stages, row by row, exactly as PyTorch would.

One model serves ``cnnops shape``, ``run`` and the single-op commands. Stages form a DAG (a chain is
the special case): each row reads the outputs its stage names. It applies the rank rule, inserts the
implicit flatten before a Linear that follows a spatial tensor, pairs each MaxUnpool with its max pool,
carries the receptive field across branches, and stops at the first stage PyTorch would reject,
keeping the rows before it.

>>> from cnnops.spec import parse_stages
>>> trace = trace_shapes((1, 1, 5, 5), parse_stages(["Conv2d(1, 1, 3)", "ReLU", "MaxPool2d(2, stride=1)"]))
>>> trace.output_shape
(1, 1, 2, 2)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import field
from typing import Any

from cnnops.errors import CnnopsError, InputError, LayerError
from cnnops.model import stages as st
from cnnops.model.arithmetic import Formula
from cnnops.model.network import Network
from cnnops.model.stages import ReceptiveField, Shape, Stage, fmt_shape
from cnnops.records import record

MAX_DIMS = 8
MAX_DIM_SIZE = 2**31 - 1
MAX_RANK = 64  # NumPy's limit on the number of dimensions


@record
class Row:
    """What one stage does to the tensor."""

    index: int
    stage: Stage
    input_shape: Shape  # as the stage received it, before the rank rule or implicit flatten
    output_shape: Shape
    formulas: list[Formula] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    receptive_field: tuple[ReceptiveField, ...] | None = None
    promoted_shape: Shape | None = None  # after the rank rule added leading 1s
    flattened_shape: Shape | None = None  # after the implicit flatten before a Linear
    unpool_source: int | None = None  # index of the max pool whose indices a MaxUnpool uses
    notes: list[str] = field(default_factory=list)
    inputs: tuple[int, ...] = ()  # the stages whose outputs it reads (0: the network input)
    label: str | None = None
    input_shapes: tuple[Shape, ...] = ()  # a merge's inputs, in order
    sized_from_input: bool = False  # a Lazy layer (``bn``) took its size from its input
    shares: int | None = None  # the stage whose parameters it reuses (counted there, not here)
    assumed: str | None = None  # what the model's reader took as given (print(model)'s hidden settings)

    @property
    def reads_previous(self) -> bool:
        return self.inputs in ((), (self.index - 1,))

    @property
    def effective_input(self) -> Shape:
        """The shape the layer itself computes on."""
        return self.flattened_shape or self.promoted_shape or self.input_shape

    def as_dict(self, *, graph: bool = False) -> dict[str, Any]:
        """The ``--json`` stage object; ``graph`` adds ``"inputs"`` (the network is not a chain)."""
        doc: dict[str, Any] = {
            "index": self.index,
            "stage": self.stage.torch_repr(),
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "receptive_field": [r.as_dict() for r in self.receptive_field] if self.receptive_field else None,
            "formulas": [
                {"dim": f.dim, "formula": f"{f.expression} = {f.steps}", "result": f.result, "note": f.note or None}
                for f in self.formulas
            ],
        }
        for name, shape in self.stage.param_shapes():  # "weight_shape", "bias_shape"
            doc[f"{name}_shape"] = list(shape)
        if self.promoted_shape:
            doc["rank_rule_shape"] = list(self.promoted_shape)
        if self.flattened_shape:
            doc["implicit_flatten"] = True
            doc["flattened_shape"] = list(self.flattened_shape)
        if self.unpool_source is not None:
            doc["indices_from_stage"] = self.unpool_source
        if graph:
            doc["inputs"] = list(self.inputs)
        if self.label is not None:
            doc["label"] = self.label
        if self.sized_from_input:
            doc["sized_from_input"] = True
        if self.shares is not None:
            doc["shares_params_of"] = self.shares
        if self.stage.kind == "measured":
            doc["measured_by"] = self.stage.source  # type: ignore[attr-defined]
        if self.notes:
            doc["notes"] = self.notes
        return doc


@record
class Trace:
    """Every row up to the output, or up to the stage PyTorch rejects (then ``error`` is set)."""

    input_shape: Shape
    rows: list[Row]
    error: CnnopsError | None = None
    #: the stages form a graph (some stage reads other than the previous output)
    graph: bool = False
    #: what the reader of a model said about the whole network (unused layers, shared weights…)
    notes: list[str] = field(default_factory=list)

    @property
    def output_shape(self) -> Shape:
        return self.rows[-1].output_shape if self.rows else self.input_shape

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def output_elements(self) -> int:
        return math.prod(self.output_shape)

    @property
    def activation_bytes(self) -> int:
        """float32 bytes of the input and every stage's output, as a forward pass keeping them holds."""
        return 4 * (math.prod(self.input_shape) + sum(math.prod(r.output_shape) for r in self.rows))

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def as_dict(self) -> dict[str, Any]:
        doc = {
            "input_shape": list(self.input_shape),
            "stages": [r.as_dict(graph=self.graph) for r in self.rows],
            "output_shape": list(self.output_shape),
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "output_elements": self.output_elements,
            "activation_bytes": self.activation_bytes,
        }
        return doc | ({"notes": self.notes} if self.notes else {})


def parse_shape(text: str) -> Shape:
    """``1x3x224x224`` (also ``3x224x224``, ``1,3,224,224``, ``(1, 3, 224, 224)``) → a tuple.

    >>> parse_shape("1x3x224x224")
    (1, 3, 224, 224)
    """
    cleaned = text.strip().strip("()[]").strip()
    parts = [p for p in re.split(r"\s*[x×,*]\s*|\s+", cleaned) if p != ""]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise InputError(
            f"cannot read the shape '{text[:60]}' — write it like 1x3x224x224 (N×C×H×W) or 3x224x224"
        )
    if len(parts) > MAX_DIMS:
        raise InputError(f"the shape '{text[:60]}' has {len(parts)} dimensions; cnnops handles at most {MAX_DIMS}")
    if any(len(p.lstrip("0")) > len(str(MAX_DIM_SIZE)) for p in parts):  # int() refuses > 4300 digits
        raise InputError(f"the shape '{text[:60]}' has a dimension over {MAX_DIM_SIZE}")
    shape = tuple(int(p) for p in parts)
    if any(n == 0 for n in shape):
        raise InputError(f"the shape '{text[:60]}' has a zero dimension — every dimension must be at least 1")
    if any(n > MAX_DIM_SIZE for n in shape):
        raise InputError(f"the shape '{text[:60]}' has a dimension over {MAX_DIM_SIZE}")
    return shape


@record
class _Pool:
    """A pool that returned indices: where an unpool finds its sizes."""

    index: int
    nd: int
    input_shape: Shape
    output_shape: Shape


@record
class _Output:
    """What the model knows of one output (the input is output 0) while it walks the network."""

    shape: Shape
    spatial_nd: int = 0  # came out of a spatial stage of this many dims (0: not spatial)
    rf: tuple[ReceptiveField, ...] | None = None  # None: no sliding window yet, or no longer one
    rf_broken: bool = False
    ancestors: frozenset[int] = frozenset()


#: a printed model shows layers but not forward(); a shape mismatch there is a hint that forward()
#: does something the text does not show
PRINTED_HINT = (
    "the printed text shows the layers but not forward(), which may pool, reshape, branch or call functions "
    "between them; write the network with cnnops' graph syntax (labels, @refs, Add/Cat) or size it from "
    "its code"
)


def trace_shapes(input_shape: Shape, stages: Sequence[Stage]) -> Trace:
    """Run the shape model over a chain of stages or a :class:`~cnnops.model.network.Network`; never
    raises for a layer error (it is kept in ``Trace.error``)."""
    network = stages if isinstance(stages, Network) else Network(stages)
    rows: list[Row] = []
    wiring = network.resolve()  # a reference that points nowhere is a mistake in the text: SpecError
    outputs = [_Output(tuple(input_shape))]
    pools: list[_Pool] = []
    for index, (node, inputs) in enumerate(zip(network.nodes, wiring, strict=True), 1):
        stage = node.stage
        sources = [outputs[i] for i in inputs]
        row = Row(index=index, stage=stage, input_shape=sources[0].shape, output_shape=sources[0].shape,
                  inputs=inputs, label=node.label)  # fmt: skip
        try:
            if st.loaded("Merge") and isinstance(stage, st.Merge):  # (a layer's module is imported when it is met)
                row.input_shapes = tuple(s.shape for s in sources)
                names = ["the network input" if i == 0 else f"stage {i}'s output" for i in inputs]
                formulas: list[Formula] = []
                out, effective = stage.merge_shapes(list(row.input_shapes), names), sources[0].shape
            else:
                if len(sources) != 1:
                    raise LayerError(f"reads {len(sources)} outputs, but only Add, Mul and Cat merge several — "
                                     "apply it to one: Stage(…)(@a)")  # fmt: skip
                out, formulas, effective = _evaluate(stage, row, sources[0], pools, index, exact=network.exact)
                stage = row.stage  # a Lazy layer is now sized
        except LayerError as exc:
            reason = exc.reason
            if network.printed and exc.fix is not None:
                reason = f"{exc.bare} — {PRINTED_HINT}"
            return Trace(tuple(input_shape), rows, LayerError(reason, index=index, stage=node.text()),
                         graph=not network.is_chain, notes=network.notes)  # fmt: skip
        row.output_shape, row.formulas = out, formulas
        row.params = stage.params()
        if node.shares is not None:
            row.shares, row.params = node.shares, 0
            row.notes.append(f"reuses the parameters of stage {node.shares} (counted there)")
        if node.note:
            row.assumed = node.note
            row.notes.append(node.note)
        if stage.kind == "measured":
            row.notes.append(f"shape and parameters measured by {stage.source}; cnnops has no stage for it")  # type: ignore[attr-defined]
        row.macs = stage.macs(effective, out)
        row.notes.extend(f"{f.dim}: {f.note}" for f in formulas if f.note)
        if stage.kind in ("pool", "adaptive_pool") and getattr(stage, "mode", "") == "max":
            pools.append(_Pool(index, stage.nd, effective, out))
        result = _Output(out, ancestors=frozenset(inputs).union(*(s.ancestors for s in sources)))
        result.rf, result.rf_broken = _receptive_field(stage, sources, row)
        row.receptive_field = result.rf
        if stage.spatial:
            result.spatial_nd = stage.output_spatial_nd(out, sources[0].spatial_nd)
        elif stage.keeps_layout:
            result.spatial_nd = max(s.spatial_nd for s in sources)
        outputs.append(result)
        rows.append(row)
    return Trace(tuple(input_shape), rows, graph=not network.is_chain, notes=network.notes)


def _evaluate(stage: Stage, row: Row, source: _Output, pools: list[_Pool], index: int,
              exact: bool = False) -> tuple[Shape, list[Formula], Shape]:  # fmt: skip
    """A one-input stage: the rank rule, the implicit flatten, the unpool's pool; (out, formulas, effective).
    ``exact``: the network is model code, which PyTorch runs as written (no rank rule, no implicit flatten)."""
    shape = effective = source.shape
    if stage.min_rank > MAX_RANK:
        raise LayerError(
            f"needs a {stage.min_rank}-D input, but a tensor has at most {MAX_RANK} dimensions — "
            f"use a dimension below {MAX_RANK}"
        )
    if len(effective) < stage.min_rank and not exact:
        effective = (1,) * (stage.min_rank - len(effective)) + effective
        row.promoted_shape = effective
        row.notes.append(f"rank rule: {fmt_shape(shape)} taken as {fmt_shape(effective)}")
    if st.loaded("Linear") and isinstance(stage, st.Linear) and not exact and source.spatial_nd and effective and effective[-1] != stage.in_features:
        flat = _implicit_flatten(effective, source.spatial_nd)
        row.flattened_shape = flat
        row.notes.append(f"implicit flatten: {fmt_shape(effective)} → {fmt_shape(flat)}")
        effective = flat
    materialized = stage.materialize(effective)
    if materialized is not stage:
        row.stage = stage = materialized
        row.sized_from_input = True
    if st.loaded("Unpool") and isinstance(stage, st.Unpool):
        restore = None
        # the nearest max pool before it on its own path whose indices no other unpool took
        pool = next((p for p in reversed(pools) if p.nd == stage.nd and p.index in source.ancestors | {row.inputs[0]}),
                    None)  # fmt: skip
        if pool is not None:
            pools.remove(pool)
            if pool.output_shape != effective:
                raise LayerError(
                    f"uses the indices of the max pool at stage {pool.index}, which output "
                    f"{fmt_shape(pool.output_shape)}, but gets {fmt_shape(effective)} — "
                    "an unpool's input must have the shape of its pool's output"
                )
            row.unpool_source = pool.index
            restore = pool.input_shape[-stage.nd:]
        out, formulas = stage.evaluate(effective, restore=restore)
    else:
        out, formulas = stage.evaluate(effective)
    return out, formulas, effective


def _receptive_field(stage: Stage, sources: list[_Output],
                     row: Row) -> tuple[tuple[ReceptiveField, ...] | None, bool]:  # fmt: skip
    """The receptive field after ``stage``, defined while every path is a chain of sliding windows;
    a merge takes the largest field over its paths and notes paths that disagree in jump or centre."""
    if any(s.rf_broken for s in sources) or stage.kind == "measured":
        return None, True
    fields = [s.rf for s in sources if s.rf is not None]
    if st.loaded("Merge") and isinstance(stage, st.Merge):
        if not fields:
            return None, False
        nd = len(fields[0])
        if any(len(f) != nd for f in fields):
            return None, True
        identity = tuple(ReceptiveField(1, 1, 0.0) for _ in range(nd))
        paths = [s.rf or identity for s in sources]
        merged = tuple(max((p[axis] for p in paths), key=lambda r: r.size) for axis in range(nd))
        if len({tuple((r.jump, r.start) for r in p) for p in paths}) > 1:
            row.notes.append("receptive field: the paths into this merge disagree in jump or centre (a misaligned "
                             "skip); the largest field is shown")  # fmt: skip
        return merged, False
    incoming = rf = fields[0] if fields else None
    if stage.kind in ("conv", "pool", "pad") and rf is None and stage.nd:
        rf = tuple(ReceptiveField(1, 1, 0.0) for _ in range(stage.nd))
    rf = stage.receptive_field(rf, row.effective_input) if rf is not None else None
    # a stage that changes the layout (a window, a linear map, a reshape…) ends the receptive field, and so
    # does one that drops a field it was given (GLU halving a spatial dim)
    broken = rf is None and (not stage.keeps_layout or incoming is not None)
    return rf, broken


def _implicit_flatten(shape: Shape, spatial_nd: int) -> Shape:
    """Batched (N, C, …) keeps N, as ``torch.flatten(x, 1)``; unbatched (C, …) flattens everything."""
    if len(shape) >= spatial_nd + 2:
        return (shape[0], math.prod(shape[1:]))
    return (math.prod(shape),)
