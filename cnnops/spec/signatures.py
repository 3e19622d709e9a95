"""The vocabulary of the stage language: layer names, their PyTorch signatures and value kinds.

Each layer is a :class:`LayerDef`: PyTorch's class name, its arguments in PyTorch's order with their
kinds and defaults (plus cnnops' keyword-only ``weight=``, ``seed=`` and MaxUnpool's
``output_size=``), and the builder that turns bound arguments into a :class:`~cnnops.model.stages.Stage`.

>>> [p.name for p in LAYERS["MaxPool2d"].params]
['kernel_size', 'stride', 'padding', 'dilation', 'return_indices', 'ceil_mode']
>>> resolve_name("leaky-relu").name
'LeakyReLU'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from cnnops.errors import SpecError
from cnnops.model import stages as st
from cnnops.records import record
from cnnops.text import is_int as _is_int
from cnnops.text import is_number as _is_number
from cnnops.text import show

_MISSING = object()


@record(frozen=True)
class Param:
    """One argument of a layer: its name, value kind, default and whether it is keyword-only."""

    name: str
    kind: str
    default: Any = _MISSING
    keyword_only: bool = False  # cnnops extensions and PyTorch's keyword-only arguments

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@record(frozen=True)
class LayerDef:
    """A layer of the table: its parameters in PyTorch's order and the builder of its stage."""

    name: str
    #: the parameters as ``"name:kind=default …"`` text, read into :attr:`params` when first used
    signature: str
    build: Callable[[str, dict[str, Any], str, int], st.Stage]
    nd: int = 0
    #: accepts any arguments and ignores them (nn.Identity)
    ignores_args: bool = False

    @cached_property
    def params(self) -> tuple[Param, ...]:
        """The parameters in PyTorch's order (read once per layer: a command meets a handful of layers)."""
        return _p(self.signature)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# --- value kinds ---------------------------------------------------------------------------------


def _size(v: Any, nd: int) -> tuple[int, ...] | None:
    if _is_int(v):
        return (v,) * nd
    if isinstance(v, tuple) and len(v) == nd and all(_is_int(x) for x in v):
        return v
    return None


def _size_prefix(v: Any, nd: int) -> tuple[int, ...] | None:
    if _is_int(v):
        return (v,) * nd
    if isinstance(v, tuple) and len(v) >= nd and all(_is_int(x) for x in v):
        return v[:nd]
    return None


