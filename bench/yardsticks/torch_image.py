"""Plain torch: the same image chain as numpy_image.py (conv with four fixed kernels → ReLU → MaxPool2d(2)).
Usage: python torch_image.py IMAGE OUT.npy"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

x = torch.from_numpy(np.asarray(Image.open(sys.argv[1]).convert("L"), dtype=np.float32) / 255)[None, None]
k = torch.tensor([[[-1., 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1., -2, -1], [0, 0, 0], [1, 2, 1]],
                  [[0., 1, 0], [1, -4, 1], [0, 1, 0]], [[-1., -1, -1], [-1, 8, -1], [-1, -1, -1]]])[:, None]
with torch.no_grad():
    y = F.max_pool2d(F.relu(F.conv2d(x, k)), 2)
np.save(sys.argv[2], y[0].numpy())
