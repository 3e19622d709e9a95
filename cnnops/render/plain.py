"""Tables as plain text, the text rich prints for them, without rich's measuring and segment machinery.

Off a terminal (a pipe or a file) the tables carry no box and no styles, and rich spends most of a
short command's time measuring and wrapping cells through its renderable protocol. :func:`table_text`
follows rich's own steps for a box-less table — the same measurements, the same column collapsing, the
same word wrapping and folding (rich's own ``divide_line``, ``ratio_reduce`` and cell-width helpers) —
and produces the same characters, line for line. A table using anything it does not reproduce (a box,
markup in a cell, an expanding layout, …) returns None and is printed by rich as before; the tests
compare the two on random tables.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import TYPE_CHECKING, Any

# what a plain table needs of rich: its cell widths, word wrapping and width sharing (all imported with
# rich.table, which built the tables printed here; the console and the renderables are not needed)
from rich._ratio import ratio_distribute, ratio_reduce
from rich._wrap import divide_line
from rich.cells import cell_len, set_cell_size

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# what rich's render_str could read as an emoji code: such a cell goes to rich itself
_EMOJI = re.compile(r":\S*?:")


def print_table(console: Console, table: Any) -> None:
    """``console.print(table)``, as plain text when the console is plain and the table simple enough.
    A table built for its width (``variants``: functions that build the candidates, the first whose
    narrowest layout fits is drawn — :class:`cnnops.render.shape_tables.Fitted`) is picked the same way.
    A rich ``Group`` is printed item by item, as rich prints it: the plain ones as text, the others
    (a box, markup, two tables side by side, …) by rich; so are plain ``Text`` lines and a
    :class:`~cnnops.render.shape_tables.SideBySide` whose tables go one under the other."""
    # an output that cannot encode the drawing characters is left to rich, which prints their ASCII
    # stand-ins (the console's ``translate``, :mod:`cnnops.render.fallback`)
    if not _plain_console(console) or getattr(console, "translate", None) is not None:
        console.print(table)
        return
    for item in _group_items(table):
        text = _plain_text(item, console)
        if text is None:
            console.print(item)
        else:
            console.file.write(text)
            console.file.flush()


def _group_items(renderable: Any) -> list[Any]:
    """A rich Group's (or a :class:`~cnnops.render.stack.Stack`'s) renderables, nested groups opened (rich
    renders them one after the other)."""
    if not _is(renderable, "cnnops.render.stack", "Stack") and not _is(renderable, "rich.console", "Group"):
        return [renderable]
    return [item for inner in renderable.renderables for item in _group_items(inner)]


def _plain_text(item: Any, console: Console) -> str | None:
    """What ``console.print(item)`` writes on a plain console, or None for what this module leaves to rich."""
    if hasattr(item, "variants"):
        picked = _fitted(item, console)
        return None if picked is None else table_text(picked, console)
    if _is(item, "cnnops.render.shape_tables", "SideBySide"):
        return _side_by_side_text(item, console)
    if _is(item, "cnnops.render.tensor_grid", "PlaneGrid"):  # a tensor plane in blocks of columns
        texts = [_plain_text(part, console) for part in item.parts(console.width)]
        return None if None in texts else "".join(texts)  # type: ignore[arg-type]
    from rich.text import Text

    if type(item) is Text:
        return _line_text(item, console)
    return table_text(item, console)


def _is(item: Any, module: str, name: str) -> bool:
    """``type(item) is module.name``, without importing the module (not imported: nothing is one)."""
    found = sys.modules.get(module)
    return found is not None and type(item) is getattr(found, name)


def _line_text(text: Any, console: Console) -> str | None:
    """A Text printed on its own: wrapped at the console's width, folded, neither padded nor justified."""
    plain = _plain_of(text)
    if plain is None or text.end != "\n" or "\x1b" in plain:
        return None
    return "".join(line + "\n" for line in _text_lines(plain, console.width, "default", "fold", False))


