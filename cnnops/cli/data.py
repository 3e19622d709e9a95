"""The single-op data commands (``conv``, ``pool``, …), each one stage of ``run`` (:mod:`cnnops.cli.run`).

Every single-op command turns its options into stage text in PyTorch's call syntax and hands it to
the one stage parser, so options and stage text can never disagree. The options every data command
shares live in :mod:`cnnops.cli.options`.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from cnnops.choices import Dims, PaddingMode, PoolMode
from cnnops.cli.batch import DataOptions, emit_result, process
from cnnops.cli.common import app, emit_text, plain_output, stdout_console, user_errors
from cnnops.cli.options import (
    DimsOpt,
    InputsArg,
    TupleOpt,
    _complete_activations,
    _complete_kernels,
    data_command,
    size_literal,
    value_literal,
)
from cnnops.errors import CnnopsError, UsageError

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.network import Network


def execute(inputs: list[str], stages_for: Callable[["TensorInput"], list[str]], opts: DataOptions,
            fixed: list | None = None, note_for: Callable[["TensorInput"], str | None] | None = None) -> None:  # fmt: skip
    """Each input's stage texts through the one parser (then ``fixed`` stages), run, and emit (with the
    note ``note_for`` writes under the header, if any)."""
    from cnnops.spec import parse_stages

    def build(tensor: "TensorInput") -> "Network":
        return parse_stages(stages_for(tensor)) + list(fixed or [])

    process(inputs, build, opts, emit_result(opts, note_for))


def spatial_dims(tensor: "TensorInput", dims: Dims) -> int:
    """1-D layers for a 1-D input or a piped 1-D result, 2-D otherwise, unless --dims says."""
    if dims != Dims.auto:
        return int(dims.value)
    if tensor.last_stage is not None:  # a chained result keeps the dimensionality of its last stage
        from cnnops.spec import parse_stage

        try:
            nd = parse_stage(tensor.last_stage).nd
        except CnnopsError:
            nd = 0
        if nd:
            return nd
    return 1 if tensor.data.ndim == 1 else 2


def dims_note(tensor: "TensorInput", dims: Dims, layer: str) -> str | None:
    """What ``--dims auto`` chose, when the input fits both the 1-D and the 2-D ``layer`` (``MaxPool``
    → MaxPool1d/MaxPool2d), and how to get the other: 1-D layers take (C, L) or (N, C, L), 2-D ones
    (C, H, W) or (N, C, H, W) and, by the rank rule, (H, W) and (W,) too."""
    if dims != Dims.auto or tensor.last_stage is not None or tensor.data.ndim > 3:
        return None
    from cnnops.text import tuple_text

    shape = tensor.data.shape
    nd = spatial_dims(tensor, dims)
    chosen, other = (f"{layer}1d", f"{layer}2d") if nd == 1 else (f"{layer}2d", f"{layer}1d")
    read, other_read = (_read_as(shape, 1), _read_as(shape, 2)) if nd == 1 else (_read_as(shape, 2), _read_as(shape, 1))
    return (f"--dims auto chose {chosen}, reading {tuple_text(shape)} as {read}; --dims {3 - nd} gives "
            f"{other}, reading it as {other_read}")


def _read_as(shape: tuple[int, ...], nd: int) -> str:
    """How an ``nd``-D layer reads an input of ``shape`` (1 to 3 dimensions), in words."""
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'s' if n != 1 else ''}"

    if nd == 1:
        if len(shape) == 1:
            return f"one signal of length {shape[0]}"
        lead = f"a batch of {shape[0]}, " if len(shape) == 3 else ""
        return f"{lead}{count(shape[-2], 'channel')} of length {shape[-1]}"
    if len(shape) == 3:
        return f"{count(shape[0], 'channel')} of {shape[1]}×{shape[2]}"
    height, width = (1, shape[0]) if len(shape) == 1 else shape
    return f"one {height}×{width} image"


# --- commands ------------------------------------------------------------------------------------
@data_command()
def pool(
    inputs: InputsArg,
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="kernel_size: 2 or 2,3.")],
    stride: Annotated[TupleOpt, typer.Option("--stride", "-s", help="Default: the kernel size.")] = None,
    padding: Annotated[str, typer.Option("--padding", "-p", help="Implicit padding on both sides.")] = "0",
    dilation: Annotated[TupleOpt, typer.Option("--dilation", "-d", help="Max pooling only.")] = None,
    ceil_mode: Annotated[bool, typer.Option("--ceil-mode", help="Round the output size up (PyTorch's ceil_mode).")] = False,
    mode: Annotated[PoolMode, typer.Option("--mode", help="max or avg pooling.", case_sensitive=False)] = PoolMode.max,
    count_include_pad: Annotated[bool | None, typer.Option(
        "--count-include-pad/--no-count-include-pad", show_default=False,
        help="Average pooling: count padding in the divisor (default: count it, as PyTorch).",
    )] = None,  # fmt: skip
    divisor_override: Annotated[int | None, typer.Option("--divisor-override", help="Average pooling: divide by this.")] = None,
    dims: DimsOpt = Dims.auto,
    *,
    opts: DataOptions,
) -> None:
    """Max or average pooling (MaxPool1d/2d, AvgPool1d/2d).

    Example: cnnops pool --kernel 2 --stride 1 examples/grid4x4.json
    """
    args = [f"kernel_size={size_literal(kernel, '--kernel')}"]
    if stride is not None:
        args.append(f"stride={size_literal(stride, '--stride')}")
    args.append(f"padding={size_literal(padding, '--padding')}")
    if mode == PoolMode.max:
        if divisor_override is not None:
            raise UsageError("--divisor-override is for --mode avg")
        if count_include_pad is not None:  # a max pool has no such argument: refused, not ignored
            flag = "--count-include-pad" if count_include_pad else "--no-count-include-pad"
            raise UsageError(f"{flag} is for --mode avg (a max pool never counts padding)")
        if dilation is not None:
            args.append(f"dilation={size_literal(dilation, '--dilation')}")
        args.append(f"ceil_mode={ceil_mode}")
    else:
        if dilation is not None:
            raise UsageError("average pooling has no dilation in PyTorch — drop --dilation or use --mode max")
        args += [f"ceil_mode={ceil_mode}", f"count_include_pad={count_include_pad is not False}"]

    def stages_for(tensor: "TensorInput") -> list[str]:
        nd = spatial_dims(tensor, dims)
        if mode == PoolMode.max:
            return [f"MaxPool{nd}d({', '.join(args)})"]
        extra = []
        if divisor_override is not None:
            if nd == 1:
                raise UsageError("AvgPool1d has no divisor_override in PyTorch — it is for 2-D pooling")
            extra.append(f"divisor_override={divisor_override}")
        return [f"AvgPool{nd}d({', '.join(args + extra)})"]

    layer = "MaxPool" if mode == PoolMode.max else "AvgPool"
    execute(inputs, stages_for, opts, note_for=lambda t: dims_note(t, dims, layer))


@data_command("adaptive-pool")
def adaptive_pool(
    inputs: InputsArg,
    output_size: Annotated[str, typer.Option("--output-size", help="Output size: 8, or 2,3 (None keeps that size).")],
    mode: Annotated[PoolMode, typer.Option("--mode", help="avg or max.", case_sensitive=False)] = PoolMode.avg,
    dims: DimsOpt = Dims.auto,
    *,
    opts: DataOptions,
) -> None:
    """Adaptive average or max pooling to a fixed output size (AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d).

    Example: cnnops adaptive-pool examples/seq3.json --output-size 8
    """
    kind = "Avg" if mode == PoolMode.avg else "Max"
    size = size_literal(output_size, "--output-size", allow_none=True)
    execute(inputs, lambda t: [f"Adaptive{kind}Pool{spatial_dims(t, dims)}d({size})"], opts,
            note_for=lambda t: dims_note(t, dims, f"Adaptive{kind}Pool"))  # fmt: skip


@data_command()
def unpool(
    inputs: InputsArg,
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="kernel_size of the max pool it undoes.")],
    stride: Annotated[TupleOpt, typer.Option("--stride", "-s", help="Default: the kernel size.")] = None,
    padding: Annotated[str, typer.Option("--padding", "-p")] = "0",
    output_size: Annotated[TupleOpt, typer.Option("--output-size", help="H,W of the result (the max pool's input size).")] = None,
    indices: Annotated[str | None, typer.Option(
        "--indices", help="The max pool's indices: a .json/.npy file, or numbers such as '[[[0, 3], [9, 15]]]' "
        "(else taken from the input document).",
    )] = None,  # fmt: skip
    dims: DimsOpt = Dims.auto,
    *,
    opts: DataOptions,
) -> None:
    """Max-unpooling (MaxUnpool1d/2d): put each value back where the max pool found it.

    Example: cnnops pool -k 2 examples/grid4x4.json --json | cnnops unpool -k 2 -
    """
    args = [f"kernel_size={size_literal(kernel, '--kernel')}"]
    if stride is not None:
        args.append(f"stride={size_literal(stride, '--stride')}")
    args.append(f"padding={size_literal(padding, '--padding')}")
    sizes = size_literal(output_size, "--output-size")
    opts.indices_file = indices

    def stages_for(tensor: "TensorInput") -> list[str]:
        nd = spatial_dims(tensor, dims)
        extra = []
        if sizes is not None:  # one number means that size on every spatial dim, like the other tuples
            extra.append(f"output_size={sizes if sizes.startswith('(') else '(' + ', '.join([sizes] * nd) + ',)'}")
        return [f"MaxUnpool{nd}d({', '.join(args + extra)})"]

    execute(inputs, stages_for, opts, note_for=lambda t: dims_note(t, dims, "MaxUnpool"))


@data_command()
def relu(inputs: InputsArg, *, opts: DataOptions) -> None:
    """ReLU: max(0, x) element-wise.

    Example: cnnops relu '[[-4., 0., 4.]]'
    """
    execute(inputs, lambda t: ["ReLU()"], opts)


@data_command()
def act(
    inputs: InputsArg,
    fn: Annotated[str, typer.Option(
        "--fn", autocompletion=_complete_activations,
        help="relu, leaky-relu, sigmoid, tanh, gelu, elu, silu, softmax, … or a call such as 'LeakyReLU(0.2)'.",
    )],  # fmt: skip
    *,
    opts: DataOptions,
) -> None:
    """An activation function (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, ELU, SiLU, Softmax, …).

    Example: cnnops act '[[-2, 0, 2]]' --fn 'LeakyReLU(0.1)'
    """
    from cnnops.model import stages as st
    from cnnops.spec import parse_stage

    stage = parse_stage(fn)
    if not isinstance(stage, st.Activation):
        raise UsageError(f"--fn takes an activation such as relu, sigmoid or 'LeakyReLU(0.2)', not {stage.name}")
    execute(inputs, lambda t: [], opts, fixed=[stage])


@data_command()
def conv(
    inputs: InputsArg,
    weight: Annotated[str | None, typer.Option("--weight", "-w", autocompletion=_complete_kernels, help=(
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
    *,
    opts: DataOptions,
) -> None:
    """A convolution (Conv1d/2d; cross-correlation, as PyTorch computes it).

    Example: cnnops conv examples/line5x5.json --weight gx --bias 0
    """
    from cnnops.io.weights import weight_layout

    padding_text = repr(padding) if padding in ("same", "valid") else size_literal(padding, "--padding")
    common = [f"stride={size_literal(stride, '--stride')}", f"padding={padding_text}",
              f"dilation={size_literal(dilation, '--dilation')}", f"groups={groups}",
              f"padding_mode='{padding_mode.value}'"]  # fmt: skip
    if weight is not None:
        common.append(f"weight={value_literal(weight)}")
    if bias is not None:
        common.append(f"bias={value_literal(bias, '--bias')}")
    kernel_text = size_literal(kernel, "--kernel")
    opts.read_files += [v for v in (weight, bias) if v is not None]

    def stages_for(tensor: "TensorInput") -> list[str]:
        nd = spatial_dims(tensor, dims)
        data = tensor.data
        in_channels = data.shape[-nd - 1] if data.ndim >= nd + 1 else 1
        layout = weight_layout(weight, nd) if weight is not None else None
        out = out_channels if out_channels is not None else (layout[0] if layout else 1)
        size = kernel_text
        if size is None:
            size = ("(" + ", ".join(map(str, layout[1])) + ")" if nd > 1 else str(layout[1][0])) if layout else "3"
        return [f"Conv{nd}d({in_channels}, {out}, {size}, {', '.join(common)})"]

    execute(inputs, stages_for, opts, note_for=lambda t: dims_note(t, dims, "Conv"))


@data_command()
def linear(
    inputs: InputsArg,
    out_features: Annotated[int, typer.Option("--out-features", help="Number of outputs.")],
    weight: Annotated[str | None, typer.Option("--weight", "-w", help="A JSON list (out × in), a .json/.npy file, or 'random'.")] = None,
    bias: Annotated[str | None, typer.Option("--bias", help="A number, a JSON list, or false.")] = None,
    *,
    opts: DataOptions,
) -> None:
    """A fully connected layer (Linear). A 3-D input (C, H, W) is flattened to one vector, a 4-D one per batch item.

    Example: cnnops linear '[1, 2, 3]' --out-features 4 --weight '[[1,0,0],[0,1,0],[0,0,1],[1,1,1]]' --bias 0
    """
    extra = ([f"weight={value_literal(weight)}"] if weight is not None else []) + (
        [f"bias={value_literal(bias, '--bias')}"] if bias is not None else []
    )
    opts.read_files += [v for v in (weight, bias) if v is not None]

    def stages_for(tensor: "TensorInput") -> list[str]:
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
        texts.append(f"Linear({', '.join([str(in_features), str(out_features), *extra])})")
        return texts

    execute(inputs, stages_for, opts)


@data_command()
def flatten(
    inputs: InputsArg,
    start_dim: Annotated[int, typer.Option("--start-dim")] = 1,
    end_dim: Annotated[int, typer.Option("--end-dim")] = -1,
    *,
    opts: DataOptions,
) -> None:
    """Flatten dimensions start_dim..end_dim into one (nn.Flatten).

    Example: cnnops flatten '[[[1, 2], [3, 4]]]' --start-dim 0
    """
    execute(inputs, lambda t: [f"Flatten({start_dim}, {end_dim})"], opts)


@app.command()
@user_errors
def kernels(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")] = False) -> None:
    """List the named kernels for weight= / --weight, with their values and sign conventions.

    Example: cnnops kernels
    """
    from cnnops.io.kernels import describe_kernels

    described = describe_kernels()
    if as_json:
        import json

        emit_text(json.dumps(described))
        return
    from cnnops.render.plain import print_table
    from cnnops.render.shape_tables import kernels_table

    console = stdout_console()
    print_table(console, kernels_table(described, plain=plain_output(console)))
