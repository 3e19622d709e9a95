"""What every picture file shares: the page margin, the header lines at its top, and writing it atomically."""

from __future__ import annotations

from typing import Any

from cnnops.pictures.font import LINE_H, fit_text, font

MARGIN = 8


def draw_header(draw: Any, lines: list[str], width: int, ink: Any, faint: Any) -> None:
    """``lines`` at the top left, each cut to ``width`` pixels: the first in ``ink``, the rest in ``faint``."""
    for n, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + n * LINE_H), fit_text(line, width), font=font(), fill=ink if n == 0 else faint)


def write_image(path: str, image: Any, image_format: str, **options: Any) -> None:
    """Encode in memory, then write through :func:`cnnops.io.atomic_write_bytes` (temp file + rename)."""
    import io

    from cnnops.io.write import atomic_write_bytes

    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    atomic_write_bytes(path, buffer.getvalue())
