"""Normalisation with fresh parameters (weight 1, bias 0): layer, group, instance and local response norm.

Statistics are computed in float64 and rounded to float32 as ATen's kernels keep them; the output is
formed as ATen forms it (``x · scale + shift``), so results agree with PyTorch to float32 rounding.
"""

from __future__ import annotations

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _f32, _quiet


def _normalise(x: np.ndarray, groups: np.ndarray, eps: float) -> np.ndarray:
    """``(x − mean)/√(var + eps)`` over the last axis of ``groups`` (a (rows, n) view of ``x``), as ATen's
    ``x·rstd + (−rstd·mean)`` in float32; the biased variance, as PyTorch normalises."""
    if groups.size == 0:
        return x.copy()
    wide = groups.astype(np.float64)
    mean = wide.mean(axis=-1, keepdims=True)
    var = wide.var(axis=-1, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(_F32)
    shift = -rstd * mean.astype(_F32)
    return (groups * rstd + shift).reshape(x.shape)


@_quiet
def layer_norm(x, *, normalized_ndim: int, eps: float, affine: bool = True) -> np.ndarray:
    """``F.layer_norm`` over the last ``normalized_ndim`` dims (fresh affine weights, 1 and 0, change nothing)."""
    x = _f32(x)
    n = int(np.prod(x.shape[x.ndim - normalized_ndim :]))
    return _normalise(x, x.reshape(-1, n) if x.size else x, eps)


@_quiet
def group_norm(x, *, num_groups: int, eps: float, affine: bool = True) -> np.ndarray:
    """``F.group_norm``: each sample's channels in ``num_groups`` groups, each normalised as a whole."""
    x = _f32(x)
    return _normalise(x, x.reshape(x.shape[0] * num_groups, -1) if x.size else x, eps)


@_quiet
def instance_norm(x, *, nd: int, eps: float, input_stats: bool, affine: bool = False) -> np.ndarray:
    """``F.instance_norm``: each (sample, channel) plane normalised over its positions; without input
    statistics (track_running_stats=True) the fresh running ones, mean 0 and variance 1, as batch norm."""
    x = _f32(x)
    if not input_stats:
        scale = _F32(1) / np.sqrt(_F32(1) + _F32(eps))
        return x * scale + _F32(0)
    planes = int(np.prod(x.shape[: x.ndim - nd]))
    return _normalise(x, x.reshape(planes, -1) if x.size else x, eps) + _F32(0)


@_quiet
def local_response_norm(x, *, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """``F.local_response_norm``: ``x / (k + α·mean of x² over size channels)^β``, the window zero-padded
    ``size//2`` before and ``(size−1)//2`` after each channel, every step in float32 as PyTorch's."""
    x = _f32(x)
    if x.size == 0:
        return x.copy()
    squares = x * x
    c = x.shape[1]
    before, after = size // 2, (size - 1) // 2
    padded = np.zeros((x.shape[0], c + before + after) + x.shape[2:], dtype=_F32)
    padded[:, before : before + c] = squares
    total = np.zeros_like(squares)
    for tap in range(size):
        total += padded[:, tap : tap + c]
    div = total / _F32(size)
    div = np.power(div * _F32(alpha) + _F32(k), _F32(beta))
    return x / div
