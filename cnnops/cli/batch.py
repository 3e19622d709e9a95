"""The data commands' options and output: plan, then act.

Before the first input is read, every option is checked and every output is planned — one name per
input for ``--output-dir``, ``--save-maps`` and ``--animate`` (mirroring the inputs' folders, never two
inputs on one name, never a name that is an input). Before an input is computed, its shapes are
checked against the picture options and its memory against the budget, and only the tensors someone
will see are kept. Then it runs, and its files, pictures, tables or JSON are written.

A batch goes on past a failed input, reports each failure on stderr (above the progress bar) and exits
1 at the end; a failed input leaves no new file (an output it replaced stays replaced).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnops.choices import Device, Engine, OutputFormat
from cnnops.cli.common import StdoutError, option_text, stdout_console
from cnnops.errors import CnnopsError, InputError, UsageError
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
from cnnops.records import record
from cnnops.run.runner import Outcome, RunSettings, StagesFor, read_indices, run_inputs
from cnnops.text import echo

if TYPE_CHECKING:
    from cnnops.io.read import TensorInput
    from cnnops.model.trace import Trace
    from cnnops.run.pipeline import Needs, RunResult

#: bytes beside the kept tensors for writing a result: a summary's rendering, and per number of the
#: largest block of JSON text (jsontext.BLOCK_ELEMENTS) its text and the Python numbers it passes
#: through (measured about 180)
OUTPUT_RESERVE, JSON_BLOCK_BYTES = 8 * 2**20, 256
NPY_CHUNK = 16 * 2**20  # numpy writes a .npy file 16 MiB at a time
#: bytes a drawn value costs in a --full table (rich's cells and segments)
FULL_TABLE_BYTES = 1024
#: bytes a picture costs per number of its largest tensor (planes as float64, colours computed in
#: float64 RGB, upscaled tiles; measured about 110), and at most for its canvas (2**24 pixels, RGB, encoded)
PICTURE_BYTES, CANVAS_BYTES = 128, 4 * 3 * 2**24


@record
class DataOptions:
    """Every option the data commands share, gathered once by the CLI."""

    as_json: bool = False
    jsonl: bool = False
    intermediates: bool = False
    output: Path | None = None
    output_dir: Path | None = None
    output_format: OutputFormat | None = None  # --output-dir's files: json unless given
    quiet: bool = False
    full: bool = False
    seed: int = 0
    rgb: bool = False
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_memory: int | None = None
    indices_file: Path | str | None = None  # a file, or inline numbers
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
    # --- explain one value (issue 14) ---
    explain: str | None = None
    explain_stage: int | None = None
    no_notes: bool = False
    summary: bool = False
    crop: str | None = None
    zoom: int = 1
    animate_all: bool = False
    #: other files the command reads (a stage file, weights, indices): outputs never replace them
    read_files: list[str] = field(default_factory=list)

    @property
    def tables(self) -> bool:
        return not (self.quiet or self.as_json or self.jsonl)


class BatchError(CnnopsError):
    """Some inputs of a batch failed (each was already reported)."""


@record
class Destinations:
    """Where one input's results go (None: not asked for), and its name in a batch."""

    output: str | None = None
    maps: str | None = None
    animation: str | None = None
    key: str | None = None


# ---------------------------------------------------------------------------------------------- plan