def _side_by_side_text(pair: Any, console: Console) -> str | None:
    """SideBySide: the two one under the other when their widest layouts do not fit next to each other
    (next to each other they are rich's Columns: left to rich)."""
    widths = [_widest(part) for part in (pair.left, pair.right)]
    if None in widths or sum(widths) + pair.gap <= console.width:  # type: ignore[arg-type]
        return None
    parts = [_plain_text(part, console) for part in (pair.left, pair.right)]
    return None if None in parts else "".join(parts)  # type: ignore[arg-type]


def _widest(renderable: Any) -> int | None:
    """rich's Measurement maximum of a table (a Fitted: its first variant) at an unbounded width."""
    table = renderable.variants[0]() if hasattr(renderable, "variants") else renderable
    measured = _measurement(table)
    return None if measured is None else measured[1]


def _fitted(fitted: Any, console: Console) -> Any:
    """The variant a Fitted table draws at the console's width (None: one this module cannot measure)."""
    table = None
    for build in fitted.variants:
        table = build()
        low = _minimum_width(table)
        if low is None:
            return None
        if low <= console.width:
            return table
    return table


def _minimum_width(table: Any) -> int | None:
    """rich's Measurement of a box-less table at an unbounded width: the sum of its columns' minimums."""
    measured = _measurement(table)
    return None if measured is None else measured[0]


def _measurement(table: Any) -> tuple[int, int] | None:
    """rich's Measurement (minimum, maximum) of a box-less table at an unbounded width: the sums of its
    columns' measurements at the width the table would take."""
    from rich.table import Table as RichTable

    if type(table) is not RichTable or not _supported(table) or table.width is not None:
        return None
    cells = [_column_cells(table, column) for column in table.columns]
    if any(cell is None for column_cells in cells for cell in column_cells):
        return None
    pads = [_padding(table, i) for i in range(len(table.columns))]
    unbounded = 10**6
    known: list[list[str]] = cells  # type: ignore[assignment]  # no None left
    widest = sum(_measure_column(c, cs, p, unbounded)[1] or 1 for c, cs, p in zip(table.columns, known, pads))
    if table.min_width is not None and widest < table.min_width:
        widest = min(table.min_width, unbounded)  # the columns are widened to the table's minimum width
    measured = [_measure_column(c, cs, p, widest) for c, cs, p in zip(table.columns, known, pads)]
    low, high = sum(low for low, _ in measured), sum(high for _, high in measured)
    if table.min_width is not None:  # Measurement.clamp(min_width)
        low, high = max(low, table.min_width), max(high, table.min_width)
    return low, high


def _plain_console(console: Console) -> bool:
    return not console.is_terminal and console.color_system is None and not console.record


def table_text(table: Table, console: Console) -> str | None:
    """What ``console.print(table)`` writes on a plain console, or None for a table this does not reproduce."""
    from rich.table import Table as RichTable

    if type(table) is not RichTable or not _supported(table):
        return None
    columns = table.columns
    if not columns:
        return "\n"
    cells = [_column_cells(table, column) for column in columns]
    if any(cell is None for column_cells in cells for cell in column_cells):
        return None
    max_width = console.width if table.width is None else table.width
    pads = [_padding(table, i) for i in range(len(columns))]
    widths = _column_widths(table, cells, pads, max_width)  # type: ignore[arg-type]  # no None left
    if widths is None:
        return None
    table_width = sum(widths)
    out: list[str] = []
    if table.title:
        title = _annotation(table.title)
        if title is None:
            return None
        out += _text_lines(title, table_width, table.title_justify, "fold", False)
    rows = list(zip(*cells))
    for index, row in enumerate(rows):
        header = index == 0 and table.show_header
        rendered = []
        for width, cell, column, (left, right) in zip(widths, row, columns, pads):
            inner = width - left - right
            lines = _text_lines(cell, inner, column.justify, column.overflow, column.no_wrap)
            rendered.append([" " * left + _fit(line, inner) + " " * right for line in lines])
        height = max(len(lines) for lines in rendered)
        for lines, width in zip(rendered, widths):
            blank = [" " * width] * (height - len(lines))
            lines[:] = blank + lines if header else lines + blank
        out += ["".join(parts) for parts in zip(*rendered)]
    if table.caption:
        caption = _annotation(table.caption)
        if caption is None:
            return None
        out += _text_lines(caption, table_width, table.caption_justify, "fold", False)
    width = console.width
    return "".join(_crop(line, width) + "\n" for line in out)


