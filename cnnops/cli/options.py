"""The options every data command shares, declared once (:data:`COMMON`) and added to each command by
:func:`data_command`, and option text turned into stage-argument text (:func:`size_literal`)."""

import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnops.choices import ColorMap, Device, Dims, Engine, OutputFormat, Scale
from cnnops.cli.batch import DataOptions
from cnnops.cli.common import app, user_errors
from cnnops.errors import UsageError
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS


def _complete_kernels(incomplete: str) -> list[str]:
    from cnnops.io.kernels import kernel_names

    return [name for name in kernel_names() if name.startswith(incomplete.lower())] + (
        ["random"] if "random".startswith(incomplete.lower()) else []
    )


def _complete_activations(incomplete: str) -> list[str]:
    from cnnops.spec.signatures import LAYERS

    names = [n for n, layer in LAYERS.items() if layer.build.__name__ == "_build_activation"]
    return [incomplete + n[len(incomplete):] for n in names if n.lower().startswith(incomplete.lower())]


# --- options every data command shares ----------------------------------------------------------
InputsArg = Annotated[list[str], typer.Argument(
    metavar="INPUT...",
    help="One or more .json, .npy or image files (shell globs work), '-' for stdin, a tensor in JSON or "
    "Python such as '[[1., 2.], [3., 4.]]' or 'torch.tensor([...])', or a generator such as randn:1x4x4, "
    "'torch.randn(1, 4, 4)', zeros:1x1x5x5, arange:4x4.",
)]  # fmt: skip
TupleOpt = str | None
SeedOpt = Annotated[int, typer.Option(
    "--seed", min=0, max=2**63 - 1,
    help="torch.manual_seed for random inputs (randn:…, rand:…, randint:…, torch.randn(…)) and, separately, for "
    "PyTorch's default initialisation of weights not given: each starts its own stream from this seed.",
)]  # fmt: skip
DimsOpt = Annotated[Dims, typer.Option(
    "--dims", help="1-D or 2-D layer; auto: 1-D for a 1-D input, else 2-D.", case_sensitive=False,
)]  # fmt: skip

COMMON: dict[str, tuple[Any, Any]] = {
    "seed": (SeedOpt, 0),
    "as_json": (Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")], False),
    "jsonl": (Annotated[bool, typer.Option(
        "--jsonl", help="One JSON document per input per line, streamed (for jq and friends).",
    )], False),  # fmt: skip
    "intermediates": (Annotated[bool, typer.Option(
        "--intermediates", help="With --json/--jsonl: every stage's data, weights and indices too.",
    )], False),  # fmt: skip
    "output": (Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the result to a .json or .npy file (atomically).",
    )], None),  # fmt: skip
    "output_dir": (Annotated[Path | None, typer.Option(
        "--output-dir", help="Write one result per input into this directory, named after the input.",
    )], None),  # fmt: skip
    "output_format": (Annotated[OutputFormat, typer.Option(
        "--format", help="File format for --output-dir.", case_sensitive=False,
    )], OutputFormat.json),  # fmt: skip
    "quiet": (Annotated[bool, typer.Option("--quiet", "-q", help="No tables (errors still go to stderr).")], False),
    "full": (Annotated[bool, typer.Option("--full", help="Show every value instead of summarising large tensors.")], False),
    "rgb": (Annotated[bool, typer.Option(
        "--rgb", help="Read images as 3 channels (3, H, W) instead of grayscale (1, H, W).",
    )], False),  # fmt: skip
    "engine": (Annotated[Engine, typer.Option(
        "--engine", case_sensitive=False,
        help="numpy (starts fast), torch (torch.nn.functional), or auto: NumPy unless the work is large.",
    )], Engine.auto),  # fmt: skip
    "device": (Annotated[Device | None, typer.Option(
        "--device", case_sensitive=False, help="Run the torch engine on this device (cpu, cuda, mps).",
    )], None),  # fmt: skip
    "save_maps": (Annotated[Path | None, typer.Option(
        "--save-maps", help="Write one PNG per stage (00-input.png, 01-conv2d.png, …) into this directory; "
        "DIR/<input>/ in a batch.",
    )], None),  # fmt: skip
    "animate": (Annotated[Path | None, typer.Option(
        "--animate", help="Write a GIF of the sliding window of a conv or pooling stage (or an unpool), "
        "one frame per output cell; planes up to 16×16.",
    )], None),  # fmt: skip
    "animate_stage": (Annotated[int | None, typer.Option(
        "--animate-stage", help="Which stage --animate draws (default: the first conv, pool or unpool).",
    )], None),  # fmt: skip
    "channel": (Annotated[int, typer.Option("--channel", min=0, help="The channel --animate draws.")], 0),
    "batch_item": (Annotated[int, typer.Option(
        "--batch-item", min=0, help="Which batch item --save-maps, --animate and --preview draw.",
    )], 0),  # fmt: skip
    "scale": (Annotated[Scale, typer.Option(
        "--scale", case_sensitive=False, help="--save-maps: scale each plane on its own, or one scale for all.",
    )], Scale.plane),  # fmt: skip
    "cmap": (Annotated[ColorMap, typer.Option(
        "--cmap", case_sensitive=False,
        help="--save-maps colours: signed (blue −, white 0, red +), gray, or auto (signed for conv output and "
        "negative values, gray otherwise).",
    )], ColorMap.auto),  # fmt: skip
    "preview": (Annotated[bool, typer.Option(
        "--preview", help="Also draw the feature maps in the terminal (half blocks, true colour where available).",
    )], False),  # fmt: skip
    "max_elements": (Annotated[int, typer.Option(
        "--max-elements", min=1, help="Refuse tensors with more elements than this (checked before allocating).",
    )], DEFAULT_MAX_ELEMENTS),  # fmt: skip
}


