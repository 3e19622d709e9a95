"""Convolutions: Conv1d/2d (all padding forms and modes) and ConvTranspose1d/2d."""

from __future__ import annotations

import math
from typing import ClassVar

from cnnops.errors import LayerError
from cnnops.model import arithmetic
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import Shape, Stage, _each, _positive, _slide, fmt_shape
from cnnops.records import record


@record(frozen=True, kw_only=True)
class Conv(Stage):
    """nn.Conv1d/2d/3d: every padding form (numbers, 'same', 'valid') and padding mode."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    kind: ClassVar[str] = "conv"
    spatial: ClassVar[bool] = True

    @property
    def animatable(self) -> bool:
        return self.nd <= 2

    def pads(self) -> tuple[tuple[int, int], ...]:
        """(left, right) padding per spatial dim, resolving 'same' and 'valid'."""
        if self.padding == "same":
            return tuple(arithmetic.same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.padding == "valid":
            return tuple((0, 0) for _ in self.kernel_size)
        assert isinstance(self.padding, tuple)
        return tuple((p, p) for p in self.padding)

    def check_config(self) -> None:
        check_construction(self)
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise LayerError(
                "padding='same' is not supported for strided convolutions — "
                "use stride 1 or give the padding as a number"
            )

    def check_forward_args(self, empty_batch: bool = False, no_channels: bool = False) -> None:
        """``empty_batch``/``no_channels``: the input has N = 0 or C = 0. PyTorch then computes only
        the output shape and skips some checks: dilation 0 passes, and with C = 0 a kernel size 0 too."""
        # with padding_mode reflect/replicate/circular PyTorch pads with F.pad, which takes a
        # negative padding as cropping; only the zeros mode (padding inside the conv) refuses it
        if self.padding_mode == "zeros" and isinstance(self.padding, tuple) and any(p < 0 for p in self.padding):
            raise LayerError(
                f"negative padding is not supported, got {_each('p', self.padding)} — use padding ≥ 0 "
                "(only padding_mode='reflect', 'replicate' or 'circular' crop with a negative padding)"
            )
        _positive("stride", self.stride)
        if empty_batch or no_channels:
            if any(d < 0 for d in self.dilation):
                raise LayerError(f"dilation must be greater than zero, got {_each('d', self.dilation)}")
        else:
            _positive("dilation", self.dilation)
        if self.out_channels < self.groups:
            raise LayerError(f"out_channels must be at least groups={self.groups}, got {self.out_channels}")
        # in_channels=0 is accepted: it fits (only) an input with 0 channels, see evaluate
        if not no_channels:
            _positive("kernel_size", self.kernel_size)

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        self.check_config()
        self.check_rank(shape)
        channels = shape[-self.nd - 1]
        empty_batch = len(shape) == self.nd + 2 and shape[0] == 0
        self.check_forward_args(empty_batch, no_channels=channels == 0 and self.in_channels == 0)
        if channels != self.in_channels:
            raise LayerError(
                f"expects {self.in_channels} input channels, got {channels} (input {fmt_shape(shape)})",
                fix=f"set in_channels={channels}",
            )
        lengths = shape[-self.nd:]
        pads = self.pads()
        if self.padding_mode in ("reflect", "replicate"):
            self.check_nonempty(shape)  # F.pad's reflect/replicate kernels take no empty dims but the batch
        if self.padding_mode != "zeros":
            for name, length, (left, right) in zip(self.spatial_names(), lengths, pads):
                if min(left, right) < 0 and length + left + right < (0 if self.padding_mode == "circular" else 1):
                    raise LayerError(
                        f"padding {min(left, right)} crops {-(left + right)} of {name}={length}, more than "
                        f"there is — use padding ≥ {-((length - (0 if self.padding_mode == 'circular' else 1)) // 2)}"
                    )
        if self.padding_mode in ("reflect", "circular"):
            for name, length, (left, right) in zip(self.spatial_names(), lengths, pads):
                limit_ok = max(left, right) < length if self.padding_mode == "reflect" else max(left, right) <= length
                if not limit_ok:
                    relation = "less than" if self.padding_mode == "reflect" else "at most"
                    raise LayerError(
                        f"padding_mode='{self.padding_mode}' needs padding {relation} the input size: "
                        f"padding {max(left, right)} on {name}={length}"
                    )
        formulas: list[Formula] = []
        for name, length, k, s, (left, right), d in zip(
            self.spatial_names(), lengths, self.kernel_size, self.stride, pads, self.dilation
        ):
            padded = length + left + right
            span = d * (k - 1) + 1
            if padded < span:
                raise LayerError(
                    f"kernel size can't be greater than the input size: the padded input is {padded} on "
                    f"{name} but the {'dilated ' if d > 1 else ''}kernel spans {span}"
                    " — use a smaller kernel or more padding"
                )
            if self.padding == "same":
                formulas.append(arithmetic.same_length(length, k, d, dim=name))
            else:
                formulas.append(arithmetic.conv_length(length, k, s, left, d, dim=name))
        if 0 in lengths and channels and not empty_batch:
            raise LayerError(
                f"the input {fmt_shape(shape)} is empty on {self.spatial_names()[lengths.index(0)]}: PyTorch "
                "convolves an empty plane only within an empty batch — an earlier stage produced an empty tensor"
            )
        # PyTorch's shortcut for an input with 0 channels returns 0 channels, whatever out_channels says
        out_channels = self.out_channels if channels else 0
        out = shape[: -self.nd - 1] + (out_channels,) + tuple(f.result for f in formulas)
        return out, formulas

    def weight_shape(self) -> Shape:
        """PyTorch's ``(out_channels, in_channels/groups, *kernel_size)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def fan_in(self) -> int:
        return (self.in_channels // self.groups) * math.prod(self.kernel_size)

    def bias_shape(self) -> Shape | None:
        return (self.out_channels,) if self.bias else None

    def params(self) -> int:
        weight = self.out_channels * (self.in_channels // self.groups) * math.prod(self.kernel_size)
        return weight + (self.out_channels if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(out_shape) * (self.in_channels // self.groups) * math.prod(self.kernel_size)

    def receptive_field(self, rf, in_shape=()):
        left = tuple(p[0] for p in self.pads())
        return _slide(rf, self.nd, self.kernel_size, self.stride, left, self.dilation)

    def torch_repr(self) -> str:
        return conv_repr(self)


@record(frozen=True, kw_only=True)
class ConvTranspose(Stage):
    """nn.ConvTranspose1d/2d/3d, with output_padding."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    kind: ClassVar[str] = "conv_transpose"
    spatial: ClassVar[bool] = True
    animatable: ClassVar[bool] = True  # drawn as a scatter: each input cell stamps the kernel

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        check_construction(self)
        if self.padding_mode != "zeros":
            raise LayerError(f"only padding_mode='zeros' is supported for {self.name}")
        self.check_rank(shape)
        # an empty batch (N = 0) only gets its output shape computed: PyTorch then lets dilation 0
        # and any output_padding through
        empty_batch = len(shape) == self.nd + 2 and shape[0] == 0
        if any(p < 0 for p in self.padding):
            raise LayerError(f"negative padding is not supported, got {_each('p', self.padding)}")
        _positive("stride", self.stride)
        if not empty_batch:
            _positive("dilation", self.dilation)
        elif any(d < 0 for d in self.dilation):
            raise LayerError(f"dilation must be greater than zero, got {_each('d', self.dilation)}")
        if self.in_channels == 0 or self.out_channels == 0:
            raise LayerError("in_channels and out_channels must be at least 1")
        _positive("kernel_size", self.kernel_size)
        if any(op < 0 for op in self.output_padding):
            raise LayerError("output_padding cannot be negative")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not (op < s or op < d) and not empty_batch:
                raise LayerError(
                    f"output_padding {op} must be smaller than either stride {s} or dilation {d} — "
                    f"use output_padding ≤ {max(s, d) - 1}"
                )
        channels = shape[-self.nd - 1]
        if channels != self.in_channels:
            raise LayerError(
                f"expects {self.in_channels} input channels, got {channels} (input {fmt_shape(shape)})",
                fix=f"set in_channels={channels}",
            )
        formulas = [
            arithmetic.transposed_length(length, k, s, p, d, op, dim=name)
            for name, length, k, s, p, d, op in zip(
                self.spatial_names(), shape[-self.nd:], self.kernel_size, self.stride,
                self.padding, self.dilation, self.output_padding,
            )
        ]
        lengths = shape[-self.nd:]
        if 0 in lengths and not empty_batch:
            raise LayerError(
                f"the input {fmt_shape(shape)} is empty on {self.spatial_names()[lengths.index(0)]}: PyTorch "
                "convolves an empty plane only within an empty batch — an earlier stage produced an empty tensor"
            )
        # an empty batch may come out empty; otherwise every output length must be at least 1
        if any(f.result < (0 if empty_batch else 1) for f in formulas):
            sizes = " × ".join(str(f.result) for f in formulas)
            raise LayerError(f"output size is too small: {sizes} — use less padding")
        out = shape[: -self.nd - 1] + (self.out_channels,) + tuple(f.result for f in formulas)
        return out, formulas

    def weight_shape(self) -> Shape:
        """PyTorch's ``(in_channels, out_channels/groups, *kernel_size)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def fan_in(self) -> int:
        # PyTorch computes fan-in from the weight's dim 1, which for a transposed conv is out/groups
        return (self.out_channels // self.groups) * math.prod(self.kernel_size)

    def bias_shape(self) -> Shape | None:
        return (self.out_channels,) if self.bias else None

    def params(self) -> int:
        weight = self.in_channels * (self.out_channels // self.groups) * math.prod(self.kernel_size)
        return weight + (self.out_channels if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(in_shape) * (self.out_channels // self.groups) * math.prod(self.kernel_size)

    def torch_repr(self) -> str:
        return conv_repr(self, self.output_padding)


def check_construction(stage: Conv | ConvTranspose) -> None:
    """What ``nn.Conv*d``/``nn.ConvTranspose*d`` refuse when they are built."""
    if stage.in_channels < 0 or stage.out_channels < 0:
        raise LayerError("channel counts cannot be negative")
    if any(k < 0 for k in stage.kernel_size):
        raise LayerError(f"kernel_size cannot be negative, got {_each('k', stage.kernel_size)}")
    if stage.groups <= 0:
        raise LayerError(f"groups must be a positive integer, got {stage.groups}")
    if stage.in_channels % stage.groups:
        raise LayerError(f"in_channels {stage.in_channels} is not divisible by groups {stage.groups}")
    if stage.out_channels % stage.groups:
        raise LayerError(f"out_channels {stage.out_channels} is not divisible by groups {stage.groups}")


def conv_repr(stage: Conv | ConvTranspose, output_padding: tuple[int, ...] = ()) -> str:
    """PyTorch's ``repr`` of a convolution: non-default arguments in ``extra_repr``'s order."""
    parts = [str(stage.in_channels), str(stage.out_channels), f"kernel_size={fmt_shape(stage.kernel_size)}",
             f"stride={fmt_shape(stage.stride)}"]  # fmt: skip
    if isinstance(stage.padding, str):
        parts.append(f"padding={stage.padding}")
    elif any(stage.padding):
        parts.append(f"padding={fmt_shape(stage.padding)}")
    if any(d != 1 for d in stage.dilation):
        parts.append(f"dilation={fmt_shape(stage.dilation)}")
    if any(output_padding):
        parts.append(f"output_padding={fmt_shape(output_padding)}")
    if stage.groups != 1:
        parts.append(f"groups={stage.groups}")
    if not stage.bias:
        parts.append("bias=False")
    if stage.padding_mode != "zeros":
        parts.append(f"padding_mode={stage.padding_mode}")
    return f"{stage.name}({', '.join(parts)})"
