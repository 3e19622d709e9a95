"""One output value worked out: the operands, terms and rules that produced it, from a :class:`RunResult`.

:func:`explain` picks a stage and an output position and returns an :class:`Explanation`: for a conv the
input window of each input channel (padding and dilation gaps marked), the kernel and the products; for
a transposed conv the input cells that scatter into the position and their kernel taps; for a max pool
the window, the winner and the tie rule; for an average pool the sum and the divisor with its reason;
for adaptive pools the bins; for an unpool the pooled value that lands there; for a linear layer the
dot product; for an activation the function at the input value. ``value`` is the number the run
printed (the engine's), the rest is read from the same tensors, with the window geometry of
:mod:`cnnops.model.windows`. ``as_dict()`` is the ``"explain"`` object of ``--json``.

>>> import numpy as np
>>> from cnnops.run.pipeline import run_pipeline
>>> from cnnops.spec import parse_stages
>>> line = np.zeros((5, 5), dtype=np.float32); line[:, 2] = 1
>>> result = run_pipeline(line, parse_stages(["Conv2d(1, 1, 3, weight='gx', bias=False)"]), engine="numpy")
>>> e = explain(result, (0, 0))
>>> e.value, sum(e.terms), e.position
(-4.0, -4.0, (0, 0, 0))
"""

from __future__ import annotations

import itertools
import math
from dataclasses import field
from typing import TYPE_CHECKING, Any

from cnnops.errors import SettingError, setting
from cnnops.model import stages as st
from cnnops.model.arithmetic import adaptive_bins
from cnnops.model.windows import AxisWindows, padded_index, stage_windows, window_divisor
from cnnops.records import record
from cnnops.text import dims

if TYPE_CHECKING:
    import numpy as np

    from cnnops.run.pipeline import RunResult, StageResult

#: the stage kinds explained when no stage is named (flatten, dropout and the like only copy values)
COMPUTING = ("conv", "conv_transpose", "pool", "adaptive_pool", "unpool", "linear", "activation")


@record
class Window:
    """One input channel's window: ``coords`` per axis (input coordinates shown, gaps included),
    ``cells`` maps each read coordinate to (value, region) with region ``in``, ``pad`` (padding the
    layer reads) or ``over`` (a ceil_mode overhang, not read); ``kernel`` and ``products`` (conv) are
    in kernel order."""

    channel: int
    coords: list[list[int]]
    cells: dict[tuple[int, ...], tuple[float, str]]
    kernel: list[float] | None = None
    products: list[float] | None = None
    kernel_shape: tuple[int, ...] = ()
    taps: list[tuple[int, ...]] = field(default_factory=list)  # read coordinates, row-major kernel order

    @property
    def total(self) -> float:
        return math.fsum(self.products or [])

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "input_channel": self.channel,
            "taps": [list(t) for t in self.taps],
            "inputs": [_json32(self.cells[t][0]) for t in self.taps],
            "regions": [self.cells[t][1] for t in self.taps],
        }
        if self.kernel is not None:
            doc["kernel"] = [_json32(v) for v in self.kernel]
            doc["products"] = self.products
            doc["sum"] = self.total
        return doc


