"""The ``cnnops`` command line: parse options, call the core, render. No arithmetic here.

torch, numpy and PIL are never imported at module level: ``cnnops shape`` and ``--help`` must start
in about the time Python needs for typer and rich.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cnnops import __version__
from cnnops.errors import CnnopsError, UsageError

app = typer.Typer(
    name="cnnops",
    help="A calculator for the layers of convolutional networks: shapes, parameters and every "
    "intermediate tensor, with PyTorch's exact semantics.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: long option names are never truncated at 80 columns
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])
_state = {"debug": False}


def stdout_console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def plain_output(console) -> bool:
    """No box drawing or colour when stdout is a file or a pipe."""
    return not console.is_terminal


def fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape

    stderr_console().print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn CnnopsError into ``Error: …`` on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _state["debug"] or os.environ.get("CNNOPS_DEBUG") == "1"
        try:
            return func(*args, **kwargs)
        except CnnopsError as exc:
            if debug:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug: say so briefly, without a traceback unless asked
            if debug:
                raise
            raise fail(
                f"internal error ({type(exc).__name__}: {exc}) — please re-run with --debug and report it"
            ) from None

    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnops {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks (also CNNOPS_DEBUG=1), for bug reports.")
    ] = False,
) -> None:
    _state["debug"] = debug


def complete_stage(incomplete: str) -> list[str]:
    """Shell completion: layer names and short names that start with what was typed."""
    from cnnops.vocabulary import known_names

    # shells filter case-sensitively: keep what was typed and complete the rest of the name
    return [incomplete + name[len(incomplete):] for name in known_names() if name.lower().startswith(incomplete.lower())]


def read_stage_args(stage_texts: list[str] | None, file: Path | None) -> list:
    """Stages from the command line, then from ``-f FILE``, through the one parser."""
    from cnnops.errors import InputError
    from cnnops.spec import parse_stage_file, parse_stages

    stages = parse_stages(stage_texts or [])
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"stage file '{file}' does not exist") from None
        except IsADirectoryError:
            raise InputError(f"stage file '{file}' is a directory — give a text file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read stage file '{file}': {exc}") from None
        stages += parse_stage_file(text, origin=str(file))
    return stages


def emit_text(text: str) -> None:
    """Write a finished result (a JSON document) to stdout in one piece."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()




@app.command()
@user_errors
def shape(
    input_shape: Annotated[str, typer.Argument(metavar="SHAPE", help="Input shape: 1x3x224x224, or unbatched 3x224x224.")],
    stages: Annotated[
        list[str] | None,
        typer.Argument(metavar="[STAGE]...", autocompletion=complete_stage,
                       help="Layers in PyTorch call syntax: 'Conv2d(3, 64, 3)' ReLU maxpool:2"),  # fmt: skip
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="Stages, one per line, or the text print(model) shows ('-' for stdin)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="One CSV row per stage, for spreadsheets.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per stage per line.")] = False,
) -> None:
    """Size a network: per-stage shapes, formulas, parameters, MACs and receptive field. Never imports torch.

    Example: cnnops shape 1x3x224x224 -f examples/alexnet.txt
    """
    from cnnops.shapes import parse_shape, trace_shapes

    shape_in = parse_shape(input_shape)
    stage_list = read_stage_args(stages, file)
    trace = trace_shapes(shape_in, stage_list)
    if sum((as_json, csv, jsonl)) > 1:
        raise UsageError("choose one of --json, --csv and --jsonl")
    if as_json or csv or jsonl:
        trace.raise_error()
        from cnnops import render

        emit_text(json.dumps(trace.as_dict()) if as_json else
                  render.shape_csv(trace) if csv else render.shape_jsonl(trace))  # fmt: skip
        return
    from cnnops import render

    console = stdout_console()
    plain = plain_output(console)
    failed = trace.error.stage if trace.error else None
    title = f"cnnops shape {'×'.join(map(str, shape_in))}"
    console.print(render.shape_table(trace, title=title, plain=plain, failed=failed))
    formulas = render.formula_table(trace, plain=plain)
    if formulas is not None:
        console.print(formulas)
    if trace.error is None:
        console.print(render.totals_table(trace, plain=plain))
    trace.raise_error()


def main() -> None:
    app(prog_name="cnnops")


from cnnops import datacli, solvecli  # noqa: E402,F401  (register the data commands and solve on app)
