#!/usr/bin/env bash
# Regenerate the pictures the README shows, with cnnops' own commands (this checkout's, by python -m).
# Run from the repository root:
#   bash examples/make_pictures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/pictures
rm -rf "$out/maps" "$out/rgb"
BANK="Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T', bias=False)"
# feature maps at their true relative sizes, with axis ticks, colour bars and the filters as one picture
python -m cnnops run examples/street.png "$BANK" relu maxpool:2 --save-maps "$out/maps" --quiet
# a colour input: its three channel planes and their RGB composite
python -m cnnops run examples/street-rgb.png --rgb relu --save-maps "$out/rgb" --quiet
mv "$out/rgb/00-input.png" "$out/rgb-input.png" && rm -rf "$out/rgb"
python -m cnnops pool --kernel 2 --stride 1 examples/grid4x4.json --animate "$out/maxpool.gif" --quiet
python -m cnnops conv examples/line5x5.json --weight gx --bias 0 --animate "$out/conv.gif" --quiet
# a crop of a 64×64 image, drawn twice as large
python -m cnnops conv examples/street.png --weight gx --bias 0 --animate "$out/crop.gif" --crop 20,3,6,6 --zoom 2 --quiet
# the whole chain conv → ReLU → max pool in one GIF
python -m cnnops run examples/line5x5.json "Conv2d(1, 1, 3, weight='gx', bias=False)" relu "MaxPool2d(2, stride=1)" \
  --animate "$out/chain.gif" --animate-all --quiet
# a transposed convolution as the scatter it is
python -m cnnops run '[[1, 2], [3, 4]]' "ConvTranspose2d(1, 1, 3, stride=2, weight=[[1, 1, 1], [1, 2, 1], [1, 1, 1]], bias=False)" \
  --animate "$out/conv-transpose.gif" --quiet
# the terminal preview, recorded by rich as an SVG
python - "$out/preview.svg" <<'PY'
import sys

from rich.console import Console

from cnnops.io.read import read_input
from cnnops.pictures.preview import preview
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stages

tensor = read_input("examples/street.png")
stages = parse_stages(["Conv2d(1, 2, 4, weight='vertical-edge, vertical-edge.T', bias=False)"])
console = Console(record=True, width=72, color_system="truecolor", file=open("/dev/null", "w"))
console.print(preview(run_pipeline(tensor.data, stages), width=72))
console.save_svg(sys.argv[1], title="cnnops run … --preview")
PY
echo "pictures written to $out"
