"""Plain torch loop over many images: each through the chain of torch_image.py, saved as DIR/<stem>.npy.

The torch counterpart of numpy_batch.py (timed beside it; the batch's target is against the NumPy loop).
Usage: python torch_batch.py DIR IMAGE..."""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

k = torch.tensor([[[-1., 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1., -2, -1], [0, 0, 0], [1, 2, 1]],
                  [[0., 1, 0], [1, -4, 1], [0, 1, 0]], [[-1., -1, -1], [-1, 8, -1], [-1, -1, -1]]])[:, None]
with torch.no_grad():
    for path in sys.argv[2:]:
        x = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255)[None, None]
        y = F.max_pool2d(F.relu(F.conv2d(x, k)), 2)
        np.save(os.path.join(sys.argv[1], os.path.splitext(os.path.basename(path))[0] + ".npy"), y[0].numpy())
