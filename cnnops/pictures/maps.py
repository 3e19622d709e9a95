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
import stat
from typing import TYPE_CHECKING, Any

from cnnops.choices import ColorMap, Scale
from cnnops.errors import InputError
from cnnops.io.deferral import signals_deferred
from cnnops.io.write import make_temp_directory
from cnnops.pictures.canvas import MARGIN, draw_header
from cnnops.pictures.colour import colorize, resolve_cmap, value_range
from cnnops.pictures.font import LINE_H, font, latin1, short_number, text_width
from cnnops.pictures.planes import (
    MapTensor,
    batch_size,
    check_batch_item,
    map_layout,
    map_tensors,
    plane_label,
    planes_of,
)
from cnnops.text import echo, tuple_text

if TYPE_CHECKING:
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import RunResult

MIN_SIDE = 96  # planes are upscaled by an integer factor until their longer side reaches this
MIN_STRIP_HEIGHT = 12
PIXEL_BUDGET = 2**24  # upscaling stops before a picture holds more plane pixels than this
MAX_PLANES = 1024
#: stages whose filters get a picture of their own
FILTERED_KINDS = ("conv", "conv_transpose")
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
    tensor's channel planes tiled in a grid, labelled, with axis ticks and a colour bar, every tensor
    drawn at the same pixels per cell so that a pooled map is visibly smaller than its input; a stage
    with filters also gets ``01-conv2d-filters.png``. Returns the paths written, in pipeline order.

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
            staging = make_temp_directory(home, os.path.basename(directory))
        factor = common_factor(tensors, batch_item)
        pictures = iter(names)
        for t in tensors:
            res = result.results[t.position - 1] if t.position else None
            if t.kind in FILTERED_KINDS:
                # "01-conv2d-filters.png" sorts before "01-conv2d.png": the weights, then what they made
                assert res is not None and res.weight is not None
                render_filters(res.weight, f"{t.title}: filters", t.kind).save(os.path.join(staging, next(pictures)), "PNG")
            render_map(t, batch_item=batch_item, scale=scale, cmap=cmap, factor=factor).save(
                os.path.join(staging, next(pictures)), "PNG"
            )
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
    names = []
    for t in map_layout(trace):
        if t.kind in FILTERED_KINDS:
            names.append(f"{t.position:0{width}d}-{t.name}-filters.png")
        names.append(f"{t.position:0{width}d}-{t.name}.png")
    return names


