"""What every cnnops command shares: the app and its options, the two consoles, the error path.

torch, numpy and PIL are never imported at module level: ``cnnops shape`` and ``--help`` must start
in about the time Python needs for typer and rich.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cnnops import __version__
from cnnops.errors import CnnopsError


def new_app() -> typer.Typer:
    """A cnnops app with the global options (--version, --debug) and no commands yet."""
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
    app.callback()(main_callback)
    return app


F = TypeVar("F", bound=Callable[..., Any])
_state = {"debug": False}


def stdout_console():
    from rich.console import Console

    class ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (``| head``): stop quietly, exit 0 — nothing was wrong with the input."""
            _silence_stdout()
            raise SystemExit(0)

    return ResultConsole(highlight=False, soft_wrap=False, emoji=False)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)  # ":abc:" in a message stays text


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
            raise fail(exc.worded(option_text), exc.exit_code) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(0) from None
        except MemoryError:
            if debug:
                raise
            raise fail(
                "out of memory — use a smaller input, or a lower --max-elements to be told before it happens"
            ) from None
        except Exception as exc:  # a bug: say so briefly, without a traceback unless asked
            if debug:
                raise
            raise fail(
                f"internal error ({type(exc).__name__}: {exc}) — please re-run with --debug and report it"
            ) from None

    return wrapper  # type: ignore[return-value]


def option_text(name: str, value: str | None) -> str:
    """How a setting named in a library message reads on the command line: ``--max-elements``,
    ``--engine numpy``."""
    flag = "--" + name.replace("_", "-")
    return flag if value is None else f"{flag} {value}"


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
    from cnnops.spec.signatures import known_names

    # shells filter case-sensitively: keep what was typed and complete the rest of the name
    return [
        incomplete + name[len(incomplete) :] for name in known_names() if name.lower().startswith(incomplete.lower())
    ]


def read_stage_args(stage_texts: list[str] | None, file: Path | None) -> Any:
    """Stages from the command line, then from ``-f FILE`` (``-``: stdin), through the one parser."""
    from cnnops.spec import parse_stages, read_stage_file

    stages = parse_stages(stage_texts or [])
    if file is not None:
        stages = stages + read_stage_file(str(file), stdin=sys.stdin)
    return stages


def emit_text(text: str) -> None:
    """Write a finished result (a JSON document) to stdout in one piece."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


#: the full app; the command modules register on it
app = new_app()
