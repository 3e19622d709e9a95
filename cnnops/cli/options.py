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
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
from cnnops.text import echo

#: the largest whole number a stage takes (cnnops.spec.literals.MAX_INT: not imported here, so that the
#: options do not load the parser; a test checks the two agree)
MAX_INT = 2**40


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
    "--seed", min=-(2**63), max=2**64 - 1,  # torch.manual_seed's range (cnnops.io.generators.SEED_MIN, SEED_MAX)
    help="torch.manual_seed for random inputs (randn:…, rand:…, randint:…, torch.randn(…)) and, separately, for "
    "PyTorch's default initialisation of weights not given: each starts its own stream from this seed. "
    "Any seed torch.manual_seed takes (a negative one counts as seed + 2**64, as in torch).",
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
    "output_format": (Annotated[OutputFormat | None, typer.Option(
        "--format", help="File format for --output-dir (default: json).", case_sensitive=False, show_default=False,
    )], None),  # fmt: skip
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
        "--animate", help="Write a GIF of the sliding window of a conv or pooling stage (or an unpool, or a "
        "transposed conv as a scatter), one frame per output cell; larger planes are cropped (--crop).",
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
    # --- explain one value (issue 14) ---
    "explain": (Annotated[str | None, typer.Option(
        "--explain", metavar="POS", help="Show the arithmetic behind one output value: POS is its index, e.g. 0,1 "
        "or 2,0,1 (channel first; leading zeros may be left out). In --json as an \"explain\" object.",
    )], None),  # fmt: skip
    "explain_stage": (Annotated[int | None, typer.Option(
        "--explain-stage", metavar="N", help="Which stage --explain looks at (default: the last conv, pool, unpool, "
        "linear or activation).",
    )], None),  # fmt: skip
    "crop": (Annotated[str | None, typer.Option(
        "--crop", metavar="ROW,COL,H,W", help="--animate: the input region drawn (START,LENGTH for 1-D); default: "
        "the whole plane up to 16×16, else its top-left 16×16.",
    )], None),  # fmt: skip
    "zoom": (Annotated[int, typer.Option(
        "--zoom", metavar="N", min=1, max=8, help="--animate: draw every pixel N×N, for larger frames and a readable font.",
    )], 1),  # fmt: skip
    "animate_all": (Annotated[bool, typer.Option(
        "--animate-all", help="--animate: one GIF of every stage in turn (conv → ReLU → pool), frame by frame.",
    )], False),  # fmt: skip
    "summary": (Annotated[bool, typer.Option(
        "--summary", help="Print the shape and formula tables only, no tensors (--quiet prints nothing).",
    )], False),  # fmt: skip
    "no_notes": (Annotated[bool, typer.Option(
        "--no-notes", help="Leave out the footnotes (MACs convention, float noise, default weights); without it "
        "they are printed once per command.",
    )], False),  # fmt: skip
    "max_memory": (Annotated[str | None, typer.Option(
        "--max-memory", metavar="SIZE",
        help="Refuse a run estimated (from the shapes, before anything is computed) to need more memory than "
        "this: 4G, 512M, 75% (of the memory free now). Default: half the memory free — the least of "
        "MemAvailable, a cgroup limit and ulimit -v. Tables keep every intermediate tensor; --quiet with "
        "--output, or --json, keeps only the result.",
    )], None),  # fmt: skip
}


def int_flags(params: list[inspect.Parameter]) -> dict[str, str]:
    """The whole-number options among ``params`` that become stage text: parameter name → its flag
    (``--groups``). An option with a range of its own (``--seed``, ``--zoom``) is checked by click."""
    flags = {}
    for param in params:
        if getattr(param.annotation, "__origin__", None) not in (int, int | None):
            continue
        for info in getattr(param.annotation, "__metadata__", ()):
            if isinstance(info, typer.models.OptionInfo) and info.max is None:
                decls = [d for d in (info.param_decls or ()) if d.startswith("--")]
                flags[param.name] = decls[0] if decls else "--" + param.name.replace("_", "-")
    return flags


def check_int_options(values: dict[str, Any], flags: dict[str, str]) -> None:
    """A whole number beyond MAX_INT (the largest a stage takes) is a usage error (exit 2), as a value
    that is not a number is; within it, the stage says what it accepts."""
    for name, flag in flags.items():
        value = values.get(name)
        if isinstance(value, int) and abs(value) > MAX_INT:
            bound = f"at most {MAX_INT:,}" if value > 0 else f"at least -{MAX_INT:,}"
            raise UsageError(f"{flag} {echo(str(value))} is out of range — {bound}")


