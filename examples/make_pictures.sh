#!/usr/bin/env bash
# Regenerate the pictures the README shows, with cnnops' own commands (this checkout's, by python -m).
# Run from the repository root:
#   bash examples/make_pictures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/pictures
rm -rf "$out/maps"
BANK="Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T', bias=False)"
python -m cnnops run examples/street.png "$BANK" relu maxpool:2 --save-maps "$out/maps" --quiet
python -m cnnops pool --kernel 2 --stride 1 examples/grid4x4.json --animate "$out/maxpool.gif" --quiet
python -m cnnops conv examples/line5x5.json --weight gx --bias 0 --animate "$out/conv.gif" --quiet
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
