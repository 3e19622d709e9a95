"""cnnops speed benchmarks: medians and ratios measured in one run, against the targets of issue 4.

Run from the repository root:  python bench/run.py [--repeat N]

Each case runs as a fresh process (start-up included, as a user or a shell script sees it) and is
compared with a reference measured in the same run on the same machine, so the ratios hold even when
the absolute numbers drift. Benchmarks are not tests: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CNNOPS = [PY, "-m", "cnnops"]
BANK = "Conv2d(1, 4, 3, weight='sobel-x, sobel-y, laplacian, edge', bias=False)"
HEAVY = ["Conv2d(64, 64, 3, padding=1)", "ReLU", "MaxPool2d(2)"]

PLAIN_TORCH_IMAGE = """
import sys, numpy as np, torch, torch.nn.functional as F
from PIL import Image
x = torch.from_numpy(np.asarray(Image.open(sys.argv[1]).convert("L"), dtype=np.float32) / 255)[None, None]
k = torch.tensor([[[-1., 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-1., -2, -1], [0, 0, 0], [1, 2, 1]],
                  [[0., 1, 0], [1, -4, 1], [0, 1, 0]], [[-1., -1, -1], [-1, 8, -1], [-1, -1, -1]]])[:, None]
with torch.no_grad():
    y = F.max_pool2d(F.relu(F.conv2d(x, k)), 2)
np.save(sys.argv[2], y[0].numpy())
"""
PLAIN_TORCH_HEAVY = """
import sys, numpy as np, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
with torch.no_grad():
    y = model(torch.from_numpy(np.load(sys.argv[1])))
np.save(sys.argv[2], y.numpy())
"""


def timed(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Median wall time in seconds and the largest peak resident memory in MB over ``repeat`` runs."""
    times, peaks = [], []
    env = dict(os.environ, NO_COLOR="1")
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(times), max(peaks)


MAKE_INPUTS = """
import sys, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:2048, 0:2048]
pixels = (127 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + rng.normal(0, 20, (2048, 2048))).clip(0, 255)
Image.fromarray(pixels.astype(np.uint8)).save(sys.argv[1])
np.save(sys.argv[2], rng.standard_normal((1, 64, 112, 112)).astype(np.float32))
"""


def make_inputs(directory: Path) -> tuple[Path, Path]:
    """Written by a child process, so this process stays small and children's peak memory is theirs."""
    image, heavy = directory / "image2048.png", directory / "heavy.npy"
    subprocess.run([PY, "-c", MAKE_INPUTS, str(image), str(heavy)], check=True)
    return image, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (the median is reported)")
    args = parser.parse_args()
    r = args.repeat
    # users run from compiled bytecode; with PYTHONDONTWRITEBYTECODE set every start would recompile
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "cnnops")], check=True)
    rows: list[tuple[str, float, str, float, float, float | None]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        image, heavy = make_inputs(tmpdir)
        out = str(tmpdir / "out.npy")

        typer_rich, _ = timed([PY, "-c", "import typer, rich.table"], r)
        shape, shape_mb = timed([*CNNOPS, "shape", "1x3x224x224", "-f", "examples/alexnet.txt"], r)
        rows.append(("cnnops shape AlexNet", shape, "import typer, rich.table", typer_rich, 1.5, shape_mb))

        torch_import, _ = timed([PY, "-c", "import torch"], r)
        for engine in ("auto", "numpy", "torch"):
            t, mb = timed([*CNNOPS, "pool", "-k", "2", "examples/grid4x4.json", "--engine", engine, "--json"], r)
            rows.append((f"small pool, engine {engine}", t, "import torch", torch_import, 0.2 if engine != "torch" else None, mb))

        plain_image, _ = timed([PY, "-c", PLAIN_TORCH_IMAGE, str(image), out], max(3, r // 2))
        for engine in ("auto", "numpy", "torch"):
            cmd = [*CNNOPS, "run", str(image), BANK, "ReLU", "MaxPool2d(2)", "--engine", engine, "-q", "-o", out]
            t, mb = timed(cmd, max(3, r // 2))
            rows.append((f"2048² conv→relu→pool, {engine}", t, "plain torch script", plain_image, 0.5 if engine == "auto" else None, mb))

        plain_heavy, _ = timed([PY, "-c", PLAIN_TORCH_HEAVY, str(heavy), out], max(3, r // 2))
        for engine in ("auto", "numpy", "torch"):
            cmd = [*CNNOPS, "run", str(heavy), *HEAVY, "--engine", engine, "-q", "-o", out]
            t, mb = timed(cmd, max(3, r // 2))
            rows.append((f"1×64×112² conv64→relu→pool, {engine}", t, "plain torch script", plain_heavy, 1.2 if engine == "auto" else None, mb))

    print(f"{'case':38} {'median':>8} {'reference':>26} {'ref':>7} {'ratio':>6} {'target':>7} {'peak MB':>8}")
    for name, t, ref_name, ref, target, mb in rows:
        ratio = t / ref
        verdict = "" if target is None else (f"≤ {target:.1f} " + ("ok" if ratio <= target else "MISS"))
        print(f"{name:38} {t:7.3f}s {ref_name:>26} {ref:6.3f}s {ratio:6.2f} {verdict:>10} {mb:8.0f}")
    small = [mb for name, _, _, _, _, mb in rows if name.startswith("small pool, engine auto")]
    print(f"\nsmall-op peak memory on auto: {small[0]:.0f} MB (target ≤ 80 MB)")


if __name__ == "__main__":
    main()
