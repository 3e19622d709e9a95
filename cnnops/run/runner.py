"""Many inputs through stages, one after another: each is read, its stages built and run, and the
outcome yielded — a result or the error that stopped it. Nothing here prints or writes.

>>> from cnnops.spec import parse_stages
>>> outcomes = list(run_inputs(["[[1, -2]]", "[oops"], lambda tensor: parse_stages(["ReLU"])))
>>> outcomes[0].result.output.tolist(), type(outcomes[1].error).__name__
([[1.0, 0.0]], 'InputError')
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
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
        # the first input here: the modules it loads and the plan it makes are the workers' from the start
        yield job.run(1, inputs[0])
        yield from _run_forked(job, inputs, min(workers, len(inputs) - 1))
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


#: inputs a worker takes at a time (fewer when the batch is small: every worker gets some)
CHUNK = 4
#: at most this many chunks: the list of chunks fits a pipe's buffer on any system (4 KiB)
MAX_CHUNKS = 512
_RECORD = struct.Struct("=q")  # a chunk's first position; a message's length


def _run_forked(job: _Job, inputs: Sequence[str], workers: int) -> Iterator[Outcome]:
    """Inputs 2… on ``workers`` forked processes, yielded in order. The chunks of positions wait in a pipe
    that every worker reads from (whoever is free takes the next); each sends its chunk's outcomes back on
    its own pipe. The parent only waits, reorders and yields: no threads, one message per chunk. A worker
    that ends without sending its inputs' outcomes (killed) leaves them failed, not lost; an exception
    other than an input's error is raised here, at its input's place; stopping (an error, Ctrl-C, the
    caller letting go) stops the workers, which remove the file they were writing.

    Not ``multiprocessing.Pool``: its three threads and per-chunk hand-offs took 30–45 ms of the parent's
    CPU on 500 small inputs (from the two cores the workers run on), and a worker killed by the system
    (out of memory) left its ``imap`` waiting for ever."""
    import select
    import sys

    from cnnops.io.deferral import signals_deferred

    count = len(inputs) - 1
    chunk = max(1, min(CHUNK, count // (4 * workers)), -(-count // MAX_CHUNKS))
    tasks_read, tasks_write = os.pipe()
    try:
        _write_all(tasks_write, b"".join(_RECORD.pack(first) for first in range(2, len(inputs) + 1, chunk)))
    finally:
        os.close(tasks_write)  # the workers see the end of the list once it is taken
    blas = sys.modules.get("cnnops.engines.numpy_engine.arrays")  # loaded by the first input, if it ran
    release = sys.modules.get("cnnops.io.release")
    if release is not None:  # no closing thread of the parent's, nor the files it holds, in the workers
        release.let_go_held()
    if blas is not None:
        blas.blas_for_workers(True)
    pids: dict[int, int] = {}  # a worker's result pipe → its process id
    ended: dict[int, int] = {}  # a worker's result pipe → its wait status, once reaped
    parent = os.getpid()  # a worker whose parent is no longer this process stops
    finished = False
    try:
        # the workers start with Ctrl-C, SIGTERM and SIGHUP held until they have their own handlers
        with signals_deferred():
            for _ in range(workers):
                results_read, results_write = os.pipe()
                try:
                    pid = os.fork()
                except OSError:  # no more processes: the workers started do the work
                    os.close(results_read)
                    os.close(results_write)
                    break
                if pid == 0:  # the worker: never returns
                    _worker_main(job, inputs, chunk, tasks_read, results_write, [*pids, results_read], parent)
                os.close(results_write)
                pids[results_read] = pid
        os.close(tasks_read)
        tasks_read = -1
        if pids:
            yield from _collect(pids, ended, inputs, select.select)
        else:  # not one worker could be started: the inputs are run here
            for position in range(2, len(inputs) + 1):
                yield job.run(position, inputs[position - 1])
        finished = True
    finally:
        if not finished:  # an error, an interrupt, or the caller let go: stop the workers now
            for fd, pid in pids.items():
                if fd not in ended:
                    with suppress(OSError):
                        os.kill(pid, signal.SIGTERM)
        for fd, pid in pids.items():  # after the last outcome they are ending on their own
            with suppress(OSError):
                os.close(fd)
            if fd not in ended:
                _reap(pid)
        if tasks_read >= 0:
            os.close(tasks_read)
        if blas is not None:
            blas.blas_for_workers(False)


def _collect(pids: dict[int, int], ended: dict[int, int], inputs: Sequence[str], select: Any) -> Iterator[Outcome]:
    """The workers' outcomes, read as they come and yielded in input order (``ended``: the workers that
    closed their pipe, reaped, with their wait status)."""
    ready: dict[int, Outcome] = {}
    raised: dict[int, BaseException] = {}  # an exception (not an input's error) to raise at its input
    pending = {fd: bytearray() for fd in pids}
    position = 2
    while position <= len(inputs):
        while position in ready or position in raised:
            if position in raised:
                raise raised.pop(position)
            yield ready.pop(position)
            position += 1
        if position > len(inputs):
            break
        open_fds = [fd for fd in pids if fd not in ended]
        if not open_fds:  # every worker has ended and this input never came back
            for lost in range(position, len(inputs) + 1):
                if lost in raised:
                    raise raised.pop(lost)
                yield ready.pop(lost) if lost in ready else Outcome(lost, inputs[lost - 1], error=_lost(ended))
            return
        for fd in select(open_fds, [], [])[0]:
            data = os.read(fd, 1 << 16)
            if not data:
                ended[fd] = _reap(pids[fd])
                continue
            buffer = pending[fd]
            buffer += data
            while len(buffer) >= _RECORD.size:
                (size,) = _RECORD.unpack_from(buffer)
                if len(buffer) < _RECORD.size + size:
                    break
                outcomes, failed, exc = _unpickle(buffer[_RECORD.size : _RECORD.size + size])
                del buffer[: _RECORD.size + size]
                for outcome in outcomes:
                    ready[outcome.position] = outcome
                if failed is not None:
                    raised[failed] = exc


def _reap(pid: int) -> int:
    """A worker that closed its pipe: its wait status (it is ending, or has ended)."""
    try:
        return os.waitpid(pid, 0)[1]
    except OSError:  # reaped already
        return 0


def _lost(statuses: dict[int, int]) -> InputError:
    """The error of an input whose worker ended before sending its outcome (killed, out of memory): the
    inputs of the chunk it was running, whose files may or may not have been written."""
    signals = sorted({os.WTERMSIG(s) for s in statuses.values() if os.WIFSIGNALED(s)})
    how = f" (signal {', '.join(map(str, signals))})" if signals else ""
    return InputError(f"its worker process ended unexpectedly{how} before reporting its result — run this input "
                      "again on its own")  # fmt: skip


def _worker_main(job: _Job, inputs: Sequence[str], chunk: int, tasks: int, results: int, readers: list[int],
                 parent: int) -> None:  # fmt: skip
    """A forked worker: take chunks of positions until none are left, run them, send their outcomes back.
    Ends the process (``os._exit``: nothing of the parent's is flushed or cleaned up twice).

    Its parent gone (killed with SIGKILL, by the OOM killer), the worker stops before its next input —
    what it wrote stays, whole — and a worker waiting to send its outcomes gets EPIPE: it holds no read
    end of any results pipe (``readers``, inherited, are closed), its own included."""
    code = 0
    try:
        for fd in readers:  # the read ends of the result pipes, its own and those of the workers before it
            os.close(fd)
        _worker_start()
        from cnnops.io.write import take_deferred

        while True:
            record = _read_record(tasks)
            if record is None:
                break
            (first,) = _RECORD.unpack(record)
            outcomes: list[Outcome] = []
            failed, error = None, None
            for position in range(first, min(first + chunk, len(inputs) + 1)):
                if os.getppid() != parent:  # the command is gone: nobody wants the rest
                    raise SystemExit(1)
                try:
                    outcome = job.run(position, inputs[position - 1])
                except Exception as exc:  # not an input's error: the parent raises it at this input
                    failed, error = position, exc
                    break
                outcome.written = frozenset(take_deferred())  # the parent syncs them with its own at the end
                outcomes.append(outcome)
            _send(results, (outcomes, failed, error))
            if failed is not None:
                break
        from cnnops.io.release import let_go_held

        let_go_held()  # the files this worker replaced are freed before it ends
    except SystemExit as exc:  # told to stop
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _unpickle(data: bytearray) -> Any:
    import pickle  # here: a run on one process never needs it

    return pickle.loads(data)


def _send(fd: int, message: tuple[list[Outcome], int | None, BaseException | None]) -> None:
    import pickle

    try:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        try:
            pickle.loads(data)  # what the parent will do with it (an exception may not rebuild)
        except Exception:
            for outcome in message[0]:
                outcome.error = _portable(outcome.error)
            data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an exception or a result that cannot be pickled: said in the parent
        outcomes, failed, _ = message
        position = failed if failed is not None else (outcomes[0].position if outcomes else 0)
        data = pickle.dumps(([], position, RuntimeError(f"a worker's result could not be sent back: {exc!r}")))
    _write_all(fd, _RECORD.pack(len(data)) + data)


def _portable(error: CnnopsError | None) -> CnnopsError | None:
    """An input's error as one the parent can rebuild from its pickle: the same message (its settings
    still to be spelled) and exit status, in the nearest of cnnops' plain error classes."""
    import pickle

    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        kind = InputError if isinstance(error, InputError) else CnnopsError
        plain = kind(Exception.__str__(error))
        plain.exit_code = error.exit_code
        return plain


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_record(fd: int) -> bytes | None:
    """The next chunk from the pipe every worker reads (a read of a record is whole: the pipe's lock),
    None at its end."""
    record = os.read(fd, _RECORD.size)
    while record and len(record) < _RECORD.size:  # not expected, but a short read is completed
        more = os.read(fd, _RECORD.size - len(record))
        if not more:
            break
        record += more
    return record if len(record) == _RECORD.size else None


