"""Colour maps for feature maps: value ranges, gray for images, blue–white–red for signed data, NaN in magenta.

>>> import numpy as np
>>> colorize(np.array([-2.0, 0.0, 1.0, float("nan")]), ColorMap.signed, -2.0, 1.0).tolist()
[[33, 102, 172], [255, 255, 255], [216, 140, 149], [255, 0, 255]]
>>> colorize(np.array([0.0, 0.5, 2.0, float("inf")]), ColorMap.gray, 0.0, 2.0)[:, 0].tolist()
[0, 64, 255, 255]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnops.choices import ColorMap

if TYPE_CHECKING:
    import numpy as np

SIGNED_KINDS = ("conv", "conv_transpose", "linear")  # learned weights: their outputs are signed
NEGATIVE_RGB = (33, 102, 172)
WHITE_RGB = (255, 255, 255)
POSITIVE_RGB = (178, 24, 43)
NAN_RGB = (255, 0, 255)


def resolve_cmap(cmap: ColorMap, kind: str, planes: np.ndarray) -> ColorMap:
    """``auto`` made concrete: signed for a stage with weights or for data with a negative value, else gray."""
    import numpy as np

    if cmap is not ColorMap.auto:
        return ColorMap(cmap)
    with np.errstate(invalid="ignore"):
        negative = bool((planes < 0).any())
    return ColorMap.signed if kind in SIGNED_KINDS or negative else ColorMap.gray


def value_range(values: np.ndarray) -> tuple[float, float]:
    """Smallest and largest finite value (0, 0 when there is none)."""
    import numpy as np

    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def colorize(values: np.ndarray, cmap: ColorMap, lo: float, hi: float) -> np.ndarray:
    """``values`` as uint8 RGB (``…×3``): gray stretches [lo, hi] over black–white; signed maps
    −max|v| → blue, 0 → white, +max|v| → red. NaN is magenta; ±inf take the ends of the scale."""
    import numpy as np

    nan = np.isnan(values)
    v = np.where(nan, 0.0, values)
    if cmap is ColorMap.signed:
        m = max(abs(lo), abs(hi))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(v / m, -1, 1) if m > 0 else np.zeros_like(v)
        white = np.array(WHITE_RGB, dtype=np.float64)
        end = np.where(
            (t < 0)[..., None], np.array(NEGATIVE_RGB, dtype=np.float64), np.array(POSITIVE_RGB, dtype=np.float64)
        )
        rgb = white + np.abs(t)[..., None] * (end - white)
    else:
        if hi > lo:
            with np.errstate(invalid="ignore", over="ignore"):
                t = np.clip((v - lo) / (hi - lo), 0, 1)
        else:  # a constant plane: black when it is zero or less, white when positive
            t = np.where(v > lo, 1.0, np.where(v < lo, 0.0, 1.0 if lo > 0 else 0.0))
        rgb = np.repeat((t * 255)[..., None], 3, axis=-1)
    rgb = np.rint(rgb).astype(np.uint8)
    rgb[nan] = NAN_RGB
    return rgb