def _crop(line: str, width: int) -> str:
    """The console crops what is wider than itself (a table whose fixed columns do not fit)."""
    return set_cell_size(line, width) if cell_len(line) > width else line


def _supported(table: Table) -> bool:
    top, _, bottom, _ = table.padding
    return (
        table.box is None
        and not table.expand
        and not table.show_footer
        and not table.collapse_padding
        and top == 0
        and bottom == 0
        and table.title_justify in ("left", "right", "center")
        and table.caption_justify in ("left", "right", "center")
        and all(
            column.justify in ("default", "left", "right", "center")
            and column.overflow in ("fold", "crop", "ellipsis")
            and column.vertical == "top"
            for column in table.columns
        )
    )


def _plain_of(renderable: Any) -> str | None:
    """The characters of a cell: a str without markup, or a Text that sets no layout of its own."""
    from rich.text import Text

    if isinstance(renderable, str):
        from rich.markup import RE_TAGS  # what rich reads as a markup tag (``[0,1)`` is not one)

        text = renderable
        if ("[" in text and RE_TAGS.search(text)) or _EMOJI.search(text):
            return None
    elif type(renderable) is Text:
        if renderable.justify or renderable.overflow or renderable.no_wrap is not None:
            return None
        text = renderable.plain
    else:
        return None
    return None if "\t" in text or "\r" in text else text


def _annotation(value: Any) -> str | None:
    return _plain_of(value)


def _column_cells(table: Table, column: Any) -> list[str | None]:
    cells = [_plain_of(column.header)] if table.show_header else []
    return cells + [_plain_of(cell) for cell in column.cells]


def _padding(table: Table, index: int) -> tuple[int, int]:
    _, right, _, left = table.padding
    if not table.pad_edge:
        if index == 0:
            left = 0
        if index == len(table.columns) - 1:
            right = 0
    return left, right


@functools.lru_cache(maxsize=4096)
def _measure_text(text: str) -> tuple[int, int]:
    """rich's Text measurement: the longest word and the longest line, in cells, normalised as
    Measurement.normalize does (so that 0 <= low <= high)."""
    lines = text.splitlines()
    widest = max(cell_len(line) for line in lines) if lines else 0
    words = text.split()
    low = min(max(0, max(cell_len(word) for word in words) if words else widest), widest)
    return max(0, low), max(0, low, widest)


def _extent(cells: list[str]) -> tuple[int, int]:
    """The largest (normalised) low and high measurement among a column's cells."""
    low = high = 0
    for cell in cells:
        cell_low, cell_high = _measure_text(cell)
        if cell_low > low:
            low = cell_low
        if cell_high > high:
            high = cell_high
    return low, high


def _measure_column(column: Any, cells: list[str], pad: tuple[int, int], max_width: int) -> tuple[int, int]:
    """rich's measurement of a column: the widest of its cells' Measurement.get(Padding(cell)).

    rich normalises and clamps each cell's measurement four times on the way; once the text's own
    measurement is normalised (0 <= low <= high, :func:`_measure_text`), those steps come to adding the
    padding and clamping to max_width — for every cell alike, so the column needs only its cells' extent."""
    if max_width < 1:
        return 0, 0
    padding = pad[0] + pad[1]
    if column.width is not None:
        fixed = min(column.width + padding, max_width)
        return fixed, fixed
    if not cells:
        low, high = 1, max_width
    elif max_width - padding < 1:
        low = high = max_width
    else:
        low, high = _extent(cells)
        low, high = min(low + padding, max_width), min(high + padding, max_width)
    low, high = min(low, max_width), min(high, max_width)
    if column.min_width is not None:
        low, high = max(low, column.min_width + padding), max(high, column.min_width + padding)
    if column.max_width is not None:
        low, high = min(low, column.max_width + padding), min(high, column.max_width + padding)
    return low, high


