"""The ``cnnops`` command line (Typer): options are parsed here, the library does the work, the
renderers draw. ``app`` is the full app with every command; the ``cnnops`` program itself runs a group
that imports and builds only the command being run (:mod:`cnnops.cli.lazy`)."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from importlib import import_module

        from cnnops.cli.common import app
        from cnnops.cli.lazy import COMMANDS

        for module in dict.fromkeys(COMMANDS.values()):  # they register their commands on app, in help order
            import_module(f"cnnops.cli.{module}")
        return app
    raise AttributeError(name)