def _check_value(layer: LayerDef, param: Param, value: Any) -> Any:
    """Validate the type of one argument; returns the value (tuples normalised from lists)."""
    kind, nd = param.kind, layer.nd
    ok = True
    want = ""
    if kind == "int":
        ok, want = _is_int(value), "an integer"
    elif kind == "int?":
        ok, want = value is None or _is_int(value), "an integer or None"
    elif kind == "float":
        ok, want = _is_number(value), "a number"
    elif kind == "float?":
        ok, want = value is None or _is_number(value), "a number or None"
    elif kind == "bool":
        ok, want = isinstance(value, bool), "True or False"
    elif kind == "size":
        ok, want = _size(value, nd) is not None, f"an integer or a tuple of {nd} integers"
    elif kind == "size?":
        ok, want = value is None or _size(value, nd) is not None, f"an integer or a tuple of {nd} integers"
    elif kind == "stride?":
        # pools: PyTorch takes an empty stride, like None, as "the kernel size"
        ok = value is None or value == () or _size(value, nd) is not None
        want = f"an integer or a tuple of {nd} integers"
    elif kind in ("size+", "size+?"):
        # MaxUnpool stride and padding: PyTorch reads the first nd entries and ignores any more
        ok = (kind == "size+?" and value is None) or _size_prefix(value, nd) is not None
        want = f"an integer or a tuple of {nd} integers"
    elif kind == "conv_padding":
        ok = _size(value, nd) is not None or value in ("same", "valid")
        want = f"an integer, a tuple of {nd} integers, 'same' or 'valid'"
    elif kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split("|")
        ok, want = value in choices, "one of " + ", ".join(repr(c) for c in choices)
    elif kind == "outsize":
        def one(x: Any) -> bool:
            return x is None or _is_int(x)

        # PyTorch accepts None only inside a 2-D or 3-D tuple: AdaptiveAvgPool2d(None) and
        # AdaptiveAvgPool1d((None,)) fail there
        ok = _is_int(value) or (
            isinstance(value, tuple) and len(value) == nd and all(one(x) if nd >= 2 else _is_int(x) for x in value)
        )
        want = "an integer" if nd == 1 else f"an integer or a tuple of {nd} integers (None keeps that size)"
    elif kind == "ints":
        ok = _is_int(value) or (isinstance(value, tuple) and all(_is_int(x) for x in value))
        want = "an integer or a tuple of integers"
    elif kind == "pad":
        ok = _is_int(value) or (isinstance(value, tuple) and all(_is_int(x) for x in value))
        want = "an integer or a tuple of integers (before, after) pairs, last dimension first"
    elif kind == "sizes":
        ok = isinstance(value, tuple) and all(_is_int(x) for x in value)
        want = "a tuple of integers such as (2, 3)"
    elif kind == "usize?":
        ok = value is None or _is_int(value) or (isinstance(value, tuple) and all(_is_int(x) for x in value))
        want = "an integer or a tuple of integers"
    elif kind == "uscale?":
        ok = value is None or _is_number(value) or (isinstance(value, tuple) and all(_is_number(x) for x in value))
        want = "a number or a tuple of numbers"
    elif kind == "bool?":
        ok, want = value is None or isinstance(value, bool), "True, False or None"
    elif kind == "shape?":
        ok = value is None or (isinstance(value, tuple) and all(_is_int(x) for x in value))
        want = "a tuple of integers"
    elif kind == "bias":
        ok = isinstance(value, bool) or _is_number(value) or _is_numeric_list(value)
        want = "True, False, a number or a list of numbers"
    elif kind == "weight":
        ok = value is None or isinstance(value, str) or _is_number(value) or _is_numeric_list(value) or (
            isinstance(value, tuple) and bool(value) and all(isinstance(v, str) for v in value)
        )
        want = "a kernel name (or a list of them), a path, 'random' or a nested list of numbers"
    if not ok:
        raise SpecError(f"{layer.name} argument {param.name} must be {want}, got {_show(value)}")
    return value


def _is_numeric_list(v: Any) -> bool:
    if isinstance(v, tuple):
        return all(_is_number(x) or _is_numeric_list(x) for x in v)
    return False


def _show(value: Any) -> str:
    """A value in a stage's call text or a message: strings whole, long tuples cut."""
    return repr(value) if isinstance(value, str) else show(value, limit=40)


# --- builders -------------------------------------------------------------------------------------
def _tup(v: Any, nd: int, prefix: bool = False) -> tuple[int, ...]:
    """A size already checked by :func:`_check_value`, as an nd-tuple (``prefix``: longer tuples cut)."""
    size = _size_prefix(v, nd) if prefix else _size(v, nd)
    if size is None:  # pragma: no cover - values are validated before building
        raise SpecError(f"expected an integer or a tuple of {nd} integers, got {_show(v)}")
    return size


def _bias_fields(args: dict[str, Any]) -> dict[str, Any]:
    """A layer has a bias unless ``bias=False``; values given as ``bias=`` travel in :class:`LayerData`."""
    bias = args.get("bias", True)
    return {"bias": bias if isinstance(bias, bool) else True}


@record(frozen=True)
class LayerData:
    """What a layer computes with beyond its shape, as written in its stage text: ``weight=`` (a named
    kernel, kernel terms, a nested list, a path or 'random'), ``bias=`` values and ``seed=``."""

    weight: Any = None
    bias: Any = None  # a number or a list; None: PyTorch's default initialisation
    seed: int | None = None

    @classmethod
    def from_arguments(cls, args: dict[str, Any]) -> LayerData | None:
        bias = args.get("bias")
        data = cls(args.get("weight"), None if isinstance(bias, bool) else bias, args.get("seed"))
        return None if data == cls() else data


