"""The sliding window as an animated GIF: one frame per output cell of one channel plane.

Each frame shows the input plane with its numbers (padding shaded, the current window's taps
highlighted and outlined, the max-pool winner framed in red), the kernel for a convolution, and the
output plane filling in cell by cell; the output-size formulas are the caption. An unpool stage
shows each value flying back to the position its max pool saved. Window geometry follows PyTorch:
a window starts at ``o·stride − padding`` and reads every ``dilation``-th cell, a ``ceil_mode``
window may hang over the end (those cells are not read), adaptive bins are
``[⌊i·L/O⌋, ⌈(i+1)·L/O⌉)``. A transposed conv is drawn as the scatter it is: each input cell stamps
value × kernel onto the output, whose cells keep the running sums.

Planes larger than 16×16 are cropped (default: the top-left 16×16 of the input, said in the caption;
:class:`Crop` chooses another region); ``zoom`` enlarges every frame; :func:`animate_chain` draws a whole
run in one GIF, stage by stage.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, SettingError, setting
from cnnops.model import stages as st
from cnnops.model.windows import AxisWindows, avg_pool_divisor, padded_index, stage_windows, window_reads
from cnnops.pictures.canvas import MARGIN, write_image
from cnnops.pictures.font import LINE_H, font, latin1, short_number
from cnnops.pictures.grid import (
    ARROW,
    BLACK,
    CURRENT,
    EMPTY,
    FAINT,
    OUTLINE,
    PAD,
    WHITE,
    WINDOW,
    WINNER,
    WINNER_FILL,
    Grid,
    blank_frame,
    cell_width,
    draw_static,
)
from cnnops.pictures.planes import check_batch_item
from cnnops.records import record
from cnnops.text import dims

if TYPE_CHECKING:
    import numpy as np

    from cnnops.model.trace import Row, Trace
    from cnnops.run.pipeline import RunResult, StageResult

MAX_SIDE = 16  # planes up to this size are drawn whole; larger ones are cropped, by default to the top-left 16×16
MAX_CROP = 32  # the largest crop side: a 32×32 crop is already up to 1024 frames
MAX_ZOOM = 8
FRAME_MS = 400
LAST_FRAME_MS = 1600  # a pause on the finished output before the loop starts again


@record(frozen=True)
class Crop:
    """The input region an animation draws: rows ``[row, row + height)``, columns ``[col, col + width)``
    (a 1-D plane has one row). ``given`` says whether the user chose it or the 16×16 default applied."""

    row: int
    col: int
    height: int
    width: int
    given: bool = True

    def caption(self, plane: tuple[int, int], nd: int) -> str:
        h, w = plane
        if nd == 1:
            where = f"input cells {self.col}-{min(self.col + self.width, w) - 1} of {w}"
        else:
            where = (f"input rows {self.row}-{min(self.row + self.height, h) - 1}, columns "
                     f"{self.col}-{min(self.col + self.width, w) - 1} of {h}x{w}")  # fmt: skip
        how = "" if self.given else f" (the top-left {MAX_SIDE}x{MAX_SIDE} by default; choose with {setting('crop')})"
        return f"crop: {where}{how}"


def parse_crop(values: tuple[int, ...]) -> Crop:
    """``(ROW, COL, H, W)``, or ``(START, LENGTH)`` for a 1-D plane."""
    if len(values) == 2:
        values = (0, values[0], 1, values[1])
    if len(values) != 4 or any(v < 0 for v in values) or values[2] < 1 or values[3] < 1:
        raise SettingError(
            f"{setting('crop')} takes ROW,COL,HEIGHT,WIDTH (or START,LENGTH for 1-D): non-negative, sizes ≥ 1"
        )
    if max(values[2], values[3]) > MAX_CROP:
        raise SettingError(
            f"{setting('crop')} {','.join(map(str, values))} is larger than {MAX_CROP}×{MAX_CROP}: an animation draws "
            f"one frame per output cell — crop to at most {MAX_CROP} per side, or use {setting('save_maps')}"
        )
    return Crop(*values)


# ---------------------------------------------------------------------------------------------- entry


def animate(result: RunResult, stage_index: int, path: str, *, batch_item: int = 0, channel: int = 0,
            indices: np.ndarray | None = None, crop: Crop | None = None, zoom: int = 1) -> int:  # fmt: skip
    """Write the GIF of stage ``stage_index`` (1-based, as in the tables) to ``path``; returns the frame count.

    ``indices``: the max-pool indices an unpool uses when no max pool of the run made them (say, the
    ones that came with the input document). ``crop``: the input region drawn (default: the whole
    plane up to 16×16, else its top-left 16×16, said in the caption). ``zoom``: each pixel drawn as
    ``zoom × zoom`` pixels, for a larger picture and a readable font.
    """
    check_animation(result.trace, stage_index, batch_item=batch_item, channel=channel, crop=crop)
    frames = stage_frames(result, stage_index, batch_item=batch_item, channel=channel, indices=indices, crop=crop)
    _write_gif(path, [frames], zoom)
    return len(frames)


def animate_chain(result: RunResult, path: str, *, batch_item: int = 0, channel: int = 0,
                  indices: np.ndarray | None = None, crop: Crop | None = None, zoom: int = 1) -> int:  # fmt: skip
    """One GIF of the whole run, stage by stage: each conv, pooling or unpooling stage frame by frame
    (its windows), each element-wise stage (activation, dropout, norm) as one frame of its input and
    output; other stages (flatten, linear) as a frame that says they are not drawn. Returns the frame count."""
    _check_zoom(zoom)
    parts = []
    for res in result.results:
        stage = res.row.stage
        shown = min(channel, res.output.reshape(res.row.output_shape).shape[-stage.nd - 1] - 1) if stage.nd else 0
        if stage.animatable:
            parts.append(stage_frames(result, res.row.index, batch_item=batch_item, channel=shown, indices=indices,
                                      crop=crop))  # fmt: skip
        else:
            parts.append([_still_frame(result, res, batch_item, channel, crop)])
    _write_gif(path, parts, zoom)
    return sum(len(p) for p in parts)


def _check_zoom(zoom: int) -> None:
    if not 1 <= zoom <= MAX_ZOOM:
        raise SettingError(f"{setting('zoom')} takes a whole number from 1 to {MAX_ZOOM}, got {zoom}")


def _write_gif(path: str, parts: list[list[Any]], zoom: int) -> None:
    """Frames of every part on one canvas size (the largest), each part's last frame held longer, scaled by ``zoom``."""
    from PIL import Image

    from cnnops.pictures.grid import PALETTE

    _check_zoom(zoom)
    frames = [f for part in parts for f in part]
    size = (max(f.width for f in frames), max(f.height for f in frames))
    durations = [LAST_FRAME_MS if n == len(part) - 1 else FRAME_MS for part in parts for n in range(len(part))]
    out = []
    for f in frames:
        if f.size != size:
            canvas = Image.new("P", size, WHITE)
            canvas.putpalette([v for rgb in PALETTE for v in rgb])
            canvas.paste(f, (0, 0))
            f = canvas
        if zoom > 1:
            f = f.resize((f.width * zoom, f.height * zoom), Image.Resampling.NEAREST)
        out.append(f)
    write_image(path, out[0], "GIF", save_all=True, append_images=out[1:], loop=0, duration=durations,
                optimize=False)  # fmt: skip


