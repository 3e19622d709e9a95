"""Pictures of a run: feature maps as PNG files, and the same maps drawn in the terminal.

:func:`save_maps` writes one PNG per tensor (the input and every stage), each channel plane tiled
in a grid, scaled to 0–255 and upscaled nearest-neighbour so that a 3×3 plane is still visible.
:func:`preview` draws the planes with rich's half-block characters. :func:`animate` (in
:mod:`cnnops.pictures.animation`) draws a sliding window as a GIF. numpy and PIL are imported inside the
functions, so importing this module costs only rich.

>>> ColorMap("signed"), Scale("shared")
(<ColorMap.signed: 'signed'>, <Scale.shared: 'shared'>)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rich.color import Color
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from cnnops.choices import ColorMap, Scale
from cnnops.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from cnnops.run.pipeline import RunResult


SIGNED_KINDS = ("conv", "conv_transpose", "linear")
NEGATIVE_RGB = (33, 102, 172)
POSITIVE_RGB = (178, 24, 43)
NAN_RGB = (255, 0, 255)
MIN_SIDE = 96  # planes are upscaled by an integer factor until their longer side reaches this
MIN_STRIP_HEIGHT = 12
PIXEL_BUDGET = 2**24  # upscaling stops before a picture holds more plane pixels than this
MAX_PLANES = 1024
MARGIN, GAP = 8, 8
CHAR_W, LINE_H = 6, 12  # Pillow's bitmap font: 6 px a character, 11 px high
BACKGROUND, INK, FAINT = (255, 255, 255), (0, 0, 0), (110, 110, 110)
BORDER = (150, 150, 170)  # a colour neither colour map produces, so a plane's frame can be found in the picture
PREVIEW_MAX_PLANES = 16
PREVIEW_MAX_SIDE = 32  # pixels across a preview panel (one character each; two pixel rows a line)
PREVIEW_MIN_SIDE = 12

# The bitmap font has Latin-1 glyphs only; the formulas use a few more.
_LATIN1 = str.maketrans({"⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")", "−": "-", "–": "-", "—": "-",
                         "→": "->", "≥": ">=", "≤": "<=", "…": "...", "Σ": "sum", "⋮": ":", "′": "'"})  # fmt: skip


# ---------------------------------------------------------------------------------------------- tensors


@dataclass
class MapTensor:
    """One tensor of a run as the pictures see it: which stage made it and how its planes lie."""

    position: int  # 0 for the input, else the stage index
    name: str  # lower-case layer name, or "input"
    title: str  # "01 Conv2d(1, 4, 4)"
    data: np.ndarray
    nd: int  # spatial dimensions (0: features, no spatial layout)
    kind: str  # the stage kind ("input" for the input)
    batched: bool = False


def map_tensors(result: RunResult) -> list[MapTensor]:
    """The input and every stage output, with their layout: spatial dims and whether batched."""
    nd = _input_nd(result)
    width = max(2, len(str(len(result.results))))
    tensors = [MapTensor(0, "input", f"{0:0{width}d} input", result.input, nd, "input")]
    for res in result.results:
        stage = res.row.stage
        if stage.spatial:
            nd = stage.nd
        elif not stage.keeps_layout:
            nd = 0
        index = res.row.index
        tensors.append(
            MapTensor(index, stage.name.lower(), f"{index:0{width}d} {stage.call}", res.output, nd, stage.kind)
        )
    batch = next((t.data.shape[0] for t in tensors if t.nd and t.data.ndim == t.nd + 2), None)
    for t in tensors:
        if t.nd:
            t.batched = t.data.ndim == t.nd + 2
        else:
            t.batched = batch is not None and t.data.ndim >= 2 and t.data.shape[0] == batch
    return tensors


def _input_nd(result: RunResult) -> int:
    for row in result.trace.rows:
        if row.stage.nd and (row.stage.spatial or row.stage.keeps_layout):
            return row.stage.nd
        if not row.stage.keeps_layout:
            return 0
    return 2 if result.input.ndim >= 2 else 0


def batch_size(tensors: list[MapTensor]) -> int:
    return next((t.data.shape[0] for t in tensors if t.batched), 1)


def check_batch_item(batch_item: int, size: int) -> None:
    if size == 0:
        raise InputError("the batch is empty (0 items): there are no feature maps to draw — give at least one item")
    if not 0 <= batch_item < size:
        choices = "0" if size == 1 else f"0 to {size - 1}"
        items = "1 item" if size == 1 else f"{size} items"
        raise InputError(f"batch item {batch_item} is out of range: the batch has {items} — use --batch-item {choices}")


def planes_of(t: MapTensor, batch_item: int) -> tuple[np.ndarray, bool]:
    """``(P, h, w)`` float64 planes of one batch item, and whether they are 1-D strips (h = 1)."""
    import numpy as np

    a = np.asarray(t.data, dtype=np.float64)
    if t.batched and a.shape[0]:
        a = a[min(batch_item, a.shape[0] - 1)]
    if a.size == 0:
        return np.zeros((0, 1, 1)), False
    if t.nd == 1 or (t.nd == 0 and a.ndim <= 1) or a.ndim <= 1:
        return a.reshape(-1, 1, a.shape[-1] if a.ndim else 1), True
    return a.reshape(-1, a.shape[-2], a.shape[-1]), False


def resolve_cmap(cmap: ColorMap, kind: str, planes: np.ndarray) -> ColorMap:
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
        white = np.array(BACKGROUND, dtype=np.float64)
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


def short_number(value: float) -> str:
    """A number in a few characters for labels: ``-4``, ``0.25``, ``1.23e+04``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


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


