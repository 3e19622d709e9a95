"""The errors cnnops shows to users, and how a message names a setting.

Every problem a user can cause is a :class:`CnnopsError`; the CLI prints its message as one
``Error: …`` line and exits with its ``exit_code``. Anything else escaping the core is a bug.

The core states facts in library terms. Where a message tells the reader to change a setting it
writes :func:`setting`: the library shows the keyword (``max_elements``), the CLI its option
(``--max-elements``), each from the same message.

>>> str(InputError(f"too big — raise {setting('max_elements')}"))
'too big — raise max_elements'
>>> InputError(f"too big — raise {setting('max_elements')}").worded(lambda name, value: "--max-elements")
'too big — raise --max-elements'
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: a :func:`setting` inside a message (compiled on the first message: most runs never write one)
_SETTING = "\x00([a-z_]+)(?:=([^\x00]*))?\x00"


def setting(name: str, value: object = None) -> str:
    """A setting named in a message: ``setting("engine", "numpy")`` reads ``engine='numpy'`` from
    the library and ``--engine numpy`` on the command line."""
    return f"\x00{name}\x00" if value is None else f"\x00{name}={value}\x00"


def _library_spelling(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value!r}"


class CnnopsError(ValueError):
    """Base class of every user-facing error (exit status 1)."""

    exit_code = 1

    def worded(self, spell: Callable[[str, str | None], str] = _library_spelling) -> str:
        """The message with every :func:`setting` spelled by ``spell(name, value)``."""
        return re.sub(_SETTING, lambda m: spell(m.group(1), m.group(2)), super().__str__())

    def __str__(self) -> str:
        return self.worded()


class SpecError(CnnopsError):
    """A stage text that cannot be parsed: syntax, unknown layer or keyword, wrong value type."""


class LayerError(CnnopsError):
    """A layer configuration, or a layer applied to an input shape, that PyTorch rejects."""

    def __init__(self, message: str, *, index: int | None = None, stage: str | None = None, fix: str | None = None):
        #: the fact alone; ``fix`` is the change the message suggests (``set in_channels=128``)
        self.bare, self.fix = message, fix
        if fix is not None:
            message = f"{message} — {fix}"
        self.reason = message
        self.index = index
        self.stage = stage
        if index is not None and stage is not None:
            message = f"stage {index} {stage}: {message}"
        super().__init__(message)


class InputError(CnnopsError):
    """An input (shape text, file, JSON document, image) that cannot be used."""


class SettingError(CnnopsError):
    """A setting that cannot be used as given (an engine, a device, a solver bound). Settings come from
    command-line options, so the CLI reports these as usage errors (exit status 2)."""

    exit_code = 2


class UsageError(SettingError):
    """A command-line usage mistake (exit status 2): options that contradict each other, say. Only the
    CLI raises it; the core raises :class:`SettingError`."""
