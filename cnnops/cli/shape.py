"""``cnnops shape``: the size calculator, for stage text, print(model) text, Python source, ONNX files and
(``--model``) a model torch builds on its meta device."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cnnops.cli.common import app, complete_stage, emit_text, plain_output, read_stage_args, stdout_console, user_errors
from cnnops.errors import UsageError

#: positional words that name a model file rather than a shape or a stage
_MODEL_FILES = (".onnx", ".py")


@user_errors
def shape(
    input_shape: Annotated[
        str | None,
        typer.Argument(metavar="[SHAPE]", help="Input shape: 1x3x224x224, or unbatched 3x224x224. An ONNX file "
                       "with a static input shape gives its own."),
    ] = None,
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
        typer.Option("-f", "--file", help="Stages (one per line), print(model) text, Python source defining the "
                     "model (read, never run), or an .onnx file; '-' for stdin."),
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option("--class", help="The model class in Python source: Net, or Net(width=32) with literal "
                     "arguments (default: the one class no other class uses)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Import and build a model with torch on its meta device (no weights, takes "
                     "seconds): torchvision.models:resnet18, 'net.py:Net(width=32)', 'pkg.mod:factory(num_classes=10)'."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="One CSV row per stage, for spreadsheets.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per stage per line.")] = False,
) -> None:
    """Size a network: per-stage shapes, formulas, parameters, MACs and receptive field. Never imports torch
    (except for --model).

    Examples: cnnops shape 1x3x224x224 -f examples/alexnet.txt;
    cnnops shape 1x3x32x32 -f examples/cifar_net.py; cnnops shape examples/tiny.onnx
    """
    from cnnops.model.trace import parse_shape, trace_shapes

    if sum((as_json, csv, jsonl)) > 1:
        raise UsageError("choose one of --json, --csv and --jsonl")
    words = ([input_shape] if input_shape is not None else []) + list(stages or [])
    model_files = [w for w in words if w.lower().endswith(_MODEL_FILES) and Path(w).is_file()]
    if model_files:
        if file is not None or len(model_files) > 1:
            raise UsageError("give one model file (-f FILE)")
        file = Path(model_files[0])
        words.remove(model_files[0])
    shape_in = parse_shape(words[0]) if words else None
    stage_texts = words[1:]
    source = None
    model_error = None
    if model is not None:
        if file is not None or stage_texts:
            raise UsageError("--model sizes the model alone: leave out -f and stages")
        if shape_in is None:
            raise UsageError("give the input shape first, e.g. cnnops shape 1x3x224x224 --model …")
        from cnnops.engines.torch_model import trace_model

        traced = trace_model(model, shape_in)
        network, model_error = traced.network, traced.error
        source = f"--model {model}"
    elif file is not None and (str(file) == "-" or class_name is not None or _is_model_file(file)):
        from cnnops.spec.sources import read_network_file

        network, read_shape = read_network_file(str(file), shape_in, class_name=class_name, stdin=sys.stdin)
        if stage_texts and network.exact:
            raise UsageError("a model file is sized alone: leave out the stages")
        if stage_texts:
            from cnnops.spec import parse_stages

            network = parse_stages(stage_texts) + network
        shape_in, source = read_shape, (None if not network.exact else str(file))
    else:
        if class_name is not None:
            raise UsageError("--class chooses a class in Python source given with -f FILE")
        if shape_in is None:
            raise UsageError("give the input shape first, e.g. cnnops shape 1x3x224x224 'Conv2d(3, 64, 3)'")
        network = read_stage_args(stage_texts, file)
    trace = trace_shapes(shape_in, network)
    if model_error is not None and trace.error is None:
        trace.error = model_error  # the rows before the module where torch's forward failed stand
    if as_json or csv or jsonl:
        trace.raise_error()
        from cnnops.render import shape_tables as render

        emit_text(json.dumps(trace.as_dict()) if as_json else
                  render.shape_csv(trace) if csv else render.shape_jsonl(trace))  # fmt: skip
        return
    from cnnops.render import shape_tables as render

    console = stdout_console()
    plain = plain_output(console)
    failed = trace.error.stage if trace.error else None
    title = f"cnnops shape {'×'.join(map(str, shape_in))}" + (f" · {source}" if source else "")
    console.print(render.shape_table(trace, title=title, plain=plain, failed=failed))
    formulas = render.formula_table(trace, plain=plain)
    if formulas is not None:
        console.print(formulas)
    if trace.error is None:
        console.print(render.totals_table(trace, plain=plain))
    notes = render.notes_table(trace, plain=plain)
    if notes is not None:
        console.print(notes)
    trace.raise_error()


def _is_model_file(path: Path) -> bool:
    """Python source or ONNX: by name, or Python by its first lines."""
    name = str(path).lower()
    if name.endswith(_MODEL_FILES):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    from cnnops.spec.pysource import looks_like_python

    return looks_like_python(head)


app.command("shape")(shape)
