"""Data commands: ``run`` and the single-op fronts (``conv``, ``pool``, …), each one stage of ``run``.

Every single-op command turns its options into stage text in PyTorch's call syntax and hands it to
the one stage parser, so options and stage text can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cnnops.cli import app, emit_text, plain_output, read_stage_args, stdout_console, user_errors
from cnnops.errors import UsageError

if TYPE_CHECKING:
    from cnnops.io import TensorInput

DEFAULT_MAX_ELEMENTS = 2**28


class PoolMode(StrEnum):
    max = "max"
    avg = "avg"


class Dims(StrEnum):
    auto = "auto"
    one = "1"
    two = "2"


class PaddingMode(StrEnum):
    zeros = "zeros"
    reflect = "reflect"
    replicate = "replicate"
    circular = "circular"


# --- shared options ------------------------------------------------------------------------------
InputArg = Annotated[str, typer.Argument(
    metavar="INPUT", help="A .json, .npy or image file, '-' for stdin, or inline JSON such as '[[1, 2], [3, 4]]'.",
)]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")]
IntermediatesOpt = Annotated[bool, typer.Option("--intermediates", help="With --json: every stage's data too.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to a .json or .npy file (atomically).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No tables (errors still go to stderr).")]
FullOpt = Annotated[bool, typer.Option("--full", help="Show every value instead of summarising large tensors.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for PyTorch's default initialisation of weights not given.")]
RgbOpt = Annotated[bool, typer.Option("--rgb", help="Read images as 3 channels (3, H, W) instead of grayscale (1, H, W).")]
MaxElementsOpt = Annotated[int, typer.Option(
    "--max-elements", help="Refuse tensors with more elements than this (checked before allocating).", min=1,
)]  # fmt: skip
DimsOpt = Annotated[Dims, typer.Option(
    "--dims", help="1-D or 2-D layer; auto: 1-D for a 1-D input, else 2-D.", case_sensitive=False,
)]  # fmt: skip
TupleOpt = str | None


@dataclass
class OutputOptions:
    as_json: bool = False
    intermediates: bool = False
    output: Path | None = None
    quiet: bool = False
    full: bool = False
    seed: int = 0
    rgb: bool = False
    max_elements: int = DEFAULT_MAX_ELEMENTS


def size_literal(text: str | None, option: str, *, allow_none: bool = False) -> str | None:
    """``2`` → ``2``; ``2,3`` or ``2x3`` → ``(2, 3)`` (height, width)."""
    if text is None:
        return None
    parts = [p.strip() for p in re.split(r"[,x×]", text.strip().strip("()"))]
    word = r"-?\d+|None|none" if allow_none else r"-?\d+"
    if not parts or len(parts) > 2 or not all(re.fullmatch(word, p) for p in parts):
        example = "2 or 2,3" + (" (None keeps that size)" if allow_none else "")
        raise UsageError(f"{option} takes an integer or two separated by a comma, e.g. {example}; got '{text}'")
    parts = ["None" if p.lower() == "none" else p for p in parts]
    return parts[0] if len(parts) == 1 else f"({parts[0]}, {parts[1]})"


def value_literal(text: str, option: str) -> str:
    """A weight or bias option as stage-argument text: a JSON list, a number, a bool, or a string."""
    stripped = text.strip()
    if stripped.startswith("["):
        return stripped
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", stripped):
        return stripped
    if stripped.lower() in ("true", "false"):
        return stripped.capitalize()
    return repr(stripped)


def load_input(input_arg: str, opts: OutputOptions) -> TensorInput:
    """Check the output path first (nothing is computed for an unwritable one), then read the input."""
    from cnnops import io

    if opts.output is not None:
        io.check_output_path(str(opts.output))
    return io.read_input(input_arg, rgb=opts.rgb, max_elements=opts.max_elements)


def run_data_command(tensor: TensorInput, stage_texts: list[str], opts: OutputOptions, *, file: Path | None = None,
                     indices_file: Path | None = None) -> None:  # fmt: skip
    """Run the stages on the input, then render or write the result."""
    from cnnops import io
    from cnnops.pipeline import run_pipeline

    indices = tensor.indices
    if indices_file is not None:
        import numpy as np

        indices = io.read_array_file(str(indices_file), what="indices")
        if not np.all(np.isfinite(indices)) or not np.all(indices == np.round(indices)):
            raise UsageError(f"indices file '{indices_file}' must hold whole numbers")
        indices = indices.astype(np.int64)
    stage_list = read_stage_args(stage_texts, file)
    result = run_pipeline(tensor.data, stage_list, indices=indices, seed=opts.seed, max_elements=opts.max_elements)
    from cnnops.report import run_document, run_group

    doc = None
    if opts.as_json or (opts.output is not None and opts.output.suffix.lower() == ".json"):
        doc = run_document(result, source=tensor.source, intermediates=opts.intermediates)
    if opts.output is not None:
        io.write_output(str(opts.output), result.output, indices=result.output_indices, doc=doc)
    if opts.as_json:
        emit_text(io.dumps(doc))
        return
    if opts.quiet:
        return
    console = stdout_console()
    console.print(run_group(result, source=tensor.source, plain=plain_output(console), full=opts.full))


def spatial_dims(tensor: TensorInput, dims: Dims) -> int:
    """1-D layers for a 1-D input, 2-D otherwise, unless --dims says."""
    if dims != Dims.auto:
        return int(dims.value)
    return 1 if tensor.data.ndim == 1 else 2


# --- commands --------------------------------------------------------------------------------------
@app.command()
@user_errors
def run(
    args: Annotated[list[str], typer.Argument(
        metavar="INPUT [STAGE]...",
        help="The input (file, '-', inline JSON), then stages in PyTorch call syntax; './relu' forces a path.",
    )],
    file: Annotated[Path | None, typer.Option("-f", "--file", help="Stages, one per line, or print(model) text.")] = None,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    seed: SeedOpt = 0,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Pipe one tensor through any stages and print every intermediate tensor, the shapes and the formulas.

    Example: [bold]cnnops run examples/line5x5.json "Conv2d(1, 1, 3, weight='gx', bias=False)" ReLU "MaxPool2d(2, stride=1)"[/]
    """
    from cnnops.spec import looks_like_stage

    inputs: list[str] = []
    stage_texts: list[str] = []
    for arg in args:
        (stage_texts if stage_texts or looks_like_stage(arg) else inputs).append(arg)
    if not inputs:
        raise UsageError("give an input first: a .json, .npy or image file, '-' for stdin, or inline JSON")
    if len(inputs) > 1:
        raise UsageError(
            f"'{inputs[1]}' is not a known layer, and run takes one input — check the stage name "
            "(cnnops shape --help lists the layers) or write './name' for a file"
        )
    opts = OutputOptions(as_json, intermediates, output, quiet, full, seed, rgb, max_elements)
    run_data_command(load_input(inputs[0], opts), stage_texts, opts, file=file)


