"""The auto engine's rates: the stored file (``cnnops bench --calibrate``), what is done with a file that
is not what it should be, ``cnnops bench`` as a user runs it, and each activation's share of work."""

import json
import math
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cnnops.cli import app
from cnnops.model.stages.layers import Activation
from cnnops.model.trace import trace_shapes
from cnnops.run import costs
from cnnops.run.costs import ACTIVATION_WORK, DEFAULTS, FORMAT, KINDS, Rates, estimate, load_rates, save_rates
from cnnops.spec import parse_stages
from cnnops.spec.signatures import LAYERS

runner = CliRunner()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "cnnops" / "engine-rates.json"


def stored(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")


def test_without_a_file_the_defaults_are_used(cache):
    assert not cache.exists()
    assert load_rates() == DEFAULTS and load_rates().source == "defaults"


def test_a_stored_file_is_read_and_missing_kinds_come_from_the_defaults(cache):
    stored(cache, {"format": FORMAT, "numpy": {"conv_mac": 2e-11, "stray": 5}, "torch": {"maxpool": 3e-9},
                   "torch_import": 0.75})  # fmt: skip
    rates = load_rates()
    assert rates.numpy == {**DEFAULTS.numpy, "conv_mac": 2e-11} and "stray" not in rates.numpy
    assert rates.torch == {**DEFAULTS.torch, "maxpool": 3e-9}
    assert rates.torch_import == 0.75 and rates.source == str(cache)


def test_save_then_load_gives_the_same_rates(cache):
    rates = Rates({k: 1e-9 * (i + 1) for i, k in enumerate(KINDS)}, {k: 2e-9 for k in KINDS}, 1.25, "measured")
    assert save_rates(rates) == cache
    back = load_rates()
    assert (back.numpy, back.torch, back.torch_import) == (rates.numpy, rates.torch, rates.torch_import)
    assert [p.name for p in cache.parent.iterdir()] == ["engine-rates.json"]  # no temporary file left


@pytest.mark.parametrize("doc", [
    "{not json",
    "[]",
    {"format": FORMAT + 1, "numpy": {}, "torch": {}, "torch_import": 1.0},
    {"format": FORMAT, "numpy": {"conv_mac": -1e-11}, "torch": {}, "torch_import": 1.0},
    {"format": FORMAT, "numpy": {"conv_mac": "nan"}, "torch": {}, "torch_import": 1.0},
    {"format": FORMAT, "numpy": {}, "torch": {"maxpool": "inf"}, "torch_import": 1.0},
    {"format": FORMAT, "numpy": {}, "torch": {}, "torch_import": -5},
    {"format": FORMAT, "numpy": {}, "torch": {}, "torch_import": "nan"},
    {"format": FORMAT, "numpy": {}, "torch": {}, "torch_import": "inf"},
    {"format": FORMAT, "numpy": {}, "torch": {}},
    {"format": FORMAT, "numpy": [], "torch": {}, "torch_import": 1.0},
    {"format": FORMAT, "numpy": {"conv_mac": "fast"}, "torch": {}, "torch_import": 1.0},
])  # fmt: skip
def test_a_file_that_is_not_what_it_should_be_gives_the_defaults(cache, doc):
    stored(cache, doc)
    assert load_rates() == DEFAULTS


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # nested deeper than Python's recursion limit
    '{"format": 1, "numpy": {"conv_mac": 1%s}, "torch": {}, "torch_import": 1.0}' % ("0" * 400),  # > float
    '{"format": 1, "numpy": {}, "torch": {}, "torch_import": %s}' % ("9" * 400),
    " " * (costs.MAX_RATES_BYTES + 1) + "{}",  # too large to be a rates file
    "\udcff",  # not UTF-8 once written with surrogateescape
], ids=["nested", "huge-rate", "huge-import", "too-large", "not-utf8"])  # fmt: skip
def test_a_hostile_file_gives_the_defaults_and_no_error(cache, text):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert load_rates() == DEFAULTS
    result = runner.invoke(app, ["run", "[[1, -2]]", "ReLU", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"]["data"] == [[1.0, 0.0]]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_fifo_in_place_of_the_file_gives_the_defaults_without_waiting(cache):
    cache.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(cache)  # opening it for reading would wait for a writer for ever
    assert load_rates() == DEFAULTS


def test_a_device_in_place_of_the_file_gives_the_defaults(cache):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.symlink_to("/dev/zero")  # endless: reading it whole fills the memory
    assert load_rates() == DEFAULTS


def test_a_negative_import_time_cannot_make_auto_choose_torch(cache, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a fresh process: its import is a cost
    stored(cache, {"format": FORMAT, "numpy": {}, "torch": {}, "torch_import": -5})
    result = runner.invoke(app, ["run", "[[1, 2], [3, 4]]", "ReLU", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["engine"] == "numpy"


def test_bench_shows_the_rates_and_where_they_come_from(cache):
    result = runner.invoke(app, ["bench"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "auto engine rates (defaults)" in result.stdout
    for kind in KINDS:
        assert kind in result.stdout
    stored(cache, {"format": FORMAT, "numpy": {"conv_mac": 2e-11}, "torch": {}, "torch_import": 0.5})
    doc = json.loads(runner.invoke(app, ["bench", "--json"]).stdout)
    assert doc["source"] == str(cache) and doc["numpy"]["conv_mac"] == 2e-11 and doc["torch_import"] == 0.5
    assert set(doc["numpy"]) == set(doc["torch"]) == set(KINDS)


@pytest.mark.parametrize("blocker", ["directory", "fifo"])
def test_calibrate_names_what_is_in_the_rates_file_s_place_and_what_to_do(cache, blocker):
    cache.parent.mkdir(parents=True, exist_ok=True)
    if blocker == "directory":
        cache.mkdir()
    elif hasattr(os, "mkfifo"):
        os.mkfifo(cache)
    else:
        pytest.skip("FIFOs")
    result = runner.invoke(app, ["bench", "--calibrate"])  # refused before anything is measured
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("Error: cannot store the rates: ") and str(cache) in line and "\n" not in line, line
    assert line.endswith("— remove it, or set XDG_CACHE_HOME to another directory"), line
    assert "give a file name" not in line and "choose another name" not in line, line


def test_calibrate_refuses_an_unwritable_cache_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = dict(os.environ, XDG_CACHE_HOME=str(blocker))
    proc = subprocess.run([sys.executable, "-m", "cnnops", "bench", "--calibrate"], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: cannot store the rates in ") and "XDG_CACHE_HOME" in proc.stderr
    assert "measuring" not in proc.stderr and "Traceback" not in proc.stderr  # refused before the measuring
    assert proc.stdout == ""


@pytest.mark.slow
def test_calibrate_measures_stores_and_auto_uses_the_rates(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cnnops", "bench", "--calibrate", "--json"], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    path = tmp_path / "cnnops" / "engine-rates.json"
    assert doc["source"] == str(path) and path.exists()
    for engine in ("numpy", "torch"):
        assert set(doc[engine]) == set(KINDS)
        assert all(math.isfinite(v) and v >= 0 for v in doc[engine].values())
    assert doc["numpy"]["conv_mac"] > 0 and doc["torch"]["transcendental"] > 0 and doc["torch_import"] > 0
    assert "measuring numpy: convolutions" in proc.stderr
    shown = subprocess.run([sys.executable, "-m", "cnnops", "bench"], capture_output=True, text=True,
                           env=dict(env, COLUMNS="400"))  # fmt: skip
    assert f"auto engine rates ({path})" in shown.stdout


# ------------------------------------------------------------------------------- activations' work


def test_every_activation_the_parser_builds_has_its_share_of_work():
    built = set()
    for name in LAYERS:
        try:
            stage = parse_stages([f"{name}()"])[0]
        except Exception:  # layers with required arguments are not activations here
            continue
        if isinstance(stage, Activation):
            built.add(name)
    assert built and built <= set(ACTIVATION_WORK), built - set(ACTIVATION_WORK)
    assert parse_stages(["Threshold(0.1, 20)"])[0].name in ACTIVATION_WORK
    for kind, numpy_share, torch_share in ACTIVATION_WORK.values():
        assert kind in KINDS and numpy_share > 0 and torch_share > 0


@pytest.mark.parametrize(("cheap", "dear"), [("Tanh", "GELU"), ("GELU(approximate='tanh')", "GELU"),
                                             ("ReLU", "LeakyReLU"), ("SiLU", "Mish")])  # fmt: skip
def test_numpy_s_estimate_follows_each_activation_s_own_cost(cheap, dear):
    shape = (1, 8, 256, 256)
    low = estimate(trace_shapes(shape, parse_stages([cheap])), DEFAULTS, torch_imported=True)[0]
    high = estimate(trace_shapes(shape, parse_stages([dear])), DEFAULTS, torch_imported=True)[0]
    assert low < high


def test_an_activation_s_work_is_its_elements_times_its_share():
    trace = trace_shapes((2, 3, 10, 10), parse_stages(["Tanh"]))
    numpy_units, torch_units = costs.work(trace.rows[0])
    assert numpy_units == {"stage": 1.0, "transcendental": 600 * ACTIVATION_WORK["Tanh"][1]}
    assert torch_units == {"stage": 1.0, "transcendental": 600 * ACTIVATION_WORK["Tanh"][2]}