@record
class Explanation:
    """How the value at ``position`` of stage ``stage_index``'s output came about."""

    stage_index: int
    stage: str  # the stage as the tables show it
    torch_repr: str
    kind: str
    position: tuple[int, ...]  # full index into the stage's output tensor
    value: float
    terms: list[float] = field(default_factory=list)  # sum(terms) (+ bias) = value for conv, linear, avg pool
    bias: float | None = None
    windows: list[Window] = field(default_factory=list)
    divisor: int | None = None
    divisor_reason: str = ""
    winner: tuple[int, ...] | None = None  # input coordinates of a max pool's pick
    winner_index: int | None = None  # its flat index in the input plane (PyTorch's index)
    ties: list[tuple[int, ...]] = field(default_factory=list)  # other cells holding the same maximum
    bins: list[tuple[int, int]] = field(default_factory=list)
    contributions: list[dict[str, Any]] = field(default_factory=list)  # transposed conv, unpool, linear
    formula: str = ""  # activations: the function with the input value substituted
    operand: float | None = None  # activations, flatten: the input value
    source: tuple[int, ...] | None = None  # activations, flatten: the input position read
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "stage": self.stage_index,
            "stage_text": self.torch_repr,
            "kind": self.kind,
            "position": list(self.position),
            "value": _json32(self.value),
        }
        if self.windows:
            doc["windows"] = [w.as_dict() for w in self.windows]
        if self.contributions:
            doc["contributions"] = [{k: _json32(v) if k in ("input_value", "weight") else v for k, v in c.items()}
                                    for c in self.contributions]  # fmt: skip
        if self.kind in ("conv", "conv_transpose", "linear") or self.divisor is not None:
            doc["terms"] = self.terms
        if self.kind in ("conv", "conv_transpose", "linear"):
            doc["bias"] = _json32(self.bias) if self.bias is not None else None
        if self.divisor is not None:
            doc["sum"] = math.fsum(w.cells[t][0] for w in self.windows for t in w.taps
                                   if w.cells[t][1] != "over")  # fmt: skip
            doc["divisor"] = self.divisor
            doc["divisor_reason"] = self.divisor_reason
        if self.bins:
            doc["bins"] = [list(b) for b in self.bins]
        if self.winner is not None:
            doc["winner"] = list(self.winner)
            doc["winner_index"] = self.winner_index
            doc["ties"] = [list(t) for t in self.ties]
        if self.formula:
            doc["formula"] = self.formula
        if self.operand is not None:
            doc["input"] = _json32(self.operand)
        if self.source is not None:
            doc["input_position"] = list(self.source)
        if self.notes:
            doc["notes"] = self.notes
        return doc


def _json32(value: float) -> float | str:
    """A float32 operand in its shortest exact float32 form, as the rest of the document writes numbers."""
    import numpy as np

    from cnnops.io.jsontext import array_to_json

    return array_to_json(np.asarray(value, dtype=np.float32))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- entry


def explainable(stage: st.Stage) -> bool:
    return stage.kind in COMPUTING or isinstance(stage, st.Flatten | st.Passthrough)


def explain(result: RunResult, position: tuple[int, ...], stage: int | None = None) -> Explanation:
    """The explanation of output ``position`` of stage ``stage`` (1-based; default: the last stage that
    computes — conv, pool, unpool, linear or activation). ``position`` may leave out leading dimensions,
    which are then 0: ``(0, 1)`` on a ``1×3×3`` output is ``(0, 0, 1)``."""
    res = _pick(result, stage)
    row = res.row
    out = res.output.reshape(row.output_shape)
    full = _full_position(position, row.output_shape, row.index, row.stage.call)
    x = result.input_of(row).reshape(row.effective_input)
    expl = Explanation(row.index, row.stage.call, row.stage.torch_repr(), row.stage.kind, full, float(out[full]))
    stage_ = row.stage
    if isinstance(stage_, st.Conv):
        _conv(expl, stage_, res, x)
    elif isinstance(stage_, st.ConvTranspose):
        _conv_transpose(expl, stage_, res, x)
    elif isinstance(stage_, st.Pool):
        _pool(expl, stage_, res, x)
    elif isinstance(stage_, st.AdaptivePool):
        _adaptive(expl, stage_, res, x)
    elif isinstance(stage_, st.Unpool):
        _unpool(expl, stage_, res, x, _unpool_indices(result, res))
    elif isinstance(stage_, st.Linear):
        _linear(expl, res, x)
    elif isinstance(stage_, st.GLU):
        _glu(expl, stage_, x)
    elif isinstance(stage_, st.Activation):
        _activation(expl, stage_, x, res)
    else:  # Flatten, Dropout, Identity: the value is copied from one input position
        import numpy as np

        flat = int(np.ravel_multi_index(full, row.output_shape))
        source = tuple(int(i) for i in np.unravel_index(flat, row.effective_input))
        expl.operand, expl.source = float(x[source]), source
        expl.notes.append(f"{stage_.name} copies the input value at {_at(source)}")
    return expl


