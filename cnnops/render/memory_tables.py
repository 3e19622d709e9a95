"""Rich renderables for memory plans and counting conventions: the memory table per stage, the memory
totals, and the side-by-side comparison of how tools count multiply-accumulates.

Nothing here computes: it formats what :mod:`cnnops.model.memory` and :mod:`cnnops.model.conventions` produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from cnnops.render.shape_tables import human, human_bytes, row_text, table_box
from cnnops.text import dims

if TYPE_CHECKING:
    from cnnops.choices import Convention
    from cnnops.model.conventions import Comparison
    from cnnops.model.memory import MemoryPlan
    from cnnops.model.memory_search import MemoryFit
    from cnnops.model.trace import Trace

MEMORY_NOTE = (
    "Saved: what autograd keeps for backward in a training forward (PyTorch 2.13, CPU), each storage counted "
    "at the first stage that saves it. Peak: the most bytes of activations alive at once in a no-grad forward."
)


def _bytes(n: int) -> str:
    return human_bytes(n) if n else "0"


def _saved_text(plan: MemoryPlan, position: int) -> str:
    parts = []
    for saved in plan.stages[position].saved:
        if saved.released:
            parts.append(f"{saved.what} (released: the output is not used)")
        elif saved.shared_with is not None:
            parts.append(f"{saved.what} (saved by {saved.shared_with})")
        else:
            parts.append(f"{saved.what} {_bytes(saved.nbytes)}")
    return "; ".join(parts)


def _in_place(stage: object) -> bool:
    option = getattr(stage, "option", None)
    return bool(getattr(stage, "inplace", False) or (option is not None and option("inplace", False)))


def memory_table(trace: Trace, plan: MemoryPlan, title: str | None = None, plain: bool = False) -> Table:
    table = Table(title=title or f"Memory per stage ({plan.dtype})", box=table_box(plain), title_justify="left",
                  caption=MEMORY_NOTE, caption_justify="left")  # fmt: skip
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", min_width=8, overflow="fold")
    table.add_column("output", overflow="fold")
    table.add_column("output bytes", justify="right", overflow="fold")
    table.add_column("saved", justify="right", overflow="fold")
    table.add_column("what autograd saves", overflow="fold")
    table.add_row("", "input", dims(trace.input_shape), _bytes(plan.input_bytes), "", "")
    for position, (row, stage) in enumerate(zip(trace.rows, plan.stages)):
        label = Text(row_text(row))
        if _in_place(row.stage):
            label.append("\n↳ in place", style="yellow")
        table.add_row(str(row.index), label, dims(row.output_shape), _bytes(stage.output_bytes),
                      _bytes(stage.saved_bytes), _saved_text(plan, position))  # fmt: skip
    return table


def memory_totals(plan: MemoryPlan, plain: bool = False, highlight: str | None = None) -> Table:
    table = Table(title=f"Memory totals ({plan.dtype}, optimizer {plan.optimizer})", box=table_box(plain),
                  title_justify="left", show_header=False)  # fmt: skip
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("", justify="right")
    table.add_column("", style="dim")
    states = {"sgd": "none", "momentum": "1 buffer per parameter", "adam": "2 buffers per parameter",
              "adamw": "2 buffers per parameter"}[plan.optimizer]  # fmt: skip
    rows = [
        ("parameters", plan.params_bytes, ""),
        ("gradients", plan.grads_bytes, "one per parameter"),
        ("optimizer state", plan.optimizer_bytes, states),
        ("buffers", plan.buffers_bytes, "BatchNorm running statistics and counters"),
        ("saved for backward", plan.saved_bytes, "activations, indices, masks, statistics"),
        ("training step", plan.training_bytes, "all of the above, each storage once"),
        ("inference peak", plan.inference_peak_bytes, "activations alive at once, input included"),
        ("inference", plan.inference_bytes, "parameters + buffers + inference peak"),
    ]
    for name, value, note in rows:
        style = "bold" if name == highlight else ""
        table.add_row(Text(name, style=style), Text(f"{value:,}", style=style), human_bytes(value), note)
    return table


def fit_line(found: MemoryFit) -> str:
    what = "batch size" if found.grow == "batch" else "input side"
    total = "inference" if found.inference else "training step"
    line = (f"Largest {what}: {found.value} — {total} needs {found.total:,} bytes ({human_bytes(found.total)}) of "
            f"{found.budget:,} ({human_bytes(found.budget)}).")  # fmt: skip
    if found.next_value is not None and found.next_total is not None:
        line += f" {found.next_value} would need {found.next_total:,} ({human_bytes(found.next_total)})."
    elif found.value == 2**31 - 1:
        line += f" That is the largest {what} cnnops sizes."
    else:
        line += f" No larger {what} is accepted by the network."
    return line


def comparison_table(comparison: Comparison, plain: bool = False) -> Table:
    from cnnops.model.conventions import UNITS

    table = Table(title="MACs per stage as each tool counts them", box=table_box(plain), title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", min_width=14, overflow="fold")
    for convention in comparison.conventions:
        unit = " (FLOPs)" if UNITS[convention] == "FLOPs" else ""
        table.add_column(convention.value + unit, justify="right", overflow="fold")
    for position, row in enumerate(comparison.trace.rows):
        cells = []
        for convention in comparison.conventions:
            found = comparison.counts[convention][position]
            text = "—" if found.value is None else f"{found.value:,}"
            cells.append(Text(text, style="yellow" if found.reason else ""))
        table.add_row(str(row.index), Text(row_text(row)), *cells)
    totals = []
    for convention in comparison.conventions:
        total = comparison.total(convention)
        totals.append(Text("—" if total is None else f"{total:,}\n{human(total)}", style="bold"))
    table.add_row("", Text("total", style="bold"), *totals)
    return table


def difference_lines(comparison: Comparison) -> list[str]:
    """One line per distinct difference from cnnops' count: the tool, the stages it applies to, why."""
    from cnnops.model.conventions import TOOLS

    grouped: dict[tuple[Convention, str], list[int]] = {}
    for row, convention, found in comparison.differences():
        grouped.setdefault((convention, found.reason or ""), []).append(row.index)
    lines = []
    for (tool, reason), stages in grouped.items():
        which = f"stage {stages[0]}" if len(stages) == 1 else "stages " + ", ".join(map(str, stages))
        lines.append(f"{TOOLS[tool]}, {which}: {reason}")
    return lines


def memory_csv(trace: Trace, plan: MemoryPlan) -> str:
    """One CSV row per stage: shapes, output and saved bytes, and what is saved."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "stage", "input_shape", "output_shape", "output_bytes", "saved_bytes", "saved"])
    for position, (row, stage) in enumerate(zip(trace.rows, plan.stages)):
        writer.writerow([row.index, row.stage.torch_repr(), "x".join(map(str, row.input_shape)),
                         "x".join(map(str, row.output_shape)), stage.output_bytes, stage.saved_bytes,
                         _saved_text(plan, position)])  # fmt: skip
    return buffer.getvalue()
