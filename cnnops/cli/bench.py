"""``cnnops bench``: the rates the auto engine chooses by, and ``--calibrate`` to measure them here."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cnnops.cli.common import app, emit_text, plain_output, stdout_console, user_errors
from cnnops.text import echo

_UNITS = {
    "conv_mac": "per multiply-add of a convolution or linear layer",
    "conv_cols": "per im2col cell (NumPy)",
    "conv_out": "per convolution output",
    "convt_add": "per transposed-convolution add",
    "maxpool": "per max-pool cell read",
    "avgpool": "per avg-pool cell read",
    "adaptive": "per adaptive-pool input cell",
    "elementwise": "per element of ReLU (batch norm, …; other activations in proportion)",
    "transcendental": "per element of GELU (SiLU, Tanh, … in proportion)",
    "softmax": "per element of a (log-)softmax",
    "stage": "per stage",
}


@app.command()
@user_errors
def bench(
    calibrate: Annotated[bool, typer.Option("--calibrate", help=(
        "Time each kind of work on both engines (imports torch; 10–20 seconds) and keep the rates in "
        "the cache directory ($XDG_CACHE_HOME/cnnops) for the auto engine."
    ))] = False,  # fmt: skip
    as_json: Annotated[bool, typer.Option("--json", help="Print the rates as one JSON document.")] = False,
) -> None:
    """Show the rates the auto engine chooses by (seconds per unit of work on each engine), or measure them.

    Example: cnnops bench --calibrate
    """
    import json
    import sys

    from cnnops.run.costs import KINDS, load_rates

    if calibrate:
        from cnnops.io.write import check_writable
        from cnnops.run.calibrate import calibrate as measure
        from cnnops.run.costs import save_rates

        with _rates_cache() as path:  # checked before the seconds of measuring
            path.parent.mkdir(parents=True, exist_ok=True)
            check_writable(str(path))
        rates = measure(progress=lambda text: print(f"measuring {text} …", file=sys.stderr, flush=True))
        with _rates_cache():
            source = str(save_rates(rates))
    else:
        rates = load_rates()
        source = rates.source
    if as_json:
        emit_text(json.dumps({**rates.as_dict(), "source": source}))
        return
    from rich.table import Table
    from rich.text import Text

    from cnnops.render.plain import print_table
    from cnnops.render.shape_tables import table_box

    console = stdout_console()
    console.print(Text(f"auto engine rates ({source})"), soft_wrap=True)  # a long path is not broken up
    table = Table(box=table_box(plain_output(console)))
    for name, justify in (("work", "left"), ("numpy s", "right"), ("torch s", "right"), ("unit", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind in KINDS:
        table.add_row(kind, f"{rates.numpy.get(kind, 0.0):.3g}", f"{rates.torch.get(kind, 0.0):.3g}", _UNITS[kind])
    table.add_row("import", "0", f"{rates.torch_import:.3g}", "importing torch (once per run)")
    print_table(console, table)


@contextmanager
def _rates_cache() -> Iterator[Path]:
    """The rates file's path, with an error that says where and what to do when it cannot be stored there."""
    import os

    from cnnops.errors import InputError
    from cnnops.run.costs import rates_path

    path = rates_path()
    try:
        yield path
    except OSError as exc:
        raise InputError(f"cannot store the rates in '{echo(str(path))}': {exc.strerror or exc} — set "
                         "XDG_CACHE_HOME to a writable directory") from None
    except InputError as exc:  # the file's own check (io.write) named the file and the reason; its advice
        # (give another file name) is not for this file, whose name is not the user's to choose
        reason = str(exc).split(" — ", 1)[0]
        fix = "remove it, or set XDG_CACHE_HOME to another directory" if os.path.lexists(path) else \
            "set XDG_CACHE_HOME to a writable directory"  # fmt: skip
        raise InputError(f"cannot store the rates: {reason} — {fix}") from None
