"""leaderboard/README.md: per setting, the results table (rows backbone x recipe, columns methods) and the
compatibility table (recipe x method interactions); per pair of budgets, the gains side by side; the cost.

Names come from records and recipe files, so every one is escaped: HTML
characters become entities (GitHub renders inline HTML) and Markdown
characters that could open a link, emphasis or a new table cell are
backslash-escaped.
"""

from __future__ import annotations

import html
import re

from augbench.leaderboard.aggregate import EPOCHS_BUDGET, SAMPLES_BUDGET, BudgetPair, Cell, Leaderboard, Table
from augbench.leaderboard.metrics import Metric
from augbench.leaderboard.text import (
    SIGNIFICANT_DOWN,
    SIGNIFICANT_UP,
    accuracy_text,
    budget_pair_intro,
    cost_lines,
    definition_yaml,
    family_text,
    forward_ratio_text,
    gain_text,
    interaction_intro,
    protocol_text,
    provenance_items,
    resolution_text,
    tuned_text,
)

_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|#~!])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
INCOMPLETE = "⚠"


def md(text: object) -> str:
    """``text`` safe inside a Markdown table cell: no HTML, links, emphasis or cell breaks."""
    escaped = html.escape(str(text), quote=False).replace("\n", " ").replace("\r", " ")
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), escaped)


def code(text: object) -> str:
    """``text`` as inline code; a run of backticks inside picks a longer fence."""
    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell_text(cell: Cell | None, table: Table, metric: Metric) -> str:
    if cell is None:
        return "–"
    n = cell.interval.n if cell.interval else 0
    parts = [f"{accuracy_text(cell.interval, metric)} (n={n})"]
    if cell.gain is not None:
        key = (cell.model, cell.recipe, cell.method)
        parts.append(f"{gain_text(cell.gain, metric, table.gain_family, key)} (n={cell.gain.interval.n})")
    if cell.tuned_params:
        parts.append(md(tuned_text(cell.tuned_params, cell.searches)))
    if cell.status_text:
        parts.append(f"{INCOMPLETE} {md(cell.status_text)}")
    return "<br>".join(parts)


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; the first two columns are names (escaped here), the rest right-aligned text."""
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    lines += ["| " + " | ".join([md(row[0]), md(row[1]), *row[2:]]) + " |" for row in rows]
    return lines


def _table(table: Table, metric: Metric) -> list[str]:
    rows = [[model, recipe, *(_cell_text(table.cells.get((model, recipe, m)), table, metric) for m in table.methods)]
            for model, recipe in table.rows()]
    return _grid(["backbone", "recipe", *table.methods], rows)


def _interaction_table(table: Table, metric: Metric) -> list[str]:
    """Compatibility: per backbone x recipe (rows) and method (columns), the interaction and both effects."""
    methods = table.interaction_methods()
    rows = []
    for model, recipe in table.interaction_rows():
        row = [model, recipe]
        for method in methods:
            i = table.interactions.get((model, recipe, method))
            if i is None:
                row.append("–")
                continue
            key = (model, recipe, method)
            row.append(f"{gain_text(i.interaction, metric, table.interaction_family, key)} "
                       f"(n={i.interaction.interval.n})<br>effect {i.effect.interval.mean:+.{metric.digits}f} "
                       f"under {md(method)}, {i.effect_ce.interval.mean:+.{metric.digits}f} under ce"
                       + (f"<br>{INCOMPLETE} {md(i.note)}" if i.note else ""))
        rows.append(row)
    return _grid(["backbone", "recipe", *methods], rows)


def _budget_table(pair: BudgetPair, metric: Metric) -> list[str]:
    """Each method's gain over CE at equal epochs and at equal forward samples, side by side."""
    header = ["backbone", "recipe"]
    for method in pair.methods:
        header += [f"{method} at equal epochs", f"{method} at equal forward samples"]
    rows = []
    for model, recipe in pair.rows():
        row = [model, recipe]
        for method in pair.methods:
            for budget in (EPOCHS_BUDGET, SAMPLES_BUDGET):
                cell, runs = pair.cell(model, recipe, method, budget)
                if cell is None or cell.gain is None:
                    row.append("–")
                    continue
                key = (model, recipe, method, runs)
                row.append(f"{gain_text(cell.gain, metric, pair.family, key)} (n={cell.gain.interval.n})<br>"
                           f"{forward_ratio_text(pair.forward_ratio(model, recipe, method, runs), budget, runs)}")
        rows.append(row)
    return _grid(header, rows)


def _problems(table: Table) -> list[str]:
    lines = []
    for (model, recipe, method), cell in sorted(table.cells.items()):
        if not cell.status_text:
            continue
        detail = [f"planned seeds {cell.planned_seeds}, finished {cell.finished_seeds}"]
        detail += [f"seed {f['seed']} {md(f['status'])}" + (f": {md(f['reason'])}" if f["reason"] else "")
                   for f in cell.failed]
        if cell.missing_seeds:
            detail.append(f"no run for seed(s) {cell.missing_seeds}")
        lines.append(f"- {md(model)} / {md(recipe)} / {md(method)}: {md(cell.status_text)} — "
                     + "; ".join(detail) + f" ([entry](entries/{cell.slug}.json))")
    return lines


