"""Interruptions and abrupt ends, run as a user meets them (the real program in a subprocess):

- a stop signal (Ctrl-C, SIGTERM, SIGHUP) taken by another thread of the process while a temporary file is
  made still removes that file (the closing thread of replaced files, OpenBLAS's threads in a worker);
- an interrupted ``--json`` / ``--jsonl`` run leaves whole lines on stdout, never half a document;
- forked workers whose parent dies abruptly (SIGKILL, the OOM killer) stop: no hang on a full pipe, no
  outputs written for a command that is gone.

The moments are made exact with a small hook (a wrapped function of cnnops, in the ``python -c`` script
that runs cnnops) or by letting a pipe fill up, never by timing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnops.io import deferral, release
from cnnops.io.deferral import HELD_SIGNALS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals, /proc and fork: Linux")
needs_workers = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a batch forks workers only with 2+ cores")

#: runs cnnops as ``python -m cnnops`` does, after the hook given in HOOK (Python code) is set up
SCRIPT = """
import os, signal, sys, threading
import cnnops.io.write as write
PARENT = os.getpid()
{hook}
from cnnops.__main__ import main
main()
"""

#: right after a temporary file is made, a stop signal reaches another thread of the process (which
#: does not hold it back): what the kernel does with a process-directed signal when the writing thread
#: holds it back. HOOK_WORKERS: only in the workers.
ANOTHER_THREAD = """
real_create_temp = write._create_temp
signum = int(os.environ["HOOK_SIGNAL"])

def create_temp(*args):
    made = real_create_temp(*args)
    if os.environ.get("HOOK_WORKERS") != "1" or os.getpid() != PARENT:
        def take_it():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
            signal.pthread_kill(threading.get_ident(), signum)
        thread = threading.Thread(target=take_it)
        thread.start()
        thread.join()
        sum(range(1000))  # the main thread runs Python's handler here, at the latest
    return made

write._create_temp = create_temp
"""

#: the first worker to finish writing an output kills the parent (SIGKILL), as the OOM killer might
KILL_PARENT = """
real_write_output = write.write_output

def write_output(*args, **kwargs):
    real_write_output(*args, **kwargs)
    if os.getpid() != PARENT:
        try:
            os.kill(PARENT, signal.SIGKILL)
        except ProcessLookupError:
            pass

write.write_output = write_output
"""


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, COLUMNS="200", OPENBLAS_NUM_THREADS="1", **extra)
    env.pop("CNNOPS_DEBUG", None)
    return env


def hooked(hook: str, *args: object, cwd: Path, env: dict[str, str] | None = None, **kwargs):
    """cnnops with ``hook`` in place, as a user runs it (``-q`` and the rest in ``args``)."""
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(hook=hook), *map(str, args)], cwd=cwd,
                            env=env or environment(), **kwargs)  # fmt: skip


def temp_leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp")]


def inputs(folder: Path, count: int, shape: tuple[int, ...]) -> list[str]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(3)
    for n in range(count):
        np.save(folder / f"z{n:03d}.npy", rng.standard_normal(shape).astype(np.float32))
    return [f"{folder.name}/z{n:03d}.npy" for n in range(count)]


def live_members(group: int) -> list[int]:
    """The processes of process group ``group`` that have not ended (zombies count as ended)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # state, ppid, pgrp, …
        if int(fields[2]) == group and fields[0] not in "ZXx":
            alive.append(int(entry))
    return alive