def _column_widths(table: Table, cells: list[list[str]], pads: list[tuple[int, int]], max_width: int) -> list[int] | None:
    """rich's Table._calculate_column_widths for a table that does not expand."""
    columns = table.columns
    widths = [_measure_column(c, cs, p, max_width)[1] or 1 for c, cs, p in zip(columns, cells, pads)]
    table_width = sum(widths)
    if table_width > max_width:
        wrapable = [column.width is None and not column.no_wrap for column in columns]
        widths = type(table)._collapse_widths(widths, wrapable, max_width)
        table_width = sum(widths)
        if table_width > max_width:
            widths = ratio_reduce(table_width - max_width, [1] * len(widths), widths, widths)
            table_width = sum(widths)
        widths = [_measure_column(c, cs, p, w)[1] or 0 for c, cs, p, w in zip(columns, cells, pads, widths)]
    if table.min_width is not None and table_width < table.min_width:  # as rich: the width before re-measuring
        pad_widths = ratio_distribute(min(table.min_width, max_width) - table_width, widths)
        widths = [width + pad for width, pad in zip(widths, pad_widths)]
    if any(w - p[0] - p[1] < 1 for w, p in zip(widths, pads)):
        return None  # a column too narrow for its padding: rich's corner cases, left to rich
    return widths


def _fit(line: str, width: int) -> str:
    """A rendered line cropped or padded to ``width`` cells (Segment.adjust_line_length)."""
    length = cell_len(line)
    if length < width:
        return line + " " * (width - length)
    return set_cell_size(line, width) if length > width else line


_WHITESPACE_END = re.compile(r"\s+$")


def _text_lines(text: str, width: int, justify: str, overflow: str, no_wrap: bool) -> list[str]:
    """Text.wrap then Lines.justify and truncate, as a Text renders in ``width`` cells."""
    out: list[str] = []
    parts = text.split("\n") if "\n" in text else [text]
    for part in parts:
        if no_wrap:
            pieces = [part]
        else:
            offsets = divide_line(part, width, fold=overflow == "fold")
            bounds = [0, *offsets, len(part)]
            pieces = [part[a:b] for a, b in zip(bounds, bounds[1:])]
            for i, piece in enumerate(pieces):  # rstrip_end: trailing spaces beyond the width go
                if len(piece) > width:
                    match = _WHITESPACE_END.search(piece)
                    if match is not None:
                        pieces[i] = piece[: len(piece) - min(len(match.group(0)), len(piece) - width)]
        justified = []
        for piece in pieces:
            if justify == "left":
                piece = _truncate(piece, width, overflow, pad=True)
            elif justify == "right":
                piece = _truncate(piece.rstrip(), width, overflow)
                piece = " " * (width - cell_len(piece)) + piece
            elif justify == "center":
                piece = _truncate(piece.rstrip(), width, overflow)
                piece = " " * ((width - cell_len(piece)) // 2) + piece
                piece = piece + " " * (width - cell_len(piece))
            justified.append(_truncate(piece, width, overflow))
        out += justified
    return out


def _truncate(piece: str, width: int, overflow: str, pad: bool = False) -> str:
    length = cell_len(piece)
    if length > width:
        piece = set_cell_size(piece, width - 1) + "…" if overflow == "ellipsis" else set_cell_size(piece, width)
    if pad and length < width:
        piece = piece + " " * (width - length)
    return piece
