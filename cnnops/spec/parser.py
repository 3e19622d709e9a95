"""Stage text → :class:`~cnnops.model.stages.Stage`: the one parser behind every command.

The language is PyTorch's call syntax, parsed with :mod:`ast` and never evaluated:

>>> parse_stage("MaxPool2d(2, stride=1)").torch_repr()
'MaxPool2d(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False)'
>>> parse_stage("maxpool:2,s=1").call
'MaxPool2d(2, stride=1)'
>>> parse_stage("(0): Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))").call
'Conv2d(3, 64, 11, stride=4, padding=2)'

Conveniences: case-insensitive names, ``name:args`` for ``name(args)``, short names (``conv``,
``pool``…) and short keywords ``k s p d``. Files hold one stage per line, or the text that
``print(model)`` shows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from cnnops.errors import SpecError
from cnnops.model import stages as st
from cnnops.spec.signatures import (
    SHORT_KEYWORDS,
    LayerData,
    LayerDef,
    _check_value,
    _is_number,
    _show,
    _suggest,
    known_names,
    resolve_name,
)

MAX_TEXT = 1_000_000
MAX_INT = 2**40
MAX_DEPTH = 8


# --- the parser -----------------------------------------------------------------------------------
_PRINTED = re.compile(r"^\(([^()]*)\):\s*(.*)$", re.S)
_REPEAT = re.compile(r"^(\d+)\s*x\s+(.*)$", re.S)


def _literal(node: ast.AST, text: str, depth: int = 0) -> Any:
    """A literal argument value; anything that would need evaluation is refused."""
    if depth > MAX_DEPTH:
        raise SpecError(f"stage '{text}': arguments are nested too deeply")
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, str, float)):
            if isinstance(value, str) and len(value) > 4096:
                raise SpecError(f"stage '{text[:40]}…': a string argument is too long")
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise SpecError(f"stage '{text[:60]}': the number {str(value)[:20]}… is too large")
            return value
        raise SpecError(f"stage '{text}': {type(value).__name__} values are not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, text, depth + 1)
        if not _is_number(value):
            raise SpecError(f"stage '{text}': a sign can only go in front of a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(e, text, depth + 1) for e in node.elts)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise SpecError(f"stage '{text}': the name '{node.id}' is not allowed")
        return node.id  # bare words, as print(model) writes them: padding=same, padding_mode=reflect
    what = {
        ast.Attribute: "attribute access",
        ast.Call: "a function call",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.BinOp: "arithmetic",
    }.get(type(node), "an expression")
    raise SpecError(
        f"stage '{text}': {what} is not allowed in stage arguments — use numbers, strings, tuples and lists"
    )


_HEAD = re.compile(r"^([A-Za-z_][\w-]*)\s*(.*)$", re.S)


class Network(Sequence[st.Stage]):
    """Parsed stages in order, each with the :class:`LayerData` its text gave (or None). It is a
    sequence of stages, so the shape model takes it as it is; a run also reads ``data``.

    >>> net = parse_stages(["Conv2d(1, 1, 3, weight='gx', bias=0)", "ReLU"])
    >>> [s.name for s in net], net.data[0].weight, net.data[1]
    (['Conv2d', 'ReLU'], 'gx', None)
    """

    def __init__(self, stages: Iterable[st.Stage] = (), data: Iterable[LayerData | None] | None = None):
        self.stages = list(stages)
        self.data = list(data) if data is not None else [None] * len(self.stages)
        if len(self.data) != len(self.stages):
            raise ValueError("one LayerData (or None) per stage")

    @overload
    def __getitem__(self, index: int) -> st.Stage: ...
    @overload
    def __getitem__(self, index: slice) -> Network: ...
    def __getitem__(self, index: int | slice) -> st.Stage | Network:
        if isinstance(index, slice):
            return Network(self.stages[index], self.data[index])
        return self.stages[index]

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self) -> Iterator[st.Stage]:
        return iter(self.stages)

    def __add__(self, other: Sequence[st.Stage]) -> Network:
        return Network(self.stages + list(other), self.data + list(_data_of(other)))

    def __radd__(self, other: Sequence[st.Stage]) -> Network:
        return Network(list(other) + self.stages, list(_data_of(other)) + self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Network):
            return (self.stages, self.data) == (other.stages, other.data)
        return isinstance(other, list) and self.stages == other

    def __repr__(self) -> str:
        return f"Network({self.stages!r})"


def _data_of(stages: Sequence[st.Stage]) -> list[LayerData | None]:
    return stages.data if isinstance(stages, Network) else [None] * len(stages)


def parse_stage(text: str) -> st.Stage:
    """One stage from its text; raises :class:`SpecError` naming the problem and a fix."""
    return parse_layer(text)[0]


def parse_layer(text: str) -> tuple[st.Stage, LayerData | None]:
    """One stage from its text, with the run-time data (``weight=``, ``bias=`` values, ``seed=``) it gives."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty stage text — write a layer such as 'MaxPool2d(2)'")
    if len(text) > MAX_TEXT:
        raise SpecError("stage text is too long")
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "…"
    source = text.strip()
    printed = _PRINTED.match(source)
    if printed:
        source = printed.group(2).strip()
    head = _HEAD.match(source)
    if not head:
        raise SpecError(f"stage '{shown}' must start with a layer name, e.g. 'MaxPool2d(2, stride=1)'")
    name, rest = head.group(1), head.group(2).strip()
    if name.startswith("_"):
        raise SpecError(f"stage '{shown}': the name '{name}' is not allowed")
    if rest.startswith(":"):
        rest = f"({rest[1:]})"
    elif not rest:
        rest = "()"
    elif not rest.startswith("("):
        raise SpecError(
            f"stage '{shown}' must be a layer call such as 'Conv2d(1, 4, 3)', a bare name such as 'ReLU', "
            "or name:args such as 'maxpool:2,stride=1'"
        )
    layer = resolve_name(name)
    if layer is None:
        raise SpecError(f"unknown layer '{name}' in stage '{shown}'{_suggest(name, known_names())}")
    try:
        tree = ast.parse("L" + rest, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SpecError(
            f"stage '{shown}' is not valid layer syntax — write it like 'MaxPool2d(2, stride=1)'"
        ) from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "L"):
        raise SpecError(f"stage '{shown}' must be a single layer call such as 'Conv2d(1, 4, 3)'")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise SpecError(f"stage '{shown}': * and ** arguments are not allowed")
    positional = [_literal(a, shown) for a in call.args]
    keywords = [(k.arg, _literal(k.value, shown)) for k in call.keywords]
    return _bind(layer, positional, keywords)


