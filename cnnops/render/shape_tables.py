"""Rich renderables for shape traces: the shape table, the formula table and the totals.

Nothing here computes: it formats what :mod:`cnnops.model.trace` produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cnnops.model.stages import ReceptiveField
from cnnops.text import dims

if TYPE_CHECKING:
    from cnnops.model.trace import Row, Trace

MACS_CONVENTION = (
    "*MACs: multiply-accumulates, bias ignored (thop/fvcore convention): conv = output elements × "
    "in/groups × kernel area; linear = in × out per row; pooling, activations, norms = 0. "
    "RF: receptive field size, jump between outputs, centre of the first one (input pixels)."
)


def table_box(plain: bool) -> box.Box | None:
    """Box drawing on a terminal; plain columns when the output goes to a file or a pipe."""
    return None if plain else box.SIMPLE_HEAVY


def human(n: int) -> str:
    """``714188480`` → ``714.2 M``."""
    for unit, size in (("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"



def fmt_rf(rf: tuple[ReceptiveField, ...] | None) -> str:
    """size/jump/start, one value when every axis agrees: ``11/4/3``."""
    if not rf:
        return "—"
    if len(set(rf)) == 1:
        r = rf[0]
        return f"{r.size}/{r.jump}/{r.start:g}"
    return " ".join(f"{r.size}/{r.jump}/{r.start:g}" for r in rf)


def row_text(row: Row, short: bool = False) -> str:
    """A row's stage as the reader wrote it, with where it reads from: ``y = Add() ← 9, 7``."""
    text = (f"{row.label} = " if row.label else "") + (elide_values(row.stage.call) if short else row.stage.call)
    if not row.reads_previous:
        text += " ← " + ", ".join("input" if i == 0 else str(i) for i in row.inputs)
    return text


def stage_cell(row: Row, short: bool = False, values: bool = False) -> Text:
    text = Text(row_text(row, short))
    if row.sized_from_input:
        text.append("\n↳ sized from its input", style="yellow")
    if row.promoted_shape:
        text.append(f"\n↳ rank rule {dims(row.promoted_shape)}", style="dim")
    if row.flattened_shape:
        text.append(f"\n↳ implicit flatten {dims(row.flattened_shape)}", style="yellow")
    if row.unpool_source is not None:
        text.append(f"\n↳ indices of stage {row.unpool_source}", style="dim")
    if row.shares is not None:
        text.append(f"\n↳ parameters of stage {row.shares}", style="dim")
    if row.stage.kind == "measured":
        text.append(f"\n↳ measured ({row.stage.source})", style="yellow")  # type: ignore[attr-defined]
    if row.assumed and values:
        text.append(f"\n↳ {row.assumed}", style="dim")
    return text


def elide_values(call: str) -> str:
    """A stage call with long ``weight=``/``bias=`` values written ``…`` (narrow tables; --json keeps all).

    >>> elide_values("Linear(3, 4, bias=0, weight=((1, 0, 0), (0, 1, 0)))")
    'Linear(3, 4, bias=0, weight=…)'
    """
    out, i = [], 0
    for key in ("weight=", "bias="):
        start = call.find(key, i)
        if start < 0:
            continue
        j, depth = start + len(key), 0
        while j < len(call):
            ch = call[j]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            j += 1
        value = call[start + len(key) : j]
        if len(value) > 8:
            out.append(call[i : start + len(key)] + "…")
            i = j
    return "".join(out) + call[i:]


class Fitted:
    """A table built for the width it is drawn at: the first of ``variants`` (functions of nothing
    that build a Table) whose narrowest layout splits no number, shape or word; else the last one.
    Columns holding numbers and shapes never wrap, so a table that does not fit drops columns
    (its variants) rather than folding ``70,276,800`` into ``70,276,80`` / ``0``."""

    def __init__(self, variants: list) -> None:
        self.variants = variants

    def _pick(self, console, options) -> Table:
        from rich.measure import Measurement

        unbounded = options.update_width(10**6)  # Measurement.get clamps the minimum to the width it is given
        for build in self.variants:
            table = build()
            if Measurement.get(console, unbounded, table).minimum <= options.max_width:
                return table
        return table

    def __rich_console__(self, console, options):
        yield self._pick(console, options)

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement.get(console, options, self._pick(console, options))


def shape_table(trace: Trace, title: str | None = None, plain: bool = False, failed: str | None = None,
                notes: bool = True, caption: str = MACS_CONVENTION, macs_header: str = "MACs*",
                values: bool = False) -> Fitted:  # fmt: skip
    """The shape table; narrow, it elides weight values in the stage text, then leaves out the input
    column (each stage's input is the row above's output), then the receptive field. ``caption`` and
    ``macs_header`` name another way of counting MACs (``--convention``); ``values``: the table of a run,
    which also says what a stage's values assume (print(model)'s hidden settings)."""
    variants = []
    for short, drop in ((False, ()), (True, ()), (True, ("input",)), (True, ("input", "RF*"))):
        variants.append(lambda short=short, drop=drop: _shape_table(trace, title, plain, failed, notes, short, drop,
                                                                    caption, macs_header, values))  # fmt: skip
    return Fitted(variants)


