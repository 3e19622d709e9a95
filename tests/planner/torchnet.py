"""Plain torch networks built from raw stage text, run the way PyTorch code runs them — the oracle of
the memory and counting-convention tests.

A network is a list of :class:`Spec`: the torch constructor text of a stage (evaluated in the ``torch.nn``
namespace, plus :class:`Add`, :class:`Mul` and :class:`Cat` for merges) and the outputs it reads (0: the
network input). :class:`DagNet` holds the stages as children named ``"1"``, ``"2"``, … (the stage numbers),
so per-module tools attribute their counts to stages. ``forward`` drops every intermediate once its last
reader has run (as Python does with ``y = layer(x)`` chains), keeps a max pool's indices for the unpool
that reads them, and gives that unpool the pool's input size, as cnnops pairs them.

Test-only: the texts are written by the tests, never user input.
"""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


class Add(nn.Module):
    """``a + b + …``, left to right, as Python evaluates it."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class Mul(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y


class Cat(nn.Module):
    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.dim)


@functools.cache
def _namespace() -> dict[str, Any]:
    names = {name: getattr(nn, name) for name in dir(nn) if name[:1].isupper()}
    return names | {"Add": Add, "Mul": Mul, "Cat": Cat}


def build(text: str) -> nn.Module:
    return eval(text, {"__builtins__": {}}, _namespace())  # noqa: S307 - test-only text


@dataclass(frozen=True)
class Spec:
    text: str
    reads: tuple[int, ...] | None = None  # None: the previous output
    #: call torch.flatten(x, 1) (or flatten all of an unbatched x) first: cnnops' implicit flatten
    flatten: bool = False


class DagNet(nn.Module):
    def __init__(self, specs: list[Spec]):
        super().__init__()
        self.specs = specs
        for number, spec in enumerate(specs, 1):
            self.add_module(str(number), build(spec.text))
        self.reads = [spec.reads if spec.reads is not None else (number - 1,) for number, spec in enumerate(specs, 1)]
        last = {}
        for number, reads in enumerate(self.reads, 1):
            for r in reads:
                last[r] = number
        self.last_read = last
        # each MaxUnpool reads the indices of the max pool it follows (the nearest one before it), which
        # then returns them
        self.pool_of: dict[int, int] = {}
        pools: list[int] = []
        max_pools = nn.MaxPool1d | nn.MaxPool2d | nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d
        for number, module in enumerate(self.stages(), 1):
            if isinstance(module, max_pools):
                pools.append(number)
            if isinstance(module, nn.MaxUnpool1d | nn.MaxUnpool2d):
                pool = self.pool_of[number] = pools.pop()
                getattr(self, str(pool)).return_indices = True
                self.last_read[("indices", pool)] = number

    def stages(self) -> list[nn.Module]:
        return [getattr(self, str(n)) for n in range(1, len(self.specs) + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: dict[Any, Any] = {0: x}
        sizes: dict[int, tuple[int, ...]] = {}
        n = len(self.specs)
        for number, (module, reads, spec) in enumerate(zip(self.stages(), self.reads, self.specs), 1):
            args = [outputs[r] for r in reads]
            if spec.flatten:
                args[0] = torch.flatten(args[0], 1) if args[0].dim() > 2 else torch.flatten(args[0])
            if number in self.pool_of:
                pool = self.pool_of[number]
                nd = 1 if isinstance(module, nn.MaxUnpool1d) else 2
                y = module(args[0], outputs[("indices", pool)], output_size=sizes[pool][-nd:])
            else:
                y = module(*args)
            if isinstance(y, tuple):
                y, outputs[("indices", number)] = y
                sizes[number] = tuple(args[0].shape)
            del args
            outputs[number] = y
            del y
            for key in [k for k, last in self.last_read.items() if last == number and k != 0]:
                outputs.pop(key, None)
            if number not in self.last_read and number != n:
                outputs.pop(number)  # an output nobody reads dies at once
        return outputs[n]


def network(texts: list[str | Spec]) -> DagNet:
    return DagNet([t if isinstance(t, Spec) else Spec(t) for t in texts])


# --- what autograd saves ------------------------------------------------------------------------
class _Saved:
    """What the pack hook hands autograd: the saved tensor (detached, so that a saved output does not hold its
    own graph in a cycle, as autograd's own saving avoids too) in a box that dies with the node holding it."""

    def __init__(self, tensor: torch.Tensor, stage: int):
        self.tensor, self.stage = tensor, stage


def saved_bytes(model: DagNet, x: torch.Tensor) -> list[int]:
    """Per stage, the bytes of the non-parameter storages autograd holds for backward once a training forward
    has returned (the output still held): each storage counted once, at the first stage that packed it. A
    branch whose output nobody uses frees its graph, and so what it saved, before that."""
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    boxes: list[weakref.ref] = []
    current = [0]

    def enter(number: int):
        def hook(module, args):
            current[0] = number

        return hook

    handles = [m.register_forward_pre_hook(enter(n)) for n, m in enumerate(model.stages(), 1)]

    def pack(t: torch.Tensor) -> _Saved:
        box = _Saved(t.detach(), current[0])
        boxes.append(weakref.ref(box))
        return box

    try:
        with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
            warnings.simplefilter("ignore")
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    first: dict[int, tuple[int, int]] = {}  # storage -> (stage, bytes)
    for ref in boxes:
        box = ref()
        if box is None:
            continue
        storage = box.tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and (ptr not in first or box.stage < first[ptr][0]):
            first[ptr] = (box.stage, storage.nbytes())
    del y
    per_stage = [0] * len(model.specs)
    for stage, nbytes in first.values():
        per_stage[stage - 1] += nbytes
    return per_stage


# --- live tensors in a no-grad forward ------------------------------------------------------------
class LiveTensors(TorchDispatchMode):
    """Every tensor an aten op returns, by storage; a storage is live while any tensor on it is. Parameters
    and buffers are left out. ``peak`` is the most bytes live after any op."""

    def __init__(self, held: torch.Tensor, ignore: set[int]):
        super().__init__()
        self.ignore = ignore
        self.storages: dict[int, list[int]] = {}  # data_ptr -> [bytes, tensors alive]
        self.tracked: set[int] = set()
        self.current = 0
        self.peak = 0
        self.track(held)
        self.peak = self.current

    def track(self, t: Any) -> None:
        if not isinstance(t, torch.Tensor) or id(t) in self.tracked:
            return
        ptr = t.untyped_storage().data_ptr()
        if ptr in self.ignore:
            return
        self.tracked.add(id(t))
        entry = self.storages.get(ptr)
        if entry is None:
            entry = self.storages[ptr] = [t.untyped_storage().nbytes(), 0]
            self.current += entry[0]
        entry[1] += 1
        weakref.finalize(t, self._release, ptr, id(t))

    def _release(self, ptr: int, key: int) -> None:
        self.tracked.discard(key)
        entry = self.storages[ptr]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.storages[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            self.track(t)
        self.peak = max(self.peak, self.current)
        return out


def inference_peak(model: nn.Module, x: torch.Tensor) -> int:
    """The most bytes of activations live at once in ``model(x)`` under no_grad in eval mode (the input
    included, held by the caller throughout)."""
    model.eval()
    ignore = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        live = LiveTensors(x, ignore)
        with live:
            y = model(x)
        del y
    return live.peak


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def numel(shape) -> int:
    return math.prod(shape)
