"""``--model`` by forward hooks, where ``torch.fx`` cannot trace: the leaf layers in the order forward() calls
them, the code between them as measured rows, and the module where forward fails."""

from __future__ import annotations

from typing import Any

from cnnops.engines.torch_layers import ModelTrace, _check_against_torch, _measured, _Params, _short, module_stage
from cnnops.errors import CnnopsError, InputError, LayerError
from cnnops.model.stages import Shape
from cnnops.model.tensor_ops import (
    Measured,
)
from cnnops.spec.builder import NetworkBuilder
from cnnops.spec.signatures import LAYERS


class HookReader:
    """Leaf layers in the order forward() calls them; the code between them (reshapes, merges) as
    measured rows, since hooks see layers but not the code that connects them."""

    def __init__(self, model: Any, input_shape: Shape, device: str):
        self.model, self.device = model, device
        self.builder = NetworkBuilder(input_shape)
        self.params = _Params()
        self.produced: dict[int, int] = {}  # id of an output tensor → its stage
        self.calls: dict[str, int] = {}
        self.stack: list[str] = []
        self.torch_shapes: dict[int, tuple[int, ...]] = {}

    def read(self) -> ModelTrace:
        import torch

        names = {id(m): name for name, m in self.model.named_modules()}
        handles = []
        for name, module in self.model.named_modules():
            handles.append(module.register_forward_pre_hook(self._enter(name)))
            handles.append(module.register_forward_hook(self._leave(name, module, leaf=not any(module.children()))))
        x = torch.zeros(self.builder.input_shape, device=self.device)
        self.produced[id(x)] = 0
        self.keep = [x]
        error: CnnopsError | None = None
        try:
            out = self.model(x)
        except Exception as exc:
            where = self.stack[-1] if self.stack else ""
            module = dict(self.model.named_modules()).get(where)
            kind = type(module).__name__ if module is not None else ""
            place = f"in {where} ({kind})" if where else "in forward() of the model itself"
            error = LayerError(f"torch fails {place}: {_short(exc)}", index=len(self.builder.nodes) + 1,
                               stage=where or type(self.model).__name__)  # fmt: skip
            out = None
        finally:
            for h in handles:
                h.remove()
        del names
        if error is None:
            if not isinstance(out, torch.Tensor):
                raise InputError(f"forward() returns a {type(out).__name__}; cnnops sizes a model with one output tensor")
            ref = self.produced.get(id(out))
            if ref is None:
                ref = self._code_row(tuple(out.shape))
            if ref != len(self.builder.nodes):
                self.builder.emit(LAYERS["Identity"].build("Identity", {}, "Identity()", 0), [ref], label="output")
            _check_against_torch(self.builder.network(), self.builder.input_shape, self.torch_shapes)
        return ModelTrace(self.builder.network(), error, claimed=set(self.params.owner))

    def _enter(self, name: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            self.stack.append(name)

        return hook

    def _leave(self, name: str, module: Any, leaf: bool) -> Any:
        import torch

        def hook(_: Any, args: Any, output: Any) -> None:
            self.stack.pop()
            if not leaf or not isinstance(output, torch.Tensor):
                return
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            refs = []
            for t in tensors:
                ref = self.produced.get(id(t))
                refs.append(self._code_row(tuple(t.shape)) if ref is None else ref)
            count = self.calls[name] = self.calls.get(name, 0) + 1
            label = name if count == 1 else f"{name}#{count}"
            params = list(module.parameters())
            stage = module_stage(module) if len(tensors) == 1 and len(args) == 1 else None
            if stage is None:
                stage = _measured(type(module).__name__, f"{type(module).__name__}({module.extra_repr()})",
                                  tuple(output.shape), sum(p.numel() for p in params), len(refs))  # fmt: skip
            number = len(self.builder.nodes) + 1
            shares = self.params.claim(params, number) if params else None
            self.builder.emit(stage, refs or [len(self.builder.nodes)], label=label, shares=shares)
            self.torch_shapes[number] = tuple(output.shape)
            self.produced[id(output)] = number
            self.keep.append(output)

        return hook

    def _code_row(self, shape: tuple[int, ...]) -> int:
        """A tensor no layer produced: forward() code made it from what came before."""
        stage = Measured(name="forward() code", call="forward() code", output=shape, source="torch")
        number = self.builder.emit(stage, [len(self.builder.nodes)])
        self.torch_shapes[number] = shape
        return number
