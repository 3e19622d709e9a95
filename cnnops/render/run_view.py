"""Renderables and JSON documents for a pipeline run: tensors, weights, shapes and formulas.

rich is imported only by the functions that draw, so ``--json`` never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cnnops.render.stack import Stack
    from cnnops.run.pipeline import RunResult


#: --full draws every value; beyond this many per tensor the table would take minutes and gigabytes
FULL_LIMIT = 100_000


def run_renderables(result: RunResult, *, source: str, plain: bool, full: bool,
                    notes: bool = True, tensors: bool = True, header_notes: Sequence[str] = ()) -> list[RenderableType]:  # fmt: skip
    """``notes``: the footnotes (MACs convention, float noise, default weights); a command prints them once.
    ``tensors``: False draws only the header, the shape and the formula tables (``--summary``);
    ``header_notes`` go under the header line (what the command chose, and why)."""
    from rich.text import Text

    from cnnops.render import shape_tables as render
    from cnnops.render.tensor_grid import NOISE, noise_floor
    from cnnops.render.tensor_grid import tensor_view as exact_view

    rounded = []

    def tensor_view(data, **kwargs):  # float noise prints as 0 in a table; --full shows exact values
        if not tensors:
            return None
        floor = 0.0 if full else noise_floor(data)
        if floor:
            rounded.append(True)
        return exact_view(data, zero_below=floor, **kwargs)

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
    out.extend(Text(note, style="dim") for note in header_notes)
    # a max pool's winners are highlighted in the tensor it read (the first pool that read it); a run
    # that did not compute the pool's indices gets them for the cells the table shows
    picked: dict[int, tuple[Any, int]] = {}
    for res in results:
        if res.winners is not None:
            picked.setdefault(res.row.inputs[0], (res.winners, res.row.index))
        elif _max_pool(res) and res.row.inputs[0] not in picked:
            read = res.row.inputs[0]
            tensor = result.input if read == 0 else results[read - 1].output
            if tensor is not None:
                picked[read] = (_shown_winners(tensor, res, full), res.row.index)
    mark = "*" if plain else "highlighted"
    first_winners, pool = picked.get(0, (None, 0))
    title = "input"
    if first_winners is not None:
        title += f"  ({mark}: picked by the max pool of stage {pool})"
    out.append(tensor_view(result.input, title=title, highlight=first_winners, full=full, plain=plain))
    if result.input_indices is not None and any(r.row.stage.kind == "unpool" for r in results):
        out.append(tensor_view(result.input_indices, title="input indices (from the max pool that made the input)",
                               full=full, plain=plain))  # fmt: skip
    for res in results:
        row = res.row
        label = f"stage {row.index} {render.row_text(row)}"
        if res.weight is not None:
            out.append(tensor_view(res.weight, title=f"{label}: weight {render.dims(res.weight.shape)}",
                                   full=full, plain=plain))  # fmt: skip
            if res.bias is not None:
                out.append(tensor_view(res.bias, title=f"{label}: bias", full=full, plain=plain))
        winners, pool = picked.get(row.index, (None, 0))
        title = f"{label} → {render.dims(res.output.shape)}"
        if row.flattened_shape:
            title += f" (after an implicit flatten to {render.dims(row.flattened_shape)})"
        if winners is not None:
            title += f"  ({mark}: picked by the max pool of stage {pool})"
        out.append(tensor_view(res.output, title=title, highlight=winners, full=full, plain=plain))
        if res.indices is not None and getattr(row.stage, "return_indices", False):
            out.append(tensor_view(res.indices, title=f"{label}: indices (flat h·W + w)",
                                   full=full, plain=plain))  # fmt: skip
    out = [r for r in out if r is not None]
    shapes = render.shape_table(result.trace, title="Shapes", plain=plain, notes=notes, values=True)
    formulas = render.formula_table(result.trace, plain=plain)
    # side by side when the terminal is wide enough for both, one under the other otherwise
    out.append(shapes if formulas is None else render.SideBySide(shapes, formulas))
    if rounded and notes:
        out.append(Text(
            f"|v| ≤ {NOISE:g}·max|v| shown as 0 (float noise); --full or --json show exact values.", style="dim",
        ))  # fmt: skip
    if result.defaults_used and notes:
        out.append(Text(
            f"Weights not given were drawn with PyTorch's default initialisation, seed {result.seed} (--seed).",
            style="dim",
        ))  # fmt: skip
    return out


def _max_pool(res: Any) -> bool:
    from cnnops.model import stages as st

    return isinstance(res.row.stage, st.Pool) and res.row.stage.mode == "max"


def _shown_winners(tensor: Any, res: Any, full: bool) -> Any:
    """The winner mask of a max pool over ``tensor``, for the cells :func:`tensor_view` shows of it."""
    import math

    from cnnops.render.tensor_grid import shown_indices
    from cnnops.run.winners import shown_winners

    grid = tensor.shape if tensor.ndim >= 2 else (1, *tensor.shape)
    if tensor.ndim == 0:
        cells = [0]
    else:
        summarize = not full and tensor.size > 1000  # tensor_view's default threshold and edge items
        planes, rows, cols = (
            [i for i in shown_indices(n, summarize, 3) if i is not None]
            for n in (math.prod(grid[:-2]), grid[-2], grid[-1])
        )
        cells = [(p * grid[-2] + r) * grid[-1] + c for p in planes for r in rows for c in cols]
    x = tensor.reshape(res.row.effective_input)
    return shown_winners(x, res.row.stage, cells).reshape(tensor.shape)


def run_group(result: RunResult, *, source: str, plain: bool, full: bool, notes: bool = True,
              tensors: bool = True, header_notes: Sequence[str] = ()) -> Stack:  # fmt: skip
    """The run's renderables one under the other (a rich Group, without importing rich's console)."""
    from cnnops.render.stack import Stack

    return Stack(*run_renderables(result, source=source, plain=plain, full=full, notes=notes, tensors=tensors,
                                  header_notes=header_notes))
