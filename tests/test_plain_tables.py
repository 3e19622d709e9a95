"""Plain tables (pipes and files) are written without rich's machinery, character for character what
rich prints: random tables against rich itself, and the commands' own tables."""

import io
import os
import subprocess
import sys
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cnnops.render.plain import print_table, table_text

WORDS = ["a", "[0,1)", "[i]", "Conv2d(3,", "64,", "1×3×224×224", "⌊(224", "+", "2·2", "−", "5)/1⌋", "→", "stride=2)", "x" * 23,
         "", " ", "↳ rank rule", "1,234,567", "—", "é", "日本"]  # fmt: skip


@hs.composite
def cells(draw):
    text = " ".join(draw(hs.lists(hs.sampled_from(WORDS), max_size=6)))
    if draw(hs.booleans()):
        text += "\n" + " ".join(draw(hs.lists(hs.sampled_from(WORDS), max_size=3)))
    if draw(hs.integers(0, 4)) == 0:
        text = "  " + text + "  "
    return Text(text) if draw(hs.booleans()) else text


@hs.composite
def tables(draw):
    table = Table(
        title=draw(hs.none() | cells()), caption=draw(hs.none() | cells()), box=None,
        title_justify=draw(hs.sampled_from(["left", "center", "right"])),
        caption_justify=draw(hs.sampled_from(["left", "center", "right"])),
        show_header=draw(hs.booleans()), pad_edge=draw(hs.booleans()),
        padding=draw(hs.sampled_from([(0, 1), (0, 0), (0, 2, 0, 1)])), min_width=draw(hs.none() | hs.integers(0, 60)),
    )  # fmt: skip
    ncols = draw(hs.integers(1, 6))
    for _ in range(ncols):
        table.add_column(
            draw(cells()), justify=draw(hs.sampled_from(["left", "right", "center", "default"])),
            no_wrap=draw(hs.booleans()), overflow=draw(hs.sampled_from(["fold", "crop", "ellipsis"])),
            min_width=draw(hs.none() | hs.integers(0, 12)), max_width=draw(hs.none() | hs.integers(1, 30)),
            width=draw(hs.none() | hs.none() | hs.integers(1, 15)),
        )  # fmt: skip
    for _ in range(draw(hs.integers(0, 5))):
        table.add_row(*[draw(cells()) for _ in range(ncols)])
    return table


def rich_prints(table, width):
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    return console.file.getvalue()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(tables(), hs.integers(10, 130))
def test_plain_text_is_what_rich_prints(table, width):
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    text = table_text(table, console)
    if text is not None:
        expected = rich_prints(table, width)
        assert text == expected, describe(table)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(tables())
def test_the_narrowest_layout_is_what_rich_measures(table):
    """What a Fitted table picks its variant by: rich's minimum width of the table at an unbounded width."""
    from rich.measure import Measurement

    from cnnops.render.plain import _minimum_width

    low = _minimum_width(table)
    if low is not None:
        console = Console(file=io.StringIO(), width=80, color_system=None, force_terminal=False)
        assert low == Measurement.get(console, console.options.update_width(10**6), table).minimum, describe(table)


def describe(table):
    columns = [(c.header, c.justify, c.no_wrap, c.overflow, c.min_width, c.max_width, c.width, c._cells)
               for c in table.columns]  # fmt: skip
    return repr((table.title, table.caption, table.title_justify, table.show_header, table.pad_edge,
                 table.padding, columns))  # fmt: skip


def test_the_commands_tables_take_the_plain_path_and_print_the_same():
    from cnnops.model.trace import trace_shapes
    from cnnops.render import shape_tables as render
    from cnnops.spec import read_stage_file

    trace = trace_shapes((1, 3, 224, 224), read_stage_file("examples/alexnet.txt"))
    for table in (render.shape_table(trace, title="t", plain=True), render.formula_table(trace, plain=True),
                  render.totals_table(trace, plain=True)):  # fmt: skip
        for width in (80, 200):
            console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
            with mock.patch.object(Console, "print", side_effect=AssertionError("rich was asked to print")):
                print_table(console, table)  # written as plain text, not handed to rich
            assert console.file.getvalue() == rich_prints(table, width)
        narrow = Console(file=io.StringIO(), width=40, color_system=None, force_terminal=False)
        print_table(narrow, table)  # columns squeezed below their padding: rich draws it, the same text
        assert narrow.file.getvalue() == rich_prints(table, 40)


