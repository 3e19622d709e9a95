"""The ``cnnops`` command line: the full app, with every command registered on it.

Command modules parse options, call the core and render; ``clikit`` holds what they share. The
console script is :func:`cnnops.__main__.main`, which takes a fast path for ``cnnops shape``.
"""

from cnnops import datacli, shapecli, solvecli  # noqa: F401  (register their commands on app)
from cnnops.clikit import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the full app (``python -m cnnops`` and the console script go through ``cnnops.__main__``)."""
    app(prog_name="cnnops")
