"""Renderables one under the other, as rich's ``Group`` draws and measures them, without importing rich's
console module (a plain table on a pipe needs none: :mod:`cnnops.render.plain`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Stack:
    """``rich.console.Group(*renderables)`` (fit to its contents), defined here so that building one does
    not import rich's console."""

    def __init__(self, *renderables: Any) -> None:
        self.renderables = list(renderables)

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import measure_renderables

        return measure_renderables(console, options, self.renderables)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield from self.renderables
