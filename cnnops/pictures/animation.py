"""The sliding window as an animated GIF: one frame per output cell of one channel plane.

Each frame shows the input plane with its numbers (padding shaded, the current window's taps
highlighted and outlined, the max-pool winner framed in red), the kernel for a convolution, and the
output plane filling in cell by cell; the output-size formulas are the caption. An unpool stage
shows each value flying back to the position its max pool saved. Window geometry follows PyTorch:
a window starts at ``o·stride − padding`` and reads every ``dilation``-th cell, a ``ceil_mode``
window may hang over the end (those cells are not read), adaptive bins are
``[⌊i·L/O⌋, ⌈(i+1)·L/O⌉)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, setting
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
from cnnops.text import dims

if TYPE_CHECKING:
    import numpy as np

    from cnnops.model.trace import Row, Trace
    from cnnops.run.pipeline import RunResult, StageResult

MAX_SIDE = 16
FRAME_MS = 400
LAST_FRAME_MS = 1600  # a pause on the finished output before the loop starts again


# ---------------------------------------------------------------------------------------------- entry


def animate(result: RunResult, stage_index: int, path: str, *, batch_item: int = 0, channel: int = 0,
            indices: np.ndarray | None = None) -> int:  # fmt: skip
    """Write the GIF of stage ``stage_index`` (1-based, as in the tables) to ``path``; returns the frame count.

    ``indices``: the max-pool indices an unpool uses when no max pool of the run made them (say, the
    ones that came with the input document).
    """
    check_animation(result.trace, stage_index, batch_item=batch_item, channel=channel)
    res = result.results[stage_index - 1]
    row, stage = res.row, res.row.stage
    nd = stage.nd
    previous = result.results[stage_index - 2].output if stage_index > 1 else result.input
    x = previous.reshape(row.effective_input)
    batched = len(row.effective_input) == nd + 2
    out = res.output.reshape(row.output_shape)
    in_channel = channel
    if isinstance(stage, st.Conv):
        in_channel = channel // (stage.out_channels // stage.groups) * (stage.in_channels // stage.groups)
    x_plane = _plane(x, batched, batch_item, in_channel, nd)
    y_plane = _plane(out, batched, batch_item, channel, nd)
    if isinstance(stage, st.Unpool):
        idx = _unpool_indices(result, row, indices)
        frames = _unpool_frames(row, x_plane, y_plane, _plane(idx, batched, batch_item, channel, nd), nd)
    else:
        frames = _window_frames(res, x_plane, y_plane, batched, batch_item, channel, in_channel)
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    write_image(path, frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0, duration=durations,
                optimize=False)  # fmt: skip
    return len(frames)


def check_animation(trace: Trace, stage_index: int, *, batch_item: int = 0, channel: int = 0) -> None:
    """Everything :func:`animate` would refuse, from the shapes alone: run it before anything is computed
    or written."""
    row = _pick_row(trace, stage_index)
    stage, nd = row.stage, row.stage.nd
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
        _check_size(row, what, shape, nd)


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


def _check_size(row: Row, what: str, shape: tuple[int, ...], nd: int) -> None:
    if max(shape) > MAX_SIDE:
        size = f"{shape[-1]} long" if nd == 1 else dims(shape)
        raise InputError(
            f"stage {row.index} {row.stage.call}: the {what} plane is {size}; animations draw planes up to "
            f"{MAX_SIDE}×{MAX_SIDE} — use {setting('save_maps')} for larger tensors"
        )


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
                   channel: int, in_channel: int) -> list[Any]:  # fmt: skip
    from PIL import ImageDraw

    row, stage = res.row, res.row.stage
    nd = stage.nd
    axes = stage_windows(stage, x.shape[-nd:], y.shape[-nd:])
    if nd == 1:
        axes = [AxisWindows(1, ((0,),))] + axes
    ay, ax = axes
    is_max = getattr(stage, "mode", "") == "max"
    inputs = {(i, j): _input_text(stage, x, i, j, ay, ax) for i in range(ay.lo, ay.hi) for j in range(ax.lo, ax.hi)}
    outputs = [[short_number(float(v)) for v in line] for line in y.tolist()]
    kernel = None
    if isinstance(stage, st.Conv) and res.weight is not None:
        w = res.weight[channel, in_channel % (stage.in_channels // stage.groups)].reshape(-1, stage.kernel_size[-1])
        kernel = [[short_number(float(v)) for v in line] for line in w.tolist()]
    texts = [*inputs.values(), *(t for line in outputs for t in line), *(t for line in kernel or [] for t in line)]
    cell_w = cell_width(texts)
    shown = f" (channel {in_channel})" if isinstance(stage, st.Conv) else ""
    grids = [
        Grid(_title("input", x, nd) + shown, list(range(ay.lo, ay.hi)), list(range(ax.lo, ax.hi)), cell_w, nd == 1)
    ]
    if kernel is not None:
        grids.append(
            Grid(_title("kernel", w, nd), list(range(len(kernel))), list(range(len(kernel[0]))), cell_w, nd == 1)
        )
    grids.append(Grid(_title("output", y, nd), list(range(y.shape[0])), list(range(y.shape[1])), cell_w, nd == 1))
    extra = ""
    if isinstance(stage, st.Conv) and stage.in_channels // stage.groups > 1:
        extra = f" · the output sums {stage.in_channels // stage.groups} input channels; channel {in_channel} shown"
    header = _header(row, batched, batch_item, channel, extra)
    captions = [str(f) for f in row.formulas]
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
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            out_grid.draw_cell(draw, i, j, "", EMPTY)
    winners = _winners(res, batched, batch_item, channel, x.shape[-1]) if is_max and res.indices is not None else None
    frames = []
    for oy in range(y.shape[0]):
        for ox in range(y.shape[1]):
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
            out_grid.draw_cell(fd, oy, ox, outputs[oy][ox], CURRENT)
            told = _computation(res, x, float(y[oy, ox]), ay, ax, oy, ox, winner, channel)
            fd.text((MARGIN, caption_y + len(captions) * LINE_H), latin1(told), font=font(), fill=BLACK)
            frames.append(frame)
            out_grid.draw_cell(draw, oy, ox, outputs[oy][ox], WHITE)
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


def _unpool_frames(row: Row, x: np.ndarray, y: np.ndarray, idx: np.ndarray, nd: int) -> list[Any]:
    """One frame per input cell: its value flies from the input to the output position its index names."""
    from PIL import ImageDraw

    width = y.shape[-1]
    inputs = [[short_number(float(v)) for v in line] for line in x.tolist()]
    cell_w = cell_width([*(t for line in inputs for t in line), *(short_number(float(v)) for v in y.ravel().tolist())])
    source = Grid(_title("input", x, nd), list(range(x.shape[0])), list(range(x.shape[1])), cell_w, nd == 1)
    target = Grid(_title("output", y, nd), list(range(y.shape[0])), list(range(y.shape[1])), cell_w, nd == 1)
    where = f" · indices from stage {row.unpool_source}" if row.unpool_source is not None else ""
    header = [f"{row.index} {row.stage.call}", f"values return to the positions their max pool saved{where}"]
    captions = [str(f) for f in row.formulas]
    base, caption_y = blank_frame([source, target], header, captions)
    draw = draw_static(base, [source, target], header, captions, caption_y)
    for i, line in enumerate(inputs):
        for j, text in enumerate(line):
            source.draw_cell(draw, i, j, text, WHITE)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            target.draw_cell(draw, i, j, "0", WHITE, FAINT)  # MaxUnpool starts from zeros
    frames = []
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            k = int(idx[i, j])
            ti, tj = k // width, k % width
            frame = base.copy()
            fd = ImageDraw.Draw(frame)
            fd.line((source.centre(i, j), target.centre(ti, tj)), fill=ARROW, width=2)
            source.draw_cell(fd, i, j, inputs[i][j], WINDOW)  # over the line's ends: it runs border to border
            target.draw_cell(fd, ti, tj, inputs[i][j], CURRENT)
            told = f"input{_where(nd, i, j)} = {inputs[i][j]}: index {k} -> output{_where(nd, ti, tj)}"
            fd.text((MARGIN, caption_y + len(captions) * LINE_H), latin1(told), font=font(), fill=BLACK)
            frames.append(frame)
            target.draw_cell(draw, ti, tj, inputs[i][j], WHITE)
    return frames
