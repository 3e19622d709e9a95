"""The NumPy engine: the torch engine's functions with PyTorch's CPU semantics, without importing torch.

Inputs and outputs are NumPy arrays (float32; indices int64). Python loops run over bands of rows, a
window's taps along one axis (at most FOLD_TAPS of them, or log₂ k doubling passes), or whichever of a
transposed convolution's taps and input positions are fewer — never over pixels, never over the
positions of a whole kernel window. Where PyTorch's CPU kernel is a plain sequential loop (max and
average pooling, adaptive pooling, unpooling, the default initialisation) the result is the same to
the bit: same order of float32 additions, same tie and NaN rules. Convolutions, linear layers and
the smooth activations go through BLAS or float64 and agree to float32 rounding.

One module per job: :mod:`.random` (default initialisation), :mod:`.conv`, :mod:`.pool`,
:mod:`.elementwise` (activations, batch norm, linear), :mod:`.norm` (layer, group, instance and local
response norm), :mod:`.reshaping` (padding, pixel and channel shuffles), :mod:`.resample` (upsampling),
:mod:`.fused` (conv → element-wise → pool band by band) and :mod:`.arrays` (helpers they share).

>>> import numpy as np
>>> from cnnops.engines.numpy_engine import max_pool
>>> x = np.array([[[1, 3, 3, 2, 2]]], dtype=np.float32)
>>> y, idx = max_pool(x, nd=1, kernel_size=(2,), stride=(1,), padding=(0,), dilation=(1,), ceil_mode=False)
>>> y.tolist(), idx.tolist()
([[[3.0, 3.0, 3.0, 2.0]]], [[[1, 1, 2, 3]]])
"""

from __future__ import annotations

# imported now: the submodule `conv` shares its function's name, and a submodule imported later (by
# `fused`, say) would otherwise be the package's `conv`
from cnnops.engines.numpy_engine.conv import conv, conv_transpose
from cnnops.exports import lazy_exports

#: where each other function is defined: a module is imported when one of its names is first used, so
#: that a run imports only the engine code its stages need
_HOMES = {
    "activation": "elementwise", "batch_norm": "elementwise", "glu": "elementwise", "linear": "elementwise",
    "merge": "elementwise", "prelu": "elementwise",
    "conv_chain": "fused",
    "group_norm": "norm", "instance_norm": "norm", "layer_norm": "norm", "local_response_norm": "norm",
    "adaptive_avg_pool": "pool", "adaptive_max_pool": "pool", "avg_pool": "pool", "max_pool": "pool",
    "max_unpool": "pool",
    "Random": "random",
    "upsample": "resample",
    "channel_shuffle": "reshaping", "pad": "reshaping", "pixel_shuffle": "reshaping",
}  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


NAME = "numpy"

__all__ = [
    "NAME",
    "Random",
    "activation",
    "merge",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "batch_norm",
    "channel_shuffle",
    "glu",
    "pad",
    "pixel_shuffle",
    "prelu",
    "upsample",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "conv",
    "conv_chain",
    "conv_transpose",
    "linear",
    "max_pool",
    "max_unpool",
]
