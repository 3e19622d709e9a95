"""Stop signals in the command line: Ctrl-C (SIGINT), ``kill`` (SIGTERM) and a closed terminal (SIGHUP)
end cnnops the same way — temporary files removed, exit status 128 + the signal's number — however early
they come. Installed first thing by :func:`cnnops.__main__.main` (this module imports nothing heavy), so
that no signal before the command is running ends in a traceback; a signal that comes while a module is
being imported is acted on once the import is over (an exception raised inside the import machinery can
be swallowed or turned into another)."""

from __future__ import annotations

import signal
import sys
from typing import Any

__all__ = ["Interrupted", "handle_signals"]


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so that it cleans up as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum


#: stop signals that came while a module was being imported, acted on once the import is over
_pending: list[int] = []
#: how soon a signal that came during an import is looked at again (seconds)
RETRY_SECONDS = 0.002


def _in_import(frame: Any) -> bool:
    """Whether the interrupted code runs inside the import machinery (a module's body, a class being made
    there): an exception raised there may be swallowed ("Exception ignored in … _get_module_lock") or
    turned into another (``__set_name__``), and the command would go on or fail with a wrong message."""
    depth = 0
    while frame is not None and depth < 256:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _after_import(signum: int, frame: Any) -> bool:
    """True when the signal came during an import: it is kept, and looked at again every
    RETRY_SECONDS (SIGALRM) until the import is over, where its handler acts on it."""
    if not hasattr(signal, "setitimer") or not _in_import(frame):
        return False
    if signum not in _pending:
        _pending.append(signum)
    signal.signal(signal.SIGALRM, _retry)
    signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
    return True


def _retry(alarm: int, frame: Any) -> None:
    if not _pending:
        return
    if _in_import(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    signum = _pending.pop(0)
    (_on_interrupt if signum == signal.SIGINT else _on_signal)(signum, frame)


def _on_signal(signum: int, frame: Any) -> None:
    if _noted(signum) or _after_import(signum, frame):
        return
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the program at once
    raise Interrupted(signum)


def _on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: KeyboardInterrupt, as Python's own handler raises it (every time), unless a step that must
    not be cut in two is running."""
    if _noted(signum) or _after_import(signum, frame):
        return
    raise KeyboardInterrupt


def _noted(signum: int) -> bool:
    """True when a step that must not be cut in two is running (:mod:`cnnops.io.deferral`; a signal that
    another thread took reaches the handler in the middle of it): the signal is noted there and raised
    again at the step's end. Looked up, not imported: no step has run before that module is loaded (or
    while it is being loaded)."""
    note = getattr(sys.modules.get("cnnops.io.deferral"), "note", None)
    return note is not None and note(signum)


def handle_signals() -> None:
    """SIGTERM (``kill``, ``timeout``) and SIGHUP (a closed terminal) stop cnnops as Ctrl-C does: temporary
    files are removed and the exit status is 128 + the signal's number (143, 129). A signal that is
    ignored (``nohup``) stays ignored. None of them cuts a step in two (:func:`_noted`)."""
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)
