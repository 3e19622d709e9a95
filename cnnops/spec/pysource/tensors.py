"""What forward() does to tensors, as stages: functional layers, merges, reshapes, indexing, reductions.

Tables, so a new layer is one line: ``LAYER_FUNCTIONALS`` maps a functional name to the layer that
computes the same (beyond :data:`cnnops.spec.aliases.FUNCTIONAL`); a name whose layer cnnops does not
have yet is refused at its line with that reason until the layer lands.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from cnnops.errors import SpecError
from cnnops.model.stages import Merge, Stage
from cnnops.model.tensor_ops import SLICE_ALL, Index, InplaceMerge, Permute, Reduce, Reshape, Squeeze, Unsqueeze
from cnnops.spec.aliases import FUNCTIONAL, Functional, functional_arguments
from cnnops.spec.pysource.values import ReadError, Tensor
from cnnops.spec.signatures import LAYERS

_MAX = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")

#: functional forms beyond the stage parser's own (cnnops.spec.aliases.FUNCTIONAL): name → layer, positional args
LAYER_FUNCTIONALS: dict[str, Functional] = {
    "hardsigmoid": Functional("Hardsigmoid", ("inplace",)),
    "hardtanh": Functional("Hardtanh", ("min_val", "max_val", "inplace")),
    "selu": Functional("SELU", ("inplace",)),
    "celu": Functional("CELU", ("alpha", "inplace")),
    "prelu": Functional("PReLU", ()),
    "logsigmoid": Functional("LogSigmoid", ()),
    "softsign": Functional("Softsign", ()),
    "tanhshrink": Functional("Tanhshrink", ()),
    "softmin": Functional("Softmin", ("dim",)),
    "glu": Functional("GLU", ("dim",)),
    "pixel_shuffle": Functional("PixelShuffle", ("upscale_factor",)),
    "pixel_unshuffle": Functional("PixelUnshuffle", ("downscale_factor",)),
    "channel_shuffle": Functional("ChannelShuffle", ("groups",)),
    "native_channel_shuffle": Functional("ChannelShuffle", ("groups",)),
    "local_response_norm": Functional("LocalResponseNorm", ("size", "alpha", "beta", "k")),
    "max_pool3d": Functional("MaxPool3d", _MAX),
    "avg_pool3d": Functional("AvgPool3d", _AVG),
    "adaptive_avg_pool3d": Functional("AdaptiveAvgPool3d", ("output_size",)),
    "adaptive_max_pool3d": Functional("AdaptiveMaxPool3d", ("output_size", "return_indices")),
    "lp_pool1d": Functional("LPPool1d", ("norm_type", "kernel_size", "stride", "ceil_mode")),
    "lp_pool2d": Functional("LPPool2d", ("norm_type", "kernel_size", "stride", "ceil_mode")),
}
#: dropouts: the layer for each functional (``training`` is left out: the model is sized in evaluation mode)
DROPOUTS = {"dropout": "Dropout", "dropout1d": "Dropout1d", "dropout2d": "Dropout2d", "dropout3d": "Dropout3d",
            "alpha_dropout": "AlphaDropout", "feature_alpha_dropout": "FeatureAlphaDropout"}  # fmt: skip
#: F.pad's modes → the padding layer of each rank (``{n}``: how many trailing dims it pads)
PAD_LAYERS = {"constant": "ConstantPad{n}d", "reflect": "ReflectionPad{n}d", "replicate": "ReplicationPad{n}d",
              "circular": "CircularPad{n}d"}  # fmt: skip
#: element-wise functions: the shape is kept, nothing is learned, no stage is shown
SAME_SHAPE = frozenset((
    "contiguous", "clone", "detach", "float", "double", "half", "bfloat16", "to", "cpu", "cuda", "type_as",
    "clamp", "clip", "clamp_min", "clamp_max", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "neg", "square",
    "sign", "floor", "ceil", "round", "reciprocal", "requires_grad_", "normalize", "erf", "sin", "cos",
))
#: operators between two tensors → (stage name, broadcasting rule)
MERGES = {ast.Add: ("Add", "add"), ast.Sub: ("Sub", "add"), ast.Mult: ("Mul", "mul"), ast.Div: ("Div", "mul")}
_METHOD_MERGES = {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "div": ast.Div, "multiply": ast.Mult,
                  "subtract": ast.Sub, "divide": ast.Div, "true_divide": ast.Div}  # fmt: skip
_NAMESPACES = ("torch.nn.functional", "torch", "torch.Tensor", "torch.special")


def _line(node: ast.AST) -> int | None:
    return getattr(node, "lineno", None)


def _text(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # pragma: no cover
        return type(node).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(values: Any, node: ast.AST, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(_is_int(v) for v in values):
        raise ReadError(_line(node), f"'{_text(node)}': {what} must be whole numbers")
    return tuple(values)


def _dims(args: list[Any]) -> tuple[Any, ...]:
    """``f(1, 2)`` or ``f((1, 2))`` → ``(1, 2)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _wrap(d: int, rank: int, node: ast.AST) -> int:
    size = max(rank, 1)
    if not -size <= d < size:
        raise ReadError(_line(node), f"'{_text(node)}': dimension {d} is out of range for a {rank}-D tensor "
                                     f"({-size} to {size - 1})", suggest_model=False)  # fmt: skip
    return d % size


