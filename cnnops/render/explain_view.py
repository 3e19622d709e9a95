"""The ``--explain`` tables: one output value's arithmetic, as :func:`cnnops.run.explain.explain` found it.

Nothing here computes a value: windows, kernels, products, divisors and winners come from the
:class:`~cnnops.run.explain.Explanation`; this module lays them out as small grids and sums.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cnnops.render.tensor_grid import number_format

if TYPE_CHECKING:
    from cnnops.run.explain import Explanation, Window

#: windows drawn in full; a conv over more input channels shows the rest as channel sums
SHOWN_CHANNELS = 4
#: terms listed one by one in a sum; longer sums show their first and last few
SHOWN_TERMS = 12
#: rows of a dot product or scatter table before the middle is summarised
SHOWN_ROWS = 16


def number(value: float) -> str:
    """A number as an explanation writes it in a sum: ``-4``, ``1.3333``, ``1.2e-07``."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.5g}"
    return text


def _signed(value: float) -> str:
    return f"({number(value)})" if value < 0 else number(value)


def sum_text(terms: list[float]) -> str:
    """``1 + (-2) + 3``; a long sum keeps its first and last terms around ``…``."""
    shown = [_signed(t) for t in terms]
    if len(shown) > SHOWN_TERMS:
        half = SHOWN_TERMS // 2
        shown = [*shown[:half], f"… {len(terms) - SHOWN_TERMS} more …", *shown[-half:]]
    return " + ".join(shown) if shown else "0"


def explain_renderables(expl: Explanation, *, plain: bool) -> list[RenderableType]:
    """The explanation as a title, grids or a table of terms, the sum and the notes."""
    where = "(" + ", ".join(map(str, expl.position)) + ")"
    out: list[RenderableType] = [
        Text(f"Explain stage {expl.stage_index} {expl.stage}, output {where} = {number(expl.value)}",
             style="" if plain else "bold")  # fmt: skip
    ]
    if expl.kind == "conv":
        out += _conv(expl, plain)
    elif expl.kind in ("pool", "adaptive_pool"):
        out += _pool(expl, plain)
    elif expl.kind == "conv_transpose":
        out += _rows(expl, ["input", "value", "tap", "weight", "product"],
                     [[_at(c["input"]), number(c["input_value"]), _at(c["tap"]), number(c["weight"]),
                       number(c["product"])] for c in expl.contributions], plain)  # fmt: skip
        out.append(Text(_total_line(expl)))
    elif expl.kind == "linear":
        out += _rows(expl, ["i", "input", "weight", "product"],
                     [[str(c["input"][-1]), number(c["input_value"]), number(c["weight"]), number(c["product"])]
                      for c in expl.contributions], plain)  # fmt: skip
        out.append(Text(_total_line(expl)))
    elif expl.kind == "unpool":
        if expl.contributions:
            out += _rows(expl, ["pooled cell", "value", "saved index", "= output cell"],
                         [[_at(c["input"]), number(c["input_value"]), str(c["index"]), _at(c["output"])]
                          for c in expl.contributions], plain)  # fmt: skip
    elif expl.kind == "activation" and expl.contributions and "part" in expl.contributions[0]:  # GLU
        out += [Text(f"{c['part']} = input {_at(c['input'])} = {number(c['input_value'])}") for c in expl.contributions]
        out.append(Text(f"f(a, b) = {expl.formula} = {number(expl.value)}"))
    elif expl.kind == "activation":
        if expl.contributions:  # softmax: the values along its dim
            out += _rows(expl, ["position", "x", "e^(x − max)"],
                         [[_at(c["input"]), number(c["input_value"]), number(c["exp"])] for c in expl.contributions],
                         plain)  # fmt: skip
        x = f"input {_at(expl.source or ())} = {number(expl.operand or 0.0)}"
        out.append(Text(f"x = {x}"))
        out.append(Text(f"f(x) = {expl.formula} = {number(expl.value)}"))
    elif expl.operand is not None:
        out.append(Text(f"input {_at(expl.source or ())} = {number(expl.operand)}"))
    for note in expl.notes:
        out.append(Text(f"• {note}", style="" if plain else "dim"))
    return out


def _at(coords) -> str:
    return "(" + ", ".join(map(str, coords)) + ")"