def check_options(inputs: list[str], opts: DataOptions) -> None:
    from cnnops.io.write import file_suffix

    if len(inputs) > 1 and opts.output is not None:
        raise UsageError("--output names one file; with several inputs use --output-dir DIR")
    if len(inputs) > 1 and opts.as_json:
        raise UsageError("--json prints one document; with several inputs use --jsonl (one document per line)")
    if opts.as_json and opts.jsonl:
        raise UsageError("choose one of --json and --jsonl")
    if opts.output is not None and opts.output_dir is not None:
        raise UsageError("choose one of --output and --output-dir")
    if opts.output_format is not None and opts.output_dir is None:
        raise UsageError("--format chooses the format of --output-dir's files; --output takes it from the file "
                         "name's extension (.json or .npy)")
    if opts.summary and (opts.as_json or opts.jsonl or opts.full or opts.quiet):
        other = "--json" if opts.as_json else "--jsonl" if opts.jsonl else "--full" if opts.full else "--quiet"
        raise UsageError(f"--summary prints the tables without tensors and {other} does otherwise — choose one")
    if inputs.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    if opts.animate is None and (opts.crop is not None or opts.zoom != 1 or opts.animate_all):
        raise UsageError("--crop, --zoom and --animate-all shape the --animate GIF — add --animate FILE.gif")
    if opts.explain_stage is not None and opts.explain is None:
        raise UsageError("--explain-stage picks the stage --explain looks at — add --explain POS")
    if opts.animate_all and opts.animate_stage is not None:
        raise UsageError("--animate-all draws every stage — drop --animate-stage")
    if opts.animate is not None and file_suffix(str(opts.animate)) != ".gif":
        raise UsageError(f"--animate writes a GIF: give a file name ending in .gif, such as "
                         f"'{echo(os.path.join(os.path.dirname(str(opts.animate)), 'animation.gif'))}'")  # fmt: skip
    if opts.animate_stage is not None and opts.animate is None:
        raise UsageError("--animate-stage chooses the stage --animate draws: give --animate FILE.gif too")
    if opts.crop is not None:
        crop_option(opts.crop)  # the same for every input: refused once, not once per input
    if (opts.as_json or opts.jsonl or not opts.quiet) and sys.stdout is None:
        raise StdoutError("stdout is closed, so the result cannot be printed — give --output FILE, or --quiet")


def plan_outputs(inputs: list[str], opts: DataOptions) -> list[Destinations]:
    """Every input's output file, feature-map folder and animation, checked before anything is written:
    each one writable, none on an input, no two inputs on one name."""
    from cnnops.io.write import check_output_path, check_writable, same_directories

    batch = len(inputs) > 1
    if opts.output_dir is not None and os.path.lexists(opts.output_dir) and not os.path.isdir(opts.output_dir):
        raise InputError(f"output directory '{echo(str(opts.output_dir))}' is a file — give a directory")
    keys = input_keys(inputs)
    plans = []
    for key in keys:
        where = Destinations(key=key if batch else None)
        if opts.output_dir is not None:
            where.output = os.path.join(opts.output_dir, f"{key}.{(opts.output_format or OutputFormat.json).value}")
        elif opts.output is not None:
            where.output = str(opts.output)
        if opts.save_maps is not None:
            where.maps = os.path.join(opts.save_maps, key) if batch else str(opts.save_maps)
        if opts.animate is not None:
            animate = str(opts.animate)
            if batch:  # anim.gif → anim-<input>.gif
                stem = os.path.basename(animate)[: -len(".gif")]
                name = f"{stem}-{key.replace(os.sep, '-')}" if stem else key.replace(os.sep, "-")
                animate = os.path.join(os.path.dirname(animate), name + ".gif")
            where.animation = animate
        plans.append(where)
    _refuse_collisions(inputs, plans)
    _refuse_overwriting(inputs + opts.read_files, plans, opts)
    with same_directories():  # a batch's outputs share a few directories: each is checked once
        for where in plans:
            if where.output is not None:
                check_output_path(where.output, parents=opts.output_dir is not None)
            if where.animation is not None:
                check_writable(where.animation, parents=False)
            if where.maps is not None:
                from cnnops.pictures.maps import check_maps_directory

                check_maps_directory(where.maps)
    return plans


def input_keys(inputs: list[str]) -> list[str]:
    """Each input's name for its outputs: its path from the folder all file inputs share, without the
    suffix (``a/x`` for ``data/a/x.json`` beside ``data/b/x.json``); ``input-N`` for stdin and inline text;
    a generator's text for a generator (``randn_2x2``)."""
    files = {n: os.path.abspath(arg) for n, arg in enumerate(inputs) if not _unnamed(arg)}
    try:
        common = os.path.commonpath([os.path.dirname(path) for path in files.values()]) if files else ""
    except ValueError:  # paths on different drives
        common = ""
    from cnnops.io.words import looks_like_generator

    keys = []
    under = common if common.endswith(os.sep) else common + os.sep  # both absolute and normalised
    for n in range(len(inputs)):
        if n not in files:  # a generator is named after its text: randn:2x2 → randn_2x2
            text = inputs[n].strip()
            keys.append(re.sub(r"[^\w.-]", "_", text)[:60] if looks_like_generator(text) else f"input-{n + 1}")
            continue
        if not common:
            relative = os.path.basename(files[n])
        elif files[n].startswith(under):
            relative = files[n][len(under) :]  # what relpath gives, without its two abspath calls per input
        else:
            relative = os.path.relpath(files[n], common)
        stem = os.path.splitext(relative)[0]
        keys.append(stem if stem and not stem.endswith(os.sep) else f"input-{n + 1}")
    return keys


