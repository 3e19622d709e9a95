"""``python -m cnnops`` and the ``cnnops`` console script."""


def main() -> None:
    """Run cnnops: a command group that imports and builds only the command being run
    (:mod:`cnnops.cli.lazy`), so every command starts in about the time of its own imports."""
    from cnnops.cli.lazy import lazy_app

    lazy_app()(prog_name="cnnops")


if __name__ == "__main__":
    main()
