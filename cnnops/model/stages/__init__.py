"""The layers cnnops knows, as frozen dataclasses that do their own shape arithmetic.

A stage answers, for an input shape, what PyTorch would do: the output shape (or the
:class:`~cnnops.errors.LayerError` PyTorch would raise, in plain words), the formula steps per
spatial dimension, its parameter count, its MACs and how it changes the receptive field.
Pure Python: no numpy, no torch.

>>> from cnnops.spec import parse_stage
>>> parse_stage("Conv2d(3, 64, 11, stride=4, padding=2)").output_shape((1, 3, 224, 224))
(1, 64, 55, 55)
"""

import sys
from typing import TYPE_CHECKING

from cnnops.exports import lazy_exports
from cnnops.model.stages.base import PAD_MODES, SPATIAL_NAMES, ReceptiveField, Shape, Stage, fmt_shape

if TYPE_CHECKING:
    from cnnops.model.stages.convolution import Conv, ConvTranspose
    from cnnops.model.stages.layers import GLU, Activation, BatchNorm, Flatten, Linear, Passthrough, PReLU
    from cnnops.model.stages.merges import Merge
    from cnnops.model.stages.norms import GroupNorm, InstanceNorm, LayerNorm, LocalResponseNorm
    from cnnops.model.stages.pooling import AdaptivePool, Pool, Unpool
    from cnnops.model.stages.resampling import UPSAMPLE_MODES, Upsample
    from cnnops.model.stages.reshaping import ChannelShuffle, Pad, PixelShuffle, Unflatten

#: where each layer is defined; a module is imported when one of its names is first used, so that a
#: command imports only the layers it meets (each frozen dataclass costs about half a millisecond)
_HOMES = {
    "Conv": "convolution", "ConvTranspose": "convolution",
    "GLU": "layers", "Activation": "layers", "BatchNorm": "layers", "Flatten": "layers", "Linear": "layers",
    "Passthrough": "layers", "PReLU": "layers",
    "Merge": "merges",
    "GroupNorm": "norms", "InstanceNorm": "norms", "LayerNorm": "norms", "LocalResponseNorm": "norms",
    "AdaptivePool": "pooling", "Pool": "pooling", "Unpool": "pooling",
    "UPSAMPLE_MODES": "resampling", "Upsample": "resampling",
    "ChannelShuffle": "reshaping", "Pad": "reshaping", "PixelShuffle": "reshaping", "Unflatten": "reshaping",
}  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


def loaded(name: str) -> bool:
    """Whether the module that defines layer class ``name`` has been imported. Until it has, no stage is an
    instance of that class: ``loaded("Merge") and isinstance(stage, Merge)`` asks without importing it."""
    return f"{__name__}.{_HOMES[name]}" in sys.modules


__all__ = [
    "SPATIAL_NAMES", "ReceptiveField", "Shape", "Stage", "fmt_shape", "Conv", "ConvTranspose", "Activation",
    "BatchNorm", "Flatten", "Linear", "Passthrough", "AdaptivePool", "Pool", "Unpool", "Merge", "GroupNorm",
    "InstanceNorm", "LayerNorm", "LocalResponseNorm", "GLU", "PReLU", "PAD_MODES", "ChannelShuffle", "Pad",
    "PixelShuffle", "Unflatten", "UPSAMPLE_MODES", "Upsample",
]  # fmt: skip
