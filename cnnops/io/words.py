"""What a command-line word given as an INPUT (or a ``weight=``) is: a generator (``randn:1x4x4``), tensor
text (``[[1, 2]]``, ``torch.arange(4)``) or else a path. Two patterns, kept apart from the readers they
lead to (:mod:`cnnops.io.generators`, :mod:`cnnops.io.literal`), so that telling a ``.npy`` path from
them imports neither.

>>> looks_like_generator("randn:1x4x4"), looks_inline("torch.arange(4)"), looks_inline("x.npy")
(True, True, False)
"""

from __future__ import annotations

import re

from cnnops.text import LazyPattern

#: ``NAME:ARGS`` with a generator's name; groups: the name, the arguments
GENERATOR = LazyPattern(r"^\s*(zeros|ones|full|arange|eye|randn|rand|randint)\s*:(.*)$", re.S | re.I)
#: what inline tensor text starts with (a path or a stage never does)
INLINE = LazyPattern(r"\s*(?:[\[{(]|(?:import|from)\s|(?:torch|np|numpy|tensor|array|float)\s*(?:\.\s*\w+\s*)*\(|"
                     r"[A-Za-z_]\w*\s*=\s*(?:torch|np|numpy|tensor|array|[\[(]))")


def looks_like_generator(text: str) -> bool:
    """Whether ``text`` is written ``NAME:ARGS`` with a generator's name (``randn:1x4x4``)."""
    return ":" in text and bool(GENERATOR.match(text))


def looks_inline(text: str) -> bool:
    """Whether a command-line word reads as tensor text rather than a path: it starts with ``[``, ``{``,
    ``(``, a call of ``torch.…(``, ``np.…(``, ``numpy.…(``, ``tensor(``, ``array(`` or ``float(``, an
    ``import``, or ``x = torch.…``/``x = [``. (``torch.json`` is a path.)"""
    # each of the pattern's forms holds one of these (a path seldom does: the pattern is not compiled for it)
    return (any(c in text for c in "[{(=") or text.lstrip().startswith(("import", "from"))) and bool(INLINE.match(text))
