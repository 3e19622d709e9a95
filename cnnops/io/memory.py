"""How much memory cnnops may use: the default of ``max_memory``, size text such as ``4G``, and the one
refusal every step gives before it allocates more than that.

The default is half of what the machine can still give this process: the smallest of the RAM Linux
reports available (``MemAvailable`` in /proc/meminfo), the room left under a cgroup memory limit, and
the room left under an address-space limit (``ulimit -v``). It is read once, when first needed.

>>> parse_size("4G"), parse_size("512 MiB"), parse_size("1000"), parse_size("1.5k")
(4294967296, 536870912, 1000, 1536)
>>> size_text(3 * 2**30), size_text(1536), size_text(12)
('3.0 GiB', '1.5 KiB', '12 bytes')
"""

from __future__ import annotations

import functools
import os
import re

from cnnops.errors import InputError, setting
from cnnops.text import LazyPattern

#: with no limit given, a tensor (a nested list, a file, a generated input) may hold this many numbers
DEFAULT_MAX_ELEMENTS = 2**28
#: the share of the free memory a run may plan to use; the rest is for Python, the libraries and misjudgement
DEFAULT_FRACTION = 0.5
#: what the default is when the system says nothing (no /proc, no limits)
FALLBACK_BYTES = 2 * 2**30
#: address space the interpreter and its libraries take beyond the data (threads' stacks, BLAS buffers)
ADDRESS_SPACE_RESERVE = 256 * 2**20
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = LazyPattern(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.I)
_PERCENT = LazyPattern(r"^\s*(\d+(?:\.\d*)?)\s*%\s*$")


def parse_size(text: str) -> int:
    """Bytes from ``4G``, ``512M``, ``1.5GiB``, ``1000`` (bytes) or ``75%`` (of the memory free now).
    Units are binary (``1K`` = 1024 bytes). Raises ValueError for anything else."""
    percent = _PERCENT.match(text)
    if percent:
        share = float(percent.group(1))
        if not 0 < share <= 100:
            raise ValueError(f"a share of memory is between 0 and 100%, not {text.strip()}")
        return max(1, int(free_memory() * share / 100))
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"cannot read the size {text.strip()!r}")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value < 1:
        raise ValueError("a memory size must be at least 1 byte")
    return value


def size_text(nbytes: int) -> str:
    """``3.0 GiB``, ``1.5 KiB``, ``12 bytes``: how messages write an amount of memory."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes} bytes"


@functools.cache
def default_max_memory() -> int:
    """Half of :func:`free_memory`: what a run may plan to use unless told otherwise."""
    return max(64 * 2**20, int(free_memory() * DEFAULT_FRACTION))


def free_memory() -> int:
    """What this process can still get: the least of available RAM, cgroup room and address-space room."""
    candidates = [n for n in (_mem_available(), _cgroup_room(), _address_space_room()) if n is not None]
    return min(candidates) if candidates else FALLBACK_BYTES


def check_memory(needed: int, limit: int | None, what: str, fix: str = "") -> None:
    """Refuse, before allocating it, work that needs more than ``limit`` bytes (None: the default)."""
    limit = default_max_memory() if limit is None else limit
    if needed > limit:
        hint = f"{fix}, or raise {setting('max_memory')}" if fix else f"raise {setting('max_memory')}"
        raise MemoryBudgetError(
            f"{what} needs about {size_text(needed)} of memory, more than the limit of {size_text(limit)} — {hint}"
        )


class MemoryBudgetError(InputError):
    """Work refused because it would need more memory than the budget allows."""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:  # (ascii's codec is one more import)
            return handle.read(1 << 16)
    except OSError:
        return None


def _mem_available() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():  # "MemAvailable:   123456 kB"
        name, _, rest = line.partition(":")
        if name == "MemAvailable":
            amount, _, unit = rest.strip().partition(" ")
            return int(amount) * 1024 if amount.isdigit() and unit.strip() == "kB" else None
    return None


def _cgroup_room() -> int | None:
    """Room under a cgroup v2 (memory.max) or v1 (memory.limit_in_bytes) limit, when there is one."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        limit, usage = _read(limit_file), _read(usage_file)
        if limit is None or not limit.strip().isdigit():
            continue
        value = int(limit.strip())
        if value >= 2**60:  # v1 writes "no limit" as a huge number
            return None
        used = int(usage.strip()) if usage and usage.strip().isdigit() else 0
        return max(0, value - used)
    return None


def _address_space_room() -> int | None:
    """Room under ``ulimit -v`` (RLIMIT_AS), less what the process maps already and a reserve for libraries."""
    soft = _address_space_limit()
    if soft is None:
        return None
    match = re.search(r"^VmSize:\s+(\d+)\s*kB", _read("/proc/self/status") or "", re.M)
    mapped = int(match.group(1)) * 1024 if match else 0
    return max(0, soft - mapped - ADDRESS_SPACE_RESERVE)


def _address_space_limit() -> int | None:
    """The soft RLIMIT_AS in bytes, or None (unlimited or unknown): from ``/proc/self/limits`` on Linux
    (the ``resource`` module is a library to load), else from ``resource``."""
    for line in (_read("/proc/self/limits") or "").splitlines():
        if line.startswith("Max address space"):
            soft = line[len("Max address space") :].split()[:1]
            return int(soft[0]) if soft and soft[0].isdigit() else None
    try:
        import resource

        soft_limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft_limit == resource.RLIM_INFINITY or soft_limit < 0 else soft_limit


def file_size(path: str) -> int | None:
    """The size of a regular file, or None (a pipe, a device, a missing file)."""
    import stat

    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
