"""Feature maps as PNG files: one picture per tensor of a run, its channel planes tiled in a grid and labelled.

:func:`save_maps` writes one PNG per tensor (the input and every stage), each channel plane scaled to
0–255 and upscaled nearest-neighbour so that a 3×3 plane is still visible; :func:`render_map` draws one
of them. numpy and PIL are imported inside the functions.

>>> _upscale(count=4, h=3, w=3, strip=False), _upscale(count=1, h=1, w=7, strip=True)
((32, 32), (14, 14))
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from cnnops.choices import ColorMap, Scale
from cnnops.errors import InputError
from cnnops.pictures.canvas import MARGIN, draw_header, write_image
from cnnops.pictures.colour import colorize, resolve_cmap, value_range
from cnnops.pictures.font import LINE_H, font, latin1, short_number, text_width
from cnnops.pictures.planes import MapTensor, batch_size, check_batch_item, map_tensors, plane_label, planes_of
from cnnops.text import tuple_text

if TYPE_CHECKING:
    from cnnops.run.pipeline import RunResult

MIN_SIDE = 96  # planes are upscaled by an integer factor until their longer side reaches this
MIN_STRIP_HEIGHT = 12
PIXEL_BUDGET = 2**24  # upscaling stops before a picture holds more plane pixels than this
MAX_PLANES = 1024
GAP = 8
BACKGROUND, INK, FAINT = (255, 255, 255), (0, 0, 0), (110, 110, 110)
BORDER = (150, 150, 170)  # a colour neither colour map produces, so a plane's frame can be found in the picture


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
        raise InputError(
            f"'{directory}' exists and is not a directory — the feature maps need a directory: "
            "give a new name or an existing directory"
        )
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
    captions = [(plane_label(t, k), f"{short_number(lo)} .. {short_number(hi)}") for k, (lo, hi) in enumerate(ranges)]
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
    header = [t.title, f"{tuple_text(tuple(t.data.shape))}{batch}{more}{empty} · {scale_text}"]
    width = max(grid_w, min(max(text_width(line) for line in header), max(grid_w, 720)), 160)
    top = MARGIN + len(header) * LINE_H + GAP
    canvas = Image.new(
        "RGB", (width + 2 * MARGIN, top + rows * (tile_h + GAP) - (GAP if rows else 0) + MARGIN), BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    draw_header(draw, header, width, INK, FAINT)
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
