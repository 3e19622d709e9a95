"""Linear, Flatten, activations, Dropout/Identity and BatchNorm."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import Shape, Stage, _rank_text, fmt_shape
from cnnops.records import record


@record(frozen=True, kw_only=True)
class Linear(Stage):
    """nn.Linear: the last dimension, in_features → out_features."""

    in_features: int
    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "linear"

    @property
    def min_rank(self) -> int:
        return 1

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.in_features < 0 or self.out_features < 0:
            raise LayerError("in_features and out_features cannot be negative")
        if not shape:
            raise LayerError("expects at least a 1-D input, got a scalar")
        if shape[-1] != self.in_features:
            hint = "add Flatten before it" if len(shape) > 2 and math.prod(shape[1:]) == self.in_features else (
                f"set in_features={shape[-1]}"
            )
            raise LayerError(
                f"expects the last dimension to be in_features={self.in_features}, got {shape[-1]} "
                f"(input {fmt_shape(shape)})",
                fix=hint,
            )
        return shape[:-1] + (self.out_features,), []

    def weight_shape(self) -> Shape:
        return (self.out_features, self.in_features)

    def fan_in(self) -> int:
        return self.in_features

    def bias_shape(self) -> Shape | None:
        return (self.out_features,) if self.bias else None

    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(in_shape[:-1]) * self.in_features * self.out_features

    def torch_repr(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias})"


@record(frozen=True, kw_only=True)
class Flatten(Stage):
    """nn.Flatten: dimensions start_dim…end_dim merged into one."""

    start_dim: int = 1
    end_dim: int = -1
    kind: ClassVar[str] = "flatten"

    @property
    def min_rank(self) -> int:
        return max(d + 1 if d >= 0 else -d for d in (self.start_dim, self.end_dim))

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        rank = max(len(shape), 1)
        dims = []
        for d in (self.start_dim, self.end_dim):
            if not -rank <= d < rank:
                raise LayerError(
                    f"dimension {d} is out of range for a {len(shape)}-D input {fmt_shape(shape)}"
                )
            dims.append(d % rank)
        start, end = dims
        if start > end:
            raise LayerError(f"start_dim {self.start_dim} comes after end_dim {self.end_dim}")
        if not shape:
            return (1,), []
        return shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :], []

    def torch_repr(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


@record(frozen=True, kw_only=True)
class Activation(Stage):
    """Element-wise (and softmax) activations: the shape is kept."""

    options: tuple[tuple[str, Any], ...] = ()
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "activation"

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.name in ("Softmax", "LogSoftmax"):
            dim = self.option("dim")
            rank = max(len(shape), 1)
            if dim is not None and not -rank <= dim < rank:
                raise LayerError(f"dim {dim} is out of range for a {len(shape)}-D input {fmt_shape(shape)}")
        if self.name == "Hardtanh":
            low, high = self.bounds()
            if high <= low:
                raise LayerError(f"max_val ({high}) must be greater than min_val ({low})")
        if self.name == "CELU" and self.option("alpha", 1.0) == 0:
            raise LayerError("alpha cannot be 0 for CELU: it computes x/alpha — use alpha ≠ 0")
        return shape, []

    def bounds(self) -> tuple[float, float]:
        """Hardtanh's (min_val, max_val); the deprecated min_value/max_value win, as in PyTorch."""
        low = self.option("min_value") if self.option("min_value") is not None else self.option("min_val", -1.0)
        high = self.option("max_value") if self.option("max_value") is not None else self.option("max_val", 1.0)
        return low, high

    def torch_repr(self) -> str:
        """PyTorch's repr: each activation's ``extra_repr`` (defaults included where torch shows them)."""
        option = self.option
        quiet_inplace = ("Hardswish", "Hardsigmoid")
        inplace = ["inplace=True"] if option("inplace", False) and self.name not in quiet_inplace else []
        low, high = self.bounds()
        shown = {
            "Hardtanh": [f"min_val={low}", f"max_val={high}"],
            "CELU": [f"alpha={option('alpha', 1.0)}"],
            "Threshold": [f"threshold={option('threshold')}", f"value={option('value')}"],
            "GLU": [f"dim={option('dim', -1)}"],
            "LeakyReLU": [f"negative_slope={option('negative_slope', 0.01)}"],
            "ELU": [f"alpha={option('alpha', 1.0)}"],
            "GELU": [f"approximate={option('approximate', 'none')!r}"],
            "Softplus": [f"beta={option('beta', 1.0)}", f"threshold={option('threshold', 20.0)}"],
            "Softmax": [f"dim={option('dim')}"],
            "LogSoftmax": [f"dim={option('dim')}"],
        }.get(self.name, [])
        return f"{self.name}({', '.join(shown + inplace)})"


@record(frozen=True, kw_only=True)
class PReLU(Activation):
    """``nn.PReLU(num_parameters, init)``: ``x`` where positive, else ``a·x`` with one learnable ``a`` for
    all channels or one per channel (dim 1 of the input)."""

    num_parameters: int = 1
    init: float = 0.25

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        n = self.num_parameters
        if n < 0:
            raise LayerError(f"num_parameters cannot be negative, got {n}")
        if n != 1:
            if not shape:
                raise LayerError(f"with num_parameters={n} it needs at least a 1-D input, got a scalar")
            channels = shape[1] if len(shape) > 1 else 1  # PyTorch's channel dim is dim 1, even unbatched
            if channels != n:
                where = "dim 1" if len(shape) > 1 else "a 1-D input, which counts as 1 channel"
                raise LayerError(
                    f"has num_parameters={n}, one per channel, but the input {fmt_shape(shape)} has {channels} "
                    f"channels ({where})", fix=f"set num_parameters={channels} or 1"
                )  # fmt: skip
        return shape, []

    def params(self) -> int:
        return self.num_parameters

    def torch_repr(self) -> str:
        return f"PReLU(num_parameters={self.num_parameters})"


