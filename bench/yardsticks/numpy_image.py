"""Plain NumPy: a grayscale image → Conv2d(1, 4, 3) with four fixed kernels → ReLU → MaxPool2d(2) → .npy.

The honest yardstick for `cnnops run IMAGE BANK ReLU MaxPool2d(2) -o OUT.npy`: what a careful person
writes by hand — bands of rows (so memory stays near input + output), im2col of each band by a
sliding-window view and one matmul, ReLU in place, the pool by pairwise maxima.
Usage: python numpy_image.py IMAGE OUT.npy
"""

import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

x = np.asarray(Image.open(sys.argv[1]).convert("L"), dtype=np.float32)
x /= np.float32(255)
k = np.array([[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
              [[0, 1, 0], [1, -4, 1], [0, 1, 0]], [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]], np.float32)
k = k.reshape(4, 9)
h, w = x.shape[0] - 2, x.shape[1] - 2  # conv output
oh, ow = h // 2, w // 2  # pool output
y = np.empty((4, oh, ow), np.float32)
rows = max(1, 16384 // w)  # pool rows per band: ~32k conv outputs per band
windows = sliding_window_view(x, (3, 3))
for r0 in range(0, oh, rows):
    r1 = min(oh, r0 + rows)
    cols = windows[2 * r0 : 2 * r1].transpose(2, 3, 0, 1).reshape(9, -1)
    c = (k @ cols).reshape(4, 2 * (r1 - r0), w)
    np.maximum(c, 0, out=c)
    top = np.maximum(c[:, 0::2, 0 : 2 * ow : 2], c[:, 0::2, 1 : 2 * ow : 2])
    np.maximum(top, c[:, 1::2, 0 : 2 * ow : 2], out=top)
    np.maximum(top, c[:, 1::2, 1 : 2 * ow : 2], out=y[:, r0:r1])
np.save(sys.argv[2], y)
