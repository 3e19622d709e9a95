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
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from cnnops.choices import ColorMap, Scale
from cnnops.errors import InputError
from cnnops.io.write import signals_deferred, temp_prefix
from cnnops.pictures.canvas import MARGIN, draw_header
from cnnops.pictures.colour import colorize, resolve_cmap, value_range
from cnnops.pictures.font import LINE_H, font, latin1, short_number, text_width
from cnnops.pictures.planes import MapTensor, batch_size, check_batch_item, map_layout, map_tensors, planes_of
from cnnops.text import echo, tuple_text

if TYPE_CHECKING:
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import RunResult

MIN_SIDE = 96  # planes are upscaled by an integer factor until their longer side reaches this
MIN_STRIP_HEIGHT = 12
PIXEL_BUDGET = 2**24  # upscaling stops before a picture holds more plane pixels than this
MAX_PLANES = 1024
GAP = 8
BACKGROUND, INK, FAINT = (255, 255, 255), (0, 0, 0), (110, 110, 110)
BORDER = (150, 150, 170)  # a colour neither colour map produces, so a plane's frame can be found in the picture
#: the names of the files save_maps writes (and so owns: stale ones from an earlier run are removed)
MAP_FILE = re.compile(r"^\d{2,}-[a-z0-9_]+\.png$")


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

    The set is written into a hidden temporary folder first and moved into place only when complete,
    so an interruption or a full disk leaves no partial set; map files of an earlier run that this
    run does not write again are removed, and other files in ``directory`` are left alone."""
    tensors = map_tensors(result)
    check_batch_item(batch_item, batch_size(tensors))
    scale, cmap = Scale(scale), ColorMap(cmap)
    names = map_names(result.trace)
    check_maps_directory(directory)
    staging = None
    try:
        parent = os.path.dirname(os.path.abspath(directory))
        os.makedirs(parent, exist_ok=True)
        home = directory if os.path.isdir(directory) else parent
        with signals_deferred():
            staging = tempfile.mkdtemp(dir=home, prefix=temp_prefix(home, os.path.basename(directory)), suffix=".tmp")
        for t, name in zip(tensors, names):
            render_map(t, batch_item=batch_item, scale=scale, cmap=cmap).save(os.path.join(staging, name), "PNG")
        _move_into_place(staging, directory, names)
        staging = None
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise InputError(
                f"cannot write the feature maps into '{echo(directory)}': {exc.strerror or exc}"
            ) from None
        raise
    return [os.path.join(directory, name) for name in names]


def map_names(trace: Trace) -> list[str]:
    """The file names :func:`save_maps` writes for a run: ``00-input.png``, ``01-conv2d.png``, …"""
    width = max(2, len(str(len(trace.rows))))
    return [f"{t.position:0{width}d}-{t.name}.png" for t in map_layout(trace)]


def check_maps_directory(directory: str) -> None:
    """Fail before any work starts if the feature maps cannot be written into ``directory``."""
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise InputError(
            f"'{echo(directory)}' exists and is not a directory — the feature maps need a directory: "
            "give a new name or an existing directory"
        )
    existing = os.path.abspath(directory)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"cannot create the directory '{echo(directory)}': '{echo(existing)}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write the feature maps into '{echo(directory)}': '{echo(existing)}' is not writable")


def _move_into_place(staging: str, directory: str, names: list[str]) -> None:
    """The finished set into ``directory``: the staging folder renamed when there is nothing there yet,
    else each file replaced in turn and the stale map files of an earlier run removed."""
    if not os.path.lexists(directory):
        try:
            os.rename(staging, directory)
            return
        except OSError:
            if not os.path.isdir(directory):
                raise
    for name in names:
        os.replace(os.path.join(staging, name), os.path.join(directory, name))
    os.rmdir(staging)
    for name in os.listdir(directory):
        if MAP_FILE.match(name) and name not in names:
            os.unlink(os.path.join(directory, name))


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
