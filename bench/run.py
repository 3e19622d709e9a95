"""cnnops against the honest yardsticks: plain NumPy and plain torch scripts doing the same work.

Run from the repository root:  python bench/run.py [--repeat N] [--quick] [--only WORD] [--readme]

Every command runs as a fresh process (start-up included, as a user or a shell script sees it), from
compiled bytecode as users have it. The commands of a case run interleaved, repeat after repeat, so a
change in the machine's load hits all of them alike, in every order in turn (each command follows each
other one equally often); a ratio is the median of the per-repeat ratios (cases under a second repeat
12 or 16 times, the largest images and the GELU case 6 times: whole rounds of the orders).
Peak memory is the child's maximum resident set. The yardsticks are in bench/yardsticks/; the image
chain's NumPy script runs its (memory-bound, 9-deep) matmuls on one BLAS thread, as cnnops does, so
it is not slowed by OpenBLAS's thread hand-offs. ``--readme`` rewrites the table in README.md from
this run. Benchmarks are not tests: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
YARD = ROOT / "bench" / "yardsticks"
PY = sys.executable
CNNOPS = [PY, "-m", "cnnops"]
BANK = "Conv2d(1, 4, 3, weight='sobel-x, sobel-y, laplacian, edge', bias=False)"
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1"}
#: repeats for the cases that take well under a second, whose ratios the machine's load moves most
FAST = 12


@dataclass
class Command:
    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_mb: float = 0.0


@dataclass
class Case:
    group: str
    name: str
    commands: list[Command]
    measured: str  # the label whose ratio is judged
    against: list[str]  # labels of the references: the ratio is to the fastest of them
    target: float | None = None
    memory_target: float | None = None  # peak memory ratio to the first reference
    repeat: int | None = None
    chose: str = ""  # the auto engine's cases: the engine it ran (see :func:`chosen_engine`)

    def command(self, label: str) -> Command:
        return next(c for c in self.commands if c.label == label)

    def ratios(self) -> list[float]:
        """Per repeat: the measured command's time over the fastest reference's."""
        mine = self.command(self.measured).times
        refs = [self.command(label).times for label in self.against]
        return [m / min(r[i] for r in refs) for i, m in enumerate(mine)]

    def ratio(self) -> float:
        return statistics.median(self.ratios())

    def memory_ratio(self) -> float:
        return self.command(self.measured).peak_mb / self.command(self.against[0]).peak_mb

    def verdict(self) -> str:
        if self.target is None:
            return ""
        ok = self.ratio() <= self.target and (self.memory_target is None or self.memory_ratio() <= self.memory_target)
        return "met" if ok else "MISSED"


def run_case(case: Case, repeat: int) -> None:
    """Interleaved: every command once per repeat, in every order in turn (the repeats are rounded up to
    whole rounds of the orders), so that each command runs right after each other one equally often. A
    process that used and freed a lot of memory (torch's scripts) slows the fresh memory of the one
    after it, by some 10% for a run of a tenth of a second: a rotation put the same command after torch
    every time."""
    orders = list(itertools.permutations(case.commands))  # at most 6: cases have 2 or 3 commands
    n = -(-(case.repeat or repeat) // len(orders)) * len(orders)
    for r in range(n):
        for cmd in orders[r % len(orders)]:
            measure(cmd)


def chosen_engine(case: Case) -> str:
    """The engine ``--engine auto`` runs for this case, read from the header of the same command with
    ``--summary`` (tables, no tensors). Where it is the faster reference's own engine, the two commands
    run the very same code, and their ratio shows only how much the machine moves one run against another."""
    argv, rest = [], iter(case.command(case.measured).argv)
    for word in rest:
        if word == "-o":
            next(rest)
        elif word not in ("-q", "--json"):
            argv.append(word)
    shown = subprocess.run([*argv, "--summary"], capture_output=True, text=True, cwd=ROOT,
                           env=dict(os.environ, NO_COLOR="1")).stdout  # fmt: skip
    found = re.search(r"· engine (\w+)", shown.split("\n", 1)[0])
    return found.group(1) if found else "?"


def measure(cmd: Command) -> None:
    """One run: wall time, CPU time and peak memory. The peak is the child's maximum resident set,
    which on Linux also counts the memory of this process when the child is started (vfork, then
    exec): this process never loads NumPy or any data, so it stays below the smallest child's."""
    env = dict(os.environ, NO_COLOR="1", **cmd.env)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else b""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd.argv)}\n{err.decode(errors='replace')[-2000:]}")
    cmd.times.append(took)
    cmd.cpu.append(usage.ru_utime + usage.ru_stime)
    cmd.peak_mb = max(cmd.peak_mb, usage.ru_maxrss / 1024)


