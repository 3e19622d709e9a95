"""Array helpers the engine's modules share: float32 inputs, quiet IEEE arithmetic, padding, strided views."""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from cnnops import engines as _engines

_F32 = np.float32


def _quiet(op):
    """IEEE arithmetic without RuntimeWarnings (inf − inf is NaN, as in PyTorch, not a warning)."""

    @functools.wraps(op)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return op(*args, **kwargs)

    return quiet


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=_F32, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


def _offset_view(xp: np.ndarray, offsets, steps, lengths) -> np.ndarray:
    """``xp[..., o : o + (n-1)·s + 1 : s]`` on each trailing dim: the inputs one kernel tap sees."""
    nd = len(offsets)
    index = tuple(slice(o, o + (n - 1) * s + 1, s) for o, s, n in zip(offsets, steps, lengths))
    return xp[(Ellipsis,) + index] if nd else xp


def _pad(x: np.ndarray, pads: list[tuple[int, int]], **how) -> np.ndarray:
    """np.pad over the last dims; a negative amount crops, as torch's F.pad does."""
    if not any(left or right for left, right in pads):
        return x
    lead = x.ndim - len(pads)
    if any(left < 0 or right < 0 for left, right in pads):
        crop = tuple(slice(max(-left, 0), x.shape[lead + i] - max(-right, 0)) for i, (left, right) in enumerate(pads))
        x = x[(Ellipsis,) + crop]
        pads = [(max(left, 0), max(right, 0)) for left, right in pads]
    return np.pad(x, [(0, 0)] * lead + list(pads), **how)


#: elements of the shared zeros :func:`maximum_zero` reads: never written, so its pages stay the kernel's
#: one zero page (no resident memory, always in cache)
_ZEROS_ELEMENTS = 1 << 16


@functools.cache
def _zeros() -> np.ndarray:
    zeros = np.zeros(_ZEROS_ELEMENTS, dtype=_F32)
    zeros.flags.writeable = False
    return zeros


def maximum_zero(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.maximum(x, 0)`` for float32 ``x``, the same bits, several times faster: NumPy's loop against
    a scalar is not vectorised, its loop for two contiguous arrays is, so the zeros are an array."""
    if not x.flags.c_contiguous or (out is not None and not out.flags.c_contiguous):
        return np.maximum(x, _F32(0), out=out)
    y = np.empty(x.shape, dtype=_F32) if out is None else out
    flat, dest, zeros = x.reshape(-1), y.reshape(-1), _zeros()
    for start in range(0, flat.size, zeros.size):
        block = flat[start : start + zeros.size]
        np.maximum(block, zeros[: block.size], out=dest[start : start + block.size])
    return y


def has_negative_zero(x: np.ndarray) -> bool:
    """Whether float32 ``x`` holds a −0: its bits as int32 are the one value INT32_MIN, so a min finds
    it in one pass with no temporary (any layout)."""
    return bool(x.size) and int(x.view(np.int32).min()) == -(2**31)


@functools.cache
def _openblas_threads() -> tuple | None:
    """OpenBLAS's (get, set, processors) thread-count functions in the library NumPy loaded, or None
    elsewhere (processors: the count OpenBLAS starts with when nothing sets one)."""
    import ctypes
    import os

    for path in _engines.bundled_openblas(os.path.dirname(np.__file__)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (
            ("scipy_openblas", "64_"),
            ("openblas", "64_"),
            ("scipy_openblas", ""),
            ("openblas", ""),
        ):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            procs = getattr(lib, f"{prefix}_get_num_procs{suffix}", None) or os.cpu_count
            if get is not None and put is not None:
                put.argtypes = [ctypes.c_int]
                return get, put, procs
    return None


#: the thread count a lowered BLAS is raised back to when a matmul wants it (None: not lowered; 0: the
#: usual count, OpenBLAS having been loaded on one thread), in a process where lowered counts are
#: restored lazily (:func:`blas_for_workers`)
_lowered: int | None = None
_lazily = False
#: NumPy's OpenBLAS was loaded on one thread (cnnops.engines.numpy_blas_on_one_thread): the count is
#: raised to the usual one for the first matmul that wants it, and lowered again only lazily
_started_lowered = _engines.blas_started_on_one_thread
if _started_lowered:
    _lowered, _lazily = 0, True


def blas_for_workers(workers: bool) -> None:
    """Before forking a batch's workers (``workers`` True): BLAS on one thread, raised to the usual count
    only for a matmul that runs on it — and lowered again only lazily. OpenBLAS's threads do not survive a
    fork, raising the count starts them again, and a thread just started spins for some 0.1 s of a core:
    after every memory-bound conv, on the core another worker needs. Every matmul still runs on the count
    it runs on in a single process. After the batch (False): the usual count back, eagerly — unless
    OpenBLAS was loaded on one thread, where the lazy way is the process's own."""
    global _lazily, _lowered
    calls = _openblas_threads()
    if calls is None:
        return
    get, put, _ = calls
    if workers:
        before = get()
        if before != 1:
            put(1)
            _lowered = before if _lowered is None else _lowered
        _lazily = True
    elif not _started_lowered:
        _lazily = False
        if _lowered is not None:
            put(_lowered)
            _lowered = None


@contextlib.contextmanager
def blas_threads(count: int | None):
    """Run BLAS on ``count`` threads inside the block (None: the usual count). A memory-bound matmul gains
    nothing from a second thread, and on a busy machine the threads' hand-offs cost many times the work."""
    global _lowered
    calls = _openblas_threads() if count is not None or _lowered is not None else None
    if calls is None:
        yield
        return
    get, put, procs = calls
    if _lazily:  # lowered until a matmul wants the usual count back
        if count is None:
            put(_lowered or procs())
            _lowered = None
        else:
            before = get()
            if before != count:
                put(count)
                _lowered = before if _lowered is None else _lowered
        yield
        return
    before = get()
    put(count)
    try:
        yield
    finally:
        put(before)
