"""Named convolution kernels, and ``weight=`` / ``bias=`` specs turned into arrays.

The kernel table is pure Python, so listing kernels and shell completion need no numpy:

>>> KERNELS["sobel-x"].values
((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
>>> get_kernel("Sobel_Y").name
'sobel-y'

A weight spec is a kernel name, a list of kernel terms (several filters at once), ``'random'``, a
``.json``/``.npy`` path or a nested list of numbers; :func:`resolve_weight` gives PyTorch's weight:

>>> resolve_weight("edge, -edge, edge.T, -edge.T", (4, 1, 3, 3)).shape
(4, 1, 3, 3)
>>> resolve_weight([[1, 2], [3, 4]], (1, 1, 2, 2)).tolist()
[[[[1.0, 2.0], [3.0, 4.0]]]]
"""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnops.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

Matrix = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
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
_TERM = re.compile(
    r"\s*(?P<sign>[-+])?\s*"
    r"(?:(?P<factor>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
    r"(?P<name>[A-Za-z][A-Za-z0-9_-]*)"
    r"(?P<transpose>\.[Tt])?\s*"
)
TERM_GRAMMAR = "[-][NUMBER*]NAME[.T]"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
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
        listed = ", ".join(_fmt_size(t.shape) for t in terms)
        raise SpecError(f"weight {_show(text.strip())} mixes kernel sizes ({listed}) — every filter of a layer has the same size")
    return terms


# --- weight and bias specs ------------------------------------------------------------------------
def resolve_weight(spec: Any, expected_shape: Sequence[int], *, seed: int | None = None,
                   layer: str = "Conv2d") -> np.ndarray:
    """The float32 weight of shape ``expected_shape`` (PyTorch's, e.g. ``(out, in/groups, kH, kW)``)
    that ``spec`` describes; ``layer`` is the layer's text, used in error messages.

    - kernel terms, ``"sobel-x"`` or ``"edge, -edge, edge.T"`` (or a tuple of such strings): one
      filter per term, stacked along the first axis; the same kernel is applied to every input
      channel (repeated along the second axis). 2-D convolutions only.
    - ``"random"``: uniform in [-1, 1) from ``numpy.random.default_rng(seed)``, seed 0 by default.
    - a ``.json`` or ``.npy`` path, a nested list of numbers, or one number, shaped like PyTorch's
      weight except that size-1 dimensions before the kernel's may be left out (a 3×3 list is one
      filter for ``Conv2d(1, 1, 3)``, a 4×3×3 list four for ``Conv2d(1, 4, 3)``, a 3×3×3 list one
      filter over three channels for ``Conv2d(3, 1, 3)``), and a list shorter than the kernel gets
      leading size-1 dimensions (a number is a 1×1 kernel).

    >>> resolve_weight("gx", (1, 3, 3, 3))[0, 2].tolist()
    [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
    """
    expected = tuple(int(n) for n in expected_shape)
    if _is_text_list(spec):
        spec = ", ".join(spec)
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "random":
            return _random_weight(expected, seed)
        if _is_path(text):
            return _fit(_read_array_file(text), expected, layer, what=f"weight from {_show(text)}")
        return _kernel_bank(text, expected, layer)
    return _fit(spec, expected, layer, what="weight")


def weight_layout(spec: Any, nd: int) -> tuple[int, tuple[int, ...]] | None:
    """The number of filters and the kernel size a weight spec implies for an ``nd``-D convolution,
    or None when it implies nothing (``'random'``); for ``cnnops conv`` defaults. A string that
    starts with ``[``, or is a number, is read as JSON.

    >>> weight_layout("vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T", 2)
    (4, (4, 4))
    >>> weight_layout("[[1, 0, -1]]", 1)
    (1, (3,))
    """
    if _is_text_list(spec):
        spec = ", ".join(spec)
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "random":
            return None
        if _NUMBER.fullmatch(text):
            spec = float(text)
        elif text.startswith("["):
            spec = _json_text(text)
        elif _is_path(text):
            spec = _read_array_file(text)
        elif nd == 2:
            terms = bank_terms(text)
            return len(terms), terms[0].shape
        else:
            return None  # named kernels are 2-D: resolve_weight says so, with the layer's text
    shape = tuple(spec.shape) if hasattr(spec, "shape") else _nested_shape(spec)
    if len(shape) > nd + 2:
        return None
    if len(shape) < nd:
        return 1, (1,) * (nd - len(shape)) + shape
    # (n, *kernel): n filters, matching the SPEC's "a 4×3×3 list is four filters"
    return (shape[0] if len(shape) > nd else 1), shape[len(shape) - nd:]


