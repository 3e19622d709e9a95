"""Replaced files let go of after their rename, on a thread of their own, in a batch.

The last reference to a replaced file frees its blocks. Inside ``rename()`` that happens with the
directory locked, and on a file system that discards freed blocks synchronously (ext4 mounted with
``discard``) every other create or rename in the directory — another worker's — waits for that disk
command. :func:`hold` keeps the file about to be replaced open (``O_PATH``) across the rename;
:func:`let_go` closes it afterwards on a closing thread, so the batch goes on while the disk works;
:func:`let_go_held` waits for the thread (before forking workers, at the end of a worker and of a batch).
"""

from __future__ import annotations

import os
from contextlib import suppress

from cnnops.io.deferral import signals_deferred

#: O_PATH (Linux): a file held by a reference that neither reads nor writes it (0: none here)
_O_PATH = getattr(os, "O_PATH", 0)


def hold(path: str) -> int | None:
    """In a batch, the file about to be replaced, held (O_PATH) until its replacement is done. The last
    reference to a replaced file frees its blocks, and inside rename() that happens with the directory
    locked: on a file system that discards freed blocks synchronously (ext4 with ``discard`` and no
    journal) every other create or rename in the directory — another worker's — waited for that disk
    command, and spun on the lock meanwhile. Held here, the blocks are freed when this reference is
    closed, after the rename, with nothing locked — by a thread of its own (:class:`_Closer`), so that
    the batch goes on while the disk works. None where there is no O_PATH or nothing to hold."""
    if not _O_PATH:
        return None
    try:
        return os.open(path, _O_PATH | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


class _Closer:
    """A thread of this process that closes the files :func:`hold` held, a group of HELD_GROUP at a
    time: each hand-off wakes the thread, some 40 µs of CPU, so the files are handed over in groups."""

    def __init__(self) -> None:
        import queue
        import threading

        self.pid = os.getpid()
        self.pending: list[int] = []  # held files not handed over yet
        self.groups: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="cnnops-close", daemon=True)
        # started inside a step (its signal mask is the thread's from the start): a Ctrl-C, SIGTERM or
        # SIGHUP sent to the process never goes to this thread, but to one that can act on it at once
        with signals_deferred():
            self.thread.start()

    def _run(self) -> None:
        while (group := self.groups.get()) is not None:
            _close_all(group)

    def add(self, fd: int) -> None:
        self.pending.append(fd)
        if len(self.pending) >= HELD_GROUP:
            group, self.pending = self.pending, []
            if self.groups.qsize() * HELD_GROUP >= MAX_HELD:  # the disk is behind: the writer closes them
                _close_all(group)
            else:
                self.groups.put(group)

    def finish(self) -> None:
        if self.pending:
            self.groups.put(self.pending)
            self.pending = []
        self.groups.put(None)
        self.thread.join()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with suppress(OSError):
            os.close(fd)


_closer: _Closer | None = None
#: held files handed to the closing thread at once
HELD_GROUP = 4
#: held files waiting for the closing thread at most: past that the writer closes its own (when the disk
#: frees blocks more slowly than the batch writes files, open files must not pile up to the system's limit)
MAX_HELD = 32


def let_go(fd: int) -> None:
    """Close a held file on the closing thread (started on first use; here, if no thread can start)."""
    global _closer
    if _closer is None or _closer.pid != os.getpid():  # a forked worker starts its own
        try:
            _closer = _Closer()
        except RuntimeError:
            _closer = None
            _close_all([fd])
            return
    _closer.add(fd)


def let_go_held() -> None:
    """Wait until the closing thread has closed every held file (the replaced files' blocks are freed)
    and has ended: at the end of a batch, in a worker before it ends, before forking workers."""
    global _closer
    closer, _closer = _closer, None
    if closer is not None and closer.pid == os.getpid():
        closer.finish()