def is_inplace(stage: Stage) -> bool:
    if getattr(stage, "inplace", False) is True:
        return True
    option = getattr(stage, "option", None)
    return bool(option("inplace", False)) if option else False


def inplace(x: Tensor, out: Tensor) -> Tensor:
    """The in-place result is the input tensor itself, now holding the new stage's output."""
    x.ref, x.strided = out.ref, False
    return x


# --- layers from functional calls -------------------------------------------------------------------
def layer_stage(name: str, keywords: list[tuple[str, Any]], node: ast.AST, shown: str) -> Stage:
    """The layer ``name(k=v, …)`` through the one stage parser."""
    from cnnops.spec.parser import parse_layer
    from cnnops.spec.pysource.reader import literal_text

    if name not in LAYERS:
        raise ReadError(_line(node), f"'{shown}' needs nn.{name}, which cnnops does not support yet")
    text = f"{name}({', '.join(f'{k}={literal_text(v)}' for k, v in keywords)})"
    try:
        return parse_layer(text)[0]
    except SpecError as exc:
        raise ReadError(_line(node), f"'{shown}': {exc}", suggest_model=False) from None


def _tensor_and_constants(args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> tuple[Tensor, list[Any]]:
    from cnnops.spec.pysource.builtins import plain

    if not args or not isinstance(args[0], Tensor):
        raise ReadError(_line(node), f"'{_text(node)}' is applied to something that is not a tensor")
    others = args[1:]
    if not all(plain(a) for a in [*others, *kwargs.values()]):
        raise ReadError(_line(node), f"'{_text(node)}' takes a tensor or a value the reader cannot know as an "
                                     "argument")  # fmt: skip
    return args[0], others


def functional_layer(reader: Any, functional: Functional, args: list[Any], kwargs: dict[str, Any],
                     node: ast.AST, drop: tuple[str, ...] = ()) -> Tensor:  # fmt: skip
    x, others = _tensor_and_constants(args, kwargs, node)
    try:
        keywords = functional_arguments(functional, others, list(kwargs.items()))
    except SpecError as exc:
        raise ReadError(_line(node), f"'{_text(node)}': {exc}", suggest_model=False) from None
    stage = layer_stage(functional.layer, [(str(k), v) for k, v in keywords if k not in drop], node, _text(node))
    if getattr(stage, "return_indices", False):
        raise ReadError(_line(node), f"'{_text(node)}' returns indices as well; that is outside what the reader follows")
    out = reader.emit(stage, [x])
    return inplace(x, out) if is_inplace(stage) else out


def dropout(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    layer = DROPOUTS[name]
    return functional_layer(reader, Functional(layer, ("p", "training", "inplace")), args, kwargs, node,
                            drop=("training", "train"))  # fmt: skip


def torch_dropout(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    """``torch.dropout(x, p, train)``."""
    return functional_layer(reader, Functional("Dropout", ("p", "train")), args, kwargs, node, drop=("train",))


def interpolate(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    """``F.interpolate``: nn.Upsample computes the same (the options that change values only are left out)."""
    functional = Functional("Upsample", ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                                         "antialias"))  # fmt: skip
    return functional_layer(reader, functional, args, kwargs, node, drop=("recompute_scale_factor", "antialias"))


def pad(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, others = _tensor_and_constants(args, kwargs, node)
    bound = dict(zip(("pad", "mode", "value"), others)) | kwargs
    sizes = _ints(bound.get("pad", ()), node, "the padding")
    mode = bound.get("mode", "constant")
    if mode not in PAD_LAYERS or len(sizes) % 2 or not sizes:
        raise ReadError(_line(node), f"'{_text(node)}': F.pad takes an even number of sizes and a mode among "
                                     f"{', '.join(PAD_LAYERS)}", suggest_model=False)  # fmt: skip
    if not any(sizes) and mode == "constant":
        return Tensor(x.ref, x.strided)  # padding by nothing: the same shape, no stage
    layer = PAD_LAYERS[mode].format(n=len(sizes) // 2)
    keywords: list[tuple[str, Any]] = [("padding", sizes)]
    if mode == "constant":
        keywords.append(("value", 0.0 if bound.get("value") is None else bound["value"]))
    return reader.emit(layer_stage(layer, keywords, node, _text(node)), [x])


def layer_norm(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, others = _no_weights(args, kwargs, node, ("normalized_shape", "weight", "bias", "eps"))
    shape = others.get("normalized_shape")
    shape = (shape,) if _is_int(shape) else shape
    keywords = [("normalized_shape", shape), ("eps", others.get("eps", 1e-5)), ("elementwise_affine", False)]
    return reader.emit(layer_stage("LayerNorm", keywords, node, _text(node)), [x])


def group_norm(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, others = _no_weights(args, kwargs, node, ("num_groups", "weight", "bias", "eps"))
    shape = reader.shape(x)
    keywords = [("num_groups", others.get("num_groups")), ("num_channels", shape[1] if len(shape) > 1 else 0),
                ("eps", others.get("eps", 1e-5)), ("affine", False)]  # fmt: skip
    return reader.emit(layer_stage("GroupNorm", keywords, node, _text(node)), [x])


def _no_weights(args: list[Any], kwargs: dict[str, Any], node: ast.AST,
                names: tuple[str, ...]) -> tuple[Tensor, dict[str, Any]]:  # fmt: skip
    x = args[0]
    bound = dict(zip(names, args[1:])) | kwargs
    if not isinstance(x, Tensor) or bound.get("weight") is not None or bound.get("bias") is not None:
        raise ReadError(_line(node), f"'{_text(node)}' takes its weights as tensors: use the layer (nn.…) so "
                                     "cnnops can count them")  # fmt: skip
    return x, bound


def weights_as_tensors(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    raise ReadError(_line(node), f"'{_text(node)}' takes its weights as tensors, which the reader cannot know — "
                                 "use the layer (nn.…) so cnnops can count them")  # fmt: skip


def products(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    raise ReadError(_line(node), f"'{_text(node)}' multiplies tensors as matrices, which has no stage in cnnops")


# --- merges ------------------------------------------------------------------------------------------
def binary(reader: Any, op: ast.operator, left: Any, right: Any, node: ast.AST, inplace_op: bool) -> Any:
    from cnnops.spec.pysource.builtins import plain

    if isinstance(left, Tensor) and isinstance(right, Tensor):
        merge = MERGES.get(type(op))
        if merge is None:
            raise ReadError(_line(node), f"'{_text(node)}' combines two tensors with an operator that has no stage "
                                         "in cnnops (it has Add, Mul, Cat and their kin + - * /)")  # fmt: skip
        name, rule = merge
        if inplace_op:
            stage: Stage = InplaceMerge(name=name, call=f"{name}(in place)", op=rule)
            return inplace(left, reader.emit(stage, [left, right]))
        return reader.emit(Merge(name=name, call=f"{name}()", op=rule), [left, right])
    tensor, other = (left, right) if isinstance(left, Tensor) else (right, left)
    if isinstance(other, (int, float)) and plain(other):
        # a tensor and a number: the tensor's shape, nothing learned — no stage
        return tensor if inplace_op else Tensor(tensor.ref, tensor.strided)
    raise ReadError(_line(node), f"'{_text(node)}' combines a tensor with something that is neither a tensor nor a "
                                 "number")  # fmt: skip


def method_merge(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """``torch.add(a, b)``, ``a.mul(b)``; ``alpha=`` scales only values."""
    base = name.rstrip("_")
    if len(args) != 2 or set(kwargs) - {"alpha", "rounding_mode"}:
        raise ReadError(_line(node), f"'{_text(node)}' takes two operands here")
    return binary(reader, _METHOD_MERGES[base](), args[0], args[1], node, inplace_op=name.endswith("_"))


def cat(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    bound = dict(zip(("tensors", "dim"), args)) | kwargs
    tensors = bound.get("tensors")
    dim = bound.get("dim", bound.get("axis", 0))
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ReadError(_line(node), f"'{_text(node)}' concatenates something that is not a list of tensors")
    if not _is_int(dim):
        raise ReadError(_line(node), f"'{_text(node)}': dim must be a whole number")
    if len(tensors) == 1:
        return Tensor(tensors[0].ref)
    stage = LAYERS["Cat"].build("Cat", {"dim": dim}, "Cat()" if dim == 1 else f"Cat(dim={dim})", 0)
    return reader.emit(stage, list(tensors))


def stack(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    """``torch.stack``: each tensor gets a size-1 dim at ``dim``, then they are concatenated there."""
    bound = dict(zip(("tensors", "dim"), args)) | kwargs
    tensors, dim = bound.get("tensors"), bound.get("dim", 0)
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ReadError(_line(node), f"'{_text(node)}' stacks something that is not a list of tensors")
    rank = len(reader.shape(tensors[0]))
    dim = _wrap(dim, rank + 1, node)
    parts = [reader.emit(Unsqueeze(name="unsqueeze", call=f"unsqueeze({dim})", dim=dim), [t]) for t in tensors]
    return cat(reader, "cat", [parts, dim], {}, node)


# --- shapes ------------------------------------------------------------------------------------------
def reshape(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x = args[0]
    target = _ints(_dims(args[1:] or [kwargs.get("shape", ())]), node, "the sizes")
    if name == "view" and x.strided:
        raise ReadError(_line(node), f"'{_text(node)}': .view of a transposed or sliced tensor, which PyTorch refuses "
                                     "unless its strides allow it — write .reshape(…) or .contiguous().view(…)")  # fmt: skip
    call = f"{name}({', '.join(map(str, target))})"
    return reader.emit(Reshape(name=name, call=call, target=target), [x])


def reshape_as(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    if len(args) != 2 or not isinstance(args[1], Tensor):
        raise ReadError(_line(node), f"'{_text(node)}' takes one tensor")
    return reshape(reader, name.removesuffix("_as"), [args[0], *reader.shape(args[1])], {}, node)


def permute(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x = args[0]
    if name in ("transpose", "swapaxes", "swapdims"):
        dims = _ints(tuple(args[1:3]) or (kwargs.get("dim0"), kwargs.get("dim1")), node, "the dims")
        stage = Permute(name="transpose", call=f"transpose({dims[0]}, {dims[1]})", swap=(dims[0], dims[1]))
    elif name == "t":
        rank = len(reader.shape(x))
        if rank > 2:
            raise ReadError(_line(node), f"'{_text(node)}': t() expects a tensor of at most 2 dimensions, got "
                                         f"{rank}", suggest_model=False)  # fmt: skip
        stage = Permute(name="t", call="t()", swap=(0, -1) if rank else (0, 0))
    else:
        dims = _ints(_dims(args[1:] or [kwargs.get("dims", ())]), node, "the dims")
        stage = Permute(name="permute", call=f"permute({', '.join(map(str, dims))})", dims=dims)
    out = reader.emit(stage, [x])
    out.strided = True
    return out


def reduce(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, others = _tensor_and_constants(args, kwargs, node)
    bound = dict(zip(("dim", "keepdim"), others)) | kwargs
    dim = bound.get("dim", bound.get("axis"))
    keepdim = bound.get("keepdim", False)
    if name in ("max", "min") and dim is not None:
        raise ReadError(_line(node), f"'{_text(node)}' returns values and indices; use amax/amin")
    dims = None if dim is None else ((dim,) if _is_int(dim) else _ints(dim, node, "the dims"))
    if dims == ():
        raise ReadError(_line(node), f"'{_text(node)}': an empty tuple of dims is outside what the reader follows")
    shown = "" if dims is None else f"dim={dims[0] if len(dims) == 1 and _is_int(dim) else dims}"
    call = f"{name}({shown}{', keepdim=True' if keepdim else ''})".replace("(, ", "(")
    return reader.emit(Reduce(name=name, call=call, dims=dims, keepdim=bool(keepdim)), [x])


def squeeze(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, others = _tensor_and_constants(args, kwargs, node)
    dim: Any = others[0] if others else kwargs.get("dim")
    if name == "unsqueeze":
        if not _is_int(dim):
            raise ReadError(_line(node), f"'{_text(node)}' needs a dim")
        return reader.emit(Unsqueeze(name="unsqueeze", call=f"unsqueeze({dim})", dim=dim), [x])
    dims = None if dim is None else ((dim,) if _is_int(dim) else _ints(dim, node, "the dims"))
    call = "squeeze()" if dims is None else f"squeeze({dim})"
    out = reader.emit(Squeeze(name="squeeze", call=call, dims=dims), [x])
    out.strided = x.strided
    return out


def parts(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> tuple[Tensor, ...]:
    """``chunk``/``split``: one stage per part, each a slice of the input along ``dim``."""
    x, others = _tensor_and_constants(args, kwargs, node)
    first = "chunks" if name == "chunk" else "split_size_or_sections"
    bound = dict(zip((first, "dim"), others)) | kwargs
    how: Any = bound.get(first, bound.get("split_size"))
    shape = reader.shape(x)
    dim = _wrap(bound.get("dim", 0), len(shape), node)
    length = shape[dim] if shape else 1
    line = _line(node)
    if name == "chunk":
        if not _is_int(how) or how <= 0:
            raise ReadError(line, f"'{_text(node)}': chunk expects chunks to be greater than 0", suggest_model=False)
        size = math.ceil(length / how)
        bounds = [(i, min(i + size, length)) for i in range(0, length, size)] if size else [(0, 0)]
    elif _is_int(how):
        if how <= 0 and length:
            raise ReadError(line, f"'{_text(node)}': split_size must be positive", suggest_model=False)
        bounds = [(i, min(i + how, length)) for i in range(0, length, how)] if how else [(0, 0)]
    else:
        sizes = _ints(how, node, "the split sizes")
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ReadError(line, f"'{_text(node)}': split sizes {list(sizes)} must add up to {length}, the size of "
                                  f"dimension {dim}", suggest_model=False)  # fmt: skip
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        bounds = [(s, s + n) for s, n in zip(starts, sizes)]
    shown = f"{name}({how}, dim={dim})"
    outs = []
    for k, (a, b) in enumerate(bounds):
        stage = Index(name=name, call=f"{shown}[{k}]", items=(SLICE_ALL,) * dim + (("slice", a, b, None),))
        out = reader.emit(stage, [x])
        out.strided = dim > 0 and len(bounds) > 1
        outs.append(out)
    return tuple(outs)


def subscript(reader: Any, tensor: Tensor, index: Any, node: ast.AST) -> Tensor:
    items = index if isinstance(index, tuple) else (index,)
    out_items: list[tuple[Any, ...]] = []
    shown = []
    for item in items:
        if isinstance(item, slice):
            out_items.append(("slice", item.start, item.stop, item.step))
            shown.append(":".join("" if v is None else str(v) for v in (item.start, item.stop)) +
                         ("" if item.step is None else f":{item.step}"))  # fmt: skip
        elif _is_int(item):
            out_items.append(("int", item))
            shown.append(str(item))
        elif item is None:
            out_items.append(("none",))
            shown.append("None")
        elif item is Ellipsis:
            out_items.append(("ellipsis",))
            shown.append("...")
        else:
            raise ReadError(_line(node), f"'{_text(node)}' indexes with tensors or lists, which has no stage in cnnops")
    out = reader.emit(Index(name="getitem", call=f"x[{', '.join(shown)}]", items=tuple(out_items)), [tensor])
    whole = all(it == SLICE_ALL or it[0] in ("none", "ellipsis") for it in out_items[1:])
    out.strided = tensor.strided or not whole
    return out


def size(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    shape = reader.shape(args[0])
    if name in ("dim", "ndimension"):
        return len(shape)
    if name in ("numel", "nelement"):
        return math.prod(shape)
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None:
        return tuple(shape)
    return shape[_wrap(dim, len(shape), node)]


def same_shape(reader: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Tensor:
    x, _ = _tensor_and_constants(args, kwargs, node)
    if name.endswith("_"):
        return x
    return Tensor(x.ref, x.strided and name not in ("contiguous", "clone"))


Handler = Callable[[Any, str, list[Any], dict[str, Any], ast.AST], Any]
#: torch functions and tensor methods with a handler of their own (the first argument is the tensor)
HANDLERS: dict[str, Handler] = {
    "cat": cat, "concat": cat, "concatenate": cat, "stack": stack,
    "view": reshape, "reshape": reshape, "view_as": reshape_as, "reshape_as": reshape_as,
    "permute": permute, "transpose": permute, "swapaxes": permute, "swapdims": permute, "t": permute,
    "mean": reduce, "sum": reduce, "amax": reduce, "amin": reduce, "max": reduce, "min": reduce,
    "squeeze": squeeze, "unsqueeze": squeeze, "chunk": parts, "split": parts,
    "size": size, "dim": size, "ndimension": size, "numel": size, "nelement": size,
    "interpolate": interpolate, "upsample": interpolate, "pad": pad, "layer_norm": layer_norm,
    "group_norm": group_norm, "conv1d": weights_as_tensors, "conv2d": weights_as_tensors,
    "conv3d": weights_as_tensors, "conv_transpose1d": weights_as_tensors, "conv_transpose2d": weights_as_tensors,
    "linear": weights_as_tensors, "batch_norm": weights_as_tensors, "instance_norm": weights_as_tensors,
    "embedding": weights_as_tensors, "matmul": products, "mm": products, "bmm": products, "einsum": products,
    "torch.dropout": torch_dropout,
    **{name: dropout for name in DROPOUTS},
    **{name: method_merge for name in _METHOD_MERGES}, **{name + "_": method_merge for name in _METHOD_MERGES},
}  # fmt: skip


def call_function(reader: Any, path: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """``torch.cat(…)``, ``F.relu(x)``, ``torch.flatten(x, 1)``… with the tensor(s) among ``args``."""
    namespace, _, name = path.rpartition(".")
    if namespace in _NAMESPACES:
        # torch.dropout(x, p, train) differs from F.dropout(x, p, training, inplace)
        handler = HANDLERS.get(path) or (None if namespace == "torch" and name in DROPOUTS else HANDLERS.get(name))
        if handler is not None:
            return handler(reader, name, args, kwargs, node)
        base = name.rstrip("_")
        functional = FUNCTIONAL.get(base) or LAYER_FUNCTIONALS.get(base)
        if functional is not None:
            out = functional_layer(reader, functional, args, kwargs, node)
            return inplace(args[0], out) if name.endswith("_") and out is not args[0] else out
        if base in SAME_SHAPE:
            return same_shape(reader, name, args, kwargs, node)
    raise ReadError(_line(node), f"'{_text(node)}' calls {path}, which has no stage in cnnops")


def call_method(reader: Any, tensor: Tensor, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
    """``x.view(…)``, ``x.relu()``, ``x.size(0)``…: the torch function with the tensor first."""
    return call_function(reader, f"torch.{name}", [tensor, *args], kwargs, node)