def write_image(path: str, image: Any, image_format: str, **options: Any) -> None:
    """Encode in memory, then write through :func:`cnnops.io.atomic_write_bytes` (temp file + rename)."""
    import io

    from cnnops.io.write import atomic_write_bytes

    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------------- PNG maps


def save_maps(
    result: RunResult,
    directory: str,
    *,
    batch_item: int = 0,
    scale: Scale = Scale.plane,
    cmap: ColorMap = ColorMap.auto,
) -> list[str]:
    """Write ``00-input.png``, ``01-conv2d.png``, … into ``directory`` (created if needed): each
    tensor's channel planes tiled in a grid, labelled; returns the paths written, in pipeline order.
    """
    tensors = map_tensors(result)
    check_batch_item(batch_item, batch_size(tensors))
    scale, cmap = Scale(scale), ColorMap(cmap)
    _make_directory(directory)
    width = max(2, len(str(len(result.results))))
    paths = []
    for t in tensors:
        path = os.path.join(directory, f"{t.position:0{width}d}-{t.name}.png")
        write_image(path, render_map(t, batch_item=batch_item, scale=scale, cmap=cmap), "PNG")
        paths.append(path)
    return paths


def _make_directory(directory: str) -> None:
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise InputError(f"'{directory}' exists and is not a directory — give --save-maps a directory name")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the directory '{directory}': {exc.strerror or exc}") from None