RUNS = [
    ("examples/grid4x4.json", ["MaxPool2d(2)"]),
    ("randn:1x2x6x6", ["Conv2d(2, 3, 3, padding=1)", "ReLU", "MaxPool2d(2, return_indices=True)"]),
    ("randn:1x3x5x5", ["Conv2d(3, 2, 3)", "Flatten", "Linear(18, 4)", "Softmax(dim=1)"]),
    ("[[1, 2, 3, 4]]", ["AvgPool1d(2)"]),
    ("randn:2x3", ["Linear(3, 2, bias=False)"]),
    ("randn:1x40", ["Linear(40, 30)"]),  # planes in blocks of columns
]


@pytest.mark.parametrize(("data", "stages"), RUNS)
def test_a_run_s_tables_print_plain_as_rich_prints_them(data, stages):
    """``cnnops run`` on a pipe: its group (header lines, tensor grids, the shape and formula tables side by
    side or one under the other) printed item by item, the plain ones without rich — the same text."""
    import cnnops
    from cnnops.render.run_view import run_group

    result = cnnops.run_stages(data, stages, engine="numpy")
    for width in (40, 80, 250):
        for notes in (True, False):
            group = run_group(result, source=data, plain=True, full=False, notes=notes)
            console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
            print_table(console, group)
            expected = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
            expected.print(run_group(result, source=data, plain=True, full=False, notes=notes))
            assert console.file.getvalue() == expected.file.getvalue()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(cells(), hs.integers(5, 60))
def test_a_plain_line_is_what_rich_prints(cell, width):
    from cnnops.render.plain import _line_text

    text = cell if isinstance(cell, Text) else Text(cell, style="bold")
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    mine = _line_text(text, console)
    if mine is not None:
        console.print(text)
        assert mine == console.file.getvalue()


@pytest.mark.parametrize("command", [["shape", "1x3x8x8", "Conv2d(3, 4, 3)"], ["solve", "--input", "8", "--output", "6"]])
def test_an_output_that_cannot_encode_the_drawing_gets_the_ascii_stand_ins(command):
    """The plain path writes text as it is: where the output's encoding lacks ×, → or ⌊ the tables go to rich,
    whose console puts in their ASCII stand-ins (not ``?``)."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "cnnops", *command], capture_output=True, env=env, check=True)
    text = proc.stdout.decode("ascii")
    assert "?" not in text and ("1x3x8x8" in text if command[0] == "shape" else "8 -> 6" in text)


def test_a_cell_with_markup_or_a_box_is_left_to_rich():
    console = Console(file=io.StringIO(), width=80, color_system=None, force_terminal=False)
    table = Table(box=None)
    table.add_column("a")
    table.add_row("[bold]x[/bold]")
    assert table_text(table, console) is None
    assert table_text(Table(), console) is None  # rich's default box


def test_the_lazy_group_lists_and_runs_every_command_as_the_full_app_does():
    """``cnnops`` builds only the command it runs; its help is the full app's, character for character."""
    import subprocess
    import sys

    from typer.main import get_command

    from cnnops.cli import app
    from cnnops.cli.lazy import COMMANDS

    full = get_command(app)
    assert list(full.commands) == list(COMMANDS)  # the same commands, in the same order
    for width in ("50", "80", "120"):
        env = {**__import__("os").environ, "COLUMNS": width}
        lazy_help = subprocess.run([sys.executable, "-m", "cnnops", "--help"], capture_output=True, text=True, env=env)
        code = "from cnnops.cli import app; app(prog_name='cnnops', args=['--help'])"
        full_help = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert lazy_help.stdout == full_help.stdout and lazy_help.stdout.startswith("Usage: cnnops")
    code = (  # cnnops ends the process itself once its exit handlers have run: the report is one
        "import atexit, sys; from cnnops.__main__ import main; sys.argv = ['cnnops', 'solve', '--input', '8', '--output', '4'];\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith('cnnops.cli.')), 'cnnops.spec' in sys.modules))\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['cnnops.cli.common', 'cnnops.cli.lazy', 'cnnops.cli.signals', 'cnnops.cli.solve'] False"


def test_the_options_bound_is_the_parser_s():
    from cnnops.cli.options import MAX_INT
    from cnnops.spec.literals import MAX_INT as PARSER_MAX_INT

    assert MAX_INT == PARSER_MAX_INT


def _modules_after(argv, modules, env=None):
    """Which of ``modules`` a cnnops command (stdout a pipe) has imported when it ends."""
    code = (  # cnnops ends the process itself once its exit handlers have run: the report is one
        "import atexit, sys; from cnnops.__main__ import main; sys.argv = ['cnnops', *sys.argv[1:]]\n"
        f"atexit.register(lambda: print(sorted(m for m in {modules!r} if m in sys.modules), file=sys.stderr))\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})  # fmt: skip
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["shape", "1x3x224x224", "-f", "examples/alexnet.txt"],
                                  ["solve", "--input", "224", "--output", "112", "--kernel", "3"],
                                  ["pool", "-k", "2", "examples/grid4x4.json"]])  # fmt: skip
