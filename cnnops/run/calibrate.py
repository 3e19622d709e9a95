"""Measure this machine's rates for the auto engine (``cnnops bench --calibrate``): each kind of work
on both engines, timed, and turned into seconds per unit of :func:`cnnops.run.costs.work`."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from cnnops.run.costs import DEFAULTS, Rates

#: a quick measurement is repeated for at least this long (at most MAX_RUNS times): its fastest run is
#: then one the machine's other work did not slow down (a conv of a few milliseconds on BLAS threads that
#: lost a core to another process takes ten times as long)
QUICK_SECONDS, MAX_RUNS = 0.25, 50


def _best(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` timed runs (more for a quick one) after one untimed (caches, lazily
    built kernels)."""
    run()
    times: list[float] = []
    while len(times) < repeat or (sum(times) < QUICK_SECONDS and len(times) < MAX_RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _solve(t1: float, t2: float, a1: float, b1: float, a2: float, b2: float) -> tuple[float, float]:
    """x, y ≥ 0 with a·x + b·y = t for two measurements (the nearest non-negative fit)."""
    det = a1 * b2 - a2 * b1
    x = (t1 * b2 - t2 * b1) / det if det else 0.0
    y = (a1 * t2 - a2 * t1) / det if det else 0.0
    if x < 0 or y < 0:  # the measurements disagree with the model: give all of each to one term
        x, y = max(t2 / a2, 0.0) if a2 else 0.0, 0.0
        y = max((t1 - a1 * x) / b1, 0.0) if b1 else 0.0
    return x, y


def _torch_import_seconds(repeat: int) -> float:
    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - start

    return max(0.0, statistics.median(run("import torch") for _ in range(repeat)) - min(run("pass") for _ in range(repeat)))


def calibrate(repeat: int = 3, progress: Callable[[str], None] | None = None) -> Rates:
    """Time every kind of work on both engines and return the rates (seconds per unit of work)."""
    from cnnops.engines import load_engine

    say = progress or (lambda text: None)
    rates = {name: _engine_rates(name, load_engine(name), repeat, say) for name in ("numpy", "torch")}
    say("torch: import")
    imported = _torch_import_seconds(repeat)
    cleaned = {name: {k: (v if math.isfinite(v) and v >= 0 else getattr(DEFAULTS, name)[k]) for k, v in r.items()}
               for name, r in rates.items()}  # fmt: skip
    return Rates(cleaned["numpy"], cleaned["torch"], imported, "measured")


def _engine_rates(name: str, eng: Any, repeat: int, say: Callable[[str], None]) -> dict[str, float]:
    """One engine's seconds per unit of each kind of work (the units of :func:`cnnops.run.costs.work`)."""
    import numpy as np

    rng = np.random.default_rng(0)
    rates: dict[str, float] = {}
    say(f"{name}: convolutions")
    conv = dict(nd=2, stride=(1, 1), dilation=(1, 1), groups=1, padding_mode="zeros")
    small_x, small_w = rng.standard_normal((1, 1, 1024, 1024), dtype=np.float32), rng.standard_normal((4, 1, 3, 3), dtype=np.float32)
    big_x, big_w = rng.standard_normal((1, 64, 56, 56), dtype=np.float32), rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    t1 = _best(lambda: eng.conv(small_x, small_w, None, pads=((0, 0), (0, 0)), **conv), repeat)
    t2 = _best(lambda: eng.conv(big_x, big_w, None, pads=((1, 1), (1, 1)), **conv), repeat)
    small = (4 * 1022 * 1022 * 9, 1022 * 1022 * 9, 4 * 1022 * 1022)  # MACs, im2col cells, outputs
    big = (64 * 56 * 56 * 576, 56 * 56 * 576, 64 * 56 * 56)
    second = 1 if name == "numpy" else 2  # NumPy pays for im2col cells, torch per output
    mac, other = _solve(t1, t2, small[0], small[second], big[0], big[second])
    rates.update(conv_mac=mac, conv_cols=other if name == "numpy" else 0.0, conv_out=0.0 if name == "numpy" else other)
    tx, tw = rng.standard_normal((1, 16, 128, 128), dtype=np.float32), rng.standard_normal((16, 16, 4, 4), dtype=np.float32)
    tt = _best(lambda: eng.conv_transpose(tx, tw, None, nd=2, stride=(2, 2), padding=(1, 1), output_padding=(0, 0),
                                          groups=1, dilation=(1, 1)), repeat)  # fmt: skip
    rates["convt_add"] = max(tt - 128 * 128 * 16 * 16 * 16 * mac, 0.0) / (128 * 128 * 16 * 16)
    say(f"{name}: pooling")
    planes = rng.standard_normal((4, 1024, 1024), dtype=np.float32)
    tm = _best(lambda: eng.max_pool(planes, nd=2, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                                    ceil_mode=False, return_indices=False), repeat)  # fmt: skip
    rates["maxpool"] = tm / (planes.size + planes.size // 4 * 4)  # both read each cell of 2×2 windows once
    ta = _best(lambda: eng.avg_pool(planes, nd=2, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), ceil_mode=False,
                                    count_include_pad=True, divisor_override=None), repeat)  # fmt: skip
    rates["avgpool"] = ta / (planes.size + 4 * 1022 * 1022 * 9)
    wide = rng.standard_normal((1, 64, 224, 224), dtype=np.float32)
    rates["adaptive"] = _best(lambda: eng.adaptive_avg_pool(wide, nd=2, output_size=(7, 7)), repeat) / (wide.size + 64 * 49)
    say(f"{name}: activations")
    # large enough that memory, not the cache, sets the pace, as it does for the tensors worth timing
    flat, rows, tiny = rng.standard_normal(1 << 24, dtype=np.float32), rng.standard_normal((1, 1024, 4096), dtype=np.float32), np.ones((2, 2), np.float32)
    rates["elementwise"] = _best(lambda: eng.activation("ReLU", flat, {}), repeat) / flat.size
    rates["transcendental"] = _best(lambda: eng.activation("GELU", flat, {}), repeat) / flat.size
    rates["softmax"] = _best(lambda: eng.activation("Softmax", rows, {"dim": 1}), repeat) / rows.size
    rates["stage"] = _best(lambda: [eng.activation("ReLU", tiny, {}) for _ in range(100)], repeat) / 100
    return rates
