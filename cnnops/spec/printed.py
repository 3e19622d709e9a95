"""The text ``print(model)`` shows, read as a network — on several lines or collapsed into one.

Containers whose forward() is a chain (``Sequential``, ``ModuleList`` and ``ModuleDict`` in printed
order) and the model itself (the outermost class) are read as chains of their children; ``(0-2): 3 x
Block(`` repeats the whole block. Any other class that holds layers is a block whose forward() the
text does not show (BasicBlock, Bottleneck, Inception…): it is refused with that reason, never sized
by guesswork.

>>> net = parse_printed("Net( (conv): Conv2d(1, 4, kernel_size=(3, 3), bias=False) (pool): MaxPool2d(2) )")
>>> [s.call for s in net]
['Conv2d(1, 4, 3, bias=False)', 'MaxPool2d(2)']
"""

from __future__ import annotations

import re
from dataclasses import field, replace
from typing import Any

from cnnops.errors import SpecError
from cnnops.model.network import Network, Node
from cnnops.model.stages import Pool, Stage
from cnnops.records import record
from cnnops.spec.aliases import split_prefix
from cnnops.spec.signatures import resolve_name
from cnnops.text import show

#: classes whose forward() runs their children in printed order
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
MAX_REPEAT = 1000
MAX_STAGES = 10_000  # as cnnops.spec.files
MAX_NESTING = 64

_KEY = re.compile(r"\(\s*([\w.-]+)\s*\)\s*:\s*")
_REPEAT = re.compile(r"(\d+)\s*x\s+")
_CLASS = re.compile(r"([A-Za-z_][\w.]*)\s*\(")