def test_shape_solve_and_pool_on_a_pipe_print_without_rich_s_console_or_the_python_reader(argv):
    """Start-up: on a pipe the tables are plain text, printed without rich's console (and a stage file is
    read without the Python-source reader, the layers not used stay unimported)."""
    watched = ("rich.console", "cnnops.spec.pysource", "cnnops.model.stages.norms", "cnnops.model.stages.resampling")
    assert _modules_after(argv, watched) == "[]"
    # a terminal is forced: rich's console draws the boxes
    assert _modules_after(argv, watched, {"FORCE_COLOR": "1"}) == "['rich.console']"


@pytest.mark.parametrize("argv", [["run", "examples/grid4x4.json", "MaxPool2d(2)", "-q", "-o", "{tmp}/out.npy"],
                                  ["relu", "examples/grid4x4.json", "--json"]])  # fmt: skip
def test_quiet_and_json_runs_import_no_rich_and_no_pictures(argv, tmp_path):
    """Start-up: a run that prints no table (``-q -o``, ``--json``) imports neither rich nor the picture code."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert _modules_after(argv, ("rich", "cnnops.pictures", "cnnops.render.plain", "PIL")) == "[]"


@pytest.mark.parametrize("columns", [None, "100", "0", "7", "abc", "5000", "120x"])
def test_the_plain_stdout_console_is_the_rich_console_it_stands_for(monkeypatch, columns):
    """On a pipe, stdout_console gives a PlainStdout with the width, terminal and colour settings the rich
    console would have; anything else asked of it goes to a rich console."""
    from cnnops.cli import common

    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    if columns is not None:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    plain = common.stdout_console()
    rich = common._rich_stdout_console()
    assert isinstance(plain, common.PlainStdout)
    assert (plain.width, plain.is_terminal, plain.color_system, plain.record, plain.translate, plain.file) == (
        rich.width, rich.is_terminal, rich.color_system, rich.record, rich.translate, rich.file)
    assert plain.encoding == rich.encoding and plain.size == rich.size  # handed to a rich console
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not isinstance(common.stdout_console(), common.PlainStdout)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(hs.lists(tables() | cells(), min_size=1, max_size=4), hs.integers(10, 130))
def test_a_stack_is_drawn_and_measured_as_rich_s_group(items, width):
    from rich.console import Group
    from rich.measure import Measurement

    from cnnops.render.stack import Stack

    def drawn(renderable):
        console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
        console.print(renderable)
        return console.file.getvalue(), Measurement.get(console, console.options, renderable)

    assert drawn(Stack(*items)) == drawn(Group(*items))