def _unnamed(arg: str) -> bool:
    """stdin, inline tensor text or a generator: an input with no file name of its own."""
    from cnnops.io.words import looks_inline, looks_like_generator

    text = arg.strip()
    return text == "-" or looks_like_generator(text) or (looks_inline(text) and not os.path.exists(text))


def _refuse_collisions(inputs: list[str], plans: list[Destinations]) -> None:
    """No two outputs on one file (through a symbolic link either), and no output inside another's place
    (``out/a.npy`` for one input, ``out/a.npy/x.npy`` for another)."""
    claimed: dict[str, tuple[int, str, str]] = {}
    real_dirs: dict[str, str] = {}  # a batch's outputs share a few directories: each is resolved once
    for n, where in enumerate(plans):
        for what, path in (("--output-dir", where.output), ("--save-maps", where.maps), ("--animate", where.animation)):
            if path is None:
                continue
            place = _place(path, real_dirs)
            if place in claimed:
                other, _, first = claimed[place]
                if other == n:
                    raise UsageError(f"two outputs of '{echo(inputs[n])}' would both be '{echo(path)}' — choose "
                                     "different names")  # fmt: skip
                if inputs[other] == inputs[n] or (not _unnamed(inputs[n]) and _identity(inputs[other]) == _identity(inputs[n])):
                    raise UsageError(f"input '{echo(inputs[n])}' is given twice — give each input once")
                linked = f" (as '{echo(first)}', through a symbolic link)" if first != path else ""
                raise UsageError(
                    f"inputs '{echo(inputs[other])}' and '{echo(inputs[n])}' would both write '{echo(path)}'{linked} "
                    f"({what}) — rename one of them, or run them separately"
                )
            claimed[place] = (n, what, path)
    for place, (n, what, _) in claimed.items():
        parent = os.path.dirname(place)
        while parent and parent != os.path.dirname(parent):  # up to the root
            if parent in claimed and claimed[parent][0] != n:
                other = claimed[parent][0]
                raise UsageError(
                    f"inputs '{echo(inputs[other])}' and '{echo(inputs[n])}' would need '{echo(parent)}' as a file "
                    f"and as a folder ({what}) — rename one of them, or run them separately"
                )  # fmt: skip
            parent = os.path.dirname(parent)


def _place(path: str, real_dirs: dict[str, str]) -> str:
    """Where ``path`` really is: in its folder with symbolic links resolved (an output that is itself a
    link is replaced by the new file, not written through)."""
    directory, name = os.path.split(os.path.abspath(path))
    real = real_dirs.get(directory)
    if real is None:
        real = real_dirs[directory] = os.path.realpath(directory)
    return os.path.normcase(os.path.join(real, name))


def _refuse_overwriting(read: list[str], plans: list[Destinations], opts: DataOptions) -> None:
    """No output may replace a file the command reads: an input, a stage file, weights, indices. Each
    file is looked at once (its device and inode), so a batch of thousands is checked in linear time."""
    files: list[str] = []
    sources: dict[tuple[int, int] | str, str] = {}
    for path in read:  # each file's identity from the one stat that says it is a file
        if not _unnamed(path):
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            if stat.S_ISREG(st.st_mode):
                files.append(path)
                sources.setdefault((st.st_dev, st.st_ino), path)
    map_dirs: dict[tuple[int, int] | str, str] = {}
    if any(where.maps is not None for where in plans):  # the picture code only when maps are saved
        from cnnops.pictures.maps import MAP_FILE

        map_dirs = _identities([os.path.dirname(path) or "." for path in files
                                if MAP_FILE.match(os.path.basename(path))])  # fmt: skip
    for where in plans:
        for what, target in (("--output", where.output), ("--animate", where.animation)):
            source = sources.get(_identity(target)) if target is not None else None
            if source is not None:
                assert target is not None
                if opts.output_dir is not None and what == "--output":
                    what = "--output-dir"
                raise UsageError(
                    f"{what} would write '{echo(target)}' over the input '{echo(source)}' — choose another "
                    f"{'directory' if what == '--output-dir' else 'name'}"
                )
        if where.maps is not None and map_dirs:
            folder = map_dirs.get(_identity(where.maps))
            if folder is not None:
                source = next(f for f in files if MAP_FILE.match(os.path.basename(f)) and
                              _identity(os.path.dirname(f) or ".") == _identity(where.maps))  # fmt: skip
                raise UsageError(
                    f"--save-maps would replace the input '{echo(source)}' with a feature map — choose another "
                    "directory"
                )


