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
from cnnops.spec.printed import looks_printed, parse_printed
from cnnops.spec.signatures import resolve_name

MAX_STAGES = 100_000


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
    labelled = re.match(r"^[A-Za-z_]\w*\s*=(?!=)\s*(.*)$", word, re.S)
    if labelled:
        word = labelled.group(1)
    if re.match(r"^[A-Za-z_][\w.]*\s*\(\s*\(\s*[\w.-]+\s*\)\s*:", word):
        return True  # print(model) text on one line
    head = re.match(r"^([A-Za-z][\w.-]*)\s*(\(|:|$)", word)
    return bool(head and resolve_name(split_prefix(head.group(1))[0]))


#: a stage file longer than this is refused (one stage per line is far shorter)
MAX_STAGE_FILE = 16 * 2**20


def read_stage_file(path: str, *, stdin: Any = None) -> Network:
    """The stages of a stage file (``-``: ``stdin``, a text stream), read through :func:`parse_stage_file`."""
    from cnnops.errors import InputError

    try:
        if str(path) == "-":
            text = stdin.read(MAX_STAGE_FILE + 1)
        else:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read(MAX_STAGE_FILE + 1)
    except FileNotFoundError:
        raise InputError(f"stage file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"stage file '{path}' is a directory — give a text file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read stage file '{path}': {exc}") from None
    if len(text) > MAX_STAGE_FILE:
        raise InputError(f"stage file '{path}' is longer than {MAX_STAGE_FILE:,} characters — give one stage per line")
    return parse_stage_file(text, origin=str(path))