def resolve_bias(spec: Any, out_features: int, *, layer: str = "Conv2d") -> np.ndarray | None:
    """The float32 bias that ``spec`` gives, or None: ``True`` (the caller's default initialisation)
    and ``False`` (no bias) give None; a number fills all ``out_features``; a list needs one number each.

    >>> resolve_bias(0.5, 3).tolist()
    [0.5, 0.5, 0.5]
    """
    import numpy as np

    if spec is None or isinstance(spec, bool):
        return None
    count = "out_features" if _layer_name(layer) == "linear" else "out_channels"
    if _is_number(spec):
        values = [_to_float(spec, "bias")] * out_features
    elif isinstance(spec, (list, tuple)):
        values = [_to_float(v, f"bias[{i}]") for i, v in enumerate(spec)]
        if len(values) != out_features:
            n = len(values)
            raise SpecError(f"bias has {n} number{'s' if n != 1 else ''} but {layer} has {count} {out_features} "
                            f"— give {out_features} numbers, or one number for all")
    else:
        raise SpecError(f"bias is {_show(spec)} — give True, False, a number or a list of {out_features} numbers")
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float32).reshape(out_features)


def _is_text_list(spec: Any) -> bool:
    return isinstance(spec, (list, tuple)) and bool(spec) and all(isinstance(s, str) for s in spec)


def _is_path(text: str) -> bool:
    return text.lower().endswith((".json", ".npy"))


def _layer_name(layer: str) -> str:
    return layer.split("(", 1)[0].strip().lower()


def _kernel_rank(expected: tuple[int, ...], layer: str) -> int:
    """How many trailing dimensions of the weight are the kernel's (0 for Linear)."""
    return 0 if len(expected) == 2 and not _layer_name(layer).startswith("conv") else len(expected) - 2


def _axes(expected: tuple[int, ...], layer: str) -> tuple[str, ...]:
    rank = _kernel_rank(expected, layer)
    if rank == 0:
        return "out_features", "in_features"
    spatial = {1: ("kL",), 2: ("kH", "kW"), 3: ("kD", "kH", "kW")}.get(rank, ("k",) * rank)
    if _layer_name(layer).startswith("convtranspose"):
        return ("in_channels", "out_channels/groups", *spatial)
    return ("out_channels", "in_channels/groups", *spatial)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _fmt_size(size: tuple[int, ...]) -> str:
    return "×".join(map(str, size))


def _kernel_bank(text: str, expected: tuple[int, ...], layer: str) -> np.ndarray:
    import numpy as np

    axes = _axes(expected, layer)
    if axes[0] == "out_features":
        raise SpecError(f"weight {_show(text)} is neither 'random' nor a .json/.npy path, and {layer} takes no named "
                        "kernels — give a nested list of numbers, a .json/.npy path or 'random'")
    if len(expected) != 4:
        raise SpecError(f"weight {_show(text)} names 2-D kernels but {layer} has {len(expected) - 2}-D kernels "
                        f"{_fmt_shape(expected[2:])} — give a nested list of numbers, a .json/.npy path or 'random'")
    terms = bank_terms(text)
    size = terms[0].shape
    if size != expected[2:]:
        want = str(size[0]) if size[0] == size[1] else _fmt_shape(size)
        raise SpecError(f"weight {_show(text)} is {_fmt_size(size)} but {layer} has kernel_size "
                        f"{_fmt_size(expected[2:])} — use kernel_size={want}")
    if len(terms) != expected[0]:
        n = len(terms)
        raise SpecError(f"weight {_show(text)} gives {n} filter{'s' if n != 1 else ''} but {layer} has {axes[0]} "
                        f"{expected[0]} — list {expected[0]} kernel terms or use {axes[0]}={n}")
    with np.errstate(over="ignore", invalid="ignore"):
        bank = np.array([t.values for t in terms], dtype=np.float32)
    # one kernel per filter, the same for every input channel the filter sees
    return np.broadcast_to(bank[:, None], expected).copy()


def _random_weight(expected: tuple[int, ...], seed: int | None) -> np.ndarray:
    import numpy as np

    if seed is not None and (not _is_int(seed) or seed < 0):
        raise SpecError(f"seed {_show(seed)} is not a non-negative integer — use e.g. seed=0")
    rng = np.random.default_rng(0 if seed is None else seed)
    # float32 draws are multiples of 2**-24 in [0, 1), so 2x - 1 stays exactly inside [-1, 1)
    return rng.random(expected, dtype=np.float32) * np.float32(2) - np.float32(1)