@functools.cache
def _shared() -> tuple[list[inspect.Parameter], dict[str, str]]:
    """:data:`COMMON` as keyword-only parameters, and its whole-number flags: the same for every command."""
    shared = [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for key, (annotation, default) in COMMON.items()]  # fmt: skip
    return shared, int_flags(shared)


def data_command(name: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a data command: its own options plus :data:`COMMON`, gathered into ``opts``."""

    def decorator(func: Callable[..., None]) -> Callable[..., None]:
        # annotations are objects here (no ``from __future__ import annotations``): nothing to evaluate
        own = [p for p in inspect.signature(func).parameters.values() if p.name != "opts"]
        shared, shared_flags = _shared()
        flags = int_flags(own) | shared_flags

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            check_int_options(kwargs, flags)
            common = {key: kwargs.pop(key) for key in COMMON}
            common["scale"], common["cmap"] = common["scale"].value, common["cmap"].value
            common["max_memory"] = memory_size(common["max_memory"])
            return func(**kwargs, opts=DataOptions(**common))

        params = own + shared
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        app.command(name)(user_errors(wrapper))
        return func

    return decorator


def memory_size(text: str | None) -> int | None:
    """``--max-memory`` in bytes (None: the default), or a usage error."""
    if text is None:
        return None
    from cnnops.io.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--max-memory takes a size such as 4G, 512M or 75% — {exc}") from None


def size_literal(text: str | None, option: str, *, allow_none: bool = False) -> str | None:
    """``2`` → ``2``; ``2,3`` or ``2x3`` → ``(2, 3)`` (height, width)."""
    if text is None:
        return None
    parts = [p.strip() for p in re.split(r"[,x×]", text.strip().strip("()"))]
    word = r"-?\d+|None|none" if allow_none else r"-?\d+"
    if not parts or len(parts) > 2 or not all(re.fullmatch(word, p) for p in parts):
        example = "2 or 2,3" + (" (None keeps that size)" if allow_none else "")
        raise UsageError(f"{option} takes an integer or two separated by a comma, e.g. {example}; got '{echo(text)}'")
    for part in parts:
        digits = part.lstrip("-").lstrip("0")
        if part.lower() != "none" and (len(digits) > len(str(MAX_INT)) or int(digits or 0) > MAX_INT):
            bound = f"at least -{MAX_INT:,}" if part.startswith("-") else f"at most {MAX_INT:,}"
            raise UsageError(f"{option} {echo(part)} is out of range — {bound}")
    parts = ["None" if p.lower() == "none" else p for p in parts]
    return parts[0] if len(parts) == 1 else f"({parts[0]}, {parts[1]})"


def value_literal(text: str, option: str = "--weight") -> str:
    """A weight or bias option as stage-argument text: tensor text (JSON or Python, ``[[1., 0, -1.]]``,
    ``torch.tensor([...])``) as a nested list, a number, a bool, or a string (a kernel name, a path)."""
    stripped = text.strip()
    from cnnops.io.words import looks_inline

    if looks_inline(stripped):
        from cnnops.io.literal import tensor_value

        value = _named_nonfinite(tensor_value(stripped, option))
        if option == "--weight" and _has_nan(value):  # stage text has no NaN number: the weight reads the text
            return repr(stripped)
        return _stage_text(value, option)
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", stripped):
        return stripped
    if option == "--bias" and _named_nonfinite(stripped.strip('"')) != stripped.strip('"'):  # --bias Infinity, inf
        return _stage_text(_named_nonfinite(stripped.strip('"')), option)
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


def _named_nonfinite(value: Any) -> Any:
    """JSON's "NaN", "Infinity" and "-Infinity" (as cnnops writes them) as the floats they name, as an
    input reads them."""
    from cnnops.io.jsontext import NONFINITE_NAMES

    if isinstance(value, list):
        return [_named_nonfinite(v) for v in value]
    return NONFINITE_NAMES[value] if isinstance(value, str) and value in NONFINITE_NAMES else value


def _has_nan(value: Any) -> bool:
    import math

    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return isinstance(value, float) and math.isnan(value)