def stage_frames(result: RunResult, stage_index: int, *, batch_item: int = 0, channel: int = 0,
                 indices: np.ndarray | None = None, crop: Crop | None = None) -> list[Any]:  # fmt: skip
    """The frames of one conv, transposed conv, pooling or unpooling stage."""
    res = result.results[_pick_row(result.trace, stage_index).index - 1]
    row, stage = res.row, res.row.stage
    nd = stage.nd
    x, out, batched, in_channel = _planes_for(result, res, batch_item, channel)
    x_plane = _plane(x, batched, batch_item, in_channel, nd)
    y_plane = _plane(out, batched, batch_item, channel, nd)
    crop = _resolve_crop(crop, x_plane.shape, nd)
    if isinstance(stage, st.Unpool):
        idx = _unpool_indices(result, row, indices)
        return _unpool_frames(row, x_plane, y_plane, _plane(idx, batched, batch_item, channel, nd), nd, crop)
    if isinstance(stage, st.ConvTranspose):
        return _transposed_frames(res, x_plane, y_plane, batched, batch_item, channel, in_channel, crop)
    return _window_frames(res, x_plane, y_plane, batched, batch_item, channel, in_channel, crop)


def _planes_for(result: RunResult, res: StageResult, batch_item: int, channel: int) -> tuple[Any, Any, bool, int]:
    """The stage's input and output, whether batched, and the input channel drawn for output ``channel``."""
    row, stage = res.row, res.row.stage
    nd = stage.nd
    previous = result.input_of(row)
    x = previous.reshape(row.effective_input)
    batched = len(row.effective_input) == nd + 2
    out = res.output.reshape(row.output_shape)
    in_channel = channel
    if isinstance(stage, st.Conv | st.ConvTranspose):
        in_channel = channel // (stage.out_channels // stage.groups) * (stage.in_channels // stage.groups)
    return x, out, batched, in_channel


