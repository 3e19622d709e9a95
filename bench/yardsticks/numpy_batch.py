"""Plain NumPy loop over many images: each through the chain of numpy_image.py, saved as DIR/<stem>.npy.

The yardstick for `cnnops run IMAGES… BANK ReLU MaxPool2d(2) --output-dir DIR --output-format npy -q`.
Usage: python numpy_batch.py DIR IMAGE..."""

import os
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

k = np.array([[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
              [[0, 1, 0], [1, -4, 1], [0, 1, 0]], [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]], np.float32)
k = k.reshape(4, 9)
for path in sys.argv[2:]:
    x = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    x /= np.float32(255)
    h, w = x.shape[0] - 2, x.shape[1] - 2
    c = (k @ sliding_window_view(x, (3, 3)).transpose(2, 3, 0, 1).reshape(9, -1)).reshape(4, h, w)
    np.maximum(c, 0, out=c)
    oh, ow = h // 2, w // 2
    y = np.maximum(c[:, 0 : 2 * oh : 2, 0 : 2 * ow : 2], c[:, 0 : 2 * oh : 2, 1 : 2 * ow : 2])
    np.maximum(y, c[:, 1 : 2 * oh : 2, 0 : 2 * ow : 2], out=y)
    np.maximum(y, c[:, 1 : 2 * oh : 2, 1 : 2 * ow : 2], out=y)
    np.save(os.path.join(sys.argv[1], os.path.splitext(os.path.basename(path))[0] + ".npy"), y)
