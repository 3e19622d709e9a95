"""Renderables and JSON documents for a pipeline run: tensors, weights, shapes and formulas.

rich is imported only by the functions that draw, so ``--json`` never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Group, RenderableType

    from cnnops.run.pipeline import RunResult


#: --full draws every value; beyond this many per tensor the table would take minutes and gigabytes
FULL_LIMIT = 100_000


def run_renderables(result: RunResult, *, source: str, plain: bool, full: bool,
                    notes: Sequence[str] = ()) -> list[RenderableType]:  # fmt: skip
    """The tables of a run; ``notes`` go under the header line (what the command chose, and why)."""
    from rich.text import Text

    from cnnops.render import shape_tables as render
    from cnnops.render.tensor_grid import tensor_view

    results = result.results
    if full:
        largest = max([result.input.size] + [r.output.size for r in results])
        if largest > FULL_LIMIT:
            from cnnops.errors import InputError, setting

            raise InputError(
                f"{setting('full')} draws at most {FULL_LIMIT:,} values per tensor and this run has one of "
                f"{largest:,} — drop {setting('full')} for a summary, or save every value with "
                f"{setting('output', 'FILE.npy')}"
            )
    out: list[RenderableType] = []
    device = "" if result.device == "cpu" else f" on {result.device}"
    header = Text(f"input {source} → {render.dims(result.input.shape)} · engine {result.engine}{device}", style="bold")
    out.append(header)
    out.extend(Text(note, style="dim") for note in notes)
    first_winners = results[0].winners if results else None
    title = "input"
    if first_winners is not None:
        title += f"  ({'*' if plain else 'highlighted'}: picked by the max pool of stage 1)"
    out.append(tensor_view(result.input, title=title, highlight=first_winners, full=full, plain=plain))
    for i, res in enumerate(results):
        row = res.row
        label = f"stage {row.index} {row.stage.call}"
        if res.weight is not None:
            out.append(tensor_view(res.weight, title=f"{label}: weight {render.dims(res.weight.shape)}",
                                   full=full, plain=plain))  # fmt: skip
            if res.bias is not None:
                out.append(tensor_view(res.bias, title=f"{label}: bias", full=full, plain=plain))
        winners = results[i + 1].winners if i + 1 < len(results) else None
        title = f"{label} → {render.dims(res.output.shape)}"
        if row.flattened_shape:
            title += f" (after an implicit flatten to {render.dims(row.flattened_shape)})"
        if winners is not None:
            mark = "*" if plain else "highlighted"
            title += f"  ({mark}: picked by the max pool of stage {row.index + 1})"
        out.append(tensor_view(res.output, title=title, highlight=winners, full=full, plain=plain))
    shapes = render.shape_table(result.trace, title="Shapes", plain=plain)
    formulas = render.formula_table(result.trace, plain=plain)
    if formulas is None:
        out.append(shapes)
    else:  # side by side when the terminal is wide enough, one under the other otherwise
        from rich.columns import Columns

        out.append(Columns([shapes, formulas], padding=(0, 2)))
    if result.defaults_used:
        out.append(Text(
            f"Weights not given were drawn with PyTorch's default initialisation, seed {result.seed} (--seed).",
            style="dim",
        ))  # fmt: skip
    return out


def run_group(result: RunResult, *, source: str, plain: bool, full: bool, notes: Sequence[str] = ()) -> Group:
    from rich.console import Group

    return Group(*run_renderables(result, source=source, plain=plain, full=full, notes=notes))
