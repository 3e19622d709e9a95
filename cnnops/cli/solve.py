"""``cnnops solve``: which kernel/stride/padding/dilation give a wanted output length."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cnnops.choices import LayerKind
from cnnops.cli.common import app, emit_text, plain_output, stdout_console, user_errors


@app.command()
@user_errors
def solve(
    length_in: Annotated[int, typer.Option("--input", help="Input length L (one spatial dimension).")],
    length_out: Annotated[int, typer.Option("--output", help="Wanted output length.")],
    kernel: Annotated[int | None, typer.Option("--kernel", "-k", help="Fix kernel_size.")] = None,
    stride: Annotated[int | None, typer.Option("--stride", "-s", help="Fix the stride.")] = None,
    padding: Annotated[int | None, typer.Option("--padding", "-p", help="Fix the padding.")] = None,
    dilation: Annotated[int | None, typer.Option("--dilation", "-d", help="Fix the dilation.")] = None,
    layer: Annotated[LayerKind, typer.Option(
        "--layer", case_sensitive=False,
        help="conv, pool, unpool (PyTorch's default MaxUnpool size) or conv_transpose (adds output_padding).",
    )] = LayerKind.conv,  # fmt: skip
    limit: Annotated[int, typer.Option("--limit", min=0, help="Show at most this many (0: all).")] = 20,
    max_kernel: Annotated[int, typer.Option("--max-kernel", min=1, help="Search kernels up to this size.")] = 11,
    max_stride: Annotated[int, typer.Option("--max-stride", min=1, help="Search strides up to this.")] = 8,
    max_dilation: Annotated[int, typer.Option("--max-dilation", min=1, help="Search dilations up to this.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of {kernel_size, stride, padding, dilation}.")] = False,
) -> None:
    """List the layer settings that turn length L into L_OUT, simplest first.

    Example: cnnops solve --input 28 --output 28 --kernel 3
    """
    from cnnops.model import solve as solver

    solutions = solver.solve(
        length_in, length_out, kind=layer.value, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
        max_kernel=max_kernel, max_stride=max_stride, max_dilation=max_dilation, limit=limit or None,
    )  # fmt: skip
    unpool_range = None
    if layer == LayerKind.unpool and kernel is not None:
        unpool_range = solver.unpool_output_range(length_in, kernel, stride, padding or 0)
    if as_json:
        emit_text(json.dumps([s.as_dict() for s in solutions]))
        return
    from rich.table import Table

    from cnnops.render.shape_tables import table_box

    console = stdout_console()
    plain = plain_output(console)
    title = f"{layer.value}: {length_in} → {length_out}, simplest first"
    table = Table(title=title, box=table_box(plain), title_justify="left")
    for name in ("#", "kernel", "stride", "padding", "dilation"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    if layer == LayerKind.conv_transpose:
        table.add_column("output_padding", justify="right", no_wrap=True, min_width=14)
    table.add_column("stage", ratio=3, overflow="fold")
    table.add_column("note", ratio=2)
    for n, s in enumerate(solutions, 1):
        cells = [str(n), str(s.kernel_size), str(s.stride), str(s.padding), str(s.dilation)]
        if layer == LayerKind.conv_transpose:
            cells.append(str(s.output_padding or 0))
        table.add_row(*cells, s.stage_text(layer.value), s.note)
    if solutions:
        from cnnops.render.plain import print_table

        print_table(console, table)
    else:
        console.print(f"No {layer.value} settings within the search bounds turn {length_in} into {length_out}.")
    if unpool_range is not None:
        default, low, high = unpool_range
        console.print(
            f"MaxUnpool with kernel {kernel}: PyTorch's default size is {default}; output_size may be any of "
            f"{low}…{high}."
        )