def data_command(name: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a data command: its own options plus :data:`COMMON`, gathered into ``opts``."""

    def decorator(func: Callable[..., None]) -> Callable[..., None]:
        # annotations are objects here (no ``from __future__ import annotations``): nothing to evaluate
        own = [p for p in inspect.signature(func).parameters.values() if p.name != "opts"]
        shared = [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                  for key, (annotation, default) in COMMON.items()]  # fmt: skip

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            common = {key: kwargs.pop(key) for key in COMMON}
            common["scale"], common["cmap"] = common["scale"].value, common["cmap"].value
            return func(**kwargs, opts=DataOptions(**common))

        params = own + shared
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        app.command(name)(user_errors(wrapper))
        return func

    return decorator


def size_literal(text: str | None, option: str, *, allow_none: bool = False) -> str | None:
    """``2`` → ``2``; ``2,3`` or ``2x3`` → ``(2, 3)`` (height, width)."""
    if text is None:
        return None
    parts = [p.strip() for p in re.split(r"[,x×]", text.strip().strip("()"))]
    word = r"-?\d+|None|none" if allow_none else r"-?\d+"
    if not parts or len(parts) > 2 or not all(re.fullmatch(word, p) for p in parts):
        example = "2 or 2,3" + (" (None keeps that size)" if allow_none else "")
        raise UsageError(f"{option} takes an integer or two separated by a comma, e.g. {example}; got '{text}'")
    parts = ["None" if p.lower() == "none" else p for p in parts]
    return parts[0] if len(parts) == 1 else f"({parts[0]}, {parts[1]})"


def value_literal(text: str, option: str = "--weight") -> str:
    """A weight or bias option as stage-argument text: tensor text (JSON or Python, ``[[1., 0, -1.]]``,
    ``torch.tensor([...])``) as a nested list, a number, a bool, or a string (a kernel name, a path)."""
    stripped = text.strip()
    from cnnops.io.literal import looks_inline

    if looks_inline(stripped):
        from cnnops.io.literal import tensor_value

        value = tensor_value(stripped, option)
        if option == "--weight" and _has_nan(value):  # stage text has no NaN number: the weight reads the text
            return repr(stripped)
        return _stage_text(value, option)
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", stripped):
        return stripped
    if stripped.lower() in ("true", "false"):
        return stripped.capitalize()
    return repr(stripped)


def _stage_text(value: Any, option: str) -> str:
    """Numbers as stage text the parser reads back exactly (±inf as ±1e999; NaN has no stage text)."""
    import math

    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        raise UsageError(f"{option} takes numbers, such as '[[1., 0., -1.]]', not a {{'data': …}} document")
    if isinstance(value, list):
        return "[" + ", ".join(_stage_text(v, option) for v in value) + "]"
    if isinstance(value, float) and math.isinf(value):
        return "1e999" if value > 0 else "-1e999"  # the float literal that reads as ±inf
    if isinstance(value, float) and math.isnan(value):
        raise UsageError(f"{option} cannot be NaN: a stage argument has no NaN number — give NaN in the input, "
                         "or in a --weight")
    return repr(value)


def _has_nan(value: Any) -> bool:
    import math

    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return isinstance(value, float) and math.isnan(value)
