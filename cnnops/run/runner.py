"""Many inputs through stages, one after another: each is read, its stages built and run, and the
outcome yielded — a result or the error that stopped it. Nothing here prints or writes.

>>> outcomes = list(run_inputs(["[[1, -2]]", "[oops"], lambda tensor: parse_stages(["ReLU"])))
>>> outcomes[0].result.output.tolist(), type(outcomes[1].error).__name__
([[1.0, 0.0]], 'InputError')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS
from cnnops.spec import parse_stages  # noqa: F401  (used by the doctest)
from cnnops.text import echo

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.stages import Stage
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import Needs, RunResult

#: an input's stages, which may depend on the input (a single-op command sizes its layer by it)
StagesFor = Callable[["TensorInput"], Sequence["Stage"]]


@dataclass(frozen=True)
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


@dataclass
class Outcome:
    """One input's result, or the error that stopped it (``tensor`` is None when reading failed)."""

    position: int  # 1-based, in the order given
    source: str
    tensor: TensorInput | None = None
    result: RunResult | None = None
    error: CnnopsError | None = None


def run_inputs(inputs: Sequence[str], stages_for: StagesFor, settings: RunSettings | None = None, *,
               indices: Any = None) -> Iterator[Outcome]:  # fmt: skip
    """Read and run each input in turn. ``indices``: max-pool indices for a MaxUnpool that has no max pool
    before it (else those that came with the input document). A result that does not keep its input
    lets go of it (``tensor.data`` becomes None), so only what will be shown stays in memory."""
    from cnnops.io.read import read_input
    from cnnops.run.pipeline import run_pipeline

    settings = settings or RunSettings()
    for position, arg in enumerate(inputs, 1):
        outcome = Outcome(position, arg)
        try:
            outcome.tensor = read_input(arg, rgb=settings.rgb, max_elements=settings.max_elements,
                                        max_memory=settings.max_memory, seed=settings.seed)  # fmt: skip
            outcome.source = outcome.tensor.source
            outcome.result = run_pipeline(
                outcome.tensor.data, stages_for(outcome.tensor),
                indices=indices if indices is not None else outcome.tensor.indices, seed=settings.seed,
                max_elements=settings.max_elements, engine=settings.engine, device=settings.device,
                max_memory=settings.max_memory, needs=settings.needs,
            )  # fmt: skip
            outcome.result.source = outcome.tensor.source
            if outcome.result.input is None:
                outcome.tensor.data = None  # type: ignore[assignment]
        except CnnopsError as exc:
            outcome.error = exc
        yield outcome


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
