"""``python -m cnnops`` and the ``cnnops`` console script."""


def main() -> None:
    """Run cnnops: a command group that imports and builds only the command being run
    (:mod:`cnnops.cli.lazy`), so every command starts in about the time of its own imports."""
    from cnnops.cli.common import handle_signals
    from cnnops.cli.lazy import lazy_app

    handle_signals()
    lazy_app()(prog_name="cnnops")


if __name__ == "__main__":
    main()
