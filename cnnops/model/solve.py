"""Which kernel_size, stride, padding and dilation turn one length into another (``cnnops solve``).

:func:`solve` lists every combination, within small search bounds, that gives ``length_out`` from
``length_in`` for one layer kind, keeping fixed whatever the caller fixed:

>>> [s.stage_text("conv") for s in solve(28, 28, kernel_size=3)][:2]
['Conv2d(1, 1, kernel_size=3, stride=1, padding=1)', 'Conv2d(1, 1, kernel_size=3, stride=1, padding=2, dilation=2)']
>>> solve(32, 16, kind="pool")[0].stage_text("pool")
'MaxPool2d(kernel_size=2, stride=2, padding=0)'
>>> solve(5, 3)[0].note
'valid (no padding)'

**What is searched.** Free values run over ``1..max_kernel``, ``1..max_stride``, ``1..max_dilation``
and a padding range; a fixed value is used as given (search bounds do not apply to it), and only
PyTorch's own rules limit it. The padding range of a free padding:

- conv and conv_transpose: ``0 ≤ p ≤ d·(k−1)``. Beyond ``d·(k−1)`` the first window would see
  nothing but padding (a "full" convolution is the most that still overlaps the input).
  conv_transpose also gets the one ``output_padding`` (``< stride or < dilation``) that fits.
- pool: ``0 ≤ p ≤ ⌊k/2⌋``, PyTorch's rule (with the plain kernel; dilation does not relax it).
  ``ceil_mode=True`` solutions are listed only where ceil_mode changes the result, so each
  listed ceil_mode one gives ``length_out`` where floor rounding would not.
  Solutions are stated as MaxPool: every one with dilation 1 holds as written for AvgPool too
  (same length formula); dilated pooling exists for max pooling only.
- unpool: PyTorch's default MaxUnpool size ``(L−1)·s − 2p + k`` (no dilation), with the padding
  of the max pool it undoes, ``0 ≤ p ≤ ⌊k/2⌋``. For an explicit ``output_size`` see
  :func:`unpool_output_range`.

**Simplest first.** Solutions are sorted by :func:`rank_key`, which compares, in this order:

1. dilation, smallest first: dilation changes what the layer computes;
2. ceil_mode (pool): floor rounding, PyTorch's default, first;
3. over-padded last: padding more than half the dilated window (``2p > d·(k−1)``), so windows
   see more padding than a centred window would;
4. a 1-wide kernel last: it looks at single pixels (a pointwise conv, a pool that only subsamples);
5. kernel_size, smallest first: the stride follows from the ratio of the lengths, so the window
   size is the real choice; for a given window,
6. stride, smallest first, then 7. padding, then 8. output_padding.

So "same size" answers come out as kernel 3 with padding 1, kernel 5 with padding 2, …; halving
answers as kernel 2 stride 2, kernel 3 stride 2 padding 1, …; a shrinking answer with no padding
("valid") before the same kernel with a stride. Every returned solution has been checked with the
shape model (:mod:`cnnops.model.stages`, built from :meth:`Solution.stage_text`).

No solution is an empty list, not an error. Bad arguments (lengths below 1 or above
:data:`MAX_LENGTH`, values or bounds below their minimum or above :data:`MAX_VALUE`, a search
over more than :data:`MAX_SEARCH` kernel/stride/dilation triples) raise
:class:`~cnnops.errors.SettingError`; more than :data:`MAX_SOLUTIONS` answers raise
:class:`~cnnops.errors.CnnopsError` asking to fix more values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import field
from typing import Any

from cnnops.choices import LayerKind
from cnnops.errors import CnnopsError, LayerError, SettingError
from cnnops.model import arithmetic
from cnnops.model import stages as st
from cnnops.model.arithmetic import ceil_div
from cnnops.records import record

#: the shape model's largest dimension
MAX_LENGTH = 2**31 - 1
#: the largest fixed kernel_size, stride, padding, dilation or search bound accepted
MAX_VALUE = 2**16
#: more (kernel, stride, dilation) triples than this to search is refused rather than slow
MAX_SEARCH = 200_000
#: more solutions than this is refused: fix more values or lower the bounds
MAX_SOLUTIONS = 20_000


_STAGE_NAMES = {
    LayerKind.conv: "Conv",
    LayerKind.pool: "MaxPool",
    LayerKind.unpool: "MaxUnpool",
    LayerKind.conv_transpose: "ConvTranspose",
}


@record(frozen=True)
class Solution:
    """One combination that gives the wanted length; ``note`` says in words what it does."""

    kernel_size: int
    stride: int
    padding: int
    dilation: int
    output_padding: int | None = None  # conv_transpose only
    ceil_mode: bool = False  # pool only
    note: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object: the four numbers, plus output_padding and ceil_mode where they apply.

        >>> Solution(3, 2, 1, 1, output_padding=1).as_dict()
        {'kernel_size': 3, 'stride': 2, 'padding': 1, 'dilation': 1, 'output_padding': 1}
        """
        out: dict[str, Any] = {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
        }
        if self.output_padding is not None:
            out["output_padding"] = self.output_padding
        if self.ceil_mode:
            out["ceil_mode"] = True
        return out

    def stage_text(self, kind: LayerKind | str, nd: int = 2, in_channels: int = 1, out_channels: int = 1) -> str:
        """The PyTorch call for this solution, which :func:`cnnops.spec.parse_stage` reads back.

        >>> Solution(2, 2, 0, 1).stage_text("pool")
        'MaxPool2d(kernel_size=2, stride=2, padding=0)'
        >>> Solution(3, 2, 1, 1, output_padding=1).stage_text("conv_transpose", nd=1)
        'ConvTranspose1d(1, 1, kernel_size=3, stride=2, padding=1, output_padding=1)'
        """
        kind = _layer_kind(kind)
        if nd not in (1, 2):
            raise SettingError(f"nd must be 1 or 2, got {nd}")
        args = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if kind in (LayerKind.conv, LayerKind.conv_transpose):
            args = f"{in_channels}, {out_channels}, {args}"
        if kind is LayerKind.conv_transpose and self.output_padding:
            args += f", output_padding={self.output_padding}"
        if self.dilation != 1:
            args += f", dilation={self.dilation}"
        if self.ceil_mode:
            args += ", ceil_mode=True"
        return f"{_STAGE_NAMES[kind]}{nd}d({args})"


