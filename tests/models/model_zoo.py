"""The test zoo: each architecture as a file of model code, how to build it, an input shape, and what the
static reader makes of it; plus the torch-side oracle (output shape, parameter count, MACs by hooks).

Loaded by the tests with ``load_zoo()``; the model files next to it are plain PyTorch code.
"""

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    build: str  # what --class / --model take: a class, or a call with literal arguments
    shape: tuple[int, ...]
    #: the layers the static reader needs and cnnops does not have yet (the entry is refused until they land)
    waits_for: tuple[str, ...] = ()
    #: what else the static reader refuses in this model, as a part of its message (None: it reads it)
    refused: str | None = None
    #: what stays a measured row even when every layer has landed: a learned tensor used directly in
    #: forward() (ConvNeXt's layer scale), a layer subclass traced through to its functional form
    always_measured: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return str(HERE / self.file)


ZOO = [
    Entry("resnet18", "resnet18.py", "ResNet", (1, 3, 64, 64)),
    Entry("resnet50", "resnet50.py", "resnet50()", (1, 3, 64, 64)),
    Entry("densenet", "densenet.py", "DenseNet", (2, 3, 32, 32)),
    Entry("inception", "inception.py", "InceptionNet", (1, 3, 64, 64)),
    Entry("mobilenetv2", "mobilenetv2.py", "MobileNetV2", (1, 3, 64, 64)),
    Entry("mobilenetv3", "mobilenetv3.py", "MobileNetV3", (1, 3, 64, 64), waits_for=("Hardsigmoid",)),
    Entry("efficientnet", "efficientnet.py", "EfficientNet", (1, 3, 64, 64)),
    Entry("shufflenet", "shufflenet.py", "ShuffleNetV2", (1, 3, 64, 64)),
    Entry("convnext", "convnext.py", "ConvNeXt", (1, 3, 64, 64), waits_for=("LayerNorm",),
          refused="derives from nn.LayerNorm", always_measured=("Mul", "mul", "layer_norm", "LayerNormalization")),
    Entry("vgg", "vgg.py", "VGG", (1, 3, 112, 112)),
    Entry("unet", "unet.py", "UNet", (1, 3, 64, 64)),
    Entry("audio1d", "audio1d.py", "AudioNet", (2, 1, 8000)),
    Entry("video3d", "video3d.py", "VideoNet", (1, 3, 8, 32, 32), waits_for=("Conv3d", "BatchNorm3d", "MaxPool3d",
                                                                           "AdaptiveAvgPool3d")),
    # the fixtures: tutorial and textbook models exactly as written
    Entry("my_conv_net", "my_conv_net.py", "MyConvNet", (1, 1, 28, 28)),
    Entry("cifar_net", "cifar_net.py", "Net", (4, 3, 32, 32)),
    Entry("lenet5", "lenet5.py", "LeNet5", (1, 1, 32, 32)),
]


#: the entries the default test run checks through torch (--model, ONNX); the rest run with the slow tests
QUICK = ("resnet18", "shufflenet", "unet", "mobilenetv3", "audio1d", "cifar_net", "convnext")


def params(marks_slow):
    """The zoo as pytest parameters, the entries outside QUICK marked with ``marks_slow``."""
    import pytest

    return [pytest.param(e, id=e.name, marks=() if e.name in QUICK else marks_slow) for e in ZOO]


def load_module(path: str, name: str = "zoo_model"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(entry: Entry):
    """The model, built by torch from the entry's file (its own default initialisation)."""
    module = load_module(entry.path)
    expression = entry.build if "(" in entry.build else entry.build + "()"
    return eval(expression, vars(module)).eval()


def reference(model, shape):
    """torch's output shape, ``sum(p.numel())`` and MACs counted by forward hooks (conv: output elements
    × in/groups × kernel volume; transposed conv: input elements × out/groups × kernel volume; linear:
    rows × in × out)."""
    import torch
    from torch import nn

    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            total += inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += math.prod(inputs[0].shape[:-1]) * module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        out = model(torch.zeros(shape))
    for h in handles:
        h.remove()
    return tuple(out.shape), sum(p.numel() for p in model.parameters()), total
