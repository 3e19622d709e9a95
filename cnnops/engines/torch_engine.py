"""The torch engine: every operation is ``torch.nn.functional`` on CPU, arrays in and out.

Inputs and outputs are NumPy arrays (float32; indices int64), shared with torch without copies.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnops.errors import LayerError, SettingError, setting

NAME = "torch"


_device = torch.device("cpu")


def use_device(name: str) -> None:
    """Compute on ``cpu``, ``cuda`` or ``mps``; an unavailable device is a clear error."""
    global _device
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
    }
    if name not in available:
        raise SettingError(f"unknown device '{name}' — choose cpu, cuda or mps")
    if not available[name]:
        raise SettingError(f"PyTorch sees no {name} device on this machine — use {setting('device', 'cpu')}")
    _device = torch.device(name)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, order="C")).to(_device)  # a 0-d array stays 0-d


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy()


class Random:
    """PyTorch's default initialisation stream: the same numbers as ``torch.manual_seed(seed)``
    followed by building the layers in order."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def uniform(self, shape: tuple[int, ...], bound: float) -> np.ndarray:
        out = torch.empty(shape, dtype=torch.float32)
        if out.numel():
            out.uniform_(-bound, bound, generator=self.generator)
        return _np(out)


def _run(op, *args, **kwargs):
    """Call torch; a RuntimeError from torch becomes a LayerError with torch's first line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                return op(*args, **kwargs)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise LayerError(f"PyTorch rejected it: {str(exc).splitlines()[0]}") from None


def conv(x, weight, bias, *, nd, stride, pads, dilation, groups, padding_mode) -> np.ndarray:
    """``pads``: (left, right) per spatial dim, 'same'/'valid' already resolved by the stage."""
    xt = _t(x)
    padding: tuple[int, ...] = tuple(left for left, _ in pads)
    if padding_mode != "zeros" or any(left != right for left, right in pads):
        flat = [v for left_right in reversed(pads) for v in left_right]
        mode = "constant" if padding_mode == "zeros" else padding_mode
        xt = _run(F.pad, xt, flat, mode=mode)
        padding = (0,) * nd
    op = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    b = None if bias is None else _t(bias)
    return _np(_run(op, xt, _t(weight), b, stride, padding, dilation, groups))


def conv_transpose(x, weight, bias, *, nd, stride, padding, output_padding, groups, dilation) -> np.ndarray:
    op = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
    b = None if bias is None else _t(bias)
    return _np(_run(op, _t(x), _t(weight), b, stride, padding, output_padding, groups, dilation))


def max_pool(x, *, nd, kernel_size, stride, padding, dilation, ceil_mode,
             return_indices: bool = True) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Values and indices; without ``return_indices`` only the values (indices None)."""
    op = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]
    if not return_indices:
        return _np(_run(op, _t(x), kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)), None
    y, idx = _run(op, _t(x), kernel_size, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
    return _np(y), _np(idx)


def avg_pool(x, *, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) -> np.ndarray:
    if nd == 1:
        return _np(_run(F.avg_pool1d, _t(x), kernel_size, stride, padding, ceil_mode, count_include_pad))
    op = F.avg_pool2d if nd == 2 else F.avg_pool3d
    return _np(_run(op, _t(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override))  # fmt: skip


def adaptive_avg_pool(x, *, nd, output_size) -> np.ndarray:
    op = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[nd - 1]
    return _np(_run(op, _t(x), output_size))


def adaptive_max_pool(x, *, nd, output_size) -> tuple[np.ndarray, np.ndarray]:
    op = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[nd - 1]
    y, idx = _run(op, _t(x), output_size, return_indices=True)
    return _np(y), _np(idx)


def max_unpool(x, indices, *, nd, kernel_size, stride, padding, output_size) -> np.ndarray:
    """``F.max_unpool``. Where given indices repeat, ATen's CPU kernel, writing on several threads, keeps
    whichever value comes last in time; on one thread the last in order stays, as the NumPy engine keeps
    it — so the CPU runs on one thread (a scatter: memory-bound either way)."""
    op = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[nd - 1]
    threads = torch.get_num_threads()
    if _device.type == "cpu" and threads > 1:
        torch.set_num_threads(1)
    try:
        return _np(_run(op, _t(x), _t(indices.astype(np.int64)), kernel_size, stride, padding, output_size))
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def linear(x, weight, bias) -> np.ndarray:
    return _np(_run(F.linear, _t(x), _t(weight), None if bias is None else _t(bias)))


def batch_norm(x, *, eps, batch_stats=False) -> np.ndarray:
    """Evaluation mode with fresh running statistics (mean 0, variance 1) and affine 1, 0;
    ``batch_stats`` (track_running_stats=False) normalises with the batch's own statistics."""
    channels = x.shape[1]
    ones, zeros = torch.ones(channels, device=_device), torch.zeros(channels, device=_device)
    if batch_stats:
        return _np(_run(F.batch_norm, _t(x), None, None, ones, zeros, True, 0.1, eps))
    return _np(_run(F.batch_norm, _t(x), zeros, ones, ones, zeros, False, 0.1, eps))


def _affine(shape: tuple[int, ...], affine: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """PyTorch's fresh affine parameters (weight 1, bias 0), or none."""
    if not affine:
        return None, None
    return torch.ones(shape, device=_device), torch.zeros(shape, device=_device)


def layer_norm(x, *, normalized_ndim, eps, affine=True) -> np.ndarray:
    shape = tuple(x.shape[x.ndim - normalized_ndim :])
    return _np(_run(F.layer_norm, _t(x), shape, *_affine(shape, affine), eps))


def group_norm(x, *, num_groups, eps, affine=True) -> np.ndarray:
    return _np(_run(F.group_norm, _t(x), num_groups, *_affine((x.shape[1],), affine), eps))


def instance_norm(x, *, nd, eps, input_stats, affine=False) -> np.ndarray:
    """``F.instance_norm``; without input statistics, fresh running ones (mean 0, variance 1)."""
    xt = _t(x)
    unbatched = x.ndim == nd + 1
    if unbatched:
        xt = xt.unsqueeze(0)
    channels = xt.shape[1]
    mean = var = None
    if not input_stats:
        mean, var = torch.zeros(channels, device=_device), torch.ones(channels, device=_device)
    y = _run(F.instance_norm, xt, mean, var, *_affine((channels,), affine), input_stats, 0.1, eps)
    return _np(y[0] if unbatched else y)


def local_response_norm(x, *, size, alpha, beta, k) -> np.ndarray:
    return _np(_run(F.local_response_norm, _t(x), size, alpha, beta, k))


def activation(name: str, x: np.ndarray, options: dict[str, Any], *, inplace: bool = False) -> np.ndarray:
    """``inplace``: ReLU may overwrite ``x`` (an array nobody reads afterwards)."""
    xt = _t(x)
    if name == "ReLU":
        shared = isinstance(x, np.ndarray) and x.flags.writeable and xt.data_ptr() == x.ctypes.data
        y = F.relu_(xt) if inplace and shared else F.relu(xt)
    elif name == "ReLU6":
        y = F.relu6(xt)
    elif name == "LeakyReLU":
        y = F.leaky_relu(xt, options.get("negative_slope", 0.01))
    elif name == "ELU":
        y = F.elu(xt, options.get("alpha", 1.0))
    elif name == "GELU":
        y = F.gelu(xt, approximate=options.get("approximate", "none"))
    elif name == "SiLU":
        y = F.silu(xt)
    elif name == "Mish":
        y = F.mish(xt)
    elif name == "Hardswish":
        y = F.hardswish(xt)
    elif name == "Sigmoid":
        y = torch.sigmoid(xt)
    elif name == "Tanh":
        y = torch.tanh(xt)
    elif name == "Softplus":
        y = F.softplus(xt, options.get("beta", 1.0), options.get("threshold", 20.0))
    elif name == "Hardsigmoid":
        y = F.hardsigmoid(xt)
    elif name == "Hardtanh":
        low = options.get("min_value") if options.get("min_value") is not None else options.get("min_val", -1.0)
        high = options.get("max_value") if options.get("max_value") is not None else options.get("max_val", 1.0)
        y = _run(F.hardtanh, xt, low, high)
    elif name == "SELU":
        y = F.selu(xt)
    elif name == "CELU":
        y = _run(F.celu, xt, options.get("alpha", 1.0))
    elif name == "Softsign":
        y = F.softsign(xt)
    elif name == "Tanhshrink":
        y = F.tanhshrink(xt)
    elif name == "Threshold":
        y = F.threshold(xt, options["threshold"], options["value"])
    elif name in ("Softmax", "LogSoftmax"):
        module = (torch.nn.Softmax if name == "Softmax" else torch.nn.LogSoftmax)(dim=options.get("dim"))
        y = _run(module, xt)
    else:  # pragma: no cover - the parser only builds known activations
        raise LayerError(f"the torch engine has no activation {name}")
    return _np(y)




def prelu(x, weight) -> np.ndarray:
    return _np(_run(F.prelu, _t(x), _t(weight)))


def glu(x, dim: int) -> np.ndarray:
    return _np(_run(F.glu, _t(x), dim))


def pad(x, *, padding, mode, value=0.0) -> np.ndarray:
    if mode == "constant":
        return _np(_run(F.pad, _t(x), list(padding), mode="constant", value=value))
    return _np(_run(F.pad, _t(x), list(padding), mode=mode))


def pixel_shuffle(x, *, factor, unshuffle=False) -> np.ndarray:
    return _np(_run(F.pixel_unshuffle if unshuffle else F.pixel_shuffle, _t(x), factor))


def channel_shuffle(x, *, groups) -> np.ndarray:
    return _np(_run(F.channel_shuffle, _t(x), groups))


def upsample(x, *, output_size, mode, align_corners, scale_factor, recompute_scale_factor, size=None) -> np.ndarray:
    """``F.interpolate`` with the layer's own arguments (``output_size`` is the shape model's, unused here)."""
    return _np(_run(F.interpolate, _t(x), size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                    recompute_scale_factor=recompute_scale_factor))  # fmt: skip


def merge(op: str, xs: list[np.ndarray], *, dim: int = 1) -> np.ndarray:
    """Add and Mul (``a + b``, ``a * b``, broadcasting) and Cat (``torch.cat(xs, dim)``)."""
    ts = [_t(x) for x in xs]
    if op == "cat":
        return _np(_run(torch.cat, ts, dim))
    out = ts[0]
    for t in ts[1:]:
        out = _run(torch.add if op == "add" else torch.mul, out, t)
    return _np(out)
