"""Building a network stage by stage while knowing every size so far: the readers of model code
(Python source, ONNX graphs) ask the shape model for a tensor's shape as they go — ``x.size(0)``, an
ONNX ``Shape`` node — and the answer is exactly what the finished network will say.

>>> from cnnops.spec import parse_stage
>>> b = NetworkBuilder((1, 3, 8, 8))
>>> b.shape(b.emit(parse_stage("Conv2d(3, 4, 3)"), [0]))
(1, 4, 6, 6)
"""

from __future__ import annotations

from typing import Any

from cnnops.model.network import Network, Node
from cnnops.model.stages import Shape, Stage

MAX_STAGES = 100_000


class Refused(Exception):
    """The shape model refused a stage before the one whose size was asked: reading stops there, and the
    trace of the network so far shows the refusal."""


class NetworkBuilder:
    def __init__(self, input_shape: Shape):
        self.input_shape = tuple(input_shape)
        self.nodes: list[Node] = []
        self.notes: list[str] = []
        self._trace: Any = None
        self._traced = -1

    def emit(self, stage: Stage, inputs: list[int], *, label: str | None = None, shares: int | None = None,
             data: Any = None) -> int:  # fmt: skip
        """Add a stage reading the outputs ``inputs`` (stage numbers, 0: the input); its number."""
        number = len(self.nodes) + 1
        refs: tuple[str, ...] | None = None
        if stage.merges:
            refs = tuple(_ref(i) for i in inputs)
        elif inputs[0] != number - 1:
            refs = (_ref(inputs[0]),)
        if number > MAX_STAGES:
            raise Refused(f"more than {MAX_STAGES:,} stages")
        self.nodes.append(Node(stage, label, refs, data, shares))
        return number

    def network(self) -> Network:
        return Network(self.nodes, exact=True, notes=self.notes)

    def shape(self, ref: int) -> Shape:
        """The shape of output ``ref``, from the shape model over the stages so far."""
        if ref == 0:
            return self.input_shape
        if self._traced != len(self.nodes):
            from cnnops.model.trace import trace_shapes

            self._trace = trace_shapes(self.input_shape, self.network())
            self._traced = len(self.nodes)
        if self._trace.error is not None:
            raise Refused(str(self._trace.error))
        return self._trace.rows[ref - 1].output_shape


def _ref(number: int) -> str:
    return "input" if number == 0 else str(number)