def _shape_table(trace: Trace, title: str | None, plain: bool, failed: str | None, notes: bool, short: bool,
                 drop: tuple[str, ...], caption_text: str = MACS_CONVENTION, macs_header: str = "MACs*",
                 values: bool = False) -> Table:  # fmt: skip
    caption = caption_text if notes else None
    if caption and drop:
        caption += f" Columns left out at this width: {', '.join(drop)}."
    table = Table(title=title, box=table_box(plain), title_justify="left", caption=caption,
                  caption_justify="left")  # fmt: skip
    # numbers and shapes never wrap; the stage text wraps between words
    columns: dict[str, dict[str, Any]] = {
        "#": dict(justify="right", no_wrap=True),
        "stage": dict(min_width=8, overflow="fold"),
        "input": dict(no_wrap=True),
        "output": dict(no_wrap=True),
        "params": dict(justify="right", no_wrap=True),
        "MACs*": dict(justify="right", no_wrap=True),
        "RF*": dict(no_wrap=True),
    }
    keep = [name for name in columns if name not in drop]
    for name in keep:
        table.add_column(macs_header if name == "MACs*" else name, **columns[name])

    def add(cells: dict[str, Any]) -> None:
        table.add_row(*(cells.get(name, "") for name in keep))

    add({"stage": "input", "output": dims(trace.input_shape)})
    for row in trace.rows:
        add({"#": str(row.index), "stage": stage_cell(row, short, values), "input": " + ".join(map(dims, row.input_shapes)) or dims(row.input_shape),
             "output": dims(row.output_shape), "params": f"{row.params:,}", "MACs*": f"{row.macs:,}",
             "RF*": fmt_rf(row.receptive_field)})  # fmt: skip
    if failed:
        add({"#": str(len(trace.rows) + 1), "stage": Text(failed, style="bold red"), "output": Text("error", style="red")})
    return table


def _merged(formulas: Iterable) -> list[tuple[str, str, str]]:
    """(dims, formula, note) with H and W merged when they read the same."""
    out: list[tuple[str, str, str]] = []
    for f in formulas:
        body = f"{f.expression} = {f.steps}"
        if out and out[-1][1] == body and out[-1][2] == (f.note or ""):
            out[-1] = (f"{out[-1][0]}, {f.dim}", body, out[-1][2])
        else:
            out.append((f.dim, body, f.note or ""))
    return out


#: adaptive pools list every output's bin in the formula table up to this many outputs per dimension
SHOWN_BINS = 16


def bins_text(row: Row, dim: str) -> str:
    """``bins [0,1) [0,1) [0,2) …`` for a small adaptive pool output along ``dim`` (H, W or L), else ''."""
    from cnnops.model.arithmetic import adaptive_bins

    names = row.stage.spatial_names()
    if row.stage.kind != "adaptive_pool" or dim not in names:
        return ""
    axis = names.index(dim) - len(names)
    length, out = row.effective_input[axis], row.output_shape[axis]
    if not 0 < out <= SHOWN_BINS:
        return ""
    return "bins " + " ".join(f"[{a},{b})" for a, b in adaptive_bins(length, out))  # one word per bin: never split


def formula_table(trace: Trace, plain: bool = False) -> Fitted | None:
    rows = [(row, dims, body + (f"\n{bins}" if (bins := bins_text(row, dims.split(", ")[0])) else ""), note)
            for row in trace.rows for dims, body, note in _merged(row.formulas)]  # fmt: skip
    if not rows:
        return None
    return Fitted([lambda short=short: _formula_table(rows, plain, short) for short in (False, True)])


