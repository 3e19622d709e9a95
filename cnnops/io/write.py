"""Write results: a .json document or a .npy array, atomically (a reader sees the old file or the whole
new one, never a part)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from cnnops.errors import InputError
from cnnops.io.jsontext import array_to_json, dumps

if TYPE_CHECKING:
    import numpy as np

OUTPUT_SUFFIXES = (".json", ".npy")


def write_output(path: str, data: np.ndarray, *, indices: np.ndarray | None = None, doc: dict | None = None) -> None:
    """Write ``--output``: a .json document (``doc``, or shape, data and indices) or a .npy array, atomically."""
    import numpy as np

    suffix = _output_suffix(path)
    if suffix == ".json":
        if doc is None:
            doc = {"shape": list(np.shape(data)), "data": array_to_json(np.asarray(data))}
            if indices is not None:
                doc["indices"] = np.asarray(indices).tolist()
        payload = (dumps(doc) + "\n").encode("utf-8")
    else:
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data), allow_pickle=False)
        payload = buffer.getvalue()
    atomic_write_bytes(path, payload)


def check_output_path(path: str) -> None:
    """Fail before any work starts if ``--output`` cannot be written."""
    _output_suffix(path)
    _check_output_location(path)


def check_writable(path: str) -> None:
    """Fail before any work starts if a file (a picture, say) cannot be written at ``path``."""
    _check_output_location(path)


def _output_suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"output file '{path}' must end in .json or .npy")
    return suffix


def _check_output_location(path: str) -> str:
    """The directory ``path`` will be written in, after checking that it can be."""
    label = f"output file '{path}'"
    if not path or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise InputError(f"{label} is a directory — give a file name such as {os.path.join(path or '.', 'out.json')}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise InputError(f"{label} cannot be written: directory '{directory}' does not exist — create it first")
    if not os.path.isdir(directory):
        raise InputError(f"{label} cannot be written: '{directory}' is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{label} cannot be written: directory '{directory}' is not writable")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise InputError(f"{label} exists and is not a regular file — choose another name")
    return directory


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    directory = _check_output_location(path)
    mode = _new_file_mode(path)
    try:
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"output file '{path}' cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if _deferred is None:
                os.fsync(f.fileno())
        os.replace(temp_path, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temp_path)
        if isinstance(exc, OSError):
            raise InputError(f"output file '{path}' cannot be written: {exc.strerror or exc}") from None
        raise
    if _deferred is None:
        _fsync_directory(directory)
    else:
        _deferred.add(directory)


#: directories written into while syncing is deferred (None: every write syncs at once)
_deferred: set[str] | None = None


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
        yield
    finally:
        directories, _deferred = _deferred, None
        if directories:
            with suppress(AttributeError):
                os.sync()
            for directory in directories:
                _fsync_directory(directory)


def _new_file_mode(path: str) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask (mkstemp uses 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
