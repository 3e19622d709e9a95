"""The data commands' options and output: every input run through the library's runner, then its
tables printed, its JSON streamed, its files and pictures written; a batch goes on past a failed input,
reports each failure on stderr (above the progress bar) and exits 1 at the end."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnops.choices import Device, Engine, OutputFormat
from cnnops.cli.common import option_text
from cnnops.errors import CnnopsError, InputError, UsageError
from cnnops.io.nested import DEFAULT_MAX_ELEMENTS
from cnnops.run.runner import RunSettings, StagesFor, output_names, read_indices, run_inputs

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import RunResult


@dataclass
class DataOptions:
    """Every option the data commands share, gathered once by the CLI."""

    as_json: bool = False
    jsonl: bool = False
    intermediates: bool = False
    output: Path | None = None
    output_dir: Path | None = None
    output_format: OutputFormat = OutputFormat.json
    quiet: bool = False
    full: bool = False
    seed: int = 0
    rgb: bool = False
    max_elements: int = DEFAULT_MAX_ELEMENTS
    indices_file: Path | None = None
    engine: Engine = Engine.auto
    device: Device | None = None
    save_maps: Path | None = None
    animate: Path | None = None
    animate_stage: int | None = None
    channel: int = 0
    batch_item: int = 0
    scale: str = "plane"
    cmap: str = "auto"
    preview: bool = False


class BatchError(CnnopsError):
    """Some inputs of a batch failed (each was already reported)."""




def check_options(inputs: list[str], opts: DataOptions) -> None:
    if len(inputs) > 1 and opts.output is not None:
        raise UsageError("--output names one file; with several inputs use --output-dir DIR")
    if len(inputs) > 1 and opts.as_json:
        raise UsageError("--json prints one document; with several inputs use --jsonl (one document per line)")
    if opts.as_json and opts.jsonl:
        raise UsageError("choose one of --json and --jsonl")
    if opts.output is not None and opts.output_dir is not None:
        raise UsageError("choose one of --output and --output-dir")
    if inputs.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    if opts.animate is not None and opts.animate.suffix.lower() != ".gif":
        raise UsageError(f"--animate writes a GIF: give a file name ending in .gif, not '{opts.animate}'")


def process(inputs: list[str], stages_for: StagesFor, opts: DataOptions, emit: Callable[..., None]) -> None:
    """Run every input; a single input's error is raised, a batch reports each and fails at the end.
    Every option and output target is checked before the first input is read."""
    from cnnops.io.write import check_output_path, check_writable, deferred_sync

    check_options(inputs, opts)
    if opts.output is not None:
        check_output_path(str(opts.output))
    if opts.animate is not None:
        check_writable(str(opts.animate))
    if opts.save_maps is not None:
        prepare_directory(opts.save_maps)
    targets: list[str | None] = [None] * len(inputs)
    if opts.output_dir is not None:
        prepare_directory(opts.output_dir)
        targets = [str(opts.output_dir / name) for name in output_names(inputs, opts.output_format.value)]
    elif opts.output is not None:
        targets = [str(opts.output)]
    indices = read_indices(str(opts.indices_file)) if opts.indices_file is not None else None
    stems: list[str | None] = [None] * len(inputs)
    if len(inputs) > 1:
        stems = [Path(name).stem for name in output_names(inputs, "x")]
    settings = RunSettings(seed=opts.seed, engine=opts.engine.value, device=opts.device.value if opts.device else None,
                           rgb=opts.rgb, max_elements=opts.max_elements, **consumed(opts))  # fmt: skip
    failures: list[tuple[str, CnnopsError]] = []
    # a batch's files reach the disk with one sync at the end; a single output is synced as it is written
    with progress_bar(len(inputs)) as bar, deferred_sync() if len(inputs) > 1 else nullcontext():
        for outcome in run_inputs(inputs, stages_for, settings, indices=indices, workers=batch_workers(inputs, opts)):
            arg, error = inputs[outcome.position - 1], outcome.error
            if error is None:
                try:
                    emit(outcome.result, outcome.tensor, targets[outcome.position - 1], stems[outcome.position - 1])
                except CnnopsError as exc:
                    error = exc
            if error is not None:
                if len(inputs) == 1:
                    raise error
                failures.append((arg, error))
                report_failure(arg, error, bar.console)
            bar.advance()
    if failures:
        names = ", ".join(_short(arg) for arg, _ in failures[:5]) + (" …" if len(failures) > 5 else "")
        raise BatchError(f"{len(failures)} of {len(inputs)} inputs failed: {names}")


def batch_workers(inputs: list[str], opts: DataOptions) -> int:
    """Processes for a batch: one per core for many small input files on the NumPy engine (results and
    messages still come in order), else one."""
    import os

    if len(inputs) < 8 or opts.engine.value == "torch" or opts.device is not None or opts.preview:
        return 1
    try:
        small = all(os.path.getsize(arg) <= 4 << 20 for arg in inputs)
    except (OSError, ValueError):  # stdin, inline JSON, a missing file: read them in order
        return 1
    return min(os.cpu_count() or 1, 8) if small else 1


def _short(arg: str) -> str:
    text = " ".join(arg.split())
    return text if len(text) <= 40 else "…" + text[-39:]


def prepare_directory(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise InputError(f"output directory '{path}' is a file — give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory '{path}': {exc.strerror}") from None


def report_failure(arg: str, exc: CnnopsError, console: Any = None) -> None:
    """One ``Error: …`` line for a failed batch input (above the progress bar, when there is one)."""
    from rich.markup import escape

    from cnnops.cli.common import stderr_console

    message = exc.worded(option_text)
    text = message if arg in message else f"{_short(arg)}: {message}"
    (console or stderr_console()).print(f"[bold red]Error:[/] {escape(text)}", soft_wrap=True)


class progress_bar:
    """A rich progress bar on stderr for batches, only when stderr is a terminal. ``advance()`` moves it;
    ``console`` prints above it (None when there is no bar)."""

    def __init__(self, total: int):
        self.total = total
        self.progress: Any = None
        self.console: Any = None
        self.task: Any = None

    def __enter__(self) -> progress_bar:
        import sys

        if self.total < 2 or not sys.stderr.isatty():
            return self
        from cnnops.cli.common import stderr_console

        console = stderr_console()
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                _rate_column(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True,
                redirect_stdout=False, redirect_stderr=False,  # results on stdout must reach the pipe untouched
            )  # fmt: skip
            self.progress.start()
            self.console = console
            self.task = self.progress.add_task("inputs", total=self.total)
        return self

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.1f} items/s" if task.speed else "", style="progress.data.speed")

    return RateColumn()


def write_pictures(result: RunResult, opts: DataOptions, stem: str | None) -> None:
    """--save-maps (DIR, or DIR/<stem>/ in a batch) and --animate (FILE, or FILE-<stem>.gif)."""
    if opts.save_maps is None and opts.animate is None:
        return
    from cnnops.choices import ColorMap, Scale
    from cnnops.pictures.animation import animate
    from cnnops.pictures.maps import save_maps

    if opts.save_maps is not None:
        directory = opts.save_maps / stem if stem else opts.save_maps
        save_maps(result, str(directory), batch_item=opts.batch_item, scale=Scale(opts.scale), cmap=ColorMap(opts.cmap))
    if opts.animate is not None:
        path = opts.animate if stem is None else opts.animate.with_name(f"{opts.animate.stem}-{stem}.gif")
        animate(result, animated_stage(result, opts.animate_stage), str(path), batch_item=opts.batch_item,
                    channel=opts.channel, indices=result.input_indices)  # fmt: skip


def animated_stage(result: RunResult, requested: int | None) -> int:
    """The stage to animate: the one asked for, else the first conv, pooling or unpooling stage."""
    rows = result.trace.rows
    if requested is not None:
        if not 1 <= requested <= len(rows):
            raise UsageError(f"--animate-stage {requested} is not a stage: give 1 to {len(rows)}")
        return requested
    for row in rows:
        if row.stage.animatable:
            return row.index
    raise InputError("--animate draws a conv, pooling or unpooling stage, and this run has none")


def consumed(opts: DataOptions) -> dict[str, Any]:
    """What this command's outputs read of each run (``keep`` and ``need_indices`` for the pipeline):
    --intermediates reads every tensor and index; a table, --save-maps or --preview every tensor (a
    table's max-pool winners are found for the cells it shows, adaptive ones from their indices); a JSON
    document the result and its indices; --animate its stage, the tensor that stage read and its
    indices; an .npy file only the result. Nothing else is kept or computed."""
    if opts.intermediates:
        return {}
    table = not opts.quiet and not opts.as_json and not opts.jsonl
    json_out = opts.as_json or opts.jsonl or (opts.output is not None and opts.output.suffix.lower() == ".json") or (
        opts.output_dir is not None and opts.output_format == OutputFormat.json
    )
    every = table or opts.save_maps is not None or opts.preview

    def animated(trace: Trace) -> int | None:
        rows, requested = trace.rows, opts.animate_stage
        if opts.animate is None:
            return None
        if requested is not None and 1 <= requested <= len(rows):
            return requested
        return next((row.index for row in rows if row.stage.animatable), None)

    def keep(trace: Trace) -> set[int]:
        index = animated(trace)  # the animation draws the stage, the tensor it read and its indices
        return set() if index is None else {index, index - 1, *trace.rows[index - 1].inputs}

    def need_indices(trace: Trace) -> set[int]:
        index = animated(trace)
        need = ({trace.rows[-1].index} if json_out and trace.rows else set()) | ({index} if index else set())
        if table:
            need |= {row.index for row in trace.rows
                     if row.stage.kind == "adaptive_pool" and getattr(row.stage, "mode", "") == "max"}  # fmt: skip
        return need

    return {"keep": None if every else keep, "need_indices": need_indices}


def emit_result(opts: DataOptions) -> Callable[..., None]:
    """The per-input output step: write files, then print the tables, the JSON or a JSON line.
    ``stem`` names a batch item's pictures (None for a single input)."""
    from cnnops.cli.common import emit_text, plain_output, stdout_console
    from cnnops.io import jsontext, write
    from cnnops.render.run_view import run_group

    def emit(result: RunResult, tensor: TensorInput, target: str | None, stem: str | None) -> None:
        batch = stem is not None
        wants_doc = opts.as_json or opts.jsonl or (target is not None and target.lower().endswith(".json"))
        doc = result.document(intermediates=opts.intermediates) if wants_doc else None
        if target is not None:
            write.write_output(target, result.output, indices=result.output_indices, doc=doc)
        write_pictures(result, opts, stem)
        if opts.as_json or opts.jsonl:
            emit_text(jsontext.dumps(doc))
            return
        if opts.quiet:
            return
        console = stdout_console()
        if batch:
            if plain_output(console):
                console.print(f"=== input {tensor.source} ===")
            else:
                console.rule(f"input {tensor.source}")
        console.print(run_group(result, source=tensor.source, plain=plain_output(console), full=opts.full))
        if opts.preview:
            from cnnops.pictures.preview import preview

            console.print(preview(result, batch_item=opts.batch_item))

    return emit
