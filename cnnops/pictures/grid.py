"""Planes drawn as tables of numbered cells on a paletted canvas: the building blocks of the animation frames.

>>> g = Grid("input 4×4", rows=[-1, 0, 1, 2, 3, 4], cols=[-1, 0, 1, 2, 3, 4], cell_w=22)
>>> g.label_w, g.box(0, 0), g.at(0, 0)
(18, (18, 24, 40, 40), (40, 40, 62, 56))
"""

from __future__ import annotations

from typing import Any

from cnnops.pictures.canvas import MARGIN, draw_header
from cnnops.pictures.font import CHAR_W, LINE_H, font, latin1, text_width
from cnnops.records import record

CELL_H = 16
PANEL_GAP = 28

# A fixed palette: frames are drawn in "P" mode, so every frame has exactly these colours.
WHITE, BLACK, GRID, PAD, WINDOW, OUTLINE, WINNER, WINNER_FILL, CURRENT, EMPTY, FAINT, ARROW = range(12)
PALETTE = [
    (255, 255, 255), (0, 0, 0), (150, 150, 150), (222, 222, 222), (255, 224, 102), (230, 120, 0),
    (200, 0, 0), (255, 165, 145), (150, 225, 150), (243, 243, 243), (110, 110, 110), (33, 102, 172),
]  # fmt: skip


@record
class Grid:
    """A plane drawn as a table of numbered cells, with its title and row/column indices."""

    title: str
    rows: list[int]  # the coordinate each row shows (negative ones are padding)
    cols: list[int]
    cell_w: int
    one_d: bool = False
    x: int = 0
    y: int = 0

    @property
    def label_w(self) -> int:
        return 0 if self.one_d else max(len(str(r)) for r in self.rows) * CHAR_W + 6

    @property
    def width(self) -> int:
        return max(self.label_w + len(self.cols) * self.cell_w + 1, text_width(self.title))

    @property
    def height(self) -> int:
        return 2 * LINE_H + len(self.rows) * CELL_H + 1

    def box(self, r: int, c: int) -> tuple[int, int, int, int]:
        """Pixel box of the cell at row position ``r``, column position ``c`` (list positions)."""
        x0 = self.x + self.label_w + c * self.cell_w
        y0 = self.y + 2 * LINE_H + r * CELL_H
        return x0, y0, x0 + self.cell_w, y0 + CELL_H

    def at(self, row: int, col: int) -> tuple[int, int, int, int]:
        """Pixel box of the cell showing coordinate (row, col)."""
        return self.box(self.rows.index(row), self.cols.index(col))

    def centre(self, row: int, col: int) -> tuple[int, int]:
        x0, y0, x1, y1 = self.at(row, col)
        return (x0 + x1) // 2, (y0 + y1) // 2

    def draw_frame(self, draw: Any) -> None:
        draw.text((self.x, self.y), latin1(self.title), font=font(), fill=BLACK)
        for c, col in enumerate(self.cols):
            x0, _, x1, _ = self.box(0, c)
            label = str(col)
            draw.text(((x0 + x1 - text_width(label)) // 2, self.y + LINE_H), label, font=font(), fill=FAINT)
        if not self.one_d:
            for r, row in enumerate(self.rows):
                _, y0, _, _ = self.box(r, 0)
                label = str(row)
                draw.text((self.x + self.label_w - 6 - text_width(label), y0 + 3), label, font=font(), fill=FAINT)

    def draw_cell(self, draw: Any, row: int, col: int, text: str, fill: int, ink: int = BLACK) -> None:
        x0, y0, x1, y1 = self.at(row, col)
        draw.rectangle((x0, y0, x1, y1), fill=fill, outline=GRID)
        if text:
            draw.text(((x0 + x1 - text_width(text) + 1) // 2, y0 + 3), latin1(text), font=font(), fill=ink)


def cell_width(texts: list[str]) -> int:
    """A cell wide enough for every one of ``texts``."""
    return max(22, *(text_width(t) + 8 for t in texts))


def blank_frame(grids: list[Grid], header: list[str], captions: list[str]) -> tuple[Any, int]:
    """A blank "P" canvas with the grids placed side by side (1-D: one above the other); returns it
    and the y where the captions start."""
    from PIL import Image

    x, y = MARGIN, MARGIN + len(header) * LINE_H + 8
    for grid in grids:
        grid.x, grid.y = x, y
        if grid.one_d:  # 1-D planes are long rows: stack them, input above output
            y += grid.height + 8
        else:
            x += grid.width + PANEL_GAP
    grid_w = max([g.x + g.width for g in grids], default=MARGIN) - MARGIN
    width = max(grid_w, *(text_width(line) for line in [*header, *captions]), 240) + 2 * MARGIN
    caption_y = max([g.y + g.height for g in grids], default=y) + 10
    height = caption_y + (len(captions) + 1) * LINE_H + MARGIN
    image = Image.new("P", (width, height), WHITE)
    image.putpalette([v for rgb in PALETTE for v in rgb])
    return image, caption_y


def draw_static(image: Any, grids: list[Grid], header: list[str], captions: list[str], caption_y: int) -> Any:
    """Draw what every frame shows (header, grid frames, captions) on ``image``; returns its ImageDraw."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    draw_header(draw, header, image.width, BLACK, FAINT)
    for grid in grids:
        grid.draw_frame(draw)
    for n, line in enumerate(captions):
        draw.text((MARGIN, caption_y + n * LINE_H), latin1(line), font=font(), fill=FAINT)
    return draw
