"""Element-wise and dense layers: the activations and (Log)Softmax, batch norm, and linear layers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _quiet, blas_threads, has_negative_zero, maximum_zero


@_quiet
def linear(x, weight, bias) -> np.ndarray:
    """``x @ weight.T + bias`` in float32 (BLAS sgemm, on the usual thread count)."""
    with blas_threads(None):
        y = np.matmul(_f32(x), _f32(weight).T)
    if bias is not None:
        y = y + _f32(bias)
    return np.asarray(y, dtype=_F32, order="C")


@_quiet
def batch_norm(x, *, eps, batch_stats=False) -> np.ndarray:
    """Evaluation mode with fresh running statistics (mean 0, variance 1) and affine 1, 0: ATen's
    ``x · (1/√(1 + eps)) + 0`` in float32 (so −0 becomes +0, as in PyTorch). ``batch_stats``
    (track_running_stats=False): normalise with the batch's own mean and biased variance per channel."""
    x = _f32(x)
    if batch_stats:
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean = x.astype(np.float64).mean(axis=axes, keepdims=True)
        var = x.astype(np.float64).var(axis=axes, keepdims=True)
        return ((x - mean) / np.sqrt(var + eps)).astype(_F32) + _F32(0)
    scale = _F32(1) / np.sqrt(_F32(1) + _F32(eps))
    return x * scale + _F32(0)


#: elements per block of a smooth activation: its float64 temporaries (32 KiB each) stay in cache and
#: below glibc's mmap threshold (128 KiB), so they come from the heap and are not mapped, faulted in and
#: unmapped again block after block (2–3× the time in a fresh process with blocks of 2**15)
SMOOTH_BLOCK = 1 << 12

# Numerical Recipes' erfcc: a Chebyshev fit of erfc with relative error below 1.2e-7 for every
# z ≥ 0 (checked against math.erfc in the tests), tails included: float32 accuracy, no series
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
         0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)  # fmt: skip


