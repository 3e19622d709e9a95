"""``weight=`` and ``bias=`` specs turned into the arrays a layer uses: kernel terms, ``'random'``, a
.json/.npy path, or numbers — nested lists, or tensor text in JSON or Python (``'[[1., 0, -1.]]'``,
``'torch.tensor([...])'``) read by the one literal reader and the one nested-list reader.

>>> resolve_weight("edge, -edge, edge.T, -edge.T", (4, 1, 3, 3)).shape
(4, 1, 3, 3)
>>> resolve_weight([[1, 2], [3, 4]], (1, 1, 2, 2)).tolist()
[[[[1.0, 2.0], [3.0, 4.0]]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnops.errors import SpecError
from cnnops.io.words import looks_inline
from cnnops.text import LazyPattern, dims, is_int, is_number, tuple_text
from cnnops.text import show as _show

if TYPE_CHECKING:
    import numpy as np

# the readers of kernel names, tensor text and nested lists are imported where a spec needs them: PyTorch's
# default weights need none of them

_NUMBER = LazyPattern(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def resolve_weight(spec: Any, expected_shape: Sequence[int], *, seed: int | None = None,
                   layer: str = "Conv2d") -> np.ndarray:
    """The float32 weight of shape ``expected_shape`` (PyTorch's, e.g. ``(out, in/groups, kH, kW)``)
    that ``spec`` describes; ``layer`` is the layer's text, used in error messages.

    - kernel terms, ``"sobel-x"`` or ``"edge, -edge, edge.T"`` (or a tuple of such strings): one
      filter per term, stacked along the first axis; the same kernel is applied to every input
      channel (repeated along the second axis). 2-D convolutions only.
    - ``"random"``: uniform in [-1, 1) from ``numpy.random.default_rng(seed)``, seed 0 by default.
    - a ``.json`` or ``.npy`` path, a nested list of numbers, tensor text (``"[[1., 0, -1.]]"``,
      ``"torch.tensor([...])"``), or one number, shaped like PyTorch's
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
        if looks_inline(text):
            return _fit(_tensor_text(text), expected, layer, what=f"weight {_show(text)}")
        return _kernel_bank(text, expected, layer)
    return _fit(spec, expected, layer, what="weight")


def weight_layout(spec: Any, nd: int) -> tuple[int, tuple[int, ...]] | None:
    """The number of filters and the kernel size a weight spec implies for an ``nd``-D convolution,
    or None when it implies nothing (``'random'``); for ``cnnops conv`` defaults. A number, or tensor
    text (``[[1., 0, -1.]]``, ``torch.tensor([...])``), is read as numbers.

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
        elif looks_inline(text):
            spec = _tensor_text(text)
        elif _is_path(text):
            spec = _read_array_file(text)
        elif nd == 2:
            from cnnops.io.kernels import bank_terms

            terms = bank_terms(text)
            return len(terms), terms[0].shape
        else:
            return None  # named kernels are 2-D: resolve_weight says so, with the layer's text
    from cnnops.io.nested import nested_shape

    shape = tuple(spec.shape) if hasattr(spec, "shape") else nested_shape(spec)
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
    if not (is_number(spec) or isinstance(spec, (list, tuple))):
        raise SpecError(f"bias is {_show(spec)} — give True, False, a number or a list of {out_features} numbers")
    from cnnops.io.nested import to_array

    values = to_array(spec, root="bias", error=SpecError)
    if values.ndim == 0:
        values = np.full(out_features, values)
    elif values.ndim != 1:
        raise SpecError(f"bias must be a number or a flat list of {out_features} numbers, got shape "
                        f"{tuple_text(values.shape)}")
    elif values.size != out_features:
        n = values.size
        raise SpecError(f"bias has {n} number{'s' if n != 1 else ''} but {layer} has {count} {out_features} "
                        f"— give {out_features} numbers, or one number for all")
    with np.errstate(over="ignore"):
        return values.astype(np.float32).reshape(out_features)


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




def _kernel_bank(text: str, expected: tuple[int, ...], layer: str) -> np.ndarray:
    import numpy as np

    axes = _axes(expected, layer)
    if axes[0] == "out_features":
        raise SpecError(f"weight {_show(text)} is neither 'random' nor a .json/.npy path, and {layer} takes no named "
                        "kernels — give a nested list of numbers, a .json/.npy path or 'random'")
    if len(expected) != 4:
        raise SpecError(f"weight {_show(text)} names 2-D kernels but {layer} has {len(expected) - 2}-D kernels "
                        f"{tuple_text(expected[2:])} — give a nested list of numbers, a .json/.npy path or 'random'")
    from cnnops.io.kernels import bank_terms

    terms = bank_terms(text)
    size = terms[0].shape
    if size != expected[2:]:
        want = str(size[0]) if size[0] == size[1] else tuple_text(size)
        raise SpecError(f"weight {_show(text)} is {dims(size)} but {layer} has kernel_size "
                        f"{dims(expected[2:])} — use kernel_size={want}")
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

    if seed is not None and (not is_int(seed) or seed < 0):
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
        array = spec
    elif is_number(spec) or isinstance(spec, (list, tuple)):
        from cnnops.io.nested import to_array

        array = to_array(spec, root="weight", error=SpecError)
    else:
        raise SpecError(f"{what} is {_show(spec)} — give a kernel name, kernel terms, 'random', "
                        "a .json/.npy path or a nested list of numbers")
    shape = tuple(array.shape)
    if not fits(shape, expected, _kernel_rank(expected, layer)):
        raise SpecError(f"{what} has shape {tuple_text(shape)} but {layer} needs {tuple_text(expected)} — "
                        f"({', '.join(_axes(expected, layer))})")
    with np.errstate(over="ignore"):
        # only size-1 dimensions are missing, so the values are already in PyTorch's order
        return array.astype(np.float32).reshape(expected)


def _tensor_text(text: str) -> Any:
    from cnnops.io.literal import tensor_value

    return tensor_value(text, f"weight {_show(text)}", error=SpecError)


def _read_array_file(path: str) -> Any:
    from cnnops.io.read import read_array_file

    return read_array_file(path, what="weight")
