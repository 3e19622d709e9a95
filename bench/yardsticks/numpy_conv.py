"""Plain NumPy: N stacked Conv2d(C, C, 3, padding=1) (weights drawn like PyTorch's default bound) → .npy.

The yardstick for `cnnops run X.npy 'Conv2d(C, C, 3, padding=1)' … -o OUT.npy`: zero padding, im2col of
bands of rows by a sliding-window view, one matmul per band (BLAS), bias added.
Usage: python numpy_conv.py X.npy OUT.npy [N]"""

import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

x = np.load(sys.argv[1])[0]
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = np.random.default_rng(0)
c, h, w = x.shape
bound = 1 / np.sqrt(c * 9)
for _ in range(layers):
    weight = rng.uniform(-bound, bound, (c, c * 9)).astype(np.float32)
    bias = rng.uniform(-bound, bound, (c, 1)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(1, 2))  # (C, H, W, 3, 3)
    y = np.empty((c, h, w), np.float32)
    rows = max(1, (1 << 22) // (c * 9 * w))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        cols = windows[:, r0:r1].transpose(0, 3, 4, 1, 2).reshape(c * 9, -1)
        y[:, r0:r1] = (weight @ cols + bias).reshape(c, r1 - r0, w)
    x = y
np.save(sys.argv[2], x[None])