def _pick(result: RunResult, stage: int | None) -> StageResult:
    rows = [r.row for r in result.results]
    if not rows:
        raise SettingError(f"{setting('explain')} explains a stage's output, and this run has no stage")
    if stage is None:
        computing = [r for r in result.results if r.row.stage.kind in COMPUTING]
        if not computing:
            raise SettingError(
                f"{setting('explain')}: no stage here computes values (conv, pool, unpool, linear or activation)"
                f" — name one with {setting('explain_stage')}"
            )
        return computing[-1]
    if not 1 <= stage <= len(rows):
        raise SettingError(
            f"{setting('explain_stage')} {stage} is not a stage: give 1 to {len(rows)}"
        )
    res = result.results[stage - 1]
    if not explainable(res.row.stage):
        raise SettingError(
            f"stage {stage} {res.row.stage.call} cannot be explained value by value — "
            f"pick a conv, pool, unpool, linear, activation or flatten stage with {setting('explain_stage')}"
        )
    return res


def _full_position(position: tuple[int, ...], shape: tuple[int, ...], index: int, call: str) -> tuple[int, ...]:
    if len(position) > len(shape):
        raise SettingError(
            f"{setting('explain')} {','.join(map(str, position))} has {len(position)} coordinates but the output "
            f"of stage {index} {call} is {dims(shape)} ({len(shape)} dimensions)"
        )
    full = (0,) * (len(shape) - len(position)) + tuple(position)
    if 0 in shape:
        raise SettingError(
            f"{setting('explain')}: the output {dims(shape)} of stage {index} {call} is empty (dimension "
            f"{shape.index(0)} has size 0), so it has no value to explain"
        )
    for axis, (i, n) in enumerate(zip(full, shape, strict=True)):
        if not 0 <= i < n:
            raise SettingError(
                f"{setting('explain')} {','.join(map(str, position))} is outside the output {dims(shape)} of "
                f"stage {index} {call}: coordinate {axis} runs from 0 to {n - 1}"
            )
    return full


def _at(coords: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, coords)) + ")"


def _batched(x: np.ndarray, full: tuple[int, ...], nd: int) -> tuple[np.ndarray, int, int, tuple[int, ...], tuple]:
    """(x as (N, C, *L), n, c, spatial position, prefix that turns (n, c) back into the user's index)."""
    if x.ndim == nd + 2:
        return x, full[0], full[1], full[2:], ()
    return x[None], 0, full[0], full[1:], (None,)


