"""Layers that move values without computing new ones: padding (Zero/Constant/Reflection/Replication/
CircularPad1d/2d/3d), PixelShuffle/PixelUnshuffle, ChannelShuffle and Unflatten. No parameters, 0 MACs."""

from __future__ import annotations

import math
from typing import ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import SPATIAL_NAMES, Shape, Stage, _rank_text, _slide, fmt_shape
from cnnops.records import record


def _signed(n: int) -> str:
    return f"+ {n}" if n >= 0 else f"− {-n}"


@record(frozen=True, kw_only=True)
class Pad(Stage):
    """``nn.ZeroPad2d((left, right, top, bottom))`` and the other padding layers: ``F.pad`` with the
    layer's mode. The amounts run from the last dimension backwards, as ``F.pad`` reads them; a tuple
    pads as many dims as it has pairs (``ZeroPad2d((1, 2))`` pads only the last), and a negative amount
    crops. ``nd`` is the number of dims padded; ``layer_nd`` the 1/2/3 in the name."""

    mode: str  # "constant" | "reflect" | "replicate" | "circular"
    padding: tuple[int, ...]
    value: float = 0.0
    layer_nd: int = 1
    kind: ClassVar[str] = "pad"
    spatial: ClassVar[bool] = True

    @property
    def min_rank(self) -> int:
        if self.mode == "circular":
            return self.layer_nd + 1
        return self.nd if self.mode == "constant" else self.nd + 1

    @property
    def max_rank(self) -> int | None:
        if self.mode == "circular":
            return self.layer_nd + 2
        return None if self.mode == "constant" else self.nd + 2

    def output_spatial_nd(self, out: Shape, source_nd: int) -> int:
        return max(self.nd, source_nd)  # padding fewer dims than the tensor has spatial ones keeps its layout

    def pairs(self) -> list[tuple[int, int]]:
        """(before, after) per padded dim, first dim first (the reverse of ``padding``'s order)."""
        return [(self.padding[2 * i], self.padding[2 * i + 1]) for i in reversed(range(self.nd))]

    def spatial_names(self) -> tuple[str, ...]:
        return SPATIAL_NAMES.get(self.nd, tuple(f"dim {-i}" for i in reversed(range(1, self.nd + 1))))

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if len(self.padding) % 2:
            raise LayerError(f"padding {fmt_shape(self.padding)} has an odd number of entries — give (before, after) "
                             "pairs, last dimension first")  # fmt: skip
        if self.mode == "circular" and not self.min_rank <= len(shape) <= (self.max_rank or 0):
            nd = self.layer_nd
            raise LayerError(f"expects a {nd + 1}-D or {nd + 2}-D input, got {_rank_text(shape)}")
        if len(self.padding) > 2 * len(shape):
            raise LayerError(f"padding {fmt_shape(self.padding)} pads {self.nd} dimensions, more than the "
                             f"{_rank_text(shape)} input has")  # fmt: skip
        if self.mode != "constant" and not (1 <= self.nd <= 3 and self.nd + 1 <= len(shape) <= self.nd + 2):
            raise LayerError(
                f"{self.mode} padding of {self.nd} dimension{'s' if self.nd != 1 else ''} needs a "
                f"{self.nd + 1}-D or {self.nd + 2}-D input (1 to 3 dims padded), got {_rank_text(shape)}"
            )
        lengths = shape[len(shape) - self.nd :]
        names = self.spatial_names()
        if self.mode in ("reflect", "replicate") and 0 in shape[len(shape) - self.nd - 1 :]:
            raise LayerError(f"{self.mode} padding needs non-empty channel and padded dimensions, got "
                             f"{fmt_shape(shape)} — an earlier stage produced an empty tensor")  # fmt: skip
        formulas = []
        for name, n, (before, after) in zip(names, lengths, self.pairs()):
            out = n + before + after
            kept = n + min(before, 0) + min(after, 0)
            if self.mode == "reflect" and not (before < n and after < n):
                raise LayerError(f"reflect padding must be less than the input size: padding ({before}, {after}) "
                                 f"on {name}={n} — use padding ≤ {n - 1}")  # fmt: skip
            if self.mode == "circular" and not (before <= n and after <= n):
                raise LayerError(f"circular padding wraps around more than once: padding ({before}, {after}) on "
                                 f"{name}={n} — use padding ≤ {n}")  # fmt: skip
            # constant and circular padding crop first; reflect and replicate pad first, then crop
            if out < 0 or (kept < 0 and self.mode in ("constant", "circular")):
                raise LayerError(f"padding ({before}, {after}) crops {name}={n} to {min(kept, out)} — crop less")
            if self.mode == "circular" and max(before, after) > kept:
                # PyTorch wraps by copying from the output itself: a pad beyond what the crop kept overlaps
                # (PyTorch refuses) or, with nothing kept, reads memory it never wrote
                raise LayerError(
                    f"circular padding ({before}, {after}) on {name}={n} wraps around a dimension cropped to {kept}"
                    f" — PyTorch {'cannot copy overlapping memory' if kept else 'reads uninitialised memory'} here; "
                    f"pad at most {kept}"
                )
            formulas.append(Formula(name, f"{n} {_signed(before)} {_signed(after)}", str(out), out))
        if self.mode in ("reflect", "replicate") and all(f.result == 0 for f in formulas):
            # PyTorch's reflection and replication kernels need one padded dim that is not empty
            sizes = " × ".join(str(f.result) for f in formulas)
            raise LayerError(f"{self.mode} padding leaves nothing: {fmt_shape(lengths)} becomes {sizes} — crop less")
        return shape[: len(shape) - self.nd] + tuple(f.result for f in formulas), formulas

    def receptive_field(self, rf, in_shape=()):
        """Padding (or cropping) shifts the fields of the padded dims by the amount before them."""
        if rf is None or self.nd > len(rf):
            return None
        kept = len(rf) - self.nd
        ones = (1,) * self.nd
        shifted = _slide(rf[kept:], self.nd, ones, ones, tuple(before for before, _ in self.pairs()), ones)
        return None if shifted is None else rf[:kept] + shifted

    def torch_repr(self) -> str:
        if self.name.startswith("ConstantPad"):
            return f"{self.name}(padding={fmt_shape(self.padding)}, value={self.value})"
        return f"{self.name}({fmt_shape(self.padding)})"


