"""Write results: a .json document or a .npy array, atomically (a reader sees the old file or the whole
new one, never a part)."""

from __future__ import annotations

import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from io import BytesIO
from typing import TYPE_CHECKING, Any, BinaryIO

from cnnops.errors import InputError
from cnnops.io.deferral import signals_deferred
from cnnops.io.jsontext import write_json
from cnnops.io.release import hold, let_go, let_go_held
from cnnops.text import echo

if TYPE_CHECKING:
    import numpy as np

OUTPUT_SUFFIXES = (".json", ".npy")
#: the longest file name (in bytes) most file systems take, when the system does not say
NAME_MAX = 255
TEMP_TAIL = ".tmp"
_RANDOM = 8  # characters of a temporary name between the file's name and .tmp
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_ATTEMPTS = 10_000  # names tried before giving up (as tempfile.TMP_MAX)
_counter = itertools.count()  # next() is atomic: threads writing at once get different numbers


def write_output(path: str, data: np.ndarray, *, indices: np.ndarray | None = None, doc: dict | None = None,
                 parents: bool = False) -> None:  # fmt: skip
    """Write ``--output``: a .json document (``doc``, or shape, data and indices) or a .npy array, atomically.
    Both are streamed into the file: nothing beyond the array itself is held in memory. ``parents``:
    create missing directories on the way (as ``--output-dir`` does for the inputs' folders)."""
    import numpy as np

    if parents:
        make_parents(path)
    suffix = _output_suffix(path)
    if suffix == ".json":
        if doc is None:
            doc = {"shape": list(np.shape(data)), "data": np.asarray(data)}
            if indices is not None:
                doc["indices"] = np.asarray(indices)
        atomic_write(path, lambda stream: write_json(doc, stream))
    else:  # a .npy file is a header and the array's bytes: written straight to the file, unbuffered
        atomic_write(path, lambda stream: write_npy(stream, np.asarray(data)), buffered=False)


def write_npy(stream: BinaryIO, array: np.ndarray) -> None:
    """``np.save``'s bytes, written with ``stream.write`` (ndarray.tofile would hide a full disk behind "N
    requested and M written"): a C-ordered array of numbers straight from its memory, anything else
    through numpy's own writer, which copies it out in blocks."""
    import numpy as np
    from numpy.lib import format as npy

    if array.flags.c_contiguous and array.dtype.kind in "biuf" and array.size and array.ndim <= 32:
        key = (array.dtype.str, array.shape)
        header = _npy_headers.get(key)
        if header is None:  # the same for every array of this type and shape: made once
            buffer = BytesIO()
            npy.write_array_header_1_0(buffer, npy.header_data_from_array_1_0(array))
            header = buffer.getvalue()
            if len(_npy_headers) >= 64:
                _npy_headers.clear()
            _npy_headers[key] = header
        body = memoryview(array.reshape(-1)).cast("B")  # type: ignore[arg-type]
        write_all = getattr(stream, "write_all", None)
        if write_all is not None:  # one system call for both
            write_all(header, body)
        else:
            stream.write(header)
            stream.write(body)
    else:
        np.save(_Writer(stream), array, allow_pickle=False)


#: .npy headers made so far, by dtype and shape (a batch writes many arrays of one shape)
_npy_headers: dict[tuple[str, tuple[int, ...]], bytes] = {}


class _Writer:
    """Just ``write``: what numpy needs to stream a .npy file."""

    def __init__(self, stream: BinaryIO):
        self.write = stream.write


