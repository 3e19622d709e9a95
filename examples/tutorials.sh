#!/usr/bin/env bash
# The tutorials' walk-throughs, one cnnops command each. Run from the repository root:
#   bash examples/tutorials.sh
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n### %s\n$ %s\n' "$1" "$2"; bash -c "$2"; }

step "The Gx kernel on a 5×5 image with a vertical line: -4, 0, 4 across the line" \
  "cnnops conv examples/line5x5.json --weight gx --bias false"
step "ReLU keeps the positive response: 0, 0, 4" \
  "cnnops run examples/line5x5.json \"Conv2d(1, 1, 3, weight='gx', bias=False)\" relu"
step "The tutorial's tensor pasted as written: ReLU of [[-4., 0., 4.]]" \
  "cnnops relu '[[-4., 0., 4.]]'"
step "The Gx kernel given as a PyTorch tensor" \
  "cnnops conv examples/line5x5.json --weight 'torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])' --bias 0"
step "MaxPool2d(2, stride=1) on image1: [2, 3, 3] in every row" \
  "cnnops pool --kernel 2 --stride 1 examples/image1.json"
step "MaxPool2d(2) on image1: [[2, 3], [2, 3]]" \
  "cnnops pool --kernel 2 examples/image1.json"
step "MaxPool2d(2, stride=1) on the 4×4 example" \
  "cnnops pool --kernel 2 --stride 1 examples/grid4x4.json"
step "MaxPool2d(2) on the 4×4 example" \
  "cnnops pool --kernel 2 examples/grid4x4.json"
step "Adaptive average pooling of [1, 2, 3] to 8 values" \
  "cnnops adaptive-pool examples/seq3.json --output-size 8"
step "Adaptive max pooling of [1, 2, 3] to 10 values" \
  "cnnops adaptive-pool examples/seq3.json --output-size 10 --mode max"
step "[[1, 2, 3]] is 2-D, so AdaptiveMaxPool2d by default; --dims 1 gives the tutorial's AdaptiveMaxPool1d(10)" \
  "cnnops adaptive-pool '[[1, 2, 3]]' --output-size 10 --mode max --dims 1"
step "AvgPool2d(2, 2, divisor_override=3) on ones: 4/3 everywhere" \
  "cnnops pool --mode avg --kernel 2 --stride 2 --divisor-override 3 examples/ones4x4.json"
step "Max pool with return_indices, then MaxUnpool2d (one run, then through a pipe)" \
  "cnnops run examples/grid4x4.json 'MaxPool2d(2, return_indices=True)' 'MaxUnpool2d(2)' && cnnops pool --kernel 2 examples/grid4x4.json --json | cnnops unpool --kernel 2 -"
step "Linear(3, 4) with set weights" \
  "cnnops linear '[1, 2, 3]' --out-features 4 --weight '[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]' --bias 0"
step "The tutorial's Linear(3, 4): rows of 1s, 2s, 3s, 4s and bias 0.5 give 6.5, 12.5, 18.5, 24.5" \
  "cnnops linear examples/seq3.json --out-features 4 --weight examples/linear_weight.json --bias 0.5"
step "torch.manual_seed(0); torch.randn(1, 4, 4), then MaxPool2d(2): torch's own random numbers" \
  "cnnops run 'torch.randn(1, 4, 4)' 'MaxPool2d(2)' --seed 0"
step "Four edge filters -> ReLU -> 2×2 max pool on the bundled image" \
  "cnnops run examples/street.png \"Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T', bias=False)\" relu maxpool:2"
step "Size AlexNet from the text print(model) shows" \
  "cnnops shape 1x3x224x224 -f examples/alexnet.txt"
