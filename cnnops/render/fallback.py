"""ASCII stand-ins for the drawing characters, for an output whose encoding cannot show them
(``LC_ALL=C``, ``PYTHONIOENCODING=ascii``): ``×`` → ``x``, ``→`` → ``->``, ``⌊a⌋`` → ``floor(a)``.

The translation is applied to a whole renderable before rich lays it out, so tables are measured on
the text that is printed and stay aligned. rich itself swaps box drawing for ASCII on such outputs.

>>> translator("ascii")("⌊(5 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1 = 3 · 1×64×55×55 → done…")
'floor((5 + 2*0 - 1*(3-1) - 1) / 1) + 1 = 3 | 1x64x55x55 -> done...'
>>> translator("utf-8") is None, translator("latin-1")("1×2 → 3")
(True, '1×2 -> 3')
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

#: what each drawing character becomes where it cannot be shown (longest first where they overlap)
ASCII = {
    " · ": " | ", "×": "x", "→": "->", "←": "<-", "⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")", "·": "*",
    "−": "-", "—": "--", "–": "-", "…": "...", "≤": "<=", "≥": ">=", "≠": "!=", "↳": "->", "⋮": ":", "⋱": "\\",
    "±": "+/-", "√": "sqrt", "′": "'", "Σ": "sum", "▀": "#", "━": "-", "─": "-", "│": "|", "┃": "|", "°": " deg",
}  # fmt: skip
Translate = Callable[[str], str]


def translator(encoding: str) -> Translate | None:
    """A function that replaces what ``encoding`` cannot encode by its ASCII stand-in (and anything else
    it cannot encode by ``?``), or None when ``encoding`` shows every drawing character."""
    try:
        codec = "".join(ASCII).encode
        codec(encoding)
        return None
    except LookupError:
        encoding = "ascii"
    except UnicodeEncodeError:
        pass
    table = {key: value for key, value in ASCII.items() if not _encodes(key.strip() or key, encoding)}
    pattern = re.compile("|".join(re.escape(key) for key in sorted(table, key=len, reverse=True)))

    def translate(text: str) -> str:
        if text.isascii():
            return text
        text = pattern.sub(lambda m: table[m.group()], text)
        return text.encode(encoding, "replace").decode(encoding)

    translate.pattern, translate.table = pattern, table  # type: ignore[attr-defined]
    return translate


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def translated(renderable: Any, translate: Translate) -> Any:
    """``renderable`` (a string, Text, Table, Group, Panel, Padding, Columns, or any object rich can
    render) with its text translated; objects that draw themselves are translated as they draw."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.rule import Rule
    from rich.segment import Segment
    from rich.table import Table
    from rich.text import Text

    if isinstance(renderable, str):
        return translate(renderable)
    if isinstance(renderable, Text):
        return _text(renderable, translate)
    if isinstance(renderable, Segment):
        return Segment(translate(renderable.text), renderable.style, renderable.control)
    if isinstance(renderable, Table):
        table = copy.copy(renderable)
        table.title = translated(table.title, translate) if table.title is not None else None
        table.caption = translated(table.caption, translate) if table.caption is not None else None
        table.columns = []
        for column in renderable.columns:
            column = copy.copy(column)
            column.header = translated(column.header, translate)
            column.footer = translated(column.footer, translate)
            column._cells = [translated(cell, translate) for cell in column._cells]
            table.columns.append(column)
        return table
    if isinstance(renderable, Group):
        return Group(*(translated(item, translate) for item in renderable.renderables), fit=renderable.fit)
    if isinstance(renderable, (Panel, Padding)):
        copied: Any = copy.copy(renderable)
        copied.renderable = translated(renderable.renderable, translate)
        if isinstance(copied, Panel):
            copied.title = translated(copied.title, translate) if copied.title is not None else None
            copied.subtitle = translated(copied.subtitle, translate) if copied.subtitle is not None else None
        return copied
    if isinstance(renderable, Columns):
        copied = copy.copy(renderable)
        copied.renderables = [translated(item, translate) for item in renderable.renderables]
        return copied
    if isinstance(renderable, Rule):
        copied = copy.copy(renderable)
        copied.title = translated(renderable.title, translate)
        return copied
    if hasattr(renderable, "__rich_console__") or hasattr(renderable, "__rich__"):
        return _Translating(renderable, translate)
    return renderable


class _Translating:
    """A renderable that draws itself, translated as it draws."""

    def __init__(self, renderable: Any, translate: Translate) -> None:
        self.renderable, self.translate = renderable, translate

    def __rich_console__(self, console: Any, options: Any) -> Iterable[Any]:
        from rich.protocol import rich_cast

        inner = rich_cast(self.renderable)
        if not hasattr(inner, "__rich_console__"):
            yield translated(inner, self.translate)
            return
        for item in inner.__rich_console__(console, options):
            yield translated(item, self.translate)

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement
        from rich.protocol import rich_cast

        inner = rich_cast(self.renderable)
        measure = getattr(inner, "__rich_measure__", None)
        return measure(console, options) if measure else Measurement(0, options.max_width)


def _text(text: Any, translate: Translate) -> Any:
    """A Text with its characters translated and its styled spans moved to match."""
    from rich.text import Span, Text

    plain = text.plain
    if plain.isascii():
        return text
    pattern, table = translate.pattern, translate.table  # type: ignore[attr-defined]
    pieces: list[str] = []
    where = [0] * (len(plain) + 1)  # old offset → new offset
    done = new = 0
    for match in pattern.finditer(plain):
        for i in range(done, match.start()):
            where[i] = new + i - done
        pieces.append(plain[done : match.start()])
        new += match.start() - done
        for i in range(match.start(), match.end()):
            where[i] = new
        replacement = table[match.group()]
        pieces.append(replacement)
        new += len(replacement)
        done = match.end()
    for i in range(done, len(plain) + 1):
        where[i] = new + i - done
    pieces.append(plain[done:])
    result = Text(translate("".join(pieces)), style=text.style, justify=text.justify, overflow=text.overflow,
                  no_wrap=text.no_wrap, end=text.end, tab_size=text.tab_size)  # fmt: skip
    result.spans = [Span(where[s.start], where[min(s.end, len(plain))], s.style) for s in text.spans]
    return result