def ended(group: int, seconds: float = 60.0) -> bool:
    """Every process of ``group`` ended within ``seconds`` (a liveness bound, not a timing measurement)."""
    deadline = time.monotonic() + seconds
    while live_members(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ------------------------------------------------------------------- 1. the stop signal another thread takes


class Stop(Exception):
    pass


@pytest.fixture
def stop_handler():
    """SIGUSR1 handled as cnnops handles a stop signal: noted during a step, else raised (Stop). Yields the
    signals the handler noted."""
    noted: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if deferral.note(signum):
            noted.append(signum)
            return
        raise Stop

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_noted_during_a_step_is_raised_when_the_outermost_step_ends(stop_handler):
    done = []
    with pytest.raises(Stop):
        with deferral.signals_deferred():
            with deferral.signals_deferred():
                os.kill(os.getpid(), signal.SIGUSR1)  # not held back by the mask: the handler runs now
                done.append("inner")
            done.append("outer")
        done.append("after")
    assert stop_handler == [signal.SIGUSR1] and done == ["inner", "outer"]


def test_a_signal_noted_during_another_thread_s_step_reaches_the_main_thread_when_it_ends(stop_handler):
    noted = threading.Event()

    def step() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # a thread that never takes it itself
        with deferral.signals_deferred():
            os.kill(os.getpid(), signal.SIGUSR1)  # the main thread's handler notes it
            assert noted.wait(60)

    thread = threading.Thread(target=step)
    with pytest.raises(Stop):
        thread.start()
        while not stop_handler:
            time.sleep(0.001)
        noted.set()
        thread.join()
        sum(range(1000))  # the main thread runs the handler here, at the latest
    thread.join()
    assert stop_handler == [signal.SIGUSR1]



@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_another_thread_takes_while_a_temp_file_is_made_leaves_no_temp_file(tmp_path, signum, code):
    np.save(tmp_path / "x.npy", np.ones((1, 4, 4), np.float32))
    target = tmp_path / "out.npy"
    target.write_bytes(b"original")
    proc = hooked(ANOTHER_THREAD, "relu", "x.npy", "-o", "out.npy", "-q", cwd=tmp_path,
                  env=environment(HOOK_SIGNAL=str(int(signum))), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, (proc.returncode, stderr)
    assert stdout == b"" and b"Traceback" not in stderr, stderr
    assert target.read_bytes() == b"original"
    assert temp_leftovers(tmp_path) == []


@needs_workers
def test_a_worker_stopped_through_another_thread_while_making_a_temp_file_leaves_no_temp_file(tmp_path):
    names = inputs(tmp_path / "in", 12, (1, 8, 8))
    proc = hooked(ANOTHER_THREAD, "relu", *names, "--output-dir", "out", "--format", "npy", "-q", cwd=tmp_path,
                  env=environment(HOOK_SIGNAL=str(int(signal.SIGTERM)), HOOK_WORKERS="1"),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    stdout, stderr = proc.communicate(timeout=120)
    # the workers ended without reporting their inputs: those inputs failed, said on stderr
    assert proc.returncode == 1, (proc.returncode, stderr)
    assert b"Traceback" not in stderr and b"worker process ended" in stderr, stderr
    assert temp_leftovers(tmp_path) == []
    written = list((tmp_path / "out").rglob("*.npy"))
    assert written, "the parent's own input was not written"
    for path in written:
        assert np.load(path).shape == (1, 8, 8)


#: a worker that SIGHUP and SIGTERM reach together (SIGHUP to the process group, the parent's SIGTERM right
#: after, while NumPy runs): Python calls the handler for the first, then finds the second waiting
BOTH_STOP_SIGNALS = """
import os, signal
from cnnops.run import runner
runner._worker_start()
both = {signal.SIGHUP, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, both)
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGHUP)
try:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
    sum(range(1000))
except SystemExit as exc:
    print(exc.code)
    sum(range(1000))  # the eval loop looks at the waiting signal here
"""


def test_a_worker_that_two_stop_signals_reach_at_once_stops_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-c", BOTH_STOP_SIGNALS], cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "129", (done.returncode, done.stdout, done.stderr)
    assert done.stderr == "", done.stderr


def test_the_closing_thread_holds_back_the_stop_signals(tmp_path):
    """The thread that closes replaced files never takes Ctrl-C, SIGTERM or SIGHUP: a process-directed
    signal goes to the thread that can act on it."""
    path = tmp_path / "old"
    path.write_bytes(b"x")
    fd = release.hold(str(path))
    if fd is None:
        pytest.skip("no O_PATH here: nothing is held, no closing thread")
    release.let_go(fd)
    try:
        closer = release._closer
        assert closer is not None
        status = Path(f"/proc/self/task/{closer.thread.native_id}/status").read_text()
    finally:
        release.let_go_held()
    blocked = int(re.search(r"SigBlk:\s*([0-9a-f]+)", status).group(1), 16)
    assert all(blocked >> (signum - 1) & 1 for signum in HELD_SIGNALS), hex(blocked)


# ------------------------------------------------------------------------- 2. whole lines on stdout


def wait_until_full(proc: subprocess.Popen) -> None:
    """Until the program is blocked writing to stdout's pipe, which nobody reads: it is in the middle of
    writing a document larger than the pipe holds."""
    deadline = time.monotonic() + 120
    while True:
        try:
            where = Path(f"/proc/{proc.pid}/wchan").read_text()
        except OSError:
            where = ""
        if "pipe_write" in where:
            return
        assert proc.poll() is None and time.monotonic() < deadline, f"never blocked on the pipe ({where!r})"
        time.sleep(0.005)


@pytest.mark.parametrize("signum, code, mode, count", [(signal.SIGINT, 130, "--jsonl", 3),
                                                       (signal.SIGTERM, 143, "--json", 1)])  # fmt: skip
def test_an_interrupted_json_run_leaves_only_whole_lines_on_stdout(tmp_path, signum, code, mode, count):
    names = inputs(tmp_path / "in", count, (1, 64, 64))
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "run", *names, "Conv2d(1,16,5)", "ReLU", mode,
                             "--intermediates"], cwd=tmp_path, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_until_full(proc)  # a document of 1.2 MB is half written, the rest waits for the pipe
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, (proc.returncode, stderr[-2000:])
    assert b"Traceback" not in stderr, stderr[-2000:]
    assert stdout.endswith(b"\n"), stdout[-200:]
    lines = stdout.splitlines()
    assert 1 <= len(lines) < count + 1
    for line in lines:
        assert json.loads(line)["output"]["shape"] == [16, 60, 60]


# --------------------------------------------------------------------- 3. workers whose parent is gone


@needs_workers
def test_workers_whose_parent_was_killed_stop_writing_outputs(tmp_path):
    count = 40
    names = inputs(tmp_path / "in", count, (1, 32, 32))
    proc = hooked(KILL_PARENT, "run", *names, "Conv2d(1,8,3)", "ReLU", "--output-dir", "out", "--format", "npy", "-q",
                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        assert ended(proc.pid), "the workers went on after their parent was killed"
    finally:
        try:  # whatever is left (nothing, once fixed)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    written = sorted((tmp_path / "out").rglob("*.npy"))
    assert 0 < len(written) < count, "the workers wrote the outputs of a command that was gone"
    for path in written:  # what was written is whole, and nothing half-made is left
        assert np.load(path).shape == (8, 30, 30)
    assert temp_leftovers(tmp_path) == []


@needs_workers
def test_workers_whose_parent_was_killed_do_not_hang_on_a_full_pipe(tmp_path):
    """The parent waits on a stdout nobody reads, the workers' results fill their pipes: killed, it leaves
    no worker blocked for ever."""
    names = inputs(tmp_path / "in", 40, (1, 64, 64))
    proc = subprocess.Popen([sys.executable, "-m", "cnnops", "run", *names, "Conv2d(1,16,5)", "ReLU",
                             "Conv2d(16,16,3)", "MaxPool2d(2)", "--jsonl"], cwd=tmp_path, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        for _ in range(2):  # the second line comes from a worker: they are running
            assert proc.stdout.readline().endswith(b"\n")
        wait_until_full(proc)  # nobody reads on: the parent waits, the workers' results pile up
        proc.kill()
        proc.wait(timeout=120)
        assert ended(proc.pid), "workers left blocked after their parent was killed"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------------------- signals during imports

DURING_IMPORT = """
import os, signal, sys
from cnnops.cli.signals import Interrupted, handle_signals
handle_signals()
sys.path.insert(0, sys.argv[1])
try:
    import stopped_midway  # its body sends {name} to this process, then goes on
    print("finished the import", file=sys.stderr)
    import time
    time.sleep(5)
    print("not stopped")
except KeyboardInterrupt as exc:
    print("stopped", type(exc).__name__, getattr(exc, "exit_code", 130), sys.modules["stopped_midway"].DONE)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_during_an_import_stops_cnnops_once_the_import_is_over(tmp_path, name):
    """CPython can swallow an exception raised inside the import machinery ("Exception ignored in …
    _get_module_lock") or turn it into another (``__set_name__``): the command went on, or failed with a
    wrong message. The signal is acted on once the import is over, never lost."""
    (tmp_path / "stopped_midway.py").write_text(
        "import os, signal\n"
        f"os.kill(os.getpid(), signal.{name})\n"
        "total = sum(range(300_000))  # the signal arrives while the module's body runs\n"
        "class Made:\n    value = total\n"
        "DONE = True\n"
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", DURING_IMPORT.format(name=name), str(tmp_path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    code = 128 + getattr(signal, name)
    kind = "KeyboardInterrupt" if name == "SIGINT" else "Interrupted"
    assert proc.stdout.split() == ["stopped", kind, str(code), "True"], (proc.stdout, proc.stderr)
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr


def test_the_import_check_sees_module_bodies_and_not_plain_calls(tmp_path, monkeypatch):
    import importlib

    from cnnops.cli.signals import _in_import

    assert not _in_import(sys._getframe())
    (tmp_path / "probe_import_check.py").write_text(
        "import sys\nfrom cnnops.cli.signals import _in_import\nINSIDE = _in_import(sys._getframe())\n"
        "def later():\n    return _in_import(sys._getframe())\n"
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("probe_import_check")
    assert probe.INSIDE is True and probe.later() is False
    monkeypatch.delitem(sys.modules, "probe_import_check")