def _total_line(expl: Explanation) -> str:
    total = math.fsum(expl.terms)
    line = f"{sum_text(expl.terms)} = {number(total)}"
    if expl.bias is not None:
        line += f"; + bias {number(expl.bias)} = {number(total + expl.bias)}"
    return line + _printed(expl, total + (expl.bias or 0.0))


def _printed(expl: Explanation, exact: float) -> str:
    """Say so when float32 arithmetic gave a value that differs in its last bits from the exact sum."""
    if number(exact) == number(expl.value):
        return ""
    return f" (computed in float32: {number(expl.value)})"


# ---------------------------------------------------------------------------------------------- grids


def _grid(title: str, row_labels: list[str], col_labels: list[str], cells: list[list[Text]], plain: bool) -> Group:
    """A small grid under its title (the title may be wider than the grid: it is not folded into it)."""
    table = Table(box=None if plain else box.SIMPLE, show_edge=False, pad_edge=False)
    table.add_column("", justify="right", style="" if plain else "dim", no_wrap=True)
    for label in col_labels:
        table.add_column(label, justify="right", no_wrap=True)
    for label, line in zip(row_labels, cells, strict=True):
        table.add_row(label, *line)
    return Group(Text(title, style="" if plain else "bold"), table)


def _as_rows(coords: list[list[int]]) -> tuple[list[int], list[int]]:
    """(rows, columns) of a window's grid; a 1-D window is one row, a 3-D one a grid per depth."""
    if len(coords) == 1:
        return [0], coords[0]
    return coords[-2], coords[-1]


def _key(nd: int, r: int, c: int, depth: tuple[int, ...] = ()) -> tuple[int, ...]:
    return (c,) if nd == 1 else (*depth, r, c)


def _depths(window: Window) -> list[tuple[int, ...]]:
    """The depth of each grid a window is drawn as: ``()`` in 1-D and 2-D; in 3-D each depth the window
    reads, in kernel order (a grid per kernel depth)."""
    if len(window.coords) < 3:
        return [()]
    return list(dict.fromkeys(t[:-2] for t in window.taps))


def _window_grid(window: Window, nd: int, title: str, plain: bool, winner: tuple[int, ...] | None = None,
                 depth: tuple[int, ...] = ()) -> Group:  # fmt: skip
    import numpy as np

    if depth:
        title += f", depth {depth[0]}"
    rows, cols = _as_rows(window.coords)
    read = [window.cells[t][0] for t in window.taps if window.cells[t][1] != "over"]
    fmt = number_format(np.array([v for v in read if math.isfinite(v)] or [0.0], dtype=np.float64))
    cells = []
    for r in rows:
        line = []
        for c in cols:
            key = _key(nd, r, c, depth)
            if key not in window.cells:
                line.append(Text("·", style="" if plain else "dim"))
                continue
            value, region = window.cells[key]
            if region == "over":
                line.append(Text("×", style="" if plain else "dim"))
                continue
            text = fmt(value).strip() if math.isfinite(value) else number(value)
            if region == "pad":
                text = f"({text})"
            picked = winner is not None and key == winner
            if plain:
                line.append(Text(text + ("*" if picked else " ")))
            else:
                style = "bold black on yellow" if picked else ("dim" if region == "pad" else "")
                line.append(Text(text, style=style))
        cells.append(line)
    return _grid(title, [str(r) for r in rows] if nd > 1 else [""], [str(c) for c in cols], cells, plain)


def _kernel_grids(window: Window, plain: bool, depth: int | None = None) -> tuple[Group, Group]:
    """The kernel and the products as grids; of a 3-D kernel, the slice at kernel depth ``depth``."""
    import numpy as np

    shape = window.kernel_shape if len(window.kernel_shape) > 1 else (1, *window.kernel_shape)
    kernel = np.array(window.kernel, dtype=np.float64).reshape(shape)
    products = np.array(window.products, dtype=np.float64).reshape(shape)
    suffix = ""
    if depth is not None:
        kernel, products, shape, suffix = kernel[depth], products[depth], shape[1:], f", depth {depth}"
    labels = [str(r) for r in range(shape[0])] if len(window.kernel_shape) > 1 else [""]
    cols = [str(c) for c in range(shape[1])]

    def cells(values) -> list[list[Text]]:
        fmt = number_format(values)
        return [[Text(fmt(v).strip()) for v in line] for line in values.tolist()]

    return (_grid("kernel" + suffix, labels, cols, cells(kernel), plain),
            _grid("products" + suffix, labels, cols, cells(products), plain))  # fmt: skip


