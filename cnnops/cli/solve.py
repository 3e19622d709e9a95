"""``cnnops solve``: which kernel/stride/padding/dilation give a wanted output length."""

import re
from pathlib import Path
from typing import Annotated

import typer

from cnnops.choices import Dtype, LayerKind, Optimizer, SolveFor
from cnnops.cli.common import app, complete_stage, emit_text, plain_output, read_stage_args, stdout_console, user_errors
from cnnops.errors import UsageError


@app.command()
@user_errors
def solve(
    input_text: Annotated[str, typer.Option(
        "--input", metavar="L|SHAPE", help="Input length L (one spatial dimension); with --max-memory the input shape, e.g. 1x3x224x224.",
    )],
    length_out: Annotated[int | None, typer.Option("--output", help="Wanted output length.")] = None,
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
    as_json: Annotated[bool, typer.Option(
        "--json", help="A JSON list of {kernel_size, stride, padding, dilation}; with --max-memory the fitted size, "
        "its totals and the memory document.",
    )] = False,
    stages: Annotated[list[str] | None, typer.Argument(
        metavar="[STAGE]...", autocompletion=complete_stage, help="--max-memory: the network's layers.",
    )] = None,  # fmt: skip
    file: Annotated[Path | None, typer.Option("-f", "--file", help="--max-memory: the network's stage file.")] = None,
    max_memory: Annotated[str | None, typer.Option(
        "--max-memory", help="Find the largest batch (or input side) whose memory fits this, e.g. 24GiB, 512MiB, 16GB.",
    )] = None,
    solve_for: Annotated[SolveFor, typer.Option(
        "--for", case_sensitive=False, help="--max-memory: grow the batch or the (square) input side.",
    )] = SolveFor.batch,
    inference: Annotated[bool, typer.Option(
        "--inference", help="--max-memory: fit an inference forward (weights + peak) instead of a training step.",
    )] = False,
    dtype: Annotated[Dtype, typer.Option("--dtype", case_sensitive=False, help="--max-memory: the dtype.")] = Dtype.float32,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", case_sensitive=False, help="--max-memory: the optimizer whose state a training step keeps.",
    )] = Optimizer.adam,
) -> None:
    """List the layer settings that turn length L into L_OUT, simplest first; or, with --max-memory, the largest
    batch or input side whose memory fits.

    Example: cnnops solve --input 28 --output 28 --kernel 3

    Memory: cnnops solve --max-memory 24GiB --input 1x3x224x224 -f examples/alexnet.txt
    """
    if max_memory is not None:
        if length_out is not None or any(v is not None for v in (kernel, stride, padding, dilation)):
            raise UsageError("--max-memory searches the batch or input side of a network: leave out --output, "
                             "--kernel, --stride, --padding and --dilation")  # fmt: skip
        from cnnops.cli.planner import solve_memory

        return solve_memory(input_text, read_stage_args(stages, file), max_memory, grow=solve_for.value,
                            inference=inference, dtype=dtype, optimizer=optimizer, as_json=as_json)  # fmt: skip
    if stages or file is not None or inference or solve_for != SolveFor.batch or (dtype, optimizer) != ("float32", "adam"):
        raise UsageError("a network, --for, --inference, --dtype and --optimizer go with --max-memory")
    if not re.fullmatch(r"\s*-?[0-9]{1,12}\s*", input_text):
        raise UsageError(f"--input takes a length, an integer (a shape such as 1x3x224x224 goes with --max-memory); "
                         f"got '{input_text}'")  # fmt: skip
    if length_out is None:
        raise UsageError("give the wanted output length with --output (or --max-memory to fit memory)")
    length_in = int(input_text)
    from cnnops.model import solve as solver

    solutions = solver.solve(
        length_in, length_out, kind=layer.value, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
        max_kernel=max_kernel, max_stride=max_stride, max_dilation=max_dilation, limit=limit or None,
    )  # fmt: skip
    unpool_range = None
    if layer == LayerKind.unpool and kernel is not None:
        unpool_range = solver.unpool_output_range(length_in, kernel, stride, padding or 0)
    if as_json:
        import json

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
