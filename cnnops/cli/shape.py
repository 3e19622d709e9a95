"""``cnnops shape``: the torch-free size calculator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cnnops.cli.common import app, complete_stage, emit_text, plain_output, read_stage_args, stdout_console, user_errors
from cnnops.errors import UsageError


@user_errors
def shape(
    input_shape: Annotated[
        str, typer.Argument(metavar="SHAPE", help="Input shape: 1x3x224x224, or unbatched 3x224x224.")
    ],
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[STAGE]...",
            autocompletion=complete_stage,
            help="Layers in PyTorch call syntax: 'Conv2d(3, 64, 3)' ReLU maxpool:2",
        ),  # fmt: skip
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="Stages, one per line, or the text print(model) shows ('-' for stdin)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="One CSV row per stage, for spreadsheets.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per stage per line.")] = False,
) -> None:
    """Size a network: per-stage shapes, formulas, parameters, MACs and receptive field. Never imports torch.

    Example: cnnops shape 1x3x224x224 -f examples/alexnet.txt
    """
    from cnnops.model.trace import parse_shape, trace_shapes

    shape_in = parse_shape(input_shape)
    stage_list = read_stage_args(stages, file)
    trace = trace_shapes(shape_in, stage_list)
    if sum((as_json, csv, jsonl)) > 1:
        raise UsageError("choose one of --json, --csv and --jsonl")
    if as_json or csv or jsonl:
        trace.raise_error()
        from cnnops.render import shape_tables as render

        emit_text(json.dumps(trace.as_dict()) if as_json else
                  render.shape_csv(trace) if csv else render.shape_jsonl(trace))  # fmt: skip
        return
    from cnnops.render import shape_tables as render
    from cnnops.render.plain import print_table

    console = stdout_console()
    plain = plain_output(console)
    failed = getattr(trace.error, "stage", None)
    title = f"cnnops shape {render.dims(shape_in)}"
    print_table(console, render.shape_table(trace, title=title, plain=plain, failed=failed))
    formulas = render.formula_table(trace, plain=plain)
    if formulas is not None:
        print_table(console, formulas)
    if trace.error is None:
        print_table(console, render.totals_table(trace, plain=plain))
    trace.raise_error()


app.command("shape")(shape)
