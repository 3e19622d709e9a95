"""Reliability (issue 15): bounded memory for the whole run, no result lost or overwritten, no internal error.

Each finding of the issue's adversarial pass is a test here, run as a user would run it (the real
program in a subprocess where signals, terminals, memory limits or closed streams matter; the
in-process CliRunner elsewhere), plus kill tests, memory-capped runs, a full disk on a tiny tmpfs
(skipped where it cannot be mounted) and fuzzers over the batch and picture paths.

What every case checks: the exit status, one ``Error: …`` line (never a traceback or "internal
error"), every input file as it was, and no temporary file left behind.
"""

from __future__ import annotations

import json
import os
import pty
import re
import resource
import select
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from PIL import Image
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.cli.common import user_errors
from cnnops.io import read
from cnnops.io.memory import MemoryBudgetError, parse_size, size_text
from cnnops.model.trace import trace_shapes
from cnnops.run.budget import estimate_peak
from cnnops.run.pipeline import Needs, run_pipeline
from cnnops.spec import parse_stages

runner = CliRunner()
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip


def invoke(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input,
                         env={"COLUMNS": "200", "CNNOPS_DEBUG": None, "NO_COLOR": "1", **(env or {})})  # fmt: skip


def cnnops_process(*args, cwd=None, env=None, timeout=60, **kwargs):
    """The real program, as a shell user runs it."""
    full_env = dict(os.environ, COLUMNS="200", OPENBLAS_NUM_THREADS="1", **(env or {}))
    full_env.pop("CNNOPS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "cnnops", *map(os.fsdecode, args)], cwd=cwd, env=full_env,
                          capture_output=True, timeout=timeout, **kwargs)  # fmt: skip


def one_error(code, stdout, stderr, expected_code, *fragments):
    """The exit code, one ``Error: …`` line holding every fragment, no traceback, nothing on stdout."""
    stdout = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
    stderr = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in stdout + stderr and "internal error" not in stderr, stderr
    assert code == expected_code, (code, stderr)
    assert stdout == "", stdout[:500]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def result_error(result, expected_code, *fragments):
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return one_error(result.exit_code, result.stdout, result.stderr, expected_code, *fragments)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def temp_leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp")]


def limited_memory(megabytes: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (megabytes * 2**20, megabytes * 2**20))

    return limit


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def png(path: Path, side: int) -> Path:
    Image.fromarray((np.arange(side * side) % 251).astype(np.uint8).reshape(side, side)).save(path)
    return path


# ---------------------------------------------------------------------------------------------- 1. no data loss


def test_batch_outputs_mirror_the_input_folders_so_no_result_replaces_another(cwd):
    for name, value in (("a/x.json", 1), ("x-2.json", 2), ("b/x.json", 3)):
        (cwd / name).parent.mkdir(exist_ok=True)
        (cwd / name).write_text(f"[[{value}]]")
    result = invoke("relu", "a/x.json", "x-2.json", "b/x.json", "--output-dir", "od", "--quiet")
    assert result.exit_code == 0, result.stderr
    written = {str(p.relative_to(cwd / "od")): json.loads(p.read_text())["output"]["data"]
               for p in (cwd / "od").rglob("*.json")}  # fmt: skip
    assert written == {"a/x.json": [[1.0]], "x-2.json": [[2.0]], "b/x.json": [[3.0]]}


def test_save_maps_in_a_batch_keeps_one_folder_per_input(cwd):
    for name in ("a/x.png", "b/x.png"):
        (cwd / name).parent.mkdir(exist_ok=True)
        png(cwd / name, 4)
    result = invoke("run", "a/x.png", "b/x.png", "maxpool:2", "--save-maps", "maps", "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(str(p.relative_to(cwd / "maps")) for p in (cwd / "maps").rglob("*.png")) == [
        "a/x/00-input.png", "a/x/01-maxpool2d.png", "b/x/00-input.png", "b/x/01-maxpool2d.png"]  # fmt: skip


