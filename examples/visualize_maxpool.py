"""The "visualising max pooling" walk-through, end to end, on the bundled street image.

grayscale → four edge filters (Conv2d with vertical-edge, its negative and both transposes) → ReLU →
2×2 max pool, with a feature-map PNG for every stage, and a GIF of the max pool sliding over a
16×16 crop of the image (the whole 61×61 map is too big to read as numbers).

Run from anywhere:  python examples/visualize_maxpool.py [DIR]   (default: maps/)
"""

import sys
from pathlib import Path

from cnnops.io.read import read_input
from cnnops.pictures.animation import animate
from cnnops.pictures.maps import save_maps
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stages

IMAGE = Path(__file__).with_name("street.png")
STAGES = [
    "Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T', bias=False)",
    "ReLU",
    "MaxPool2d(2)",
]
CROP = (slice(None), slice(38, 54), slice(36, 52))  # the car's left wheel: strong edges in every direction


def main(directory: str = "maps") -> list[str]:
    stages = parse_stages(STAGES)
    image = read_input(str(IMAGE)).data  # grayscale (1, 64, 64), values in [0, 1]
    written = save_maps(run_pipeline(image, stages), directory)
    crop = run_pipeline(image[CROP].copy(), stages)
    gif = str(Path(directory) / "maxpool.gif")
    frames = animate(crop, 3, gif, channel=2)  # channel 2: vertical-edge.T, the horizontal edges
    print(f"{gif}: {frames} frames, one per output cell of MaxPool2d(2) on the 16×16 crop")
    return [*written, gif]


if __name__ == "__main__":
    for path in main(sys.argv[1] if len(sys.argv) > 1 else "maps"):
        print(path)
