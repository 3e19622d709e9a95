"""The command group ``cnnops`` runs: it imports and builds only the command being run.

Typer turns every registered command into a click command (each option converted) before it looks
at the command line; for twelve commands that is several times the work of one. This group knows
the commands by name and module, imports the module that defines the one asked for and builds that
one alone. ``--help`` lists every command with its one-line help from the docstring, building none.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

#: every command, in the order ``--help`` lists them, and the module of cnnops.cli that defines it
COMMANDS = {
    "run": "run",
    "pool": "data",
    "adaptive-pool": "data",
    "unpool": "data",
    "relu": "data",
    "act": "data",
    "conv": "data",
    "linear": "data",
    "flatten": "data",
    "kernels": "data",
    "shape": "shape",
    "solve": "solve",
    "bench": "bench",
}


def command_info(name: str) -> Any:
    """The registered typer CommandInfo of command ``name`` (its module imported, which registers it)."""
    from typer.main import get_command_name

    from cnnops.cli.common import app

    import_module(f"cnnops.cli.{COMMANDS[name]}")
    for info in app.registered_commands:
        if (info.name or get_command_name(getattr(info.callback, "__name__", ""))) == name:
            return info
    raise LookupError(f"cnnops.cli.{COMMANDS[name]} registers no command {name!r}")  # pragma: no cover


class LazyGroup(TyperGroup):
    """A typer group whose commands are imported and built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        if name not in self.commands:
            from typer.main import get_command_from_info

            self.commands[name] = get_command_from_info(
                command_info(name), pretty_exceptions_short=False, rich_markup_mode=None
            )
        return self.commands[name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The ``Commands:`` section as typer writes it, from each command's help text alone."""
        import inspect

        from typer.core import TyperCommand

        commands = []
        for name in COMMANDS:
            info = command_info(name)
            text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
            stub = TyperCommand(name, help=text, short_help=info.short_help, hidden=info.hidden,
                                deprecated=info.deprecated, rich_markup_mode=None)  # fmt: skip
            if not stub.hidden:
                commands.append((name, stub))
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])


def lazy_app() -> typer.Typer:
    """The ``cnnops`` app: the global options, and every command on demand."""
    from cnnops.cli.common import new_app

    app = new_app()
    app.info.cls = LazyGroup
    return app
