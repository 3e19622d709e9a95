"""The base of every layer: :class:`Stage`, receptive fields and the shared checks.

Pure Python: no numpy, no torch.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cnnops.errors import LayerError
from cnnops.model.arithmetic import Formula
from cnnops.records import record
from cnnops.text import tuple_text as fmt_shape

Shape = tuple[int, ...]
SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: F.pad's modes for the padding layers' names (:mod:`.reshaping`; here, as the layer table needs them
#: without the padding stage itself)
PAD_MODES = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "replicate",
             "Circular": "circular"}  # fmt: skip


@record(frozen=True)
class ReceptiveField:
    """Receptive field along one axis: ``size`` input pixels, ``jump`` between neighbouring
    outputs, ``start`` the input coordinate of the centre of the first output's field."""

    size: int
    jump: int
    start: float

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "jump": self.jump, "start": self.start}



def _rank_text(shape: Shape) -> str:
    return f"{len(shape)}-D {fmt_shape(shape)}"


def _each(name: str, values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(values)


@record(frozen=True, kw_only=True)
class Stage:
    """One layer as written by the user, normalised."""

    name: str
    call: str  # the user's arguments, normalised: "MaxPool2d(2, stride=1)"
    nd: int = 0  # spatial dimensions it works on (0: not a spatial layer)

    kind: ClassVar[str] = "layer"
    #: slides over or resizes spatial dims (conv, pool, unpool): a Linear after it flattens first
    spatial: ClassVar[bool] = False
    #: keeps a spatial tensor spatial (activations, dropout, normalisation)
    keeps_layout: ClassVar[bool] = False
    #: reads several outputs (Add, Mul, Cat)
    merges: ClassVar[bool] = False

    @property
    def animatable(self) -> bool:
        """A sliding window (or unpooling) over 1-D or 2-D planes that ``--animate`` can draw cell by cell."""
        return False

    # --- ranks -------------------------------------------------------------------------------
    @property
    def min_rank(self) -> int:
        """The fewest dimensions PyTorch accepts (the rank rule pads up to this)."""
        return self.nd + 1 if self.nd else 0

    @property
    def max_rank(self) -> int | None:
        return self.nd + 2 if self.nd else None

    def check_rank(self, shape: Shape) -> None:
        lo, hi = self.min_rank, self.max_rank
        if len(shape) < lo or (hi is not None and len(shape) > hi):
            layout = {1: "(C, L) or (N, C, L)", 2: "(C, H, W) or (N, C, H, W)",
                      3: "(C, D, H, W) or (N, C, D, H, W)"}.get(self.nd, "")  # fmt: skip
            expected = f"a {lo}-D or {hi}-D input {layout}".rstrip()
            raise LayerError(f"expects {expected}, got {_rank_text(shape)}")

    def check_nonempty(self, shape: Shape) -> None:
        if any(n == 0 for n in shape[-(self.nd + 1):]):
            raise LayerError(f"expects non-empty channel and spatial dimensions, got {fmt_shape(shape)}")

    def spatial_names(self) -> tuple[str, ...]:
        return SPATIAL_NAMES.get(self.nd, ())

    # --- arithmetic --------------------------------------------------------------------------
    def output_shape(self, shape: Shape) -> Shape:
        return self.evaluate(shape)[0]

    def evaluate(self, shape: Shape) -> tuple[Shape, list[Formula]]:
        """Output shape and formula steps for ``shape``, or the LayerError PyTorch would raise."""
        return shape, []

    def output_spatial_nd(self, out: Shape, source_nd: int) -> int:
        """How many trailing dims of a spatial stage's output are spatial (``source_nd``: its input's)."""
        return self.nd

    def materialize(self, shape: Shape) -> Stage:
        """The layer as it is once it has seen an input of ``shape`` (a Lazy layer takes its size)."""
        return self

    def weight_shape(self) -> Shape | None:
        """The shape of the weight a layer computes with (None: it has none)."""
        return None

    def fan_in(self) -> int:
        """Inputs per output, which PyTorch's default initialisation scales by."""
        return 0

    def bias_shape(self) -> Shape | None:
        """The shape of the bias (None: it has none)."""
        return None

    def param_shapes(self) -> list[tuple[str, Shape]]:
        """The learnable tensors and their shapes, as ``named_parameters()`` lists them; their sizes add
        up to :meth:`params`: ``[("weight", (5, 3, 3, 3)), ("bias", (5,))]``."""
        shapes = [("weight", self.weight_shape()), ("bias", self.bias_shape())]
        return [(name, shape) for name, shape in shapes if shape is not None]

    def params(self) -> int:
        return 0

    def macs(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0

    def receptive_field(
        self, rf: tuple[ReceptiveField, ...] | None, in_shape: Shape = ()
    ) -> tuple[ReceptiveField, ...] | None:
        """The receptive field after this stage (``in_shape``: the input it computes on), or None where
        it is no longer a sliding window."""
        return rf if self.keeps_layout else None

    def torch_repr(self) -> str:
        return self.call

    def __str__(self) -> str:
        return self.call


def _slide(rf: tuple[ReceptiveField, ...] | None, nd: int, kernel, stride, left_pad, dilation):
    if rf is None or len(rf) != nd:
        return None
    out = []
    for axis, r in enumerate(rf):
        span = dilation[axis] * (kernel[axis] - 1)
        out.append(
            ReceptiveField(
                size=r.size + span * r.jump,
                jump=r.jump * stride[axis],
                start=r.start + (span / 2 - left_pad[axis]) * r.jump,
            )
        )
    return tuple(out)




def _positive(what: str, values: tuple[int, ...], hint: str = "") -> None:
    if any(v <= 0 for v in values):
        raise LayerError(f"{what} must be greater than zero, got {_each(what, values)}{hint}")
