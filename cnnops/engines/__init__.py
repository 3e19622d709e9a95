"""Compute engines: the same small set of functions over NumPy arrays, each imported lazily.

``numpy`` (fast to import, PyTorch's CPU semantics) and ``torch`` (``torch.nn.functional``); the
pipeline picks one by name.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from types import ModuleType
from typing import Any

ENGINES = ("numpy", "torch")

#: the settings OpenBLAS reads its thread count from when it loads
BLAS_SETTINGS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
#: whether NumPy's OpenBLAS was loaded on one thread by :func:`numpy_blas_on_one_thread`
blas_started_on_one_thread = False


def numpy_blas_on_one_thread() -> None:
    """Have NumPy's OpenBLAS load on one thread, not one per core, when NumPy is first imported.

    Loaded with several, OpenBLAS starts its threads at once and they spin for some 70 ms of another
    core's time, in every process — a batch's other worker, or the next command of a shell pipeline,
    wanted that core. Most of cnnops' matmuls are memory-bound and run on one thread anyway; a matmul
    that gains from more raises the count to the usual one first (``numpy_engine.arrays.blas_threads``),
    and OpenBLAS starts the threads then; a thread waiting for work sleeps after 2^20 cycles, not 2^28.
    The settings live in the environment only while NumPy loads. Nothing changes when NumPy is loaded
    already, when the environment sets a thread count, or when NumPy's BLAS is not the OpenBLAS its
    wheels bundle (:func:`bundled_openblas`: the one whose count cnnops can raise again)."""
    if "numpy" in sys.modules or any(os.environ.get(name) for name in BLAS_SETTINGS):
        return
    sys.meta_path.insert(0, _NumpyOnOneThread())  # type: ignore[arg-type]


def bundled_openblas(numpy_dir: str) -> list[str]:
    """The OpenBLAS libraries of the NumPy package in ``numpy_dir``, as its wheels bundle them (the
    ``numpy.libs`` folder beside it): the library whose thread count cnnops can read and set."""
    folder = os.path.join(os.path.dirname(numpy_dir), "numpy.libs")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names if "openblas" in name]


class _NumpyOnOneThread:
    """A meta path finder for the first ``import numpy``: NumPy's own spec, its loader wrapped so the
    module loads with OpenBLAS's start-up settings (then the environment is as it was). Removes itself."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "numpy":
            return None
        from importlib.util import find_spec

        sys.meta_path.remove(self)  # type: ignore[arg-type]
        spec = find_spec(name)
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _OnOneThread(spec.loader)  # type: ignore[assignment]
        return spec


class _OnOneThread:
    """NumPy's loader, executing the module with OpenBLAS's thread count set to one."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        global blas_started_on_one_thread
        module.__loader__ = module.__spec__.loader = self.loader  # type: ignore[union-attr]
        origin = getattr(module.__spec__, "origin", None) or ""
        if any(os.environ.get(name) for name in BLAS_SETTINGS) or not bundled_openblas(os.path.dirname(origin)):
            # set since (the user's choice), or a BLAS whose count cnnops cannot raise again: as it is
            self.loader.exec_module(module)
            return
        # and a thread that waits for work sleeps after 2^20 cycles (well under a millisecond, still
        # awake between the bands of one conv), not 2^28 (0.1 s of a core after every matmul)
        settings = {"OPENBLAS_NUM_THREADS": "1"}
        if not os.environ.get("OPENBLAS_THREAD_TIMEOUT"):
            settings["OPENBLAS_THREAD_TIMEOUT"] = "20"
        os.environ.update(settings)
        try:
            self.loader.exec_module(module)
        finally:
            for name in settings:
                del os.environ[name]
        blas_started_on_one_thread = True


def load_engine(name: str) -> ModuleType:
    """Import an engine module on first use (torch costs seconds, so only when data flows)."""
    if name not in ENGINES:
        from cnnops.errors import SettingError

        raise SettingError(f"unknown engine '{name}' — choose one of: {', '.join(ENGINES)}")
    return _import_interruptibly(f"cnnops.engines.{name}_engine")


def _import_interruptibly(module: str) -> ModuleType:
    """Import, deferring Ctrl-C to the end: CPython can swallow a KeyboardInterrupt raised inside
    the import machinery (torch's import takes seconds), and the run would then carry on."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return import_module(module)
    caught: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        return import_module(module)
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt
