"""Steps that a stop signal must not cut in two — making a temporary file and noting its name, forking
workers, writing a document to stdout — and the signals that arrive meanwhile.

:func:`signals_deferred` holds back Ctrl-C, SIGTERM and SIGHUP for the thread that runs the step. A
signal sent to the process can still be taken by another of its threads (the closing thread of
:mod:`cnnops.io.release`, OpenBLAS's threads), and CPython then runs the Python handler in the main thread
all the same, in the middle of the step. So cnnops' own handlers first ask :func:`note`: during a step
the signal is noted, and raised again when the last step ends, where the handler acts on it.

Nothing here is imported by a command that writes nothing (``cnnops shape``, ``--help``): a handler finds
this module in ``sys.modules`` or knows that no step is running.
"""

from __future__ import annotations

import _signal
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: the signals held back during a step
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
#: the mask call itself (signal.pthread_sigmask turns its result into enum members on every call)
_sigmask: Callable[..., Any] | None = getattr(_signal, "pthread_sigmask", None)
#: one entry per step running now, on any thread (list.append and list.pop are atomic)
_steps: list[None] = []
#: the signals noted during the steps, raised again when the last one ends
_noted: set[int] = set()


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold back Ctrl-C, SIGTERM and SIGHUP while a step that must not be cut in two runs (creating a temp
    file and noting its name): they arrive right after it, where the cleanup can see the file. A signal
    another thread took meanwhile is noted by the handler (:func:`note`) and raised again here."""
    _steps.append(None)
    previous = None
    try:
        if _sigmask is not None:
            try:
                previous = _sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
            except (OSError, ValueError, TypeError):  # no signal masks here
                previous = None
        yield
    finally:
        if previous is not None:
            _sigmask(signal.SIG_SETMASK, previous)  # type: ignore[misc]  # held ones arrive: noted (a step still runs)
        _steps.pop()
        if _noted and not _steps:
            _raise_noted()


def note(signum: int) -> bool:
    """For a signal handler: True when a step is running — the signal is noted and raised again at the end
    of the last step, and the handler returns at once; False when the handler should act now."""
    if not _steps:
        return False
    _noted.add(signum)
    return True


def _raise_noted() -> None:
    """The noted signals, raised again: on the main thread their handlers run here and now; from another
    thread (which may hold them back for good) they are sent to the process, whose main thread acts."""
    import threading

    here = threading.current_thread() is threading.main_thread() or os.name != "posix"
    while _noted:
        try:
            signum = _noted.pop()
        except KeyError:  # another thread raised it
            break
        if here:
            signal.raise_signal(signum)
        else:
            os.kill(os.getpid(), signum)


def forget_steps() -> None:
    """In a process forked during a step: the parent's steps and the signals it noted are not its own."""
    _steps.clear()
    _noted.clear()