MAKE_INPUTS = r"""
import sys, os, numpy as np, orjson
from PIL import Image
out, quick = sys.argv[1], sys.argv[2] == "1"
rng = np.random.default_rng(0)
sizes = (256, 1024, 2048) if quick else (256, 1024, 2048, 4096, 8192)
for n in sizes:
    yy, xx = np.ogrid[0:n, 0:n]
    noise = rng.normal(0, 20, (n, n)).astype(np.float32)
    pixels = (127 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + noise).clip(0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(out, f"img{n}.png"))
for h in (56, 112, 224):
    np.save(os.path.join(out, f"heavy{h}.npy"), rng.standard_normal((1, 64, h, h)).astype(np.float32))
open(os.path.join(out, "j1000.json"), "wb").write(orjson.dumps(rng.standard_normal((1000, 1000)).astype(np.float32), option=orjson.OPT_SERIALIZE_NUMPY))
os.makedirs(os.path.join(out, "batch"), exist_ok=True)
for i in range(100 if quick else 500):
    Image.fromarray(rng.integers(0, 256, (128, 128), dtype=np.uint8)).save(os.path.join(out, "batch", f"b{i:03d}.png"))
np.save(os.path.join(out, "plane2000.npy"), rng.standard_normal((2000, 2000)).astype(np.float32))
np.save(os.path.join(out, "wide.npy"), rng.standard_normal((1, 64, 512, 512)).astype(np.float32))
np.save(os.path.join(out, "gelu.npy"), rng.standard_normal((1, 16 if quick else 128, 1024, 1024)).astype(np.float32))
if not quick:
    np.save(os.path.join(out, "plane8192.npy"), rng.standard_normal((8192, 8192)).astype(np.float32))
"""


