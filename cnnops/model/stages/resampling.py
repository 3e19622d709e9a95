"""Upsample (and its presets UpsamplingNearest2d, UpsamplingBilinear2d): ``F.interpolate``'s sizes and checks.

The number of spatial dims is the input's rank − 2 (3-D, 4-D or 5-D input). With ``scale_factor`` the
output length is ``⌊L·s⌋`` (truncated as PyTorch converts the float product); the interpolation then
uses the given scale unless ``recompute_scale_factor=True``, which uses ``L_in/L_out`` instead.
No parameters, 0 MACs.
"""

from __future__ import annotations

import math
from typing import ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.model.stages.base import SPATIAL_NAMES, Shape, Stage, _rank_text, fmt_shape
from cnnops.records import record

#: the modes cnnops computes, with the input rank each needs (None: 3-D, 4-D or 5-D)
UPSAMPLE_MODES: dict[str, int | None] = {"nearest": None, "linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
#: modes F.interpolate has that cnnops does not compute, and why
UNSUPPORTED_MODES = {
    "area": "mode='area' is adaptive average pooling — write AdaptiveAvgPool1d/2d/3d with the output size",
    "nearest-exact": "mode='nearest-exact' is not supported by cnnops yet — use mode='nearest'",
}
_INT64_MAX = 2**63 - 1


def _tuple_text(values: tuple[int, ...] | tuple[float, ...]) -> str:
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


@record(frozen=True, kw_only=True)
class Upsample(Stage):
    """``nn.Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None, recompute_scale_factor=None)``.

    ``size`` and ``scale_factor`` are kept as PyTorch keeps them (a number or a tuple; a zero
    ``scale_factor`` is None, as ``nn.Upsample`` stores it)."""

    size: int | tuple[int, ...] | None = None
    scale_factor: float | tuple[float, ...] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None
    kind: ClassVar[str] = "upsample"
    spatial: ClassVar[bool] = True

    @property
    def min_rank(self) -> int:
        return self.nd + 2 if self.nd else 3

    @property
    def max_rank(self) -> int | None:
        return self.nd + 2 if self.nd else 5

    def output_spatial_nd(self, out: Shape, source_nd: int) -> int:
        return len(out) - 2

    def scales(self, dim: int) -> tuple[float | None, ...]:
        """The scale the kernels use per spatial dim (None: they compute ``L_in/L_out``)."""
        if self.scale_factor is None or self.recompute_scale_factor:
            return (None,) * dim
        return self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * dim

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        if self.mode in UNSUPPORTED_MODES:
            raise LayerError(UNSUPPORTED_MODES[self.mode])
        if self.mode == "nearest" and self.align_corners is not None:
            raise LayerError("align_corners can only be set with mode linear, bilinear, bicubic or trilinear — "
                             "leave it out for mode='nearest'")  # fmt: skip
        dim = len(shape) - 2
        size, scale = self.size, self.scale_factor
        if size is not None and scale is not None:
            raise LayerError("give either size or scale_factor, not both")
        if size is None and scale is None:
            raise LayerError("needs size or scale_factor (a scale_factor of 0 counts as none, as in PyTorch)")
        for what, value in (("size", size), ("scale_factor", scale)):
            if isinstance(value, tuple) and len(value) != dim:
                raise LayerError(
                    f"{what} {_tuple_text(value)} has {len(value)} entr{'y' if len(value) == 1 else 'ies'} but the "
                    f"input {fmt_shape(shape)} has {dim} spatial dimension{'s' if dim != 1 else ''} (N, C, …) — "
                    f"give {max(dim, 0)}"
                )
        if self.recompute_scale_factor and size is not None:
            raise LayerError("recompute_scale_factor means nothing with an explicit size — leave it out")
        want = UPSAMPLE_MODES[self.mode]
        if not 3 <= len(shape) <= 5 or (want is not None and len(shape) != want):
            expected = f"a {want}-D input (N, C, …)" if want else "a 3-D, 4-D or 5-D input (N, C, …)"
            raise LayerError(f"mode='{self.mode}' needs {expected}, got {_rank_text(shape)}")
        names = SPATIAL_NAMES[dim]
        lengths = shape[2:]
        formulas = []
        if size is not None:
            sizes = size if isinstance(size, tuple) else (size,) * dim
            formulas = [Formula(name, "size", str(n), n) for name, n in zip(names, sizes)]
        else:
            factors: tuple[float, ...] = scale if isinstance(scale, tuple) else (float(scale or 0),) * dim
            for name, n, s in zip(names, lengths, factors):
                product = n * s
                if not math.isfinite(product) or abs(product) >= _INT64_MAX:
                    raise LayerError(f"scale_factor {s} makes {name} = {n}·{s} = {product}, too big for a size")
                out = int(product)  # truncated, as PyTorch converts the float product
                formulas.append(Formula(name, f"⌊{n} · {s}⌋", f"⌊{product:g}⌋ = {out}", out))
        # an empty batch passes; every other dim and every output size must be at least 1
        if 0 in shape[1:] or any(f.result <= 0 for f in formulas):
            given = " × ".join(map(str, lengths))
            sizes_text = " × ".join(str(f.result) for f in formulas)
            raise LayerError(
                f"input and output sizes must be greater than 0: input {fmt_shape(shape)} ({given}), "
                f"output {sizes_text}"
            )
        return shape[:2] + tuple(f.result for f in formulas), formulas

    def torch_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{self.name}({info}, mode={self.mode!r})"
