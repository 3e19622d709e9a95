"""Stage text → stages: the one parser behind every command.

The language is PyTorch's call syntax, parsed with :mod:`ast` and never evaluated:

>>> parse_stage("MaxPool2d(2, stride=1)").torch_repr()
'MaxPool2d(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False)'
>>> parse_stage("maxpool:2,s=1").call
'MaxPool2d(2, stride=1)'
>>> parse_stage("(0): Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))").call
'Conv2d(3, 64, 11, stride=4, padding=2)'
>>> parse_stage("nn.Linear(32 * 4 * 4, 128)").call
'Linear(512, 128)'

Conveniences: case-insensitive names, ``name:args`` for ``name(args)``, short names (``conv``,
``pool``…), short keywords ``k s p d``, ``nn.``/``torch.nn.`` prefixes, functional forms (``F.relu``),
integer arithmetic in arguments. Graphs: ``x=Stage(…)`` labels an output, ``Stage(…)(@x)`` applies a
stage to it, ``Add(@x)``/``Mul(@x)``/``Cat(@a, @b, dim=1)`` merge outputs (``@3``: stage 3's output,
``@input``: the network input). ``nn.Sequential(…)`` text gives its layers.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from cnnops.errors import SpecError
from cnnops.model import stages as st
from cnnops.model.network import Network, Node
from cnnops.spec.aliases import TORCH_NN, functional_arguments, split_prefix
from cnnops.spec.literals import literal
from cnnops.spec.signatures import (
    SHORT_KEYWORDS,
    LayerData,
    LayerDef,
    _check_value,
    _show,
    _suggest,
    known_names,
    resolve_name,
)
from cnnops.text import LazyPattern

MAX_TEXT = 1_000_000
#: short names that, given no size, become the Lazy layer (num_features taken from the input)
LAZY_SHORT_NAMES = ("bn", "batchnorm")
#: how a reference is spelled inside the ast (``@x`` is not Python): a name no user text may use
_REF = "__cnnops_ref_"

_PRINTED = LazyPattern(r"^\(([^()]*)\):\s*(.*)$", re.S)
_HEAD = LazyPattern(r"^([A-Za-z_][\w.-]*)\s*(.*)$", re.S)
_LABEL = LazyPattern(r"^([A-Za-z_]\w*)\s*=(?!=)\s*(.*)$", re.S)
#: a reference ``@x`` / ``@2`` — or a string literal, matched first so that an ``@`` inside one is left as it is
_AT = LazyPattern(r"""('''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
                  r"|@\s*([A-Za-z_]\w*|\d+)")
_SEQUENTIAL = LazyPattern(r"^(?:torch\.nn\.|nn\.)?Sequential\s*\(", re.S)


def parse_stage(text: str) -> st.Stage:
    """One stage from its text; raises :class:`SpecError` naming the problem and a fix."""
    return parse_layer(text)[0]


def parse_layer(text: str) -> tuple[st.Stage, LayerData | None]:
    """One layer from its text, with the run-time data (``weight=``, ``bias=`` values, ``seed=``) it gives."""
    nodes = parse_nodes(text)
    node = nodes.nodes[0]
    if len(nodes) != 1 or node.label is not None or node.refs is not None:
        raise SpecError(f"stage '{_shown(text)}' must be one layer, without labels or @references")
    return node.stage, node.data


def parse_nodes(text: str) -> Network:
    """The stage(s) one text gives: a layer call (maybe labelled, maybe applied to ``@ref``), a merge,
    or a pasted ``nn.Sequential(…)`` or one-line print(model) text (several stages)."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty stage text — write a layer such as 'MaxPool2d(2)'")
    if len(text) > MAX_TEXT:
        raise SpecError("stage text is too long")
    shown = _shown(text)
    source = text.strip()
    # each pattern is tried only where the text holds what it needs (a pattern is compiled on first use)
    printed = source.startswith("(") and _PRINTED.match(source)
    if printed:
        source = printed.group(2).strip()
    elif _is_printed_model(source):
        from cnnops.spec.printed import parse_printed

        return parse_printed(source, origin="print(model) text")
    label = None
    labelled = "=" in source and "(" not in source.partition("=")[0] and _LABEL.match(source)
    if labelled:
        label, source = labelled.group(1), labelled.group(2).strip()
        if label.startswith("_") or label == "input":
            raise SpecError(f"stage '{shown}': '{label}' cannot be a label — choose a name such as x or skip")
    if "Sequential" in source and _SEQUENTIAL.match(source):
        if label is not None:
            raise SpecError(f"stage '{shown}': label a layer of the Sequential, not the Sequential")
        return Network(_sequential(source, shown))
    head = _HEAD.match(source)
    if not head:
        raise SpecError(f"stage '{shown}' must start with a layer name, e.g. 'MaxPool2d(2, stride=1)'")
    name, rest = head.group(1), head.group(2).strip()
    if name.startswith("_") or "._" in name:
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
    try:
        tree = ast.parse("L" + (_AT.sub(lambda m: m.group(1) or _REF + m.group(2), rest) if "@" in rest else rest), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SpecError(
            f"stage '{shown}' is not valid layer syntax — write it like 'MaxPool2d(2, stride=1)'"
        ) from None
    call, applied = tree.body, None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Call):  # Stage(…)(@ref): applied to an output
        applied = _refs(call, shown, alone=True)
        call = call.func
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "L"):
        raise SpecError(f"stage '{shown}' must be a single layer call such as 'Conv2d(1, 4, 3)'")
    node = _node(name, call, shown, label)
    if applied is not None:
        if node.stage.merges:
            raise SpecError(f"stage '{shown}': give a merge its inputs inside its call, e.g. Add(@a, @b)")
        node = Node(node.stage, label, applied, node.data)
    return Network([node])


def _node(name: str, call: ast.Call, shown: str, label: str | None) -> Node:
    layer_name, functional = split_prefix(name)
    if layer_name.startswith("_"):
        raise SpecError(f"stage '{shown}': the name '{name}' is not allowed")
    layer = resolve_name(layer_name)
    if layer is None:
        if layer_name in TORCH_NN:
            raise SpecError(f"stage '{shown}': cnnops does not support PyTorch's nn.{layer_name} yet — the README lists "
                            "the supported layers")  # fmt: skip
        raise SpecError(f"unknown layer '{name}' in stage '{shown}'{_suggest(layer_name, known_names())}")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise SpecError(f"stage '{shown}': * and ** arguments are not allowed")
    if layer_name.lower() in LAZY_SHORT_NAMES and not call.args and "num_features" not in {k.arg for k in call.keywords}:
        # a bare ``bn`` sizes itself from its input, as PyTorch's LazyBatchNorm2d does
        layer = resolve_name("Lazy" + layer.name)
        assert layer is not None
    refs = None
    args = list(call.args)
    if layer.name in ("Add", "Mul", "Cat"):
        ref_args = [a for a in args if _is_ref(a)]
        if len(ref_args) != len(args) or not args:
            raise SpecError(f"stage '{shown}': {layer.name} takes outputs to merge as @references, e.g. "
                            f"{layer.name}(@x) or {layer.name}(@a, @b)")  # fmt: skip
        refs, args = tuple(_ref_name(a) for a in ref_args), []
    elif any(_is_ref(a) for a in args) or any(_is_ref(k.value) for k in call.keywords):
        raise SpecError(f"stage '{shown}': an @reference goes after a layer, Stage(…)(@x), or in Add/Mul/Cat")
    positional = [literal(a, shown) for a in args]
    keywords = [(k.arg, literal(k.value, shown)) for k in call.keywords]
    if functional is not None:
        keywords, positional = functional_arguments(functional, positional, keywords), []
    stage, data = _bind(layer, positional, keywords)
    return Node(stage, label, refs, data)


def _is_ref(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id.startswith(_REF)


def _ref_name(node: ast.AST) -> str:
    assert isinstance(node, ast.Name)
    return node.id[len(_REF) :]


def _refs(call: ast.Call, shown: str, *, alone: bool) -> tuple[str, ...]:
    if call.keywords or not call.args or not all(_is_ref(a) for a in call.args):
        raise SpecError(f"stage '{shown}': after a layer call, give the output it reads, e.g. Conv2d(64, 128, 1)(@x)")
    if alone and len(call.args) != 1:
        raise SpecError(f"stage '{shown}': a layer reads one output — merge several with Add, Mul or Cat first")
    return tuple(_ref_name(a) for a in call.args)


def _sequential(source: str, shown: str) -> list[Node]:
    """``nn.Sequential(nn.Conv2d(…), nn.ReLU(), …)`` pasted whole: its arguments are the stages."""
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SpecError(f"stage '{shown}' is not valid Python — paste the whole nn.Sequential(…) call") from None
    nodes: list[Node] = []
    _sequential_layers(tree.body, shown, nodes, 0)
    if not nodes:
        raise SpecError(f"stage '{shown}': the Sequential holds no layers")
    return nodes


def _sequential_layers(call: ast.AST, shown: str, nodes: list[Node], depth: int) -> None:
    if depth > 16 or not isinstance(call, ast.Call) or call.keywords:
        raise SpecError(f"stage '{shown}': nn.Sequential takes layer calls such as nn.ReLU(), one after another")
    for arg in call.args:
        if not isinstance(arg, ast.Call):
            raise SpecError(f"stage '{shown}': each argument of nn.Sequential must be a layer call, "
                            f"not {ast.unparse(arg)[:40]!r}")  # fmt: skip
        name = _dotted(arg.func)
        if name is None:
            raise SpecError(f"stage '{shown}': {ast.unparse(arg.func)[:40]!r} is not a layer name")
        if split_prefix(name)[0] == "Sequential":
            _sequential_layers(arg, shown, nodes, depth + 1)
            continue
        layer_call = ast.Call(func=ast.Name(id="L", ctx=ast.Load()), args=arg.args, keywords=arg.keywords)
        nodes.append(_node(name, layer_call, shown, None))


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _is_printed_model(source: str) -> bool:
    """``Net( (conv): Conv2d(…) … )``: print(model) text, maybe collapsed into one line."""
    return ":" in source and bool(re.match(r"^[A-Za-z_][\w.]*\s*\(\s*\(\s*[\w.-]+\s*\)\s*:", source))


def _shown(text: str) -> str:
    shown = " ".join(str(text).split())
    return shown if len(shown) <= 80 else shown[:77] + "…"


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