@app.command()
@user_errors
def pool(
    input_arg: InputArg,
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="kernel_size: 2 or 2,3.")],
    stride: Annotated[TupleOpt, typer.Option("--stride", "-s", help="Default: the kernel size.")] = None,
    padding: Annotated[str, typer.Option("--padding", "-p", help="Implicit padding on both sides.")] = "0",
    dilation: Annotated[TupleOpt, typer.Option("--dilation", "-d", help="Max pooling only.")] = None,
    ceil_mode: Annotated[bool, typer.Option("--ceil-mode", help="Round the output size up (PyTorch's ceil_mode).")] = False,
    mode: Annotated[PoolMode, typer.Option("--mode", help="max or avg pooling.", case_sensitive=False)] = PoolMode.max,
    count_include_pad: Annotated[bool, typer.Option(
        "--count-include-pad/--no-count-include-pad", help="Average pooling: count padding in the divisor.",
    )] = True,  # fmt: skip
    divisor_override: Annotated[int | None, typer.Option("--divisor-override", help="Average pooling: divide by this.")] = None,
    dims: DimsOpt = Dims.auto,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Max or average pooling (MaxPool1d/2d, AvgPool1d/2d).

    Example: [bold]cnnops pool --kernel 2 --stride 1 examples/grid4x4.json[/]
    """
    opts = OutputOptions(as_json, intermediates, output, quiet, full, 0, rgb, max_elements)
    tensor = load_input(input_arg, opts)
    nd = spatial_dims(tensor, dims)
    args = [f"kernel_size={size_literal(kernel, '--kernel')}"]
    if stride is not None:
        args.append(f"stride={size_literal(stride, '--stride')}")
    args.append(f"padding={size_literal(padding, '--padding')}")
    if mode == PoolMode.max:
        if divisor_override is not None:
            raise UsageError("--divisor-override is for --mode avg")
        if dilation is not None:
            args.append(f"dilation={size_literal(dilation, '--dilation')}")
        text = f"MaxPool{nd}d({', '.join(args)}, ceil_mode={ceil_mode})"
    else:
        if dilation is not None:
            raise UsageError("average pooling has no dilation in PyTorch — drop --dilation or use --mode max")
        args += [f"ceil_mode={ceil_mode}", f"count_include_pad={count_include_pad}"]
        if divisor_override is not None:
            if nd == 1:
                raise UsageError("AvgPool1d has no divisor_override in PyTorch — it is for 2-D pooling")
            args.append(f"divisor_override={divisor_override}")
        text = f"AvgPool{nd}d({', '.join(args)})"
    run_data_command(tensor, [text], opts)


@app.command("adaptive-pool")
@user_errors
def adaptive_pool(
    input_arg: InputArg,
    output_size: Annotated[str, typer.Option("--output-size", help="Output size: 8, or 2,3 (None keeps that size).")],
    mode: Annotated[PoolMode, typer.Option("--mode", help="avg or max.", case_sensitive=False)] = PoolMode.avg,
    dims: DimsOpt = Dims.auto,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Adaptive average or max pooling to a fixed output size (AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d).

    Example: [bold]cnnops adaptive-pool '[1, 2, 3]' --output-size 8[/]
    """
    opts = OutputOptions(as_json, intermediates, output, quiet, full, 0, rgb, max_elements)
    tensor = load_input(input_arg, opts)
    nd = spatial_dims(tensor, dims)
    kind = "Avg" if mode == PoolMode.avg else "Max"
    text = f"Adaptive{kind}Pool{nd}d({size_literal(output_size, '--output-size', allow_none=True)})"
    run_data_command(tensor, [text], opts)