@record(frozen=True, kw_only=True)
class GLU(Activation):
    """``nn.GLU(dim)``: the first half of ``dim`` times the sigmoid of the second half."""

    dim: int = -1

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if not shape:
            raise LayerError("cannot halve a scalar (0-D input) — GLU needs at least a 1-D input")
        if not -len(shape) <= self.dim < len(shape):
            raise LayerError(
                f"dim {self.dim} is out of range for a {len(shape)}-D input {fmt_shape(shape)} "
                f"(use {-len(shape)} to {len(shape) - 1})"
            )
        dim = self.dim % len(shape)
        if shape[dim] % 2:
            raise LayerError(
                f"halves dimension {dim}, which must be even, but it is {shape[dim]} (input {fmt_shape(shape)})"
            )
        return shape[:dim] + (shape[dim] // 2,) + shape[dim + 1 :], []

    def receptive_field(self, rf, in_shape=()):
        # halving a spatial dim pairs positions half a plane apart: no longer a sliding window
        if rf is None or not in_shape or self.dim % len(in_shape) >= len(in_shape) - len(rf):
            return None
        return rf


@record(frozen=True, kw_only=True)
class Passthrough(Stage):
    """Dropout and Identity: shape and values pass unchanged (evaluation mode)."""

    p: float = 0.5
    inplace: bool = False
    ranks: tuple[int, int | None] = (0, None)
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "passthrough"

    def torch_repr(self) -> str:
        return "Identity()" if self.name == "Identity" else f"{self.name}(p={self.p}, inplace={self.inplace})"

    @property
    def min_rank(self) -> int:
        return self.ranks[0]

    @property
    def max_rank(self) -> int | None:
        return self.ranks[1]

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if not 0 <= self.p <= 1:
            raise LayerError(f"dropout probability has to be between 0 and 1, got {self.p}")
        self.check_rank(shape)
        return shape, []


_BATCHNORM_RANKS = {1: "2-D or 3-D", 2: "4-D (N, C, H, W)", 3: "5-D (N, C, D, H, W)"}


@record(frozen=True, kw_only=True)
class BatchNorm(Stage):
    """nn.BatchNorm1d/2d/3d and their Lazy forms (num_features None until sized)."""

    num_features: int | None  # None: LazyBatchNorm, sized by its first input
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    bias: bool = True
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "batchnorm"

    @property
    def min_rank(self) -> int:
        return 2 if self.nd == 1 else self.nd + 2

    @property
    def max_rank(self) -> int | None:
        return self.nd + 2

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.num_features is None:  # a Lazy layer: sized by this input first
            return self.materialize(shape).evaluate(shape)
        # with affine=False and track_running_stats=False PyTorch keeps no per-channel tensors,
        # so it never looks at num_features at all
        uses_num_features = self.affine or self.track_running_stats
        if uses_num_features and self.num_features < 0:
            raise LayerError(f"num_features cannot be negative, got {self.num_features}")
        if not self.min_rank <= len(shape) <= (self.max_rank or 0):
            self._wrong_rank(shape)
        empty = math.prod(shape) == 0
        if not empty and uses_num_features and shape[1] != self.num_features:
            raise LayerError(
                f"expects {self.num_features} channels, got {shape[1]}", fix=f"set num_features={shape[1]}"
            )
        if not self.track_running_stats:
            # no running statistics: even in eval mode it normalises with the batch's own statistics
            values = shape[0] * math.prod(shape[2:])
            if values == 1:
                raise LayerError(
                    f"with track_running_stats=False it normalises each channel with the batch's own "
                    f"mean and variance, which needs more than 1 value per channel; input {fmt_shape(shape)} "
                    "has 1 — use a bigger batch or spatial size, or track_running_stats=True"
                )
        # an empty input passes through without any channel check, except that the affine
        # weight of a num_features=0 layer makes PyTorch fail
        if empty and self.affine and self.num_features == 0:
            raise LayerError(
                f"BatchNorm with num_features=0 and affine=True fails on the empty input {fmt_shape(shape)} — "
                "an earlier stage produced an empty tensor"
            )
        return shape, []

    def materialize(self, shape: Shape) -> Stage:
        if self.num_features is not None:
            return self
        if not self.min_rank <= len(shape) <= (self.max_rank or 0):
            self._wrong_rank(shape)
        name = self.name.removeprefix("Lazy")
        given = self.call[self.call.index("(") + 1 : -1]  # the Lazy layer's other arguments
        return replace(self, name=name, call=f"{name}({shape[1]}{', ' + given if given else ''})", num_features=shape[1])

    def _wrong_rank(self, shape: Shape) -> None:
        fits = {2: 1, 3: 1, 4: 2, 5: 3}.get(len(shape))
        family = self.name[: -2] if self.name[-2:] in ("1d", "2d", "3d") else self.name
        fix = f"use {family}{fits}d" if fits and fits != self.nd else None
        raise LayerError(f"expects a {_BATCHNORM_RANKS[self.nd]} input, got {_rank_text(shape)}", fix=fix)

    def params(self) -> int:
        if not self.affine or self.num_features is None:
            return 0
        return self.num_features * (2 if self.bias else 1)

    def param_shapes(self) -> list[tuple[str, Shape]]:
        if not self.affine or self.num_features is None:
            return []
        shape: Shape = (self.num_features,)
        return [("weight", shape)] + ([("bias", shape)] if self.bias else [])

    def torch_repr(self) -> str:
        text = f"{self.name}({self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        return text + f", bias={self.affine and self.bias}, track_running_stats={self.track_running_stats})"
