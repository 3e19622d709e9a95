"""Plain torch: N stacked nn.Conv2d(C, C, 3, padding=1) with PyTorch's default initialisation → .npy.
Usage: python torch_conv.py X.npy OUT.npy [N]"""

import sys

import numpy as np
import torch

x = torch.from_numpy(np.load(sys.argv[1]))
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
torch.manual_seed(0)
model = torch.nn.Sequential(*[torch.nn.Conv2d(x.shape[1], x.shape[1], 3, padding=1) for _ in range(layers)])
with torch.no_grad():
    y = model(x)
np.save(sys.argv[2], y.numpy())