def _in_coords(prefix: tuple, n: int, c: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """An input cell as the user indexes the stage's input: (c, h, w) unbatched, (n, c, h, w) batched."""
    return ((c,) if prefix else (n, c)) + tuple(spatial)


def _f(value: Any) -> float:
    return float(value)


# ---------------------------------------------------------------------------------------------- convolution


def _conv(expl: Explanation, stage: st.Conv, res: StageResult, x: np.ndarray) -> None:
    import numpy as np

    nd = stage.nd
    xb, n, co, o, prefix = _batched(x, expl.position, nd)
    axes = stage_windows(stage, xb.shape[-nd:], res.row.output_shape[-nd:])
    cin_g, cout_g = stage.in_channels // stage.groups, stage.out_channels // stage.groups
    group = co // cout_g
    weight = np.asarray(res.weight)
    pads = stage.pads()
    for local in range(cin_g):
        ci = group * cin_g + local
        window = _window(axes, o, ci)
        products, kernel = [], []
        for k in itertools.product(*(range(n_k) for n_k in stage.kernel_size)):
            tap = tuple(axes[a].taps[o[a]][k[a]] for a in range(nd))
            inside = all(0 <= tap[a] < xb.shape[2 + a] for a in range(nd))
            if inside:
                value, region = _f(xb[(n, ci, *tap)]), "in"
            elif stage.padding_mode == "zeros":
                value, region = 0.0, "pad"
            else:
                source = tuple(padded_index(tap[a], xb.shape[2 + a], stage.padding_mode) for a in range(nd))
                value, region = _f(xb[(n, ci, *source)]), "pad"
            w = _f(weight[(co, local, *k)])
            window.cells[tap] = (value, region)
            window.taps.append(tap)
            kernel.append(w)
            products.append(value * w + 0.0)  # exact: float32 × float32 fits a float64; + 0.0 drops −0
        window.kernel, window.products, window.kernel_shape = kernel, products, tuple(stage.kernel_size)
        expl.windows.append(window)
        expl.terms.extend(products)
    expl.bias = _f(res.bias[co]) if res.bias is not None else None
    if any(p for pair in pads for p in pair):
        mode = "zeros" if stage.padding_mode == "zeros" else f"copies of the input ({stage.padding_mode})"
        expl.notes.append(f"padding cells are shown in parentheses: {mode}")
    if any(d > 1 for d in stage.dilation):
        expl.notes.append(f"dilation {_each(stage.dilation)}: the kernel reads every {_each(stage.dilation)}-th cell; "
                          "the cells between are skipped (·)")  # fmt: skip
    if stage.groups > 1:
        expl.notes.append(f"groups={stage.groups}: output channel {co} sees input channels "
                          f"{group * cin_g} to {group * cin_g + cin_g - 1} only")  # fmt: skip
    expl.notes.append("cross-correlation, as PyTorch computes it: the kernel is not flipped")


def _each(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def _window(axes: list[AxisWindows], o: tuple[int, ...], channel: int) -> Window:
    """The coordinates a window spans per axis, from its first tap to its last (gaps included)."""
    coords = []
    for a, axis in enumerate(axes):
        taps = axis.taps[o[a]]
        coords.append(list(range(taps[0], taps[-1] + 1)) if taps else [])
    return Window(channel, coords, {})


def _conv_transpose(expl: Explanation, stage: st.ConvTranspose, res: StageResult, x: np.ndarray) -> None:
    import numpy as np

    nd = stage.nd
    xb, n, co, o, prefix = _batched(x, expl.position, nd)
    cin_g, cout_g = stage.in_channels // stage.groups, stage.out_channels // stage.groups
    group, local = divmod(co, cout_g)
    weight = np.asarray(res.weight)
    # along each axis: the (input i, tap k) pairs with i·stride − padding + k·dilation = o
    pairs = []
    for a in range(nd):
        s, p, d, k_n, length = stage.stride[a], stage.padding[a], stage.dilation[a], stage.kernel_size[a], xb.shape[2 + a]
        pairs.append([(i, k) for k in range(k_n) for i in [(o[a] + p - k * d) // s]
                      if (o[a] + p - k * d) % s == 0 and 0 <= i < length])  # fmt: skip
    for ci in range(group * cin_g, (group + 1) * cin_g):
        for combo in itertools.product(*pairs):
            i = tuple(c[0] for c in combo)
            k = tuple(c[1] for c in combo)
            value, w = _f(xb[(n, ci, *i)]), _f(weight[(ci, local, *k)])
            expl.contributions.append({"input": list(_in_coords(prefix, n, ci, i)), "input_value": value,
                                       "tap": list(k), "weight": w, "product": value * w})  # fmt: skip
            expl.terms.append(value * w)
    expl.bias = _f(res.bias[co]) if res.bias is not None else None
    expl.notes.append(
        "a transposed conv scatters: input cell i stamps the kernel onto outputs i·stride − padding + k·dilation; "
        f"output {_at(o)} collects the {len(expl.terms)} stamp" + (" that lands" if len(expl.terms) == 1 else "s that land") + " on it"
    )
    if not expl.terms:
        expl.notes.append("no input cell's stamp reaches this position (output_padding or a stride gap): only the bias")


# ---------------------------------------------------------------------------------------------- pooling


def _pool(expl: Explanation, stage: st.Pool, res: StageResult, x: np.ndarray) -> None:
    nd = stage.nd
    xb, n, c, o, prefix = _batched(x, expl.position, nd)
    axes = stage_windows(stage, xb.shape[-nd:], res.row.output_shape[-nd:])
    window = _window(axes, o, c)
    for tap in itertools.product(*(axes[a].taps[o[a]] for a in range(nd))):
        regions = [axes[a].region(tap[a]) for a in range(nd)]
        region = "in" if all(r == "in" for r in regions) else "over" if "over" in regions else "pad"
        value = _f(xb[(n, c, *tap)]) if region == "in" else (0.0 if stage.mode == "avg" else -math.inf)
        window.cells[tap] = (value, region)
        window.taps.append(tap)
    expl.windows.append(window)
    if stage.mode == "max":
        _max_rule(expl, res, window, xb.shape[-nd:], prefix, n, c)
        if any(region == "pad" for _, region in window.cells.values()):
            expl.notes.append("padding cells count as −inf: a max pool never picks them")
        if any(d > 1 for d in stage.dilation):
            expl.notes.append(f"dilation {_each(stage.dilation)}: the window reads one cell in "
                              f"every {_each(stage.dilation)} (· skipped)")  # fmt: skip
        return
    divisor = window_divisor(stage, axes, o)
    read = [window.cells[t][0] for t in window.taps if window.cells[t][1] != "over"]
    expl.divisor = divisor
    expl.terms = [v / divisor for v in read]
    inside = sum(1 for t in window.taps if window.cells[t][1] == "in")
    padded = sum(1 for t in window.taps if window.cells[t][1] == "pad")
    over = sum(1 for t in window.taps if window.cells[t][1] == "over")
    if stage.divisor_override:
        reason = f"divisor_override={stage.divisor_override}: PyTorch divides by it whatever the window holds"
    elif stage.count_include_pad:
        reason = f"count_include_pad=True: the {inside + padded} cells of the window" + (
            f", {padded} of them padding (read as 0)" if padded else "")
    else:
        reason = f"count_include_pad=False: only the {inside} cells inside the input" + (
            f" ({padded} padding cell{'s' if padded != 1 else ''} not counted)" if padded else "")
    if over:
        reason += f"; the {over} cell{'s' if over != 1 else ''} hanging over the end (ceil_mode) are not counted"
    expl.divisor_reason = reason


def _max_rule(expl: Explanation, res: StageResult, window: Window, size: tuple[int, ...], prefix: tuple,
              n: int, c: int) -> None:  # fmt: skip
    """The winner as PyTorch's index says, the cells tying with it and the rule that broke the tie."""
    import numpy as np

    index = int(np.asarray(res.indices).reshape(res.row.output_shape)[expl.position])
    expl.winner_index = index
    winner = tuple(int(i) for i in np.unravel_index(index, size)) if 0 <= index < math.prod(size) else None
    expl.winner = _in_coords(prefix, n, c, winner) if winner is not None else None
    read = [t for t in window.taps if window.cells[t][1] == "in"]
    values = {t: window.cells[t][0] for t in read}
    if winner is None or math.isnan(expl.value):
        if math.isnan(expl.value):
            expl.notes.append("the window holds NaN: NaN wins, and the index is that of the last NaN, as PyTorch")
        return
    if not read:
        expl.notes.append(f"the window reads only padding, so the value is −inf; PyTorch's index {index} then "
                          "points at a cell outside the window")  # fmt: skip
        return
    ties = [t for t in read if values[t] == expl.value and t != winner]
    expl.ties = [_in_coords(prefix, n, c, t) for t in ties]
    assert expl.winner is not None
    where = f"input {_at(expl.winner)}, flat index {index}" + (
        f" = {winner[0]}·{size[1]} + {winner[1]} (row {winner[0]}, column {winner[1]})" if len(size) == 2 else "")
    expl.notes.append(f"the maximum {_num(expl.value)} is at {where}")
    if ties:
        expl.notes.append(
            f"tie: {', '.join(_at(t) for t in expl.ties)} hold{'s' if len(ties) == 1 else ''} the same value; "
            "the first maximum in row-major window order wins, as PyTorch"
        )


def _num(value: float) -> str:
    return f"{value:.5g}"


def _adaptive(expl: Explanation, stage: st.AdaptivePool, res: StageResult, x: np.ndarray) -> None:
    nd = stage.nd
    xb, n, c, o, prefix = _batched(x, expl.position, nd)
    size = xb.shape[-nd:]
    out_size = res.row.output_shape[-nd:]
    expl.bins = [adaptive_bins(size[a], out_size[a])[o[a]] for a in range(nd)]
    window = Window(c, [list(range(a, b)) for a, b in expl.bins], {})
    for tap in itertools.product(*(range(a, b) for a, b in expl.bins)):
        window.cells[tap] = (_f(xb[(n, c, *tap)]), "in")
        window.taps.append(tap)
    expl.windows.append(window)
    bins = " × ".join(f"[{a}, {b})" for a, b in expl.bins)
    rule = " × ".join(f"[⌊{i}·{n}/{m}⌋, ⌈{i + 1}·{n}/{m}⌉)" for i, n, m in zip(o, size, out_size, strict=True))
    expl.notes.append(f"bin {bins} = {rule}")
    if stage.mode == "max":
        _max_rule(expl, res, window, size, prefix, n, c)
        return
    count = len(window.taps)
    expl.divisor = count
    expl.divisor_reason = f"the {count} cell{'s' if count != 1 else ''} of the bin"
    expl.terms = [window.cells[t][0] / count for t in window.taps]


def _unpool_indices(result: RunResult, res: StageResult) -> np.ndarray:
    import numpy as np

    row = res.row
    idx = result.results[row.unpool_source - 1].indices if row.unpool_source is not None else result.input_indices
    return np.asarray(idx).reshape(row.effective_input).astype(np.int64)


def _unpool(expl: Explanation, stage: st.Unpool, res: StageResult, x: np.ndarray, idx: np.ndarray) -> None:
    import numpy as np

    nd = stage.nd
    xb, n, c, o, prefix = _batched(x, expl.position, nd)
    ib = idx if idx.ndim == nd + 2 else idx[None]
    size = res.row.output_shape[-nd:]
    flat = int(np.ravel_multi_index(o, size))
    plane = ib[n, c].reshape(-1)
    hits = [int(q) for q in np.flatnonzero(plane == flat)]
    pooled = xb.shape[-nd:]
    source = f" of stage {res.row.unpool_source}" if res.row.unpool_source is not None else " that came with the input"
    where = f"flat index {flat}" + (f" = {o[0]}·{size[1]} + {o[1]}" if nd == 2 else "")
    for q in hits:
        at = tuple(int(i) for i in np.unravel_index(q, pooled))
        expl.contributions.append({"input": list(_in_coords(prefix, n, c, at)), "input_value": _f(xb[(n, c, *at)]),
                                   "index": flat, "output": list(o)})  # fmt: skip
    if not hits:
        expl.notes.append(f"no pooled value has {where} in the max-pool indices{source}: unpooling leaves it 0")
        return
    # the value written: the last one in row-major order on one thread; among different values saved at one
    # index, PyTorch's multi-threaded CPU loop may keep another one, so name the one the output holds
    landed = [c for c in expl.contributions if c["input_value"] == expl.value] or expl.contributions
    first = landed[-1]
    expl.notes.append(f"the pooled value {_num(first['input_value'])} at {_at(tuple(first['input']))} saved {where} "
                      f"(the max pool's indices{source}), so it lands here")  # fmt: skip
    if len(hits) > 1:
        same = len({c["input_value"] for c in expl.contributions}) == 1
        expl.notes.append(
            f"{len(hits)} pooled values saved this index (overlapping windows picked the same cell)"
            + ("" if same else "; PyTorch leaves open which one stays (one thread writes them in row-major order, "
               "the last staying; several threads race)")
        )  # fmt: skip


def _linear(expl: Explanation, res: StageResult, x: np.ndarray) -> None:
    import numpy as np

    full = expl.position
    vector = x[full[:-1]] if x.ndim > 1 else x
    j = full[-1]
    row = np.asarray(res.weight)[j]
    for i, (w, v) in enumerate(zip(row.tolist(), np.asarray(vector).tolist(), strict=True)):
        expl.contributions.append({"input": [*full[:-1], i], "input_value": v, "weight": w, "product": v * w})
        expl.terms.append(v * w)
    expl.bias = _f(res.bias[j]) if res.bias is not None else None
    expl.notes.append(f"row {j} of the weight ({len(expl.terms)} values) times the input vector, summed" +
                      (", plus bias" if expl.bias is not None else ""))  # fmt: skip
    if res.row.flattened_shape:
        expl.notes.append(f"the input was flattened to {dims(res.row.flattened_shape)} first (implicit flatten)")


# ---------------------------------------------------------------------------------------------- activations

_FORMULAS = {
    "ReLU": "max(0, {x})",
    "ReLU6": "min(max(0, {x}), 6)",
    "Sigmoid": "1 / (1 + e^(−{x}))",
    "Tanh": "tanh({x})",
    "SiLU": "{x} · σ({x}) = {x} / (1 + e^(−{x}))",
    "Mish": "{x} · tanh(ln(1 + e^{x}))",
    "Hardswish": "{x} · min(max({x} + 3, 0), 6) / 6",
}


def activation_formula(stage: st.Activation, x: float) -> str:
    """The function with ``x`` written in: ``max(0, -4)``."""
    v = f"({_num(x)})" if x < 0 else _num(x)
    name = stage.name
    if name in _FORMULAS:
        return _FORMULAS[name].format(x=v)
    if name == "LeakyReLU":
        slope = stage.option("negative_slope", 0.01)
        return f"{v} if {v} > 0 else {_num(slope)} · {v}"
    if name == "ELU":
        alpha = stage.option("alpha", 1.0)
        return f"{v} if {v} > 0 else {_num(alpha)} · (e^{v} − 1)"
    if name == "GELU":
        if stage.option("approximate", "none") == "tanh":
            return f"0.5 · {v} · (1 + tanh(√(2/π) · ({v} + 0.044715 · {v}³)))"
        return f"{v} · Φ({v}), Φ the standard normal CDF"
    if name == "Hardtanh":
        low, high = stage.bounds()
        return f"min(max({v}, {_num(low)}), {_num(high)})"
    if name == "Threshold":
        threshold, value = stage.option("threshold"), stage.option("value")
        return f"{v} if {v} > {_num(threshold)} else {_num(value)}"
    if name == "Hardsigmoid":
        return f"min(max({v} + 3, 0), 6) / 6"
    if name == "SELU":
        return f"λ · ({v} if {v} > 0 else α · (e^{v} − 1)), λ ≈ 1.0507, α ≈ 1.6733"
    if name == "CELU":
        alpha = stage.option("alpha", 1.0)
        return f"max(0, {v}) + min(0, {_num(alpha)} · (e^({v} / {_num(alpha)}) − 1))"
    if name == "Softsign":
        return f"{v} / (1 + |{v}|)"
    if name == "Tanhshrink":
        return f"{v} − tanh({v})"
    if name == "Softplus":
        beta, threshold = stage.option("beta", 1.0), stage.option("threshold", 20.0)
        return f"ln(1 + e^({_num(beta)} · {v})) / {_num(beta)}  ({v} itself when {_num(beta)} · {v} > {_num(threshold)})"
    return name


def _glu(expl: Explanation, stage: st.GLU, x: np.ndarray) -> None:
    """GLU: the output at i along ``dim`` is a·σ(b), a the input at i and b the input half the dim further on."""
    full = expl.position
    dim = stage.dim % x.ndim
    half = x.shape[dim] // 2
    b_at = full[:dim] + (full[dim] + half,) + full[dim + 1 :]
    a, b = float(x[full]), float(x[b_at])
    expl.operand, expl.source = a, full
    expl.contributions += [{"part": "a", "input": list(full), "input_value": a},
                           {"part": "b", "input": list(b_at), "input_value": b}]  # fmt: skip
    va, vb = (f"({_num(v)})" if v < 0 else _num(v) for v in (a, b))
    expl.formula = f"a · σ(b) = {va} / (1 + e^(−{vb}))"
    expl.notes.append(f"GLU over dim {dim}: a from the first half, b from the second ({half} further along)")


def _activation(expl: Explanation, stage: st.Activation, x: np.ndarray, res: StageResult) -> None:
    full = expl.position
    expl.operand, expl.source = float(x[full]), full
    if isinstance(stage, st.PReLU):
        import numpy as np

        weight = np.asarray(res.weight).reshape(-1)
        channel = (full[1] if x.ndim > 1 else 0) if weight.size > 1 else 0
        slope = float(weight[channel])
        shown = f"({_num(expl.operand)})" if expl.operand < 0 else _num(expl.operand)
        expl.formula = f"{shown} if {shown} ≥ 0 else {_num(slope)} · {shown}"
        expl.notes.append(f"PReLU's learnable slope a = {_num(slope)}" +
                          (f" (channel {channel}'s)" if weight.size > 1 else " (one for all channels)"))  # fmt: skip
        return
    if stage.name in ("Softmax", "LogSoftmax"):
        dim = stage.option("dim")
        if dim is None:
            dim = 0 if x.ndim in (0, 1, 3) else 1
        dim %= max(x.ndim, 1)
        line = [full[:dim] + (i,) + full[dim + 1:] for i in range(x.shape[dim])]
        values = [float(x[p]) for p in line]
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        for p, v, e in zip(line, values, exps, strict=True):
            expl.contributions.append({"input": list(p), "input_value": v, "exp": e})
        log = stage.name == "LogSoftmax"
        total = math.fsum(exps)
        mine = math.exp(expl.operand - top)
        expl.formula = (f"({_num(expl.operand)} − {_num(top)}) − ln(Σ e^(x − {_num(top)})) = "
                        f"{_num(expl.operand - top)} − ln({_num(total)})" if log else
                        f"e^({_num(expl.operand)} − {_num(top)}) / Σ e^(x − {_num(top)}) = {_num(mine)} / {_num(total)}")  # fmt: skip
        expl.notes.append(f"{stage.name} over dim {dim}: the {len(values)} values along it; subtracting the largest "
                          f"({_num(top)}) changes nothing but keeps e^x from overflowing")  # fmt: skip
        return
    expl.formula = activation_formula(stage, expl.operand)


# ---------------------------------------------------------------------------------------------- parsing


def parse_position(text: str) -> tuple[int, ...]:
    """``"0,1"`` or ``"(2, 0, 1)"`` → a tuple; SettingError naming the setting otherwise.

    >>> parse_position("2,0,1")
    (2, 0, 1)
    """
    import re

    parts = [p for p in re.split(r"[,\s]+", text.strip().strip("()[]").strip()) if p]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise SettingError(
            f"{setting('explain')} takes an output position such as 0,1 or 2,0,1 (channel first, "
            f"non-negative integers), got '{text}'"
        )
    return tuple(int(p) for p in parts)