def _formula_table(rows: list, plain: bool, short: bool) -> Table:
    table = Table(title="Output size per spatial dimension", box=table_box(plain), title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", max_width=24 if short else None, overflow="fold")
    table.add_column("dim", no_wrap=True)
    table.add_column("formula", min_width=20, overflow="fold")
    table.add_column("note", style="yellow", overflow="fold")
    previous = None
    for row, dims_, body, note in rows:
        first = row.index != previous
        previous = row.index
        call = elide_values(row.stage.call) if short else row.stage.call
        table.add_row(str(row.index) if first else "", escape(call) if first else "", dims_, body, note)
    return table


class SideBySide:
    """Two renderables next to each other when both fit at their natural width, else one below the other."""

    def __init__(self, left, right, gap: int = 2) -> None:
        self.left, self.right, self.gap = left, right, gap

    def __rich_console__(self, console, options):
        from rich.columns import Columns
        from rich.measure import Measurement

        unbounded = options.update_width(10**6)
        widths = [Measurement.get(console, unbounded, r).maximum for r in (self.left, self.right)]
        if sum(widths) + self.gap <= options.max_width:
            yield Columns([self.left, self.right], padding=(0, self.gap))
        else:
            yield self.left
            yield self.right


def param_breakdown(stage) -> str:
    """``weight 5×3×3×3 = 135 + bias 5 = 140``; one tensor: ``weight 4×3 = 12``."""
    import math

    parts = [(name, shape, math.prod(shape)) for name, shape in stage.param_shapes()]
    text = " + ".join(f"{name} {dims(shape)}" + (f" = {count:,}" if len(shape) > 1 else "")
                      for name, shape, count in parts)  # fmt: skip
    total = sum(count for _, _, count in parts)
    return text + (f" = {total:,}" if len(parts) > 1 or len(parts[0][1]) == 1 else "") if parts else ""


def params_table(trace: Trace, plain: bool = False) -> Table | None:
    """Where each stage's parameters come from: its weight and bias shapes, multiplied out."""
    rows = [row for row in trace.rows if row.stage.param_shapes() or row.stage.params()]
    if not rows:
        return None
    table = Table(title="Parameters", box=table_box(plain), title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", overflow="fold")
    table.add_column("weight and bias", overflow="fold")
    for row in rows:
        if row.shares is not None:
            where = f"the parameters of stage {row.shares}, counted there"
        elif row.stage.kind == "measured":
            where = f"{row.stage.params():,}, as {row.stage.source} counts them"  # type: ignore[attr-defined]
        else:
            where = param_breakdown(row.stage)
        table.add_row(str(row.index), escape(elide_values(row.stage.call)), where)
    return table


def totals_table(trace: Trace, plain: bool = False, macs_label: str = "MACs") -> Table:
    table = Table(title="Totals", box=table_box(plain), title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    table.add_row("parameters", f"{trace.total_params:,}", human(trace.total_params))
    table.add_row("parameter memory", f"{4 * trace.total_params:,} B", f"{human_bytes(4 * trace.total_params)} float32")
    table.add_row(macs_label, f"{trace.total_macs:,}", human(trace.total_macs))
    table.add_row("output shape", dims(trace.output_shape), "")
    table.add_row("output elements", f"{trace.output_elements:,}", human(trace.output_elements))
    table.add_row(
        "activation memory", f"{trace.activation_bytes:,} B",
        f"{human_bytes(trace.activation_bytes)} float32, input + every stage output",
    )  # fmt: skip
    return table


def notes_table(trace: Trace, plain: bool = False) -> Table | None:
    """What the reader of a model said about the whole network (unused layers, shared weights…)."""
    if not trace.notes:
        return None
    table = Table(title="Notes", box=table_box(plain), title_justify="left", show_header=False)
    table.add_column("note", overflow="fold")
    for note in trace.notes:
        table.add_row(escape(note))
    return table


def kernels_table(described: list[dict], plain: bool = False) -> Table:
    """The named kernels: name, size, values (one row per line) and what they detect."""
    table = Table(title="Named kernels for weight= / --weight", box=table_box(plain), title_justify="left",
                  show_lines=not plain)  # fmt: skip
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("size", no_wrap=True)
    table.add_column("values", no_wrap=True)
    table.add_column("what it does", min_width=20)
    for k in described:
        rows = k["values"]
        width = max(len(f"{v:g}") for row in rows for v in row)
        values = "\n".join(" ".join(f"{v:g}".rjust(width) for v in row) for row in rows)
        table.add_row(k["name"], "×".join(map(str, k["shape"])), values, k["description"])
    return table


CSV_COLUMNS = ["index", "stage", "input_shape", "output_shape", "params", "macs", "rf_size", "rf_jump", "rf_start",
               "notes"]  # fmt: skip


def _flat_row(row: Row) -> dict[str, object]:
    """Plain ASCII cells: shapes as ``1x64x55x55``; a receptive-field value per axis only when they differ."""
    rf = row.receptive_field or ()

    def axes(values: list[str]) -> str:
        return values[0] if len(set(values)) == 1 else "x".join(values) if values else ""

    return {
        "index": row.index,
        "stage": row.stage.torch_repr(),
        "input_shape": "x".join(map(str, row.input_shape)),
        "output_shape": "x".join(map(str, row.output_shape)),
        "params": row.params,
        "macs": row.macs,
        "rf_size": axes([str(r.size) for r in rf]),
        "rf_jump": axes([str(r.jump) for r in rf]),
        "rf_start": axes([f"{r.start:g}" for r in rf]),
        "notes": "; ".join(row.notes),
    }


def shape_csv(trace: Trace) -> str:
    """One row per stage with a header, shapes written ``1×64×55×55``."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in trace.rows:
        writer.writerow(_flat_row(row))
    return buffer.getvalue()


def shape_jsonl(trace: Trace) -> str:
    """One JSON object per stage per line (the rows of ``--json``)."""
    import json

    return "".join(json.dumps(row.as_dict(), ensure_ascii=False) + "\n" for row in trace.rows)
