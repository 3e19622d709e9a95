"""Feature maps in the terminal: a rich renderable drawing every channel plane of a run with half-block characters.

numpy is imported inside the functions, so importing this module costs only rich.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.color import Color
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from cnnops.choices import ColorMap
from cnnops.pictures.colour import colorize, resolve_cmap, value_range
from cnnops.pictures.planes import MapTensor, batch_size, check_batch_item, map_tensors, plane_label, planes_of
from cnnops.text import tuple_text

if TYPE_CHECKING:
    import numpy as np

    from cnnops.run.pipeline import RunResult

MAX_PLANES = 16
MAX_SIDE = 32  # pixels across a panel (one character each; two pixel rows a line)
MIN_SIDE = 12


def preview(result: RunResult, *, batch_item: int = 0, width: int | None = None) -> RenderableType:
    """The feature maps in the terminal: per stage a title and one small panel per channel plane,
    drawn with ``▀`` (foreground the upper pixel, background the lower), block-averaged to fit ``width``
    (default: the console's width). Gray for images, blue–white–red for signed data."""
    tensors = map_tensors(result)
    check_batch_item(batch_item, batch_size(tensors))
    return _Preview(tensors, batch_item, width)


class _Preview:
    def __init__(self, tensors: list[MapTensor], batch_item: int, width: int | None) -> None:
        self.tensors, self.batch_item, self.width = tensors, batch_item, width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(12, min(self.width or options.max_width, options.max_width))
        self.boxes = console.is_terminal  # no box drawing in a pipe or a file
        for n, t in enumerate(self.tensors):
            if n:
                yield Text()
            yield from self._section(t, width)

    def _section(self, t: MapTensor, width: int) -> Iterator[RenderableType]:
        planes, _ = planes_of(t, self.batch_item)
        total = planes.shape[0]
        planes = planes[:MAX_PLANES]
        used = resolve_cmap(ColorMap.auto, t.kind, planes)
        batch = f" · batch item {self.batch_item}" if t.batched else ""
        title = Text(t.title, style=Style(bold=True))
        title.truncate(max(8, width - len(suffix := f" → {tuple_text(tuple(t.data.shape))}{batch} · {used.value}")),
                       overflow="ellipsis")  # fmt: skip
        yield Text.assemble(title, (suffix, Style(dim=True)), no_wrap=True, overflow="ellipsis")
        if total == 0:
            yield Text("(empty tensor)", style=Style(dim=True))
            return
        side = max(4, min(MAX_SIDE, width - 2))
        panels: list[RenderableType] = []
        for k, plane in enumerate(planes):
            lo, hi = value_range(plane)
            rgb = colorize(_fit(plane, side), used, lo, hi)
            label = plane_label(t, k)
            if not self.boxes:
                panels.append(Group(Text(label), HalfBlocks(rgb)))
                continue
            panels.append(
                Panel(HalfBlocks(rgb), title=label, title_align="left", padding=0, expand=False,
                      width=max(rgb.shape[1], len(label) + 2) + 2, border_style=Style(dim=True))
            )  # fmt: skip
        yield Columns(panels, padding=(0, 1))
        if total > len(planes):
            yield Text(f"… {total - len(planes)} more planes (first {len(planes)} shown)", style=Style(dim=True))


def _fit(plane: np.ndarray, side: int) -> np.ndarray:
    """Block-average ``plane`` until it fits ``side × side`` pixels; small planes grow nearest-neighbour."""
    import warnings

    import numpy as np

    h, w = plane.shape
    down = max(1, math.ceil(h / side), math.ceil(w / side))
    if down > 1:
        padded = np.full((math.ceil(h / down) * down, math.ceil(w / down) * down), np.nan)
        padded[:h, :w] = plane
        blocks = padded.reshape(padded.shape[0] // down, down, padded.shape[1] // down, down)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block stays NaN
            return np.nanmean(blocks, axis=(1, 3))
    up = max(1, min(MIN_SIDE // max(h, w), side // w))
    return np.repeat(np.repeat(plane, up, axis=0), up, axis=1) if up > 1 else plane


class HalfBlocks:
    """An RGB image (``H×W×3`` uint8) as lines of ``▀``: two pixel rows a line of text."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rows = rgb.tolist()
        self.width = rgb.shape[1]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if console.no_color or console.color_system is None:
            yield from self._ramp()
            return
        styles: dict[tuple, Style] = {}
        for y in range(0, len(self.rows), 2):
            upper = self.rows[y]
            lower = self.rows[y + 1] if y + 1 < len(self.rows) else [None] * self.width
            for top, bottom in zip(upper, lower, strict=True):
                key = (tuple(top), tuple(bottom) if bottom else None)
                style = styles.get(key)
                if style is None:
                    style = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom) if bottom else None)
                    styles[key] = style
                yield Segment("▀", style)
            yield Segment.line()

    def _ramp(self) -> RenderResult:
        """Without colour (a pipe, NO_COLOR): one character a cell, darker characters for darker pixels."""
        ramp = "@%#*+=-:. "
        for y in range(0, len(self.rows), 2):
            upper = self.rows[y]
            lower = self.rows[y + 1] if y + 1 < len(self.rows) else upper
            line = []
            for top, bottom in zip(upper, lower, strict=True):
                light = (sum(top) + sum(bottom)) / (6 * 255)
                line.append(ramp[min(len(ramp) - 1, int(light * len(ramp)))])
            yield Segment("".join(line))
            yield Segment.line()
