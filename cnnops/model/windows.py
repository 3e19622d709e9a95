"""Where PyTorch's windows fall: the input cells each output cell of a conv or pool reads.

A conv or pool window for output ``o`` starts at ``o·stride − padding`` and reads every
``dilation``-th cell, ``kernel`` of them; cells outside the input are padding, or — for a
``ceil_mode`` window that hangs over the end — not read at all. Adaptive pooling reads the bins
``[⌊i·L/O⌋, ⌈(i+1)·L/O⌉)``. Pure Python, used by the animations and checked against torch in the tests.

>>> sliding_windows(5, 2, 3, 2, 1, 1, 1).taps
((-1, 0, 1), (1, 2, 3))
"""

from __future__ import annotations

import math

from cnnops.model import stages as st
from cnnops.model.arithmetic import adaptive_bins
from cnnops.records import record


@record(frozen=True)
class AxisWindows:
    """The windows along one spatial axis: for each output position, the input coordinates it reads
    (outside ``[0, length)`` in the padding, or beyond it where a ``ceil_mode`` window hangs over)."""

    length: int
    taps: tuple[tuple[int, ...], ...]
    pad_before: int = 0
    pad_after: int = 0

    @property
    def lo(self) -> int:
        return min([0, *(t[0] for t in self.taps if t)])

    @property
    def hi(self) -> int:
        return max([self.length, *(t[-1] + 1 for t in self.taps if t)])

    def region(self, i: int) -> str:
        if 0 <= i < self.length:
            return "in"
        return "pad" if -self.pad_before <= i < self.length + self.pad_after else "over"


def sliding_windows(length: int, out: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                    dilation: int) -> AxisWindows:  # fmt: skip
    """Windows of a conv or pool: output ``o`` reads ``o·stride − pad_before + j·dilation``, j < kernel.

    >>> sliding_windows(5, 2, 3, 2, 1, 1, 1).taps
    ((-1, 0, 1), (1, 2, 3))
    """
    taps = tuple(tuple(o * stride - pad_before + j * dilation for j in range(kernel)) for o in range(out))
    return AxisWindows(length, taps, max(pad_before, 0), max(pad_after, 0))


def adaptive_windows(length: int, out: int) -> AxisWindows:
    """>>> adaptive_windows(5, 3).taps
    ((0, 1), (1, 2, 3), (3, 4))
    """
    return AxisWindows(length, tuple(tuple(range(a, b)) for a, b in adaptive_bins(length, out)))


def stage_windows(stage: st.Stage, in_size: tuple[int, ...], out_size: tuple[int, ...]) -> list[AxisWindows]:
    """One :class:`AxisWindows` per spatial axis of a conv, pool or adaptive pool stage."""
    if isinstance(stage, st.Conv):
        return [sliding_windows(n, o, k, s, left, right, d) for n, o, k, s, (left, right), d
                in zip(in_size, out_size, stage.kernel_size, stage.stride, stage.pads(), stage.dilation)]  # fmt: skip
    if isinstance(stage, st.Pool):
        dilation = stage.dilation if stage.mode == "max" else (1,) * stage.nd
        return [sliding_windows(n, o, k, s, p, p, d) for n, o, k, s, p, d
                in zip(in_size, out_size, stage.kernel_size, stage.stride, stage.padding, dilation)]  # fmt: skip
    return [adaptive_windows(n, o) for n, o in zip(in_size, out_size)]


def window_reads(ay: AxisWindows, ax: AxisWindows, oy: int, ox: int, cell: tuple[int, int]) -> bool:
    """Whether the window of output (oy, ox) reads input ``cell`` (a window that reads only padding
    gives −inf, and PyTorch's index for it points at no cell of the window)."""
    return cell[0] in ay.taps[oy] and cell[1] in ax.taps[ox] and 0 <= cell[0] < ay.length and 0 <= cell[1] < ax.length


def padded_index(i: int, length: int, mode: str) -> int:
    """The input coordinate F.pad copies into padding position ``i``."""
    if mode == "circular":
        return i % length
    if mode == "replicate":
        return min(max(i, 0), length - 1)
    period = 2 * (length - 1) or 1  # reflect: mirror around the edge cells without repeating them
    i %= period
    return i if i < length else period - i


def avg_pool_divisor(stage: st.Pool, ay: AxisWindows, ax: AxisWindows, oy: int, ox: int, nd: int) -> int:
    """PyTorch's average-pool divisor: divisor_override, else the window clipped to the padded input
    (count_include_pad) or to the input itself."""
    return window_divisor(stage, [ay, ax][2 - nd :], (oy, ox)[2 - nd :])


def window_divisor(stage: st.Pool, axes: list[AxisWindows], position: tuple[int, ...]) -> int:
    """:func:`avg_pool_divisor` along any number of axes (AvgPool1d/2d/3d): ``position`` per axis."""
    if stage.divisor_override:
        return stage.divisor_override
    sizes = []
    for axis, o in zip(axes, position, strict=True):
        start = axis.taps[o][0]
        end = min(axis.taps[o][-1] + 1, axis.length + axis.pad_after)
        sizes.append(end - start if stage.count_include_pad else min(end, axis.length) - max(start, 0))
    return math.prod(sizes)
