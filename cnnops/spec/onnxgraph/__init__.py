"""ONNX graphs → networks: each operator node mapped to the cnnops stage that computes the same, with
the ``onnx`` package (imported only here, only when an ONNX file is read) and no torch.

Parameters are the float initializers a layer takes (weights, biases, BatchNorm's scale and shift — not
its running mean and variance), each counted once: one a second node reads directly is shared; the values
of a Constant node (an exporter's ones and zeros) are not parameters. Constant
subgraphs (``Shape → Gather → Concat`` feeding a ``Reshape``) are folded, with the sizes the shape model
gives. Operators outside the mapping get the shape ``onnx.shape_inference`` gives them, marked as
measured, with their initializers counted; where it gives no static shape, the node is refused by name,
op type and position.

``OPS`` is the table: one line per operator, a new layer one line.
"""

from __future__ import annotations

from typing import Any

from cnnops.errors import InputError, SpecError
from cnnops.model.network import Network
from cnnops.model.stages import Shape
from cnnops.spec.onnxgraph.operators import OPS
from cnnops.spec.onnxgraph.reader import OnnxReader, module_name

__all__ = ["OPS", "OnnxReader", "file_input_shape", "module_name", "read_onnx_file", "read_onnx_model"]


def file_input_shape(model: Any, origin: str) -> tuple[list[int | str], str]:
    """The graph input's dims as the file states them (a name for a symbolic dim) and its name."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise SpecError(f"{origin}: the graph takes {len(inputs)} inputs ({names}); cnnops sizes a model with one input")
    dims = inputs[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?") for d in dims], inputs[0].name


def read_onnx_model(model: Any, origin: str, input_shape: Shape | None = None) -> tuple[Network, Shape]:
    """The network of an ``onnx.ModelProto`` and the input shape used (``input_shape``, or the file's own)."""
    dims, name = file_input_shape(model, origin)
    if input_shape is None:
        symbolic = [d for d in dims if not isinstance(d, int)]
        if symbolic:
            shown = "×".join(map(str, dims))
            raise InputError(f"{origin}: the input '{name}' has the shape {shown} with a symbolic dimension "
                             f"'{symbolic[0]}' — give the input shape, e.g. cnnops shape "
                             f"{'x'.join(str(d) if isinstance(d, int) else '1' for d in dims)} {origin}")  # fmt: skip
        input_shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    elif len(input_shape) != len(dims):
        raise InputError(f"{origin}: the input '{name}' is {len(dims)}-D ({'×'.join(map(str, dims))}); the shape "
                         f"given is {len(input_shape)}-D")  # fmt: skip
    reader = OnnxReader(model, origin, tuple(input_shape))
    return reader.read(), tuple(input_shape)


def read_onnx_file(path: str, input_shape: Shape | None = None) -> tuple[Network, Shape]:
    try:
        import onnx
    except ImportError:
        raise InputError("reading ONNX files needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(path)
    except FileNotFoundError:
        raise InputError(f"ONNX file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"'{path}' is a directory — give an .onnx file") from None
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors: the file is not a model
        raise InputError(f"'{path}' is not an ONNX model the onnx package can read ({type(exc).__name__})") from None
    return read_onnx_model(model, path, input_shape)