@pytest.mark.parametrize("args, fragment", [
    (("relu", "a/x.json", "--output-dir", "a", "-q"), "over the input 'a/x.json'"),
    (("relu", "a/x.json", "-o", "a/x.json", "-q"), "over the input 'a/x.json'"),
    (("relu", "a/x.json", "./a/x.json", "--output-dir", "od", "-q"), "is given twice"),
    (("relu", "a/x.json", "a/x.npy", "--output-dir", "od", "-q"), "would both write 'od/x.json'"),
    (("relu", "a/x.json", "a/x.npy", "--save-maps", "m", "-q"), "would both write 'm/x'"),
    (("run", "m/00-input.png", "relu", "--save-maps", "m", "-q"), "would replace the input 'm/00-input.png'"),
    (("run", "a/x.json", "Conv2d(1,1,1,weight='w.json')", "-o", "w.json", "-q"), "over the input 'w.json'"),
    # through a folder that is a symbolic link to another inside the output directory
    (("relu", "a/x.json", "b/x.json", "--output-dir", "od", "-q"),
     "would both write 'od/b/x.json' (as 'od/a/x.json', through a symbolic link)"),
    # one input's output file is another's folder
    (("relu", "k.json", "k.npy/x.json", "--output-dir", "od", "--format", "npy", "-q"), "as a file and as a folder"),
])  # fmt: skip
def test_outputs_never_collide_or_replace_an_input_and_nothing_is_written(cwd, args, fragment):
    (cwd / "b").mkdir()
    (cwd / "b/x.json").write_text("[[5]]")
    (cwd / "od/b").mkdir(parents=True)
    (cwd / "od/a").symlink_to("b")
    (cwd / "k.npy").mkdir()
    (cwd / "k.json").write_text("[[1]]")
    (cwd / "k.npy/x.json").write_text("[[2]]")
    (cwd / "a").mkdir()
    (cwd / "a/x.json").write_text("[[1]]")
    np.save(cwd / "a/x.npy", np.ones((2, 2), np.float32))
    (cwd / "m").mkdir()
    png(cwd / "m/00-input.png", 4)
    (cwd / "w.json").write_text("[[[[2]]]]")
    before = snapshot(cwd)
    result_error(invoke(*args), 2, fragment)
    assert snapshot(cwd) == before


def test_an_output_that_is_a_link_to_another_output_is_replaced_not_written_through(cwd):
    for name, value in (("a/x.json", 1), ("b/x.json", 2)):
        (cwd / name).parent.mkdir(exist_ok=True)
        (cwd / name).write_text(f"[[{value}]]")
    (cwd / "od/a").mkdir(parents=True)
    (cwd / "od/a/x.json").write_text("an old result")
    (cwd / "od/b").mkdir()
    (cwd / "od/b/x.json").symlink_to("../a/x.json")
    result = invoke("relu", "a/x.json", "b/x.json", "--output-dir", "od", "-q")
    assert result.exit_code == 0, result.stderr
    assert not (cwd / "od/b/x.json").is_symlink()
    assert [json.loads((cwd / f"od/{k}/x.json").read_text())["output"]["data"] for k in "ab"] == [[[1.0]], [[2.0]]]


def test_non_utf8_file_names_round_trip_in_a_batch(tmp_path):
    raw = os.fsencode(tmp_path) + b"/\xff\x1b.json"
    with open(raw, "wb") as handle:
        handle.write(b"[[1, -2]]")
    out = os.fsencode(tmp_path) + b"/\xffout"
    proc = cnnops_process("relu", raw, "[[3]]", "--output-dir", out, "--jsonl")
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert docs[0]["input"]["source"].endswith("\\xff\\x1b.json") and docs[0]["output"]["data"] == [[1.0, 0.0]]
    assert sorted(os.listdir(out)) == sorted([b"\xff\x1b.json", b"input-2.json"])
    single = cnnops_process("relu", raw, "-o", os.fsencode(tmp_path) + b"/\xff-1.json")
    assert single.returncode == 0 and single.stdout.startswith(b"input ") and b"\x1b" not in single.stdout


# ---------------------------------------------------------------------------------------------- 2. bounded memory


def test_endless_stdin_is_refused_at_a_byte_cap_under_a_memory_limit():
    for text in (b"1\n", b"[\n"):
        yes = subprocess.Popen(["yes", text.strip()], stdout=subprocess.PIPE)
        try:
            proc = cnnops_process("relu", "-", stdin=yes.stdout, preexec_fn=limited_memory(2048), timeout=60)
        finally:
            yes.kill()
            yes.wait()
            yes.stdout.close()
        one_error(proc.returncode, proc.stdout, proc.stderr, 1, "stdin holds more than", "--max-memory")


def test_stdin_npy_is_read_straight_into_its_array():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)

    class Dribble(io.RawIOBase):  # a pipe that hands out a few bytes at a time
        def __init__(self, data):
            self.data = data

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), 5, len(self.data))
            b[:n], self.data = self.data[:n], self.data[n:]
            return n

    tensor = read.read_input("-", stdin=io.BufferedReader(Dribble(buffer.getvalue()), 7))
    assert tensor.data.tolist() == array.tolist() and tensor.data.dtype == np.float32
    with pytest.raises(read.InputError, match="truncated or corrupt"):
        read.read_input("-", stdin=io.BytesIO(buffer.getvalue()[:-3]))


