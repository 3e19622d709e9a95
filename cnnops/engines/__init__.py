"""Compute engines: the same small set of functions over NumPy arrays, each imported lazily.

``numpy`` (fast to import, PyTorch's CPU semantics) and ``torch`` (``torch.nn.functional``); the
pipeline picks one by name.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

ENGINES = ("numpy", "torch")


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