def cases(tmp: Path, quick: bool) -> list[Case]:
    out = str(tmp / "out.npy")
    t = lambda name: str(tmp / name)  # noqa: E731
    result: list[Case] = []
    # --- the image chain against plain NumPy (time and memory) and plain torch
    for n in (256, 1024, 2048) if quick else (256, 1024, 2048, 4096, 8192):
        img = t(f"img{n}.png")
        result.append(Case("image", f"image {n}² conv→ReLU→MaxPool2d(2)→.npy", [
            Command("cnnops", [*CNNOPS, "run", img, BANK, "ReLU", "MaxPool2d(2)", "-q", "-o", out]),
            Command("numpy", [PY, str(YARD / "numpy_image.py"), img, t("ref.npy")], ONE_THREAD),
            Command("torch", [PY, str(YARD / "torch_image.py"), img, t("ref_t.npy")]),
        ], "cnnops", ["numpy"], 1.2, 1.5, repeat=3 if n >= 4096 else FAST if n <= 1024 else None))  # fmt: skip
    # --- heavy convolutions against the faster of plain NumPy and plain torch
    for h in (56, 112, 224):
        x = t(f"heavy{h}.npy")
        result.append(Case("heavy", f"Conv2d(64, 64, 3, padding=1) on 1×64×{h}²", [
            Command("cnnops", [*CNNOPS, "run", x, "Conv2d(64, 64, 3, padding=1)", "-q", "-o", out]),
            Command("numpy", [PY, str(YARD / "numpy_conv.py"), x, t("ref.npy")]),
            Command("torch", [PY, str(YARD / "torch_conv.py"), x, t("ref_t.npy")]),
        ], "cnnops", ["numpy", "torch"], 1.1, repeat=FAST))  # fmt: skip
    # --- a batch of small images against a plain NumPy loop
    images = sorted(str(p) for p in (tmp / "batch").glob("*.png"))
    result.append(Case("batch", f"{len(images)} PNGs of 128² → --output-dir (npy)", [
        Command("cnnops", [*CNNOPS, "run", *images, BANK, "ReLU", "MaxPool2d(2)", "-q", "--output-dir", t("od"),
                           "--format", "npy"]),
        Command("numpy", [PY, str(YARD / "numpy_batch.py"), t("odn"), *images], ONE_THREAD),
        Command("torch", [PY, str(YARD / "torch_batch.py"), t("odt"), *images]),
    ], "cnnops", ["numpy"], 1.0, repeat=FAST))  # fmt: skip
    # --- JSON in and out against the orjson floor
    result.append(Case("json", "1000×1000 JSON → relu --json", [
        Command("cnnops", [*CNNOPS, "relu", t("j1000.json"), "--json"]),
        Command("orjson floor", [PY, str(YARD / "json_floor.py"), t("j1000.json")]),
        Command("torch", [PY, str(YARD / "torch_json.py"), t("j1000.json")]),
    ], "cnnops", ["orjson floor"], 1.2))  # fmt: skip
    # --- start-up against importing what the CLI is built on
    floor = Command("import typer, rich.table", [PY, "-c", "import typer, rich.table"])
    floor_np = Command("… and numpy", [PY, "-c", "import typer, rich.table, numpy"])
    for name, argv in (("cnnops shape AlexNet", ["shape", "1x3x224x224", "-f", "examples/alexnet.txt"]),
                       ("cnnops solve", ["solve", "--input", "224", "--output", "112", "--kernel", "3"]),
                       ("cnnops --help", ["--help"])):  # fmt: skip
        result.append(Case("startup", name, [Command("cnnops", [*CNNOPS, *argv]), Command(floor.label, floor.argv)],
                           "cnnops", [floor.label], 1.3, repeat=15))  # fmt: skip
    result.append(Case("startup", "cnnops pool 4×4 (table)", [
        Command("cnnops", [*CNNOPS, "pool", "-k", "2", "examples/grid4x4.json"]), Command(floor_np.label, floor_np.argv),
    ], "cnnops", [floor_np.label], 1.3, repeat=15))  # fmt: skip
    # --- the auto engine against the faster engine, case by case
    matrix = [
        ("image 2048² chain", ["run", t("img2048.png"), BANK, "ReLU", "MaxPool2d(2)", "-q", "-o", out]),
        ("Conv2d(64, 64, 3) on 224²", ["run", t("heavy224.npy"), "Conv2d(64, 64, 3, padding=1)", "-q", "-o", out]),
        ("12 × Conv2d(64, 64, 3) on 224²", ["run", t("heavy224.npy"), *["Conv2d(64, 64, 3, padding=1)"] * 12, "-q", "-o", out]),
        ("GELU on 1×128×1024²" if not quick else "GELU on 1×16×1024²", ["act", "--fn", "gelu", t("gelu.npy"), "-q", "-o", out]),
        ("MaxPool2d(2000) on 2000²", ["pool", "-k", "2000", t("plane2000.npy"), "-q", "-o", out]),
        ("AvgPool2d(16) on 1×64×512²", ["run", t("wide.npy"), "AvgPool2d(16)", "-q", "-o", out]),
        ("AdaptiveAvgPool2d(7) on 1×64×512²", ["run", t("wide.npy"), "AdaptiveAvgPool2d(7)", "-q", "-o", out]),
        ("ConvTranspose2d(1, 1, 3000) on [[1]]", ["run", "[[1]]", "ConvTranspose2d(1, 1, 3000)", "-q", "-o", out]),
        ("pool 4×4 --json", ["pool", "-k", "2", "examples/grid4x4.json", "--json"]),
    ]  # fmt: skip
    for name, argv in matrix:
        result.append(Case("auto", name, [Command(engine, [*CNNOPS, *argv, "--engine", engine])
                                          for engine in ("auto", "numpy", "torch")], "auto", ["numpy", "torch"], 1.2,
                           repeat=None if "GELU" in name else FAST))  # fmt: skip
    # --- issue 15's near-hangs: one run each, in seconds
    slow = [("pool -k 2000 on 2000² (table)", ["pool", "-k", "2000", t("plane2000.npy")]),
            ("ConvTranspose2d(1, 1, 3000) on [[1]] (numpy)", ["run", "[[1]]", "ConvTranspose2d(1, 1, 3000)", "-q", "-o", out, "--engine", "numpy"])]  # fmt: skip
    slow += [("MaxPool2d(1000, stride=1) on 2000²", ["run", t("plane2000.npy"), "MaxPool2d(1000, stride=1)", "-q", "-o", out]),
             ("AvgPool2d(1000, stride=1) on 2000²", ["run", t("plane2000.npy"), "AvgPool2d(1000, stride=1)", "-q", "-o", out])]  # fmt: skip
    if not quick:
        slow.append(("pool -k 8192 on 8192² (table)", ["pool", "-k", "8192", t("plane8192.npy")]))
    for name, argv in slow:
        result.append(Case("seconds", name, [Command("cnnops", [*CNNOPS, *argv])], "cnnops", [], repeat=1))
    return result


COMPARE = r"""
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print(f"shapes {a.shape} {b.shape}, max |difference| {float(np.abs(a - b).max()):.2g}")
"""


