"""Pooling: MaxPool/AvgPool1d/2d/3d, AdaptiveAvg/MaxPool1d/2d/3d and MaxUnpool1d/2d/3d."""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from cnnops.errors import LayerError
from cnnops.model import arithmetic
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import Shape, Stage, _each, _positive, _slide, fmt_shape
from cnnops.records import record


@record(frozen=True, kw_only=True)
class Pool(Stage):
    """MaxPool1d/2d/3d and AvgPool1d/2d/3d."""

    mode: str  # "max" | "avg"
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    return_indices: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # values as written, for repr
    #: read from print(model) text, whose AvgPool line never shows ceil_mode: sized only where it makes no difference
    ceil_mode_unknown: bool = False
    kind: ClassVar[str] = "pool"
    spatial: ClassVar[bool] = True

    @property
    def animatable(self) -> bool:
        return self.nd <= 2

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        _positive("kernel_size", self.kernel_size)
        _positive("stride", self.stride)
        _positive("dilation", self.dilation)
        if any(p < 0 for p in self.padding):
            raise LayerError(f"padding must be non-negative, got {_each('p', self.padding)}")
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise LayerError(
                    f"padding {p} is more than half the kernel size {k} — use padding ≤ {k // 2}"
                )
        if self.divisor_override == 0:
            raise LayerError("divisor_override must not be zero")
        self.check_rank(shape)
        self.check_nonempty(shape)
        lengths = shape[-self.nd:]
        if self.mode == "avg" and self.nd == 3 and any(n < k for n, k in zip(lengths, self.kernel_size)):
            # avg_pool3d alone compares the kernel with the unpadded input (ATen's pool3d_shape_check)
            raise LayerError(
                f"the input {fmt_shape(lengths)} is smaller than the kernel {fmt_shape(self.kernel_size)}: "
                "AvgPool3d needs every input size at least the kernel size, padding not counted"
            )
        formulas = [
            arithmetic.pool_length(length, k, s, p, d, self.ceil_mode, dim=name)
            for name, length, k, s, p, d in zip(
                self.spatial_names(), shape[-self.nd:], self.kernel_size, self.stride,
                self.padding, self.dilation,
            )
        ]
        if self.ceil_mode_unknown:
            self._check_ceil_mode_unneeded(lengths)
        if any(f.result < 1 for f in formulas):
            sizes = " × ".join(str(f.result) for f in formulas)
            hint = " — use a smaller kernel, more padding or ceil_mode=True"
            raise LayerError(
                f"output size is too small: input {fmt_shape(shape[-self.nd:])} gives {sizes}{hint}"
            )
        return shape[: -self.nd] + tuple(f.result for f in formulas), formulas

    def _check_ceil_mode_unneeded(self, lengths: Shape) -> None:
        def sizes(ceil: bool) -> Shape:
            return tuple(
                arithmetic.pool_output_length(n, k, s, p, d, ceil)
                for n, k, s, p, d in zip(lengths, self.kernel_size, self.stride, self.padding, self.dilation)
            )

        floor, ceil = sizes(False), sizes(True)
        if floor != ceil:
            raise LayerError(
                f"print(model) does not show {self.name}'s ceil_mode, and on {fmt_shape(lengths)} it decides the "
                f"size: {fmt_shape(floor)} with ceil_mode=False, {fmt_shape(ceil)} with ceil_mode=True — add "
                f"ceil_mode=False or ceil_mode=True to the line, as the model builds the layer"
            )

    def receptive_field(self, rf, in_shape=()):
        return _slide(rf, self.nd, self.kernel_size, self.stride, self.padding, self.dilation)

    def torch_repr(self) -> str:
        def value(name: str) -> str:
            v = self.raw.get(name)
            if isinstance(v, (list, tuple)):
                return fmt_shape(tuple(v))
            return str(v)

        if self.mode == "max":
            return (
                f"{self.name}(kernel_size={value('kernel_size')}, stride={value('stride')}, "
                f"padding={value('padding')}, dilation={value('dilation')}, ceil_mode={self.ceil_mode})"
            )
        if self.nd == 1:
            return (
                f"{self.name}(kernel_size={fmt_shape(self.kernel_size)}, stride={fmt_shape(self.stride)}, "
                f"padding={fmt_shape(self.padding)})"
            )
        return f"{self.name}(kernel_size={value('kernel_size')}, stride={value('stride')}, padding={value('padding')})"