def _resolve_crop(crop: Crop | None, plane: tuple[int, ...], nd: int) -> Crop:
    h, w = plane
    if crop is None:
        if h <= MAX_SIDE and w <= MAX_SIDE:
            return Crop(0, 0, h, w)
        return Crop(0, 0, min(h, MAX_SIDE), min(w, MAX_SIDE), given=False)
    if nd == 1:
        crop = Crop(0, crop.col, 1, crop.width, crop.given)
    if crop.row >= h or crop.col >= w:
        size = f"{w} long" if nd == 1 else f"{h}×{w}"
        raise SettingError(f"{setting('crop')} starts outside the {size} input plane")
    return crop


def check_animation(trace: Trace, stage_index: int, *, batch_item: int = 0, channel: int = 0,
                    crop: Crop | None = None) -> None:  # fmt: skip
    """Everything :func:`animate` would refuse, from the shapes alone: run it before anything is computed
    or written."""
    row = _pick_row(trace, stage_index)
    stage, nd = row.stage, row.stage.nd
    plane = row.effective_input[-nd:]
    _resolve_crop(crop, plane if nd == 2 else (1, plane[0]), nd)
    batched = len(row.effective_input) == nd + 2
    check_batch_item(batch_item, row.effective_input[0] if batched else 1)
    channels = row.output_shape[-nd - 1]
    if not 0 <= channel < channels:
        choices = "0" if channels == 1 else f"0 to {channels - 1}"
        raise InputError(
            f"channel {channel} is out of range: stage {row.index} {stage.call} has {channels} output "
            f"channel{'s' if channels != 1 else ''} — use {setting('channel')} {choices}"
        )
    for what, shape in (("input", row.effective_input[-nd:]), ("output", row.output_shape[-nd:])):
        if 0 in shape:
            raise InputError(
                f"stage {row.index} {stage.call}: the {what} plane is empty ({dims(shape)}) — there is nothing "
                "to animate"
            )


def _pick_row(trace: Trace, stage_index: int) -> Row:
    count = len(trace.rows)
    animated = [row.index for row in trace.rows if row.stage.animatable]
    which = f"stage {animated[0]}" if len(animated) == 1 else f"one of stages {', '.join(map(str, animated))}"
    hint = f" — pick {which}" if animated else " — add a conv, pooling or unpooling stage"
    if not 1 <= stage_index <= count:
        raise InputError(f"there is no stage {stage_index}: the run has {count} stage{'s' if count != 1 else ''}{hint}")
    row = trace.rows[stage_index - 1]
    if not row.stage.animatable:
        raise InputError(
            f"stage {stage_index} {row.stage.call} has no sliding window to animate; animations show "
            f"conv, pooling and unpooling stages{hint}"
        )
    return row


def _plane(a: np.ndarray, batched: bool, batch_item: int, channel: int, nd: int) -> np.ndarray:
    """One (H, W) plane, a 1-D one as (1, L)."""
    import numpy as np

    plane = np.asarray(a)
    if batched:
        plane = plane[batch_item]
    plane = plane.reshape((-1, *plane.shape[-nd:]))[channel]
    return plane.reshape(1, -1) if nd == 1 else plane