def _erfc_nonneg(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z ≥ 0 (float64, relative error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC[-1])
    for c in _ERFC[-2::-1]:
        poly *= t
        poly += c
    return t * np.exp(poly - z * z)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = ½·erfc(−x/√2), computed without cancellation on both tails."""
    z = np.abs(x) / math.sqrt(2.0)
    upper = 0.5 * _erfc_nonneg(np.nan_to_num(z, nan=0.0))
    return np.where(np.isnan(x), np.nan, np.where(x < 0, upper, 1.0 - upper))


# ATen's float32 kernels for Sigmoid, SiLU, Mish, Softplus and GELU(approximate='tanh') round every step
# to float32 (Sleef's exp, log1p and tanh are within an ulp of the exact value): exp(−x) overflows to inf
# past x ≈ −88.7, so the sigmoid is 0 there, not a subnormal, and 1 + tanh cancels to 0 in GELU's tail. The
# steps below are those, each transcendental rounded once from float64.


def _exp32(x: np.ndarray) -> np.ndarray:
    return np.exp(x.astype(np.float64)).astype(_F32)


def _log1p32(x: np.ndarray) -> np.ndarray:
    return np.log1p(x.astype(np.float64)).astype(_F32)


#: Sleef's tanhf is ±1 exactly beyond this (the float32 nearest tanh(8.67) is the one below 1)
_TANH_SATURATES = _F32(8.664339742)


def _tanh32(x: np.ndarray) -> np.ndarray:
    y = np.tanh(x.astype(np.float64)).astype(_F32)
    np.copyto(y, np.copysign(_F32(1), x), where=np.abs(x) > _TANH_SATURATES)
    return y


def _sigmoid32(x: np.ndarray) -> np.ndarray:
    """ATen's ``1 / (1 + exp(−x))`` in float32."""
    return _F32(1) / (_F32(1) + _exp32(-x))


def _softplus32(v: np.ndarray, x: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """ATen's ``x·β > threshold ? x : log1p(exp(x·β)) / β``, β and the threshold as float32."""
    beta, threshold = _F32(options.get("beta", 1.0)), _F32(options.get("threshold", 20.0))
    scaled = x * beta
    return np.where(scaled > threshold, x, _log1p32(_exp32(scaled)) / beta)


_GELU_TANH_BETA = _F32(math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5)  # ATen's M_SQRT2·M_2_SQRTPI·0.5
_GELU_TANH_KAPPA = _F32(0.044715)


def _gelu_tanh32(v: np.ndarray, x: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """ATen's ``0.5·x·(1 + tanh(β·(x + κ·x·x·x)))`` in float32."""
    inner = _GELU_TANH_BETA * (x + _GELU_TANH_KAPPA * ((x * x) * x))
    return (_F32(0.5) * x) * (_F32(1) + _tanh32(inner))


def _softmax_dim(ndim: int, dim: int | None) -> int:
    """torch.nn.Softmax(dim=None): dim 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1


@_quiet
def activation(name: str, x: np.ndarray, options: dict[str, Any], *, inplace: bool = False) -> np.ndarray:
    """The element-wise activations and (Log)Softmax. Piecewise-linear ones (ReLU, ReLU6, LeakyReLU,
    Hardswish) follow ATen's float32 expressions exactly; the smooth ones are computed in float64.
    ``inplace``: ReLU may overwrite ``x`` (a float32 array nobody reads afterwards)."""
    inplace = inplace and isinstance(x, np.ndarray) and x.dtype == _F32 and x.flags.writeable
    x = _f32(x)
    if name == "ReLU":
        # ATen keeps −0 and NaN. np.maximum propagates NaN and is ~5× faster than a masked copy, but
        # may give +0 for −0: the −0s (found first, as ``x`` may be the output) are put back after it
        out = x if inplace else None
        if has_negative_zero(x):
            negative_zeros = np.flatnonzero(x.view(np.int32).reshape(-1) == np.int32(-(2**31)))
            y = maximum_zero(x, out=out)
            y.reshape(-1)[negative_zeros] = _F32(-0.0)
            return y
        return maximum_zero(x, out=out)
    if name == "ReLU6":
        return np.where(x < 0, _F32(0), np.where(x > 6, _F32(6), x))
    if name == "LeakyReLU":
        return np.where(x > 0, x, x * _F32(options.get("negative_slope", 0.01)))
    if name == "Hardswish":
        return x * np.clip(x + _F32(3), _F32(0), _F32(6)) / _F32(6)
    if name == "Hardsigmoid":
        # ATen: min(max(x + 3, 0), 6) / 6 in float32
        return np.minimum(np.maximum(x + _F32(3), _F32(0)), _F32(6)) / _F32(6)
    if name == "Hardtanh":
        low = options.get("min_value") if options.get("min_value") is not None else options.get("min_val", -1.0)
        high = options.get("max_value") if options.get("max_value") is not None else options.get("max_val", 1.0)
        return np.minimum(np.maximum(x, _F32(low)), _F32(high))
    if name == "Threshold":
        # ATen compares and fills with the float32 values of threshold and value
        return np.where(x <= _F32(options["threshold"]), _F32(options["value"]), x)
    if name == "Softsign":
        return x / (np.abs(x) + _F32(1))  # F.softsign's two float32 operations
    if name == "Tanhshrink":
        return x - np.tanh(x)  # F.tanhshrink: x − tanh(x) in float32
    if name in ("Softmax", "LogSoftmax"):
        return _softmax(x, _softmax_dim(x.ndim, options.get("dim")), log=name == "LogSoftmax")
    if name == "GELU" and options.get("approximate", "none") != "tanh":
        name = "GELU-scalar" if x.size == 1 else "GELU-vector"
    formula = _SMOOTH.get(name)
    if formula is None:  # pragma: no cover - the parser only builds known activations
        from cnnops.errors import LayerError

        raise LayerError(f"the numpy engine has no activation {name}")
    flat, y = x.reshape(-1), np.empty(x.shape, dtype=_F32)
    for start in range(0, flat.size, SMOOTH_BLOCK):
        block = flat[start : start + SMOOTH_BLOCK]
        y.reshape(-1)[start : start + block.size] = formula(block.astype(np.float64), block, options)
    return y


def _gelu_vector(v, x, options):
    # ATen's vectorised loop (any contiguous tensor of 2+ elements) forms x·(1 + erf(x/√2)) in
    # float32 before halving it: it overflows above FLT_MAX/2 and gives NaN at +inf
    y = (v * (2.0 * _normal_cdf(v))).astype(_F32).astype(np.float64) * 0.5
    y[v == np.inf] = np.nan
    return y


# SELU's constants as ATen's ELU kernel holds them in float32: x·scale, or expm1(x)·(alpha·scale)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_SELU_POS = float(np.float32(_SELU_SCALE))
_SELU_NEG = float(np.float32(_SELU_ALPHA) * np.float32(_SELU_SCALE))


def _celu(v, x, options):
    # ATen's celu is elu(x, alpha, scale=1, input_scale=1/alpha), coefficients in float32
    alpha = options.get("alpha", 1.0)
    inverse = float(np.float32(1.0 / alpha))
    return np.where(v >= 0, v, np.expm1(v * inverse) * float(np.float32(alpha)))


# formulas over (v = x as float64, x float32, options), applied block by block
_SMOOTH = {
    # ±0 take the positive branch, as ATen gives them (with a negative alpha, expm1(±0)·alpha would flip the sign)
    "ELU": lambda v, x, o: np.where(v >= 0, v, o.get("alpha", 1.0) * np.expm1(v)),
    "GELU": _gelu_tanh32,
    "GELU-scalar": lambda v, x, o: v * _normal_cdf(v),  # ATen's scalar loop (a single element)
    "GELU-vector": _gelu_vector,
    "SiLU": lambda v, x, o: x / (_F32(1) + _exp32(-x)),  # ATen's x / (1 + exp(−x))
    "Mish": lambda v, x, o: x * _tanh32(_log1p32(_exp32(x))),  # ATen's x·tanh(log1p(exp(x)))
    "Sigmoid": lambda v, x, o: _sigmoid32(x),
    "Tanh": lambda v, x, o: np.tanh(v),
    "Softplus": _softplus32,
    "SELU": lambda v, x, o: np.where(v >= 0, v * _SELU_POS, np.expm1(v) * _SELU_NEG),
    "CELU": _celu,
}


def _softmax(x: np.ndarray, dim: int, *, log: bool) -> np.ndarray:
    """ATen's CPU (Log)Softmax in its float32 steps: ``a = x − max``, ``s = Σ exp(a)`` (float32 sums), then
    ``a − log(s)``, or ``exp(a)·(1/s)`` along the last dim and ``exp(a)/s`` along another (its two kernels).
    Where the other terms vanish beside the largest, ``s`` is exactly 1 and its log-probability exactly 0, as
    in PyTorch (float64 steps gave −8e-9). The sums' order is NumPy's, not ATen's vector lanes': along the
    last dim ~95 % of log-probabilities are bit-equal (the rest within float32 rounding), along another ~99.9 %."""
    if x.ndim == 0:
        return _softmax(x.reshape(1), 0, log=log).reshape(())
    if x.size == 0:
        return x.copy()
    shifted = x - x.max(axis=dim, keepdims=True)
    e = _exp32(shifted)
    total = e.sum(axis=dim, keepdims=True, dtype=_F32)
    if log:
        shifted -= np.log(total.astype(np.float64)).astype(_F32)
        return shifted
    if dim % x.ndim == x.ndim - 1:  # dim=-1 too
        e *= _F32(1) / total
    else:
        e /= total
    return e


@_quiet
def prelu(x, weight) -> np.ndarray:
    """``F.prelu``: ``x > 0 ? x : w·x`` in float32, one weight for all or one per channel (dim 1)."""
    x = _f32(x)
    w = _f32(weight)
    if w.size != 1:
        w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    else:
        w = w.reshape(())
    return np.where(x > 0, x, w * x)


@_quiet
def glu(x, dim: int) -> np.ndarray:
    """``F.glu``: the first half along ``dim`` times the sigmoid of the second, ``a · (1/(1 + e^−b))`` —
    ATen's float32 steps: ``e^−b`` is a float32 (inf once −b > ln FLT_MAX ≈ 88.72, so the sigmoid is 0 and
    ``a · 0`` is 0 however large ``a`` is, where a float64 sigmoid would give ``a`` times a denormal)."""
    a, b = (np.ascontiguousarray(half) for half in np.split(_f32(x), 2, axis=dim))
    out = np.empty(a.shape, dtype=_F32)
    flat_a, flat_b, flat_out = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    for start in range(0, flat_b.size, SMOOTH_BLOCK):  # float64 temporaries of a block, as the activations
        part = slice(start, start + SMOOTH_BLOCK)
        sigmoid = np.exp(-flat_b[part].astype(np.float64)).astype(_F32)  # exp rounded once, to float32
        sigmoid += _F32(1)
        np.divide(_F32(1), sigmoid, out=sigmoid)
        np.multiply(flat_a[part], sigmoid, out=flat_out[part])
    return out


def merge(op: str, xs: list[np.ndarray], *, dim: int = 1) -> np.ndarray:
    """Add and Mul (``a + b``, ``a * b``, broadcasting as torch) and Cat (``torch.cat(xs, dim)``), in float32
    (one correctly rounded operation per element, as torch computes it)."""
    if op == "cat":
        return np.concatenate([_f32(x) for x in xs], axis=dim)
    out = _f32(xs[0])
    for x in xs[1:]:
        out = np.add(out, _f32(x)) if op == "add" else np.multiply(out, _f32(x))
    return out
