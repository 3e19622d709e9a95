"""Lists of stages: the command line's words and stage files (one stage per line, or print(model)
text), through the one parser.

>>> [s.call for s in parse_stage_file("x=Conv2d(3, 8, 3, padding=1)\\nReLU\\nAdd(@x)")]
['Conv2d(3, 8, 3, padding=1)', 'ReLU()', 'Add()']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cnnops.errors import SpecError
from cnnops.model.network import Network, Node
from cnnops.spec.aliases import split_prefix
from cnnops.spec.parser import parse_nodes
from cnnops.spec.signatures import resolve_name

#: a network may have at most this many stages (repeats counted out)
MAX_STAGES = 10_000


def parse_stages(texts: Iterable[str]) -> Network:
    """Stages given on the command line, numbered from 1 in error messages."""
    network = Network()
    for index, text in enumerate(texts, 1):
        try:
            network = network + parse_nodes(text)
        except SpecError as exc:
            raise SpecError(f"stage {index}: {exc}") from None
        if len(network) > MAX_STAGES:
            raise SpecError(f"more than {MAX_STAGES:,} stages — cnnops sizes networks up to that")
    return network


def parse_stage_file(text: str, origin: str = "stage file") -> Network:
    """Stages from a file: one per line with ``#`` comments (graph syntax included), or the text of
    ``print(model)`` (see :mod:`cnnops.spec.printed`)."""
    from cnnops.spec.printed import looks_printed, parse_printed

    if looks_printed(text):
        return parse_printed(text, origin)
    nodes: list[Node] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            nodes.extend(parse_nodes(line).nodes)
        except SpecError as exc:
            raise SpecError(f"{origin} line {number}: {exc}") from None
        if len(nodes) > MAX_STAGES:
            raise SpecError(f"{origin}: more than {MAX_STAGES:,} stages — cnnops sizes networks up to that")
    return Network(nodes)


def looks_like_stage(text: str) -> bool:
    """True when a command-line word reads as a stage: a known layer name (maybe ``nn.``-prefixed or
    functional, maybe labelled), bare, with (…) or :args; a pasted Sequential or print(model) text."""
    word = text.strip()
    if word.startswith(("./", "/", "~")):
        return False
    labelled = "=" in word and "(" not in word.partition("=")[0] and re.match(r"^[A-Za-z_]\w*\s*=(?!=)\s*(.*)$", word, re.S)
    if labelled:
        word = labelled.group(1)
    if ":" in word and re.match(r"^[A-Za-z_][\w.]*\s*\(\s*\(\s*[\w.-]+\s*\)\s*:", word):
        return True  # print(model) text on one line
    head = re.match(r"^([A-Za-z][\w.-]*)\s*(\(|:|$)", word)
    return bool(head and resolve_name(split_prefix(head.group(1))[0]))


#: a stage file longer than this is refused (one stage per line is far shorter)
MAX_STAGE_FILE = 16 * 2**20


def read_stage_file(path: str, *, stdin: Any = None) -> Network:
    """The stages of a stage file (``-``: ``stdin``, a text stream), read through :func:`parse_stage_file`.
    A FIFO or a terminal is refused (it could keep cnnops waiting forever), as is a file of more than
    MAX_STAGES stages; a UTF-8 byte-order mark at its start is skipped."""
    import os
    import stat

    from cnnops.errors import InputError
    from cnnops.text import echo

    shown = echo(str(path))
    try:
        if str(path) == "-":
            if stdin is None:
                raise InputError("stdin is closed — pipe the stage file into cnnops, or give its path")
            if _is_terminal(stdin):
                raise InputError(
                    "stdin is a terminal — pipe the stage file into cnnops (`cat net.txt | cnnops run x.json -f -`) "
                    "or give its path"
                )
            text = stdin.read(MAX_STAGE_FILE + 1)
            if isinstance(text, bytes):
                text = text.decode("utf-8-sig")
        else:
            mode = os.stat(path).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
                raise InputError(f"stage file '{shown}' is not a regular file — save the stages to a file first")
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read(MAX_STAGE_FILE + 1)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"stage file '{shown}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"stage file '{shown}' is a directory — give a text file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"stage file '{shown}' is not UTF-8 text (bad byte at offset {exc.start}) — save it as "
                         "UTF-8") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read stage file '{shown}': {echo(str(getattr(exc, 'strerror', None) or exc))}") from None
    if len(text) > MAX_STAGE_FILE:
        raise InputError(f"stage file '{shown}' is longer than {MAX_STAGE_FILE:,} characters — give one stage per line")
    text = text.removeprefix("\ufeff")
    count = _count_stages(text)
    if count > MAX_STAGES:
        raise InputError(
            f"stage file '{shown}' describes {count:,} stages, more than the {MAX_STAGES:,} cnnops runs — "
            "give a shorter network"
        )
    return parse_stage_file(text, origin=shown)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _count_stages(text: str) -> int:
    """How many stages :func:`parse_stage_file` would make of ``text`` (repeats counted out), found
    without building any of them."""
    count = 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.endswith("(") or set(line) <= set(")"):
            continue
        printed = re.match(r"^\(([^()]*)\):\s*(.*)$", line, re.S)
        repeat = re.match(r"^(\d+)\s*x\s+(.*)$", printed.group(2).strip() if printed else line, re.S)
        count += min(int(repeat.group(1)[:6]), 10**6) if repeat else 1
    return count