def test_memory_budget_refuses_a_run_before_it_starts(cwd):
    np.save(cwd / "x.npy", np.zeros((1, 1, 512, 512), np.float32))
    line = result_error(invoke("run", "x.npy", "relu", "relu", "--max-memory", "4M"), 1,
                        "needs about", "more than the limit of 4.0 MiB", "--max-memory")  # fmt: skip
    assert "keeping every intermediate tensor" in line
    assert invoke("run", "x.npy", "relu", "relu", "--max-memory", "40M", "-q", "-o", "y.npy").exit_code == 0
    result_error(invoke("relu", "x.npy", "--max-memory", "lots"), 2, "--max-memory takes a size")


@pytest.mark.parametrize("text, needs", [("zeros:100000x100000", "37.3 GiB"), ("randn:100000x100000", "37.3 GiB"),
                                         ("torch.rand(100000, 100000)", "37.3 GiB"), ("arange:10000x10000", "1.1 GiB")])
def test_generated_inputs_larger_than_the_budget_allows_are_refused_before_they_are_made(cwd, text, needs):
    """--max-elements raised, a generator's tensor still meets the memory budget (it ran out of memory)."""
    result_error(invoke("relu", text, "--max-elements", str(10**12), "--max-memory", "1G", "-q"), 1,
                 f"needs about {needs}", "more than the limit of 1.0 GiB", "--max-memory")  # fmt: skip
    assert invoke("relu", "randn:100x100", "--max-memory", "64M", "-q", "-o", "y.npy").exit_code == 0


def test_json_inputs_larger_than_the_budget_allows_are_refused_before_reading(cwd):
    (cwd / "x.json").write_text(json.dumps(np.zeros((200, 200)).tolist()))
    result_error(invoke("relu", "x.json", "--max-memory", "1M"), 1, "reading input file 'x.json'", ".npy")


def test_a_stage_file_is_capped_by_total_stages_before_it_is_parsed(cwd):
    (cwd / "long.txt").write_text("relu\n" * 10_001)
    (cwd / "repeats.txt").write_text("(0-999): 1000 x ReLU()\n" * 11)
    started = time.monotonic()
    for name, count in (("long.txt", "10,001"), ("repeats.txt", "11,000")):
        result_error(invoke("run", "[[1]]", "-f", name), 1, f"describes {count} stages")
    assert time.monotonic() - started < 5


def test_orjson_out_of_memory_is_the_out_of_memory_message(monkeypatch):
    import orjson

    def no_memory(payload):
        raise orjson.JSONDecodeError("Not enough memory to allocate", "", 0)

    monkeypatch.setattr(orjson, "loads", no_memory)
    result_error(invoke("relu", "[[1, 2]]"), 1, "out of memory")


@pytest.mark.parametrize("stages, shape", [
    (["ReLU"], (1, 1, 512, 512)), (["Sigmoid", "GELU"], (1, 2, 256, 256)), (["Softmax(dim=1)"], (1, 4, 128, 128)),
    (["MaxPool2d(2)"], (1, 1, 512, 512)), (["MaxPool2d(3, stride=1, padding=1)"], (1, 1, 512, 512)),
    (["AvgPool2d(3, stride=1, padding=1)"], (1, 1, 512, 512)), (["AdaptiveAvgPool2d(500)"], (1, 1, 512, 512)),
    (["AdaptiveMaxPool2d(300)"], (1, 1, 512, 512)), (["Conv2d(3, 16, 3, padding=1)"], (1, 3, 256, 256)),
    (["ConvTranspose2d(4, 4, 4, stride=2)"], (1, 4, 128, 128)), (["Linear(512, 512)"], (512, 512)),
    (["MaxPool2d(2)", "ReLU", "MaxUnpool2d(2)"], (1, 1, 512, 512)), (["BatchNorm2d(8)", "Flatten"], (2, 8, 64, 64)),
    (["MaxPool1d(5, stride=1)", "AdaptiveAvgPool1d(700)"], (1, 1, 2**18)),
])  # fmt: skip
@pytest.mark.parametrize("keep", [None, ()])
def test_the_estimate_is_above_what_the_numpy_engine_really_allocates(stages, shape, keep):
    network = parse_stages(stages)
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    trace = trace_shapes(shape, network)
    run_pipeline(data, network, engine="numpy")  # first: the imports and caches a first run makes
    tracemalloc.start()
    try:
        result = run_pipeline(data, network, engine="numpy", needs=Needs(keep=keep))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = estimate_peak(trace, keep=keep).bytes - data.nbytes  # the input was allocated before
    assert peak <= estimate, (peak, estimate)
    if keep == ():
        assert result.input is None and all(r.output is None for r in result.results[:-1])
        assert result.results[-1].output is not None


