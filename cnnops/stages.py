"""The layers cnnops knows, as frozen dataclasses that do their own shape arithmetic.

A stage answers, for an input shape, what PyTorch would do: the output shape (or the
:class:`~cnnops.errors.LayerError` PyTorch would raise, in plain words), the formula steps per
spatial dimension, its parameter count, its MACs and how it changes the receptive field.
Pure Python: no numpy, no torch.

>>> from cnnops.spec import parse_stage
>>> parse_stage("Conv2d(3, 64, 11, stride=4, padding=2)").output_shape((1, 3, 224, 224))
(1, 64, 55, 55)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cnnops import arithmetic
from cnnops.arithmetic import Formula
from cnnops.errors import LayerError

Shape = tuple[int, ...]
SPATIAL_NAMES = {1: ("L",), 2: ("H", "W")}


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field along one axis: ``size`` input pixels, ``jump`` between neighbouring
    outputs, ``start`` the input coordinate of the centre of the first output's field."""

    size: int
    jump: int
    start: float

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "jump": self.jump, "start": self.start}


def fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _rank_text(shape: Shape) -> str:
    return f"{len(shape)}-D {fmt_shape(shape)}"


def _each(name: str, values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(values)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One layer as written by the user, normalised."""

    name: str
    call: str  # the user's arguments, normalised: "MaxPool2d(2, stride=1)"
    nd: int = 0  # spatial dimensions it works on (0: not a spatial layer)

    kind: ClassVar[str] = "layer"
    #: slides over or resizes spatial dims (conv, pool, unpool): a Linear after it flattens first
    spatial: ClassVar[bool] = False
    #: keeps a spatial tensor spatial (activations, dropout, normalisation)
    keeps_layout: ClassVar[bool] = False

    # --- ranks -------------------------------------------------------------------------------
    @property
    def min_rank(self) -> int:
        """The fewest dimensions PyTorch accepts (the rank rule pads up to this)."""
        return self.nd + 1 if self.nd else 0

    @property
    def max_rank(self) -> int | None:
        return self.nd + 2 if self.nd else None

    def check_rank(self, shape: Shape) -> None:
        lo, hi = self.min_rank, self.max_rank
        if len(shape) < lo or (hi is not None and len(shape) > hi):
            layout = {1: "(C, L) or (N, C, L)", 2: "(C, H, W) or (N, C, H, W)"}.get(self.nd, "")
            expected = f"a {lo}-D or {hi}-D input {layout}".rstrip()
            raise LayerError(f"expects {expected}, got {_rank_text(shape)}")

    def check_nonempty(self, shape: Shape) -> None:
        if any(n == 0 for n in shape[-(self.nd + 1):]):
            raise LayerError(f"expects non-empty channel and spatial dimensions, got {fmt_shape(shape)}")

    def spatial_names(self) -> tuple[str, ...]:
        return SPATIAL_NAMES.get(self.nd, ())

    # --- arithmetic --------------------------------------------------------------------------
    def output_shape(self, shape: Shape) -> Shape:
        return self.evaluate(shape)[0]

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        """Output shape and formula steps for ``shape``, or the LayerError PyTorch would raise."""
        return shape, []

    def params(self) -> int:
        return 0

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0

    def receptive_field(
        self, rf: tuple[ReceptiveField, ...] | None
    ) -> tuple[ReceptiveField, ...] | None:
        """The receptive field after this stage, or None where it is no longer a sliding window."""
        return rf if self.keeps_layout else None

    def torch_repr(self) -> str:
        return self.call

    def __str__(self) -> str:
        return self.call


def _slide(rf: tuple[ReceptiveField, ...] | None, nd: int, kernel, stride, left_pad, dilation):
    if rf is None or len(rf) != nd:
        return None
    out = []
    for axis, r in enumerate(rf):
        span = dilation[axis] * (kernel[axis] - 1)
        out.append(
            ReceptiveField(
                size=r.size + span * r.jump,
                jump=r.jump * stride[axis],
                start=r.start + (span / 2 - left_pad[axis]) * r.jump,
            )
        )
    return tuple(out)


def _tuple_repr(values: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


def _positive(what: str, values: tuple[int, ...], hint: str = "") -> None:
    if any(v <= 0 for v in values):
        raise LayerError(f"{what} must be greater than zero, got {_each(what, values)}{hint}")


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Conv(Stage):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    weight: Any = None  # raw weight spec for data commands (named kernel, list, path, 'random')
    bias_value: Any = None  # a number or list given as bias=
    seed: int | None = None
    kind: ClassVar[str] = "conv"
    spatial: ClassVar[bool] = True

    def pads(self) -> tuple[tuple[int, int], ...]:
        """(left, right) padding per spatial dim, resolving 'same' and 'valid'."""
        if self.padding == "same":
            return tuple(arithmetic.same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.padding == "valid":
            return tuple((0, 0) for _ in self.kernel_size)
        assert isinstance(self.padding, tuple)
        return tuple((p, p) for p in self.padding)

    def check_config(self) -> None:
        if self.in_channels < 0 or self.out_channels < 0:
            raise LayerError("channel counts cannot be negative")
        if any(k < 0 for k in self.kernel_size):
            raise LayerError(f"kernel_size cannot be negative, got {_each('k', self.kernel_size)}")
        if self.groups <= 0:
            raise LayerError(f"groups must be a positive integer, got {self.groups}")
        if self.in_channels % self.groups:
            raise LayerError(
                f"in_channels {self.in_channels} is not divisible by groups {self.groups}"
            )
        if self.out_channels % self.groups:
            raise LayerError(
                f"out_channels {self.out_channels} is not divisible by groups {self.groups}"
            )
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
                f"expects {self.in_channels} input channels, got {channels} "
                f"(input {fmt_shape(shape)}) — set in_channels={channels}"
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

    def params(self) -> int:
        weight = self.out_channels * (self.in_channels // self.groups) * math.prod(self.kernel_size)
        return weight + (self.out_channels if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(out_shape) * (self.in_channels // self.groups) * math.prod(self.kernel_size)

    def receptive_field(self, rf):
        left = tuple(p[0] for p in self.pads())
        return _slide(rf, self.nd, self.kernel_size, self.stride, left, self.dilation)

    def torch_repr(self) -> str:
        parts = [
            str(self.in_channels),
            str(self.out_channels),
            f"kernel_size={_tuple_repr(self.kernel_size)}",
            f"stride={_tuple_repr(self.stride)}",
        ]
        if isinstance(self.padding, str):
            parts.append(f"padding={self.padding}")
        elif any(self.padding):
            parts.append(f"padding={_tuple_repr(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={_tuple_repr(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode}")
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True, kw_only=True)
class ConvTranspose(Stage):
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
    weight: Any = None
    bias_value: Any = None
    seed: int | None = None
    kind: ClassVar[str] = "conv_transpose"
    spatial: ClassVar[bool] = True

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.in_channels < 0 or self.out_channels < 0:
            raise LayerError("channel counts cannot be negative")
        if any(k < 0 for k in self.kernel_size):
            raise LayerError(f"kernel_size cannot be negative, got {_each('k', self.kernel_size)}")
        if self.groups <= 0:
            raise LayerError(f"groups must be a positive integer, got {self.groups}")
        if self.in_channels % self.groups:
            raise LayerError(f"in_channels {self.in_channels} is not divisible by groups {self.groups}")
        if self.out_channels % self.groups:
            raise LayerError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}")
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
                f"expects {self.in_channels} input channels, got {channels} "
                f"(input {fmt_shape(shape)}) — set in_channels={channels}"
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

    def params(self) -> int:
        weight = self.in_channels * (self.out_channels // self.groups) * math.prod(self.kernel_size)
        return weight + (self.out_channels if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(in_shape) * (self.out_channels // self.groups) * math.prod(self.kernel_size)

    def torch_repr(self) -> str:
        parts = [
            str(self.in_channels),
            str(self.out_channels),
            f"kernel_size={_tuple_repr(self.kernel_size)}",
            f"stride={_tuple_repr(self.stride)}",
        ]
        if any(self.padding):
            parts.append(f"padding={_tuple_repr(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={_tuple_repr(self.dilation)}")
        if any(self.output_padding):
            parts.append(f"output_padding={_tuple_repr(self.output_padding)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        return f"{self.name}({', '.join(parts)})"


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Pool(Stage):
    """MaxPool1d/2d and AvgPool1d/2d."""

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
    kind: ClassVar[str] = "pool"
    spatial: ClassVar[bool] = True

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
        formulas = [
            arithmetic.pool_length(length, k, s, p, d, self.ceil_mode, dim=name)
            for name, length, k, s, p, d in zip(
                self.spatial_names(), shape[-self.nd:], self.kernel_size, self.stride,
                self.padding, self.dilation,
            )
        ]
        if any(f.result < 1 for f in formulas):
            sizes = " × ".join(str(f.result) for f in formulas)
            hint = " — use a smaller kernel, more padding or ceil_mode=True"
            raise LayerError(
                f"output size is too small: input {fmt_shape(shape[-self.nd:])} gives {sizes}{hint}"
            )
        return shape[: -self.nd] + tuple(f.result for f in formulas), formulas

    def receptive_field(self, rf):
        return _slide(rf, self.nd, self.kernel_size, self.stride, self.padding, self.dilation)

    def torch_repr(self) -> str:
        def value(name: str) -> str:
            v = self.raw.get(name)
            if isinstance(v, (list, tuple)):
                return _tuple_repr(tuple(v))
            return str(v)

        if self.mode == "max":
            return (
                f"{self.name}(kernel_size={value('kernel_size')}, stride={value('stride')}, "
                f"padding={value('padding')}, dilation={value('dilation')}, ceil_mode={self.ceil_mode})"
            )
        if self.nd == 1:
            return (
                f"{self.name}(kernel_size={_tuple_repr(self.kernel_size)}, stride={_tuple_repr(self.stride)}, "
                f"padding={_tuple_repr(self.padding)})"
            )
        return f"{self.name}(kernel_size={value('kernel_size')}, stride={value('stride')}, padding={value('padding')})"


@dataclass(frozen=True, kw_only=True)
class AdaptivePool(Stage):
    mode: str
    output_size: tuple[int | None, ...]
    return_indices: bool = False
    raw_output_size: Any = None
    kind: ClassVar[str] = "adaptive_pool"
    spatial: ClassVar[bool] = True

    def resolved(self, shape: Shape) -> tuple[int, ...]:
        return tuple(n if o is None else o for o, n in zip(self.output_size, shape[-self.nd:]))

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        sized = tuple(o for o in self.output_size if o is not None)
        if any(o < 0 for o in sized):
            raise LayerError(f"output_size must be ≥ 0, got {self.raw_output_size}")
        # PyTorch computes adaptive average pooling to size 1 (1×1) as a plain mean over the last
        # dims: AdaptiveAvgPool2d then takes any rank, and neither checks for empty dimensions.
        mean = self.mode == "avg" and all(o == 1 for o in self.resolved(shape))
        if not (mean and self.nd == 2 and len(shape) > 4):
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
        text = _tuple_repr(tuple(raw)) if isinstance(raw, (list, tuple)) else str(raw)
        return f"{self.name}(output_size={text})"


@dataclass(frozen=True, kw_only=True)
class Unpool(Stage):
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_size: tuple[int, ...] | None = None
    kind: ClassVar[str] = "unpool"
    spatial: ClassVar[bool] = True

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
            f"{self.name}(kernel_size={_tuple_repr(self.kernel_size)}, stride={_tuple_repr(self.stride)}, "
            f"padding={_tuple_repr(self.padding)})"
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Linear(Stage):
    in_features: int
    out_features: int
    bias: bool = True
    weight: Any = None
    bias_value: Any = None
    seed: int | None = None
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
            hint = " — add Flatten before it" if len(shape) > 2 and math.prod(shape[1:]) == self.in_features else (
                f" — set in_features={shape[-1]}"
            )
            raise LayerError(
                f"expects the last dimension to be in_features={self.in_features}, got {shape[-1]} "
                f"(input {fmt_shape(shape)}){hint}"
            )
        return shape[:-1] + (self.out_features,), []

    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return math.prod(in_shape[:-1]) * self.in_features * self.out_features

    def torch_repr(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias})"


@dataclass(frozen=True, kw_only=True)
class Flatten(Stage):
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


@dataclass(frozen=True, kw_only=True)
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
        return shape, []

    def torch_repr(self) -> str:
        return self.call if "(" in self.call else f"{self.name}()"


@dataclass(frozen=True, kw_only=True)
class Passthrough(Stage):
    """Dropout and Identity: shape and values pass unchanged (evaluation mode)."""

    p: float = 0.5
    ranks: tuple[int, int | None] = (0, None)
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "passthrough"

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


@dataclass(frozen=True, kw_only=True)
class BatchNorm(Stage):
    num_features: int
    eps: float = 1e-5
    affine: bool = True
    track_running_stats: bool = True
    bias: bool = True
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "batchnorm"

    @property
    def min_rank(self) -> int:
        return 2 if self.nd == 1 else 4

    @property
    def max_rank(self) -> int | None:
        return 3 if self.nd == 1 else 4

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        # with affine=False and track_running_stats=False PyTorch keeps no per-channel tensors,
        # so it never looks at num_features at all
        uses_num_features = self.affine or self.track_running_stats
        if uses_num_features and self.num_features < 0:
            raise LayerError(f"num_features cannot be negative, got {self.num_features}")
        if not self.min_rank <= len(shape) <= (self.max_rank or 0):
            want = "2-D or 3-D" if self.nd == 1 else "4-D (N, C, H, W)"
            raise LayerError(f"expects a {want} input, got {_rank_text(shape)}")
        empty = math.prod(shape) == 0
        if not empty and uses_num_features and shape[1] != self.num_features:
            raise LayerError(
                f"expects {self.num_features} channels, got {shape[1]} — set num_features={shape[1]}"
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

    def params(self) -> int:
        if not self.affine:
            return 0
        return self.num_features * (2 if self.bias else 1)

    def torch_repr(self) -> str:
        text = f"{self.name}({self.num_features}, eps={self.eps}, momentum=0.1, affine={self.affine}"
        return text + f", bias={self.bias}, track_running_stats={self.track_running_stats})"
