"""The auto engine's estimate: how long each engine would take for a run, from the shapes alone.

Each stage's work is counted in units of a few kinds (multiply-adds and im2col columns of a
convolution, window cells of a pooling, elements of a cheap or a transcendental activation, …), and
each engine has a rate in seconds per unit of each kind, plus a cost per stage; torch adds its import
when it is not imported yet. ``cnnops bench --calibrate`` measures the rates on this machine and stores
them in the user's cache directory (:func:`rates_path`); without that file the defaults below, measured
on a 2-core x86 machine, are used.

>>> from cnnops.model.trace import trace_shapes
>>> from cnnops.spec import parse_stages
>>> numpy_s, torch_s = estimate(trace_shapes((1, 1, 64, 64), parse_stages(["Conv2d(1, 4, 3)", "ReLU"])), DEFAULTS)
>>> numpy_s < torch_s
True
"""

from __future__ import annotations

import math
import os
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnops.model.arithmetic import sums_pairwise, window_sum_work
from cnnops.records import record

if TYPE_CHECKING:
    from cnnops.model.trace import Row, Trace

#: the kinds of work; rates are seconds per unit of each
KINDS = ("conv_mac", "conv_cols", "conv_out", "convt_add", "maxpool", "avgpool", "adaptive", "elementwise",
         "transcendental", "softmax", "stage")  # fmt: skip

#: version of the rates file's layout: a file of another version is ignored
FORMAT = 1


@record(frozen=True)
class Rates:
    """Seconds per unit of work for each engine, and what importing torch costs."""

    numpy: dict[str, float] = field(default_factory=dict)
    torch: dict[str, float] = field(default_factory=dict)
    torch_import: float = 2.0
    source: str = "defaults"

    def as_dict(self) -> dict[str, object]:
        return {"format": FORMAT, "numpy": self.numpy, "torch": self.torch, "torch_import": self.torch_import}


# Measured with `cnnops bench --calibrate` on the project's 2-core x86 machine (OpenBLAS, torch 2.13 CPU,
# load about 1.2), rounded; NumPy's activation rates again after its smooth activations moved to smaller
# blocks and ReLU stopped taking a masked copy for a −0.
DEFAULTS = Rates(
    numpy={"conv_mac": 1.1e-11, "conv_cols": 3.5e-10, "conv_out": 0.0, "convt_add": 1.5e-9, "maxpool": 4.2e-10,
           "avgpool": 6.0e-10, "adaptive": 8.3e-9, "elementwise": 1.1e-9, "transcendental": 2.1e-8,
           "softmax": 7.0e-9, "stage": 5e-5},
    torch={"conv_mac": 1.1e-11, "conv_cols": 0.0, "conv_out": 1.0e-8, "convt_add": 2.2e-10, "maxpool": 1.4e-9,
           "avgpool": 4.3e-10, "adaptive": 5.8e-10, "elementwise": 1.3e-9, "transcendental": 1.7e-9,
           "softmax": 1.4e-9, "stage": 5e-5},
    torch_import=1.5,
)  # fmt: skip


