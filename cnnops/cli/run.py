"""``cnnops run``: tensors through any stages. In a module of its own, so that running it imports and
defines no other command (the single-op commands are in :mod:`cnnops.cli.data`)."""

from pathlib import Path
from typing import Annotated

import typer

from cnnops.cli.batch import DataOptions, emit_result, process
from cnnops.cli.common import read_stage_args
from cnnops.cli.options import data_command
from cnnops.errors import UsageError


def _complete_run(incomplete: str) -> list[str]:
    """Stage names for words that start like one, else files in the current directory."""
    from glob import glob

    from cnnops.cli.common import complete_stage

    return (complete_stage(incomplete) if incomplete else []) + sorted(glob(incomplete + "*"))[:50]


@data_command()
def run(
    args: Annotated[list[str], typer.Argument(
        metavar="INPUT... [STAGE]...", autocompletion=_complete_run,
        help="Inputs (files, '-', inline JSON), then stages in PyTorch call syntax; './relu' forces a path.",
    )],  # fmt: skip
    file: Annotated[Path | None, typer.Option("-f", "--file", help="Stages, one per line, or print(model) text.")] = None,
    *,
    opts: DataOptions,
) -> None:
    """Pipe tensors through any stages and print every intermediate tensor, the shapes and the formulas.

    Example: cnnops run examples/line5x5.json "Conv2d(1, 1, 3, weight='gx', bias=False)" ReLU "MaxPool2d(2, stride=1)"
    """
    from cnnops.spec import looks_like_stage

    inputs: list[str] = []
    stage_texts: list[str] = []
    for arg in args:
        (stage_texts if stage_texts or looks_like_stage(arg) else inputs).append(arg)
    if not inputs:
        raise UsageError("give an input first: a .json, .npy or image file, '-' for stdin, or inline JSON")
    if file is not None and str(file) == "-" and "-" in inputs:
        raise UsageError("stdin ('-') can be read only once — give the stage file (-f) or the input as a file")
    stages = read_stage_args(stage_texts, file)
    if file is not None and str(file) != "-":
        opts.read_files.append(str(file))
    for given in stages.data:  # weights and biases named by file in the stages: outputs never replace them
        opts.read_files += [v for v in (getattr(given, "weight", None), getattr(given, "bias", None)) if isinstance(v, str)]
    process(inputs, lambda tensor: stages, opts, emit_result(opts))