def test_run_pipeline_keeps_every_tensor_by_default_and_drops_what_it_is_told_to():
    network = parse_stages(["MaxPool2d(2)", "ReLU", "MaxUnpool2d(2)", "ReLU"])
    data = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    everything = run_pipeline(data, network, engine="numpy")
    assert everything.input is data and all(r.output is not None for r in everything.results)
    some = run_pipeline(data, network, engine="numpy", needs=Needs(keep={2}))
    assert [r.output is not None for r in some.results] == [False, True, False, True]
    assert some.results[0].indices is None  # the unpool used them, and nobody shows them
    assert np.array_equal(some.output, everything.output)
    with pytest.raises(ValueError, match="did not keep"):
        some.as_dict(intermediates=True)
    assert some.as_dict() == everything.as_dict()


def test_sizes_and_the_default_budget():
    assert parse_size("1.5G") == 3 * 2**29 and parse_size("64 MiB") == 2**26 and parse_size("2048") == 2048
    assert 0 < parse_size("50%") and size_text(2**30) == "1.0 GiB"
    for bad in ("", "G", "-1M", "0", "150%", "1Q"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(MemoryBudgetError, match="limit of 1.0 KiB"):
        run_pipeline(np.zeros((64, 64), np.float32), parse_stages(["ReLU"]), max_memory=1024)


def test_memory_capped_runs_end_in_the_clear_out_of_memory_message(tmp_path, large_npy):
    (tmp_path / "out.npy").write_bytes(b"original")
    chain = ["relu"] * 30  # shown in tables, every 32 MiB intermediate is kept: about 1 GiB
    refused = cnnops_process("run", large_npy, *chain, cwd=tmp_path, preexec_fn=limited_memory(1024))
    one_error(refused.returncode, refused.stdout, refused.stderr, 1, "needs about", "--max-memory")
    told_otherwise = cnnops_process("run", large_npy, *chain, "--max-memory", "100G", cwd=tmp_path,
                                    preexec_fn=limited_memory(1024))  # fmt: skip
    assert told_otherwise.stdout == b""
    one_error(told_otherwise.returncode, b"", told_otherwise.stderr, 1, "out of memory")
    kept_small = cnnops_process("run", large_npy, *chain, "-q", "-o", "out.npy", cwd=tmp_path,
                                preexec_fn=limited_memory(1024))  # fmt: skip
    assert kept_small.returncode == 0, kept_small.stderr  # only the result is kept: 3 tensors at a time
    assert np.load(tmp_path / "out.npy").shape == (1, 1, 2048, 4096) and temp_leftovers(tmp_path) == []


MEASURE = """
import resource, subprocess, sys
child = subprocess.run([sys.executable, "-m", "cnnops", *sys.argv[1:]])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_kib(*args, cwd):
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_relu_to_npy_peaks_near_twice_the_tensor_and_to_json_near_the_text(tmp_path):
    tensor = np.random.default_rng(0).standard_normal((1, 1, 2048, 4096)).astype(np.float32)  # 32 MiB
    np.save(tmp_path / "x.npy", tensor)
    base = peak_kib("relu", "[[1]]", "-q", "-o", "tiny.npy", cwd=tmp_path)
    npy = (peak_kib("relu", "x.npy", "-q", "-o", "y.npy", cwd=tmp_path) - base) * 1024
    as_json = (peak_kib("relu", "x.npy", "-q", "-o", "y.json", cwd=tmp_path) - base) * 1024
    text = (tmp_path / "y.json").stat().st_size
    assert npy < 2.5 * tensor.nbytes, npy / tensor.nbytes  # the input and the output (and ReLU's mask)
    assert as_json < 1.5 * text, as_json / text


# ---------------------------------------------------------------------------------------------- 5. files left behind


@pytest.mark.parametrize("extra, fragment", [
    (("--animate", "a.gif", "--animate-stage", "2"), "no sliding window"),
    (("--save-maps", "maps", "--batch-item", "3"), "batch item 3 is out of range"),
    (("--animate", "a.gif", "--channel", "2"), "channel 2 is out of range"),
])  # fmt: skip
def test_picture_options_are_checked_before_the_output_is_written(cwd, extra, fragment):
    png(cwd / "plane17.png", 17)
    before = snapshot(cwd)
    result_error(invoke("run", "plane17.png", "maxpool:2", "relu", "-o", "out.json", *extra), 1, fragment)
    assert snapshot(cwd) == before


def test_a_crop_outside_the_plane_is_refused_before_the_output_is_written(cwd):
    png(cwd / "plane17.png", 17)
    before = snapshot(cwd)
    result_error(invoke("run", "plane17.png", "maxpool:2", "-o", "out.json", "--animate", "a.gif", "--crop", "20,0,4,4"),
                 2, "starts outside the 17×17 input plane")  # fmt: skip
    assert snapshot(cwd) == before


def test_animating_an_empty_plane_is_a_clear_error(cwd):
    png(cwd / "p.png", 8)
    result_error(invoke("run", "p.png", "AdaptiveAvgPool2d(0)", "--animate", "a.gif", "-q"), 1, "plane is empty")


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture(scope="module")
def large_npy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.npy"
    np.save(path, np.random.default_rng(0).standard_normal((1, 1, 2048, 4096)).astype(np.float32))
    return path


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_while_writing_a_large_output_leaves_the_target_and_no_temp_file(tmp_path, large_npy, signum, code):
    target = tmp_path / "out.json"
    target.write_text("original")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("CNNOPS_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "relu", str(large_npy), "-o", "out.json", "-q"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
    started = wait_for(lambda: any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()))
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert started, "the temporary file never appeared"
    assert proc.returncode == code, (proc.returncode, stderr)
    assert stdout == b"" and b"Traceback" not in stderr
    assert target.read_text() == "original" and temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_workers_write_a_batch_leaves_every_target_whole_and_no_temp_file(tmp_path, signum, code):
    """The pool's workers are stopped mid-write: each removes its temporary file, and every output there is
    is whole."""
    rng = np.random.default_rng(0)
    for n in range(12):
        np.save(tmp_path / f"in{n:02d}.npy", rng.standard_normal((1, 1, 256, 1024)).astype(np.float32))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("CNNOPS_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "run", *(f"in{n:02d}.npy" for n in range(12)), "relu",
                             "--output-dir", "out", "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True,  # Ctrl-C reaches the whole group, as at a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    out = tmp_path / "out"

    def writing() -> bool:  # a worker's temporary file (the parent itself runs and writes the first input)
        try:
            return any(p.name.endswith(".tmp") and not p.name.startswith(".in00.") and p.stat().st_size > 0
                       for p in out.iterdir())  # fmt: skip
        except OSError:  # no folder yet, or a file renamed meanwhile
            return False

    started = wait_for(writing)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert started, "no worker's temporary file appeared"
    assert proc.returncode == code, (proc.returncode, stderr)
    assert stdout == b"" and b"Traceback" not in stderr and b"Exception" not in stderr, stderr
    assert temp_leftovers(tmp_path) == []
    for path in out.iterdir():
        assert json.loads(path.read_text())["output"]["shape"] == [1, 1, 256, 1024]


def test_sigterm_while_saving_maps_leaves_no_partial_set(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((1, 1, 1024, 1024)).astype(np.float32))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "run", "x.npy", "relu", "relu", "relu", "relu",
                             "--save-maps", "maps", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    started = wait_for(lambda: any(p.name.endswith(".tmp") and any(p.iterdir()) for p in tmp_path.iterdir()
                                   if p.is_dir()))  # fmt: skip
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert started, "the staging folder never held a map"
    assert proc.returncode == 143, stderr
    assert not (tmp_path / "maps").exists() and temp_leftovers(tmp_path) == []


def test_save_maps_replaces_its_own_files_removes_stale_ones_and_keeps_others(cwd):
    png(cwd / "p.png", 8)
    assert invoke("run", "p.png", "maxpool:1", "relu", "relu", "--save-maps", "maps", "-q").exit_code == 0
    (cwd / "maps/notes.txt").write_text("mine")
    assert invoke("run", "p.png", "maxpool:1", "--save-maps", "maps", "-q").exit_code == 0
    assert sorted(os.listdir(cwd / "maps")) == ["00-input.png", "01-maxpool2d.png", "notes.txt"]


# ---------------------------------------------------------------------------------------------- a tiny, full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, where the test can mount one (root on Linux); skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_gives_one_line_and_leaves_the_old_file_and_no_temp_file(tiny_disk, cwd):
    np.save(cwd / "x.npy", np.random.default_rng(0).standard_normal((400, 400)).astype(np.float32))
    (tiny_disk / "out.json").write_text("original")
    result_error(invoke("relu", "x.npy", "-o", tiny_disk / "out.json", "-q"), 1, "No space left on device")
    assert (tiny_disk / "out.json").read_text() == "original" and temp_leftovers(tiny_disk) == []
    result_error(invoke("run", "x.npy", "relu", "relu", "--save-maps", tiny_disk / "maps", "-q"), 1,
                 "No space left on device")  # fmt: skip
    assert sorted(os.listdir(tiny_disk)) == ["out.json"]


def test_a_batch_on_a_full_disk_keeps_what_fit_and_reports_the_rest(tiny_disk, cwd):
    (cwd / "small.json").write_text("[[1, 2]]")
    np.save(cwd / "big.npy", np.zeros((300, 300), np.float32))
    result = invoke("relu", "small.json", "big.npy", "--output-dir", tiny_disk / "od", "--format", "npy", "-q")
    assert result.exit_code == 1 and "No space left on device" in result.stderr
    assert "1 of 2 inputs failed" in result.stderr
    assert sorted(os.listdir(tiny_disk / "od")) == ["small.npy"] and temp_leftovers(tiny_disk) == []


def test_a_full_or_closed_stdout_is_one_line(tmp_path):
    for args in (("relu", "[[1, 2]]"), ("relu", "[[1, 2]]", "--json"), ("shape", "1x1x5x5", "conv:1,1,3"),
                 ("--version",), ("shape", "--help")):  # the last two written by click itself
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "cnnops", *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=60)  # fmt: skip
        one_error(proc.returncode, "", proc.stderr, 1, "No space left on device")
    closed = cnnops_process("relu", "[[1, 2]]", preexec_fn=lambda: os.close(1), text=True)
    one_error(closed.returncode, "", closed.stderr, 1, "stdout is closed")
    quiet = cnnops_process("relu", "[[1, 2]]", "-q", "-o", tmp_path / "o.json", preexec_fn=lambda: os.close(1))
    assert quiet.returncode == 0 and (tmp_path / "o.json").exists()


# ---------------------------------------------------------------------------------------------- 6-7. terminals


def on_a_terminal(*args, env=None, stdin_tty=True, timeout=30.0):
    """Run cnnops with stdout and stderr (and stdin) on a pseudo-terminal: (exit code, output)."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {}))
    full_env.pop("CNNOPS_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", *args], stdin=slave if stdin_tty else subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=full_env, close_fds=True)  # fmt: skip
    os.close(slave)
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    os.close(master)
    return proc.returncode, output.decode("utf-8", "replace")