def rates_path() -> Path:
    """Where ``cnnops bench --calibrate`` keeps this machine's rates: $XDG_CACHE_HOME/cnnops (else ~/.cache/cnnops)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnops" / "engine-rates.json"


def load_rates() -> Rates:
    """This machine's measured rates if ``cnnops bench --calibrate`` stored them, else the defaults (also
    for a file that cannot be read or is not what it should be: a cache is never an error)."""
    try:
        text = _rates_text(rates_path())
        if text is None:
            return DEFAULTS
        import json  # only for a stored file: most runs have none

        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            return DEFAULTS
        numpy, torch = ({k: float(v) for k, v in doc[name].items() if k in KINDS} for name in ("numpy", "torch"))
        imported = float(doc["torch_import"])
        if not all(math.isfinite(v) and v >= 0 for v in [*numpy.values(), *torch.values(), imported]):
            return DEFAULTS
        return Rates({**DEFAULTS.numpy, **numpy}, {**DEFAULTS.torch, **torch}, imported, str(rates_path()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
        # OverflowError: a number too large for a float; RecursionError: lists nested thousands deep
        return DEFAULTS


#: a rates file holds some 700 bytes: a larger one is not one, and is not read whole
MAX_RATES_BYTES = 1 << 16


def _rates_text(path: Path) -> str | None:
    """The text of the rates file, or None when what is there is not a regular file of at most
    MAX_RATES_BYTES: a FIFO would block every run, /dev/zero would fill the memory."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # opening a FIFO does not wait for a writer
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size <= MAX_RATES_BYTES:
            chunk = os.read(fd, MAX_RATES_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > MAX_RATES_BYTES else b"".join(chunks).decode("utf-8")
    finally:
        os.close(fd)


def save_rates(rates: Rates) -> Path:
    """Store measured rates where :func:`load_rates` finds them (written whole, then renamed into place)."""
    import json

    from cnnops.io.write import atomic_write_bytes

    path = rates_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(str(path), (json.dumps(rates.as_dict(), indent=1) + "\n").encode())
    return path


#: each activation's kind of work, and its time per element on each engine relative to the activation
#: its kind is calibrated on (GELU for "transcendental", ReLU for "elementwise", Softmax for "softmax"):
#: (kind, NumPy, torch), measured on 2**24 elements on the project's machine. One rate per kind would
#: make Tanh cost NumPy what GELU does (7× its time) and LeakyReLU what ReLU does (a fifth of it).
#: Not listed: "elementwise", 1, 1.
ACTIVATION_WORK = {
    "GELU": ("transcendental", 1.0, 1.0),
    "GELU-tanh": ("transcendental", 0.33, 1.3),
    "SiLU": ("transcendental", 0.16, 0.87),
    "Mish": ("transcendental", 0.41, 2.0),
    "ELU": ("transcendental", 0.33, 1.1),
    "SELU": ("transcendental", 0.34, 1.1),
    "CELU": ("transcendental", 0.35, 1.1),
    "Sigmoid": ("transcendental", 0.17, 0.87),
    "Tanh": ("transcendental", 0.15, 1.5),
    "Softplus": ("transcendental", 0.30, 1.2),
    "GLU": ("transcendental", 0.45, 0.95),  # per output element: half the input's
    "ReLU": ("elementwise", 1.0, 1.0),
    "ReLU6": ("elementwise", 6.2, 1.0),
    "LeakyReLU": ("elementwise", 5.3, 1.05),
    "Threshold": ("elementwise", 4.7, 1.05),
    "PReLU": ("elementwise", 5.5, 1.0),
    "Hardsigmoid": ("elementwise", 2.6, 1.0),
    "Hardtanh": ("elementwise", 1.8, 1.0),
    "Hardswish": ("elementwise", 1.9, 1.15),
    "Softsign": ("elementwise", 1.6, 3.0),
    "Tanhshrink": ("elementwise", 1.6, 3.0),
    "Softmax": ("softmax", 1.0, 1.0),
    "LogSoftmax": ("softmax", 1.0, 1.0),
}


def work(row: Row) -> tuple[dict[str, float], dict[str, float]]:
    """One stage's work as (NumPy units, torch units) by kind: the two engines do different work for
    some stages (pooling: NumPy reduces one axis at a time, torch reads every window cell)."""
    stage: Any = row.stage
    kind = stage.kind
    out = math.prod(row.output_shape)
    inp = math.prod(row.effective_input)
    both = {"stage": 1.0}
    if kind in ("conv", "linear"):
        macs = float(row.macs)
        per_column = max(1, out // max(1, _positions(row)) // max(1, getattr(stage, "groups", 1)))
        numpy = {"conv_mac": macs, "conv_cols": macs / per_column, "conv_out": out}
        return {**both, **numpy}, {**both, "conv_mac": macs, "conv_out": out}
    if kind == "conv_transpose":
        taps = math.prod(stage.kernel_size)
        adds = float(inp // max(1, stage.in_channels) * stage.out_channels * taps)
        return {**both, "conv_mac": float(row.macs), "convt_add": adds}, {**both, "conv_mac": float(row.macs),
                                                                          "convt_add": adds}  # fmt: skip
    if kind == "pool":
        window = math.prod(stage.kernel_size)
        if stage.mode == "max":
            along = sum(min(k, 2 * math.ceil(math.log2(max(k, 2)))) for k in stage.kernel_size)
            return {**both, "maxpool": inp + out * along}, {**both, "maxpool": inp + out * window}
        numpy_adds = exact = out * window
        nd = len(stage.kernel_size)
        shape = row.effective_input
        planes, lengths = math.prod(shape[:-nd]), tuple(shape[-nd:])
        outs, padding = tuple(row.output_shape[-nd:]), tuple(getattr(stage, "padding", (0,) * nd))
        if sums_pairwise(planes, lengths, tuple(stage.kernel_size), padding, outs):  # as the engine does
            numpy_adds = window_sum_work(planes, lengths, tuple(stage.kernel_size), padding, outs)[1]
        return {**both, "avgpool": inp + numpy_adds}, {**both, "avgpool": inp + exact}
    if kind == "adaptive_pool":
        return {**both, "adaptive": inp + out}, {**both, "adaptive": inp + out}
    if kind == "activation":
        name = stage.name
        if name == "GELU" and stage.option("approximate", "none") == "tanh":
            name = "GELU-tanh"
        unit, numpy_weight, torch_weight = ACTIVATION_WORK.get(name, ("elementwise", 1.0, 1.0))
        return {**both, unit: out * numpy_weight}, {**both, unit: out * torch_weight}
    return {**both, "elementwise": max(inp, out)}, {**both, "elementwise": max(inp, out)}


def _positions(row: Row) -> int:
    """Output positions per output channel (the im2col columns of a convolution)."""
    shape = row.output_shape
    nd = getattr(row.stage, "nd", 0)
    if row.stage.kind == "linear":
        return math.prod(shape[:-1]) or 1
    return math.prod(shape[-nd:]) * (shape[0] if len(shape) == nd + 2 else 1) if nd else 1


def estimate(trace: Trace, rates: Rates, *, torch_imported: bool = False) -> tuple[float, float]:
    """Seconds each engine would take for ``trace``: (NumPy, torch including its import unless done)."""
    numpy_s = torch_s = 0.0
    for row in trace.rows:
        numpy_units, torch_units = work(row)
        numpy_s += sum(rates.numpy.get(k, 0.0) * v for k, v in numpy_units.items())
        torch_s += sum(rates.torch.get(k, 0.0) * v for k, v in torch_units.items())
    return numpy_s, torch_s + (0.0 if torch_imported else rates.torch_import)
