"""Rich renderables for shape traces: the shape table, the formula table and the totals.

Nothing here computes: it formats what :mod:`cnnops.model.trace` produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

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


def row_text(row: Row) -> str:
    """A row's stage as the reader wrote it, with where it reads from: ``y = Add() ← 9, 7``."""
    text = (f"{row.label} = " if row.label else "") + row.stage.call
    if not row.reads_previous:
        text += " ← " + ", ".join("input" if i == 0 else str(i) for i in row.inputs)
    return text


def stage_cell(row: Row) -> Text:
    text = Text(row_text(row))
    if row.sized_from_input:
        text.append("\n↳ sized from its input", style="yellow")
    if row.promoted_shape:
        text.append(f"\n↳ rank rule {dims(row.promoted_shape)}", style="dim")
    if row.flattened_shape:
        text.append(f"\n↳ implicit flatten {dims(row.flattened_shape)}", style="yellow")
    if row.unpool_source is not None:
        text.append(f"\n↳ indices of stage {row.unpool_source}", style="dim")
    return text


def shape_table(trace: Trace, title: str | None = None, plain: bool = False, failed: str | None = None,
                caption: str = MACS_CONVENTION, macs_header: str = "MACs*") -> Table:  # fmt: skip
    table = Table(title=title, box=table_box(plain), title_justify="left", caption=caption,
                  caption_justify="left")  # fmt: skip
    # every column may fold (long shapes and numbers continue on the next line), so the table always
    # fits the width instead of rich cropping its right edge
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", min_width=8, overflow="fold")
    table.add_column("input", overflow="fold")
    table.add_column("output", overflow="fold")
    table.add_column("params", justify="right", overflow="fold")
    table.add_column(macs_header, justify="right", overflow="fold")
    table.add_column("RF*", overflow="fold")
    table.add_row("", "input", "", dims(trace.input_shape), "", "", "")
    for row in trace.rows:
        table.add_row(
            str(row.index), stage_cell(row), " + ".join(map(dims, row.input_shapes)) or dims(row.input_shape),
            dims(row.output_shape),
            f"{row.params:,}", f"{row.macs:,}", fmt_rf(row.receptive_field),
        )  # fmt: skip
    if failed:
        table.add_row(str(len(trace.rows) + 1), Text(failed, style="bold red"), "", Text("error", style="red"),
                      "", "", "")  # fmt: skip
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


def formula_table(trace: Trace, plain: bool = False) -> Table | None:
    rows = [(row, axes, body, note) for row in trace.rows for axes, body, note in _merged(row.formulas)]
    if not rows:
        return None
    table = Table(title="Output size per spatial dimension", box=table_box(plain), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("stage", max_width=24, overflow="fold")
    table.add_column("dim", no_wrap=True)
    table.add_column("formula", min_width=20, overflow="fold")
    table.add_column("note", style="yellow", overflow="fold")
    previous = None
    for row, axes, body, note in rows:
        first = row.index != previous
        previous = row.index
        table.add_row(str(row.index) if first else "", escape(row.stage.call) if first else "", axes, body, note)
    return table


def totals_table(trace: Trace, plain: bool = False, macs_label: str = "MACs") -> Table:
    table = Table(title="Totals", box=table_box(plain), title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    table.add_row("parameters", f"{trace.total_params:,}", human(trace.total_params))
    table.add_row(macs_label, f"{trace.total_macs:,}", human(trace.total_macs))
    table.add_row("output shape", dims(trace.output_shape), "")
    table.add_row("output elements", f"{trace.output_elements:,}", human(trace.output_elements))
    table.add_row(
        "activation memory", f"{trace.activation_bytes:,} B",
        f"{human_bytes(trace.activation_bytes)} float32, input + every stage output",
    )  # fmt: skip
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