@pytest.mark.parametrize("columns", ["0", "1", "100000000", "abc"])
def test_columns_outside_a_sane_range_is_clamped_on_a_terminal(columns):
    code, output = on_a_terminal("relu", "[[1, 2], [3, 4]]", "[[5]]", env={"COLUMNS": columns})
    assert code == 0 and "Traceback" not in output and "Error" not in output
    assert "1×1" in output and len(output) < 100_000
    rules = re.findall("─+", output)  # each input's header rule spans the width
    assert rules and max(map(len, rules)) <= 1000


def test_a_stage_file_on_a_terminal_or_a_fifo_is_refused_at_once(cwd):
    code, output = on_a_terminal("run", "[[1]]", "-f", "-")
    assert code == 1 and "stdin is a terminal" in output
    os.mkfifo(cwd / "net.txt")
    result_error(invoke("run", "[[1]]", "-f", "net.txt"), 1, "stage file 'net.txt' is not a regular file")


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}])
def test_an_output_that_cannot_encode_the_drawing_falls_back_to_ascii(env):
    proc = cnnops_process("conv", "[[1, 2, 3], [4, 5, 6], [7, 8, 9]]", "-w", "edge", "--bias", "0", "-p", "1",
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("ascii")  # nothing but ASCII
    assert "floor((3 + 2*1 - 1*(3-1) - 1) / 1) + 1" in text and "-> 1x3x3" in text and "3x3" in text
    shape = cnnops_process("shape", "1x3x8x8", "Conv2d(3, 4, 3)", "MaxPool2d(2)", env=env)
    text = shape.stdout.decode("ascii")
    assert shape.returncode == 0 and "1x4x6x6" in text and "?" not in text, text
    assert "floor((8 + 2*0 - 1*(3-1) - 1) / 1) + 1" in text
    failed = cnnops_process("pool", "-k", "0", "[[1]]", env=env)
    one_error(failed.returncode, failed.stdout, failed.stderr, 1, "kernel_size must be greater than zero")
    failed.stderr.decode("ascii")


# ---------------------------------------------------------------------------------------------- 8. messages


def test_indices_beyond_64_bits_are_refused_without_warnings(cwd):
    np.save(cwd / "idx.npy", np.array([[[[2.0**63]]]]))
    result_error(invoke("unpool", "-k", "1", "[[[[1.0]]]]", "--indices", "idx.npy"), 1, "9223372036854775808")


def test_a_huge_npy_header_is_one_line(cwd):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
    header = header.ljust(20_000) + "\n"
    (cwd / "h.npy").write_bytes(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header.encode()
                                + bytes(16))  # fmt: skip
    result_error(invoke("relu", "h.npy"), 1, "header of over 10,000 bytes")


def test_echoed_input_is_cut_and_control_characters_are_escaped(cwd):
    (cwd / "key.json").write_text(json.dumps({"data": [1], "k" * 100_000: 1}))
    line = result_error(invoke("relu", "key.json"), 1, "unknown key")
    assert len(line) < 400
    name = "a\x1b[31mred\x07.json"
    (cwd / name).write_text("[[1]]")
    proc = cnnops_process("relu", name, "nope\x1b[2J.json", "-q", cwd=cwd, text=True)
    assert proc.returncode == 1 and "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "nope\\x1b[2J.json" in proc.stderr
    long_arg = "[" + "1," * 100_000
    assert len(result_error(invoke("relu", long_arg), 1)) < 2100


def test_a_bom_in_a_stage_file_is_accepted_from_a_file_and_from_stdin(cwd):
    (cwd / "net.txt").write_bytes("\ufeffrelu\nmaxpool:1\n".encode())
    assert invoke("run", "[[1, 2]]", "-f", "net.txt", "--json").exit_code == 0
    with open(cwd / "net.txt", "rb") as stages:
        proc = cnnops_process("run", "[[1, 2]]", "-f", "-", "--json", cwd=cwd, stdin=stages)
    assert proc.returncode == 0, proc.stderr


def test_names_that_are_only_a_suffix_and_names_near_name_max(cwd):
    assert invoke("relu", "[[1]]", "-o", ".json", "-q").exit_code == 0 and (cwd / ".json").exists()
    assert invoke("run", "[[[1]]]", "maxpool:1", "--animate", ".gif", "-q").exit_code == 0
    assert (cwd / ".gif").exists()
    result_error(invoke("run", "[[[1]]]", "maxpool:1", "--animate", "a.png"), 2, "such as 'animation.gif'")
    longest = "a" * 250 + ".json"
    assert invoke("relu", "[[1]]", "-o", longest, "-q").exit_code == 0 and (cwd / longest).exists()
    result_error(invoke("relu", "[[1]]", "-o", "a" * 252 + ".json", "-q"), 1, "longer than 255 bytes")
    assert temp_leftovers(cwd) == []


@pytest.mark.parametrize("args", [
    ("pool", "-k", "99999999999999999999999", "[[1]]"), ("pool", "-k", "a", "[[1]]"),
    ("pool", "-k", "2", "-s", "1,99999999999999999999", "[[1]]"), ("conv", "[[1]]", "--groups", "99999999999999"),
    ("linear", "[1]", "--out-features", "999999999999999999999"), ("flatten", "[[1]]", "--start-dim", "-9" * 9),
    ("conv", "[[1]]", "--groups", "x"), ("relu", "[[1]]", "--max-elements", "0"),
])  # fmt: skip
def test_every_bad_numeric_option_value_is_a_usage_error(args):
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output and "internal error" not in result.stderr


def test_warnings_never_reach_the_user(capsys):
    @user_errors
    def noisy():
        warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=1)
        np.array([1e300]).astype(np.float32)

    noisy()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- fuzzers

NAMES = hs.sampled_from(["x", "y", "a/x", "b/x", "a/y", "x-2", "input-1", "a/b/x"])
SUFFIXES = hs.sampled_from([".json", ".npy", ".png"])


@FUZZ
@given(files=hs.lists(hs.tuples(NAMES, SUFFIXES), min_size=1, max_size=4),
       order=hs.lists(hs.integers(0, 3), min_size=1, max_size=5), inline=hs.booleans(),
       target=hs.sampled_from(["od", "a", ".", "maps"]), how=hs.sampled_from(["--output-dir", "--save-maps", "--animate"]),
       fmt=hs.sampled_from(["json", "npy"]))  # fmt: skip
def test_fuzz_batches_never_lose_a_result_or_touch_an_input(tmp_path_factory, files, order, inline, target, how, fmt):
    root = tmp_path_factory.mktemp("batch")
    paths = []
    for n, (name, suffix) in enumerate(files):
        path = root / (name + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            path.write_text(json.dumps([[n, -n], [1, 2]]))
        elif suffix == ".npy":
            np.save(path, np.full((2, 2), n, np.float32))
        else:
            png(path, 2)
        paths.append(str(path.relative_to(root)))
    args = [paths[i % len(paths)] for i in order] + (["[[7, 8], [9, 10]]"] if inline else [])
    option = [how, target if how != "--animate" else os.path.join(target, "anim.gif")]
    if how == "--output-dir":
        option += ["--format", fmt]
    before = snapshot(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = runner.invoke(app, ["run", *args, "maxpool:1", *option, "--jsonl"], env={"CNNOPS_DEBUG": None})
    finally:
        os.chdir(cwd)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.stderr, result.stderr
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before  # no file that was there has changed
    assert temp_leftovers(root) == []
    if result.exit_code == 2:
        assert after == before  # refused while planning: nothing written
    if result.exit_code == 0:
        assert len(result.stdout.splitlines()) == len(args)
        new = [k for k in after if k not in before and after[k] is not None]
        expected = {"--output-dir": len(args), "--animate": len(args), "--save-maps": 2 * len(args)}[how]
        assert len(new) == expected, (new, args)


STAGES = hs.sampled_from(["MaxPool2d(2)", "MaxPool2d(3, stride=1, padding=1)", "Conv2d(1, 2, 3, padding=1)",
                          "ReLU", "AvgPool2d(2)", "AdaptiveAvgPool2d(3)", "AdaptiveMaxPool2d(0)", "MaxUnpool2d(2)",
                          "ConvTranspose2d(1, 1, 2, stride=2)", "Flatten", "Linear(4, 2)"])  # fmt: skip


@FUZZ
@given(side=hs.integers(1, 12), stages=hs.lists(STAGES, min_size=1, max_size=3),
       picture=hs.sampled_from(["--animate", "--save-maps", "--preview"]), stage=hs.none() | hs.integers(-1, 4),
       channel=hs.integers(0, 2), item=hs.integers(0, 1), output=hs.booleans())  # fmt: skip
def test_fuzz_pictures_either_draw_or_refuse_before_writing_anything(tmp_path_factory, side, stages, picture, stage,
                                                                      channel, item, output):  # fmt: skip
    root = tmp_path_factory.mktemp("pictures")
    png(root / "in.png", side)
    args = ["run", str(root / "in.png"), *stages, "--channel", str(channel), "--batch-item", str(item)]
    if picture == "--animate":
        args += ["--animate", str(root / "a.gif")] + (["--animate-stage", str(stage)] if stage is not None else [])
    elif picture == "--save-maps":
        args += ["--save-maps", str(root / "maps")]
    else:
        args += ["--preview"]
    if output:
        args += ["-o", str(root / "out.npy")]
    before = snapshot(root)
    result = runner.invoke(app, args + (["-q"] if picture != "--preview" else []), env={"CNNOPS_DEBUG": None,
                                                                                       "COLUMNS": "120"})  # fmt: skip
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.stderr, result.stderr
    assert temp_leftovers(root) == []
    if result.exit_code != 0:
        assert snapshot(root) == before, result.stderr
        assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    elif output:
        assert (root / "out.npy").exists()
    if result.exit_code == 0 and picture == "--save-maps":
        assert len(list((root / "maps").iterdir())) == len(stages) + 1  # the input and every stage


@pytest.mark.parametrize(("code", "status", "stderr"), [("None", 0, ""), ("3", 3, ""), ("258", 2, ""), ("-1", 255, ""),
                                                        ("'stopped'", 1, "stopped\n")])  # fmt: skip
def test_the_fast_exit_keeps_what_teardown_would_do(code, status, stderr):
    """cnnops ends its process without the interpreter's teardown: the status is sys.exit's, exit handlers
    still run, and what is still buffered on stdout and stderr is written."""
    program = (
        "import atexit, sys; from cnnops.__main__ import leave\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "print('buffered', end=''); sys.stderr.write('')\n"
        f"leave({code})\n"
    )
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (status, "bufferedhandler ran\n", stderr)


def test_a_model_file_s_own_open_files_are_flushed_at_exit(tmp_path):
    """``--model`` runs the user's module: cnnops then leaves through Python's own exit, whose teardown
    flushes the files that code left open (the fast exit would drop what they still buffer)."""
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n"
        "log = open('build.log', 'w'); log.write('building\\n')\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.c = nn.Conv2d(3, 4, 3)\n"
        "    def forward(self, x):\n        return self.c(x)\n"
    )
    proc = subprocess.run([sys.executable, "-m", "cnnops", "shape", "1x3x8x8", "--model", "net.py:Net()", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "build.log").read_text() == "building\n"


def test_an_input_whose_pictures_fail_leaves_no_new_output_file(cwd, monkeypatch):
    import cnnops.cli.batch as batch
    from cnnops.errors import InputError

    def fail(*args, **kwargs):
        raise InputError("the maps cannot be written: No space left on device")

    monkeypatch.setattr(batch, "write_pictures", fail)
    (cwd / "x.json").write_text("[[1, -1]]")
    result_error(invoke("relu", "x.json", "-o", "new.json", "--save-maps", "m", "-q"), 1, "No space left")
    assert not (cwd / "new.json").exists() and not list(cwd.glob(".new.json*"))
    (cwd / "old.json").write_text("an earlier result")
    result_error(invoke("relu", "x.json", "-o", "old.json", "--save-maps", "m", "-q"), 1, "No space left")
    assert json.loads((cwd / "old.json").read_text())["output"]["data"] == [[1.0, 0.0]]  # replaced, as said