def _conv(expl: Explanation, plain: bool) -> list[RenderableType]:
    out: list[RenderableType] = []
    nd = len(expl.windows[0].coords) if expl.windows else 1
    for n, window in enumerate(expl.windows):
        if n >= SHOWN_CHANNELS:
            break
        title = f"input channel {window.channel}"
        if nd < 3:
            grid = _window_grid(window, nd, title, plain)
            kernel, products = _kernel_grids(window, plain)
            out.append(Columns([grid, kernel, products], padding=(0, 3)))
        else:  # a grid per kernel depth, beside the input depth it reads
            for j, depth in enumerate(_depths(window)):
                kernel, products = _kernel_grids(window, plain, j)
                out.append(Columns([_window_grid(window, nd, title, plain, depth=depth), kernel, products],
                                   padding=(0, 3)))  # fmt: skip
        out.append(Text(f"channel {window.channel}: {sum_text(window.products or [])} = {number(window.total)}"))
    if len(expl.windows) > 1:
        sums = [w.total for w in expl.windows]
        if len(expl.windows) > SHOWN_CHANNELS:
            out.append(Text(f"(windows of channels {expl.windows[SHOWN_CHANNELS].channel} to "
                            f"{expl.windows[-1].channel} not drawn; --json has every term)"))  # fmt: skip
        total = math.fsum(sums)
        out.append(Text(f"sum over {len(sums)} input channels: {sum_text(sums)} = {number(total)}"))
    else:
        total = expl.windows[0].total if expl.windows else 0.0
    if expl.bias is not None:
        out.append(Text(f"{number(total)} + bias {number(expl.bias)} = {number(total + expl.bias)}"
                        + _printed(expl, total + expl.bias)))  # fmt: skip
    else:
        out.append(Text(f"no bias: value = {number(total)}" + _printed(expl, total)))
    return out


def _pool(expl: Explanation, plain: bool) -> list[RenderableType]:
    out: list[RenderableType] = []
    window = expl.windows[0]
    nd = len(window.coords)
    winner = None
    if expl.winner is not None:
        winner = tuple(expl.winner[-nd:])
    title = f"input channel {window.channel}" + (" · bin" if expl.kind == "adaptive_pool" else " · window")
    out += [_window_grid(window, nd, title, plain, winner, depth) for depth in _depths(window)]
    legend = []
    if any(region == "pad" for _, region in window.cells.values()):
        legend.append("(v) padding")
    if any(region == "over" for _, region in window.cells.values()):
        legend.append("× past the padded end, not read (ceil_mode)")
    if len(window.cells) < math.prod(len(c) for c in window.coords):
        legend.append("· skipped by dilation")
    if winner is not None:
        legend.append("* the pick" if plain else "highlighted: the pick")
    if legend:
        out.append(Text("; ".join(legend), style="" if plain else "dim"))
    if expl.divisor is not None:
        read = [window.cells[t][0] for t in window.taps if window.cells[t][1] != "over"]
        total = math.fsum(read)
        out.append(Text(f"sum {sum_text(read)} = {number(total)}"))
        out.append(Text(f"{number(total)} / {expl.divisor} = {number(total / expl.divisor)}"
                        + _printed(expl, total / expl.divisor)))  # fmt: skip
        out.append(Text(f"divisor {expl.divisor}: {expl.divisor_reason}"))
    return out


def _rows(expl: Explanation, headers: list[str], rows: list[list[str]], plain: bool) -> list[RenderableType]:
    table = Table(box=None if plain else box.SIMPLE, show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, justify="right", no_wrap=True)
    if len(rows) > SHOWN_ROWS:
        half = SHOWN_ROWS // 2
        rows = [*rows[:half], ["…"] * len(headers), *rows[-half:]]
    for r in rows:
        table.add_row(*r)
    return [table]


def explain_group(expl: Explanation, *, plain: bool) -> Group:
    return Group(*explain_renderables(expl, plain=plain))
