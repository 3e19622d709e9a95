"""The memory and counting-convention side of ``cnnops shape`` (``--memory``, ``--convention``,
``--compare-conventions``) and of ``cnnops solve --max-memory``: call the library, render, emit."""

from __future__ import annotations

import json
from typing import Any

from cnnops.choices import Convention, Dtype, Optimizer
from cnnops.cli.common import emit_text, plain_output, stdout_console
from cnnops.errors import UsageError


def shape_planned(trace: Any, output: str | None, *, memory: bool, dtype: Dtype, optimizer: Optimizer,
                  convention: Convention, compare: bool) -> None:  # fmt: skip
    """``output``: "json", "csv", "jsonl" or None (tables)."""
    from cnnops.model import conventions
    from cnnops.model.memory import plan_memory

    if not memory and (dtype != Dtype.float32 or optimizer != Optimizer.adam):
        raise UsageError("--dtype and --optimizer size memory: add --memory")
    trace.raise_error()
    plan = plan_memory(trace, dtype, optimizer) if memory else None
    if plan is not None:
        plan.raise_training_error()
    comparison = conventions.compare(trace) if compare else None
    if convention != Convention.cnnops:
        trace = conventions.recount(trace, convention)
    if output == "json":
        doc = trace.as_dict() if plan is None else plan.annotate(trace.as_dict())
        if convention != Convention.cnnops:
            doc |= {"convention": convention.value, "macs_unit": conventions.UNITS[convention]}
        if comparison is not None:
            doc["conventions"] = comparison.as_dict()
        emit_text(json.dumps(doc))
        return
    if output == "jsonl":
        rows = [row.as_dict() | (plan.stages[i].as_dict() if plan else {}) for i, row in enumerate(trace.rows)]
        emit_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        return
    if output == "csv":
        if compare:
            raise UsageError("--compare-conventions works with the tables or --json")
        from cnnops.render import memory_tables, shape_tables

        emit_text(memory_tables.memory_csv(trace, plan) if plan is not None else shape_tables.shape_csv(trace))
        return
    _tables(trace, plan, comparison, convention)


def _tables(trace: Any, plan: Any, comparison: Any, convention: Convention) -> None:
    from cnnops.model.conventions import TOOLS, UNITS
    from cnnops.render import memory_tables
    from cnnops.render import shape_tables as render

    console = stdout_console()
    plain = plain_output(console)
    counted: dict[str, Any] = {}
    if convention != Convention.cnnops:
        unit = UNITS[convention]
        counted = {"macs_header": f"{unit}*", "caption": f"*{unit} counted as {TOOLS[convention]} counts them; "
                   "cnnops shape --compare-conventions shows how and why they differ from cnnops' count."}
    console.print(render.shape_table(trace, title=f"cnnops shape {render.dims(trace.input_shape)}", plain=plain,
                                     **counted))  # fmt: skip
    formulas = render.formula_table(trace, plain=plain)
    if formulas is not None:
        console.print(formulas)
    console.print(render.totals_table(trace, plain=plain, macs_label=UNITS[convention]))
    if plan is not None:
        console.print(memory_tables.memory_table(trace, plan, plain=plain))
        console.print(memory_tables.memory_totals(plan, plain=plain))
    if comparison is not None:
        console.print(memory_tables.comparison_table(comparison, plain=plain))
        lines = memory_tables.difference_lines(comparison)
        console.print("Why the counts differ:" if lines else "Every tool counts these stages as cnnops does.")
        for line in lines:
            console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)


def solve_memory(shape_text: str, network: Any, budget_text: str, *, grow: str, inference: bool, dtype: Dtype,
                 optimizer: Optimizer, as_json: bool) -> None:  # fmt: skip
    from cnnops.model.memory import parse_size
    from cnnops.model.memory_search import fit_memory
    from cnnops.model.trace import parse_shape

    if len(network) == 0:
        raise UsageError("--max-memory needs a network: give stages or -f FILE")
    found = fit_memory(parse_shape(shape_text), network, parse_size(budget_text), grow=grow, inference=inference,
                       dtype=dtype, optimizer=optimizer)  # fmt: skip
    if as_json:
        emit_text(json.dumps(found.as_dict()))
        return
    from cnnops.render import memory_tables
    from cnnops.render import shape_tables as render

    console = stdout_console()
    plain = plain_output(console)
    console.print(render.shape_table(found.trace, title=f"at {render.dims(found.shape)}", plain=plain))
    console.print(memory_tables.memory_table(found.trace, found.plan, plain=plain))
    console.print(memory_tables.memory_totals(found.plan, plain=plain,
                                              highlight="inference" if inference else "training step"))  # fmt: skip
    console.print(memory_tables.fit_line(found), soft_wrap=True, markup=False, highlight=False)
