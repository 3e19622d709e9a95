"""``--model``: a model torch builds on its meta device (no weights allocated, nothing downloaded), traced
into a :class:`~cnnops.model.network.Network`.

``torch.fx`` symbolic tracing where it works — every layer, functional call, merge and reshape becomes a
stage, with every size known from running the traced graph on meta tensors; forward hooks on the leaf
layers otherwise (layers in execution order, the code between them as measured rows). Layers cnnops
knows become their cnnops stage (built from the module's ``extra_repr`` through the one stage parser)
and must agree with torch's shape; layers it does not know keep torch's shape and parameter count,
marked as measured. When construction or forward needs real values, the model is built on the CPU
instead, and the notes say so. When forward fails, the rows up to the failing module are kept and the
failure names it (``layer3.0.conv1``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from cnnops.engines.torch_layers import ModelTrace, _FxFailed, _short
from cnnops.errors import CnnopsError, InputError, SpecError
from cnnops.model.stages import Shape

_SPEC = re.compile(r"^\s*(?P<target>[^()]+?):(?P<attr>[A-Za-z_][\w.]*)\s*(?P<call>\(.*\))?\s*$", re.S)


def parse_model_spec(spec: str) -> tuple[str, str, list[Any], dict[str, Any]]:
    """``pkg.mod:factory(num_classes=10)`` / ``net.py:Net(width=32)`` → (target, attribute, args, kwargs);
    the arguments are Python literals, read with :mod:`ast` and never evaluated.

    >>> parse_model_spec("torchvision.models:resnet18(num_classes=10)")
    ('torchvision.models', 'resnet18', [], {'num_classes': 10})
    """
    match = _SPEC.match(spec)
    if not match:
        raise SpecError(f"model '{spec}': write MODULE:NAME or FILE.py:NAME, maybe with literal arguments, e.g. "
                        "torchvision.models:resnet18 or 'net.py:Net(width=32)'")  # fmt: skip
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if match.group("call"):
        try:
            call = ast.parse("f" + match.group("call"), mode="eval").body
            assert isinstance(call, ast.Call)
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
            if any(k.arg is None for k in call.keywords):
                raise ValueError("**")
        except (SyntaxError, ValueError, AssertionError):
            raise SpecError(f"model '{spec}': the arguments must be Python literals (numbers, strings, tuples, "
                            "lists, dicts, True/False/None)") from None  # fmt: skip
    return match.group("target").strip(), match.group("attr"), args, kwargs


def load_target(target: str, attr: str) -> Any:
    """The object ``attr`` of a module path or a Python file (its folder goes on sys.path for its imports)."""
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    try:
        if is_file:
            path = Path(target).resolve()
            if not path.is_file():
                raise InputError(f"model file '{target}' does not exist")
            sys.path.insert(0, str(path.parent))
            name = f"cnnops_model_{abs(hash(str(path)))}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except CnnopsError:
        raise
    except Exception as exc:  # whatever the model's own code raises while it is imported
        raise InputError(f"cannot import {target}: {type(exc).__name__}: {exc}") from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise InputError(f"{target} has no '{attr}'")
        value = getattr(value, part)
    return value


def build_model(factory: Any, args: list[Any], kwargs: dict[str, Any], device: str) -> Any:
    import torch

    with torch.device(device):
        if isinstance(factory, torch.nn.Module):
            model = factory.to(device)
        else:
            model = factory(*args, **kwargs)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"the model spec gives a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def trace_model(spec: str, input_shape: Shape) -> ModelTrace:
    """Build the model of ``spec`` and trace it for an input of ``input_shape``."""
    import torch

    target, attr, args, kwargs = parse_model_spec(spec)
    factory = load_target(target, attr)
    notes: list[str] = []
    try:
        model = build_model(factory, args, kwargs, "meta")
        device = "meta"
    except CnnopsError:
        raise
    except Exception as exc:
        notes.append(f"built on the CPU: on the meta device its constructor fails ({_short(exc)})")
        model, device = _build_on_cpu(factory, args, kwargs), "cpu"
    with torch.no_grad():
        result = _trace(model, input_shape, device)
        if result.error is not None and device == "meta":
            cpu = _build_on_cpu(factory, args, kwargs)
            on_cpu = _trace(cpu, input_shape, "cpu")
            if on_cpu.error is None:
                notes.append(f"ran on the CPU: on the meta device forward() fails ({result.error.bare})")  # type: ignore[attr-defined]
            result, model = on_cpu, cpu
    _account(result, model)
    result.network.notes[:0] = notes
    return result


def _build_on_cpu(factory: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return build_model(factory, args, kwargs, "cpu")
    except CnnopsError:
        raise
    except Exception as exc:
        raise InputError(f"building the model fails: {type(exc).__name__}: {_short(exc)}") from None


def _trace(model: Any, input_shape: Shape, device: str) -> ModelTrace:
    from cnnops.engines.torch_fx import FxReader
    from cnnops.engines.torch_hooks import HookReader

    try:
        return FxReader(model, input_shape, device).read()
    except _FxFailed as exc:
        result = HookReader(model, input_shape, device).read()
        if result.error is None:  # (when forward fails, the failure says what matters)
                result.network.notes.append(f"traced by forward hooks on its layers: torch.fx cannot trace it ({exc}); "
                                        "the code between layers shows as measured rows")  # fmt: skip
        return result


def _account(result: ModelTrace, model: Any) -> None:
    """Say where the model's ``sum(p.numel())`` and the table's total part."""
    missing = [(name, p) for name, p in model.named_parameters() if id(p) not in result.claimed]
    if missing and result.error is None:
        numel = sum(p.numel() for _, p in missing)
        owners = sorted({name.rsplit(".", 1)[0] if "." in name else name for name, _ in missing})
        shown = ", ".join(owners[:6]) + (", …" if len(owners) > 6 else "")
        result.network.notes.append(f"{numel:,} of the model's {sum(p.numel() for p in model.parameters()):,} "
                                    f"parameters are in no row: {shown} (never used by forward())")  # fmt: skip


__all__ = ["trace_model", "parse_model_spec", "ModelTrace"]