@record(frozen=True, kw_only=True)
class AdaptivePool(Stage):
    """nn.AdaptiveAvgPool/AdaptiveMaxPool: a fixed output size, bins from the input's."""

    mode: str
    output_size: tuple[int | None, ...]
    return_indices: bool = False
    raw_output_size: Any = None
    kind: ClassVar[str] = "adaptive_pool"
    spatial: ClassVar[bool] = True

    @property
    def animatable(self) -> bool:
        return self.nd <= 2

    def resolved(self, shape: Shape) -> tuple[int, ...]:
        return tuple(n if o is None else o for o, n in zip(self.output_size, shape[-self.nd:]))

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        sized = tuple(o for o in self.output_size if o is not None)
        if any(o < 0 for o in sized):
            raise LayerError(f"output_size must be ≥ 0, got {self.raw_output_size}")
        # PyTorch computes adaptive average pooling to size 1 (1×1) as a plain mean over the last
        # dims: AdaptiveAvgPool2d then takes any rank, and neither checks for empty dimensions.
        mean = self.mode == "avg" and all(o == 1 for o in self.resolved(shape))
        if not (mean and self.nd >= 2 and len(shape) > self.nd + 2):
            self.check_rank(shape)
        sizes = self.resolved(shape)
        if not mean:
            # average pooling checks only the pooled dims; max pooling every dim after the first
            # (so an unbatched (C, L) input may have C = 0, a batched one may not)
            checked = shape[-self.nd:] if self.mode == "avg" else shape[1:]
            if any(n == 0 for n in checked):
                which = "spatial dimensions" if self.mode == "avg" else "dimensions after the first"
                raise LayerError(
                    f"expects non-empty {which}, got {fmt_shape(shape)} — an earlier stage produced an empty tensor"
                )
        formulas = [
            arithmetic.adaptive_length(length, o, dim=name)
            for name, length, o in zip(self.spatial_names(), shape[-self.nd:], sizes)
        ]
        return shape[: -self.nd] + sizes, formulas

    def torch_repr(self) -> str:
        raw = self.raw_output_size
        text = fmt_shape(tuple(raw)) if isinstance(raw, (list, tuple)) else str(raw)
        return f"{self.name}(output_size={text})"


@record(frozen=True, kw_only=True)
class Unpool(Stage):
    """nn.MaxUnpool1d/2d/3d: the inverse of a max pool, from its indices."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_size: tuple[int, ...] | None = None
    kind: ClassVar[str] = "unpool"
    spatial: ClassVar[bool] = True

    @property
    def animatable(self) -> bool:
        return self.nd <= 2

    def default_formulas(self, shape: Shape) -> list[Formula]:
        return [
            arithmetic.unpool_default_length(length, k, s, p, dim=name)
            for name, length, k, s, p in zip(
                self.spatial_names(), shape[-self.nd:], self.kernel_size, self.stride, self.padding
            )
        ]

    def evaluate(self, shape: Shape, restore: tuple[int, ...] | None = None) -> tuple[Shape, list[Formula]]:
        """``restore``: the size of the paired max pool's input, used when no output_size is given."""
        self.check_rank(shape)
        if any(n == 0 for n in shape[1:]):
            # PyTorch's max_unpool checks every dim after the first (an unbatched (C, L) may have C = 0)
            raise LayerError(
                f"expects non-empty dimensions after the first, got {fmt_shape(shape)} — "
                "an earlier stage produced an empty tensor"
            )
        if self.nd == 3:
            _positive("stride", self.stride)  # only max_unpool3d checks its stride (max_unpooling3d_shape_check)
        formulas = self.default_formulas(shape)
        target = self.output_size
        if target is not None:
            if len(target) == self.nd + 2:
                target = target[2:]
            if len(target) != self.nd:
                raise LayerError(
                    f"output_size needs {self.nd} or {self.nd + 2} numbers, got {len(target)}"
                )
        elif restore is not None:
            target = restore
        if target is not None:
            chosen = []
            for f, out, s in zip(formulas, target, self.stride):
                lo, hi = f.result - s, f.result + s
                if not lo < out < hi:
                    why = "the max pool's input size" if self.output_size is None else "output_size"
                    raise LayerError(
                        f"cannot unpool to {why} {out} on {f.dim}: PyTorch only accepts sizes strictly between "
                        f"{lo} and {hi} here (default {f.result})"
                    )
                note = "" if out == f.result else f"PyTorch's default would be {f.result}"
                if self.output_size is None and note:
                    note = f"restores the max pool's input size {out}; {note}"
                chosen.append(Formula(f.dim, f.expression, f"{f.result}, output size {out}", out, note))
            formulas = chosen
        for f in formulas:
            if f.result < 0:
                raise LayerError(f"output size would be negative on {f.dim}: {f.result} — use less padding")
        return shape[: -self.nd] + tuple(f.result for f in formulas), formulas

    def torch_repr(self) -> str:
        return (
            f"{self.name}(kernel_size={fmt_shape(self.kernel_size)}, stride={fmt_shape(self.stride)}, "
            f"padding={fmt_shape(self.padding)})"
        )