def _build_conv(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    padding = a.get("padding", 0)
    return st.Conv(
        name=name, call=call, nd=nd,
        in_channels=a["in_channels"], out_channels=a["out_channels"],
        kernel_size=_tup(a["kernel_size"], nd), stride=_tup(a.get("stride", 1), nd),
        padding=padding if isinstance(padding, str) else _tup(padding, nd),
        dilation=_tup(a.get("dilation", 1), nd), groups=a.get("groups", 1),
        padding_mode=a.get("padding_mode", "zeros"), **_bias_fields(a),
    )  # fmt: skip


def _build_conv_transpose(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.ConvTranspose(
        name=name, call=call, nd=nd,
        in_channels=a["in_channels"], out_channels=a["out_channels"],
        kernel_size=_tup(a["kernel_size"], nd), stride=_tup(a.get("stride", 1), nd),
        padding=_tup(a.get("padding", 0), nd), output_padding=_tup(a.get("output_padding", 0), nd),
        dilation=_tup(a.get("dilation", 1), nd), groups=a.get("groups", 1),
        padding_mode=a.get("padding_mode", "zeros"), **_bias_fields(a),
    )  # fmt: skip


def _build_pool(mode: str) -> Callable[[str, dict[str, Any], str, int], st.Stage]:
    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        kernel = a["kernel_size"]
        stride = a.get("stride")
        if stride is None or stride == ():
            stride = kernel
        raw = {
            "kernel_size": kernel, "stride": stride,
            "padding": a.get("padding", 0), "dilation": a.get("dilation", 1),
        }  # fmt: skip
        return st.Pool(
            name=name, call=call, nd=nd, mode=mode,
            kernel_size=_tup(kernel, nd), stride=_tup(stride, nd),
            padding=_tup(a.get("padding", 0), nd), dilation=_tup(a.get("dilation", 1), nd),
            ceil_mode=a.get("ceil_mode", False), count_include_pad=a.get("count_include_pad", True),
            divisor_override=a.get("divisor_override"), return_indices=a.get("return_indices", False),
            raw=raw,
        )  # fmt: skip

    return build


def _build_adaptive(mode: str) -> Callable[[str, dict[str, Any], str, int], st.Stage]:
    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        raw = a["output_size"]
        sizes = raw if isinstance(raw, tuple) else (raw,) * nd
        return st.AdaptivePool(
            name=name, call=call, nd=nd, mode=mode, output_size=sizes,
            return_indices=a.get("return_indices", False), raw_output_size=raw,
        )

    return build


def _build_unpool(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    kernel = a["kernel_size"]
    stride = a.get("stride")
    return st.Unpool(
        name=name, call=call, nd=nd, kernel_size=_tup(kernel, nd),
        stride=_tup(kernel, nd) if stride is None else _tup(stride, nd, prefix=True),
        padding=_tup(a.get("padding", 0), nd, prefix=True),
        output_size=a.get("output_size"),
    )


def _build_linear(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.Linear(
        name=name, call=call, in_features=a["in_features"], out_features=a["out_features"],
        **_bias_fields(a),
    )  # fmt: skip


def _build_flatten(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.Flatten(name=name, call=call, start_dim=a.get("start_dim", 1), end_dim=a.get("end_dim", -1))


def _build_activation(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.Activation(name=name, call=call, options=tuple(a.items()))


def _build_prelu(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.PReLU(name=name, call=call, num_parameters=a.get("num_parameters", 1), init=a.get("init", 0.25))


def _build_glu(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.GLU(name=name, call=call, dim=a.get("dim", -1), options=tuple(a.items()))


def _build_pad(mode: str) -> Callable[[str, dict[str, Any], str, int], st.Stage]:
    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        padding = a["padding"]
        padding = (padding,) * (2 * nd) if _is_int(padding) else padding
        return st.Pad(name=name, call=call, nd=len(padding) // 2, mode=mode, padding=padding,
                      value=a.get("value", 0.0), layer_nd=nd)  # fmt: skip

    return build


def _build_pixel_shuffle(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    unshuffle = name == "PixelUnshuffle"
    factor = a["downscale_factor" if unshuffle else "upscale_factor"]
    return st.PixelShuffle(name=name, call=call, factor=factor, unshuffle=unshuffle)


def _build_channel_shuffle(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.ChannelShuffle(name=name, call=call, groups=a["groups"])


def _build_unflatten(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    sizes = a["unflattened_size"]
    return st.Unflatten(name=name, call=call, dim=a["dim"], sizes=sizes, raw_sizes=sizes)


def _build_upsample(preset: tuple[str, bool | None] | None) -> Callable[..., st.Stage]:
    """nn.Upsample, or a preset (mode, align_corners) such as UpsamplingBilinear2d's ('bilinear', True)."""

    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        mode, align = preset or (a.get("mode", "nearest"), a.get("align_corners"))
        size, scale = a.get("size"), a.get("scale_factor")
        # nn.Upsample keeps a tuple scale as floats and a zero scale as None
        scale = tuple(float(f) for f in scale) if isinstance(scale, tuple) else (float(scale) if scale else None)
        given = next((len(v) for v in (size, scale) if isinstance(v, tuple)), 0)
        rank = st.UPSAMPLE_MODES.get(mode)
        return st.Upsample(
            name=name, call=call, nd=rank - 2 if rank else given, size=size, scale_factor=scale, mode=mode,
            align_corners=align, recompute_scale_factor=a.get("recompute_scale_factor"),
        )  # fmt: skip

    return build


def _build_passthrough(ranks: tuple[int, int | None]) -> Callable[..., st.Stage]:
    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        return st.Passthrough(name=name, call=call, p=a.get("p", 0.5), inplace=a.get("inplace", False), ranks=ranks)

    return build


def _build_batchnorm(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.BatchNorm(
        name=name, call=call, nd=nd, num_features=a.get("num_features"), eps=a.get("eps", 1e-5),
        momentum=a.get("momentum", 0.1), affine=a.get("affine", True), track_running_stats=a.get("track_running_stats", True),
        bias=a.get("bias", True),
    )  # fmt: skip


def _build_layer_norm(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    shape = a["normalized_shape"]
    return st.LayerNorm(
        name=name, call=call, normalized_shape=shape if isinstance(shape, tuple) else (shape,),
        eps=a.get("eps", 1e-5), elementwise_affine=a.get("elementwise_affine", True), bias=a.get("bias", True),
    )  # fmt: skip


def _build_group_norm(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.GroupNorm(
        name=name, call=call, num_groups=a["num_groups"], num_channels=a["num_channels"], eps=a.get("eps", 1e-5),
        affine=a.get("affine", True), bias=a.get("bias", True),
    )  # fmt: skip


def _build_instance_norm(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.InstanceNorm(
        name=name, call=call, nd=nd, num_features=a["num_features"], eps=a.get("eps", 1e-5),
        momentum=a.get("momentum", 0.1), affine=a.get("affine", False), track_running_stats=a.get("track_running_stats", False),
        bias=a.get("bias", True),
    )  # fmt: skip


def _build_local_response_norm(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
    return st.LocalResponseNorm(
        name=name, call=call, size=a["size"], alpha=a.get("alpha", 1e-4), beta=a.get("beta", 0.75), k=a.get("k", 1.0)
    )


def _build_merge(op: str) -> Callable[..., st.Stage]:
    def build(name: str, a: dict[str, Any], call: str, nd: int) -> st.Stage:
        return st.Merge(name=name, call=call, op=op, dim=a.get("dim", 1))

    return build


# --- the layer table ------------------------------------------------------------------------------
def _p(spec: str) -> tuple[Param, ...]:
    """``"name:kind=default …"`` → Params (defaults are Python literals)."""
    params = []
    for item in spec.split():
        name, _, rest = item.partition(":")
        kind, eq, default = rest.partition("=")
        keyword_only = name.startswith("*")
        params.append(Param(name.lstrip("*"), kind, _default(default) if eq else _MISSING, keyword_only))
    return tuple(params)


def _default(text: str) -> Any:
    """The few literal forms the table uses (``ast.literal_eval`` would cost milliseconds at start-up)."""
    constants = {"None": None, "True": True, "False": False}
    if text in constants:
        return constants[text]
    if text[:1] == "'":
        return text[1:-1]
    return float(text) if any(c in text for c in ".e") else int(text)


_WEIGHTS = "*weight:weight=None *seed:int?=None"
_CONV = (
    "in_channels:int out_channels:int kernel_size:size stride:size=1 padding:conv_padding=0 "
    "dilation:size=1 groups:int=1 bias:bias=True "
    "padding_mode:choice:zeros|reflect|replicate|circular='zeros' " + _WEIGHTS
)
_CONVT = (
    "in_channels:int out_channels:int kernel_size:size stride:size=1 padding:size=0 "
    "output_padding:size=0 groups:int=1 bias:bias=True dilation:size=1 "
    "padding_mode:choice:zeros|reflect|replicate|circular='zeros' " + _WEIGHTS
)
_MAXPOOL = "kernel_size:size stride:stride?=None padding:size=0 dilation:size=1 return_indices:bool=False ceil_mode:bool=False"
_AVGPOOL1 = "kernel_size:size stride:stride?=None padding:size=0 ceil_mode:bool=False count_include_pad:bool=True"
_AVGPOOL2 = _AVGPOOL1 + " divisor_override:int?=None"
#: MaxUnpool1d/2d read the first entries of a longer stride or padding; max_unpool3d insists on three
_UNPOOL = "kernel_size:size stride:size+?=None padding:size+=0 *output_size:shape?=None"
_UNPOOL3 = "kernel_size:size stride:size?=None padding:size=0 *output_size:shape?=None"
_UPSAMPLE = (
    "size:usize?=None scale_factor:uscale?=None "
    "mode:choice:nearest|linear|bilinear|bicubic|trilinear|area|nearest-exact='nearest' "
    "align_corners:bool?=None recompute_scale_factor:bool?=None"
)
_INPLACE = "inplace:bool=False"
#: Dropout1d insists on 2-D or 3-D; Dropout2d/3d only warn about other ranks and keep the shape (any rank,
#: a 0-D or 1-D one too, in evaluation mode)
_DROPOUT_RANKS: dict[int, tuple[int, int | None]] = {1: (2, 3), 2: (0, None), 3: (0, None)}
_BN = "num_features:int eps:float=1e-05 momentum:float?=0.1 affine:bool=True track_running_stats:bool=True *bias:bool=True"
_IN = "num_features:int eps:float=1e-05 momentum:float?=0.1 affine:bool=False track_running_stats:bool=False *bias:bool=True"


def _layers() -> dict[str, LayerDef]:
    table: list[LayerDef] = []
    for nd in (1, 2, 3):
        table += [
            LayerDef(f"Conv{nd}d", _CONV, _build_conv, nd),
            LayerDef(f"ConvTranspose{nd}d", _CONVT, _build_conv_transpose, nd),
            LayerDef(f"MaxPool{nd}d", _MAXPOOL, _build_pool("max"), nd),
            LayerDef(f"AvgPool{nd}d", _AVGPOOL1 if nd == 1 else _AVGPOOL2, _build_pool("avg"), nd),
            LayerDef(f"AdaptiveAvgPool{nd}d", "output_size:outsize", _build_adaptive("avg"), nd),
            LayerDef(
                f"AdaptiveMaxPool{nd}d", "output_size:outsize return_indices:bool=False",
                _build_adaptive("max"), nd,
            ),
            LayerDef(f"MaxUnpool{nd}d", _UNPOOL if nd < 3 else _UNPOOL3, _build_unpool, nd),
            LayerDef(f"BatchNorm{nd}d", _BN, _build_batchnorm, nd),
            LayerDef(f"LazyBatchNorm{nd}d", _BN.split(" ", 1)[1], _build_batchnorm, nd),
            LayerDef(f"InstanceNorm{nd}d", _IN, _build_instance_norm, nd),
            *(
                LayerDef(f"{prefix}Pad{nd}d", "padding:pad" + (" value:float" if prefix == "Constant" else ""),
                         _build_pad(mode), nd)  # fmt: skip
                for prefix, mode in st.PAD_MODES.items()
            ),
            LayerDef(f"Dropout{nd}d", "p:float=0.5 " + _INPLACE, _build_passthrough(_DROPOUT_RANKS[nd]), nd),
        ]
    table += [
        LayerDef("Linear", "in_features:int out_features:int bias:bias=True " + _WEIGHTS, _build_linear),
        LayerDef("Flatten", "start_dim:int=1 end_dim:int=-1", _build_flatten),
        LayerDef("Dropout", "p:float=0.5 " + _INPLACE, _build_passthrough((0, None))),
        LayerDef("AlphaDropout", "p:float=0.5 " + _INPLACE, _build_passthrough((0, None))),
        LayerDef("FeatureAlphaDropout", "p:float=0.5 " + _INPLACE, _build_passthrough((0, None))),
        LayerDef("Identity", "", _build_passthrough((0, None)), ignores_args=True),
        LayerDef("LayerNorm", "normalized_shape:ints eps:float=1e-05 elementwise_affine:bool=True bias:bool=True",
                 _build_layer_norm),
        LayerDef("GroupNorm", "num_groups:int num_channels:int eps:float=1e-05 affine:bool=True *bias:bool=True",
                 _build_group_norm),
        LayerDef("LocalResponseNorm", "size:int alpha:float=0.0001 beta:float=0.75 k:float=1.0",
                 _build_local_response_norm),
        LayerDef("Upsample", _UPSAMPLE, _build_upsample(None)),
        # print(model) shows the presets' fixed mode, so it is read (and only that mode)
        LayerDef("UpsamplingNearest2d", "size:usize?=None scale_factor:uscale?=None *mode:choice:nearest='nearest'",
                 _build_upsample(("nearest", None))),
        LayerDef("UpsamplingBilinear2d",
                 "size:usize?=None scale_factor:uscale?=None *mode:choice:bilinear='bilinear'",
                 _build_upsample(("bilinear", True))),
        LayerDef("PixelShuffle", "upscale_factor:int", _build_pixel_shuffle),
        LayerDef("PixelUnshuffle", "downscale_factor:int", _build_pixel_shuffle),
        LayerDef("ChannelShuffle", "groups:int", _build_channel_shuffle),
        LayerDef("Unflatten", "dim:int unflattened_size:sizes", _build_unflatten),
        LayerDef("Add", "", _build_merge("add")),
        LayerDef("Mul", "", _build_merge("mul")),
        LayerDef("Cat", "dim:int=1", _build_merge("cat")),
        LayerDef("ReLU", _INPLACE, _build_activation),
        LayerDef("ReLU6", _INPLACE, _build_activation),
        LayerDef("LeakyReLU", "negative_slope:float=0.01 " + _INPLACE, _build_activation),
        LayerDef("ELU", "alpha:float=1.0 " + _INPLACE, _build_activation),
        LayerDef("GELU", "approximate:choice:none|tanh='none'", _build_activation),
        LayerDef("SiLU", _INPLACE, _build_activation),
        LayerDef("Mish", _INPLACE, _build_activation),
        LayerDef("Hardswish", _INPLACE, _build_activation),
        LayerDef("Sigmoid", "", _build_activation),
        LayerDef("Tanh", "", _build_activation),
        LayerDef("Softplus", "beta:float=1.0 threshold:float=20.0", _build_activation),
        LayerDef("Softmax", "dim:int?=None", _build_activation),
        LayerDef("LogSoftmax", "dim:int?=None", _build_activation),
        LayerDef("PReLU", "num_parameters:int=1 init:float=0.25", _build_prelu),
        LayerDef("Hardsigmoid", _INPLACE, _build_activation),
        LayerDef(
            "Hardtanh", "min_val:float=-1.0 max_val:float=1.0 " + _INPLACE + " min_value:float?=None max_value:float?=None",
            _build_activation,
        ),
        LayerDef("SELU", _INPLACE, _build_activation),
        LayerDef("CELU", "alpha:float=1.0 " + _INPLACE, _build_activation),
        LayerDef("Softsign", "", _build_activation),
        LayerDef("Tanhshrink", "", _build_activation),
        LayerDef("Threshold", "threshold:float value:float " + _INPLACE, _build_activation),
        LayerDef("GLU", "dim:int=-1", _build_glu),
    ]
    return {layer.name: layer for layer in table}


LAYERS = _layers()
SHORT_NAMES = {
    "conv": "Conv2d", "convtranspose": "ConvTranspose2d", "deconv": "ConvTranspose2d",
    "maxpool": "MaxPool2d", "pool": "MaxPool2d", "avgpool": "AvgPool2d", "unpool": "MaxUnpool2d",
    "maxunpool": "MaxUnpool2d", "adaptiveavgpool": "AdaptiveAvgPool2d",
    "adaptivemaxpool": "AdaptiveMaxPool2d", "batchnorm": "BatchNorm2d", "bn": "BatchNorm2d",
}  # fmt: skip
SHORT_KEYWORDS = {"k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation"}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_LOOKUP = {_key(name): name for name in LAYERS} | SHORT_NAMES


def known_names() -> list[str]:
    """Every layer name and short name, for completion and suggestions."""
    return sorted(LAYERS) + sorted(SHORT_NAMES)


def resolve_name(name: str) -> LayerDef | None:
    canonical = _LOOKUP.get(_key(name))
    return LAYERS[canonical] if canonical else None


def _suggest(word: str, options: Iterable[str]) -> str:
    """A suggestion only for a likely typo (at most two letters off), never a name that merely looks
    alike: LayerNorm2d is not a misspelt LazyBatchNorm2d, nor nn.LayerNorm with a dimension added (timm's
    LayerNorm2d normalises each position's channels; nn.LayerNorm the last dims). Equally close names
    are all offered: InstanceNorm → InstanceNorm1d, InstanceNorm2d or InstanceNorm3d."""
    options = list(options)
    by_key = {_key(o): o for o in options}
    key = _key(word)
    close = difflib.get_close_matches(key, list(by_key), n=6, cutoff=0.6)
    typos = [c for c in close if _typo_distance(key, c) <= 2 and not _adds_a_dimension(key, c)]
    if not typos:
        return ""
    best = min(_typo_distance(key, c) for c in typos)
    names = sorted(by_key[c] for c in typos if _typo_distance(key, c) == best)
    return f" — did you mean {names[0] if len(names) == 1 else ', '.join(names[:-1]) + ' or ' + names[-1]}?"


def _adds_a_dimension(word: str, candidate: str) -> bool:
    """``layernorm2d`` against ``layernorm``: a dimensioned variant of a layer that has none is another layer."""
    return word[-2:] in ("1d", "2d", "3d") and word[:-2] == candidate


def _typo_distance(a: str, b: str) -> int:
    """Damerau–Levenshtein distance (insertions, deletions, substitutions, adjacent swaps)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]