def _worker_start() -> None:
    """In a worker: SIGTERM and SIGHUP (the parent stops its workers with SIGTERM) end the worker quietly,
    once the file it is writing has been cleaned up (its temporary file removed), not with the parent's
    message; Ctrl-C is the parent's to handle."""
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (signal.SIG_IGN,):
            signal.signal(number, _stop_worker)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from cnnops.io.deferral import HELD_SIGNALS, forget_steps

    forget_steps()  # forked during the parent's step (_run_forked), which is not this process's
    if hasattr(signal, "pthread_sigmask"):  # held while the workers were forked: now they may come
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def _stop_worker(signum: int, frame: Any) -> None:
    """A worker told to stop: SystemExit unwinds what it was doing (a write removes its temporary file or
    folder) and ends the process without a traceback. Further stop signals are ignored from here on: a
    signal to the whole process group reaches the worker first and the parent's SIGTERM to its workers
    follows, which must not cut that clean-up short (workers never take Ctrl-C). During a step that must not
    be cut in two (making a temporary file) the signal is noted and raised again at its end."""
    from cnnops.io.deferral import note  # loaded already (_worker_start)

    if note(signum):
        return
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            # a handler that does nothing, not SIG_IGN: the other signal may have come already (SIGHUP to the
            # group, then the parent's SIGTERM, both while NumPy ran), and Python, finding it waiting with
            # SIG_IGN in place, prints "OSError: Signal 15 ignored due to race condition" with a traceback
            signal.signal(number, _stopping)
    raise SystemExit(128 + signum)


def _stopping(signum: int, frame: Any) -> None:
    """A stop signal to a worker that is stopping already: nothing more to do."""


def _can_fork() -> bool:
    import sys

    return hasattr(os, "fork") and "torch" not in sys.modules


def read_indices(path: str) -> Any:
    """Max-pool indices from a .json or .npy file (a max pool's JSON result works), or inline tensor text
    such as ``[[0, 3], [9, 15]]``, as int64."""
    import numpy as np

    from cnnops.io.read import read_array_file, read_array_text
    from cnnops.io.words import looks_inline

    inline = looks_inline(path) and not os.path.isfile(path)
    indices = read_array_text(path) if inline else read_array_file(path, what="indices")
    where = "indices" if inline else f"indices file '{echo(path)}'"
    if not np.all(np.isfinite(indices)) or not np.all(indices == np.round(indices)):
        raise InputError(f"{where} must hold whole numbers")
    if indices.size and not (-(2.0**63) <= indices.min() and indices.max() < 2.0**63):
        bad = indices.max() if indices.max() >= 2.0**63 else indices.min()
        raise InputError(f"{where} holds {bad:.0f}, beyond what an index can be (64 bits)")
    return indices.astype(np.int64)