def _bind(
    layer: LayerDef, positional: list[Any], keywords: list[tuple[str | None, Any]]
) -> tuple[st.Stage, LayerData | None]:
    if layer.ignores_args:
        return layer.build(layer.name, {}, f"{layer.name}()", layer.nd), None
    names = [p.name for p in layer.params]
    torch_positional = [p for p in layer.params if not p.keyword_only]
    if len(positional) > len(torch_positional):
        listed = ", ".join(p.name for p in torch_positional) or "no arguments"
        raise SpecError(
            f"{layer.name} takes at most {len(torch_positional)} positional arguments ({listed}), "
            f"got {len(positional)}"
        )
    bound: dict[str, Any] = {}
    for param, value in zip(torch_positional, positional):
        bound[param.name] = _check_value(layer, param, value)
    for key, value in keywords:
        assert key is not None
        name = key if key in names else SHORT_KEYWORDS.get(key, key)
        keyword = layer.param(name)
        if keyword is None:
            raise SpecError(f"{layer.name} has no argument '{key}'{_suggest(key, names)}")
        if name in bound:
            raise SpecError(f"{layer.name} got argument '{name}' twice")
        bound[name] = _check_value(layer, keyword, value)
    missing = [p.name for p in layer.params if p.required and p.name not in bound]
    if missing:
        example = {
            "Conv": "Conv2d(3, 16, 3)", "ConvT": "ConvTranspose2d(16, 8, 2, stride=2)",
            "MaxPo": "MaxPool2d(2)", "AvgPo": "AvgPool2d(2)", "Adapt": "AdaptiveAvgPool2d(7)",
            "MaxUn": "MaxUnpool2d(2)", "Linea": "Linear(9216, 4096)", "Batch": "BatchNorm2d(64)",
        }  # fmt: skip
        hint = next((v for k, v in example.items() if layer.name.startswith(k)), "")
        raise SpecError(
            f"{layer.name} needs {_join(missing)}" + (f", e.g. {hint}" if hint else "")
        )
    call = _call_text(layer, bound)
    return layer.build(layer.name, bound, call, layer.nd), LayerData.from_arguments(bound)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _call_text(layer: LayerDef, bound: dict[str, Any]) -> str:
    """The stage as a short call: given arguments only, ``(3, 3)`` as ``3``, no ``inplace``."""
    parts = []
    for param in layer.params:
        if param.name not in bound or param.name == "inplace":
            continue
        value = bound[param.name]
        if param.kind in ("size", "size?", "stride?", "size+", "size+?", "conv_padding") and isinstance(value, tuple) and len(set(value)) == 1:
            value = value[0]
        if param.required:
            parts.append(_show(value))
        elif value != param.default or type(value) is not type(param.default):
            parts.append(f"{param.name}={_show(value)}")
    return f"{layer.name}({', '.join(parts)})"


