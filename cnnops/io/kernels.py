"""Named convolution kernels and kernel terms (``"edge, -edge, edge.T"``), pure Python.

The kernel table is pure Python, so listing kernels and shell completion need no numpy:

>>> KERNELS["sobel-x"].values
((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
>>> get_kernel("Sobel_Y").name
'sobel-y'

"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from cnnops.errors import SpecError
from cnnops.records import record
from cnnops.text import LazyPattern, dims
from cnnops.text import show as _show

Matrix = tuple[tuple[float, ...], ...]


@record(frozen=True)
class Kernel:
    """A named 2-D kernel: its values (rows of numbers) and what it detects, with the sign."""

    name: str
    values: Matrix
    description: str

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.values), len(self.values[0])


def _kernel(name: str, rows: Iterable[Iterable[float]], description: str, *, divide_by: float = 1) -> Kernel:
    return Kernel(name, tuple(tuple(v / divide_by for v in row) for row in rows), description)


def _transpose(values: Matrix) -> Matrix:
    return tuple(zip(*values, strict=True))


_SOBEL_X = ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))
_GX = ((1, 0, -1), (2, 0, -2), (1, 0, -1))
_PREWITT_X = ((-1, 0, 1),) * 3
_SCHARR_X = ((-3, 0, 3), (-10, 0, 10), (-3, 0, 3))
_VERTICAL_EDGE = ((-1, -1, 1, 1),) * 4

KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in [
        _kernel("sobel-x", _SOBEL_X, "Sobel x-gradient (finds vertical edges): positive where intensity "
                "increases to the right (OpenCV / scikit-image convention)"),
        _kernel("sobel-y", _transpose(_SOBEL_X), "Sobel y-gradient (finds horizontal edges): positive where "
                "intensity increases downward; the transpose of sobel-x"),
        _kernel("gx", _GX, "the tutorials' Gx, equal to -sobel-x: PyTorch correlates without flipping, so it "
                "is positive where intensity decreases to the right (a vertical line of ones gives -4, 0, 4 across it)"),
        _kernel("gy", _transpose(_GX), "the tutorials' Gy, equal to -sobel-y: positive where intensity decreases "
                "downward; the transpose of gx"),
        _kernel("prewitt-x", _PREWITT_X, "Prewitt x-gradient (finds vertical edges, unweighted rows): positive "
                "where intensity increases to the right"),
        _kernel("prewitt-y", _transpose(_PREWITT_X), "Prewitt y-gradient (finds horizontal edges): positive where "
                "intensity increases downward; the transpose of prewitt-x"),
        _kernel("scharr-x", _SCHARR_X, "Scharr x-gradient (finds vertical edges, better rotation symmetry "
                "than Sobel): positive where intensity increases to the right"),
        _kernel("scharr-y", _transpose(_SCHARR_X), "Scharr y-gradient (finds horizontal edges): positive where "
                "intensity increases downward; the transpose of scharr-x"),
        _kernel("laplacian", ((0, 1, 0), (1, -4, 1), (0, 1, 0)), "4-neighbour Laplacian (second derivative, "
                "finds edges in every direction): negative on bright spots and lines, zero on flat areas and ramps"),
        _kernel("laplacian-8", ((1, 1, 1), (1, -8, 1), (1, 1, 1)), "8-neighbour Laplacian (includes the "
                "diagonals): negative on bright spots and lines, zero on flat areas and ramps"),
        _kernel("edge", ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)), "8-centred edge detector (minus laplacian-8): "
                "positive on the bright side of an edge and on bright spots, zero on flat areas"),
        _kernel("vertical-edge", _VERTICAL_EDGE, "Udacity's 4x4 vertical-edge filter: positive where the right "
                "half of the window is brighter than the left half"),
        _kernel("horizontal-edge", _transpose(_VERTICAL_EDGE), "Udacity's 4x4 horizontal-edge filter: positive where "
                "the bottom half of the window is brighter than the top half; the transpose of vertical-edge"),
        _kernel("gaussian", ((1, 2, 1), (2, 4, 2), (1, 2, 1)), "3x3 Gaussian blur (1-2-1 binomial, /16): smooths "
                "noise; all weights positive and summing to 1, so flat areas keep their value", divide_by=16),
        _kernel("box", ((1, 1, 1),) * 3, "3x3 box blur (mean of the window, /9): all weights positive and "
                "summing to 1, so flat areas keep their value", divide_by=9),
        _kernel("sharpen", ((0, -1, 0), (-1, 5, -1), (0, -1, 0)), "sharpen (identity minus the 4-neighbour "
                "Laplacian): boosts edges; sums to 1, so flat areas keep their value"),
        _kernel("identity", ((0, 0, 0), (0, 1, 0), (0, 0, 0)), "identity (centre 1): copies the input, which "
                "shows what padding and stride alone do"),
        _kernel("emboss", ((-2, -1, 0), (-1, 1, 1), (0, 1, 2)), "emboss: positive where intensity increases "
                "towards the bottom right, negative towards the top left; sums to 1, so flat areas keep their value"),
    ]
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def kernel_names() -> list[str]:
    """The kernel names, in table order (gradients, Laplacians, edges, blurs, others)."""
    return list(KERNELS)


def get_kernel(name: str, *, context: str = "") -> Kernel:
    """The kernel called ``name`` (case-insensitive, ``_`` or ``-``), else a :class:`SpecError`
    that suggests the closest name."""
    kernel = KERNELS.get(_normalise(name))
    if kernel is not None:
        return kernel
    close = difflib.get_close_matches(_normalise(name), KERNELS, n=1)
    hint = f"did you mean {close[0]!r}? Run `cnnops kernels` for the list" if close else (
        "run `cnnops kernels` for the list of named kernels")
    raise SpecError(f"unknown kernel {_show(name.strip())}{context} — {hint}")


def describe_kernels() -> list[dict[str, Any]]:
    """One dict per kernel (name, shape, values, description), for ``cnnops kernels``.

    >>> describe_kernels()[0]["shape"]
    [3, 3]
    """
    return [
        {"name": k.name, "shape": list(k.shape), "values": [list(row) for row in k.values],
         "description": k.description}
        for k in KERNELS.values()
    ]


# --- kernel terms: "edge, -edge, 2*box, edge.T" ---------------------------------------------------
_TERM = LazyPattern(
    r"\s*(?P<sign>[-+])?\s*"
    r"(?:(?P<factor>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9_-]*)"
    r"(?P<transpose>\.[Tt])?\s*"
)
TERM_GRAMMAR = "[-][NUMBER*]NAME[.T]"


@record(frozen=True)
class KernelTerm:
    """One kernel of a bank: a named kernel, scaled by ``factor`` and maybe transposed."""

    kernel: Kernel
    factor: float = 1.0
    transpose: bool = False

    @property
    def values(self) -> Matrix:
        rows = _transpose(self.kernel.values) if self.transpose else self.kernel.values
        # + 0.0 turns the -0.0 of a negated zero into 0.0, so printed weights read 0
        return tuple(tuple(self.factor * v + 0.0 for v in row) for row in rows)

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.kernel.shape
        return (w, h) if self.transpose else (h, w)


def parse_kernel_terms(text: str) -> tuple[KernelTerm, ...]:
    """Comma-separated kernel terms, each ``[-][NUMBER*]NAME[.T]``.

    >>> [(t.kernel.name, t.factor, t.transpose) for t in parse_kernel_terms("edge, -2*box.T")]
    [('edge', 1.0, False), ('box', -2.0, True)]
    """
    terms = []
    for part in text.split(","):
        match = _TERM.fullmatch(part)
        if match is None:
            what = "an empty term" if not part.strip() else f"{_show(part.strip())}, which is not a kernel term"
            raise SpecError(f"weight {_show(text.strip())} has {what} — write comma-separated terms "
                            f"{TERM_GRAMMAR}, e.g. 'sobel-x, -sobel-x, 2*box, sobel-x.T'")
        if _normalise(match["name"]) == "random":
            raise SpecError(f"weight {_show(text.strip())} mixes 'random' with kernel terms — 'random' fills the "
                            "whole weight, so give it alone")
        kernel = get_kernel(match["name"], context=f" in weight {_show(text.strip())}")
        factor = float(match["factor"]) if match["factor"] else 1.0
        terms.append(KernelTerm(kernel, -factor if match["sign"] == "-" else factor, bool(match["transpose"])))
    return tuple(terms)


def bank_terms(text: str) -> tuple[KernelTerm, ...]:
    """The terms of a kernel bank, checked to share one kernel size."""
    terms = parse_kernel_terms(text)
    if len({t.shape for t in terms}) > 1:
        listed = ", ".join(dims(t.shape) for t in terms)
        raise SpecError(f"weight {_show(text.strip())} mixes kernel sizes ({listed}) — every filter of a layer has the same size")
    return terms
