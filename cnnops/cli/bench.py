"""``cnnops bench``: the rates the auto engine chooses by, and ``--calibrate`` to measure them here."""

from typing import Annotated

import typer

from cnnops.cli.common import app, emit_text, plain_output, stdout_console, user_errors

_UNITS = {
    "conv_mac": "per multiply-add of a convolution or linear layer",
    "conv_cols": "per im2col cell (NumPy)",
    "conv_out": "per convolution output",
    "convt_add": "per transposed-convolution add",
    "maxpool": "per max-pool cell read",
    "avgpool": "per avg-pool cell read",
    "adaptive": "per adaptive-pool input cell",
    "elementwise": "per element (ReLU, batch norm, …)",
    "transcendental": "per element (GELU, SiLU, Tanh, …)",
    "softmax": "per element of a (log-)softmax",
    "stage": "per stage",
}


@app.command()
@user_errors
def bench(
    calibrate: Annotated[bool, typer.Option("--calibrate", help=(
        "Time each kind of work on both engines (imports torch; about a minute) and keep the rates in "
        "the cache directory ($XDG_CACHE_HOME/cnnops) for the auto engine."
    ))] = False,  # fmt: skip
    as_json: Annotated[bool, typer.Option("--json", help="Print the rates as one JSON document.")] = False,
) -> None:
    """Show the rates the auto engine chooses by (seconds per unit of work on each engine), or measure them.

    Example: cnnops bench --calibrate
    """
    import json
    import sys

    from cnnops.run.costs import KINDS, load_rates, rates_path, save_rates

    if calibrate:
        from cnnops.run.calibrate import calibrate as measure

        rates = measure(progress=lambda text: print(f"measuring {text} …", file=sys.stderr, flush=True))
        try:
            path = save_rates(rates)
        except OSError as exc:
            from cnnops.errors import InputError

            raise InputError(f"cannot store the rates in '{rates_path()}': {exc.strerror or exc}") from None
        source = str(path)
    else:
        rates = load_rates()
        source = rates.source
    if as_json:
        emit_text(json.dumps({**rates.as_dict(), "source": source}))
        return
    from rich.table import Table

    from cnnops.render.plain import print_table
    from cnnops.render.shape_tables import table_box

    console = stdout_console()
    table = Table(title=f"auto engine rates ({source})", box=table_box(plain_output(console)), title_justify="left")
    for name, justify in (("work", "left"), ("numpy s", "right"), ("torch s", "right"), ("unit", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind in KINDS:
        table.add_row(kind, f"{rates.numpy.get(kind, 0.0):.3g}", f"{rates.torch.get(kind, 0.0):.3g}", _UNITS[kind])
    table.add_row("import", "0", f"{rates.torch_import:.3g}", "importing torch (once per run)")
    print_table(console, table)