# --- lists and files ------------------------------------------------------------------------------
def parse_stages(texts: Iterable[str]) -> Network:
    """Stages given on the command line, numbered from 1 in error messages."""
    layers = []
    for index, text in enumerate(texts, 1):
        try:
            layers.append(parse_layer(text))
        except SpecError as exc:
            raise SpecError(f"stage {index}: {exc}") from None
    return Network((s for s, _ in layers), (d for _, d in layers))


def parse_stage_file(text: str, origin: str = "stage file") -> Network:
    """Stages from a file: one per line with ``#`` comments, or the text of ``print(model)``.

    Container lines of a printed model (``(features): Sequential(``, ``)``) are skipped; leaf lines
    are the stages in order; ``(0-2): 3 x Conv2d(…)`` repeats a layer.
    """
    stages: list[st.Stage] = []
    data: list[LayerData | None] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("(") or set(line) <= set(")"):
            continue  # a container opening, or the closing of one
        printed = _PRINTED.match(line)
        body = printed.group(2).strip() if printed else line
        repeat = _REPEAT.match(body)
        count = 1
        if repeat:
            count, body = int(repeat.group(1)), repeat.group(2)
            if count > 1000:
                raise SpecError(f"{origin} line {number}: too many repeats ({count})")
        try:
            stage, given = parse_layer(body)
        except SpecError as exc:
            raise SpecError(f"{origin} line {number}: {exc}") from None
        stages.extend([stage] * count)
        data.extend([given] * count)
    return Network(stages, data)


def looks_like_stage(text: str) -> bool:
    """True when a command-line word reads as a stage: a known layer name, bare, with (…) or :args."""
    word = text.strip()
    if word.startswith(("./", "/", "~")):
        return False
    head = re.match(r"^([A-Za-z][\w-]*)\s*(\(|:|$)", word)
    return bool(head and resolve_name(head.group(1)))


#: a stage file longer than this is refused (one stage per line is far shorter)
MAX_STAGE_FILE = 16 * 2**20
#: a stage file may describe at most this many stages, repeats (``(0-2): 3 x Block(``) counted out
MAX_FILE_STAGES = 10_000


def read_stage_file(path: str, *, stdin: Any = None) -> Network:
    """The stages of a stage file (``-``: ``stdin``, a text stream), read through :func:`parse_stage_file`.
    A FIFO or a terminal is refused (it could keep cnnops waiting forever), as is a file of more than
    MAX_FILE_STAGES stages; a UTF-8 byte-order mark at its start is skipped."""
    import os
    import stat

    from cnnops.errors import InputError
    from cnnops.text import echo

    shown = echo(str(path))
    try:
        if str(path) == "-":
            if stdin is None:
                raise InputError("stdin is closed — pipe the stage file into cnnops, or give its path")
            if _is_terminal(stdin):
                raise InputError(
                    "stdin is a terminal — pipe the stage file into cnnops (`cat net.txt | cnnops run x.json -f -`) "
                    "or give its path"
                )
            text = stdin.read(MAX_STAGE_FILE + 1)
            if isinstance(text, bytes):
                text = text.decode("utf-8-sig")
        else:
            mode = os.stat(path).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
                raise InputError(f"stage file '{shown}' is not a regular file — save the stages to a file first")
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read(MAX_STAGE_FILE + 1)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"stage file '{shown}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"stage file '{shown}' is a directory — give a text file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"stage file '{shown}' is not UTF-8 text (bad byte at offset {exc.start}) — save it as "
                         "UTF-8") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read stage file '{shown}': {echo(str(getattr(exc, 'strerror', None) or exc))}") from None
    if len(text) > MAX_STAGE_FILE:
        raise InputError(f"stage file '{shown}' is longer than {MAX_STAGE_FILE:,} characters — give one stage per line")
    text = text.removeprefix("\ufeff")
    count = _count_stages(text)
    if count > MAX_FILE_STAGES:
        raise InputError(
            f"stage file '{shown}' describes {count:,} stages, more than the {MAX_FILE_STAGES:,} cnnops runs — "
            "give a shorter network"
        )
    return parse_stage_file(text, origin=shown)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _count_stages(text: str) -> int:
    """How many stages :func:`parse_stage_file` would make of ``text`` (repeats counted out), found
    without building any of them."""
    count = 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.endswith("(") or set(line) <= set(")"):
            continue
        printed = _PRINTED.match(line)
        repeat = _REPEAT.match(printed.group(2).strip() if printed else line)
        count += min(int(repeat.group(1)[:6]), 10**6) if repeat else 1
    return count
