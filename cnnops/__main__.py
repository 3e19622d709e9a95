"""``python -m cnnops`` and the ``cnnops`` console script."""

import sys


def main() -> None:
    """Run cnnops. ``cnnops shape …`` gets an app with just that command, so the size calculator
    starts without importing the data commands or the solver (it is the one people time)."""
    from cnnops.cli.common import handle_signals

    handle_signals()
    if sys.argv[1:2] == ["shape"]:
        from cnnops.cli.common import new_app
        from cnnops.cli.shape import shape

        small = new_app()
        small.command("shape")(shape)
        small(prog_name="cnnops")
        return
    from cnnops.cli import app

    app(prog_name="cnnops")


if __name__ == "__main__":
    main()
