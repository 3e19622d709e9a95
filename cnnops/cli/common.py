"""What every cnnops command shares: the app and its options, the two consoles, the error path.

torch, numpy and PIL are never imported at module level: ``cnnops shape`` and ``--help`` must start
in about the time Python needs for typer and rich.
"""

import errno
import functools
import gc
import os
import sys
import warnings
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
#: the width tables are laid out in, whatever COLUMNS or the terminal says
MIN_COLUMNS, MAX_COLUMNS = 20, 1000
OUT_OF_MEMORY = "out of memory — use a smaller input, or a lower --max-memory to be told before it happens"


class StdoutError(CnnopsError):
    """The result cannot be written to stdout (closed, or its disk is full)."""


def _console(cls: Any = None, **kwargs: Any) -> Any:
    """A rich console whose width is kept within MIN_COLUMNS..MAX_COLUMNS and which, on an output that
    cannot encode the drawing characters, prints their ASCII stand-ins (:mod:`cnnops.render.fallback`)."""
    from rich.console import Console

    from cnnops.render.fallback import translated, translator

    class SafeConsole(cls or Console):  # type: ignore[misc]
        def print(self, *objects: Any, **options: Any) -> None:
            if self.translate is not None:
                objects = tuple(translated(item, self.translate) for item in objects)
            super().print(*objects, **options)

        def rule(self, title: Any = "", **options: Any) -> None:
            super().rule(translated(title, self.translate) if self.translate else title, **options)

    console = SafeConsole(highlight=False, emoji=False, **kwargs)  # ":abc:" in a message stays text
    console.width = min(max(console.width, MIN_COLUMNS), MAX_COLUMNS)
    console.translate = translator(console.encoding)
    if console.translate is not None:
        stream = sys.stderr if kwargs.get("stderr") else sys.stdout
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]  # whatever the stand-ins miss prints as "?"
        except (AttributeError, ValueError, OSError):
            pass
    return console


def stdout_console():
    """The console results are printed on: a rich console; on a pipe or a file, a :class:`PlainStdout`,
    which prints plain tables without importing rich's console and hands anything else to one."""
    if sys.stdout is None:
        raise StdoutError("stdout is closed, so the result cannot be printed — give --output FILE, or --quiet")
    width = _plain_stdout_width()
    return _rich_stdout_console() if width is None else PlainStdout(width)


class PlainStdout:
    """The stdout console as rich would make it on a pipe or a file without colour: no terminal, no colour
    system, the same width (:func:`_plain_stdout_width`). :func:`cnnops.render.plain.print_table` needs
    nothing more; any other use (``print``, ``rule``, …) goes to the rich console, made on first use."""

    is_terminal = False
    color_system = None
    record = False
    translate = None

    def __init__(self, width: int) -> None:
        self.width = width
        self._rich: Any = None

    @property
    def file(self) -> Any:
        return getattr(sys.stdout, "rich_proxied_file", sys.stdout)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_rich":
            raise AttributeError(name)
        if self._rich is None:
            self._rich = _rich_stdout_console()
        return getattr(self._rich, name)


def _plain_stdout_width() -> int | None:
    """The width rich's console would have on stdout, when that console would be plain — not a terminal
    (stdout's isatty, nothing forcing one: FORCE_COLOR, TTY_COMPATIBLE, Jupyter), and an encoding that shows
    every drawing character; else None. As rich: COLUMNS, or the size of the first terminal among stdin,
    stdout and stderr, or 80; then kept within MIN_COLUMNS..MAX_COLUMNS as :func:`_console` does."""
    import builtins

    if sys.platform == "win32" or hasattr(builtins, "get_ipython") or "FORCE_COLOR" in os.environ or \
            "TTY_COMPATIBLE" in os.environ:  # fmt: skip
        return None
    file = getattr(sys.stdout, "rich_proxied_file", sys.stdout)
    try:
        if file is None or file.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        return None
    from cnnops.render.fallback import translator

    if translator((getattr(file, "encoding", "utf-8") or "utf-8").lower()) is not None:
        return None
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    else:
        width = 0
        for descriptor in _STD_STREAMS:
            try:
                width = os.get_terminal_size(descriptor)[0]
            except (AttributeError, ValueError, OSError):
                continue
            break
        width = width or 80
    return min(max(width, MIN_COLUMNS), MAX_COLUMNS)


def _fileno(stream: Any, default: int) -> int:
    try:
        return stream.fileno()
    except Exception:
        return default


#: the descriptors rich's console asks for the terminal's size, in its order
_STD_STREAMS = (_fileno(sys.__stdin__, 0), _fileno(sys.__stdout__, 1), _fileno(sys.__stderr__, 2))


