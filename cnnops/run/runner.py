"""Many inputs through stages, one after another: each is read, its stages built and run, and the
outcome yielded — a result or the error that stopped it. Nothing here prints or writes.

>>> from cnnops.spec import parse_stages
>>> outcomes = list(run_inputs(["[[1, -2]]", "[oops"], lambda tensor: parse_stages(["ReLU"])))
>>> outcomes[0].result.output.tolist(), type(outcomes[1].error).__name__
([[1.0, 0.0]], 'InputError')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS
from cnnops.records import record
from cnnops.text import echo

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.stages import Stage
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import Needs, RunResult

#: an input's stages, which may depend on the input (a single-op command sizes its layer by it)
StagesFor = Callable[["TensorInput"], Sequence["Stage"]]


@record(frozen=True)
class RunSettings:
    """What a run computes with, the same for every input."""

    seed: int = 0
    engine: str = "auto"
    device: str | None = None
    rgb: bool = False
    max_elements: int = DEFAULT_MAX_ELEMENTS
    #: bytes a run (and reading its input) may use; None: half the free memory
    max_memory: int | None = None
    #: what the caller does with each result, from its trace (see :class:`~cnnops.run.pipeline.Needs`);
    #: None keeps every tensor
    needs: Callable[[Trace], Needs] | None = None


@record
class Outcome:
    """One input's result, or the error that stopped it (``tensor`` is None when reading failed)."""

    position: int  # 1-based, in the order given
    source: str
    tensor: TensorInput | None = None
    result: RunResult | None = None
    error: CnnopsError | None = None
    #: ``finish`` ran on this outcome (in the process that ran the input)
    finished: bool = False
    #: directories files were written into whose sync the caller owes (from a worker's deferred writes)
    written: frozenset[str] = frozenset()

#: a step run on each outcome right after its run, in the process that ran it (a worker, say): writing
#: the result's files, so that the results of a batch need not travel back to be written
Finish = Callable[[Outcome], None]


