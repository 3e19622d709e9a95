"""``python -m cnnops`` and the ``cnnops`` console script."""

import sys
from typing import NoReturn


def main() -> NoReturn:
    """Run cnnops: a command group that imports and builds only the command being run
    (:mod:`cnnops.cli.lazy`), so every command starts in about the time of its own imports."""
    import gc

    # Start-up allocates some 100 000 objects (typer, NumPy, cnnops), and nearly all of them live to the
    # end. At the default threshold (700) the collector scanned them some 50 times: 5-7 ms of a 140 ms
    # run, more than any one of cnnops' modules takes to import. A young collection every 100 000
    # allocations still finds the few reference cycles that a long batch leaves.
    gc.set_threshold(100_000)

    from cnnops.cli.signals import handle_signals

    handle_signals()  # first: a stop signal from here on ends cnnops without a traceback
    try:
        from cnnops.engines import numpy_blas_on_one_thread

        numpy_blas_on_one_thread()

        from cnnops.cli.lazy import lazy_app

        lazy_app()(prog_name="cnnops")  # click's standalone mode ends every run with SystemExit
    except SystemExit as done:
        leave(_interrupted_code(done))
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP before the command ran: no traceback
        leave(getattr(exc, "exit_code", 130))
    except OSError as exc:
        # what click writes itself (--help, --version, a usage message) to a full or broken stream; a
        # command's own writes are reported inside it (cli.common.user_errors)
        leave(_unwritable(exc))
    leave(0)


def _interrupted_code(done: SystemExit) -> object:
    """The exit status: SystemExit's, but 128 + the signal's number for a SIGTERM or SIGHUP that came
    before the command took over (while its module was imported), which typer turns into 130 as for
    Ctrl-C — the exception behind it knows its signal."""
    if done.code == 130:
        seen, exc = 0, done.__context__
        while exc is not None and seen < 8:
            code = getattr(exc, "exit_code", None)
            if isinstance(exc, KeyboardInterrupt) and isinstance(code, int):
                return code
            exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return done.code


def _unwritable(exc: OSError) -> int:
    """The exit status for click's own output that could not be written (a closed pipe: 0, as
    ``| head`` expects), after one ``Error:`` line when stderr can take it."""
    import errno
    import os

    if exc.errno == errno.EPIPE:
        return 0
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit cannot fail again
    except (OSError, AttributeError, ValueError):
        pass
    try:
        print(f"Error: cannot write the output: {exc.strerror or exc}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    return 1


def leave(code: object) -> NoReturn:
    """End the process with ``code`` as ``sys.exit`` would, without the interpreter's teardown.

    Teardown frees every module and object one by one: 10–15 ms after ``cnnops shape``, 20–50 ms after
    a run that loaded NumPy — as long as some commands take in all. What it does that matters to a
    command line is done here: the exit handlers run (``atexit``: multiprocessing's, say) and stdout and
    stderr are flushed. Files are never left to teardown: every output is written, synced and closed by
    then (``io.write``), and a failed write to stdout has been reported already, so a flush that fails
    here changes nothing. An exception other than SystemExit (a bug) is not caught: Python reports it.
    After ``--model``, which runs the user's module, the exit is Python's own, teardown included."""
    import atexit
    import os

    if "cnnops.engines.torch_model" in sys.modules:
        # `--model` ran the user's own code, which may have left files open for teardown to flush
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed reader (said already), or a stream closed by the command
            pass
    os._exit(status % 256)  # what the operating system keeps of sys.exit(status)


if __name__ == "__main__":
    main()
