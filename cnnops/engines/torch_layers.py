"""torch modules and functional calls as cnnops stages, for ``--model``: a layer from its own attributes
through the one stage parser, functional forms by the same tables as the static reader's, measured rows
for what cnnops has no stage for, and the check that every cnnops stage gives torch's own shape."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cnnops.errors import CnnopsError, SpecError
from cnnops.model.network import Network
from cnnops.model.stages import Shape, Stage
from cnnops.model.tensor_ops import (
    Measured,
    MeasuredMerge,
)
from cnnops.records import record
from cnnops.spec.aliases import Functional
from cnnops.spec.signatures import LAYERS


@record
class ModelTrace:
    """The network torch's run gave, and the failure where forward stopped (None: it ran through)."""

    network: Network
    error: CnnopsError | None = None
    #: ids of the model's parameters some row counts
    claimed: set[int] = field(default_factory=set)


class _FxFailed(Exception):
    pass


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "…"


def module_stage(module: Any) -> Stage | None:
    """The cnnops stage of a torch.nn layer, from the module's own attributes named as the layer's
    arguments (``extra_repr`` leaves some out: AvgPool2d's ceil_mode); None for a class cnnops does not
    have (or a subclass, whose forward may differ)."""
    cls = type(module)
    if not cls.__module__.startswith("torch.nn.") or cls.__name__ not in LAYERS:
        return None
    layer = LAYERS[cls.__name__]
    keywords: list[tuple[str, Any]] = []
    for param in layer.params:
        if param.name in ("weight", "seed") or not hasattr(module, param.name):
            continue
        value = getattr(module, param.name)
        keywords.append((param.name, value is not None if param.name == "bias" else value))
    try:
        stage = _layer(cls.__name__, keywords)
    except (SpecError, _NotLiteral):
        return None
    if stage is None:
        return None
    own = sum(p.numel() for p in module.parameters())
    return stage if stage.params() == own else None


class _Params:
    """Which parameters (by identity) earlier stages counted, to count each once."""

    def __init__(self) -> None:
        self.owner: dict[int, int] = {}

    def claim(self, params: list[Any], number: int) -> int | None:
        """Record ``params`` for stage ``number``; the stage that already counted them, if any."""
        earlier = next((self.owner[id(p)] for p in params if id(p) in self.owner), None)
        for p in params:
            self.owner.setdefault(id(p), number)
        return earlier


class _NotLiteral(Exception):
    pass


def _layer(name: str, keywords: list[tuple[str, Any]]) -> Stage | None:
    from cnnops.spec.parser import parse_layer
    from cnnops.spec.pysource.reader import literal_text

    if name not in LAYERS:
        return None
    try:
        text = f"{name}({', '.join(f'{k}={literal_text(_plain(v))}' for k, v in keywords)})"
    except Exception:
        raise _NotLiteral() from None
    return parse_layer(text)[0]


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    raise _NotLiteral()


def _layer_functionals() -> dict[str, Functional]:
    from cnnops.spec.pysource.tensors import LAYER_FUNCTIONALS

    return LAYER_FUNCTIONALS


#: keyword arguments of functional calls that change no shape (dtype casts values; training is off)
_NO_SHAPE_KEYWORDS = ("training", "train", "input", "dtype", "_stacklevel")
SAME_SHAPE = frozenset(("contiguous", "clone", "detach", "float", "double", "half", "to", "cpu", "cuda", "type_as",
                        "clamp", "clip", "dropout", "identity"))  # fmt: skip


def _pad_stage(args: Any, kwargs: dict[str, Any], in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Any:
    """``F.pad``: nothing when it pads by nothing, else the padding layer of its mode (when cnnops has it)."""
    from cnnops.spec.pysource.tensors import PAD_LAYERS

    bound = dict(zip(("pad", "mode", "value"), args[1:])) | kwargs
    sizes, mode = tuple(bound.get("pad", ())), bound.get("mode", "constant")
    if not any(sizes) and out_shape == in_shape:
        return "same"
    if mode not in PAD_LAYERS or not sizes or len(sizes) % 2:
        return None
    keywords = [("padding", sizes)] + ([("value", float(bound.get("value") or 0.0))] if mode == "constant" else [])
    try:
        return _layer(PAD_LAYERS[mode].format(n=len(sizes) // 2), keywords)
    except (SpecError, _NotLiteral):
        return None


def _split_dim(producer: Any, values: dict[Any, Any]) -> int | None:
    name = producer.target if isinstance(producer.target, str) else getattr(producer.target, "__name__", "")
    if name not in ("chunk", "split", "tensor_split", "unbind"):
        return None
    args = [values.get(a, a) for a in producer.args]
    dim = args[2] if len(args) > 2 else producer.kwargs.get("dim", 0)
    rank = len(values[producer.args[0]].shape)
    return dim % rank


def _index_text(item: Any) -> str:
    if isinstance(item, slice):
        return ":".join("" if v is None else str(v) for v in (item.start, item.stop)) + (
            "" if item.step is None else f":{item.step}")
    return "None" if item is None else "..." if item is Ellipsis else str(item)


def _measured(name: str, call: str, out_shape: tuple[int, ...], params: int, inputs: int) -> Stage:
    if inputs > 1:
        return MeasuredMerge(name=name, call=call, op="measured", output=out_shape, param_count=params, source="torch")
    return Measured(name=name, call=call, output=out_shape, param_count=params, source="torch")


def _check_against_torch(network: Network, input_shape: Shape, torch_shapes: dict[int, tuple[int, ...]]) -> None:
    """Exact or refused: every cnnops stage must give torch's own shape."""
    from cnnops.model.trace import trace_shapes

    trace = trace_shapes(input_shape, network)
    if trace.error is not None:
        raise SpecError(f"cnnops refuses a stage torch ran ({trace.error}) — please report this model") from None
    for row in trace.rows:
        expected = torch_shapes.get(row.index)
        if expected is not None and row.output_shape != expected:
            raise SpecError(f"stage {row.index} {row.stage.call}: cnnops gives {row.output_shape} but torch "
                            f"{expected} — please report this model")  # fmt: skip