def _identity(path: str) -> tuple[int, int] | str:
    """What makes two names one file: its device and inode when it exists, else its normalised path."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return os.path.normcase(os.path.abspath(path))


def _identities(paths: list[str]) -> dict[tuple[int, int] | str, str]:
    """Each file's identity, to its first name."""
    found: dict[tuple[int, int] | str, str] = {}
    for path in paths:
        found.setdefault(_identity(path), path)
    return found


def run_needs(opts: DataOptions) -> Callable[[Trace], Needs]:
    """For each input, once its shapes are known: refuse what the picture options cannot draw, and say
    which tensors to keep (only what will be shown) and what else showing them costs."""
    import math

    from cnnops.run.pipeline import Needs

    json_file = opts.output is not None and str(opts.output).lower().endswith(".json")
    json_file = json_file or (opts.output_dir is not None and opts.output_format in (None, OutputFormat.json))
    every = opts.tables or opts.save_maps is not None or opts.preview or (
        opts.intermediates and (opts.as_json or opts.jsonl or json_file)
    )  # fmt: skip

    def needs(trace: Trace) -> Needs:
        from cnnops.io.jsontext import BLOCK_ELEMENTS

        # --explain reads the explained stage's inputs, weights and output: a run explained keeps them all
        keep: set[int] | None = None if every or opts.explain is not None else set()
        sizes = [math.prod(trace.input_shape)] + [math.prod(row.output_shape) for row in trace.rows]
        reserve = OUTPUT_RESERVE + JSON_BLOCK_BYTES * min(max(sizes), BLOCK_ELEMENTS) + min(4 * max(sizes), NPY_CHUNK)
        if opts.tables and opts.full:
            from cnnops.render.run_view import FULL_LIMIT

            largest = max(sizes)
            if largest > FULL_LIMIT:
                raise InputError(
                    f"--full draws at most {FULL_LIMIT:,} values per tensor and this run has one of {largest:,} — "
                    "drop --full for a summary, or save every value with --output FILE.npy"
                )
            reserve += FULL_TABLE_BYTES * sum(sizes)
        if opts.animate is not None:
            from cnnops.pictures.animation import check_animation

            crop = crop_option(opts.crop)
            if opts.animate_all:  # every stage is drawn (each with the channel it has nearest --channel)
                for row in trace.rows:
                    if row.stage.animatable:
                        check_animation(trace, row.index, batch_item=opts.batch_item, crop=crop)
                keep = None
            else:
                stage = animated_stage(trace, opts.animate_stage)
                check_animation(trace, stage, batch_item=opts.batch_item, channel=opts.channel, crop=crop)
                if keep is not None:
                    row = trace.rows[stage - 1]
                    keep |= set(row.inputs) | {stage} | ({row.unpool_source} if row.unpool_source else set())
        if opts.save_maps is not None or opts.preview:
            from cnnops.pictures.planes import batch_size, check_batch_item, map_layout

            check_batch_item(opts.batch_item, batch_size(map_layout(trace)))
            reserve += PICTURE_BYTES * max(sizes) + min(CANVAS_BYTES, 64 * max(sizes))
        return Needs(keep, reserve, wanted_indices(trace))

    def wanted_indices(trace: Trace) -> set[int] | None:
        """The max pools whose indices the outputs read: a JSON document the result's, --intermediates and
        --explain every one, an animation its stage's, a table those it shows (``return_indices=True``);
        a table finds a max pool's winners for the cells it shows (an adaptive max pool's from its
        indices). Nobody else's are computed."""
        if opts.explain is not None or opts.animate_all or opts.intermediates:
            return None
        rows = trace.rows
        wanted = {rows[-1].index} if rows and (opts.as_json or opts.jsonl or json_file) else set()
        if opts.animate is not None and rows:
            wanted.add(animated_stage(trace, opts.animate_stage))
        if opts.tables:  # an adaptive max pool's winners, and the indices a pool with return_indices=True shows
            wanted |= {row.index for row in rows if getattr(row.stage, "return_indices", False)
                       or (row.stage.kind == "adaptive_pool" and getattr(row.stage, "mode", "") == "max")}  # fmt: skip
        return wanted

    return needs


