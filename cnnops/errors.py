"""The errors cnnops shows to users.

Every problem a user can cause is a :class:`CnnopsError`; the CLI prints its message as one
``Error: …`` line and exits 1. Anything else escaping the core is a bug.
"""

from __future__ import annotations


class CnnopsError(ValueError):
    """Base class of every user-facing error (exit status 1)."""

    exit_code = 1


class SpecError(CnnopsError):
    """A stage text that cannot be parsed: syntax, unknown layer or keyword, wrong value type."""


class LayerError(CnnopsError):
    """A layer configuration, or a layer applied to an input shape, that PyTorch rejects."""

    def __init__(self, message: str, *, index: int | None = None, stage: str | None = None):
        self.reason = message
        self.index = index
        self.stage = stage
        if index is not None and stage is not None:
            message = f"stage {index} {stage}: {message}"
        super().__init__(message)


class InputError(CnnopsError):
    """An input (shape text, file, JSON document, image) that cannot be used."""


class UsageError(CnnopsError):
    """A command-line usage mistake (exit status 2)."""

    exit_code = 2