def rank_key(solution: Solution) -> tuple[int | bool, ...]:
    """The sort key of :func:`solve`, simplest first (see the module docstring)."""
    s = solution
    over_padded = 2 * s.padding > s.dilation * (s.kernel_size - 1)
    return (
        s.dilation, s.ceil_mode, over_padded, s.kernel_size == 1,
        s.kernel_size, s.stride, s.padding, s.output_padding or 0,
    )  # fmt: skip


# --- argument checks ---------------------------------------------------------------------------
def _layer_kind(kind: LayerKind | str) -> LayerKind:
    try:
        return LayerKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in LayerKind)
        raise SettingError(f"unknown layer kind {kind!r} — use one of {choices}") from None


def _check_int(name: str, value: Any, lowest: int, highest: int = MAX_VALUE) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingError(f"{name} must be an integer, got {value!r}")
    if value < lowest:
        raise SettingError(f"{name} must be at least {lowest}, got {value}")
    if value > highest:
        raise SettingError(f"{name} must be at most {highest}, got {value}")
    return value


def _check_optional(name: str, value: int | None, lowest: int) -> int | None:
    return None if value is None else _check_int(name, value, lowest)


# --- the search --------------------------------------------------------------------------------
def _choices(fixed: int | None, bound: int) -> range:
    return range(fixed, fixed + 1) if fixed is not None else range(1, bound + 1)