def check_outputs(tmp: Path) -> str:
    """cnnops and the NumPy yardstick compute the same image chain: their results agree (compared in a
    child process: this one stays small, see :func:`measure`)."""
    img = str(tmp / "img1024.png")
    subprocess.run([*CNNOPS, "run", img, BANK, "ReLU", "MaxPool2d(2)", "-q", "-o", str(tmp / "a.npy")], check=True, cwd=ROOT)
    subprocess.run([PY, str(YARD / "numpy_image.py"), img, str(tmp / "b.npy")], check=True, cwd=ROOT)
    found = subprocess.run([PY, "-c", COMPARE, str(tmp / "a.npy"), str(tmp / "b.npy")], check=True, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    return f"image chain, cnnops vs NumPy script: {found}"


def table(done: list[Case]) -> list[str]:
    lines = ["| case | cnnops | reference | ref | ratio | target | peak MB (ref) |", "|---|---:|---|---:|---:|---|---:|"]
    for case in done:
        mine = case.command(case.measured)
        if not case.against:
            lines.append(f"| {case.name} | {statistics.median(mine.times):.2f} s | — | — | — | seconds | {mine.peak_mb:.0f} |")
            continue
        refs = [case.command(label) for label in case.against]
        best = min(refs, key=lambda c: statistics.median(c.times))
        target = "" if case.target is None else f"≤ {case.target:g}"
        if case.memory_target is not None:
            target += f", memory ≤ {case.memory_target:g}× ({case.memory_ratio():.2f})"
        target += f" {case.verdict()}" if case.target is not None else ""
        label = best.label if len(refs) == 1 else f"faster of {' / '.join(c.label for c in refs)}: {best.label}"
        label += f"; auto ran {case.chose}" if case.chose else ""
        others = [c for c in case.commands if c.label != case.measured and c.label not in case.against]
        label += "".join(f" ({c.label} {statistics.median(c.times):.3f} s)" for c in others)  # timed, not judged
        lines.append(
            f"| {case.name} | {statistics.median(mine.times):.3f} s | {label} | {statistics.median(best.times):.3f} s | "
            f"{case.ratio():.2f} | {target} | {mine.peak_mb:.0f} ({refs[0].peak_mb:.0f}) |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (interleaved; medians reported)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer cases (a smoke run)")
    parser.add_argument("--only", help="run only the cases whose group or name contains this")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's benchmark table from this run")
    args = parser.parse_args()
    if args.readme and (args.only or args.quick):
        parser.error("--readme rewrites the whole table: run every case at full size (no --only, no --quick)")
    if args.only and not [c for c in cases(Path("."), args.quick) if args.only in c.group or args.only in c.name]:
        parser.error(f"--only {args.only!r} matches no case (groups: image, heavy, batch, json, startup, auto, seconds)")
    # users run from compiled bytecode; with PYTHONDONTWRITEBYTECODE set every start would recompile
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "cnnops")], check=True)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        subprocess.run([PY, "-c", MAKE_INPUTS, name, "1" if args.quick else "0"], check=True)
        (tmp / "od").mkdir()
        (tmp / "odn").mkdir()
        (tmp / "odt").mkdir()
        print(check_outputs(tmp), flush=True)
        todo = [c for c in cases(tmp, args.quick) if not args.only or args.only in c.group or args.only in c.name]
        loads = []
        for case in todo:
            run_case(case, args.repeat)
            if case.group == "auto":
                case.chose = chosen_engine(case)
            loads.append(os.getloadavg()[0])
            print(f"{case.group:8} {case.name:45} " + (f"ratio {case.ratio():.2f} {case.verdict()}" if case.against else
                  f"{statistics.median(case.command(case.measured).times):.2f} s")
                  + (f" (auto ran {case.chose})" if case.chose else ""), flush=True)  # fmt: skip
    lines = table(todo)
    cpus = os.cpu_count()
    note = (f"Measured {started} on {cpus} cores, `--repeat {args.repeat}` (rounded up to whole rounds of the "
            f"commands' orders; cases under a second {FAST}–16 times); load average {load_before[0]:.1f} at the start, "
            f"{min(loads):.1f}–{max(loads):.1f} during the run (other work shared the machine).")  # fmt: skip
    print()
    print("\n".join(lines))
    print()
    print(note)
    misses = [c.name for c in todo if c.verdict() == "MISSED"]
    print(f"targets met: {sum(c.verdict() == 'met' for c in todo)} of {sum(bool(c.verdict()) for c in todo)}"
          + (f"; missed: {', '.join(misses)}" if misses else ""))  # fmt: skip
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text(encoding="utf-8")
        block = "<!-- bench:start -->\n" + "\n".join(lines) + "\n\n" + note + "\n<!-- bench:end -->"
        text, count = re.subn(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda m: block, text, flags=re.S)
        if count != 1:
            raise SystemExit("README.md has no <!-- bench:start --> … <!-- bench:end --> section to rewrite")
        readme.write_text(text, encoding="utf-8")
        print("README.md's table rewritten from this run")


if __name__ == "__main__":
    main()
