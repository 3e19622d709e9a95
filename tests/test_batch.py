"""Shell scripting: many inputs, failures summarised, --jsonl, --output-dir, CSV, completion, colour."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnops.cli import app

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
runner = CliRunner()


def invoke(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env={"COLUMNS": "200", **(env or {})})


def good_and_bad(tmp_path):
    (tmp_path / "a.json").write_text("[[1, 2], [3, 4]]")
    (tmp_path / "b.json").write_text("[[1, 2], [3]]")
    (tmp_path / "c.json").write_text("[[5, 6], [7, 8]]")
    return [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]


def test_batch_with_one_bad_file_processes_the_others_and_exits_1(tmp_path):
    result = invoke("pool", "-k", "2", *good_and_bad(tmp_path), "--jsonl")
    assert result.exit_code == 1
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["output"]["data"] for d in docs] == [[[[4.0]]], [[[8.0]]]]
    errors = result.stderr.strip().splitlines()
    assert "b.json" in errors[0] and "data[1]" in errors[0]
    assert errors[-1].startswith("Error: 1 of 3 inputs failed:") and "b.json" in errors[-1]


def test_jsonl_is_one_document_per_line_in_input_order(tmp_path):
    paths = [tmp_path / f"{n}.json" for n in range(4)]
    for n, path in enumerate(paths):
        path.write_text(json.dumps([[n, -n], [2 * n, 0]]))
    result = invoke("run", *paths, "relu", "--jsonl")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert [json.loads(line)["input"]["source"] for line in lines] == [str(p) for p in paths]


def test_output_dir_writes_one_file_per_input_named_after_it(tmp_path):
    inputs = good_and_bad(tmp_path)
    out = tmp_path / "out"
    result = invoke("run", inputs[0], inputs[2], "maxpool:2", "--output-dir", out, "--format", "npy", "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "c.npy"]
    assert np.load(out / "c.npy").tolist() == [[[8.0]]]
    result = invoke("run", inputs[0], "[[9]]", "[[8]]", "relu", "--output-dir", out / "j", "-q")
    assert sorted(p.name for p in (out / "j").iterdir()) == ["a.json", "input-2.json", "input-3.json"]


def test_run_splits_inputs_from_stages_at_the_first_stage(tmp_path):
    a, _, c = good_and_bad(tmp_path)
    result = invoke("run", a, c, "maxpool:2", "relu", "--jsonl")
    assert [json.loads(line)["output"]["data"] for line in result.stdout.splitlines()] == [[[[4.0]]], [[[8.0]]]]


def test_batch_tables_have_a_header_per_input(tmp_path):
    a, _, c = good_and_bad(tmp_path)
    result = invoke("relu", a, c)
    assert result.exit_code == 0
    assert result.stdout.count("input " + str(a)) >= 1 and result.stdout.count("input " + str(c)) >= 1


def test_shape_csv_and_jsonl():
    result = invoke("shape", "1x1x28x28", "-f", EX / "small_net.txt", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["output_shape"] for r in rows][-1] == "1x10"
    assert rows[0]["params"] == "80" and rows[0]["rf_size"] == "3"
    lines = invoke("shape", "1x1x28x28", "-f", EX / "small_net.txt", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(1, 9))
    assert invoke("shape", "1x1x8x8", "relu", "--csv", "--json").exit_code == 2


def test_completion_script_and_completions():
    exe = [sys.executable, "-m", "cnnops"]
    script = subprocess.run([*exe, "--show-completion", "bash"], capture_output=True, text=True)
    assert script.returncode == 0 and "_CNNOPS_COMPLETE" in script.stdout.upper()

    def complete(words, cword):
        env = dict(os.environ, _CNNOPS_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
        return subprocess.run(exe, capture_output=True, text=True, env=env, cwd=ROOT).stdout.split()

    assert {"maxpool1d", "maxpool2d", "maxpool"} <= set(complete("cnnops shape 1x3x8x8 maxp", 3))
    assert {"sobel-x", "sobel-y"} <= set(complete("cnnops conv x.json --weight sob", 4))
    assert "adaptive-pool" in complete("cnnops ad", 1)
    assert "--ceil-mode" in complete("cnnops pool --ce", 2)
    assert "examples/grid4x4.json" in complete("cnnops run examples/gr", 2)


def test_no_escape_codes_off_a_terminal_or_with_no_color():
    for env in ({}, {"NO_COLOR": "1"}):
        result = subprocess.run([sys.executable, "-m", "cnnops", "run", str(EX / "grid4x4.json"), "maxpool:2"],
                                capture_output=True, text=True, env=dict(os.environ, **env))  # fmt: skip
        assert result.returncode == 0 and "\x1b[" not in result.stdout
        assert "┃" not in result.stdout and "━" not in result.stdout, "no box drawing off a terminal"


def test_force_color_gives_colour_and_columns_sets_the_width():
    result = subprocess.run([sys.executable, "-m", "cnnops", "relu", "[[-1, 2]]"], capture_output=True, text=True,
                            env=dict(os.environ, FORCE_COLOR="1", COLUMNS="60"))  # fmt: skip
    assert "\x1b[" in result.stdout
    visible = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert max(len(line) for line in visible.splitlines()) <= 60


def test_closed_stdout_pipe_exits_quietly():
    proc = subprocess.run(f"{sys.executable} -m cnnops shape 1x3x224x224 -f {EX / 'alexnet.txt'} | head -1",
                          shell=True, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


def test_solve_lists_same_size_first_and_json_has_exactly_four_keys():
    result = invoke("solve", "--input", "28", "--output", "28", "--kernel", "3")
    assert result.exit_code == 0 and "Conv2d(1, 1, kernel_size=3, stride=1, padding=1)" in result.stdout
    docs = json.loads(invoke("solve", "--input", "224", "--output", "112", "--json").stdout)
    assert docs[0] == {"kernel_size": 2, "stride": 2, "padding": 0, "dilation": 1}
    assert all(set(d) == {"kernel_size", "stride", "padding", "dilation"} for d in docs)


def test_solve_answers_agree_with_the_shape_model():
    from cnnops.model.trace import trace_shapes
    from cnnops.spec import parse_stage

    for layer, lin, lout in (("conv", 32, 16), ("pool", 55, 27), ("conv_transpose", 7, 14), ("unpool", 3, 6)):
        docs = json.loads(invoke("solve", "--input", lin, "--output", lout, "--layer", layer, "--json", "--limit", "0").stdout)
        assert docs, layer
        for d in docs:
            name = {"conv": "Conv1d(1, 1, ", "pool": "MaxPool1d(", "conv_transpose": "ConvTranspose1d(1, 1, ",
                    "unpool": "MaxUnpool1d("}[layer]  # fmt: skip
            args = ", ".join(f"{k}={v}" for k, v in d.items() if k != "dilation" or layer != "unpool")
            trace = trace_shapes((1, 1, lin), [parse_stage(f"{name}{args})")])
            assert trace.error is None and trace.output_shape[-1] == lout, (layer, d)


def test_solve_unpool_range_and_impossible_requests():
    result = invoke("solve", "--input", "2", "--output", "4", "--layer", "unpool", "--kernel", "2")
    assert "output_size may be any of 3…5" in result.stdout
    result = invoke("solve", "--input", "5", "--output", "99", "--layer", "pool")
    assert result.exit_code == 0 and "No pool settings" in result.stdout
    assert invoke("solve", "--input", "0", "--output", "3").exit_code == 2


def test_solve_command_choices_are_the_solver_layer_kinds():
    from cnnops.cli import solve as solvecli
    from cnnops.model import solve

    assert [k.value for k in solvecli.LayerKind] == [k.value for k in solve.LayerKind]


def test_a_large_batch_runs_on_several_cores_with_output_and_failures_in_input_order(tmp_path):
    """Twelve small files run in worker processes: the JSON lines, the files and the errors come out in
    the order the inputs were given, and they are those of a one-at-a-time run."""
    from cnnops.cli.batch import DataOptions, batch_workers

    paths = []
    for n in range(12):
        path = tmp_path / f"in{n:02d}.json"
        # 4: ragged; 9: not JSON at all (its error is rebuilt from a pickle in the parent)
        bad = {4: "[[1, 2], [3]]", 9: "[[1, 2], [3, 4]"}
        path.write_text(bad.get(n) or json.dumps([[n, -n, 1], [2 * n, 0, -1], [n, n, n]]))
        paths.append(path)
    assert batch_workers([str(p) for p in paths], DataOptions()) >= min(2, os.cpu_count() or 1)
    out = tmp_path / "out"
    args = ["run", *paths, "Conv2d(1, 2, 2)", "relu", "--seed", "3", "--engine", "numpy"]
    proc = subprocess.run([sys.executable, "-m", "cnnops", *map(str, args), "--jsonl", "--output-dir", str(out),
                           "--format", "npy"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 1
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    good = [p for n, p in enumerate(paths) if n not in (4, 9)]
    assert [d["input"]["source"] for d in docs] == [str(p) for p in good]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert "in04.json" in errors[0] and "in09.json" in errors[1] and errors[-1].startswith("Error: 2 of 12")
    for path, doc in zip(good, docs):
        alone = invoke("run", path, "Conv2d(1, 2, 2)", "relu", "--seed", "3", "--engine", "numpy", "--json")
        assert json.loads(alone.stdout)["output"] == doc["output"]
        np.testing.assert_array_equal(np.load(out / f"{path.stem}.npy"), np.array(doc["output"]["data"], np.float32))


def test_a_batch_is_synced_once_at_the_end_and_a_single_output_as_it_is_written(tmp_path, monkeypatch):
    from cnnops.io import write

    calls = {"fsync": 0, "sync": 0}
    monkeypatch.setattr(os, "fsync", lambda fd: calls.__setitem__("fsync", calls["fsync"] + 1))
    monkeypatch.setattr(write, "_sync_filesystems", lambda directories: calls.__setitem__("sync", calls["sync"] + 1))
    with write.deferred_sync():
        for n in range(5):
            write.write_output(str(tmp_path / f"{n}.npy"), np.full((2, 2), n, np.float32))
            assert np.load(tmp_path / f"{n}.npy").tolist() == [[n, n], [n, n]]  # whole at once
        assert calls == {"fsync": 0, "sync": 0}
    assert calls == {"fsync": 1, "sync": 1}  # one sync, then the one directory
    write.write_output(str(tmp_path / "single.npy"), np.zeros(3, np.float32))
    assert calls == {"fsync": 3, "sync": 1}  # the file and its directory
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_quiet_batch_on_workers_writes_every_file_there_and_reports_errors_in_order(tmp_path):
    """With --quiet the workers write each result's files themselves (no result travels back): every file
    is the one-at-a-time result, a bad input is reported in order, and the workers end without a word on
    stderr (the pool's SIGTERM is not cnnops' clean-up)."""
    paths = []
    for n in range(12):
        path = tmp_path / f"in{n:02d}.json"
        path.write_text("[[1, 2], [3]]" if n == 5 else json.dumps([[n, -n, 1], [2 * n, 0, -1], [n, n, n]]))
        paths.append(path)
    out = tmp_path / "out"
    stages = ["Conv2d(1, 2, 2)", "relu", "--seed", "3", "--engine", "numpy"]
    proc = subprocess.run([sys.executable, "-m", "cnnops", "run", *map(str, paths), *stages, "-q", "--output-dir",
                           str(out), "--format", "npy"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and "in05" in lines[0] and "data[1]" in lines[0], proc.stderr
    assert lines[1].startswith("Error: 1 of 12 inputs failed") and "Traceback" not in proc.stderr
    for n, path in enumerate(paths):
        if n == 5:
            continue
        alone = invoke("run", path, *stages, "--json")
        np.testing.assert_array_equal(np.load(out / f"{path.stem}.npy"),
                                      np.array(json.loads(alone.stdout)["output"]["data"], np.float32))  # fmt: skip
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_batch_checks_each_directory_once_and_each_file_every_time(tmp_path, monkeypatch):
    from cnnops.errors import InputError
    from cnnops.io import write

    checked: list[str] = []
    real = write._check_directory
    monkeypatch.setattr(write, "_check_directory", lambda d, *a, **k: checked.append(d) or real(d, *a, **k))
    (tmp_path / "taken.npy").mkdir()
    with write.deferred_sync():
        for n in range(4):
            write.write_output(str(tmp_path / f"{n}.npy"), np.full(2, n, np.float32), parents=True)
        with pytest.raises(InputError, match="is a directory"):  # the file's own checks still run
            write.write_output(str(tmp_path / "taken.npy"), np.zeros(2, np.float32))
    assert checked == [str(tmp_path)]
    assert [np.load(tmp_path / f"{n}.npy").tolist() for n in range(4)] == [[n, n] for n in range(4)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_temporary_name_already_taken_is_passed_over(tmp_path, monkeypatch):
    from cnnops.io import write

    monkeypatch.setattr(write, "_counter", iter([7, 7, 8]))
    stale = tmp_path / f".out.npy.{write._temp_tag(os.getpid(), 7)}.tmp"
    stale.write_text("another writer's")
    write.write_output(str(tmp_path / "out.npy"), np.ones(3, np.float32))
    assert np.load(tmp_path / "out.npy").tolist() == [1, 1, 1]
    assert stale.read_text() == "another writer's"  # not touched, not removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [stale.name, "out.npy"]
    assert re.fullmatch(r"[a-z0-9_]{8}", write._temp_tag(4194303, 37**3 + 5))


def test_a_batch_s_sync_is_one_syncfs_per_filesystem_and_sync_only_without_it(tmp_path, monkeypatch):
    """syncfs of the filesystems written to (not every disk's pending writes); sync where there is none
    or it fails."""
    from cnnops.io import write

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    synced, whole = [], []
    monkeypatch.setattr(os, "sync", lambda: whole.append(1))
    real = write._syncfs()
    if real is not None:  # Linux: the real call, once for the one filesystem both folders are on
        def counted(fd):
            synced.append(os.fstat(fd).st_dev)
            return real(fd)

        monkeypatch.setattr(write, "_syncfs", lambda: counted)
        write._sync_filesystems({str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "gone")})
        assert synced == [os.stat(tmp_path).st_dev] and whole == []
    monkeypatch.setattr(write, "_syncfs", lambda: (lambda fd: -1))  # syncfs failed
    write._sync_filesystems({str(tmp_path / "a")})
    monkeypatch.setattr(write, "_syncfs", lambda: None)  # no syncfs here
    write._sync_filesystems({str(tmp_path / "a")})
    assert whole == [1, 1]


def test_a_workers_written_directories_are_synced_by_the_parent(tmp_path, monkeypatch):
    from cnnops.io import write

    synced: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: None)
    monkeypatch.setattr(write, "_fsync_directory", synced.append)
    with write.deferred_sync():
        write.defer(frozenset({str(tmp_path)}))  # what a worker handed back
        assert synced == []
    assert synced == [str(tmp_path)]


def test_an_error_of_the_finishing_step_is_that_inputs_error():
    from cnnops.errors import InputError
    from cnnops.run.runner import run_inputs
    from cnnops.spec import parse_stages

    def finish(outcome):
        if outcome.position == 2:
            raise InputError("disk full")

    outcomes = list(run_inputs(["[[1]]", "[[2]]", "[[3]]"], lambda t: parse_stages(["ReLU"]), finish=finish, drop=True))
    assert [o.finished for o in outcomes] == [True, False, True]
    assert str(outcomes[1].error) == "disk full" and outcomes[1].result is not None
    assert outcomes[0].result is None and outcomes[2].tensor is None  # finished and let go of


WORKERS_SCRIPT = r"""
import os, signal, sys
from cnnops.run.runner import run_inputs
from cnnops.spec import parse_stages

case = sys.argv[1]
inputs = [f"[[{n}, -{n}]]" for n in range(1, 21)]

def finish(outcome):
    if case == "killed" and outcome.position == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    if case == "raises" and outcome.position == 9:
        raise ValueError("not an input's error")

if case == "no fork":
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")
    os.fork = no_fork

seen = []
try:
    for outcome in run_inputs(inputs, lambda t: parse_stages(["ReLU"]), workers=2, finish=finish, drop=True):
        seen.append(outcome.position)
        print(outcome.position, "error" if outcome.error else "ok", outcome.error or "", flush=True)
        if case == "let go" and len(seen) == 5:
            break
except ValueError as exc:
    print("raised", exc, flush=True)
try:
    os.waitpid(-1, os.WNOHANG)
    print("workers left", flush=True)
except ChildProcessError:
    print("no workers left", flush=True)
"""


def run_workers_script(case):
    proc = subprocess.run([sys.executable, "-c", WORKERS_SCRIPT, case], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_a_worker_that_is_killed_fails_its_own_inputs_and_the_batch_goes_on():
    lines = run_workers_script("killed")
    assert [int(line.split()[0]) for line in lines[:-1]] == list(range(1, 21))  # every input, in order
    failed = [line for line in lines[:-1] if " error " in line]
    assert failed and lines[6].startswith("7 error") and "ended unexpectedly (signal 9)" in lines[6]
    assert all("ended unexpectedly" in line for line in failed) and len(failed) <= 4  # its chunk, no more
    assert "run this input again on its own" in lines[6]
    assert lines[-1] == "no workers left"


def test_an_exception_in_a_worker_is_raised_at_its_input_after_the_inputs_before_it():
    lines = run_workers_script("raises")
    assert lines == [f"{n} ok " for n in range(1, 9)] + ["raised not an input's error", "no workers left"]


def test_a_caller_that_lets_go_of_the_outcomes_stops_the_workers():
    assert run_workers_script("let go") == [f"{n} ok " for n in range(1, 6)] + ["no workers left"]


def test_a_batch_whose_workers_cannot_be_forked_runs_in_the_parent():
    assert run_workers_script("no fork") == [f"{n} ok " for n in range(1, 21)] + ["no workers left"]


def test_every_error_a_worker_can_send_back_is_rebuilt_from_its_pickle():
    """A batch worker sends its inputs' errors to the parent pickled: each of cnnops' error classes comes
    back as itself, with its message, its exit status and its parts."""
    import pickle

    from cnnops.cli.batch import BatchError
    from cnnops.cli.common import StdoutError
    from cnnops.errors import CnnopsError, InputError, LayerError, SettingError, SpecError, UsageError, setting
    from cnnops.io.jsontext import JSONSyntaxError
    from cnnops.io.memory import MemoryBudgetError
    from cnnops.run.runner import _portable

    errors = [CnnopsError("x"), SpecError("bad stage"), InputError(f"raise {setting('max_elements')}"),
              SettingError("no such engine"), UsageError("choose one"), BatchError("2 of 3 failed"),
              StdoutError("stdout is closed"), MemoryBudgetError("too big"),
              LayerError("kernel too large", index=2, stage="Conv2d(1, 1, 9)", fix="use a smaller kernel"),
              JSONSyntaxError("input file 'a.json'", "expecting ',' delimiter at line 1, column 9")]  # fmt: skip
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and back.exit_code == error.exit_code
        assert back.__dict__ == error.__dict__
        assert _portable(error) is error

    class Unrebuildable(InputError):
        def __init__(self, path, why):
            super().__init__(f"{path}: {why} — raise {setting('max_elements')}")

    portable = _portable(Unrebuildable("a.json", "too long"))
    back = pickle.loads(pickle.dumps(portable))
    assert type(back) is InputError and back.worded() == "a.json: too long — raise max_elements"


@pytest.mark.parametrize("options, message", [
    (["--engine", "numpy", "--device", "cuda"], "device 'cuda' needs the torch engine — drop --engine numpy"),
    (["--animate", "a.gif", "--crop", "1,2,x"], "--crop takes ROW,COL,HEIGHT,WIDTH"),
    (["--animate", "a.gif", "--crop", "0,0,0,0"], "--crop takes ROW,COL,HEIGHT,WIDTH"),
    (["--animate", "a.gif", "--crop", "0,0,99,99"], "--crop 0,0,99,99 is larger than 32×32"),
])  # fmt: skip
def test_a_setting_wrong_for_every_input_is_refused_once_before_any_is_read(tmp_path, options, message):
    inputs = good_and_bad(tmp_path)[:1] + [tmp_path / "missing.json"]  # a missing file: no input is read
    options = [tmp_path / o if o == "a.gif" else o for o in options]
    for given in (inputs[:1], inputs):  # one input or several: the same one error, exit 2
        result = invoke("relu", *given, *options, "-q")
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.stderr