def looks_printed(text: str) -> bool:
    """True for print(model) text: a ``(name): Layer(…)`` item, or a class line that opens a block."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return False
    if any(_KEY.match(line) for line in lines):
        return True
    return bool(re.fullmatch(r"[A-Za-z_][\w.]*\s*\(", lines[0])) and lines[-1] == ")"


@record
class _Item:
    """One line of print(model) text: a leaf layer or a block of children."""

    key: str
    name: str
    line: int
    repeat: int = 1
    args: str | None = None  # a leaf's argument text; None for a block
    children: list[_Item] = field(default_factory=list)


def parse_printed(text: str, origin: str = "print(model) text") -> Network:
    """Every layer of a printed model, in the order its chains run; SpecError for what the text does
    not say (a block's forward()), naming the block and its line."""
    reader = _Reader(text, origin)
    items = reader.model()
    nodes: list[Node] = []
    _flatten(items, nodes, origin, top=True)
    return Network(nodes, printed=True)


def _flatten(items: list[_Item], nodes: list[Node], origin: str, top: bool = False) -> None:
    from cnnops.spec.parser import parse_layer

    for item in items:
        if item.args is None:
            name = item.name.rsplit(".", 1)[-1]
            if name not in CONTAINERS and item.children:
                layers = _count(item.children)
                raise SpecError(
                    f"{origin} line {item.line}: ({item.key}): {item.name}( is a block whose forward() the printed "
                    f"text does not show, so how its {layers} layers connect (a residual add, a concatenation, a "
                    "product…) cannot be known — write the block with cnnops' graph syntax (name=Stage(…), "
                    "Stage(…)(@name), Add/Mul/Cat), one stage per line"
                )
            for _ in range(item.repeat):
                _flatten(item.children, nodes, origin)
        else:
            args = item.args
            if item.name.rsplit(".", 1)[-1].startswith("Lazy"):
                args = re.sub(r"^0\s*(,\s*|$)", "", args)  # an unsized LazyBatchNorm prints num_features 0
            try:
                stage, data = parse_layer(f"{item.name}({args})")
            except SpecError as exc:
                raise SpecError(f"{origin} line {item.line}: {exc}") from None
            if isinstance(stage, Pool) and stage.mode == "avg" and not re.search(r"\bceil_mode\b", item.args):
                stage = replace(stage, ceil_mode_unknown=True)  # AvgPool's repr leaves ceil_mode out
            nodes.extend([Node(stage, data=data, note=_hidden_settings(stage, item.args))] * item.repeat)
        if len(nodes) > MAX_STAGES:
            raise SpecError(f"{origin}: more than {MAX_STAGES:,} stages — cnnops sizes networks up to that")


def _hidden_settings(stage: Stage, args: str) -> str | None:
    """A note for a printed layer whose values depend on settings its line cannot show (its repr leaves
    them out): AvgPool's ``count_include_pad`` (with padding) and ``divisor_override``, Upsample's
    ``align_corners`` (linear modes) and ``recompute_scale_factor`` (a fractional scale)."""
    hidden: list[str] = []
    if isinstance(stage, Pool) and stage.mode == "avg":
        hidden = (["count_include_pad"] if any(stage.padding) else []) + ["divisor_override"]
    elif stage.kind == "upsample":  # (by kind: the resampling module is imported only where one is used)
        factor: Any = getattr(stage, "scale_factor", None)
        scales = factor if isinstance(factor, tuple) else (factor,)
        linear = getattr(stage, "mode", "") in ("linear", "bilinear", "bicubic", "trilinear")
        hidden = (["align_corners"] if linear else []) + (
            ["recompute_scale_factor"] if any(s is not None and float(s) != int(s) for s in scales) else [])
    hidden = [name for name in hidden if not re.search(rf"\b{name}\b", args)]
    if not hidden:
        return None
    return f"values: default {', '.join(hidden)} (print(model) hides {'them' if len(hidden) > 1 else 'it'})"


def _count(items: list[_Item]) -> int:
    return sum(it.repeat * (_count(it.children) if it.args is None else 1) for it in items)


class _Reader:
    """A cursor over the text: items are ``(key): [N x ]Class(`` followed by a block or arguments."""

    def __init__(self, text: str, origin: str):
        # comments (# …) are not part of print(model) text; drop them line by line
        self.text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        self.origin = origin
        self.pos = 0

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, what: str) -> SpecError:
        near = show(self.text[self.pos : self.pos + 40].strip() or "the end", 40)
        return SpecError(f"{self.origin} line {self.line()}: {what} at {near} — give the text print(model) shows")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def model(self) -> list[_Item]:
        """The top level: the model's class line and its block (read as a chain of its children), items
        such as ``(0): Conv2d(…)``, and plain layer calls, in any order."""
        out: list[_Item] = []
        while True:
            out += self.items(depth=0)
            self.skip_space()
            if self.pos == len(self.text):
                return out
            head = _CLASS.match(self.text, self.pos)
            if not head:
                raise self.fail("expected a layer call or an item such as '(0): Conv2d(…)'")
            line = self.line()
            self.pos = head.end()
            self.skip_space()
            closes = self.text[self.pos : self.pos + 1] == ")"
            if _KEY.match(self.text, self.pos) or (closes and resolve_name(split_prefix(head.group(1))[0]) is None):
                out += self.block(depth=1)  # the model itself (maybe empty): a chain of its children
            else:
                out.append(_Item("", head.group(1), line, args=self.arguments()))

    def items(self, depth: int) -> list[_Item]:
        out: list[_Item] = []
        while True:
            self.skip_space()
            key = _KEY.match(self.text, self.pos)
            if not key:
                return out
            line = self.line()
            self.pos = key.end()
            repeat = _REPEAT.match(self.text, self.pos)
            count = 1
            if repeat:
                count = int(repeat.group(1))
                if not 1 <= count <= MAX_REPEAT:
                    raise self.fail(f"a repeat count must be 1 to {MAX_REPEAT}, got {count}")
                self.pos = repeat.end()
            head = _CLASS.match(self.text, self.pos)
            if not head:
                raise self.fail("expected a layer or block such as 'Conv2d(…)' or 'Sequential('")
            self.pos = head.end()
            item = _Item(key.group(1), head.group(1), line, count)
            self.skip_space()
            if _KEY.match(self.text, self.pos):
                item.children = self.block(depth + 1)
            else:
                item.args = self.arguments()
            out.append(item)

    def block(self, depth: int) -> list[_Item]:
        if depth > MAX_NESTING:
            raise self.fail(f"blocks are nested more than {MAX_NESTING} deep")
        children = self.items(depth)
        self.skip_space()
        if self.text[self.pos : self.pos + 1] != ")":
            raise self.fail("expected ')' closing the block")
        self.pos += 1
        return children

    def arguments(self) -> str:
        """The text up to the ')' that closes the layer call, respecting nesting and quotes."""
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    self.pos += 1
                    return self.text[start : self.pos - 1].strip()
                depth -= 1
            self.pos += 1
        raise self.fail("a layer's '(' is never closed")
