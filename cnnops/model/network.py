"""A network: stages in the order written, each reading the previous output or the outputs it names.

A chain is the special case where every stage reads the previous one. A stage may carry a label
(``skip=MaxPool2d(2)``) and name what it reads (``@skip``, ``@3`` for stage 3's output, ``@input``);
:meth:`Network.resolve` turns those names into stage numbers (0 is the network input).

>>> from cnnops.model.stages import Activation
>>> relu = Activation(name="ReLU", call="ReLU()")
>>> net = Network([Node(relu, label="a"), Node(relu), Node(relu, refs=("a",))])
>>> net.resolve()
[(0,), (1,), (1,)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, overload

from cnnops.errors import SpecError
from cnnops.model.stages import Stage
from cnnops.records import record

INPUT = "input"


@record(frozen=True)
class Node:
    """One stage of a network as written: the layer, its label, what it reads and its run-time data.

    ``refs`` are the names after ``@`` (a label, a stage number as text, or ``input``); None means the
    previous output. A merge with one ref also reads the previous output, first. ``data`` is what the
    stage text gave beyond the layer's shape (weights, bias values, a seed), opaque to the shape model.
    """

    stage: Stage
    label: str | None = None
    refs: tuple[str, ...] | None = None
    data: Any = None
    #: the stage (number) whose parameters this one reuses: a module that forward() calls twice
    shares: int | None = None
    #: what the reader of the model wants said about this stage (shown with it)
    note: str | None = None

    def text(self) -> str:
        """The stage as it reads in a graph: ``x = Conv2d(…)(@y)``."""
        call = self.stage.call
        if self.refs is not None:
            refs = ", ".join("@" + r for r in self.refs)
            if self.stage.merges:
                inside = call[call.index("(") + 1 : -1]
                call = f"{call[: call.index('(')]}({refs}{', ' + inside if inside else ''})"
            else:
                call += f"({refs})"
        return f"{self.label} = {call}" if self.label else call


class Network(Sequence[Stage]):
    """Stages in order with their wiring. As a sequence it holds the stages, so code that walks a
    chain of stages takes a network as it is."""

    def __init__(self, nodes: Iterable[Node | Stage] = (), *, printed: bool = False, exact: bool = False,
                 notes: Iterable[str] = ()):  # fmt: skip
        self.nodes = [n if isinstance(n, Node) else Node(n) for n in nodes]
        #: read from print(model) text, which shows layers but not the forward() that connects them
        self.printed = printed
        #: read from model code (Python source, a torch model, ONNX): every stage gets exactly the tensor
        #: PyTorch gives it — no rank rule, no implicit flatten
        self.exact = exact
        #: what the reader of the model wants said about the whole network (unused layers, shared weights)
        self.notes = list(notes)

    @classmethod
    def chain(cls, stages: Iterable[Stage], data: Iterable[Any] | None = None) -> Network:
        stages = list(stages)
        given = list(data) if data is not None else [None] * len(stages)
        return cls(Node(s, data=d) for s, d in zip(stages, given, strict=True))

    @property
    def stages(self) -> list[Stage]:
        return [n.stage for n in self.nodes]

    @property
    def data(self) -> list[Any]:
        return [n.data for n in self.nodes]

    @property
    def is_chain(self) -> bool:
        return all(n.refs is None for n in self.nodes)

    @overload
    def __getitem__(self, index: int) -> Stage: ...
    @overload
    def __getitem__(self, index: slice) -> Network: ...
    def __getitem__(self, index: int | slice) -> Stage | Network:
        if isinstance(index, slice):
            return Network(self.nodes[index], printed=self.printed, exact=self.exact, notes=self.notes)
        return self.nodes[index].stage

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Stage]:
        return (n.stage for n in self.nodes)

    def __add__(self, other: Sequence[Stage]) -> Network:
        return Network(self.nodes + _nodes(other), printed=self.printed or getattr(other, "printed", False),
                       exact=self.exact or getattr(other, "exact", False),
                       notes=self.notes + list(getattr(other, "notes", [])))  # fmt: skip

    def __radd__(self, other: Sequence[Stage]) -> Network:
        return Network(_nodes(other) + self.nodes, printed=self.printed, exact=self.exact, notes=self.notes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Network):
            return self.nodes == other.nodes
        return isinstance(other, list) and self.stages == other

    def __repr__(self) -> str:
        return f"Network({[n.text() for n in self.nodes]!r})"

    def with_data(self, data: Iterable[Any]) -> Network:
        return Network((replace(n, data=d) for n, d in zip(self.nodes, data, strict=True)), printed=self.printed,
                       exact=self.exact, notes=self.notes)  # fmt: skip

    def resolve(self) -> list[tuple[int, ...]]:
        """The stage numbers each stage reads (0: the network input), or a SpecError naming the stage
        whose reference points nowhere or forward."""
        labels: dict[str, int] = {}
        wiring: list[tuple[int, ...]] = []
        for number, node in enumerate(self.nodes, 1):
            if node.refs is None:
                wiring.append((number - 1,))
            else:
                found = tuple(_find(ref, number, labels, node) for ref in node.refs)
                merged_with_previous = node.stage.merges and len(found) == 1
                wiring.append(((number - 1,) + found) if merged_with_previous else found)
            if node.label is not None:
                if node.label == INPUT or node.label in labels:
                    taken = "names the network input" if node.label == INPUT else f"labels stage {labels[node.label]}"
                    raise SpecError(f"stage {number} {node.text()}: the label '{node.label}' already {taken} — "
                                    "choose another name")  # fmt: skip
                labels[node.label] = number
        return wiring


def _find(ref: str, number: int, labels: dict[str, int], node: Node) -> int:
    if ref == INPUT:
        return 0
    if ref.isdigit():
        target = int(ref)
        if target >= number:
            raise SpecError(f"stage {number} {node.text()}: @{ref} is not an earlier stage — a stage reads outputs "
                            f"of stages before it (1 to {number - 1}) or @input")  # fmt: skip
        return target
    if ref not in labels:
        known = ", ".join(labels) or "none yet"
        raise SpecError(f"stage {number} {node.text()}: no earlier stage is labelled '{ref}' (labels: {known}) — "
                        f"label a stage with {ref}=Stage(…) before it")  # fmt: skip
    return labels[ref]


def _nodes(stages: Sequence[Stage]) -> list[Node]:
    return list(stages.nodes) if isinstance(stages, Network) else [Node(s) for s in stages]
