"""NumPy's OpenBLAS loads on one thread in cnnops' command line (cnnops.engines.numpy_blas_on_one_thread) and
is raised to its usual count only for a matmul that wants it; a count the user set is left alone."""

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, sys
from cnnops import engines
engines.numpy_blas_on_one_thread()
import numpy as np
from cnnops.engines.numpy_engine import arrays
calls = arrays._openblas_threads()
report = {"started_on_one": engines.blas_started_on_one_thread, "env": os.environ.get("OPENBLAS_NUM_THREADS"),
          "timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
          "loader_kept": type(np.__loader__).__module__ != "cnnops.engines" and np.__spec__.loader is np.__loader__,
          "finders_left": [type(f).__name__ for f in sys.meta_path if type(f).__module__ == "cnnops.engines"]}
if calls is not None:
    get, put, procs = calls
    report["at_load"] = get()
    with arrays.blas_threads(1):
        report["memory_bound"] = get()
    with arrays.blas_threads(None):
        report["compute_bound"] = get()
    report["usual"] = procs()
print(json.dumps(report))
"""


def probe(**env: str) -> dict:
    settings = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")
    clean = {k: v for k, v in os.environ.items() if k not in settings}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_loads_on_one_thread_and_raises_for_a_matmul_that_wants_more() -> None:
    report = probe()
    assert report["started_on_one"] is True
    assert report["env"] is None and report["timeout"] is None  # settings only while NumPy loaded
    assert report["loader_kept"] and report["finders_left"] == []
    if "at_load" not in report:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    assert report["at_load"] == 1
    assert report["memory_bound"] == 1
    # the usual count (OpenBLAS caps it at the thread count it was built for)
    assert 1 <= report["compute_bound"] <= report["usual"]
    assert report["compute_bound"] > 1 or report["usual"] == 1


def test_a_count_the_user_set_is_left_alone() -> None:
    report = probe(OPENBLAS_NUM_THREADS="1")
    assert report["started_on_one"] is False
    assert report["env"] == "1"  # the user's setting, untouched
    assert report["finders_left"] == []


def test_a_blas_cnnops_cannot_raise_again_is_not_lowered() -> None:
    # NumPy linked to a system OpenBLAS, MKL or Accelerate: its thread count stays as it loads
    code = (
        "import os, sys; from cnnops import engines; engines.bundled_openblas = lambda numpy_dir: []; "
        "engines.numpy_blas_on_one_thread(); import numpy; "
        "print(engines.blas_started_on_one_thread, os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    settings = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")
    env = {k: v for k, v in os.environ.items() if k not in settings}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "None"]