def render_markdown(board: Leaderboard) -> str:
    provenance = board.provenance()
    metric = board.metric_info
    direction = "higher" if metric.higher_is_better else "lower"
    out = [
        "# augbench leaderboard",
        "",
        f"Which augmentations work together with self-distillation (DLB and the methods it was compared with), "
        f"and by how much. Metric: **{metric.label}** ({metric.unit}; {direction} is better). `index.html` "
        f"switches between {', '.join(board.for_metric(m).metric_info.short for m in board.metric_order())}.",
        "",
        protocol_text(provenance["tuned"]),
        "",
        "**How to read a cell:** mean ± half-width of the 95% interval (n = seeds); the second line is the gain "
        f"over CE on the same backbone, recipe and seeds, ± its interval; {SIGNIFICANT_UP}/{SIGNIFICANT_DOWN} "
        f"mark a gain whose interval excludes zero ({SIGNIFICANT_UP} better, {SIGNIFICANT_DOWN} worse), and "
        "\"Holm ▲\" or \"Holm n.s.\" says whether the mark survives Holm's correction over the whole table; "
        f"{INCOMPLETE} marks a cell with failed or missing runs; \"tuned: ...\" gives the values an Optuna search "
        "chose for the cell on the validation split, and in brackets how many trials, drawn how, under which "
        "pruner. "
        "A difference whose interval comes from the same difference on every seed is marked \"degenerate\": "
        "zero width, no information, never marked. Under each setting, the compatibility table asks whether "
        "each recipe's gain over the plain recipe survives each method (the interaction, paired by seed); where "
        "a setting ran at both budgets, a further table sets each method's gain at equal epochs beside its gain "
        "at equal forward samples. `index.html` has the same tables, sortable and filterable, with a metric "
        "selector (accuracy, NLL, ECE), the compatibility heatmap, the DLB-gain heatmap and the metric against "
        "compute; `results.csv` has every number for every metric; `entries/` has one JSON file per cell with its "
        "provenance and the commands that reproduce it; `records/` has every run's result record, from which "
        "`augbench leaderboard build --from records` rebuilds these pages.",
        "",
    ]
    if board.notes:
        out += [board.notes, ""]
    for table in board.tables:
        out += [f"## {md(table.setting.title)}", "", *_table(table, metric), ""]
        if table.gain_family and table.gain_family.shown:
            out += [family_text(table.gain_family, "gain-over-CE"), ""]
        resolution = resolution_text((c.gain for c in table.cells.values()), metric, "gain-over-CE")
        if resolution:
            out += [f"**{resolution}**", ""]
        if any(c.gain_ce_budget and c.gain_ce_budget != table.setting.budget for c in table.cells.values()):
            out += ["CE forwards each sample once, so its runs at budget 'epochs' are its runs at budget "
                    "'samples': the gains here pair with them, seed by seed.", ""]
        problems = _problems(table)
        if problems:
            out += ["Incomplete cells:", "", *problems, ""]
        if table.interactions:
            out += [f"### Compatibility: does the recipe's gain over {md(table.baseline_recipe)} survive the method?",
                    "", interaction_intro(metric, table.baseline_recipe), "", *_interaction_table(table, metric), "",
                    family_text(table.interaction_family, "interaction"), ""]
            resolution = resolution_text((i.interaction for i in table.interactions.values()), metric,
                                         "interaction")
            if resolution:
                out += [f"**{resolution}**", ""]
    for pair in board.budget_pairs:
        out += [f"## Equal epochs and equal forward samples: {md(pair.title)}", "", budget_pair_intro(), "",
                *_budget_table(pair, metric), "", family_text(pair.family, "gain-over-CE"), ""]
    cost = cost_lines(provenance["costs"])
    if cost:
        out += ["## Cost: estimated and actual wall time", "", *(f"- {md(line)}" for line in cost), ""]
    out += ["## How these results were produced", ""]
    for label, values, is_code in provenance_items(provenance):
        rendered = [code(v) if is_code else md(v) for v in values]
        if len(rendered) == 1:
            out.append(f"- **{label}:** {rendered[0]}")
        else:
            out.append(f"- **{label}:**")
            out += [f"  - {v}" for v in rendered]
    out += ["", "Each file in `entries/` records, for its cell, the versions, commit, hardware, hyperparameters, "
                "seeds, budget and the command that reproduces every run.", ""]
    for name, definition in provenance["experiment_definitions"].items():
        text = definition_yaml(definition)
        fence = "`" * max(3, max((len(run) + 1 for run in re.findall(r"`+", text)), default=0))
        out += [f"<details><summary>Experiment definition: {html.escape(name)} (as resolved by augbench tune)"
                "</summary>", "", f"{fence}yaml", text, fence, "", "</details>", ""]
    return "\n".join(out)
