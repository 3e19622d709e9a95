"""The memory a run will need, from the shape model alone: every tensor's size is known before anything
is computed, so a run that would not fit is refused before it starts.

The model follows :func:`~cnnops.run.pipeline.run_pipeline` stage by stage: what is held (the input,
the tensors kept for showing, max-pool indices an unpool still needs), plus the stage's output, its
indices and weights, plus the engine's working memory for that kind of stage. The engine factors are
upper bounds measured with tracemalloc on the NumPy engine (``tests/test_reliability.py`` checks
that the estimate stays above what the engines really use).

>>> from cnnops.spec import parse_stages
>>> from cnnops.model.trace import trace_shapes
>>> trace = trace_shapes((1, 1, 1024, 1024), parse_stages(["ReLU", "ReLU", "ReLU"]))  # 4 MiB tensors
>>> estimate_peak(trace).bytes // 2**20, estimate_peak(trace, keep=()).bytes // 2**20
(30, 26)
"""

from __future__ import annotations

import math
from collections.abc import Collection

from cnnops.model import stages as st
from cnnops.model.trace import Row, Trace
from cnnops.records import record

FLOAT = 4  # bytes of a float32 element
INDEX = 8  # bytes of an int64 max-pool index
#: working memory of an engine for one stage: ``factor × (input + output bytes) + fixed`` bytes
WORKSPACE = {
    "activation": (1.5, 2 * 2**20),  # the smooth ones go through float64 in blocks of 2**15
    "softmax": (4.0, 0),
    "pool": (1.0, 32 * 2**20),  # bands of rows: a padded band and a few band-sized temporaries
    "adaptive_pool": (24.0, 0),
    "unpool": (3.0, 0),
    "conv": (1.0, 64 * 2**20),  # the padded input, and a band's im2col columns
    "conv_transpose": (8.0, 48 * 2**20),
    "linear": (3.0, 0),
    "batchnorm": (1.5, 0),
    "flatten": (1.0, 0),
    "passthrough": (1.0, 0),
    "merge": (1.0, 0),  # a broadcast Add/Mul or a Cat writes its output once
}
SOFTMAX = ("Softmax", "LogSoftmax", "Softmin")


@record(frozen=True)
class Estimate:
    """The most memory a run holds at once, and the stage where it does (0: before the first stage;
    one past the last: afterwards, while its result is written or shown)."""

    bytes: int
    stage: int


#: working memory of a fused conv → element-wise → pool chain beyond its conv's input: a round of rows and
#: a band's columns (the conv's and element-wise stages' outputs never exist whole)
FUSED_WORKSPACE = 64 * 2**20


def estimate_peak(trace: Trace, *, keep: Collection[int] | None = None, reserve: int = 0,
                  fused: Collection[int] = ()) -> Estimate:  # fmt: skip
    """The peak memory of running ``trace`` when the tensors at ``keep`` (0 the input, k stage k; None:
    every one) are kept for showing, plus ``reserve`` bytes the caller needs for the kept result (text,
    pictures). The input is counted for the whole run: whoever passed it in holds it. ``fused``: the
    stages whose outputs a fused chain never makes whole (its conv and element-wise stages)."""
    sizes = [math.prod(trace.input_shape)] + [math.prod(row.output_shape) for row in trace.rows]
    last = len(trace.rows)
    needed_indices = {row.unpool_source: row.index for row in trace.rows if row.unpool_source is not None}
    last_use: dict[int, int] = {}
    for row in trace.rows:
        for i in row.inputs or (row.index - 1,):
            last_use[i] = row.index
    held: dict[int, int] = {0: FLOAT * sizes[0]}
    best = Estimate(held[0], 0)
    for row in trace.rows:
        k = row.index
        sources = row.inputs or (k - 1,)
        read = sum(sizes[i] for i in sources)
        kept = keep is None or k in keep or k == last
        output, indices, weights = _stage_bytes(row, read, sizes[k], keep is None or k in keep)
        work = workspace(row, read, sizes[k])
        if k in fused:  # inside a fused chain: rows in bands, no whole output
            first = not any(i in fused for i in sources)
            output, work = 0, (FLOAT * read + FUSED_WORKSPACE if first else 0)
        elif any(i in fused for i in sources):  # the pool that ends a fused chain reads bands
            work = WORKSPACE["pool"][1]
        during = sum(held.values()) + output + indices + 2 * weights + work
        if during > best.bytes:
            best = Estimate(during, k)
        # after the stage: its output (and what else is kept) is held; an output nobody shows goes once
        # the last stage that reads it has run (in a chain, the previous one)
        held[k] = output + (indices if kept or k in needed_indices else 0) + (weights if kept else 0)
        for source in set(sources):
            if source and keep is not None and source not in keep and last_use.get(source) == k:
                held[source] = INDEX * sizes[source] if needed_indices.get(source, 0) > k else 0
        unpooled = row.unpool_source
        if unpooled is not None and keep is not None and unpooled not in keep:
            held[unpooled] = 0  # the unpool has used the indices
    after = sum(held.values()) - (held[0] if keep is not None and 0 not in keep else 0) + reserve
    return best if best.bytes >= after else Estimate(after, last + 1)


def workspace(row: Row, inputs: int, outputs: int) -> int:
    """Bytes an engine may allocate while computing ``row`` beyond its input and output."""
    stage = row.stage
    kind = "softmax" if stage.name in SOFTMAX else stage.kind
    factor, fixed = WORKSPACE.get(kind, (4.0, 0))
    return int(factor * FLOAT * (inputs + outputs)) + fixed


def _stage_bytes(row: Row, inputs: int, outputs: int, showing: bool) -> tuple[int, int, int]:
    """(output, max-pool indices and winner mask, weights and bias) bytes one stage's result holds."""
    stage = row.stage
    indices = 0
    if getattr(stage, "mode", "") == "max" and stage.kind in ("pool", "adaptive_pool"):
        indices = INDEX * outputs + (inputs if showing else 0)  # winners: one byte per input cell
    weights = 0
    if (st.loaded("Conv") and isinstance(stage, st.Conv | st.ConvTranspose)) or (
        st.loaded("Linear") and isinstance(stage, st.Linear)
    ):
        shape = stage.weight_shape()
        weights = 2 * FLOAT * math.prod(shape) if shape else 0  # the bias is never longer than the weight
    return FLOAT * outputs, indices, weights