def common_factor(tensors: list[MapTensor], batch_item: int) -> int:
    """One upscale factor for every tensor of a run (true relative sizes): the largest plane's longer
    side reaches MIN_SIDE, and no picture holds more than PIXEL_BUDGET plane pixels."""
    sizes = []
    for t in tensors:
        planes, _ = planes_of(t, batch_item)
        count, h, w = planes[:MAX_PLANES].shape
        sizes.append((max(count, 1), h, w))
    longest = max([max(h, w) for _, h, w in sizes] + [1])
    factor = max(1, math.ceil(MIN_SIDE / longest))
    for count, h, w in sizes:
        factor = min(factor, max(1, math.isqrt(PIXEL_BUDGET // max(1, count * h * w))))
    return factor


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
    else each file replaced in turn (a replaced file keeps its permissions, as io.write's files do) and
    the stale map files of an earlier run removed."""
    if not os.path.lexists(directory):
        try:
            os.rename(staging, directory)
            return
        except OSError:
            if not os.path.isdir(directory):
                raise
    for name in names:
        staged, target = os.path.join(staging, name), os.path.join(directory, name)
        try:
            found = os.lstat(target)
        except OSError:
            found = None
        if found is not None and stat.S_ISREG(found.st_mode):
            os.chmod(staged, stat.S_IMODE(found.st_mode))
        os.replace(staged, target)
    os.rmdir(staging)
    for name in os.listdir(directory):
        if MAP_FILE.match(name) and name not in names:
            os.unlink(os.path.join(directory, name))


def render_map(t: MapTensor, *, batch_item: int = 0, scale: Scale = Scale.plane, cmap: ColorMap = ColorMap.auto,
               factor: int | None = None) -> Any:  # fmt: skip
    """One tensor as an RGB image: a header (stage, shape, colour map) and colour bar, then one labelled
    tile a plane with axis ticks; an input of 3 channels also gets its RGB composite. ``factor``: pixels
    per cell (default: enough for the longer side to reach MIN_SIDE)."""
    import numpy as np
    from PIL import Image, ImageDraw

    planes, strip = planes_of(t, batch_item)
    total = planes.shape[0]
    planes = planes[:MAX_PLANES]
    count, h, w = planes.shape
    used = resolve_cmap(cmap, t.kind, planes)
    if factor is None:
        fx, fy = _upscale(count, h, w, strip)
    else:
        fx, fy = factor, max(factor, MIN_STRIP_HEIGHT) if strip else factor
    ranges = [value_range(p) for p in planes]
    shared = value_range(planes) if count else (0.0, 0.0)
    captions = [(plane_label(t, k), f"{short_number(lo)} .. {short_number(hi)}") for k, (lo, hi) in enumerate(ranges)]
    composite = t.kind == "input" and not strip and count == 3 and total == 3
    if composite:
        captions.append(("RGB", "channels 0, 1, 2"))
    gutter = 0 if strip else text_width(str(max(h - 1, 0))) + TICK + 2
    tile_w = max([gutter + w * fx + 2, *(text_width(c) for pair in captions for c in pair)])
    tile_h = 3 * LINE_H + 2 + h * fy + 2
    tiles = len(captions)
    cols = 1 if strip else max(1, math.ceil(math.sqrt(tiles)))
    rows = math.ceil(tiles / cols) if tiles else 0
    grid_w = cols * tile_w + (cols - 1) * GAP

    batch = f" · batch item {batch_item}" if t.batched else ""
    more = f" · first {count} of {total} planes" if total > count else ""
    empty = " · empty tensor" if total == 0 else ""
    scale_text = f"{used.value}, {scale.value} scale" + (
        f" {short_number(shared[0])} .. {short_number(shared[1])}" if scale is Scale.shared and count else ""
    )
    header = [t.title, f"{tuple_text(tuple(t.data.shape))}{batch}{more}{empty} · {scale_text} · {fx} px a cell"]
    width = max(grid_w, min(max(text_width(line) for line in header), max(grid_w, 720)), BAR_W + 8 + BAR_NOTE_W)
    bar_y = MARGIN + len(header) * LINE_H + 4
    top = bar_y + BAR_H + LINE_H + GAP
    canvas = Image.new(
        "RGB", (width + 2 * MARGIN, top + rows * (tile_h + GAP) - (GAP if rows else 0) + MARGIN), BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    draw_header(draw, header, width, INK, FAINT)
    _colour_bar(canvas, draw, bar_y, used, shared if scale is Scale.shared else None)
    for k in range(tiles):
        x = MARGIN + (k % cols) * (tile_w + GAP)
        y = top + (k // cols) * (tile_h + GAP)
        if k < count:
            lo, hi = shared if scale is Scale.shared else ranges[k]
            rgb = colorize(planes[k], used, lo, hi)
        else:
            rgb = _composite(planes)
        rgb = np.repeat(np.repeat(rgb, fy, axis=0), fx, axis=1)
        draw.text((x, y), captions[k][0], font=font(), fill=INK)
        draw.text((x, y + LINE_H), latin1(captions[k][1]), font=font(), fill=FAINT)
        px, py = x + gutter, y + 3 * LINE_H + 2
        _ticks(draw, px + 1, py + 1, w, fx, horizontal=True)
        if not strip:
            _ticks(draw, px + 1, py + 1, h, fy, horizontal=False)
        draw.rectangle((px, py, px + w * fx + 1, py + h * fy + 1), outline=BORDER)
        canvas.paste(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), (px + 1, py + 1))
    return canvas


TICK = 3  # tick mark length in pixels
BAR_W, BAR_H = 160, 8
BAR_NOTE_W = 26 * 6  # "min and max of each plane" beside the colour bar


def tick_step(length: int, pixels: int, label_px: int) -> int:
    """The spacing between labelled ticks: 1, 2, 5, 10, 20, 50, … cells, the first whose labels do not touch.

    >>> tick_step(64, 2, 14), tick_step(4, 24, 8), tick_step(3, 4, 4)
    (10, 1, 1)
    """
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000):
        if step * pixels >= label_px:
            return step
    return max(1, length)


def _ticks(draw: Any, x0: int, y0: int, length: int, pixels: int, *, horizontal: bool) -> None:
    """Ticks with their cell index along the top (columns) or the left (rows) of a plane at (x0, y0)."""
    widest = text_width(str(max(length - 1, 0)))
    step = tick_step(length, pixels, widest + 6 if horizontal else LINE_H)
    for i in range(0, length, step):
        centre = (x0 if horizontal else y0) + i * pixels + pixels // 2
        label = str(i)
        if horizontal:
            draw.line((centre, y0 - 1 - TICK, centre, y0 - 2), fill=FAINT)
            draw.text((centre - text_width(label) // 2, y0 - 2 - TICK - LINE_H + 2), label, font=font(), fill=FAINT)
        else:
            draw.line((x0 - 1 - TICK, centre, x0 - 2, centre), fill=FAINT)
            draw.text((x0 - 3 - TICK - text_width(label), centre - LINE_H // 2), label, font=font(), fill=FAINT)


def _colour_bar(canvas: Any, draw: Any, y: int, cmap: ColorMap, shared: tuple[float, float] | None) -> None:
    """The colour map as a bar under the header, its ends labelled with values (a shared scale) or words."""
    import numpy as np
    from PIL import Image

    signed = cmap is ColorMap.signed
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, BAR_W)
    rgb = colorize(np.repeat(ramp[None, :], BAR_H, axis=0), cmap, -1.0 if signed else 0.0, 1.0)
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), (MARGIN, y))
    draw.rectangle((MARGIN - 1, y - 1, MARGIN + BAR_W, y + BAR_H), outline=FAINT)
    if shared is not None:
        m = max(abs(shared[0]), abs(shared[1]))
        ends = (short_number(-m), short_number(m)) if signed else (short_number(shared[0]), short_number(shared[1]))
        note = ""
    else:
        ends = ("-max", "+max") if signed else ("min", "max")
        note = "max|v| of each plane" if signed else "min and max of each plane"
    draw.text((MARGIN, y + BAR_H + 1), latin1(ends[0]), font=font(), fill=FAINT)
    if signed:
        draw.text((MARGIN + BAR_W // 2 - 3, y + BAR_H + 1), "0", font=font(), fill=FAINT)
    draw.text((MARGIN + BAR_W - text_width(ends[1]), y + BAR_H + 1), latin1(ends[1]), font=font(), fill=FAINT)
    if note:
        draw.text((MARGIN + BAR_W + 8, y - 2), note, font=font(), fill=FAINT)


def _composite(planes: Any) -> Any:
    """Three planes as one RGB picture: values in [0, 1] as they are (an image read in colour), others
    stretched together from their joint minimum to maximum."""
    import numpy as np

    lo, hi = value_range(planes)
    data = np.nan_to_num(planes, nan=0.0, posinf=hi, neginf=lo)
    if not (lo >= 0.0 and hi <= 1.0):
        data = (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)
    return np.rint(np.clip(np.moveaxis(data, 0, -1), 0, 1) * 255).astype(np.uint8)


def render_filters(weight: Any, title: str, kind: str) -> Any:
    """A conv's filters as one picture: one row per output channel, one tile per input channel it reads,
    signed colours on one scale for all (blue −, white 0, red +)."""
    import numpy as np
    from PIL import Image, ImageDraw

    w = np.asarray(weight, dtype=np.float64)
    if kind == "conv_transpose":  # (in, out/groups, k…): one row per input channel's stamps
        rows_label, cols_label = "in", "out"
    else:
        rows_label, cols_label = "out", "in"
    if w.ndim == 3:  # a 1-D conv's kernels: one row each
        w = w[:, :, None, :]
    n_rows, n_cols, kh, kw = w.shape
    n_rows, n_cols = min(n_rows, 64), min(n_cols, 16)
    w = w[:n_rows, :n_cols]
    lo, hi = value_range(w)
    factor = max(4, math.ceil(48 / max(kh, kw)))
    label_w = text_width(f"{rows_label} {n_rows - 1}") + 6
    tile = max(kw * factor + 2, text_width(f"{cols_label} {n_cols - 1}"))
    header = [title, f"{tuple_text(tuple(np.asarray(weight).shape))} · signed, one scale: "
                     f"{short_number(-max(abs(lo), abs(hi)))} .. {short_number(max(abs(lo), abs(hi)))}"]  # fmt: skip
    width = max(label_w + n_cols * (tile + GAP), max(text_width(line) for line in header), BAR_W + 120)
    bar_y = MARGIN + len(header) * LINE_H + 4
    top = bar_y + BAR_H + LINE_H + GAP + LINE_H
    height = top + n_rows * (kh * factor + 2 + GAP) + MARGIN
    canvas = Image.new("RGB", (width + 2 * MARGIN, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw_header(draw, header, width, INK, FAINT)
    _colour_bar(canvas, draw, bar_y, ColorMap.signed, (lo, hi))
    for c in range(n_cols):
        draw.text((MARGIN + label_w + c * (tile + GAP), top - LINE_H), f"{cols_label} {c}", font=font(), fill=FAINT)
    for r in range(n_rows):
        y = top + r * (kh * factor + 2 + GAP)
        draw.text((MARGIN, y + (kh * factor) // 2 - 4), f"{rows_label} {r}", font=font(), fill=INK)
        for c in range(n_cols):
            x = MARGIN + label_w + c * (tile + GAP)
            rgb = colorize(w[r, c], ColorMap.signed, lo, hi)
            rgb = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
            draw.rectangle((x, y, x + kw * factor + 1, y + kh * factor + 1), outline=BORDER)
            canvas.paste(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), (x + 1, y + 1))
    return canvas


def _upscale(count: int, h: int, w: int, strip: bool) -> tuple[int, int]:
    """Integer (x, y) factors: the longer side reaches MIN_SIDE, the whole stays within PIXEL_BUDGET."""
    factor = max(1, math.ceil(MIN_SIDE / max(h, w, 1)))
    budget = max(1, math.isqrt(PIXEL_BUDGET // max(1, count * h * w)))
    factor = min(factor, budget)
    return factor, max(factor, MIN_STRIP_HEIGHT) if strip else factor
