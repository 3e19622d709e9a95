r"""How cnnops writes shapes, tuples and values: one formatter for every message, table and picture.

>>> tuple_text((1, 5, 5)), tuple_text((3,)), dims((1, 64, 55, 55)), dims(())
('(1, 5, 5)', '(3,)', '1×64×55×55', 'scalar')
>>> show("same"), show((3, 3)), show(0.5), is_int(True), is_number(2.5)
("'same'", '(3, 3)', '0.5', False, True)
>>> echo("a\x1b[31mb\udcff.json"), len(echo("x" * 5000)), echo("x" * 5000)[-12:]
('a\\x1b[31mb\\xff.json', 200, 'xxxxxxxxxxxx')
"""

from __future__ import annotations

import functools
import numbers
import re
from typing import Any

#: longest value text echoed into a message before it is cut with "…"
SHOWN_CHARS = 80
#: longest piece of user text (a path, an argument, a key) a message quotes before it is cut with "…"
ECHO_CHARS = 200
#: longest message line shown, whatever it quotes
MESSAGE_CHARS = 2000
# control characters (C0, DEL, C1), lone surrogates (os.fsdecode's stand-ins for bytes that are not
# UTF-8) and the bidirectional overrides that reorder what a terminal shows
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"


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


def safe_text(text: str) -> str:
    """``text`` with what a terminal would act on written out: control characters as ``\\x1b``, a byte
    that was not UTF-8 in a file name (``\\udcff`` after os.fsdecode) as ``\\xff``. It can be printed
    and written as UTF-8 JSON."""
    if text.isascii() and text.isprintable():  # nothing to escape (the pattern's ASCII part is the unprintable)
        return text
    return _unsafe().sub(_escape, text)


@functools.cache
def _unsafe() -> re.Pattern[str]:
    """The pattern compiled on first use (its ranges take half a millisecond to compile)."""
    return re.compile(_UNSAFE)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo(text: str, limit: int = ECHO_CHARS) -> str:
    """User text as a message quotes it: :func:`safe_text`, cut to ``limit`` characters keeping the
    end too (where a file name's suffix is)."""
    text = safe_text(str(text))
    if len(text) <= limit:
        return text
    tail = min(40, limit // 4)
    return text[: limit - tail - 1] + "…" + text[-tail:]


def message_line(text: str) -> str:
    """A message as one printable line: :func:`safe_text` (newlines too), at most MESSAGE_CHARS long."""
    return echo(text, MESSAGE_CHARS)


class LazyPattern:
    """``re.compile(pattern, flags)`` done on first use. Compiling takes about 0.1 ms a pattern: start-up
    time for every command, most of which never read the text the pattern is for."""

    __slots__ = ("_pattern", "_flags", "_compiled")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._pattern, self._flags = pattern, flags
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:  # match, fullmatch, sub, … of the compiled pattern
        if self._compiled is None:
            self._compiled = re.compile(self._pattern, self._flags)
        return getattr(self._compiled, name)
