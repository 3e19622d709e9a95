"""cnnops: a calculator for the layers of convolutional networks, with PyTorch's exact semantics.

The Python API is what the command line computes, for notebooks and scripts:

>>> import cnnops
>>> cnnops.trace_shapes("1x1x28x28", ["Conv2d(1, 6, 5, padding=2)", "MaxPool2d(2)"]).output_shape
(1, 6, 14, 14)
>>> cnnops.run_stages([[-1.0, 2.0], [3.0, -4.0]], ["ReLU"]).output.tolist()
[[0.0, 2.0], [3.0, 0.0]]

Both return objects whose ``.as_dict()`` is the command's ``--json`` document; a problem raises
:class:`CnnopsError` with the message the command line prints. Nothing heavy is imported until a
function is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError

if TYPE_CHECKING:
    from cnnops.model.stages import Stage
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import RunResult

__version__ = "0.1.0"
__all__ = ["CnnopsError", "run_stages", "trace_shapes"]


def trace_shapes(input_shape: str | Sequence[int] | None, stages: str | Sequence[str | Stage] = (), *,
                 file: str | None = None, class_name: str | None = None) -> Trace:  # fmt: skip
    """``cnnops shape``: every stage's shapes, formulas, parameters, MACs and receptive field.

    ``input_shape`` is ``"1x3x224x224"`` or a tuple; ``stages`` are stage texts in PyTorch's call
    syntax (or a text with one per line, or print(model) text); ``file`` a stage file to read after them,
    or a model file on its own: Python source (read, never run; ``class_name`` picks the class) or an
    ONNX file (``input_shape`` None: the file's own). Raises :class:`CnnopsError` where PyTorch would
    refuse a layer.
    """
    from cnnops.model import trace

    shape = trace.parse_shape(input_shape) if isinstance(input_shape, str) else (
        None if input_shape is None else tuple(int(n) for n in input_shape))
    if file is not None and str(file).lower().endswith((".py", ".onnx")):
        from cnnops.spec.sources import read_network_file

        if stages:
            raise CnnopsError("a model file is sized alone: leave out the stages")
        network, shape = read_network_file(str(file), shape, class_name=class_name)
        result = trace.trace_shapes(shape, network)
        result.raise_error()
        return result
    if shape is None:
        raise CnnopsError("give the input shape, e.g. '1x3x224x224'")
    result = trace.trace_shapes(shape, _network(stages, file))
    result.raise_error()
    return result


def run_stages(data: Any, stages: str | Sequence[str | Stage] = (), *, file: str | None = None, seed: int = 0,
               engine: str = "auto", device: str | None = None, rgb: bool = False) -> RunResult:  # fmt: skip
    """``cnnops run``: a tensor through the stages, every intermediate kept.

    ``data`` is a nested list or an array, or what the command line takes as an input: a path
    (.json, .npy, an image), tensor text in JSON or Python (``"torch.tensor([[1., 2.]])"``), or a
    generator (``"randn:1x4x4"``, ``"torch.randn(1, 4, 4)"``). ``seed`` starts the stream of a random
    input and, separately, that of the weights not given, as ``torch.manual_seed(seed)`` does before
    each. ``engine`` is ``auto``, ``numpy`` or ``torch``.
    """
    import numpy as np

    from cnnops.io.nested import to_array
    from cnnops.io.read import read_input
    from cnnops.run.pipeline import run_pipeline

    indices, source = None, "array"
    if isinstance(data, str):
        tensor = read_input(data, rgb=rgb, seed=seed)
        array, indices, source = tensor.data, tensor.indices, tensor.source
    elif isinstance(data, np.ndarray):
        array = np.asarray(data, dtype=np.float32)
    else:
        with np.errstate(over="ignore"):
            array = to_array(data).astype(np.float32)
    result = run_pipeline(array, _network(stages, file), indices=indices, seed=seed, engine=engine, device=device)
    result.source = source
    return result


def _network(stages: str | Sequence[str | Stage], file: str | None) -> Any:
    from cnnops.model.stages import Stage
    from cnnops.spec import Network, parse_stage_file, parse_stages, read_stage_file

    if isinstance(stages, str):
        network = parse_stage_file(stages, origin="stages")
    elif isinstance(stages, Network):
        network = stages
    elif all(isinstance(item, Stage) for item in stages):
        network = Network(item for item in stages if isinstance(item, Stage))
    else:
        network = parse_stages([s if isinstance(s, str) else s.call for s in stages])
    return network if file is None else network + read_stage_file(file)
