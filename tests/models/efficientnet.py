# An EfficientNet-style network: MBConv blocks with SiLU, squeeze-and-excitation (sigmoid gate) and
# stochastic depth (a no-op in evaluation), channels scaled by a width multiplier.
import math

import torch
from torch import nn


def make_divisible(value, divisor=8):
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class SE(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.SiLU()
        self.gate = nn.Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand, drop=0.0):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.drop = drop
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden, eps=1e-3), nn.SiLU(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden, eps=1e-3),
            nn.SiLU(inplace=True),
            SE(hidden, max(1, cin // 4)),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        if self.use_res:
            if self.training and self.drop > 0:
                keep = torch.rand(x.shape[0], 1, 1, 1) > self.drop
                out = out * keep / (1 - self.drop)
            out = out + x
        return out


class EfficientNet(nn.Module):
    def __init__(self, width_mult=0.5, depth_mult=1.0, num_classes=10):
        super().__init__()
        config = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                  (6, 5, 1, 80, 112, 3)]
        stem = make_divisible(32 * width_mult)
        layers = [nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem, eps=1e-3), nn.SiLU(inplace=True)]
        cin = stem
        for expand, kernel, stride, _, c, n in config:
            cout = make_divisible(c * width_mult)
            for i in range(int(math.ceil(n * depth_mult))):
                layers.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand, drop=0.2))
                cin = cout
        last = 4 * cin
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last, eps=1e-3), nn.SiLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)
