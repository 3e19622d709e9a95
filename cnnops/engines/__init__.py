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
        from cnnops.errors import UsageError

        raise UsageError(f"unknown engine '{name}' — choose one of: {', '.join(ENGINES)}")
    return import_module(f"cnnops.engines.{name}_engine")
