"""Many inputs through stages, one after another: each is read, its stages built and run, and the
outcome yielded — a result or the error that stopped it. Nothing here prints or writes.

>>> from cnnops.spec import parse_stages
>>> outcomes = list(run_inputs(["[[1, -2]]", "[oops"], lambda tensor: parse_stages(["ReLU"])))
>>> outcomes[0].result.output.tolist(), type(outcomes[1].error).__name__
([[1.0, 0.0]], 'InputError')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.stages import Stage
    from cnnops.run.pipeline import RunResult, Selection

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
    #: what the caller reads of each result (see :func:`~cnnops.run.pipeline.run_pipeline`); None: all
    keep: Selection = None
    need_indices: Selection = None


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
    before it (else those that came with the input document)."""
    from cnnops.io.read import read_input
    from cnnops.run.pipeline import run_pipeline

    settings = settings or RunSettings()
    for position, arg in enumerate(inputs, 1):
        outcome = Outcome(position, arg)
        try:
            outcome.tensor = read_input(arg, rgb=settings.rgb, max_elements=settings.max_elements)
            outcome.source = outcome.tensor.source
            outcome.result = run_pipeline(
                outcome.tensor.data, stages_for(outcome.tensor),
                indices=indices if indices is not None else outcome.tensor.indices, seed=settings.seed,
                max_elements=settings.max_elements, engine=settings.engine, device=settings.device,
                keep=settings.keep, need_indices=settings.need_indices,
            )  # fmt: skip
            outcome.result.source = outcome.tensor.source
            if outcome.result.input is None:
                outcome.tensor.data = None  # type: ignore[assignment]  # nobody reads the input any more
        except CnnopsError as exc:
            outcome.error = exc
        yield outcome


def output_names(inputs: Sequence[str], extension: str) -> list[str]:
    """Per-input file names: the input's stem, made unique; ``input-N`` for stdin and inline JSON."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for n, arg in enumerate(inputs, 1):
        text = arg.strip()
        stem = f"input-{n}" if text == "-" or text[:1] in "[{" else Path(text).stem or f"input-{n}"
        stem = re.sub(r"[^\w.-]", "_", stem)
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(f"{stem}.{extension}" if count == 0 else f"{stem}-{count + 1}.{extension}")
    return names


def read_indices(path: str) -> Any:
    """Max-pool indices from a .json or .npy file (a max pool's JSON result works), as int64."""
    import numpy as np

    from cnnops.io.read import read_array_file

    indices = read_array_file(path, what="indices")
    if not np.all(np.isfinite(indices)) or not np.all(indices == np.round(indices)):
        raise InputError(f"indices file '{path}' must hold whole numbers")
    return indices.astype(np.int64)
