"""Normalisation beyond BatchNorm: LayerNorm, GroupNorm, InstanceNorm1d/2d/3d and LocalResponseNorm.

Evaluation mode, as the rest of cnnops: the shape is kept; the affine weights (ones) and biases (zeros)
are parameters; MACs are 0, as for BatchNorm, pooling and activations.
"""

from __future__ import annotations

import math
from typing import ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import Shape, Stage, _rank_text, fmt_shape
from cnnops.records import record


@record(frozen=True, kw_only=True)
class LayerNorm(Stage):
    """``nn.LayerNorm(normalized_shape)``: each sample normalised over its last ``len(normalized_shape)`` dims."""

    normalized_shape: tuple[int, ...]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "norm"

    @property
    def min_rank(self) -> int:
        return len(self.normalized_shape)

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        normalized = self.normalized_shape
        if self.elementwise_affine and any(n < 0 for n in normalized):
            raise LayerError(f"normalized_shape cannot hold a negative size, got {fmt_shape(normalized)}")
        if not normalized:
            raise LayerError("normalized_shape must hold at least one size, got () — e.g. LayerNorm(64)")
        if shape[len(shape) - len(normalized):] != normalized:
            trailing = shape[len(shape) - len(normalized):]
            raise LayerError(
                f"normalises the last {len(normalized)} dimension{'s' if len(normalized) > 1 else ''} "
                f"{fmt_shape(normalized)}, but the input {fmt_shape(shape)} ends in {fmt_shape(trailing)}",
                fix=f"set normalized_shape={trailing[0] if len(trailing) == 1 else fmt_shape(trailing)}",
            )
        return shape, []

    def params(self) -> int:
        if not self.elementwise_affine:
            return 0
        return math.prod(self.normalized_shape) * (2 if self.bias else 1)

    def torch_repr(self) -> str:
        affine = self.elementwise_affine
        return (f"LayerNorm({fmt_shape(self.normalized_shape)}, eps={self.eps}, elementwise_affine={affine}, "
                f"bias={affine and self.bias})")  # fmt: skip


@record(frozen=True, kw_only=True)
class GroupNorm(Stage):
    """``nn.GroupNorm(num_groups, num_channels)``: each sample's channels split into groups, each group
    normalised over its channels and positions."""

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True
    bias: bool = True
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "norm"

    @property
    def min_rank(self) -> int:
        return 2

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        groups, channels = self.num_groups, self.num_channels
        if groups == 0:
            raise LayerError("num_groups must not be 0 — use num_groups ≥ 1")
        if channels % groups:  # nn.GroupNorm's own check, with Python's remainder
            raise LayerError(f"num_channels {channels} is not divisible by num_groups {groups}")
        if self.affine and channels < 0:
            raise LayerError(f"num_channels cannot be negative, got {channels}")
        if groups < 0:
            raise LayerError(f"num_groups must be greater than zero, got {groups}")
        c = shape[1]
        if c % groups:
            raise LayerError(
                f"splits channels into {groups} groups, but the input {fmt_shape(shape)} has {c} channels, "
                f"which {groups} does not divide", fix=f"set num_channels={c} and a num_groups that divides it"
            )  # fmt: skip
        if self.affine and c != channels:
            raise LayerError(
                f"expects {channels} channels, got {c} (input {fmt_shape(shape)})", fix=f"set num_channels={c}"
            )
        values = shape[0] * c // groups * math.prod(shape[2:])
        if values == 1:
            # F.group_norm checks this even in evaluation mode
            raise LayerError(
                f"normalises each group with its own mean and variance, which needs more than 1 value per group; "
                f"input {fmt_shape(shape)} with {groups} group{'s' if groups > 1 else ''} has 1"
            )
        return shape, []

    def params(self) -> int:
        return self.num_channels * (2 if self.bias else 1) if self.affine else 0

    def torch_repr(self) -> str:
        return (f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.affine and self.bias})")  # fmt: skip


@record(frozen=True, kw_only=True)
class InstanceNorm(Stage):
    """``nn.InstanceNorm1d/2d/3d``: each sample's channels normalised over their own positions
    (``track_running_stats=True``: with fresh running statistics, mean 0 and variance 1)."""

    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = False
    track_running_stats: bool = False
    bias: bool = True
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "norm"

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if (self.affine or self.track_running_stats) and self.num_features < 0:
            raise LayerError(f"num_features cannot be negative, got {self.num_features}")
        self.check_rank(shape)
        c = shape[-self.nd - 1]
        # affine=False: nn.InstanceNorm only warns that num_features is unused; running statistics of the
        # wrong size then fail in batch_norm, which returns an empty input before it looks at them
        if c != self.num_features and (self.affine or (self.track_running_stats and 0 not in shape)):
            raise LayerError(
                f"expects {self.num_features} channels, got {c} (input {fmt_shape(shape)})",
                fix=f"set num_features={c}",
            )
        if not self.track_running_stats and math.prod(shape[-self.nd:]) == 1:
            raise LayerError(
                f"normalises each channel over its own positions, which needs more than 1 position; input "
                f"{fmt_shape(shape)} has 1 — use a bigger input, or track_running_stats=True"
            )
        return shape, []

    def params(self) -> int:
        return self.num_features * (2 if self.bias else 1) if self.affine else 0

    def torch_repr(self) -> str:
        return (
            f"{self.name}({self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.affine and self.bias}, track_running_stats={self.track_running_stats})"
        )


@record(frozen=True, kw_only=True)
class LocalResponseNorm(Stage):
    """``nn.LocalResponseNorm(size)``: ``x / (k + α/n·Σ x²)^β`` over ``size`` neighbouring channels."""

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "norm"

    @property
    def min_rank(self) -> int:
        return 3

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if len(shape) < 3:
            raise LayerError(f"expects a 3-D or higher input (N, C, …), got {_rank_text(shape)}")
        # PyTorch returns an empty input as it is, before it looks at size
        if math.prod(shape) and self.size <= 0:
            raise LayerError(f"size must be greater than zero, got {self.size}")
        return shape, []

    def torch_repr(self) -> str:
        return f"LocalResponseNorm({self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k})"
