"""Argument values in stage text: Python literals, and integer arithmetic on them, read from the
:mod:`ast` tree and never evaluated.

>>> import ast
>>> literal(ast.parse("32 * 4 * 4", mode="eval").body, "Linear(32 * 4 * 4, 128)")
512
>>> literal(ast.parse("(2 ** 3, -7 // 2)", mode="eval").body, "…")
(8, -4)
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from cnnops.errors import SpecError
from cnnops.text import is_number

MAX_INT = 2**40
MAX_DEPTH = 8
MAX_STRING = 4096

#: the integer arithmetic stage arguments may use, as PyTorch code writes sizes (``32 * 4 * 4``)
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
               ast.Pow: operator.pow}  # fmt: skip
_OPERATOR_NAMES = {ast.Div: "/ (use // for whole numbers)", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<",
                   ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}  # fmt: skip


def literal(node: ast.AST, text: str, depth: int = 0) -> Any:
    """A literal argument value; anything that would need evaluating beyond integer arithmetic is refused."""
    if depth > MAX_DEPTH:
        raise SpecError(f"stage '{text}': arguments are nested too deeply")
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, (bool, str, float)):
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise SpecError(f"stage '{text[:40]}…': a string argument is too long")
            return value
        if isinstance(value, int):
            return _checked(value, text)
        raise SpecError(f"stage '{text}': {type(value).__name__} values are not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal(node.operand, text, depth + 1)
        if not is_number(value):
            raise SpecError(f"stage '{text}': a sign can only go in front of a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _arithmetic(node, text, depth)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(literal(e, text, depth + 1) for e in node.elts)
    if (isinstance(node, ast.Call) and _tensor_call(node)) or (isinstance(node, ast.Attribute) and _tensor_constant(node)):
        # torch.tensor([...]), np.array([...]), float('nan'), math.inf: read by the one tensor-text reader
        from cnnops.io.literal import node_value

        return _as_tuples(node_value(node, f"stage '{text}'", error=SpecError))
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise SpecError(f"stage '{text}': the name '{node.id}' is not allowed")
        return node.id  # bare words, as print(model) writes them: padding=same, padding_mode=reflect
    what = {
        ast.Attribute: "attribute access",
        ast.Call: "a function call",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
    }.get(type(node), "an expression")
    raise SpecError(
        f"stage '{text}': {what} is not allowed in stage arguments — use numbers, strings, tuples, lists "
        "and integer arithmetic (+ - * // **)"
    )


def _arithmetic(node: ast.BinOp, text: str, depth: int) -> int:
    op = _ARITHMETIC.get(type(node.op))
    if op is None:
        name = _OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)
        raise SpecError(f"stage '{text}': the operator {name} is not allowed — use + - * // ** on whole numbers")
    left, right = literal(node.left, text, depth + 1), literal(node.right, text, depth + 1)
    if not (type(left) is int and type(right) is int):
        raise SpecError(f"stage '{text}': arithmetic works on whole numbers only, got {left!r} and {right!r}")
    if isinstance(node.op, ast.FloorDiv) and right == 0:
        raise SpecError(f"stage '{text}': division by zero")
    if isinstance(node.op, ast.Pow) and (right < 0 or (abs(left) > 1 and right > MAX_INT.bit_length())):
        raise SpecError(f"stage '{text}': the power {left} ** {right} is out of range")
    return _checked(op(left, right), text)


def _checked(value: int, text: str) -> int:
    if abs(value) > MAX_INT:
        raise SpecError(f"stage '{text[:60]}': the number {str(value)[:20]}… is too large")
    return value


def _tensor_constant(node: ast.Attribute) -> bool:
    """``math.inf``, ``np.nan``, ``torch.inf``: a number written as an attribute."""
    return isinstance(node.value, ast.Name) and node.value.id in ("math", "np", "numpy", "torch") and node.attr in (
        "inf", "nan", "pi", "e")


def _as_tuples(value: Any) -> Any:
    """Nested lists as nested tuples, as stage arguments hold them."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def _tensor_call(node: ast.Call) -> bool:
    """``torch.tensor(…)``, ``np.array(…)``, ``float('nan')``: a call the tensor-text reader may read."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in ("float", "tensor", "array")
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in ("torch", "np", "numpy", "math")