class _Unbuffered:
    """Writes straight to a file descriptor, each one whole (``os.write`` may write less than it is given):
    for output written in a few large pieces, without a buffer object and its system calls."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done, total = os.write(self.fd, view), len(view)
        while done < total:
            done += os.write(self.fd, view[done:])
        return total

    def write_all(self, *parts: Any) -> None:
        """The parts one after another, in one system call when the system has writev."""
        writev = getattr(os, "writev", None)
        if writev is None:
            for part in parts:
                self.write(part)
            return
        done = writev(self.fd, parts)
        for part in parts:  # a short write (not expected for a file): the rest as usual
            size = memoryview(part).nbytes
            if done < size:
                self.write(memoryview(part).cast("B")[done:])
            done = max(0, done - size)


def check_output_path(path: str, *, parents: bool = False) -> None:
    """Fail before any work starts if ``--output`` cannot be written (with ``parents``, missing
    directories on the way will be created)."""
    _output_suffix(path)
    _check_output_location(path, parents=parents)


def check_writable(path: str, *, parents: bool = False) -> None:
    """Fail before any work starts if a file (a picture, say) cannot be written at ``path``."""
    _check_output_location(path, parents=parents)


def make_parents(path: str) -> None:
    """Create the missing directories above ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    if _batch is not None and directory in _batch.made:
        return  # made (or found) earlier in this batch
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the directory '{echo(directory)}': {exc.strerror or exc}") from None
    if _batch is not None:
        _batch.made.add(directory)


def file_suffix(path: str) -> str:
    """The suffix, lower case; a name that is only a suffix (``.json``) counts as that suffix."""
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    if not suffix and name.startswith(".") and name.count(".") == 1 and len(name) > 1:
        suffix = name
    return suffix.lower()


def _output_suffix(path: str) -> str:
    suffix = file_suffix(path)
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"output file '{echo(path)}' must end in .json or .npy")
    return suffix


def _check_output_location(path: str, *, parents: bool = False) -> str:
    """The directory ``path`` will be written in, after checking that it can be (with ``parents``, that
    its nearest existing directory can take the missing ones). Within :func:`same_directories` each
    directory is checked once; the file's own checks are made every time."""
    return _location(path, parents=parents)[0]


def _location(path: str, *, parents: bool = False) -> tuple[str, int, os.stat_result | None]:
    """:func:`_check_output_location`, the longest name its file system takes, and the file at ``path``
    now (None: nothing)."""
    label = f"output file '{echo(path)}'"
    if not path or path.endswith(("/", os.sep)):
        raise _is_a_directory(path, label)
    try:
        found: os.stat_result | None = os.lstat(path)
    except (OSError, ValueError):
        found = None
    link = found is not None and stat.S_ISLNK(found.st_mode)
    if link:  # what the link points to (None: nothing, which is not a file either)
        try:
            found = os.stat(path)
        except (OSError, ValueError):
            found = None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise _is_a_directory(path, label)
    absolute = os.path.abspath(path)
    key = (os.path.dirname(absolute), parents)
    checked = _batch.directories.get(key) if _batch is not None else None
    known = checked is not None
    if checked is None:
        checked = _check_directory(key[0], label, parents=parents)
        if _batch is not None:
            _batch.directories[key] = checked
    directory, limit = checked
    if (link and found is None) or (found is not None and not stat.S_ISREG(found.st_mode)):
        raise InputError(f"{label} exists and is not a regular file — choose another name")
    parts = [os.path.basename(absolute)] if known else absolute.split(os.sep)  # the folders' names: checked once
    if any(len(os.fsencode(part)) > limit for part in parts):
        raise InputError(f"{label} has a name longer than {limit} bytes, the longest this file system takes — "
                         "choose a shorter name")  # fmt: skip
    return directory, limit, found


def _is_a_directory(path: str, label: str) -> InputError:
    example = echo(os.path.join(path or ".", "out.json"))
    return InputError(f"{label} is a directory — give a file name such as {example}")