@record(frozen=True, kw_only=True)
class PixelShuffle(Stage):
    """``nn.PixelShuffle(r)``: (*, C·r², H, W) → (*, C, H·r, W·r); ``nn.PixelUnshuffle(r)`` the reverse."""

    factor: int
    unshuffle: bool = False
    nd: int = 2
    kind: ClassVar[str] = "pixel_shuffle"
    spatial: ClassVar[bool] = True

    @property
    def min_rank(self) -> int:
        return 3

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        what = "downscale_factor" if self.unshuffle else "upscale_factor"
        r = self.factor
        if r <= 0:
            raise LayerError(f"{what} must be greater than zero, got {r}")
        if len(shape) < 3:
            raise LayerError(f"expects at least a 3-D input (…, C, H, W), got {_rank_text(shape)}")
        c, h, w = shape[-3:]
        if self.unshuffle:
            for name, n in (("H", h), ("W", w)):
                if n % r:
                    raise LayerError(f"{name}={n} is not divisible by downscale_factor {r} (input {fmt_shape(shape)})")
            if not math.prod(shape):  # pixel_unshuffle hands back an empty input as it is
                return shape, []
            out = (c * r * r, h // r, w // r)
            formulas = [Formula("H", f"{h} / {r}", str(h // r), h // r), Formula("W", f"{w} / {r}", str(w // r), w // r)]
        else:
            if c % (r * r):
                raise LayerError(f"channels {c} are not divisible by upscale_factor² = {r * r} (input {fmt_shape(shape)})",
                                 fix=f"use {r * r * max(1, c // (r * r))} channels before it")  # fmt: skip
            out = (c // (r * r), h * r, w * r)
            formulas = [Formula("H", f"{h} · {r}", str(h * r), h * r), Formula("W", f"{w} · {r}", str(w * r), w * r)]
        return shape[:-3] + out, formulas

    def torch_repr(self) -> str:
        return f"{self.name}({'downscale_factor' if self.unshuffle else 'upscale_factor'}={self.factor})"


@record(frozen=True, kw_only=True)
class ChannelShuffle(Stage):
    """``nn.ChannelShuffle(g)``: the channels (dim 1) as a g × C/g grid, transposed."""

    groups: int
    keeps_layout: ClassVar[bool] = True
    kind: ClassVar[str] = "channel_shuffle"

    @property
    def min_rank(self) -> int:
        return 3

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if len(shape) < 3:
            raise LayerError(f"expects at least a 3-D input (N, C, …), got {_rank_text(shape)}")
        if self.groups <= 0:
            raise LayerError(f"groups must be greater than zero, got {self.groups}")
        if shape[1] % self.groups:
            raise LayerError(f"channels {shape[1]} (dim 1 of {fmt_shape(shape)}) are not divisible by groups {self.groups}")
        return shape, []

    def torch_repr(self) -> str:
        return f"ChannelShuffle(groups={self.groups})"


@record(frozen=True, kw_only=True)
class Unflatten(Stage):
    """``nn.Unflatten(dim, unflattened_size)``: one dimension split into several (one size may be −1)."""

    dim: int
    sizes: tuple[int, ...]
    raw_sizes: tuple[int, ...] | list[int] = ()  # as written, for the repr (a list stays a list)
    kind: ClassVar[str] = "unflatten"

    @property
    def min_rank(self) -> int:
        return max(self.dim + 1 if self.dim >= 0 else -self.dim, 1)

    @property
    def max_rank(self) -> int | None:
        return None

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if not shape:
            raise LayerError("cannot unflatten a scalar (0-D input)")
        if not -len(shape) <= self.dim < len(shape):
            raise LayerError(f"dim {self.dim} is out of range for a {len(shape)}-D input {fmt_shape(shape)} "
                             f"(use {-len(shape)} to {len(shape) - 1})")  # fmt: skip
        sizes = self.sizes
        if not sizes:
            raise LayerError("unflattened_size must hold at least one size, e.g. (2, 3)")
        if sizes.count(-1) > 1:
            raise LayerError(f"unflattened_size {fmt_shape(sizes)} has more than one -1 — only one size can be inferred")
        if any(n < -1 for n in sizes):
            raise LayerError(f"unflattened_size {fmt_shape(sizes)} has a negative size — use sizes ≥ 0 and at most one -1")
        dim = self.dim % len(shape)
        n = shape[dim]
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if known == 0:
                raise LayerError(f"unflattened_size {fmt_shape(sizes)} has a 0 beside the -1, which then could be "
                                 "any size — give every size")  # fmt: skip
            if n % known:
                raise LayerError(f"unflattened_size {fmt_shape(sizes)} cannot fill dimension {dim} of size {n} "
                                 f"(input {fmt_shape(shape)}): {n} is not a multiple of {known}")  # fmt: skip
            sizes = tuple(n // known if s == -1 else s for s in sizes)
        elif known != n:
            raise LayerError(f"unflattened_size {fmt_shape(sizes)} multiplies to {known}, but dimension {dim} of the "
                             f"input {fmt_shape(shape)} has size {n}", fix=f"use sizes that multiply to {n}")  # fmt: skip
        return shape[:dim] + sizes + shape[dim + 1 :], []

    def torch_repr(self) -> str:
        return f"Unflatten(dim={self.dim}, unflattened_size={self.raw_sizes!r})"
