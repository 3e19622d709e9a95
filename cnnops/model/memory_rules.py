"""What each kind of stage makes PyTorch keep in memory: the tensors autograd saves for backward in a
training forward, and the tensors a no-grad forward allocates — per stage class, from PyTorch 2.13 on the CPU.

Every rule here was read off torch itself (``torch.autograd.graph.saved_tensors_hooks`` for what is saved,
a ``TorchDispatchMode`` that follows every tensor for what is allocated) and is checked against it by
``tests/planner``. A stage class, layer name or dimensionality without a verified rule is refused by
:func:`effects` — a wrong memory figure is worse than none. The facts, in short:

- Conv1d/2d saves its input; with padding='same' and an even span ``d·(k−1)`` on some axis PyTorch first pads a
  copy (``constant_pad_nd``) and saves that instead; reflect/replicate padding saves the input (when it needs
  a gradient) and the padded copy, circular only the padded copy. ConvTranspose1d/2d and Linear save their input.
- Max pooling (and adaptive max pooling) saves its input and int64 indices; average pooling its input;
  adaptive average pooling to 1 (×1) is a mean and saves nothing. MaxUnpool saves the max pool's indices.
- ReLU, Sigmoid, Tanh, Softmax and LogSoftmax save their output; ReLU6, LeakyReLU, ELU, GELU, SiLU, Mish,
  Hardswish and Softplus their input. In place, ReLU, LeakyReLU and ELU save the overwritten tensor; ReLU6,
  SiLU, Mish and Hardswish save a copy of their input.
- Dropout on the CPU saves its scaled mask in the activation's dtype (``input * mask``; CUDA's fused kernel
  keeps a bool mask instead): one value per element, per channel for Dropout1d/2d; p=1 saves a 0-d zero.
- BatchNorm saves its input, the batch mean and inverse std, and (tracking) the running mean and variance.
- Mul saves both operands; Add, Cat, Flatten and Identity save nothing.
Nothing is saved where no input needs a gradient and the stage has no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import field

from cnnops.errors import LayerError
from cnnops.model.stages import (
    Activation,
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Flatten,
    Linear,
    Merge,
    Passthrough,
    Pool,
    Shape,
    Stage,
    Unpool,
)
from cnnops.records import record
from cnnops.text import dims  # fmt: skip

INDEX_BYTES = 8  # int64 indices of max pooling

#: activations by what they save: their output, or their input
SAVES_OUTPUT = frozenset({"ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"})
SAVES_INPUT = frozenset({"ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Softplus"})
#: in place, these save the overwritten tensor (shared with input and output) …
INPLACE_SHARED = frozenset({"ReLU", "LeakyReLU", "ELU"})
#: … and these a copy of their input, made before it is overwritten
INPLACE_COPY = frozenset({"ReLU6", "SiLU", "Mish", "Hardswish"})
DROPOUTS = frozenset({"Dropout", "Dropout1d", "Dropout2d"})


@record(frozen=True)
class Saved:
    """One tensor autograd keeps: ``source`` says whose storage it is — ``input`` (number ``ref``),
    ``output``, ``indices`` (a max pool's), ``buffer`` (running statistics) or ``fresh`` (``nbytes`` of its own)."""

    what: str
    source: str
    ref: int = 0
    nbytes: int = 0


#: one operation of a no-grad forward: tensors it allocates (key, bytes) and temporaries freed after it
Op = tuple[tuple[tuple[str, int], ...], tuple[str, ...]]


@record(frozen=True)
class Context:
    stage: Stage
    index: int
    inputs: tuple[Shape, ...]  # as the layer computes on them (rank rule, implicit flatten applied)
    output: Shape
    requires_grad: tuple[bool, ...]  # per input, in a training forward
    itemsize: int
    keeps_indices: bool  # a MaxUnpool reads this max pool's indices
    paired_pool: int | None = None  # the max pool whose indices a MaxUnpool reads

    def nbytes(self, shape: Shape) -> int:
        return math.prod(shape) * self.itemsize

    @property
    def out_bytes(self) -> int:
        return self.nbytes(self.output)


@record
class Effects:
    saved: list[Saved] = field(default_factory=list)
    eval_ops: list[Op] = field(default_factory=list)
    has_params: bool = False
    train_alias: bool = False  # the output is input 0's storage in a training forward
    eval_alias: bool = False  # … in a no-grad forward in eval mode
    inplace: bool = False  # overwrites input 0 (autograd fails if it saved that tensor before)
    indices_bytes: int = 0  # int64 indices a max pool makes
    buffers_bytes: int = 0
    training_error: str | None = None  # PyTorch refuses this stage in a training forward
    backward_error: str | None = None  # the forward runs, but PyTorch's backward through this stage fails


def _new_output(ctx: Context, *temporaries: tuple[str, int]) -> list[Op]:
    """The output allocated with ``temporaries`` that die right after it."""
    return [((("out", ctx.out_bytes), *temporaries), tuple(name for name, _ in temporaries))]


def _padded_first(ctx: Context, padded: int) -> list[Op]:
    return [((("padded", padded),), ()), ((("out", ctx.out_bytes),), ("padded",))]


def _conv(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, Conv)
    x = ctx.inputs[0]
    lead, lengths = x[: -stage.nd], x[-stage.nd :]
    pads = stage.pads()
    if stage.padding_mode == "zeros":
        if stage.padding == "same" and any(right != left for left, right in pads):
            # convolution_same pads the asymmetric axes by their extra element in a copy, then convolves
            padded = ctx.nbytes(lead + tuple(n + right - left for n, (left, right) in zip(lengths, pads)))
            return Effects([Saved("padded copy of the input", "fresh", nbytes=padded)], _padded_first(ctx, padded),
                           has_params=True)  # fmt: skip
        return Effects([Saved("input", "input")], _new_output(ctx), has_params=True)
    # reflect, replicate, circular: F.pad makes the padded copy the convolution reads
    padded = ctx.nbytes(lead + tuple(n + left + right for n, (left, right) in zip(lengths, pads)))
    saved = [Saved("padded copy of the input", "fresh", nbytes=padded)]
    if stage.padding_mode != "circular" and ctx.requires_grad[0]:
        saved.insert(0, Saved("input", "input"))  # reflection/replication padding keeps its input
    return Effects(saved, _padded_first(ctx, padded), has_params=True)


def _conv_transpose(ctx: Context) -> Effects:
    return Effects([Saved("input", "input")], _new_output(ctx), has_params=True)


def _linear(ctx: Context) -> Effects:
    return Effects([Saved("input", "input")], _new_output(ctx), has_params=True)


def _max_indices(ctx: Context) -> Effects:
    indices = math.prod(ctx.output) * INDEX_BYTES
    saved = [Saved("input", "input"), Saved("indices", "indices")] if ctx.requires_grad[0] else []
    frees: tuple[str, ...] = () if ctx.keeps_indices else ("indices",)
    ops: list[Op] = [((("out", ctx.out_bytes), ("indices", indices)), frees)]
    return Effects(saved, ops, indices_bytes=indices)


def _pool(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, Pool)
    if stage.mode == "max":
        return _max_indices(ctx)
    return Effects([Saved("input", "input")] if ctx.requires_grad[0] else [], _new_output(ctx))


def _adaptive_pool(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, AdaptivePool)
    if stage.mode == "max":
        return _max_indices(ctx)
    # adaptive average pooling to 1 (×1) is computed as a mean, whose backward needs only sizes
    mean = all(n == 1 for n in stage.resolved(ctx.inputs[0]))
    return Effects([Saved("input", "input")] if ctx.requires_grad[0] and not mean else [], _new_output(ctx))


def _unpool(ctx: Context) -> Effects:
    if ctx.paired_pool is None:
        raise LayerError("MaxUnpool without a max pool before it reads indices from outside the network — "
                         "cnnops plans memory only for networks whose indices come from their own max pool")  # fmt: skip
    return Effects([Saved("indices of the max pool", "indices")] if ctx.requires_grad[0] else [], _new_output(ctx))


def _flatten(ctx: Context) -> Effects:
    return Effects(train_alias=True, eval_alias=True)


def _activation(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, Activation)
    name, grad = stage.name, ctx.requires_grad[0]
    if name not in SAVES_OUTPUT | SAVES_INPUT:
        raise LayerError(f"cnnops has no verified rule for what autograd saves in {name}")
    if stage.option("inplace", False):
        if name in INPLACE_SHARED:
            saved = [Saved("overwritten input (= output)", "input")] if grad else []
            slope = {"LeakyReLU": ("negative_slope", 0.01), "ELU": ("alpha", 1.0)}.get(name)
            if grad and slope is not None and stage.option(*slope) < 0:
                # the backward of leaky_relu_/elu_ cannot recover the input from a result with a negative slope
                return Effects(saved, train_alias=True, eval_alias=True, inplace=True, backward_error=(
                    f"{name}(inplace=True) with {slope[0]}={stage.option(*slope)} < 0 makes PyTorch's backward fail ('In-place "
                    f"{'leakyReLu' if name == 'LeakyReLU' else 'elu'} backward calculation is triggered with a "
                    "negative slope which is not supported') — use inplace=False"))  # fmt: skip
        elif name in INPLACE_COPY:
            saved = [Saved("copy of the input", "fresh", nbytes=ctx.nbytes(ctx.inputs[0]))] if grad else []
        else:
            raise LayerError(f"cnnops has no verified rule for {name}(inplace=True)")
        return Effects(saved, train_alias=True, eval_alias=True, inplace=True)
    what = Saved("output", "output") if name in SAVES_OUTPUT else Saved("input", "input")
    return Effects([what] if grad else [], _new_output(ctx))


def _passthrough(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, Passthrough)
    if stage.name == "Identity":
        return Effects(train_alias=True, eval_alias=True)
    if stage.name not in DROPOUTS:
        raise LayerError(f"cnnops has no verified rule for what autograd saves in {stage.name}")
    if stage.p == 0:  # returns its input untouched
        return Effects(train_alias=True, eval_alias=True)
    x = ctx.inputs[0]
    if stage.name == "Dropout2d" and len(x) < 2 and stage.p < 1:  # eval mode keeps any rank
        refused = (f"in training, Dropout2d needs at least 2 dimensions, but its input {dims(x)} is {len(x)}-D (PyTorch "
                   "raises 'Feature dropout requires at least 2 dimensions') — use Dropout")  # fmt: skip
        return Effects(train_alias=stage.inplace, eval_alias=True, inplace=stage.inplace, training_error=refused)
    if stage.p == 1:
        mask = ctx.itemsize  # input * 0-d zero
    elif stage.name == "Dropout":
        mask = ctx.nbytes(x)
    elif stage.name == "Dropout1d" and len(x) == 2:
        mask = x[0] * ctx.itemsize  # an unbatched (C, L) is taken as (1, C, L)
    else:
        mask = x[0] * x[1] * ctx.itemsize  # one value per (sample, channel)
    saved = [Saved("dropout mask", "fresh", nbytes=mask)] if ctx.requires_grad[0] else []
    return Effects(saved, train_alias=stage.inplace, eval_alias=True, inplace=stage.inplace)


def _batchnorm(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, BatchNorm) and stage.num_features is not None
    x = ctx.inputs[0]
    channels = stage.num_features * ctx.itemsize
    track = stage.track_running_stats
    saved: list[Saved] = []
    if stage.affine or ctx.requires_grad[0]:
        saved = [Saved("input", "input"), Saved("batch mean and inverse std", "fresh", nbytes=2 * channels)]
        if track:
            saved.append(Saved("running mean and variance", "buffer", nbytes=2 * channels))
    # without running statistics, eval mode also computes (and drops) the batch statistics
    ops = _new_output(ctx) if track else _new_output(ctx, ("batch statistics", 2 * channels))
    refused = None
    if x[0] * math.prod(x[2:]) <= 1:
        refused = (f"in training, BatchNorm needs more than 1 value per channel, but its input {dims(x)} has 1 "
                   "(PyTorch raises) — use a batch of 2 or more")  # fmt: skip
    return Effects(saved, ops, has_params=stage.affine, buffers_bytes=2 * channels + INDEX_BYTES if track else 0,
                   training_error=refused)  # fmt: skip


def _broadcast(a: Shape, b: Shape) -> Shape:
    rank = max(len(a), len(b))
    pa, pb = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    return tuple(max(x, y) for x, y in zip(pa, pb))


def _merge(ctx: Context) -> Effects:
    stage = ctx.stage
    assert isinstance(stage, Merge)
    if stage.op == "cat":
        return Effects(eval_ops=_new_output(ctx))
    # a + b + c is evaluated left to right: each intermediate lives until the next one is made
    ops: list[Op] = []
    saved: list[Saved] = []
    shape, grad, previous = ctx.inputs[0], ctx.requires_grad[0], None
    for k in range(1, len(ctx.inputs)):
        shape = _broadcast(shape, ctx.inputs[k])
        last = k == len(ctx.inputs) - 1
        name = "out" if last else f"partial {k}"
        if stage.op == "mul":
            # a * b keeps a when b needs a gradient and b when a does
            left = Saved("input", "input", ref=0) if previous is None else Saved(
                "intermediate product", "fresh", nbytes=previous[1])  # fmt: skip
            if ctx.requires_grad[k]:
                saved.append(left)
            if grad:
                saved.append(Saved("input", "input", ref=k))
        ops.append((((name, ctx.nbytes(shape)),), (previous[0],) if previous else ()))
        previous, grad = (name, ctx.nbytes(shape)), grad or ctx.requires_grad[k]
    return Effects(saved, ops)


RULES: dict[type[Stage], Callable[[Context], Effects]] = {
    Conv: _conv, ConvTranspose: _conv_transpose, Linear: _linear, Pool: _pool, AdaptivePool: _adaptive_pool,
    Unpool: _unpool, Flatten: _flatten, Activation: _activation, Passthrough: _passthrough, BatchNorm: _batchnorm,
    Merge: _merge,
}  # fmt: skip
#: the layers (by stage class) whose rules were checked against torch; another layer built from one of these
#: classes (a 3-D variant, say) is refused until its rule is checked too
VERIFIED_NAMES: dict[type[Stage], frozenset[str]] = {
    Conv: frozenset({"Conv1d", "Conv2d"}), ConvTranspose: frozenset({"ConvTranspose1d", "ConvTranspose2d"}),
    Linear: frozenset({"Linear"}), Pool: frozenset({"MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"}),
    AdaptivePool: frozenset({"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"}),
    Unpool: frozenset({"MaxUnpool1d", "MaxUnpool2d"}), Flatten: frozenset({"Flatten"}),
    Activation: SAVES_OUTPUT | SAVES_INPUT, Passthrough: DROPOUTS | {"Identity"},
    BatchNorm: frozenset({"BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d", "LazyBatchNorm2d"}),
    Merge: frozenset({"Add", "Mul", "Cat"}),
}  # fmt: skip


def verified(stage: Stage) -> bool:
    """A stage whose class and layer name cnnops has checked against torch."""
    names = VERIFIED_NAMES.get(type(stage))
    return names is not None and stage.name in names and (not isinstance(stage, Merge) or stage.op in ("add", "mul", "cat"))


def effects(ctx: Context) -> Effects:
    """The stage's memory effects, or a LayerError when cnnops has no verified rule for it."""
    rule = RULES.get(type(ctx.stage))
    if rule is None or not verified(ctx.stage):
        raise LayerError(
            f"cnnops has no verified memory rule for {ctx.stage.name} yet (what autograd saves for it has not "
            "been checked against PyTorch), so it cannot plan this network's memory"
        )
    return rule(ctx)
