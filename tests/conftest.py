"""Fixtures shared by the test files."""

import pytest

#: model source files the tests read (statically, with torch, as ONNX); not test modules
collect_ignore = ["models"]


@pytest.fixture(params=["numpy", "torch"], scope="session")
def engine(request):
    """Each compute engine in turn, named explicitly: once torch is imported (as it is in the tests)
    ``engine='auto'`` always picks torch, so a test that leaves it out never runs the NumPy engine.
    Session-scoped because hypothesis refuses function-scoped fixtures in ``@given`` tests."""
    return request.param


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread while a module's tests run: on the tiny tensors of the differential tests
    its thread pool costs ~50× the arithmetic, and one thread is the order its serial loops define
    (e.g. which write wins in max_unpool with repeated indices)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
