"""The 3-D family and the other new layers in whole blocks, against torch itself.

Each block is written twice: once in cnnops' stage syntax, once as a plain ``torch.nn.Module`` whose
layers are built in the same order (so ``torch.manual_seed`` gives both the same default weights).
Shapes, parameters, MACs (counted by forward hooks) and values on both engines must agree. Then the
repr of every new layer against torch's, and the receptive field through 3-D layers and padding.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cnnops
from cnnops.spec import parse_stage

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def hook_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs by forward hooks: conv = output elements × in/groups × kernel volume; transposed conv = input
    elements × out/groups × kernel volume; linear = rows × in × out; everything else 0."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, CONVS):
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, TRANSPOSED):
            total += inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += math.prod(inputs[0].shape[:-1]) * module.in_features * module.out_features

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


class ResBlock3d(nn.Module):
    """A 3-D ResNet basic block with a strided 1×1×1 downsample branch, then a classifier head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(4, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(8)
        self.conv2 = nn.Conv3d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(8)
        self.down = nn.Conv3d(4, 8, 1, stride=2, bias=False)
        self.bn3 = nn.BatchNorm3d(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        y = torch.relu(y + self.bn3(self.down(x)))
        y = F.dropout3d(F.max_pool3d(y, 2, ceil_mode=True), 0.3, training=False)
        return self.head(torch.flatten(F.adaptive_max_pool3d(y, 1), 1))


RESBLOCK = ["Conv3d(4, 8, 3, stride=2, padding=1, bias=False)", "BatchNorm3d(8)", "relu",
            "Conv3d(8, 8, 3, padding=1, bias=False)", "y=BatchNorm3d(8)", "Conv3d(4, 8, 1, stride=2, bias=False)(@input)",
            "LazyBatchNorm3d", "Add(@y)", "relu", "MaxPool3d(2, ceil_mode=True)", "Dropout3d(0.3)",
            "AdaptiveMaxPool3d(1)", "Flatten", "Linear(8, 5)"]  # fmt: skip


class UNet3d(nn.Module):
    """A 3-D U-Net level with the newer layers: instance norm, PReLU per channel, transposed conv and a
    concatenated skip, trilinear upsampling, average pooling with divisor_override, replication padding."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv3d(2, 4, 3, padding=1)
        self.norm = nn.InstanceNorm3d(4, affine=True)
        self.act = nn.PReLU(4)
        self.down = nn.Conv3d(4, 8, 3, padding=1)
        self.up = nn.ConvTranspose3d(8, 4, 2, stride=2)
        self.dec = nn.Conv3d(8, 4, 3)

    def forward(self, x):
        skip = self.act(self.norm(self.enc(x)))
        y = self.up(torch.relu(self.down(F.max_pool3d(skip, 2))))
        y = self.dec(F.pad(torch.cat([y, skip], 1), (1, 1, 1, 1, 1, 1), mode="replicate"))
        y = F.interpolate(y, scale_factor=1.5, mode="trilinear", align_corners=True)
        return F.adaptive_avg_pool3d(F.avg_pool3d(y, 2, divisor_override=3), (1, 2, None))


UNET3D = ["Conv3d(2, 4, 3, padding=1)", "InstanceNorm3d(4, affine=True)", "skip=PReLU(4)", "MaxPool3d(2)",
          "Conv3d(4, 8, 3, padding=1)", "ReLU", "ConvTranspose3d(8, 4, 2, stride=2)", "Cat(@skip)",
          "ReplicationPad3d(1)", "Conv3d(8, 4, 3)", "Upsample(scale_factor=1.5, mode='trilinear', align_corners=True)",
          "AvgPool3d(2, divisor_override=3)", "AdaptiveAvgPool3d((1, 2, None))"]  # fmt: skip


class Generator2d(nn.Module):
    """A small 2-D generator of the newer layers: upsampling, reflection and zero padding, group and layer
    norm, PReLU, pixel and channel shuffles, GLU, local response norm, Hardtanh, SELU, Unflatten."""

    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(4, 8, 3)
        self.norm = nn.GroupNorm(2, 8)
        self.act = nn.PReLU()
        self.expand = nn.Conv2d(8, 16, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.mix = nn.ChannelShuffle(2)
        self.gate = nn.GLU(1)
        self.lrn = nn.LocalResponseNorm(2)
        self.zero = nn.ZeroPad2d((1, 0, 1, 0))
        self.ln = nn.LayerNorm(17)
        self.clip = nn.Hardtanh(-0.5, 0.5)
        self.selu = nn.SELU()
        self.flat = nn.Flatten()
        self.unflat = nn.Unflatten(1, (2, 17, -1))

    def forward(self, x):
        y = self.act(self.norm(self.conv(self.pad(self.up(x)))))
        y = self.lrn(self.gate(self.mix(self.shuffle(self.expand(y)))))
        return self.unflat(self.flat(self.selu(self.clip(self.ln(self.zero(y))))))


GENERATOR = ["Upsample(scale_factor=2)", "ReflectionPad2d(1)", "Conv2d(4, 8, 3)", "GroupNorm(2, 8)", "PReLU",
             "Conv2d(8, 16, 1)", "PixelShuffle(2)", "ChannelShuffle(2)", "GLU(1)", "LocalResponseNorm(2)",
             "ZeroPad2d((1, 0, 1, 0))", "LayerNorm(17)", "Hardtanh(-0.5, 0.5)", "SELU", "Flatten",
             "Unflatten(1, (2, 17, -1))"]  # fmt: skip

BLOCKS = [
    ("3-d resnet block with downsample", ResBlock3d, RESBLOCK, (2, 4, 6, 7, 5)),
    ("3-d u-net level", UNet3d, UNET3D, (1, 2, 4, 6, 6)),
    ("2-d generator of new layers", Generator2d, GENERATOR, (2, 4, 4, 4)),
]


@pytest.mark.parametrize(("name", "module", "texts", "shape"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_block_shapes_params_and_macs_equal_torch(name, module, texts, shape):
    torch.manual_seed(0)
    model = module().eval()
    x = torch.zeros(shape)
    with torch.no_grad():
        expected = tuple(model(x).shape)
    trace = cnnops.trace_shapes(shape, texts)
    trace.raise_error()
    assert trace.output_shape == expected
    assert trace.total_params == sum(p.numel() for p in model.parameters())
    assert trace.total_macs == hook_macs(model, x)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize(("name", "module", "texts", "shape"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_block_values_equal_torch_on_both_engines(name, module, texts, shape, engine):
    data = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    torch.manual_seed(0)
    model = module().eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(data)).numpy()
    result = cnnops.run_stages(data, texts, engine=engine, seed=0)
    assert result.output.shape == expected.shape
    np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "text",
    ["Conv3d(2, 4, 3, stride=2, padding=1, bias=False)", "ConvTranspose3d(4, 2, (1, 2, 3), stride=2)",
     "MaxPool3d(2)", "MaxPool3d((1, 2, 2), stride=1, padding=(0, 1, 1), ceil_mode=True)", "AvgPool3d(3, 2, 1)",
     "AvgPool3d(2, divisor_override=3)", "AdaptiveAvgPool3d((None, 2, 3))", "AdaptiveMaxPool3d(1)", "MaxUnpool3d(2)",
     "BatchNorm3d(8)", "BatchNorm2d(4, affine=False)", "BatchNorm1d(3, momentum=None)", "Dropout3d(0.2)", "LayerNorm(64)", "LayerNorm((8, 8), elementwise_affine=False)",
     "GroupNorm(4, 32)", "GroupNorm(1, 8, eps=0.001, affine=False)", "InstanceNorm1d(4)",
     "InstanceNorm2d(8, affine=True)", "InstanceNorm3d(3, track_running_stats=True)", "LocalResponseNorm(5)",
     "LocalResponseNorm(2, alpha=0.001, beta=0.5, k=2.0)", "PReLU()", "PReLU(64, init=0.1)", "Hardsigmoid()",
     "Hardsigmoid(inplace=True)", "Hardtanh()", "Hardtanh(-2, 3, True)", "SELU()", "SELU(inplace=True)", "CELU()",
     "CELU(0.5, True)", "Softsign()", "Tanhshrink()", "Threshold(0.1, 20.0)", "Threshold(1, 2, True)", "GLU()",
     "GLU(dim=1)", "Upsample(scale_factor=2)", "Upsample(size=(4, 4), mode='bilinear', align_corners=True)",
     "Upsample(scale_factor=(1.5, 2), mode='bicubic')", "UpsamplingNearest2d(scale_factor=2)",
     "UpsamplingBilinear2d(size=8)", "PixelShuffle(2)", "PixelUnshuffle(3)", "ChannelShuffle(4)", "ZeroPad1d(2)",
     "ZeroPad2d((1, 2, 0, -1))", "ZeroPad3d(1)", "ConstantPad1d(1, 2.5)", "ConstantPad2d((1, 1), -1)",
     "ConstantPad3d(2, 0.0)", "ReflectionPad1d((2, 1))", "ReflectionPad2d(1)", "ReflectionPad3d(1)",
     "ReplicationPad1d(3)", "ReplicationPad2d((1, 0, 1, 0))", "ReplicationPad3d(2)", "CircularPad1d(1)",
     "CircularPad2d((1, 1, 2, 2))", "CircularPad3d(1)", "Unflatten(1, (2, 3))", "AlphaDropout(0.2)",
     "FeatureAlphaDropout()"],
)  # fmt: skip
def test_new_layers_print_exactly_pytorch_repr_and_read_it_back(text):
    module = eval(f"nn.{text}", {"nn": nn})  # test-only oracle
    assert parse_stage(text).torch_repr() == repr(module)
    assert parse_stage(repr(module)).torch_repr() == repr(module), "print(model) text reads back as the same layer"


def test_receptive_field_through_3d_convs_pools_and_padding():
    trace = cnnops.trace_shapes((1, 1, 16, 16, 16), ["Conv3d(1, 2, 3)", "MaxPool3d(2)", "Conv3d(2, 2, (1, 3, 5))"])
    rf = trace.rows[-1].receptive_field
    assert [r.size for r in rf] == [4, 8, 12] and [r.jump for r in rf] == [2, 2, 2]
    # padding shifts where the first field sits (half a kernel in minus the padding before it)
    padded = cnnops.trace_shapes((1, 1, 8, 8), ["ZeroPad2d((2, 0, 1, 3))", "Conv2d(1, 1, 3)"]).rows[-1].receptive_field
    assert [(r.size, r.jump, r.start) for r in padded] == [(3, 1, 0.0), (3, 1, -1.0)]
    # upsampling and pixel shuffle are no sliding windows: the field ends there
    for stage in ("Upsample(scale_factor=2)", "PixelShuffle(1)", "GLU(-1)"):
        rows = cnnops.trace_shapes((1, 4, 8, 8), ["Conv2d(4, 4, 3)", stage, "Conv2d(4, 2, 1)"]).rows
        assert rows[0].receptive_field is not None and rows[-1].receptive_field is None, stage
    # GLU over channels keeps positions: the field goes on
    assert cnnops.trace_shapes((1, 4, 8, 8), ["Conv2d(4, 4, 3)", "GLU(1)", "Conv2d(2, 2, 3)"]).rows[-1].receptive_field


def test_params_of_normalisation_and_prelu_are_their_affine_weights():
    for text, shape in [("LayerNorm((4, 5))", (2, 3, 4, 5)), ("LayerNorm(5, bias=False)", (2, 5)),
                        ("GroupNorm(2, 6)", (2, 6, 3)), ("InstanceNorm2d(6, affine=True)", (2, 6, 3, 3)),
                        ("PReLU(6)", (2, 6, 3, 3)), ("LocalResponseNorm(3)", (2, 6, 3))]:  # fmt: skip
        module = eval(f"nn.{text}", {"nn": nn})
        trace = cnnops.trace_shapes(shape, [text])
        assert trace.total_params == sum(p.numel() for p in module.parameters()), text
        assert trace.total_macs == 0, text