def _unpool_indices(result: RunResult, row: Row, indices: np.ndarray | None) -> np.ndarray:
    import numpy as np

    if row.unpool_source is not None:
        indices = result.results[row.unpool_source - 1].indices
    if indices is None or np.asarray(indices).size != math.prod(row.effective_input):
        raise InputError(
            f"stage {row.index} {row.stage.call}: the animation needs the max-pool indices of its input — "
            "put the max pool in the same run"
        )
    return np.asarray(indices).reshape(row.effective_input).astype(np.int64)


def _chosen(axis: AxisWindows, start: int, size: int) -> list[int]:
    """Output positions whose window reads input cells inside ``[start, start + size)`` only (padding aside)."""
    stop = start + size
    chosen = []
    for o, taps in enumerate(axis.taps):
        inside = [t for t in taps if 0 <= t < axis.length]
        if all(start <= t < stop for t in inside) and (inside or start == 0 or stop >= axis.length):
            chosen.append(o)
    return chosen


def _span(axis: AxisWindows, outputs: list[int], start: int, size: int) -> list[int]:
    """Input coordinates drawn: the crop, widened to every tap (padding included) of the chosen windows."""
    taps = [t for o in outputs for t in axis.taps[o]]
    lo = min([start, *taps])
    hi = max([min(start + size, axis.length), *(t + 1 for t in taps)])
    return list(range(lo, hi))


# ---------------------------------------------------------------------------------------------- captions


def _where(nd: int, r: int, c: int) -> str:
    return f"[{c}]" if nd == 1 else f"[{r}, {c}]"


def _title(name: str, plane: np.ndarray, nd: int) -> str:
    """``input 5×5``; a 1-D plane (stored as 1×L) by its length."""
    return f"{name} {dims(plane.shape[-nd:])}"


def _header(row: Row, batched: bool, batch_item: int, channel: int, extra: str = "") -> list[str]:
    batch = f" · batch item {batch_item}" if batched else ""
    return [f"{row.index} {row.stage.call}", f"channel {channel}{batch}{extra}"]


# ---------------------------------------------------------------------------------------------- windows