def animated_stage(trace: Trace, requested: int | None) -> int:
    """The stage to animate: the one asked for, else the first conv, pooling or unpooling stage."""
    rows = trace.rows
    if requested is not None:
        if not 1 <= requested <= len(rows):
            raise UsageError(f"--animate-stage {requested} is not a stage: give 1 to {len(rows)}")
        return requested
    for row in rows:
        if row.stage.animatable:
            return row.index
    raise InputError("--animate draws a conv, pooling or unpooling stage, and this run has none")


# ---------------------------------------------------------------------------------------------- act


def process(inputs: list[str], stages_for: StagesFor, opts: DataOptions, emit: Callable[..., None]) -> None:
    """Run every input; a single input's error is raised, a batch reports each and fails at the end.
    Every option and output target is checked before the first input is read."""
    from cnnops.io.write import defer, deferred_sync

    check_options(inputs, opts)
    if opts.indices_file is not None:
        opts.read_files.append(str(opts.indices_file))
    plans = plan_outputs(inputs, opts)
    from cnnops.run.pipeline import check_device

    check_device(opts.engine.value, opts.device.value if opts.device else None)  # once, not once per input
    indices = read_indices(str(opts.indices_file)) if opts.indices_file is not None else None
    settings = RunSettings(seed=opts.seed, engine=opts.engine.value, device=opts.device.value if opts.device else None,
                           rgb=opts.rgb, max_elements=opts.max_elements, max_memory=opts.max_memory,
                           needs=run_needs(opts))  # fmt: skip
    failures: list[tuple[str, CnnopsError]] = []
    workers = batch_workers(inputs, opts)
    finish, drop = None, False
    if workers > 1 and opts.explain is None:
        # the workers write each result's files themselves; only what is printed comes back
        def finish(outcome: Outcome) -> None:
            assert outcome.result is not None
            save_files(outcome.result, opts, plans[outcome.position - 1])

        drop = opts.quiet and not (opts.as_json or opts.jsonl)
    # a batch's files reach the disk with one sync at the end; a single output is synced as it is written
    with progress_bar(len(inputs)) as bar, deferred_sync() if len(inputs) > 1 else nullcontext():
        for outcome in run_inputs(inputs, stages_for, settings, indices=indices, workers=workers, finish=finish,
                                  drop=drop):  # fmt: skip
            defer(outcome.written)
            arg, error = inputs[outcome.position - 1], outcome.error
            if error is None and outcome.result is not None:
                try:
                    emit(outcome.result, outcome.tensor, plans[outcome.position - 1], saved=outcome.finished)
                except StdoutError:
                    raise  # nothing more can be printed
                except CnnopsError as exc:
                    error = exc
            del outcome  # let go of this result before the next input is read
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
    if len(inputs) < 8 or opts.engine.value == "torch" or opts.device is not None or opts.preview:
        return 1
    try:
        small = all(os.path.getsize(arg) <= 4 << 20 for arg in inputs)
    except (OSError, ValueError):  # stdin, inline tensors, a missing file: read them in order
        return 1
    return min(os.cpu_count() or 1, 8) if small else 1


def _short(arg: str) -> str:
    text = echo(" ".join(arg.split()))
    return text if len(text) <= 40 else "…" + text[-39:]


def report_failure(arg: str, exc: CnnopsError, console: Any = None) -> None:
    """One ``Error: …`` line for a failed batch input (above the progress bar, when there is one)."""
    from cnnops.cli.common import print_error

    message = exc.worded(option_text)
    shown = echo(arg)
    print_error(message if shown in message else f"{_short(arg)}: {message}", console)


class progress_bar:
    """A rich progress bar on stderr for batches, only when stderr is a terminal. ``advance()`` moves it;
    ``console`` prints above it (None when there is no bar)."""

    def __init__(self, total: int):
        self.total = total
        self.progress: Any = None
        self.console: Any = None
        self.task: Any = None

    def __enter__(self) -> progress_bar:
        if self.total < 2 or sys.stderr is None or not sys.stderr.isatty():
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


