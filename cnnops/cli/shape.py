"""``cnnops shape``: the size calculator, for stage text, print(model) text, Python source, ONNX files and
(``--model``) a model torch builds on its meta device."""

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from cnnops.choices import Convention, Dtype, Optimizer
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
    no_notes: Annotated[bool, typer.Option("--no-notes", help="Leave out the footnote under the table.")] = False,
    memory: Annotated[bool, typer.Option(
        "--memory", help="Memory per stage (output, saved for backward) and totals: parameters, gradients, optimizer "
        "state, saved activations, inference peak, training step.",
    )] = False,
    dtype: Annotated[Dtype, typer.Option(
        "--dtype", case_sensitive=False, help="--memory: parameters and activations in this dtype (indices stay int64).",
    )] = Dtype.float32,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Set the input's batch (first) dimension.")] = None,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", case_sensitive=False,
        help="--memory: whose state to count (sgd none, momentum 1×, adam/adamw 2× the parameters).",
    )] = Optimizer.adam,
    convention: Annotated[Convention, typer.Option(
        "--convention", case_sensitive=False, help="Count MACs as this tool does (flop-counter: FLOPs).",
    )] = Convention.cnnops,
    compare_conventions: Annotated[bool, typer.Option(
        "--compare-conventions", help="One column per tool's way of counting MACs, and a line per difference saying why.",
    )] = False,
) -> None:
    """Size a network: per-stage shapes, formulas, parameters, MACs and receptive field. Never imports torch
    (except for --model).

    Examples: cnnops shape 1x3x224x224 -f examples/alexnet.txt;
    cnnops shape 1x3x32x32 -f examples/cifar_net.py; cnnops shape examples/tiny.onnx

    Memory: cnnops shape 1x3x224x224 -f examples/alexnet.txt --memory --dtype bfloat16 --batch 64
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
    if model is not None and (file is not None or stage_texts):
        raise UsageError("--model sizes the model alone: leave out -f and stages")
    if model is not None and shape_in is None:
        raise UsageError("give the input shape first, e.g. cnnops shape 1x3x224x224 --model …")
    model_source = model is not None or (file is not None and (str(file) == "-" or class_name is not None or
                                                               _is_model_file(file)))  # fmt: skip
    if not model_source and class_name is not None:
        raise UsageError("--class chooses a class in Python source given with -f FILE")
    if not model_source and shape_in is None:
        raise UsageError("give the input shape first, e.g. cnnops shape 1x3x224x224 'Conv2d(3, 64, 3)'")
    text = sys.stdin.read() if file is not None and str(file) == "-" else None  # read once: a batch may re-read

    def read(shape_given):
        """The network for this input shape (model code is read for one shape), its shape, torch's failure."""
        if model is not None:
            from cnnops.engines.torch_model import trace_model

            traced = trace_model(model, shape_given)
            return traced.network, shape_given, traced.error
        if model_source:
            from cnnops.spec.sources import read_network_file

            stdin = io.StringIO(text) if text is not None else sys.stdin
            network, read_shape = read_network_file(str(file), shape_given, class_name=class_name, stdin=stdin)
            if stage_texts and network.exact:
                raise UsageError("a model file is sized alone: leave out the stages")
            if stage_texts:
                from cnnops.spec import parse_stages

                network = parse_stages(stage_texts) + network
            return network, read_shape, None
        return read_stage_args(stage_texts, file), shape_given, None

    network, shape_in, model_error = read(shape_in)
    if batch is not None:
        from cnnops.model.memory_search import with_batch

        batched = with_batch(shape_in, network, batch)
        if batched != shape_in and network.exact:
            network, shape_in, model_error = read(batched)  # model code is read for the shape it runs on
        shape_in = batched
    source = (f"--model {model}" if model is not None else str(file)) if network.exact else None
    trace = trace_shapes(shape_in, network)
    if model_error is not None and trace.error is None:
        trace.error = model_error  # the rows before the module where torch's forward failed stand
    if memory or compare_conventions or convention != Convention.cnnops or (dtype, optimizer) != ("float32", "adam"):
        from cnnops.cli.planner import shape_planned

        output = "json" if as_json else "csv" if csv else "jsonl" if jsonl else None
        return shape_planned(trace, output, memory=memory, dtype=dtype, optimizer=optimizer, convention=convention,
                             compare=compare_conventions)  # fmt: skip
    if as_json or csv or jsonl:
        trace.raise_error()
        import json

        from cnnops.render import shape_tables as render

        emit_text(json.dumps(trace.as_dict()) if as_json else
                  render.shape_csv(trace) if csv else render.shape_jsonl(trace))  # fmt: skip
        return
    from cnnops.render import shape_tables as render
    from cnnops.render.plain import print_table

    console = stdout_console()
    plain = plain_output(console)
    failed = getattr(trace.error, "stage", None)
    title = f"cnnops shape {render.dims(shape_in)}" + (f" · {source}" if source else "")
    print_table(console, render.shape_table(trace, title=title, plain=plain, failed=failed, notes=not no_notes))
    formulas = render.formula_table(trace, plain=plain)
    if formulas is not None:
        print_table(console, formulas)
    parameters = render.params_table(trace, plain=plain)
    if parameters is not None:
        print_table(console, parameters)
    if trace.error is None:
        print_table(console, render.totals_table(trace, plain=plain))
    notes = render.notes_table(trace, plain=plain)
    if notes is not None:
        print_table(console, notes)
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
    from cnnops.spec.sources import looks_like_python

    return looks_like_python(head)


app.command("shape")(shape)