def run_inputs(inputs: Sequence[str], stages_for: StagesFor, settings: RunSettings | None = None, *,
               indices: Any = None, workers: int = 1, finish: Finish | None = None,
               drop: bool = False) -> Iterator[Outcome]:  # fmt: skip
    """Read and run each input, yielding the outcomes in the order given. ``indices``: max-pool indices
    for a MaxUnpool that has no max pool before it (else those that came with the input document).

    The run is planned once per distinct input shape: ``stages_for`` is called once for each shape
    (and the last stage of a piped result), and the trace, the engine and the weights are reused.
    ``workers`` > 1 runs inputs in that many processes (forked, where the system has fork) while the
    outcomes still arrive in order. ``finish`` runs on each successful outcome where it was run (a
    CnnopsError it raises becomes the outcome's error); with ``drop`` the result and the input are then let
    go of, so that a worker sends back only the outcome's status."""
    settings = settings or RunSettings()
    job = _Job(stages_for, settings, indices, finish, drop)
    if workers > 1 and len(inputs) > 2 and _can_fork():
        import multiprocessing
        import sys

        # the first input here: the modules it loads and the plan it makes are the workers' from the start
        yield job.run(1, inputs[0])
        global _JOB
        _JOB = job  # the forked workers inherit it (closures cannot be pickled)
        blas = sys.modules.get("cnnops.engines.numpy_engine.arrays")  # loaded by the first input, if it ran
        if blas is not None:
            blas.blas_for_workers(True)
        from cnnops.io.write import signals_deferred

        try:
            # the workers start with Ctrl-C, SIGTERM and SIGHUP held until they have their own handlers
            with signals_deferred():
                pool = multiprocessing.get_context("fork").Pool(min(workers, len(inputs) - 1),
                                                                initializer=_worker_start)  # fmt: skip
            try:
                chunk = max(1, min(16, len(inputs) // (4 * workers)))
                yield from pool.imap(_run_in_worker, list(enumerate(inputs, 1))[1:], chunksize=chunk)
                pool.close()  # every input done: the workers end on their own
            except BaseException:
                pool.terminate()  # an error or an interrupt: stop the workers at once
                raise
            finally:
                pool.join()
        finally:
            _JOB = None
            if blas is not None:
                blas.blas_for_workers(False)
        return
    for position, arg in enumerate(inputs, 1):
        yield job.run(position, arg)


class _Job:
    """What every input of a run shares, and the plans made so far (one per input shape)."""

    def __init__(self, stages_for: StagesFor, settings: RunSettings, indices: Any, finish: Finish | None = None,
                 drop: bool = False):  # fmt: skip
        self.stages_for, self.settings, self.indices = stages_for, settings, indices
        self.finish, self.drop = finish, drop
        self.plans: dict[Any, tuple[Any, dict[str, Any]]] = {}

    def run(self, position: int, arg: str) -> Outcome:
        from cnnops.io.read import read_input
        from cnnops.run.pipeline import run_pipeline

        settings = self.settings
        outcome = Outcome(position, arg)
        try:
            tensor = outcome.tensor = read_input(arg, rgb=settings.rgb, max_elements=settings.max_elements,
                                                 max_memory=settings.max_memory, seed=settings.seed)  # fmt: skip
            outcome.source = tensor.source
            key = (tuple(tensor.data.shape), tensor.last_stage)
            if key not in self.plans:
                self.plans[key] = (self.stages_for(tensor), {})
            stages, plan = self.plans[key]
            outcome.result = run_pipeline(
                tensor.data, stages,
                indices=self.indices if self.indices is not None else tensor.indices, seed=settings.seed,
                max_elements=settings.max_elements, engine=settings.engine, device=settings.device,
                max_memory=settings.max_memory, needs=settings.needs, plan=plan,
            )  # fmt: skip
            outcome.result.source = tensor.source
            if outcome.result.input is None:
                tensor.data = None  # type: ignore[assignment]  # nobody reads the input any more
            if self.finish is not None:
                self.finish(outcome)
                outcome.finished = True
        except CnnopsError as exc:
            outcome.error = exc
        if self.drop and outcome.finished:
            outcome.result = outcome.tensor = None
        return outcome


_JOB: _Job | None = None


def _worker_start() -> None:
    """In a worker: SIGTERM and SIGHUP (the pool's terminate() is a SIGTERM) end the worker quietly, once
    the file it is writing has been cleaned up (its temporary file removed), not with the parent's
    message; Ctrl-C is the parent's to handle."""
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (signal.SIG_IGN,):
            signal.signal(number, _stop_worker)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held while the pool forked (see run_inputs): now they may come
        from cnnops.io.write import HELD_SIGNALS

        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def _stop_worker(signum: int, frame: Any) -> None:
    """A worker told to stop: SystemExit unwinds what it was doing (a write removes its temporary file)
    and ends the process without a traceback; a second signal ends it at once."""
    import signal

    signal.signal(signum, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def _run_in_worker(item: tuple[int, str]) -> Outcome:
    from cnnops.io.write import take_deferred

    assert _JOB is not None
    outcome = _JOB.run(*item)
    outcome.written = frozenset(take_deferred())  # the parent syncs them with its own at the end
    return outcome


def _can_fork() -> bool:
    import multiprocessing
    import sys

    return "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules


def read_indices(path: str) -> Any:
    """Max-pool indices from a .json or .npy file (a max pool's JSON result works), or inline tensor text
    such as ``[[0, 3], [9, 15]]``, as int64."""
    import numpy as np

    from cnnops.io.literal import looks_inline
    from cnnops.io.read import read_array_file, read_array_text

    inline = looks_inline(path) and not os.path.isfile(path)
    indices = read_array_text(path) if inline else read_array_file(path, what="indices")
    where = "indices" if inline else f"indices file '{echo(path)}'"
    if not np.all(np.isfinite(indices)) or not np.all(indices == np.round(indices)):
        raise InputError(f"{where} must hold whole numbers")
    if indices.size and not (-(2.0**63) <= indices.min() and indices.max() < 2.0**63):
        bad = indices.max() if indices.max() >= 2.0**63 else indices.min()
        raise InputError(f"{where} holds {bad:.0f}, beyond what an index can be (64 bits)")
    return indices.astype(np.int64)