def _rich_stdout_console() -> Any:
    from rich.console import Console

    class ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (``| head``): stop quietly, exit 0 — nothing was wrong with the input."""
            _silence_stdout()
            raise SystemExit(0)

    return _console(ResultConsole, soft_wrap=False)


def stderr_console():
    return _console(stderr=True)


def plain_output(console) -> bool:
    """No box drawing or colour when stdout is a file or a pipe."""
    return not console.is_terminal


def print_error(message: str, console: Any = None) -> None:
    """``Error: …`` on stderr, as one printable line (control characters escaped, cut when huge)."""
    from cnnops.text import message_line

    line = message_line(message)
    try:
        from rich.text import Text

        text = Text.assemble(("Error:", "bold red"), " ", line)
        (console or stderr_console()).print(text, soft_wrap=True)
    except (MemoryError, ImportError, OSError, ValueError):
        if sys.stderr is not None:  # the plainest way there is
            try:
                sys.stderr.write(f"Error: {line}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def fail(message: str, code: int = 1) -> typer.Exit:
    print_error(message)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn CnnopsError into ``Error: …`` on stderr and its exit code; never a traceback. Warnings from
    the libraries (NumPy's RuntimeWarnings, say) are not shown; a full disk, a closed or full stdout
    and running out of memory are each one line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _state["debug"] or os.environ.get("CNNOPS_DEBUG") == "1"
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
            try:
                return func(*args, **kwargs)
            except CnnopsError as exc:
                if debug:
                    raise
                raise fail(exc.worded(option_text), exc.exit_code) from None
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except KeyboardInterrupt as exc:
                raise typer.Exit(getattr(exc, "exit_code", 130)) from None
            except BrokenPipeError:
                _silence_stdout()
                raise typer.Exit(0) from None
            except MemoryError:
                if debug:
                    raise
                # said below, once this block has let go of the traceback and the memory its frames hold
            except OSError as exc:
                if debug:
                    raise
                if exc.errno == errno.EPIPE:
                    _silence_stdout()
                    raise typer.Exit(0) from None
                if exc.filename:  # a file the core did not word an error for
                    from cnnops.text import echo

                    raise fail(f"cannot use '{echo(os.fsdecode(exc.filename))}': {exc.strerror or exc}") from None
                _silence_stdout()  # stdout: its flush at exit would fail again
                raise fail(f"cannot write the result to stdout: {exc.strerror or exc}") from None
            except UnicodeEncodeError as exc:
                if debug:
                    raise
                raise fail(f"the output's encoding ({exc.encoding}) cannot show the result — set "
                           "PYTHONIOENCODING=utf-8") from None  # fmt: skip
            except Exception as exc:  # a bug: say so briefly, without a traceback unless asked
                if debug:
                    raise
                raise fail(
                    f"internal error ({type(exc).__name__}: {exc}) — please re-run with --debug and report it"
                ) from None
        gc.collect()
        raise fail(OUT_OF_MEMORY)

    return wrapper  # type: ignore[return-value]


def option_text(name: str, value: str | None) -> str:
    """How a setting named in a library message reads on the command line: ``--max-elements``,
    ``--engine numpy``."""
    flag = "--" + name.replace("_", "-")
    return flag if value is None else f"{flag} {value}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
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
        if str(file).lower().endswith((".py", ".onnx")):
            from cnnops.errors import UsageError

            raise UsageError(f"{file} is a model file: cnnops shape sizes it (cnnops shape SHAPE -f {file}); "
                             "this command computes with stage text")  # fmt: skip
        stages = stages + read_stage_file(str(file), stdin=sys.stdin)
    return stages


def emit_text(text: str) -> None:
    """Write a finished result (a JSON document) to stdout in one piece."""
    _write_stdout([(text if text.endswith("\n") else text + "\n").encode("utf-8")])


def emit_document(doc: Any) -> None:
    """Write a result document to stdout as JSON, streamed block by block (UTF-8, whatever the locale)."""
    from cnnops.io.jsontext import json_pieces

    _write_stdout(json_pieces(doc), newline=True)


def _write_stdout(pieces: Any, newline: bool = False) -> None:
    """The pieces of one document (one line of ``--jsonl``) on stdout, whole: a Ctrl-C, SIGTERM or SIGHUP
    that comes meanwhile stops cnnops once the document is out, so that a reader (``jq``) never gets half
    of it. (The wait is for the document to be written: a reader that stops reading holds it up.)"""
    if sys.stdout is None:
        raise StdoutError("stdout is closed, so the result cannot be printed — give --output FILE, or --quiet")
    from cnnops.io.deferral import signals_deferred

    try:
        sys.stdout.flush()
        stream = sys.stdout.buffer
        with signals_deferred():
            for piece in pieces:
                stream.write(piece)
            if newline:
                stream.write(b"\n")
            stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _silence_stdout()
        raise StdoutError(f"cannot write the result to stdout: {exc.strerror or exc}") from None


#: the full app; the command modules register on it
app = new_app()