def _check_directory(directory: str, label: str, *, parents: bool) -> tuple[str, int]:
    """The directory a file goes in (with ``parents``: its nearest existing one) after checking that a
    file can be made there, and the longest name its file system takes."""
    if parents:
        while not os.path.lexists(directory) and os.path.dirname(directory) != directory:
            directory = os.path.dirname(directory)
    if not os.path.exists(directory):
        raise InputError(f"{label} cannot be written: directory '{echo(directory)}' does not exist — create it first")
    if not os.path.isdir(directory):
        raise InputError(f"{label} cannot be written: '{echo(directory)}' is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{label} cannot be written: directory '{echo(directory)}' is not writable")
    return directory, name_max(directory)


def name_max(directory: str) -> int:
    """The longest file name, in bytes, the file system of ``directory`` takes."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX")) or NAME_MAX
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def temp_prefix(directory: str, name: str, limit: int | None = None) -> str:
    """``.NAME.``, cut so that the whole temporary name (prefix, random part, ``.tmp``) fits NAME_MAX
    (``limit``: the directory's, when known)."""
    room = (name_max(directory) if limit is None else limit) - len(". .") - _RANDOM - len(TEMP_TAIL) + 1
    encoded = os.fsencode(name)
    if len(encoded) > room:
        encoded = encoded[: max(1, room)]
    return "." + os.fsdecode(encoded) + "."


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    atomic_write(path, lambda stream: stream.write(payload))


def atomic_write(path: str, write: Callable[[BinaryIO], object], *, buffered: bool = True) -> None:
    """Let ``write`` fill a temporary file next to ``path``, then rename it onto ``path``: readers see the
    old file or the whole new one, never a part. On any failure or interruption (Ctrl-C, SIGTERM, a
    full disk) the temporary file is removed and ``path`` is left as it was. ``buffered=False``: each of
    ``write``'s writes goes straight to the file (for a few large pieces)."""
    directory, limit, found = _location(path)
    mode = None if found is None else found.st_mode & 0o7777  # an existing file keeps its permissions
    temp_path: str | None = None
    try:
        with signals_deferred():
            fd, temp_path = _create_temp(directory, os.path.basename(path), limit, 0o600 if mode is not None else 0o666)
        if buffered:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                _settle(f.fileno(), mode)
        else:
            try:
                write(_Unbuffered(fd))  # type: ignore[arg-type]
                _settle(fd, mode)
            finally:
                os.close(fd)
        held = hold(path) if found is not None and _deferred is not None else None
        try:
            os.replace(temp_path, path)
        finally:
            if held is not None:
                let_go(held)  # the replaced file is freed after the rename, on the closing thread
        temp_path = None
    except BaseException as exc:
        if temp_path is not None:
            with suppress(OSError):
                os.unlink(temp_path)
        if isinstance(exc, OSError):
            raise InputError(f"output file '{echo(path)}' cannot be written: {exc.strerror or exc}") from None
        raise
    if _deferred is None:
        _fsync_directory(directory)
    else:
        _deferred.add(directory)


def _settle(fd: int, mode: int | None) -> None:
    """A written temporary file before its rename: the replaced file's permissions, and on the disk
    unless the batch syncs at its end."""
    if mode is not None:
        os.fchmod(fd, mode)
    if _deferred is None:
        os.fsync(fd)


def _create_temp(directory: str, name: str, limit: int, mode: int) -> tuple[int, str]:
    """A new file ``.NAME.XXXXXXXX.tmp`` in ``directory`` (``XXXXXXXX``: this process's id and a count, so
    no two writers pick the same name; a name taken already is passed over), opened for writing with
    ``mode`` less the umask: what :func:`tempfile.mkstemp` does, without its random names."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fds: list[int] = []
    temp = _new_temp(os.path.join(directory, temp_prefix(directory, name, limit)), "file",
                     lambda path: fds.append(os.open(path, flags, mode)))  # fmt: skip
    return fds[0], temp


def make_temp_directory(directory: str, name: str) -> str:
    """A new folder ``.NAME.XXXXXXXX.tmp`` in ``directory`` for files that are moved into place together,
    made with mode 0o777 less the umask, as any new folder (:func:`tempfile.mkdtemp` makes it 0o700,
    and a staging folder renamed into place would keep that)."""
    return _new_temp(os.path.join(directory, temp_prefix(directory, name)), "folder",
                     lambda path: os.mkdir(path, 0o777))  # fmt: skip


def _new_temp(prefix: str, what: str, make: Callable[[str], object]) -> str:
    """The first name ``PREFIX + tag + .tmp`` that ``make`` creates (it raises FileExistsError for a name
    taken already)."""
    pid = os.getpid()
    for _ in range(_TEMP_ATTEMPTS):
        temp = f"{prefix}{_temp_tag(pid, next(_counter))}{TEMP_TAIL}"
        try:
            make(temp)
            return temp
        except FileExistsError:
            continue
    raise FileExistsError(17, f"no usable temporary {what} name found", prefix)


def _temp_tag(pid: int, count: int) -> str:
    """Eight characters of ``[a-z0-9_]`` from a process id and a count: ids below 37⁵ and counts below 37³
    give distinct tags (a count past that wraps round; an older file of that name is passed over)."""
    value = (pid % 37**5) * 37**3 + count % 37**3
    tag = []
    for _ in range(_RANDOM):
        value, digit = divmod(value, 37)
        tag.append(_TEMP_CHARS[digit])
    return "".join(reversed(tag))


#: directories written into while syncing is deferred (None: every write syncs at once)
_deferred: set[str] | None = None


class _Batch:
    """What the writes of one batch learn once: each directory checked (and its longest name), each
    directory made."""

    def __init__(self) -> None:
        self.directories: dict[tuple[str, bool], tuple[str, int]] = {}
        self.made: set[str] = set()


_batch: _Batch | None = None


@contextmanager
def same_directories() -> Iterator[None]:
    """Many files checked or written at once: each directory is checked (and made) once, not once per
    file — a directory that goes away meanwhile makes its files' writes fail cleanly."""
    global _batch
    if _batch is not None:  # already inside one
        yield
        return
    _batch = _Batch()
    try:
        yield
    finally:
        _batch = None


@contextmanager
def deferred_sync() -> Iterator[None]:
    """Many files written as one batch: each still appears whole (written to a temp file, renamed into
    place), but they reach the disk with one sync at the end instead of two per file."""
    global _deferred
    if _deferred is not None:  # already inside a batch
        yield
        return
    _deferred = set()
    try:
        with same_directories():
            yield
    finally:
        let_go_held()
        directories, _deferred = _deferred, None
        if directories:
            _sync_filesystems(directories)
            for directory in directories:
                _fsync_directory(directory)


def _sync_filesystems(directories: set[str]) -> None:
    """Everything written into ``directories`` onto the disk: ``syncfs`` of each filesystem they are on
    (Linux), or ``sync`` of every filesystem where there is no syncfs or it fails — never another disk's
    pending writes (a copy to a slow USB stick) waited for when syncfs can be had."""
    syncfs = _syncfs()
    seen: set[int] = set()
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            continue  # gone: its own fsync says nothing either
        try:
            device = os.fstat(fd).st_dev
            if device in seen:
                continue
            seen.add(device)
            if syncfs is None or syncfs(fd) != 0:
                syncfs = None
                break
        finally:
            os.close(fd)
    if syncfs is None:
        with suppress(AttributeError):
            os.sync()


def _syncfs() -> Any:
    """libc's ``syncfs(fd)`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ImportError):
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
    return function


def take_deferred() -> set[str]:
    """The directories written into since the last call whose sync is deferred (emptied): a worker
    process hands them to the parent, which syncs them with its own at the end of the batch."""
    if _deferred is None:
        return set()
    taken = set(_deferred)
    _deferred.clear()
    return taken


def defer(directories: set[str] | frozenset[str]) -> None:
    """Directories written into by another process: synced with this batch's own at its end."""
    if _deferred is not None:
        _deferred.update(directories)
    else:
        for directory in directories:
            _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
