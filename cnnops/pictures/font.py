"""The pictures' lettering: Pillow's bitmap font, the Latin-1 text it can draw, widths, cutting to fit, short numbers.

>>> latin1("⌊59/2⌋ − 1 → 28"), short_number(-4.0), short_number(0.25), short_number(12345.6)
('floor(59/2) - 1 -> 28', '-4', '0.25', '1.23e+04')
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

CHAR_W, LINE_H = 6, 12  # Pillow's bitmap font: 6 px a character, 11 px high

# The bitmap font has Latin-1 glyphs only; the formulas use a few more.
_LATIN1 = str.maketrans({"⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")", "−": "-", "–": "-", "—": "-",
                         "→": "->", "≥": ">=", "≤": "<=", "…": "...", "Σ": "sum", "⋮": ":", "′": "'"})  # fmt: skip


def latin1(text: str) -> str:
    """``text`` as the bitmap font can draw it (``⌊59/2⌋`` → ``floor(59/2)``)."""
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


@lru_cache(maxsize=1)
def font() -> Any:
    """Pillow's built-in bitmap font: the same pixels on every machine, no FreeType involved."""
    from PIL import ImageFont

    loader = getattr(ImageFont, "load_default_imagefont", None)
    return loader() if loader is not None else ImageFont.load_default()


def text_width(text: str) -> int:
    """Pixels across ``text`` in the bitmap font."""
    return int(font().getlength(latin1(text))) if text else 0


def fit_text(text: str, width: int) -> str:
    """``text`` cut with ``...`` to fit ``width`` pixels."""
    text = latin1(text)
    if text_width(text) <= width:
        return text
    keep = max(0, width // CHAR_W - 3)
    while keep and text_width(text[:keep] + "...") > width:
        keep -= 1
    return text[:keep] + "..."


def short_number(value: float) -> str:
    """A number in a few characters for labels: ``-4``, ``0.25``, ``1.23e+04``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"