def _paddings(twice_lo: int, twice_hi: int, fixed: int | None, most: int) -> range:
    """The p with ``twice_lo ≤ 2p ≤ twice_hi``: just ``fixed`` if fixed, else within ``0..most``."""
    lo, hi = max(ceil_div(twice_lo, 2), 0), twice_hi // 2
    if fixed is not None:
        lo, hi = max(lo, fixed), min(hi, fixed)
    else:
        hi = min(hi, most)
    return range(lo, hi + 1)


Candidate = tuple[int, int, int, int, int | None, bool]  # kernel, stride, padding, dilation, output_padding, ceil


def _candidates(kind: LayerKind, lin: int, lout: int, kernels: range, strides: range, dilations: range,
                padding: int | None) -> Iterator[Candidate]:  # fmt: skip
    """Every combination the closed-form arithmetic accepts (the shape model has the last word)."""
    for d in dilations:
        for k in kernels:
            span = d * (k - 1)
            for s in strides:
                if kind is LayerKind.conv:
                    # ⌊(L + 2p − span − 1)/s⌋ + 1 = out  ⇔  (out−1)·s ≤ L + 2p − span − 1 ≤ out·s − 1
                    low = (lout - 1) * s - lin + span + 1
                    for p in _paddings(low, low + s - 1, padding, span):
                        yield k, s, p, d, None, False
                elif kind is LayerKind.pool:
                    if padding is not None and padding > k // 2:
                        continue
                    # the numerator n = L + 2p − span − 1 lies in [(out−2)·s + 1, out·s − 1] for floor
                    # (the upper part) or ceil_mode (the lower part) to give out
                    low = (lout - 2) * s + 2 - lin + span
                    for p in _paddings(low, lout * s - lin + span, padding, k // 2):
                        floor = arithmetic.pool_length(lin, k, s, p, d, ceil_mode=False).result
                        ceil = arithmetic.pool_length(lin, k, s, p, d, ceil_mode=True).result
                        if floor == lout:
                            yield k, s, p, d, None, False
                        elif ceil == lout:
                            yield k, s, p, d, None, True
                elif kind is LayerKind.conv_transpose:
                    # (L−1)·s − 2p + span + 1 + op = out with 0 ≤ op < max(s, d)
                    full = (lin - 1) * s + span + 1
                    for p in _paddings(full - lout, full - lout + max(s, d) - 1, padding, span):
                        yield k, s, p, d, lout - full + 2 * p, False
                else:  # unpool: (L−1)·s − 2p + k = out
                    twice = (lin - 1) * s + k - lout
                    if twice % 2 == 0:
                        for p in _paddings(twice, twice, padding, k // 2):
                            yield k, s, p, d, None, False


def _note(kind: LayerKind, lin: int, lout: int, c: Candidate) -> str:
    k, s, p, d, op, ceil = c
    words: list[str] = []
    shrinking = kind in (LayerKind.conv, LayerKind.pool)
    if lout == lin:
        words.append("same size")
    elif shrinking and s > 1 and lout in (lin // s, ceil_div(lin, s)):
        words.append({2: "halves", 3: "thirds", 4: "quarters"}.get(s, f"1/{s} of the size"))
    elif not shrinking and s > 1 and lout == lin * s:
        words.append({2: "doubles", 3: "triples"}.get(s, f"{s}× the size"))
    if k == 1:
        words.append({LayerKind.conv: "pointwise", LayerKind.pool: "only subsamples"}.get(kind, "1-wide kernel"))
    elif p == 0:
        words.append("valid (no padding)" if kind is LayerKind.conv else "no padding")
    elif 2 * p > d * (k - 1):
        words.append("padding over half the window")
    if kind in (LayerKind.pool, LayerKind.unpool) and k == s and d == 1:
        words.append("non-overlapping windows" if kind is LayerKind.pool else "PyTorch's default stride")
    if ceil:
        words.append("ceil_mode counts the last partial window")
    return ", ".join(words)


def _as_stage(s: Solution, kind: LayerKind) -> st.Stage:
    """The solution as a 1-D stage of the shape model (the one ``stage_text`` names)."""
    call = s.stage_text(kind, nd=1)
    k, stride, p, d = (s.kernel_size,), (s.stride,), (s.padding,), (s.dilation,)
    if kind is LayerKind.conv:
        return st.Conv(name="Conv1d", call=call, nd=1, in_channels=1, out_channels=1, kernel_size=k, stride=stride,
                       padding=p, dilation=d)  # fmt: skip
    if kind is LayerKind.conv_transpose:
        return st.ConvTranspose(name="ConvTranspose1d", call=call, nd=1, in_channels=1, out_channels=1, kernel_size=k,
                                stride=stride, padding=p, output_padding=(s.output_padding or 0,), dilation=d)  # fmt: skip
    if kind is LayerKind.pool:
        return st.Pool(name="MaxPool1d", call=call, nd=1, mode="max", kernel_size=k, stride=stride, padding=p,
                       dilation=d, ceil_mode=s.ceil_mode)  # fmt: skip
    return st.Unpool(name="MaxUnpool1d", call=call, nd=1, kernel_size=k, stride=stride, padding=p)


def _agrees_with_shape_model(solution: Solution, kind: LayerKind, lin: int, lout: int) -> bool:
    stage = _as_stage(solution, kind)
    try:
        shape, _ = stage.evaluate((1, 1, lin))
    except LayerError:
        return False
    return shape[-1] == lout


def solve(
    length_in: int,
    length_out: int,
    *,
    kind: LayerKind | str = LayerKind.conv,
    kernel_size: int | None = None,
    stride: int | None = None,
    padding: int | None = None,
    dilation: int | None = None,
    max_kernel: int = 11,
    max_stride: int = 8,
    max_dilation: int = 4,
    limit: int | None = None,
) -> list[Solution]:
    """Every combination within the bounds that gives ``length_out`` from ``length_in``, simplest first.

    An empty list means there is none (not an error). Bad arguments raise
    :class:`~cnnops.errors.SettingError`; a fixed pool padding over half the fixed kernel, a
    :class:`~cnnops.errors.LayerError`.

    >>> [(s.kernel_size, s.stride, s.padding) for s in solve(28, 14, kind="pool", dilation=1, limit=3)]
    [(2, 2, 0), (3, 2, 1), (4, 2, 1)]
    >>> solve(7, 14, kind="conv_transpose", kernel_size=3, dilation=1)
    [Solution(kernel_size=3, stride=2, padding=1, dilation=1, output_padding=1, ceil_mode=False, note='doubles')]
    """
    kind = _layer_kind(kind)
    lin = _check_int("the input length", length_in, 1, MAX_LENGTH)
    lout = _check_int("the output length", length_out, 1, MAX_LENGTH)
    kernel_size = _check_optional("kernel_size", kernel_size, 1)
    stride = _check_optional("stride", stride, 1)
    padding = _check_optional("padding", padding, 0)
    dilation = _check_optional("dilation", dilation, 1)
    max_kernel = _check_int("the largest kernel size", max_kernel, 1)
    max_stride = _check_int("the largest stride", max_stride, 1)
    max_dilation = _check_int("the largest dilation", max_dilation, 1)
    if limit is not None:
        limit = _check_int("the limit", limit, 0, MAX_SOLUTIONS)
    if kind is LayerKind.unpool:
        if dilation not in (None, 1):
            raise SettingError(f"MaxUnpool has no dilation, got dilation={dilation} — leave it out")
        dilation = 1
    if kind is LayerKind.pool and kernel_size is not None and padding is not None and padding > kernel_size // 2:
        raise LayerError(
            f"a pool's padding must be at most half its kernel size: padding {padding} with kernel_size "
            f"{kernel_size} — use padding ≤ {kernel_size // 2}"
        )

    kernels, strides = _choices(kernel_size, max_kernel), _choices(stride, max_stride)
    dilations = _choices(dilation, max_dilation)
    searched = len(kernels) * len(strides) * len(dilations)
    if searched > MAX_SEARCH:
        raise SettingError(
            f"the bounds ask for {searched} kernel/stride/dilation combinations, more than {MAX_SEARCH} — "
            "lower the largest kernel, stride or dilation, or fix one of them"
        )

    found: list[Solution] = []
    for c in _candidates(kind, lin, lout, kernels, strides, dilations, padding):
        if len(found) == MAX_SOLUTIONS:
            raise CnnopsError(
                f"more than {MAX_SOLUTIONS} combinations give {lin} → {lout} — fix the kernel size, stride "
                "or padding, or lower the bounds"
            )
        k, s, p, d, op, ceil = c
        found.append(Solution(k, s, p, d, op, ceil, note=_note(kind, lin, lout, c)))
    found.sort(key=rank_key)

    # the closed forms above only propose; the shape model, the project's one source of truth about
    # what PyTorch does, decides (a disagreement would be a bug, and it must not reach the user)
    wanted = len(found) if limit is None else limit
    checked: list[Solution] = []
    for solution in found:
        if len(checked) == wanted:
            break
        if _agrees_with_shape_model(solution, kind, lin, lout):
            checked.append(solution)
    return checked


def unpool_output_range(length_in: int, kernel_size: int, stride: int | None = None,
                        padding: int = 0) -> tuple[int, int, int]:  # fmt: skip
    """``(default, smallest, largest)`` MaxUnpool output sizes for an input of ``length_in``.

    ``default`` is PyTorch's ``(L−1)·s − 2p + k`` (the stride defaults to the kernel size); an explicit
    ``output_size`` may be any size strictly between ``default − s`` and ``default + s`` that is
    not negative. The default itself can be negative (PyTorch then refuses to unpool without an
    ``output_size``); a range with no size at all raises :class:`~cnnops.errors.LayerError`.

    >>> unpool_output_range(2, kernel_size=2)
    (4, 3, 5)
    """
    lin = _check_int("the input length", length_in, 1, MAX_LENGTH)
    k = _check_int("kernel_size", kernel_size, 1)
    s = k if stride is None else _check_int("stride", stride, 1)
    p = _check_int("padding", padding, 0)
    default = arithmetic.unpool_default_length(lin, k, s, p).result
    smallest, largest = max(default - s + 1, 0), default + s - 1
    if largest < smallest:
        raise LayerError(
            f"MaxUnpool(kernel_size={k}, stride={s}, padding={p}) on {lin} has no valid output size: "
            f"its default {default} is negative and sizes must lie between {default - s} and {default + s} "
            "— use less padding"
        )
    return default, smallest, largest


def transpose_output_padding(length_in: int, length_out: int, kernel_size: int, stride: int,
                             padding: int = 0, dilation: int = 1) -> int | None:  # fmt: skip
    """The ``output_padding`` that makes ConvTranspose give ``length_out``, or None if none does.

    It must be at least 0 and smaller than the stride or the dilation (PyTorch's rule).

    >>> transpose_output_padding(7, 14, kernel_size=3, stride=2, padding=1)
    1
    >>> transpose_output_padding(7, 16, kernel_size=3, stride=2, padding=1) is None
    True
    """
    lin = _check_int("the input length", length_in, 1, MAX_LENGTH)
    lout = _check_int("the output length", length_out, 1, MAX_LENGTH)
    k = _check_int("kernel_size", kernel_size, 1)
    s = _check_int("stride", stride, 1)
    p = _check_int("padding", padding, 0)
    d = _check_int("dilation", dilation, 1)
    op = lout - arithmetic.transposed_length(lin, k, s, p, d, 0).result
    return op if 0 <= op < max(s, d) else None
