"""leaderboard/README.md: one Markdown table per setting, rows backbone x recipe, columns methods.

Names come from records and recipe files, so every one is escaped: HTML
characters become entities (GitHub renders inline HTML) and Markdown
characters that could open a link, emphasis or a new table cell are
backslash-escaped.
"""

from __future__ import annotations

import html
import re

from augbench.leaderboard.aggregate import METRICS, Cell, Leaderboard, Table
from augbench.leaderboard.text import (
    SIGNIFICANT_DOWN,
    SIGNIFICANT_UP,
    accuracy_text,
    definition_yaml,
    gain_text,
    protocol_text,
    provenance_items,
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


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    n = cell.interval.n if cell.interval else 0
    parts = [f"{accuracy_text(cell.interval)} (n={n})"]
    if cell.gain is not None:
        parts.append(f"{gain_text(cell.gain)} (n={cell.gain.interval.n})")
    if cell.status_text:
        parts.append(f"{INCOMPLETE} {md(cell.status_text)}")
    return "<br>".join(parts)


def _table(table: Table) -> list[str]:
    header = ["backbone", "recipe", *table.methods]
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * 2 + "---:|" * len(table.methods)]
    for model, recipe in table.rows():
        cells = [_cell_text(table.cells.get((model, recipe, method))) for method in table.methods]
        lines.append("| " + " | ".join([md(model), md(recipe), *cells]) + " |")
    return lines


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
    out = [
        "# augbench leaderboard",
        "",
        f"Which augmentations work together with self-distillation (DLB and the methods it was compared with), "
        f"and by how much. Metric: **{METRICS[board.metric]}** (%).",
        "",
        protocol_text(provenance["tuned"]),
        "",
        "**How to read a cell:** mean ± half-width of the 95% interval (n = seeds); the second line is the gain "
        f"over CE on the same backbone, recipe and seeds, ± its interval; {SIGNIFICANT_UP}/{SIGNIFICANT_DOWN} "
        f"mark a gain whose interval excludes zero; {INCOMPLETE} marks a cell with failed or missing runs. "
        "`index.html` has the same tables, sortable and filterable, with the DLB-gain heatmap and accuracy "
        "against compute; `results.csv` has every number; `entries/` has one JSON file per cell with its "
        "provenance and the commands that reproduce it.",
        "",
    ]
    for table in board.tables:
        out += [f"## {md(table.setting.title)}", "", *_table(table), ""]
        problems = _problems(table)
        if problems:
            out += ["Incomplete cells:", "", *problems, ""]
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
