"""Rich renderables that show a tensor as grids of channel planes, numbers printed the way PyTorch prints them.

:func:`number_format` reproduces ``torch._tensor_str._Formatter`` with PyTorch's default print options
(precision 4, ``sci_mode=None``); :func:`tensor_view` lays a tensor out as one table per (H, W) plane,
summarised like ``torch.set_printoptions(threshold=…, edgeitems=…)`` so that huge tensors stay cheap.

>>> import numpy as np
>>> fmt = number_format(np.array([-4.0, 0.0, 12.0]))
>>> [fmt(v) for v in (-4.0, 0.0, 12.0)]
['-4.', ' 0.', '12.']
>>> fmt = number_format(np.array([0.25, -1.5]))
>>> [fmt(v) for v in (0.25, -1.5)]
[' 0.2500', '-1.5000']
>>> number_format(np.array([1e-5, 1.0]))(1e-5)
'1.0000e-05'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.measure import Measurement
from rich.style import Style
from rich.table import Table
from rich.text import Text

from cnnops.records import record
from cnnops.render.stack import Stack

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

PRECISION = 4
INDEX_STYLE = Style(dim=True)
NEGATIVE_STYLE = Style(color="red")
NONFINITE_STYLE = Style(color="magenta")
HIGHLIGHT_STYLE = Style(bold=True, color="black", bgcolor="yellow")
TITLE_STYLE = Style(bold=True)
PLAIN_HIGHLIGHT_MARK = "*"
ROW_GAP, COLUMN_GAP, CORNER_GAP = "⋮", "…", "⋱"


class NumberMode(enum.Enum):
    """How :class:`NumberFormat` writes a number; the first two are for integer and bool arrays."""

    INTEGER = "integer"
    BOOL = "bool"
    WHOLE = "whole"  # floats that are all integers: '-4.', '0.', '12.'
    FIXED = "fixed"  # '0.2500'
    SCIENTIFIC = "scientific"  # '1.0000e-05'


@record(frozen=True)
class NumberFormat:
    """One shared scale for every number of a tensor: call it with a number to get its right-aligned text.

    Like PyTorch, ``width`` comes from the finite non-zero values only, so ``nan`` or ``inf`` can be wider.
    """

    mode: NumberMode
    width: int
    precision: int = PRECISION

    def __call__(self, value: float) -> str:
        if self.mode is NumberMode.INTEGER:
            text = str(int(value))
        elif self.mode is NumberMode.BOOL:
            text = str(bool(value))
        else:
            value = float(value)
            if self.mode is NumberMode.SCIENTIFIC:
                text = f"{value:.{self.precision}e}"
            elif self.mode is NumberMode.WHOLE:
                text = f"{value:.0f}" + ("." if math.isfinite(value) else "")
            else:
                text = f"{value:.{self.precision}f}"
        return text.rjust(self.width)


def number_format(values: np.ndarray) -> NumberFormat:
    """The formatter ``str(torch.tensor(values))`` would use, as a callable ``float → str``.

    Mirrors ``torch._tensor_str._Formatter``: integer-valued floats print as ``'-4.'`` (whole mode);
    otherwise four decimals, or ``'{:.4e}'`` when the non-zero finite magnitudes span more than a
    factor 1000, exceed 1e8 or go below 1e-4. Integer and bool arrays print as PyTorch prints
    integer and bool tensors (``'7'``, ``'True'``). Widths are computed from the extreme values only
    (string length is monotonic in magnitude), so this is linear in ``values.size``.

    >>> import numpy as np
    >>> fmt = number_format(np.array([1.0, 2e9]))
    >>> fmt.mode.value, fmt(2e9), fmt(float("-inf"))
    ('scientific', '2.0000e+09', '      -inf')
    """
    import numpy as np

    array = np.asarray(values)
    if array.dtype == np.bool_:
        return NumberFormat(NumberMode.BOOL, 5 if array.size and not array.all() else 4 if array.size else 1)
    if array.dtype.kind in "iu":
        ends = (array.min(), array.max()) if array.size else ()
        return NumberFormat(NumberMode.INTEGER, max([1, *(len(str(int(v))) for v in ends)]))
    if array.dtype.kind == "c":
        raise TypeError("complex tensors are not supported")

    # float64 holds every float16/float32 value exactly; PyTorch also takes the ratios in double.
    flat = array.astype(np.float64, copy=False).ravel()
    nonzero = flat[np.isfinite(flat) & (flat != 0)]
    if nonzero.size == 0:
        return NumberFormat(NumberMode.WHOLE, 1)
    magnitudes = np.abs(nonzero)
    smallest, largest = float(magnitudes.min()), float(magnitudes.max())
    whole = bool(np.all(nonzero == np.ceil(nonzero)))
    scientific = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4

    positive, negative = nonzero[nonzero > 0], nonzero[nonzero < 0]
    extremes = [float(f(side)) for side in (positive, negative) if side.size for f in (np.min, np.max)]
    if scientific:
        mode, widths = NumberMode.SCIENTIFIC, [len(f"{v:.{PRECISION}e}") for v in extremes]
    elif whole:
        mode, widths = NumberMode.WHOLE, [len(f"{v:.0f}") + 1 for v in extremes]
    else:
        mode, widths = NumberMode.FIXED, [len(f"{v:.{PRECISION}f}") for v in extremes]
    return NumberFormat(mode, max(1, *widths))


def shown_indices(length: int, summarize: bool, edgeitems: int) -> list[int | None]:
    """Indices shown along one axis; ``None`` marks the gap of a summarised axis.

    >>> shown_indices(100, True, 3)
    [0, 1, 2, None, 97, 98, 99]
    >>> shown_indices(6, True, 3)
    [0, 1, 2, 3, 4, 5]
    """
    if not summarize or length <= 2 * edgeitems:
        return list(range(length))
    return [*range(edgeitems), None, *range(length - edgeitems, length)]


def tensor_view(
    data: np.ndarray,
    *,
    title: str = "",
    highlight: np.ndarray | None = None,
    full: bool = False,
    threshold: int = 1000,
    edgeitems: int = 3,
    plain: bool = False,
    zero_below: float = 0.0,
) -> RenderableType:
    """A tensor as grids of (H, W) planes with row and column indices, one shared number format.

    Rank ≥ 3: one table per leading index, titled ``channel 2`` (rank 3) or ``[0, 2]`` (rank 4).
    Rank 2: one table; rank 1: one row under its column indices; rank 0: the number.
    When ``data.size > threshold`` and not ``full``, every axis (and the list of planes) longer than
    ``2 * edgeitems`` shows only its first and last ``edgeitems`` entries, as PyTorch prints; only
    those entries are read, so huge arrays render in constant time. ``highlight`` (a bool array of
    ``data``'s shape) marks cells such as max-pool winners. ``plain`` drops box drawing and styles
    for pipes and files, and marks highlighted cells with a trailing ``*`` instead. ``zero_below``: values
    whose magnitude is at most this print as 0 (float noise, see :func:`noise_floor`); highlights stay
    as given.

    >>> import io, numpy as np
    >>> from rich.console import Console
    >>> console = Console(file=io.StringIO(), width=60)
    >>> console.print(tensor_view(np.array([[1.0, -2.0], [3.0, 4.5]]), plain=True))
    >>> print(console.file.getvalue().rstrip())
           0         1
    0   1.0000   -2.0000
    1   3.0000    4.5000
    """
    import numpy as np

    if edgeitems < 0:
        raise ValueError(f"edgeitems must be ≥ 0, got {edgeitems}")
    array = np.asarray(data)
    marks = None
    if highlight is not None:
        marks = np.asarray(highlight, dtype=bool)
        if marks.shape != array.shape:
            raise ValueError(f"highlight shape {marks.shape} does not match data shape {array.shape}")

    body: RenderableType
    if array.size == 0:
        body = Text(f"(empty tensor, shape {'×'.join(map(str, array.shape))})", style=_style(INDEX_STYLE, plain))
    elif array.ndim == 0:
        flag = bool(marks) if marks is not None else None
        text = number_format(array)(array.item()).strip()
        body = _cell(text + (PLAIN_HIGHLIGHT_MARK if plain and flag else ""), flag, plain)
    else:
        body = _planes(array, marks, not full and array.size > threshold, edgeitems, plain, zero_below)
    if not title:
        return body
    return Stack(Text(title, style=_style(TITLE_STYLE, plain)), body)


#: a value this small relative to its tensor's largest magnitude is float noise in a table
NOISE = 1e-6


def noise_floor(values: np.ndarray, relative: float = NOISE) -> float:
    """The magnitude below which a float tensor's values are shown as 0, and 0.0 when none of its
    non-zero values is that small (integer tensors: 0.0).

    >>> import numpy as np
    >>> noise_floor(np.array([4.0, -1.1920929e-07, 0.0]))
    4e-06
    >>> noise_floor(np.array([4.0, 0.5]))
    0.0
    """
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind != "f" or array.size == 0:
        return 0.0
    magnitudes = np.abs(array[np.isfinite(array)])
    if magnitudes.size == 0:
        return 0.0
    floor = float(magnitudes.max()) * relative
    return floor if bool(np.any((magnitudes > 0) & (magnitudes <= floor))) else 0.0


def _planes(
    array: np.ndarray, marks: np.ndarray | None, summarize: bool, edgeitems: int, plain: bool,
    zero_below: float = 0.0,
) -> RenderableType:
    import numpy as np

    grid = array if array.ndim >= 2 else array[None, :]
    lead_shape = grid.shape[:-2]
    plane_count = math.prod(lead_shape)
    planes = shown_indices(plane_count, summarize, edgeitems)
    rows = shown_indices(grid.shape[-2], summarize, edgeitems)
    cols = shown_indices(grid.shape[-1], summarize, edgeitems)

    def picked(indices: list[int | None]) -> np.ndarray:
        return np.array([i for i in indices if i is not None], dtype=np.intp)

    plane_ids, row_ids, col_ids = picked(planes), picked(rows), picked(cols)
    # Broadcast fancy indexing reads only the shown cells: (planes, rows, cols).
    lead = np.unravel_index(plane_ids, lead_shape) if lead_shape else ()
    index = (*(i[:, None, None] for i in lead), row_ids[None, :, None], col_ids[None, None, :])
    values = grid[index]
    if zero_below > 0 and values.dtype.kind == "f":
        values = np.where(np.abs(values) <= zero_below, values.dtype.type(0), values)
    shown_marks = None
    if marks is not None:
        mark_grid = marks if marks.ndim >= 2 else marks[None, :]
        shown_marks = mark_grid[index]

    fmt = number_format(values)
    cells = [fmt(v) for v in values.ravel().tolist()]
    flags = shown_marks.ravel().tolist() if shown_marks is not None else None

    tables: list[RenderableType] = []
    per_plane = len(row_ids) * len(col_ids)
    for k, position in enumerate(p for p in planes if p is not None):
        label = _plane_label(array.ndim, lead_shape, position)
        start = k * per_plane
        tables.append(
            PlaneGrid(
                label, rows, cols, cells[start : start + per_plane],
                flags[start : start + per_plane] if flags is not None else None,
                row_labels=array.ndim >= 2, plain=plain,
            )
        )  # fmt: skip
    if None in planes:
        gap = Text(f"… {plane_count - len(plane_ids)} more planes …", style=_style(INDEX_STYLE, plain))
        tables.insert(planes.index(None), gap)
    if len(tables) == 1:
        return tables[0]
    from rich.columns import Columns

    return Columns(tables, padding=(1, 3))


def _plane_label(rank: int, lead_shape: tuple[int, ...], position: int) -> str | None:
    if rank < 3:
        return None
    import numpy as np

    lead = [int(i) for i in np.unravel_index(position, lead_shape)]
    return f"channel {lead[0]}" if rank == 3 else f"[{', '.join(map(str, lead))}]"


class PlaneGrid:
    """One (H, W) plane as a table; wider than the console, it splits into blocks of columns.

    Rich would otherwise squeeze every column to nothing; blocks are what NumPy and PyTorch do too.
    """

    def __init__(
        self,
        label: str | None,
        rows: Sequence[int | None],
        cols: Sequence[int | None],
        cells: list[str],
        flags: list[bool] | None,
        *,
        row_labels: bool,
        plain: bool,
    ) -> None:
        self.label, self.cols, self.row_labels, self.plain = label, list(cols), row_labels, plain
        index_style = _style(INDEX_STYLE, plain)
        self.headers = [Text(COLUMN_GAP if c is None else str(c), style=index_style) for c in cols]
        self.labels = [Text(COLUMN_GAP if r is None else str(r), style=index_style) for r in rows]
        mark = plain and flags is not None
        self.grid: list[list[Text]] = []
        k = 0
        for r in rows:
            if r is None:
                self.grid.append([Text(CORNER_GAP if c is None else ROW_GAP, style=index_style) for c in cols])
                continue
            line = []
            for c in cols:
                if c is None:
                    line.append(Text(COLUMN_GAP, style=index_style))
                    continue
                flag = flags[k] if flags is not None else None
                line.append(_cell(cells[k] + ((PLAIN_HIGHLIGHT_MARK if flag else " ") if mark else ""), flag, plain))
                k += 1
            self.grid.append(line)
        self.label_width = max((t.cell_len for t in self.labels), default=0) if row_labels else None
        self.col_widths = [
            max([self.headers[j].cell_len, *(line[j].cell_len for line in self.grid)]) for j in range(len(self.cols))
        ]

    def _width(self, widths: Sequence[int]) -> int:
        """Width of a table with these data columns (rich: padding 1 each side, none at the edges)."""
        columns = [*([self.label_width] if self.label_width is not None else []), *widths]
        gaps = len(columns) - 1
        return max(sum(columns) + gaps * (2 if self.plain else 3), len(self.label or ""))

    def _blocks(self, max_width: int) -> list[range]:
        blocks: list[range] = []
        start = 0
        while start < len(self.cols):
            stop = start + 1
            while stop < len(self.cols) and self._width(self.col_widths[start : stop + 1]) <= max_width:
                stop += 1
            blocks.append(range(start, stop))
            start = stop
        return blocks or [range(0)]

    def _table(self, columns: range, title: str | None) -> Table:
        table = Table(
            title=title, min_width=len(title or ""), box=None if self.plain else box.SIMPLE_HEAVY,
            show_edge=False, pad_edge=False, title_style=_style(TITLE_STYLE, self.plain),
            header_style=Style.null(), border_style=Style.null(),
        )  # fmt: skip
        if self.label_width is not None:
            table.add_column("", justify="right", no_wrap=True)
        for j in columns:
            table.add_column(self.headers[j], justify="right", no_wrap=True)
        for label, line in zip(self.labels, self.grid, strict=True):
            table.add_row(*([label] if self.label_width is not None else []), *(line[j] for j in columns))
        return table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        narrowest = self._width(self.col_widths[:1])
        return Measurement(min(narrowest, options.max_width), self._width(self.col_widths))

    def parts(self, max_width: int) -> list[RenderableType]:
        """What it draws in ``max_width`` columns: a table per block of columns, an empty line between."""
        out: list[RenderableType] = []
        for n, columns in enumerate(self._blocks(max_width)):
            if n:
                out.append(Text())
            out.append(self._table(columns, self.label if n == 0 else None))
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.parts(options.max_width)


def _cell(text: str, highlighted: bool | None, plain: bool) -> Text:
    if plain:
        return Text(text)
    number = text.strip()
    style = Style.null()
    if highlighted:
        style += HIGHLIGHT_STYLE
    if number in ("nan", "inf", "-inf"):
        style += NONFINITE_STYLE
    elif number.startswith("-"):
        style += NEGATIVE_STYLE
    return Text(text, style=style)


def _style(style: Style, plain: bool) -> Style:
    return Style.null() if plain else style