def write_pictures(result: RunResult, opts: DataOptions, where: Destinations) -> None:
    """--save-maps (DIR, or DIR/<input>/ in a batch) and --animate (FILE, or FILE-<input>.gif)."""
    if where.maps is None and where.animation is None:
        return
    from cnnops.choices import ColorMap, Scale

    if where.maps is not None:
        from cnnops.pictures.maps import save_maps

        save_maps(result, where.maps, batch_item=opts.batch_item, scale=Scale(opts.scale), cmap=ColorMap(opts.cmap))
    if where.animation is not None:
        crop = crop_option(opts.crop)
        if opts.animate_all:
            from cnnops.pictures.animation import animate_chain

            animate_chain(result, where.animation, batch_item=opts.batch_item, channel=opts.channel,
                          indices=result.input_indices, crop=crop, zoom=opts.zoom)  # fmt: skip
        else:
            from cnnops.pictures.animation import animate

            animate(result, animated_stage(result.trace, opts.animate_stage), where.animation,
                    batch_item=opts.batch_item, channel=opts.channel, indices=result.input_indices, crop=crop,
                    zoom=opts.zoom)  # fmt: skip


def crop_option(text: str | None) -> Any:
    """``--crop 0,0,16,16`` as the animation's Crop (None: its default)."""
    if text is None:
        return None
    import re

    from cnnops.pictures.animation import parse_crop

    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise UsageError(f"--crop takes ROW,COL,HEIGHT,WIDTH (or START,LENGTH for 1-D) as integers, got '{text}'")
    return parse_crop(tuple(int(p) for p in parts))


def save_files(result: RunResult, opts: DataOptions, where: Destinations,
               document: Callable[[], dict[str, Any]] | None = None) -> None:
    """One input's files: its output (``document`` gives a .json output's document; by default the
    result's own) and its pictures."""
    from cnnops.io import write

    created = None  # the output file this call made where there was none: removed if the pictures fail
    if where.output is not None:
        doc = None
        if where.output.lower().endswith(".json"):
            doc = document() if document is not None else result.document(intermediates=opts.intermediates)
        existed = os.path.lexists(where.output)
        write.write_output(where.output, result.output, indices=result.output_indices, doc=doc,
                           parents=opts.output_dir is not None)  # fmt: skip
        created = None if existed else where.output
    try:
        write_pictures(result, opts, where)
    except BaseException:
        if created is not None:
            with suppress(OSError):
                os.unlink(created)
        raise


def emit_result(opts: DataOptions, note_for: Callable[[TensorInput], str | None] | None = None) -> Callable[..., None]:
    """The per-input output step: write files, then print the tables, the JSON or a JSON line; ``note_for``
    gives a note for the tables' header (which layer a command chose for this input)."""
    from cnnops.cli.common import emit_document, plain_output

    noted: list[bool] = []  # the footnotes go with the first table of a command only
    position = None
    if opts.explain is not None:
        from cnnops.run.explain import parse_position

        position = parse_position(opts.explain)

    def emit(result: RunResult, tensor: TensorInput, where: Destinations, saved: bool = False) -> None:
        explanation = None
        if position is not None:
            from cnnops.run.explain import explain

            explanation = explain(result, position, opts.explain_stage)

        def document() -> dict[str, Any]:
            doc = result.document(intermediates=opts.intermediates)
            if explanation is not None:
                doc["explain"] = explanation.as_dict()
            return doc

        if not saved:
            save_files(result, opts, where, document)
        if opts.as_json or opts.jsonl:
            emit_document(document())
            return
        if opts.quiet:
            return
        console = stdout_console()
        if where.key is not None:
            from rich.text import Text

            if plain_output(console):
                console.print(Text(f"=== input {tensor.source} ==="))
            else:
                console.rule(Text(f"input {tensor.source}"))
        notes = not opts.no_notes and not noted
        noted.append(True)
        note = note_for(tensor) if note_for is not None else None
        from cnnops.render.plain import print_table
        from cnnops.render.run_view import run_group

        print_table(console, run_group(result, source=tensor.source, plain=plain_output(console), full=opts.full,
                                       notes=notes, tensors=not opts.summary, header_notes=[note] if note else []))  # fmt: skip
        if explanation is not None:
            from cnnops.render.explain_view import explain_group

            console.print(explain_group(explanation, plain=plain_output(console)))
        if opts.preview:
            from cnnops.pictures.preview import preview

            console.print(preview(result, batch_item=opts.batch_item))

    return emit
