"""How cnnops writes shapes, tuples and values: one formatter for every message, table and picture.

>>> tuple_text((1, 5, 5)), tuple_text((3,)), dims((1, 64, 55, 55)), dims(())
('(1, 5, 5)', '(3,)', '1×64×55×55', 'scalar')
>>> show("same"), show((3, 3)), show(0.5), is_int(True), is_number(2.5)
("'same'", '(3, 3)', '0.5', False, True)
"""

from __future__ import annotations

import numbers
from typing import Any

#: longest value text echoed into a message before it is cut with "…"
SHOWN_CHARS = 80


def tuple_text(values: tuple[Any, ...]) -> str:
    """A shape or size as Python writes a tuple: ``(1, 5, 5)``, ``(3,)``."""
    return "(" + ", ".join(str(v) for v in values) + ("," if len(values) == 1 else "") + ")"


def dims(shape: tuple[int, ...]) -> str:
    """``(1, 64, 55, 55)`` → ``1×64×55×55``: narrow enough for an 80-column table."""
    return "×".join(map(str, shape)) if shape else "scalar"


def is_int(value: Any) -> bool:
    """A whole number, not a bool (numpy integers count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number, not a bool (numpy numbers count)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def show(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A value as a message quotes it: strings quoted, numbers plain, long text cut with "…"."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, tuple):
        text = "(" + ", ".join(show(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
    else:
        text = repr(value) if not is_number(value) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "…" + text[-1:]
