"""Every fixed set of choices, as enums: the CLI lists them in ``--help``, the library takes them or
their string values. Pure Python and cheap to import (``--help`` imports only this)."""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    """Which engine computes: ``numpy`` starts fast, ``torch`` is ``torch.nn.functional``; ``auto`` chooses."""

    auto = "auto"
    numpy = "numpy"
    torch = "torch"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class OutputFormat(StrEnum):
    json = "json"
    npy = "npy"


class PoolMode(StrEnum):
    max = "max"
    avg = "avg"


class Dims(StrEnum):
    """Spatial dimensions of a single-op command's layer: ``auto`` is 1-D for a 1-D input, else 2-D."""

    auto = "auto"
    one = "1"
    two = "2"


class PaddingMode(StrEnum):
    zeros = "zeros"
    reflect = "reflect"
    replicate = "replicate"
    circular = "circular"


class Scale(StrEnum):
    """Feature-map pictures: each plane scaled on its own, or one scale shared by every plane of a stage."""

    plane = "plane"
    shared = "shared"


class ColorMap(StrEnum):
    """Feature-map colours: signed (blue −, white 0, red +), gray, or auto (signed where values go negative)."""

    auto = "auto"
    signed = "signed"
    gray = "gray"


class LayerKind(StrEnum):
    """The layer kinds ``cnnops solve`` answers for."""

    conv = "conv"
    pool = "pool"
    unpool = "unpool"
    conv_transpose = "conv_transpose"


class Dtype(StrEnum):
    """The dtype a network's parameters and activations are held in (``model.to(dtype)``)."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float64 = "float64"


class Optimizer(StrEnum):
    """The optimizer whose state a training step keeps: none (plain SGD), one buffer (momentum) or two (Adam)."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    adamw = "adamw"


class Convention(StrEnum):
    """Whose way of counting multiply-accumulates (or FLOPs) to use."""

    cnnops = "cnnops"
    thop = "thop"
    ptflops = "ptflops"
    fvcore = "fvcore"
    torchinfo = "torchinfo"
    flop_counter = "flop-counter"


class SolveFor(StrEnum):
    """What ``cnnops solve --max-memory`` grows: the batch size or the (square) input side."""

    batch = "batch"
    resolution = "resolution"
