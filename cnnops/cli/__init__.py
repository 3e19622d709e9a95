"""The ``cnnops`` command line (Typer): options are parsed here, the library does the work, the
renderers draw. ``app`` is the full app with every command; ``cnnops shape`` takes a faster path
(see :mod:`cnnops.__main__`)."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from cnnops.cli import bench, data, shape, solve  # noqa: F401  (they register their commands on app)
        from cnnops.cli.common import app

        return app
    raise AttributeError(name)