@app.command()
@user_errors
def unpool(
    input_arg: InputArg,
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="kernel_size of the max pool it undoes.")],
    stride: Annotated[TupleOpt, typer.Option("--stride", "-s", help="Default: the kernel size.")] = None,
    padding: Annotated[str, typer.Option("--padding", "-p")] = "0",
    output_size: Annotated[TupleOpt, typer.Option("--output-size", help="H,W of the result (the max pool's input size).")] = None,
    indices: Annotated[Path | None, typer.Option(
        "--indices", help="A .json/.npy file with the max pool's indices (else taken from the input document).",
    )] = None,  # fmt: skip
    dims: DimsOpt = Dims.auto,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Max-unpooling (MaxUnpool1d/2d): put each value back where the max pool found it.

    Example: [bold]cnnops pool -k 2 x.json --json | cnnops unpool -k 2 -[/]
    """
    opts = OutputOptions(as_json, intermediates, output, quiet, full, 0, False, max_elements)
    tensor = load_input(input_arg, opts)
    nd = spatial_dims(tensor, dims)
    args = [f"kernel_size={size_literal(kernel, '--kernel')}"]
    if stride is not None:
        args.append(f"stride={size_literal(stride, '--stride')}")
    args.append(f"padding={size_literal(padding, '--padding')}")
    if output_size is not None:
        sizes = size_literal(output_size, "--output-size")
        args.append(f"output_size={sizes if sizes and sizes.startswith('(') else f'({sizes},)'}")
    run_data_command(tensor, [f"MaxUnpool{nd}d({', '.join(args)})"], opts, indices_file=indices)


@app.command()
@user_errors
def relu(
    input_arg: InputArg,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """ReLU: max(0, x) element-wise.

    Example: [bold]cnnops relu '[[-4, 0, 4]]'[/]
    """
    opts = OutputOptions(as_json, intermediates, output, quiet, full, 0, rgb, max_elements)
    run_data_command(load_input(input_arg, opts), ["ReLU()"], opts)


@app.command()
@user_errors
def act(
    input_arg: InputArg,
    fn: Annotated[str, typer.Option("--fn", help="relu, leaky-relu, sigmoid, tanh, gelu, elu, silu, softmax, … or a call such as 'LeakyReLU(0.2)'.")],
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """An activation function (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, ELU, SiLU, Softmax, …).

    Example: [bold]cnnops act '[[-2, 0, 2]]' --fn 'LeakyReLU(0.1)'[/]
    """
    from cnnops import stages as st
    from cnnops.spec import parse_stage

    stage = parse_stage(fn)
    if not isinstance(stage, st.Activation):
        raise UsageError(f"--fn takes an activation such as relu, sigmoid or 'LeakyReLU(0.2)', not {stage.name}")
    opts = OutputOptions(as_json, intermediates, output, quiet, full, 0, rgb, max_elements)
    run_data_command(load_input(input_arg, opts), [fn], opts)


@app.command()
@user_errors
def conv(
    input_arg: InputArg,
    weight: Annotated[str | None, typer.Option("--weight", "-w", help=(
        "A named kernel (cnnops kernels), several as 'edge, -edge, edge.T, -edge.T', a JSON list, "
        "a .json/.npy file, or 'random'. Default: PyTorch's initialisation (--seed)."
    ))] = None,  # fmt: skip
    out_channels: Annotated[int | None, typer.Option("--out-channels", help="Default: the number of filters in --weight, else 1.")] = None,
    kernel: Annotated[TupleOpt, typer.Option("--kernel", "-k", help="kernel_size. Default: the size of --weight, else 3.")] = None,
    stride: Annotated[str, typer.Option("--stride", "-s")] = "1",
    padding: Annotated[str, typer.Option("--padding", "-p", help="2, 2,3, same or valid.")] = "0",
    dilation: Annotated[str, typer.Option("--dilation", "-d")] = "1",
    groups: Annotated[int, typer.Option("--groups")] = 1,
    bias: Annotated[str | None, typer.Option("--bias", help="A number, a JSON list, or false. Default: PyTorch's initialisation.")] = None,
    padding_mode: Annotated[PaddingMode, typer.Option("--padding-mode", case_sensitive=False)] = PaddingMode.zeros,
    dims: DimsOpt = Dims.auto,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """A convolution (Conv1d/2d; cross-correlation, as PyTorch computes it).

    Example: [bold]cnnops conv examples/line5x5.json --weight gx --bias 0[/]
    """
    from cnnops.kernels import weight_layout

    opts = OutputOptions(as_json, intermediates, output, quiet, full, seed, rgb, max_elements)
    tensor = load_input(input_arg, opts)
    data = tensor.data
    nd = spatial_dims(tensor, dims)
    in_channels = data.shape[-nd - 1] if data.ndim >= nd + 1 else 1
    layout = weight_layout(weight, nd) if weight is not None else None
    if out_channels is None:
        out_channels = layout[0] if layout else 1
    kernel_text = size_literal(kernel, "--kernel") if kernel is not None else None
    if kernel_text is None:
        kernel_text = ("(" + ", ".join(map(str, layout[1])) + ")" if nd > 1 else str(layout[1][0])) if layout else "3"
    padding_text = padding if padding in ("same", "valid") else size_literal(padding, "--padding")
    args = [
        str(in_channels), str(out_channels), kernel_text, f"stride={size_literal(stride, '--stride')}",
        f"padding={padding_text!r}" if padding in ("same", "valid") else f"padding={padding_text}",
        f"dilation={size_literal(dilation, '--dilation')}", f"groups={groups}",
        f"padding_mode='{padding_mode.value}'",
    ]  # fmt: skip
    if weight is not None:
        args.append(f"weight={value_literal(weight, '--weight')}")
    if bias is not None:
        args.append(f"bias={value_literal(bias, '--bias')}")
    run_data_command(tensor, [f"Conv{nd}d({', '.join(args)})"], opts)


@app.command()
@user_errors
def linear(
    input_arg: InputArg,
    out_features: Annotated[int, typer.Option("--out-features", help="Number of outputs.")],
    weight: Annotated[str | None, typer.Option("--weight", "-w", help="A JSON list (out × in), a .json/.npy file, or 'random'.")] = None,
    bias: Annotated[str | None, typer.Option("--bias", help="A number, a JSON list, or false.")] = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
    intermediates: IntermediatesOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """A fully connected layer (Linear). A 3-D input (C, H, W) is flattened to one vector, a 4-D one per batch item.

    Example: [bold]cnnops linear '[1, 2, 3]' --out-features 4 --weight '[[1,0,0],[0,1,0],[0,0,1],[1,1,1]]' --bias 0[/]
    """
    opts = OutputOptions(as_json, intermediates, output, quiet, full, seed, rgb, max_elements)
    tensor = load_input(input_arg, opts)
    data = tensor.data
    texts = []
    if data.ndim >= 4:
        texts.append("Flatten(1)")
        in_features = int(data[0].size) if data.shape[0] else 0
    elif data.ndim == 3:
        texts.append("Flatten(0)")
        in_features = int(data.size)
    else:
        in_features = int(data.shape[-1]) if data.ndim else 1
    args = [str(in_features), str(out_features)]
    if weight is not None:
        args.append(f"weight={value_literal(weight, '--weight')}")
    if bias is not None:
        args.append(f"bias={value_literal(bias, '--bias')}")
    texts.append(f"Linear({', '.join(args)})")
    run_data_command(tensor, texts, opts)


@app.command()
@user_errors
def flatten(
    input_arg: InputArg,
    start_dim: Annotated[int, typer.Option("--start-dim")] = 1,
    end_dim: Annotated[int, typer.Option("--end-dim")] = -1,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    full: FullOpt = False,
    rgb: RgbOpt = False,
    max_elements: MaxElementsOpt = DEFAULT_MAX_ELEMENTS,
) -> None:
    """Flatten dimensions start_dim..end_dim into one (nn.Flatten).

    Example: [bold]cnnops flatten '[[[1, 2], [3, 4]]]' --start-dim 0[/]
    """
    opts = OutputOptions(as_json, False, output, quiet, full, 0, rgb, max_elements)
    run_data_command(load_input(input_arg, opts), [f"Flatten({start_dim}, {end_dim})"], opts)


@app.command()
@user_errors
def kernels(as_json: JsonOpt = False) -> None:
    """List the named kernels for weight= / --weight, with their values and sign conventions.

    Example: [bold]cnnops kernels[/]
    """
    from cnnops.kernels import describe_kernels

    described = describe_kernels()
    if as_json:
        import json

        emit_text(json.dumps(described))
        return
    from cnnops.render import kernels_table

    console = stdout_console()
    console.print(kernels_table(described, plain=plain_output(console)))
