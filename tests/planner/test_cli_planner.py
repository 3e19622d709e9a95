"""The planner on the command line: ``shape --memory/--convention/--compare-conventions`` and
``solve --max-memory`` — the JSON contract, the tables, the refusals, and that a fitted size fits while the
next one up does not."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from zoo import chains

from cnnops.cli import app
from cnnops.model.conventions import recount
from cnnops.model.memory import parse_size, plan_memory
from cnnops.model.memory_search import fit_memory
from cnnops.model.trace import trace_shapes
from cnnops.spec import parse_stages, read_stage_file

ROOT = Path(__file__).resolve().parents[2]
ALEXNET = str(ROOT / "examples" / "alexnet.txt")
runner = CliRunner()
NET = ["Conv2d(3, 8, 3, padding=1)", "bn", "relu(inplace=True)", "maxpool:2", "Dropout(0.2)", "flatten", "Linear(128, 10)"]
CONTRACT = {"params_bytes", "grads_bytes", "optimizer_bytes", "saved_bytes", "inference_peak_bytes", "training_bytes"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_memory_json_has_the_contract_names_and_the_library_numbers():
    result = invoke("shape", "4x3x8x8", *NET, "--memory", "--json", "--dtype", "bfloat16", "--optimizer", "momentum")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert CONTRACT <= set(doc["memory"])
    assert all({"output_bytes", "saved_bytes"} <= set(stage) for stage in doc["stages"])
    plan = plan_memory(trace_shapes((4, 3, 8, 8), parse_stages(NET)), "bfloat16", "momentum")
    assert doc["memory"] == plan.as_dict()
    assert doc["memory"]["optimizer_bytes"] == doc["memory"]["params_bytes"] == 2 * doc["total_params"]
    assert [s["saved_bytes"] for s in doc["stages"]] == [s.saved_bytes for s in plan.stages]
    assert doc["stages"][3]["saved"][0] == {"tensor": "input", "bytes": 0, "shared_with_stage": 3}


def test_memory_jsonl_and_csv_rows_carry_the_bytes():
    rows = [json.loads(line) for line in invoke("shape", "4x3x8x8", *NET, "--memory", "--jsonl").stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(1, len(NET) + 1)) and all("saved_bytes" in r for r in rows)
    table = list(csv.DictReader(io.StringIO(invoke("shape", "4x3x8x8", *NET, "--memory", "--csv").stdout)))
    assert [int(r["saved_bytes"]) for r in table] == [r["saved_bytes"] for r in rows]


def test_memory_tables_show_per_stage_bytes_and_totals():
    result = invoke("shape", "1x3x224x224", "-f", ALEXNET, "--memory", "--batch", "8")
    assert result.exit_code == 0, result.output
    for words in ("Memory per stage (float32)", "what autograd saves", "indices", "dropout mask", "in place",
                  "Memory totals (float32, optimizer adam)", "training step", "inference peak"):  # fmt: skip
        assert words in result.stdout


def test_batch_overrides_the_first_dimension_and_needs_one():
    doc = json.loads(invoke("shape", "1x3x224x224", "-f", ALEXNET, "--batch", "16", "--json").stdout)
    assert doc["input_shape"] == [16, 3, 224, 224] and doc["output_shape"] == [16, 1000]
    result = invoke("shape", "3x224x224", "-f", ALEXNET, "--batch", "16")
    assert result.exit_code == 1 and "no batch dimension" in result.output


@pytest.mark.parametrize(("args", "code", "words"), [
    (["1x3x8x8", "conv:3,4,3", "--dtype", "float16"], 2, "add --memory"),
    (["1x8", "Linear(8, 4)", "BatchNorm1d(4)", "--memory"], 1, "more than 1 value per channel"),
    (["1x3x8x8", "conv:3,3,1", "Sigmoid", "relu(inplace=True)", "--memory"], 1, "modified by an inplace operation"),
    (["1x1x4x4", "MaxUnpool2d(2)", "--memory"], 1, "MaxUnpool without a max pool"),
    (["1x3x8x8", "Softmax", "--convention", "thop"], 1, "thop fails on Softmax(dim=None)"),
    (["1x3x8x8", "conv:3,4,3", "--compare-conventions", "--csv"], 2, "--compare-conventions works with"),
])  # fmt: skip
def test_refusals_say_why(args, code, words):
    result = invoke("shape", *args)
    assert result.exit_code == code and words in result.output
    assert "Traceback" not in result.output


def test_convention_recounts_the_macs_column_and_names_the_unit():
    doc = json.loads(invoke("shape", "1x3x32x32", "Conv2d(3, 8, 3)", "bn", "--convention", "flop-counter", "--json").stdout)
    assert doc["convention"] == "flop-counter" and doc["macs_unit"] == "FLOPs"
    assert [s["macs"] for s in doc["stages"]] == [2 * 8 * 30 * 30 * 3 * 9, 0]
    table = invoke("shape", "1x3x32x32", "Conv2d(3, 8, 3)", "bn", "--convention", "thop").stdout
    assert "counted as thop 0.1.1.post2209072238" in table and "28,800" in table


def test_compare_conventions_table_and_json():
    args = ["1x3x32x32", "Conv2d(3, 8, 3, padding='same')", "bn", "relu", "ConvTranspose2d(8, 4, 2, stride=2)",
            "AdaptiveAvgPool2d(1)", "flatten", "Linear(4, 10)"]  # fmt: skip
    table = invoke("shape", *args, "--compare-conventions").stdout
    for words in ("cnnops", "thop", "ptflops", "fvcore", "torchinfo", "flop-counter", "Why the counts differ",
                  "aten::_convolution_mode", "output position", "for the bias"):  # fmt: skip
        assert words in table
    doc = json.loads(invoke("shape", *args, "--compare-conventions", "--json").stdout)
    assert doc["conventions"]["totals"]["cnnops"] == doc["total_macs"]
    assert doc["conventions"]["stages"][0]["counts"]["fvcore"] == 0


def test_planner_options_do_not_import_torch():
    code = (
        "import sys; from cnnops.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['shape', '1x3x224x224', '-f', 'examples/alexnet.txt', '--memory', "
        "'--compare-conventions', '--batch', '4']); assert r.exit_code == 0, r.output; "
        "r = CliRunner().invoke(app, ['solve', '--max-memory', '1GiB', '--input', '1x3x224x224', '-f', "
        "'examples/alexnet.txt']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- solve --max-memory ---------------------------------------------------------------------------------
def _total(shape, network, inference=False, dtype="float32"):
    trace = trace_shapes(shape, network)
    if trace.error is not None:
        return None
    plan = plan_memory(trace, dtype)
    if not inference and plan.training_error is not None:
        return None
    return plan.total(inference)


@pytest.mark.parametrize("inference", [False, True])
@pytest.mark.parametrize("budget", ["1GiB", "2GB", "10GiB"])
def test_solve_batch_fits_and_the_next_batch_does_not(budget, inference):
    flags = ["--inference"] if inference else []
    result = invoke("solve", "--max-memory", budget, "--input", "1x3x224x224", "-f", ALEXNET, "--json", *flags)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    network = read_stage_file(ALEXNET)
    limit = parse_size(budget)
    n = doc["batch"]
    assert doc["total_bytes"] == _total((n, 3, 224, 224), network, inference) <= limit
    assert doc["next"]["batch"] == n + 1
    assert doc["next"]["total_bytes"] == _total((n + 1, 3, 224, 224), network, inference) > limit
    assert CONTRACT <= set(doc["memory"]) and doc["input_shape"] == [n, 3, 224, 224]


def test_solve_resolution_fits_and_the_next_accepted_side_does_not():
    result = invoke("solve", "--max-memory", "64MiB", "--input", "2x3x64x64", "Conv2d(3, 8, 3, padding=1)", "s=relu",
                    "maxpool:2", "Conv2d(8, 8, 3, stride=2, padding=1)", "relu", "Conv2d(8, 8, 3, padding=1)",
                    "--for", "resolution", "--json", "--dtype", "float16")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    side = doc["side"]
    assert doc["total_bytes"] <= parse_size("64MiB") < doc["next"]["total_bytes"]
    assert doc["input_shape"] == [2, 3, side, side]


def test_solve_resolution_of_a_network_that_accepts_few_sides():
    lenet = ["Conv2d(1, 6, 5)", "relu", "maxpool:2", "Conv2d(6, 16, 5)", "relu", "maxpool:2", "flatten", "Linear(400, 120)"]
    doc = json.loads(invoke("solve", "--max-memory", "1GiB", "--input", "1x1x28x28", *lenet, "--for", "resolution",
                            "--json").stdout)  # fmt: skip
    accepted = [s for s in range(1, 200) if trace_shapes((1, 1, s, s), parse_stages(lenet)).error is None]
    assert doc["side"] == max(accepted) and doc["next"] is None


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
@given(chains(), st.integers(10, 24), st.sampled_from(["batch", "resolution"]), st.booleans())
def test_fitted_size_fits_and_the_next_accepted_size_does_not(chain, budget_log2, grow, inference):
    shape, texts = chain
    network = parse_stages(texts)
    budget = 2**budget_log2
    try:
        found = fit_memory(shape, network, budget, grow=grow, inference=inference)
    except Exception as exc:  # noqa: BLE001 - every refusal must be a CnnopsError with a reason
        from cnnops.errors import CnnopsError

        assert isinstance(exc, CnnopsError) and str(exc), exc
        return
    make = (lambda n: (n, *shape[1:])) if grow == "batch" else (lambda s: (*shape[: -_nd(network)], *(s,) * _nd(network)))
    assert found.total == _total(make(found.value), network, inference) <= budget
    upper = found.next_value if found.next_value is not None else found.value + 1
    for value in range(found.value + 1, upper):
        assert _total(make(value), network, inference) is None  # refused sizes in between
    if found.next_value is not None:
        assert _total(make(found.next_value), network, inference) == found.next_total > budget


def _nd(network) -> int:
    return next(s.nd for s in network if getattr(s, "nd", 0) and type(s).__name__ in (
        "Conv", "ConvTranspose", "Pool", "AdaptivePool", "Unpool"))


def test_solve_usage_errors():
    assert invoke("solve", "--input", "1x3x8x8", "--output", "3").exit_code == 2
    assert invoke("solve", "--input", "28").exit_code == 2
    assert invoke("solve", "--input", "28", "--output", "14", "--for", "resolution").exit_code == 2
    no_net = invoke("solve", "--max-memory", "1GiB", "--input", "1x3x8x8")
    assert no_net.exit_code == 2 and "needs a network" in no_net.output
    bad = invoke("solve", "--max-memory", "lots", "--input", "1x3x8x8", "relu")
    assert bad.exit_code == 2 and "24GiB" in bad.output
    flat = invoke("solve", "--max-memory", "1GiB", "--input", "2x8", "Linear(8, 4)", "--for", "resolution")
    assert flat.exit_code == 2 and "no convolution or pooling" in flat.output
    tiny = invoke("solve", "--max-memory", "1KiB", "--input", "1x3x224x224", "-f", ALEXNET)
    assert tiny.exit_code == 1 and "even a batch of 1 needs" in tiny.output


def test_recount_keeps_shapes_and_params():
    trace = trace_shapes((1, 3, 8, 8), parse_stages(["Conv2d(3, 4, 3)"]))
    assert recount(trace, "ptflops").rows[0].macs == trace.rows[0].macs + 4 * 6 * 6
    assert recount(trace, "ptflops").total_params == trace.total_params


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
@given(chains(), st.integers(8, 34), st.sampled_from(["batch", "resolution"]), st.booleans())
def test_many_fitted_sizes_fit_and_the_next_accepted_size_does_not(chain, budget_log2, grow, inference):
    test_fitted_size_fits_and_the_next_accepted_size_does_not.hypothesis.inner_test(chain, budget_log2, grow, inference)
