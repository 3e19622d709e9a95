"""Layer names as PyTorch code writes them: ``nn.``/``torch.nn.`` prefixes, and the functional forms
(``F.relu``, ``F.max_pool2d(kernel_size=2)``, ``torch.flatten(1)``) mapped to the layer that computes
the same, with the functional's own order of positional arguments (the input itself left out).

>>> split_prefix("torch.nn.Conv2d")
('Conv2d', None)
>>> split_prefix("F.max_pool2d")[1].positional[:3]
('kernel_size', 'stride', 'padding')
"""

from __future__ import annotations

from typing import Any

from cnnops.records import record

MODULE_PREFIXES = ("torch.nn.modules.", "torch.nn.", "nn.")
FUNCTIONAL_PREFIXES = ("torch.nn.functional.", "nn.functional.", "F.", "torch.")


@record(frozen=True)
class Functional:
    """A functional form: the layer it maps to, its positional arguments after the input, and keyword
    defaults that differ from the layer's (``torch.flatten`` starts at dim 0, ``nn.Flatten`` at 1)."""

    layer: str
    positional: tuple[str, ...]
    defaults: tuple[tuple[str, Any], ...] = ()


_MAX = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG1 = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
FUNCTIONAL: dict[str, Functional] = {
    "max_pool1d": Functional("MaxPool1d", _MAX),
    "max_pool2d": Functional("MaxPool2d", _MAX),
    "avg_pool1d": Functional("AvgPool1d", _AVG1),
    "avg_pool2d": Functional("AvgPool2d", _AVG1 + ("divisor_override",)),
    "adaptive_avg_pool1d": Functional("AdaptiveAvgPool1d", ("output_size",)),
    "adaptive_avg_pool2d": Functional("AdaptiveAvgPool2d", ("output_size",)),
    "adaptive_max_pool1d": Functional("AdaptiveMaxPool1d", ("output_size", "return_indices")),
    "adaptive_max_pool2d": Functional("AdaptiveMaxPool2d", ("output_size", "return_indices")),
    "max_pool3d": Functional("MaxPool3d", _MAX),
    "avg_pool3d": Functional("AvgPool3d", _AVG1 + ("divisor_override",)),
    "adaptive_avg_pool3d": Functional("AdaptiveAvgPool3d", ("output_size",)),
    "adaptive_max_pool3d": Functional("AdaptiveMaxPool3d", ("output_size", "return_indices")),
    "relu": Functional("ReLU", ("inplace",)),
    "relu6": Functional("ReLU6", ("inplace",)),
    "leaky_relu": Functional("LeakyReLU", ("negative_slope", "inplace")),
    "elu": Functional("ELU", ("alpha", "inplace")),
    "gelu": Functional("GELU", ()),
    "silu": Functional("SiLU", ("inplace",)),
    "mish": Functional("Mish", ("inplace",)),
    "hardswish": Functional("Hardswish", ("inplace",)),
    "sigmoid": Functional("Sigmoid", ()),
    "tanh": Functional("Tanh", ()),
    "softplus": Functional("Softplus", ("beta", "threshold")),
    "softmax": Functional("Softmax", ("dim",)),
    "log_softmax": Functional("LogSoftmax", ("dim",)),
    "flatten": Functional("Flatten", ("start_dim", "end_dim"), (("start_dim", 0),)),
    "hardsigmoid": Functional("Hardsigmoid", ("inplace",)),
    "hardtanh": Functional("Hardtanh", ("min_val", "max_val", "inplace")),
    "selu": Functional("SELU", ("inplace",)),
    "celu": Functional("CELU", ("alpha", "inplace")),
    "softsign": Functional("Softsign", ()),
    "tanhshrink": Functional("Tanhshrink", ()),
    "threshold": Functional("Threshold", ("threshold", "value", "inplace")),
    "glu": Functional("GLU", ("dim",)),
    "interpolate": Functional("Upsample", ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")),
    "pixel_shuffle": Functional("PixelShuffle", ("upscale_factor",)),
    "pixel_unshuffle": Functional("PixelUnshuffle", ("downscale_factor",)),
    "local_response_norm": Functional("LocalResponseNorm", ("size", "alpha", "beta", "k")),
    "unflatten": Functional("Unflatten", ("dim", "unflattened_size")),
}


def split_prefix(name: str) -> tuple[str, Functional | None]:
    """The layer name without a module prefix, or the layer a functional name maps to (with how its
    arguments map); a name that is neither comes back as it was."""
    for prefix in MODULE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :], None
    for prefix in FUNCTIONAL_PREFIXES:
        if name.startswith(prefix):
            functional = FUNCTIONAL.get(name[len(prefix) :])
            if functional is not None:
                return functional.layer, functional
    return name, None


def functional_arguments(functional: Functional, positional: list[Any],
                         keywords: list[tuple[str | None, Any]]) -> list[tuple[str | None, Any]]:  # fmt: skip
    """The functional call's arguments as keywords of its layer (positional ones by the functional's order)."""
    from cnnops.errors import SpecError

    if len(positional) > len(functional.positional):
        listed = ", ".join(functional.positional) or "no arguments"
        raise SpecError(f"the functional form of {functional.layer} takes at most {len(functional.positional)} "
                        f"positional arguments after the input ({listed}), got {len(positional)}")  # fmt: skip
    given = list(zip(functional.positional, positional)) + list(keywords)
    named = {key for key, _ in given}
    return [(key, value) for key, value in functional.defaults if key not in named] + given


#: every class in torch.nn (2.13): a name here that cnnops does not know is a real layer it does not support
#: yet — never a typo to "correct" into a layer of another meaning (PReLU is not ReLU)
TORCH_NN = frozenset((
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveLogSoftmaxWithLoss",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AlphaDropout", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Bilinear", "CELU",
    "CTCLoss", "ChannelShuffle", "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
    "ConstantPad2d", "ConstantPad3d", "Container", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
    "ConvTranspose2d", "ConvTranspose3d", "CosineEmbeddingLoss", "CosineSimilarity", "CrossEntropyLoss",
    "CrossMapLRN2d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "ELU", "Embedding", "EmbeddingBag",
    "FeatureAlphaDropout", "Flatten", "Fold", "FractionalMaxPool2d", "FractionalMaxPool3d", "GELU", "GLU", "GRU",
    "GRUCell", "GaussianNLLLoss", "GroupNorm", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
    "HingeEmbeddingLoss", "HuberLoss", "Identity", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "KLDivLoss", "L1Loss", "LPPool1d", "LPPool2d", "LPPool3d", "LSTM", "LSTMCell", "LayerNorm", "LazyBatchNorm1d",
    "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
    "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "LazyLinear", "LeakyReLU", "Linear", "LinearCrossEntropyLoss", "LinearCrossEntropyOptions",
    "LocalResponseNorm", "LogSigmoid", "LogSoftmax", "MSELoss", "MarginRankingLoss", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Mish", "Module", "ModuleDict", "ModuleList",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiheadAttention", "NLLLoss",
    "NLLLoss2d", "PReLU", "PairwiseDistance", "ParameterDict", "ParameterList", "PixelShuffle", "PixelUnshuffle",
    "PoissonNLLLoss", "RMSNorm", "RNN", "RNNBase", "RNNCell", "RNNCellBase", "RReLU", "ReLU", "ReLU6",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "SELU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "SoftMarginLoss", "Softmax",
    "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "SyncBatchNorm", "Tanh", "Tanhshrink",
    "Threshold", "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "Unflatten", "Unfold",
    "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
))