def _window_frames(res: StageResult, x: np.ndarray, y: np.ndarray, batched: bool, batch_item: int,
                   channel: int, in_channel: int, crop: Crop) -> list[Any]:  # fmt: skip
    from PIL import ImageDraw

    row, stage = res.row, res.row.stage
    nd = stage.nd
    axes = stage_windows(stage, x.shape[-nd:], y.shape[-nd:])
    if nd == 1:
        axes = [AxisWindows(1, ((0,),))] + axes
    ay, ax = axes
    out_rows, out_cols = _chosen(ay, crop.row, crop.height), _chosen(ax, crop.col, crop.width)
    if not out_rows or not out_cols:
        raise SettingError(
            f"stage {row.index} {stage.call}: no window fits inside the {setting('crop')} region — make it larger"
        )
    in_rows, in_cols = _span(ay, out_rows, crop.row, crop.height), _span(ax, out_cols, crop.col, crop.width)
    is_max = getattr(stage, "mode", "") == "max"
    inputs = {(i, j): _input_text(stage, x, i, j, ay, ax) for i in in_rows for j in in_cols}
    outputs = {(i, j): short_number(float(y[i, j])) for i in out_rows for j in out_cols}
    kernel = None
    if isinstance(stage, st.Conv) and res.weight is not None:
        w = res.weight[channel, in_channel % (stage.in_channels // stage.groups)].reshape(-1, stage.kernel_size[-1])
        kernel = [[short_number(float(v)) for v in line] for line in w.tolist()]
    texts = [*inputs.values(), *outputs.values(), *(t for line in kernel or [] for t in line)]
    cell_w = cell_width(texts)
    shown = f" (channel {in_channel})" if isinstance(stage, st.Conv) else ""
    grids = [Grid(_title("input", x, nd) + shown, in_rows, in_cols, cell_w, nd == 1)]
    if kernel is not None:
        grids.append(
            Grid(_title("kernel", w, nd), list(range(len(kernel))), list(range(len(kernel[0]))), cell_w, nd == 1)
        )
    grids.append(Grid(_title("output", y, nd), out_rows, out_cols, cell_w, nd == 1))
    extra = ""
    if isinstance(stage, st.Conv) and stage.in_channels // stage.groups > 1:
        extra = f" · the output sums {stage.in_channels // stage.groups} input channels; channel {in_channel} shown"
    header = _header(row, batched, batch_item, channel, extra)
    captions = [str(f) for f in row.formulas]
    if len(in_rows) < x.shape[0] or len(in_cols) < x.shape[1] or crop.row or crop.col:
        captions.append(crop.caption(x.shape, nd))
    base, caption_y = blank_frame(grids, header, captions)
    draw = draw_static(base, grids, header, captions, caption_y)
    source, out_grid = grids[0], grids[-1]
    for (i, j), text in inputs.items():
        region = (
            "in"
            if ay.region(i) == ax.region(j) == "in"
            else ("over" if "over" in (ay.region(i), ax.region(j)) else "pad")
        )
        source.draw_cell(
            draw, i, j, text, {"in": WHITE, "pad": PAD, "over": WHITE}[region], BLACK if region == "in" else FAINT
        )
    if kernel is not None:
        for i, line in enumerate(kernel):
            for j, text in enumerate(line):
                grids[1].draw_cell(draw, i, j, text, WHITE)
    for i in out_rows:
        for j in out_cols:
            out_grid.draw_cell(draw, i, j, "", EMPTY)
    winners = _winners(res, batched, batch_item, channel, x.shape[-1]) if is_max and res.indices is not None else None
    frames = []
    for oy in out_rows:
        for ox in out_cols:
            frame = base.copy()
            fd = ImageDraw.Draw(frame)
            taps = [(i, j) for i in ay.taps[oy] for j in ax.taps[ox]]
            for i, j in taps:
                if "over" not in (ay.region(i), ax.region(j)):
                    source.draw_cell(fd, i, j, inputs[i, j], WINDOW)
            x0, y0, _, _ = source.at(ay.taps[oy][0], ax.taps[ox][0])
            _, _, x1, y1 = source.at(ay.taps[oy][-1], ax.taps[ox][-1])
            fd.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=OUTLINE, width=2)
            winner = None
            if winners is not None and window_reads(ay, ax, oy, ox, winners[oy][ox]):
                winner = winners[oy][ox]
                wx0, wy0, wx1, wy1 = source.at(*winner)
                source.draw_cell(fd, *winner, inputs[winner], WINNER_FILL)
                fd.rectangle((wx0 + 1, wy0 + 1, wx1 - 1, wy1 - 1), outline=WINNER, width=2)
            out_grid.draw_cell(fd, oy, ox, outputs[oy, ox], CURRENT)
            told = _computation(res, x, float(y[oy, ox]), ay, ax, oy, ox, winner, channel)
            fd.text((MARGIN, caption_y + len(captions) * LINE_H), latin1(told), font=font(), fill=BLACK)
            frames.append(frame)
            out_grid.draw_cell(draw, oy, ox, outputs[oy, ox], WHITE)
    return frames


def _input_text(stage: st.Stage, x: np.ndarray, i: int, j: int, ay: AxisWindows, ax: AxisWindows) -> str:
    """A cell's number; in the padding what the layer reads there (zeros, a reflected value, nothing)."""
    regions = (ay.region(i), ax.region(j))
    if regions == ("in", "in"):
        return short_number(float(x[i, j]))
    if "over" in regions:
        return ""
    if isinstance(stage, st.Conv):
        if stage.padding_mode == "zeros":
            return "0"
        return short_number(
            float(x[padded_index(i, ay.length, stage.padding_mode), padded_index(j, ax.length, stage.padding_mode)])
        )
    return "0" if getattr(stage, "mode", "") == "avg" else ""  # max pooling pads with −inf: never picked


def _winners(res: StageResult, batched: bool, batch_item: int, channel: int, width: int) -> list[list[tuple[int, int]]]:
    """The input (row, col) each max-pool output cell took its value from (its saved index)."""
    assert res.indices is not None  # a max pool always keeps its indices
    idx = _plane(res.indices, batched, batch_item, channel, res.row.stage.nd)
    return [[(int(k) // width, int(k) % width) for k in line] for line in idx.tolist()]


def _computation(res: StageResult, x: np.ndarray, value: float, ay: AxisWindows, ax: AxisWindows, oy: int, ox: int,
                 winner: tuple[int, int] | None, channel: int) -> str:  # fmt: skip
    """The frame's caption: how the output cell was computed, with the numbers."""
    stage = res.row.stage
    nd = stage.nd
    out = f"output{_where(nd, oy, ox)}"
    inside = [(i, j) for i in ay.taps[oy] for j in ax.taps[ox] if 0 <= i < ay.length and 0 <= j < ax.length]
    if isinstance(stage, st.Conv):
        bias = "" if res.bias is None else f" + bias {short_number(float(res.bias[channel]))}"
        return f"{out} = sum(window × kernel){bias} = {short_number(value)}"
    if getattr(stage, "mode", "") == "max" and not inside:
        return f"{out} = max of no input values (the window reads only padding) = {short_number(value)}"
    if winner is not None:
        return f"{out} = max of {len(inside)} values = {short_number(value)}, from input{_where(nd, *winner)}"
    if isinstance(stage, st.Pool):
        total = sum(float(x[i, j]) for i, j in inside)
        return f"{out} = {short_number(total)} / {avg_pool_divisor(stage, ay, ax, oy, ox, nd)} = {short_number(value)}"
    return f"{out} = average of {len(inside)} values = {short_number(value)}"


# ---------------------------------------------------------------------------------------------- unpool


def _unpool_frames(row: Row, x: np.ndarray, y: np.ndarray, idx: np.ndarray, nd: int, crop: Crop) -> list[Any]:
    """One frame per input cell: its value flies from the input to the output position its index names."""
    from PIL import ImageDraw

    stage: Any = row.stage  # an Unpool: kernel_size, stride, padding
    width = y.shape[-1]
    in_rows = list(range(crop.row, min(crop.row + crop.height, x.shape[0])))
    in_cols = list(range(crop.col, min(crop.col + crop.width, x.shape[1])))
    targets = {(i, j): divmod(int(idx[i, j]), width) for i in in_rows for j in in_cols}
    # the output region the pooling windows of the drawn cells cover, and every target in it
    k, s_, p = (stage.kernel_size[-1], stage.stride[-1], stage.padding[-1])
    kr, sr, pr = (stage.kernel_size[0], stage.stride[0], stage.padding[0]) if nd == 2 else (1, 1, 0)
    rows_lo = min([max(in_rows[0] * sr - pr, 0), *(t[0] for t in targets.values())])
    rows_hi = max([min(in_rows[-1] * sr - pr + kr, y.shape[0]), *(t[0] + 1 for t in targets.values())])
    cols_lo = min([max(in_cols[0] * s_ - p, 0), *(t[1] for t in targets.values())])
    cols_hi = max([min(in_cols[-1] * s_ - p + k, y.shape[1]), *(t[1] + 1 for t in targets.values())])
    out_rows, out_cols = list(range(rows_lo, rows_hi)), list(range(cols_lo, cols_hi))
    inputs = {(i, j): short_number(float(x[i, j])) for i in in_rows for j in in_cols}
    cell_w = cell_width([*inputs.values(), *(short_number(float(y[i, j])) for i in out_rows for j in out_cols)])
    source = Grid(_title("input", x, nd), in_rows, in_cols, cell_w, nd == 1)
    target = Grid(_title("output", y, nd), out_rows, out_cols, cell_w, nd == 1)
    where = f" · indices from stage {row.unpool_source}" if row.unpool_source is not None else ""
    header = [f"{row.index} {row.stage.call}", f"values return to the positions their max pool saved{where}"]
    captions = [str(f) for f in row.formulas]
    if len(in_rows) < x.shape[0] or len(in_cols) < x.shape[1]:
        captions.append(crop.caption(x.shape, nd))
    base, caption_y = blank_frame([source, target], header, captions)
    draw = draw_static(base, [source, target], header, captions, caption_y)
    for (i, j), text in inputs.items():
        source.draw_cell(draw, i, j, text, WHITE)
    for i in out_rows:
        for j in out_cols:
            target.draw_cell(draw, i, j, "0", WHITE, FAINT)  # MaxUnpool starts from zeros
    frames = []
    for (i, j), (ti, tj) in targets.items():
        frame = base.copy()
        fd = ImageDraw.Draw(frame)
        fd.line((source.centre(i, j), target.centre(ti, tj)), fill=ARROW, width=2)
        source.draw_cell(fd, i, j, inputs[i, j], WINDOW)  # over the line's ends: it runs border to border
        target.draw_cell(fd, ti, tj, inputs[i, j], CURRENT)
        told = f"input{_where(nd, i, j)} = {inputs[i, j]}: index {int(idx[i, j])} -> output{_where(nd, ti, tj)}"
        fd.text((MARGIN, caption_y + len(captions) * LINE_H), latin1(told), font=font(), fill=BLACK)
        frames.append(frame)
        target.draw_cell(draw, ti, tj, inputs[i, j], WHITE)
    return frames


# ---------------------------------------------------------------------------------------------- transposed conv


def _transposed_frames(res: StageResult, x: np.ndarray, y: np.ndarray, batched: bool, batch_item: int,
                       channel: int, in_channel: int, crop: Crop) -> list[Any]:  # fmt: skip
    """One frame per input cell: the cell stamps value × kernel onto the output (a scatter, the transpose
    of a conv's gather); the output cells keep the running sums."""
    from PIL import ImageDraw

    row = res.row
    stage: Any = row.stage  # a ConvTranspose: channels, kernel, stride, padding, dilation
    nd = stage.nd
    cin_g, cout_g = stage.in_channels // stage.groups, stage.out_channels // stage.groups
    local = channel % cout_g
    assert res.weight is not None
    weight = res.weight[in_channel, local].reshape(-1, stage.kernel_size[-1])
    ks = (1, *stage.kernel_size) if nd == 1 else tuple(stage.kernel_size)
    ss = (1, *stage.stride) if nd == 1 else tuple(stage.stride)
    ps = (0, *stage.padding) if nd == 1 else tuple(stage.padding)
    ds = (1, *stage.dilation) if nd == 1 else tuple(stage.dilation)
    in_rows = list(range(crop.row, min(crop.row + crop.height, x.shape[0])))
    in_cols = list(range(crop.col, min(crop.col + crop.width, x.shape[1])))

    def stamp(i: int, j: int) -> list[tuple[int, int, int, int]]:
        """(output row, output col, tap row, tap col) the input cell (i, j) reaches."""
        return [(i * ss[0] - ps[0] + a * ds[0], j * ss[1] - ps[1] + b * ds[1], a, b)
                for a in range(ks[0]) for b in range(ks[1])
                if 0 <= i * ss[0] - ps[0] + a * ds[0] < y.shape[0] and 0 <= j * ss[1] - ps[1] + b * ds[1] < y.shape[1]]  # fmt: skip

    reached = [t for i in in_rows for j in in_cols for t in stamp(i, j)]
    out_rows = sorted({t[0] for t in reached}) or [0]
    out_cols = sorted({t[1] for t in reached}) or [0]
    out_rows, out_cols = list(range(out_rows[0], out_rows[-1] + 1)), list(range(out_cols[0], out_cols[-1] + 1))
    bias = float(res.bias[channel]) if res.bias is not None else 0.0
    sums = {(i, j): bias for i in out_rows for j in out_cols}
    inputs = {(i, j): short_number(float(x[i, j])) for i in in_rows for j in in_cols}
    kernel = [[short_number(float(v)) for v in line] for line in weight.tolist()]
    cell_w = cell_width([*inputs.values(), *(t for line in kernel for t in line),
                         *(short_number(float(y[i, j])) for i in out_rows for j in out_cols)])  # fmt: skip
    grids = [
        Grid(_title("INPUT", x, nd) + f" (channel {in_channel}): each cell stamps", in_rows, in_cols, cell_w, nd == 1),
        Grid(_title("kernel", weight, nd), list(range(weight.shape[0])), list(range(weight.shape[1])), cell_w, nd == 1),
        Grid(_title("OUTPUT", y, nd) + ": running sums", out_rows, out_cols, cell_w, nd == 1),
    ]
    extra = f" · the output sums {cin_g} input channels; channel {in_channel} shown" if cin_g > 1 else ""
    header = [f"{row.index} {stage.call}",
              f"transposed convolution = scatter: each INPUT cell adds value x kernel to the OUTPUT{extra}"]  # fmt: skip
    captions = [str(f) for f in row.formulas]
    if len(in_rows) < x.shape[0] or len(in_cols) < x.shape[1]:
        captions.append(crop.caption(x.shape, nd) + "; edge cells also get stamps from outside it")
    base, caption_y = blank_frame(grids, header, captions)
    draw = draw_static(base, grids, header, captions, caption_y)
    source, kgrid, out_grid = grids
    for (i, j), text in inputs.items():
        source.draw_cell(draw, i, j, text, WHITE)
    for a, line in enumerate(kernel):
        for b, text in enumerate(line):
            kgrid.draw_cell(draw, a, b, text, WHITE)
    for (i, j), v in sums.items():
        out_grid.draw_cell(draw, i, j, short_number(v), EMPTY, FAINT)
    frames = []
    for i in in_rows:
        for j in in_cols:
            frame = base.copy()
            fd = ImageDraw.Draw(frame)
            source.draw_cell(fd, i, j, inputs[i, j], WINDOW)
            value = float(x[i, j])
            for ti, tj, a, b in stamp(i, j):
                sums[ti, tj] += value * float(weight[a, b])
                out_grid.draw_cell(fd, ti, tj, short_number(sums[ti, tj]), CURRENT)
                out_grid.draw_cell(draw, ti, tj, short_number(sums[ti, tj]), WHITE)
            told = f"input{_where(nd, i, j)} = {inputs[i, j]} adds {inputs[i, j]} x kernel to the highlighted outputs"
            fd.text((MARGIN, caption_y + len(captions) * LINE_H), latin1(told), font=font(), fill=BLACK)
            frames.append(frame)
    return frames


# ---------------------------------------------------------------------------------------------- chain


def _still_frame(result: RunResult, res: StageResult, batch_item: int, channel: int, crop: Crop | None) -> Any:
    """One frame for a stage without a window: its input and output planes side by side (element-wise
    stages), or a line saying the stage is not drawn."""
    row, stage = res.row, res.row.stage
    header = [f"{row.index} {stage.call}"]
    out = res.output.reshape(row.output_shape)
    if stage.keeps_layout and 1 <= len(row.output_shape) and _input_nd_of(result, res):
        nd = _input_nd_of(result, res)
        previous = result.input_of(row)
        x = previous.reshape(row.effective_input)
        batched = x.ndim == nd + 2
        check_batch_item(batch_item, x.shape[0] if batched else 1)
        shown = min(channel, out.shape[-nd - 1] - 1) if out.ndim > nd else 0
        xp, yp = _plane(x, batched, batch_item, shown, nd), _plane(out, batched, batch_item, shown, nd)
        c = _resolve_crop(crop, xp.shape, nd)
        rows = list(range(c.row, min(c.row + c.height, xp.shape[0])))
        cols = list(range(c.col, min(c.col + c.width, xp.shape[1])))
        texts = {(g, i, j): short_number(float(p[i, j])) for g, p in ((0, xp), (1, yp)) for i in rows for j in cols}
        cell_w = cell_width(list(texts.values()))
        grids = [Grid(_title("input", xp, nd), rows, cols, cell_w, nd == 1),
                 Grid(_title("output", yp, nd), rows, cols, cell_w, nd == 1)]  # fmt: skip
        header.append(f"channel {shown} · element by element: each output cell is {stage.name} of the input cell")
        captions = [c.caption(xp.shape, nd)] if len(rows) < xp.shape[0] or len(cols) < xp.shape[1] else []
        base, caption_y = blank_frame(grids, header, captions)
        draw = draw_static(base, grids, header, captions, caption_y)
        for (g, i, j), text in texts.items():
            grids[g].draw_cell(draw, i, j, text, WHITE if g == 0 else CURRENT)
        return base
    header.append(f"{dims(row.effective_input)} -> {dims(row.output_shape)}: not drawn (no plane to slide over)")
    base, caption_y = blank_frame([], header, [])
    draw_static(base, [], header, [], caption_y)
    return base


def _input_nd_of(result: RunResult, res: StageResult) -> int:
    """The spatial dims of an element-wise stage's input: those of the nearest spatial stage before it."""
    for r in reversed(result.results[: res.row.index - 1]):
        if r.row.stage.spatial:
            return r.row.stage.nd
        if not r.row.stage.keeps_layout:
            return 0
    return 2 if result.input.ndim >= 2 else 1