def render_map(t: MapTensor, *, batch_item: int = 0, scale: Scale = Scale.plane, cmap: ColorMap = ColorMap.auto) -> Any:
    """One tensor as an RGB image: a header (stage, shape, colour map), then one labelled tile a plane."""
    import numpy as np
    from PIL import Image, ImageDraw

    planes, strip = planes_of(t, batch_item)
    total = planes.shape[0]
    planes = planes[:MAX_PLANES]
    count, h, w = planes.shape
    used = resolve_cmap(cmap, t.kind, planes)
    fx, fy = _upscale(count, h, w, strip)
    ranges = [value_range(p) for p in planes]
    shared = value_range(planes) if count else (0.0, 0.0)
    captions = [(f"ch {k}", f"{short_number(lo)} .. {short_number(hi)}") for k, (lo, hi) in enumerate(ranges)]
    tile_w = max([w * fx + 2, *(text_width(c) for pair in captions for c in pair)])
    tile_h = 2 * LINE_H + 2 + h * fy + 2
    cols = 1 if strip else max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / cols) if count else 0
    grid_w = cols * tile_w + (cols - 1) * GAP

    batch = f" · batch item {batch_item}" if t.batched else ""
    more = f" · first {count} of {total} planes" if total > count else ""
    empty = " · empty tensor" if total == 0 else ""
    scale_text = f"{used.value}, {scale.value} scale" + (
        f" {short_number(shared[0])} .. {short_number(shared[1])}" if scale is Scale.shared and count else ""
    )
    header = [t.title, f"{shape_text(tuple(t.data.shape))}{batch}{more}{empty} · {scale_text}"]
    width = max(grid_w, min(max(text_width(line) for line in header), max(grid_w, 720)), 160)
    top = MARGIN + len(header) * LINE_H + GAP
    canvas = Image.new(
        "RGB", (width + 2 * MARGIN, top + rows * (tile_h + GAP) - (GAP if rows else 0) + MARGIN), BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    for n, line in enumerate(header):
        draw.text((MARGIN, MARGIN + n * LINE_H), fit_text(line, width), font=font(), fill=INK if n == 0 else FAINT)
    for k in range(count):
        lo, hi = shared if scale is Scale.shared else ranges[k]
        rgb = colorize(planes[k], used, lo, hi)
        rgb = np.repeat(np.repeat(rgb, fy, axis=0), fx, axis=1)
        x = MARGIN + (k % cols) * (tile_w + GAP)
        y = top + (k // cols) * (tile_h + GAP)
        draw.text((x, y), captions[k][0], font=font(), fill=INK)
        draw.text((x, y + LINE_H), latin1(captions[k][1]), font=font(), fill=FAINT)
        py = y + 2 * LINE_H + 2
        draw.rectangle((x, py, x + w * fx + 1, py + h * fy + 1), outline=BORDER)
        canvas.paste(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), (x + 1, py + 1))
    return canvas


def _upscale(count: int, h: int, w: int, strip: bool) -> tuple[int, int]:
    """Integer (x, y) factors: the longer side reaches MIN_SIDE, the whole stays within PIXEL_BUDGET."""
    factor = max(1, math.ceil(MIN_SIDE / max(h, w, 1)))
    budget = max(1, math.isqrt(PIXEL_BUDGET // max(1, count * h * w)))
    factor = min(factor, budget)
    return factor, max(factor, MIN_STRIP_HEIGHT) if strip else factor


# ---------------------------------------------------------------------------------------------- terminal


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
        planes = planes[:PREVIEW_MAX_PLANES]
        used = resolve_cmap(ColorMap.auto, t.kind, planes)
        batch = f" · batch item {self.batch_item}" if t.batched else ""
        title = Text(t.title, style=Style(bold=True))
        title.truncate(max(8, width - len(suffix := f" → {shape_text(tuple(t.data.shape))}{batch} · {used.value}")),
                       overflow="ellipsis")  # fmt: skip
        yield Text.assemble(title, (suffix, Style(dim=True)), no_wrap=True, overflow="ellipsis")
        if total == 0:
            yield Text("(empty tensor)", style=Style(dim=True))
            return
        side = max(4, min(PREVIEW_MAX_SIDE, width - 2))
        panels: list[RenderableType] = []
        for k, plane in enumerate(planes):
            lo, hi = value_range(plane)
            rgb = colorize(_fit(plane, side), used, lo, hi)
            label = f"ch {k}"
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
    up = max(1, min(PREVIEW_MIN_SIDE // max(h, w), side // w))
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


# ---------------------------------------------------------------------------------------------- GIF


def animate(result: RunResult, stage_index: int, path: str, *, batch_item: int = 0, channel: int = 0,
            indices: np.ndarray | None = None) -> int:  # fmt: skip
    """Draw stage ``stage_index``'s sliding window (or an unpool's values flying back) as a looping GIF
    at ``path``, one frame per output cell; returns the number of frames. See :mod:`cnnops.pictures.animation`."""
    from cnnops.pictures.animation import animate as draw_animation

    return draw_animation(result, stage_index, path, batch_item=batch_item, channel=channel, indices=indices)