def fits(given: tuple[int, ...], expected: tuple[int, ...], kernel_rank: int) -> bool:
    """Whether a weight of shape ``given`` is PyTorch's ``expected`` with size-1 dimensions left
    out: any of those before the kernel's, or leading ones of the kernel once all those are gone.

    >>> fits((4, 3, 3), (4, 1, 3, 3), 2), fits((3,), (1, 1, 1, 3), 2), fits((4, 3, 3), (1, 4, 3, 3), 2)
    (True, True, True)
    >>> fits((3, 1), (1, 1, 3, 1), 2), fits((2, 3, 3), (2, 2, 3, 3), 2)
    (True, False)
    """
    split = len(expected) - kernel_rank
    lead, kernel = expected[:split], expected[split:]
    if len(given) < kernel_rank:
        return all(n == 1 for n in lead) and (1,) * (kernel_rank - len(given)) + given == kernel
    rest, given_kernel = given[: len(given) - kernel_rank], given[len(given) - kernel_rank:]
    return given_kernel == kernel and rest in _without_ones(lead)


def _without_ones(shape: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Every shape left after removing some of the size-1 dimensions of ``shape``."""
    shapes: set[tuple[int, ...]] = {()}
    for n in shape:
        shapes = {s + (n,) for s in shapes} | (shapes if n == 1 else set())
    return shapes


def _fit(spec: Any, expected: tuple[int, ...], layer: str, *, what: str) -> np.ndarray:
    """``spec`` (a number, a nested list of numbers or a numeric array) as a float32 array of shape
    ``expected``; see :func:`fits` for the shapes accepted."""
    import numpy as np

    if isinstance(spec, np.ndarray):
        if spec.dtype.kind not in "iuf":
            raise SpecError(f"{what} has dtype {spec.dtype} — weights must be real numbers")
        shape = tuple(spec.shape)
    elif _is_number(spec) or isinstance(spec, (list, tuple)):
        shape = _nested_shape(spec)
    else:
        raise SpecError(f"{what} is {_show(spec)} — give a kernel name, kernel terms, 'random', "
                        "a .json/.npy path or a nested list of numbers")
    flat: list[float] = []
    if not isinstance(spec, np.ndarray) and len(shape) <= len(expected):  # deeper lists cannot fit
        _flatten(spec, shape, "weight", flat)
    if not fits(shape, expected, _kernel_rank(expected, layer)):
        raise SpecError(f"{what} has shape {_fmt_shape(shape)} but {layer} needs {_fmt_shape(expected)} — "
                        f"({', '.join(_axes(expected, layer))})")
    with np.errstate(over="ignore"):
        array = spec.astype(np.float32) if isinstance(spec, np.ndarray) else np.array(flat, dtype=np.float32)
    # only size-1 dimensions are missing, so the values are already in PyTorch's order
    return array.reshape(expected)


def _nested_shape(value: Any) -> tuple[int, ...]:
    """The shape the first element at each depth implies (checked against the rest by _flatten)."""
    shape = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _flatten(node: Any, shape: tuple[int, ...], path: str, out: list[float]) -> None:
    depth = path.count("[")
    reference = "weight" + "[0]" * depth
    if depth == len(shape):
        if isinstance(node, (list, tuple)):
            raise SpecError(f"{path} is a list but {reference} is a number — nest every row to the same depth")
        out.append(_to_float(node, path))
        return
    if not isinstance(node, (list, tuple)):
        if _is_number(node):
            raise SpecError(f"{path} is a number but {reference} is a list — nest every row to the same depth")
        raise SpecError(f"{path} is {_show(node)}, not a number or a list — weights are nested lists of numbers")
    if len(node) != shape[depth]:
        raise SpecError(f"{path} has {len(node)} entries but {reference} has {shape[depth]} — "
                        "every row must have the same length")
    for i, child in enumerate(node):
        _flatten(child, shape, f"{path}[{i}]", out)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _to_float(value: Any, path: str) -> float:
    if not _is_number(value):
        raise SpecError(f"{path} is {_show(value)}, not a number — give numbers only")
    try:
        return float(value)
    except OverflowError:
        raise SpecError(f"{path} is an integer too large for a float — use a float such as 1e38 or inf") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _json_text(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise SpecError(f"weight {_show(text)} is not a valid JSON list — write it like [[1, 0, -1]]") from None


def _read_array_file(path: str) -> Any:
    from cnnops.io import read_array_file

    return read_array_file(path, what="weight")
