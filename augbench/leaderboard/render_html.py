"""leaderboard/index.html: one static page that works offline.

The tables, the DLB-gain heatmap, the compatibility heatmap (recipe x method
interactions), the budgets side by side and the metric-against-compute charts
are rendered here, in Python, once per metric the records hold, with every
string from records, recipes and experiment files passed through
``html.escape``; the inline script only sorts, hides and shows existing
elements (the metric selector shows one metric's view), it never builds
markup from data. A
Content-Security-Policy admits no external resource and no script but the
page's own (pinned by its hash), so even a name that escaped escaping
could not load or run anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from augbench.leaderboard.aggregate import (
    BASELINE_METHOD,
    EPOCHS_BUDGET,
    FOCUS_METHOD,
    SAMPLES_BUDGET,
    BudgetPair,
    Cell,
    Leaderboard,
    Table,
)
from augbench.leaderboard.metrics import Metric
from augbench.leaderboard.stats import Family, PairedGain
from augbench.leaderboard.text import (
    DEGENERATE,
    SIGNIFICANT_DOWN,
    SIGNIFICANT_UP,
    accuracy_text,
    budget_pair_intro,
    cost_lines,
    count_text,
    definition_yaml,
    family_text,
    forward_ratio_text,
    gain_mark,
    gain_text,
    interaction_intro,
    protocol_text,
    provenance_items,
    resolution_text,
    seconds_text,
    tuned_text,
)

# Okabe & Ito's colour-blind-safe palette; CE, the baseline, is grey.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7A5C00", "#000000")
BASELINE_COLOR = "#7f7f7f"
ASSETS = Path(__file__).with_name("assets")


def e(value: object) -> str:
    """Escapes any value for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def json_for_script(data: object) -> str:
    """JSON that cannot end its <script> element or open a comment, whatever strings it holds."""
    text = json.dumps(data, default=str, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _short(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def method_colors(methods: list[str]) -> dict[str, str]:
    others = [m for m in methods if m != BASELINE_METHOD]
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(others)}
    colors[BASELINE_METHOD] = BASELINE_COLOR
    return colors


def _data_attrs(**values: str) -> str:
    return "".join(f' data-{k}="{e(v)}"' for k, v in values.items())


# -- tables ----------------------------------------------------------------------------------------

def _gain_div(gain: PairedGain, metric: Metric, family: Family | None, key, title: str) -> str:
    mark = gain_mark(gain, metric)
    tone = "" if not mark else (" up" if mark == SIGNIFICANT_UP else " down")
    tone += " degenerate" if gain.degenerate else ""
    return (f'<div class="gain{tone}" title="{e(title)}">{e(gain_text(gain, metric, family, key))} '
            f'<span class="n">n={gain.interval.n}</span></div>')


def _cell_html(cell: Cell | None, method: str, table: Table, metric: Metric) -> str:
    if cell is None:
        return f'<td class="num empty"{_data_attrs(method=method)} data-value="">–</td>'
    i = cell.interval
    value = "" if i is None else f"{i.mean:.6f}"
    classes = "num" + ("" if cell.complete and not cell.notes else " incomplete")
    n = i.n if i else 0
    # n links to the cell's entry: its seeds, failed runs and provenance.
    parts = [f'<span class="acc">{e(accuracy_text(i, metric))}</span> <a class="n" href="entries/{e(cell.slug)}'
             f'.json" title="seeds, runs and provenance of this cell">n={n}</a>']
    if cell.gain is not None:
        parts.append(_gain_div(cell.gain, metric, table.gain_family, (cell.model, cell.recipe, cell.method),
                               "difference from CE, paired by seed"))
    if cell.tuned_params:
        parts.append(f'<div class="tuned" title="chosen by the Optuna search on the validation split">'
                     f'{e(tuned_text(cell.tuned_params, cell.searches))}</div>')
    if cell.status_text:
        parts.append(f'<div class="flag">⚠ {e(cell.status_text)}</div>')
    return f'<td class="{classes}"{_data_attrs(method=method)} data-value="{value}">{"".join(parts)}</td>'


def _table_html(table: Table, metric: Metric) -> str:
    better = "higher" if metric.higher_is_better else "lower"
    head = ['<th scope="col" data-type="text" aria-sort="none"><button type="button">backbone</button></th>',
            '<th scope="col" data-type="text" aria-sort="none"><button type="button">recipe</button></th>']
    head += [f'<th scope="col" class="num" data-type="num" aria-sort="none"{_data_attrs(method=m, better=better)}>'
             f'<button type="button">{e(m)}</button></th>' for m in table.methods]
    rows = []
    for model, recipe in table.rows():
        cells = "".join(_cell_html(table.cells.get((model, recipe, m)), m, table, metric) for m in table.methods)
        rows.append(f"<tr{_data_attrs(model=model, recipe=recipe)}>"
                    f'<td data-value="{e(model)}">{e(model)}</td><td data-value="{e(recipe)}">{e(recipe)}</td>'
                    f"{cells}</tr>")
    return (f'<div class="scroll"><table class="board"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


# -- heatmap: DLB's gain over CE per backbone x recipe --------------------------------------------

def _gain_color(value: float, scale: float, significant: bool, better: bool) -> str:
    """Blue for improvements, vermilion for losses (in the metric's direction); paler when the interval includes
    zero or is degenerate."""
    strength = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    base = (0, 114, 178) if better or value == 0 else (213, 94, 0)
    alpha = (0.25 + 0.75 * strength) if significant else 0.12 + 0.25 * strength
    r, g, b = (round(255 + (c - 255) * alpha) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}"


def _grid_svg(css_class: str, label: str, rows: list[str], columns: list[str],
              values: dict[tuple[str, str], tuple[PairedGain | None, str]], metric: Metric,
              family: Family | None) -> str:
    """A heatmap of paired differences: ``values[(row, column)] = (gain or None, why it is missing or doubtful)``.

    The label is the mean, the plain mark and, when the mark survives Holm's correction over ``family``, "H";
    the tooltip has the interval, n and the Holm mark.
    """
    scale = max([abs(g.interval.mean) for g, _ in values.values() if g is not None] + [metric.heat_scale])
    cw, ch, left, top = 104, 34, 150, 28
    width, height = left + cw * len(columns) + 8, top + ch * len(rows) + 8
    parts = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{e(label)}">']
    for j, column in enumerate(columns):
        x = left + j * cw + cw / 2
        parts.append(f'<text class="col" x="{x:.1f}" y="{top - 10}" text-anchor="middle">'
                     f"<title>{e(column)}</title>{e(_short(column))}</text>")
    for i, row in enumerate(rows):
        y = top + i * ch
        parts.append(f'<text class="row" x="{left - 8}" y="{y + ch / 2 + 4:.1f}" text-anchor="end">'
                     f"<title>{e(row)}</title>{e(_short(row, 22))}</text>")
        for j, column in enumerate(columns):
            x = left + j * cw
            gain, why = values.get((row, column), (None, "no run"))
            if gain is None:
                fill, text, tip = "#f1f1f1", "n/a", why
            else:
                mean = gain.interval.mean
                fill = _gain_color(mean, scale, gain.significant, metric.better(mean))
                holm = "H" if gain_mark(gain, metric) and family and family.holm_significant((row, column)) else ""
                suffix = " deg." if gain.degenerate else ""
                text = f"{mean:+.{metric.digits}f}{gain_mark(gain, metric)}{holm}{suffix}" + (" ⚠" if why else "")
                tip = f"{gain_text(gain, metric, family, (row, column))} (n={gain.interval.n})" + (
                    f"; ⚠ {why}" if why else "")
            dark = gain is not None and gain.significant and abs(gain.interval.mean) / scale > 0.55
            text_class = ' class="on-dark"' if dark else ""
            parts.append(f'<g class="hcell"{_data_attrs(row=row, column=column)}><title>{e(row)} · {e(column)}: '
                         f'{e(tip)}</title><rect x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" rx="3" '
                         f'fill="{fill}"/><text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="middle"'
                         f"{text_class}>{e(text)}</text></g>")
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(table: Table, metric: Metric) -> str:
    """DLB's difference from CE per recipe (rows) and backbone (columns)."""
    recipes = [r for r in table.recipes if any((m, r, FOCUS_METHOD) in table.cells for m in table.models)]
    models = [m for m in table.models if any((m, r, FOCUS_METHOD) in table.cells for r in recipes)]
    if not models:
        return f'<p class="none">No {e(FOCUS_METHOD)} runs in this setting.</p>'
    gains = {(r, m): table.cells[(m, r, FOCUS_METHOD)].gain
             for m in models for r in recipes if (m, r, FOCUS_METHOD) in table.cells}
    values = {key: (gain, "" if gain is not None else "no CE baseline to pair with") for key, gain in gains.items()}
    family = Family({(r, m): table.gain_family.holm_p((m, r, FOCUS_METHOD)) for r, m in values},
                    0, 0, 0) if table.gain_family else None
    return _grid_svg("heatmap", f"{FOCUS_METHOD} difference from CE per backbone and recipe", recipes, models,
                     values, metric, family)


def interaction_svg(table: Table, metric: Metric) -> str:
    """The compatibility heatmap: recipes (rows, one block per backbone) x methods (columns)."""
    methods = table.interaction_methods()
    rows_by_key = {(model, recipe): (recipe if len(table.models) == 1 else f"{model} · {recipe}")
                   for model, recipe in table.interaction_rows()}
    values, adjusted = {}, {}
    for (model, recipe, method), interaction in table.interactions.items():
        row = rows_by_key[(model, recipe)]
        values[(row, method)] = (interaction.interaction, interaction.note)
        adjusted[(row, method)] = table.interaction_family.holm_p((model, recipe, method))
    return _grid_svg("compat", "interaction of each recipe with each method", list(rows_by_key.values()), methods,
                     values, metric, Family(adjusted, 0, 0, 0))


# -- accuracy against compute ----------------------------------------------------------------------

def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (Heckbert, "Nice numbers for graph labels", 1990)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


@dataclass(frozen=True)
class ComputeAxis:
    """One x axis of the accuracy-against-compute chart: which record field, how ticks read."""

    key: str
    caption: str
    tooltip: Callable[[float], str]
    units: tuple[tuple[float, str], ...]  # (size, name), largest first: the axis uses the first that fits
    tick: Callable[[float, float], str]  # (value, unit size) -> tick label


COMPUTE_AXES = (
    ComputeAxis("forward_samples", "against forward samples", count_text, ((1.0, "forward samples"),),
                lambda value, unit: count_text(value)),
    ComputeAxis("train_seconds", "against training time", seconds_text,
                ((3600.0, "hours"), (60.0, "minutes"), (1.0, "seconds")), lambda value, unit: f"{value / unit:g}"),
)


def compute_svg(table: Table, axis: ComputeAxis, colors: dict[str, str], metric: Metric) -> str:
    points = []
    for (model, recipe, method), cell in table.cells.items():
        x, i = cell.compute_mean(axis.key), cell.interval
        if x is not None and i is not None:
            points.append((x, i, model, recipe, method, cell))
    if not points:
        return f'<p class="none">No {e(axis.key)} recorded.</p>'
    largest = max(p[0] for p in points)
    unit, unit_name = next(((u, n) for u, n in axis.units if largest >= 2 * u), axis.units[-1])
    width, height, left, right, top, bottom = 420, 260, 54, 22, 12, 42
    xs = nice_ticks(0.0, largest / unit)
    xs = [t * unit for t in xs]
    lows = [i.low if i.low is not None else i.mean for _, i, *_ in points]
    highs = [i.high if i.high is not None else i.mean for _, i, *_ in points]
    # Percentages live in [0, 100], NLL in [0, inf); a wide interval from few seeds must not stretch the axis past that.
    top_value = 100.0 if metric.unit == "%" else math.inf
    ys = [t for t in nice_ticks(max(0.0, min(lows)), min(top_value, max(highs))) if 0.0 <= t <= top_value]
    if len(ys) < 2:
        ys = [0.0, 100.0 if metric.unit == "%" else max(1.0, max(highs))]

    def px(value):
        return left + (value - xs[0]) / (xs[-1] - xs[0]) * (width - left - right)

    def py(value):
        value = min(max(value, ys[0]), ys[-1])  # error bars are clipped at the axis ends
        return top + (ys[-1] - value) / (ys[-1] - ys[0]) * (height - top - bottom)

    parts = [f'<svg class="scatter" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{e(metric.short)} {e(axis.caption)}">']
    for t in ys:
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{py(t):.1f}" y2="{py(t):.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in xs:
        parts.append(f'<line class="grid" x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{height - bottom}"/>'
                     f'<text class="tick" x="{px(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                     f"{e(axis.tick(t, unit) if t else '0')}</text>")
    parts.append(f'<text class="axis" x="{(left + width - right) / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                 f"{e(unit_name)} per run</text>"
                 f'<text class="axis" transform="translate(14 {(top + height - bottom) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{e(f"{metric.short} ({metric.unit})")}</text>')
    for x, i, model, recipe, method, cell in sorted(points, key=lambda p: p[4] != BASELINE_METHOD):
        color = colors.get(method, "#000")
        tip = f"{model} · {recipe} · {method}: {accuracy_text(i, metric)} (n={i.n}), {axis.tooltip(x)} ({axis.key})"
        bar = ""
        if i.half_width is not None:
            bar = (f'<line class="err" x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(i.high):.1f}" '
                   f'y2="{py(i.low):.1f}" stroke="{color}"/>')
        hollow = "" if cell.complete else ' class="hollow"'
        parts.append(f'<g class="point"{_data_attrs(model=model, recipe=recipe, method=method)}>'
                     f"<title>{e(tip)}</title>{bar}"
                     f'<circle cx="{px(x):.1f}" cy="{py(i.mean):.1f}" r="3.5" fill="{color}" stroke="{color}"'
                     f"{hollow}/></g>")
    parts.append("</svg>")
    return "".join(parts)


# -- page ------------------------------------------------------------------------------------------

def _filter(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)
    return (f'<label>{e(label)} <select data-filter="{e(name)}"><option value="">all</option>{options}'
            f"</select></label>")


def _legend(methods: list[str], colors: dict[str, str]) -> str:
    items = "".join(f'<li{_data_attrs(method=m)}><span class="swatch" style="background:{colors[m]}"></span>'
                    f"{e(m)}</li>" for m in methods)
    return f'<ul class="legend">{items}</ul>'


def _section(table: Table, index: str, colors: dict[str, str], metric: Metric) -> str:
    s = table.setting
    unit = metric.difference_unit
    direction = "higher" if metric.higher_is_better else "lower"
    family = family_text(table.gain_family, "gain-over-CE")
    resolution = resolution_text((c.gain for c in table.cells.values()), metric, "gain-over-CE")
    compat = ""
    if table.interactions:
        compat = (f'<figure class="compat-figure"><figcaption><strong>Compatibility: does the recipe\'s gain over '
                  f"{e(table.baseline_recipe)} survive the method?</strong> {e(interaction_intro(metric, table.baseline_recipe))} "
                  f"{SIGNIFICANT_UP}/{SIGNIFICANT_DOWN}: interval excludes zero; H: the mark survives Holm's "
                  f"correction; pale: interval includes zero or is {DEGENERATE}. "
                  f"{e(family_text(table.interaction_family, 'interaction'))} "
                  f"<strong>{e(resolution_text((i.interaction for i in table.interactions.values()), metric, 'interaction'))}</strong>"
                  "</figcaption>"
                  f"{interaction_svg(table, metric)}</figure>")
    return (f'<section class="setting" id="setting-{e(index)}"{_data_attrs(dataset=s.dataset)}>'
            f"<h2>{e(s.title)}</h2>{_table_html(table, metric)}"
            + (f'<p class="family">{e(family)}</p>' if family else "")
            + (f'<p class="resolution"><strong>{e(resolution)}</strong></p>' if resolution else "")
            + f'<div class="charts">{compat}<figure><figcaption>{e(FOCUS_METHOD)} difference from CE ({e(unit)}, '
            f"paired by seed; {direction} is better); {SIGNIFICANT_UP}/{SIGNIFICANT_DOWN}: interval excludes zero; "
            f"H: survives Holm; pale: it does not</figcaption>{heatmap_svg(table, metric)}</figure>"
            + "".join(f"<figure><figcaption>{e(metric.short[:1].upper() + metric.short[1:])} {e(axis.caption)} (mean per run; bars: "
                      f"95% interval; hollow: incomplete)</figcaption>{compute_svg(table, axis, colors, metric)}"
                      f"{_legend(table.methods, colors)}</figure>" for axis in COMPUTE_AXES)
            + "</div></section>")


def _budget_section(pair: BudgetPair, index: str, metric: Metric) -> str:
    """Each method's gain over CE at equal epochs and at equal forward samples, side by side."""
    head = ['<th scope="col">backbone</th>', '<th scope="col">recipe</th>']
    for method in pair.methods:
        head += [f'<th scope="col" class="num"{_data_attrs(method=method)}>{e(method)} at equal epochs</th>',
                 f'<th scope="col" class="num"{_data_attrs(method=method)}>{e(method)} at equal forward samples</th>']
    rows = []
    for model, recipe in pair.rows():
        cells = []
        for method in pair.methods:
            for budget in (EPOCHS_BUDGET, SAMPLES_BUDGET):
                cell, runs = pair.cell(model, recipe, method, budget)
                if cell is None or cell.gain is None:
                    cells.append(f'<td class="num empty"{_data_attrs(method=method, budget=budget)}>–</td>')
                    continue
                ratio = forward_ratio_text(pair.forward_ratio(model, recipe, method, runs), budget, runs)
                gain = _gain_div(cell.gain, metric, pair.family, (model, recipe, method, runs),
                                 f"difference from CE at budget '{runs}', paired by seed")
                cells.append(f'<td class="num"{_data_attrs(method=method, budget=budget)}>{gain}'
                             f'<div class="ratio">{e(ratio)}</div></td>')
        rows.append(f"<tr{_data_attrs(model=model, recipe=recipe)}><td>{e(model)}</td><td>{e(recipe)}</td>"
                    f"{''.join(cells)}</tr>")
    family = family_text(pair.family, "gain-over-CE")
    return (f'<section class="setting budgets" id="budgets-{e(index)}"{_data_attrs(dataset=pair.epochs.setting.dataset)}>'
            f"<h2>Equal epochs and equal forward samples: {e(pair.title)}</h2><p>{e(budget_pair_intro())}</p>"
            f'<div class="scroll"><table class="sidebyside"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div><p class="family">{e(family)}</p></section>')


def _metric_view(board: Leaderboard, colors: dict[str, str], shown: bool) -> str:
    """One metric's tables, heatmaps and charts; the selector shows one view at a time."""
    metric = board.metric_info
    direction = "higher" if metric.higher_is_better else "lower"
    sections = "".join(_section(t, f"{metric.name}-{i}", colors, metric) for i, t in enumerate(board.tables))
    sections += "".join(_budget_section(pair, f"{metric.name}-{i}", metric)
                        for i, pair in enumerate(board.budget_pairs))
    return (f'<div class="metric-view" data-metric-view="{e(metric.name)}"{"" if shown else " hidden"}>'
            f'<p class="metric-note">Showing <strong>{e(metric.label)}</strong> ({e(metric.unit)}; {direction} is '
            f"better).</p>{sections}</div>")


def _provenance_html(board: Leaderboard) -> str:
    rows = []
    for label, values, is_code in provenance_items(board.provenance()):
        rendered = [f"<code>{e(v)}</code>" if is_code else e(v) for v in values]
        body = rendered[0] if len(rendered) == 1 else "<ul>" + "".join(f"<li>{v}</li>" for v in rendered) + "</ul>"
        rows.append(f"<dt>{e(label)}</dt><dd>{body}</dd>")
    definitions = "".join(f"<details><summary>Experiment definition: {e(name)}</summary>"
                          f"<pre>{e(definition_yaml(definition))}</pre></details>"
                          for name, definition in board.provenance()["experiment_definitions"].items())
    return (f'<section id="provenance"><h2>How these results were produced</h2><dl>{"".join(rows)}</dl>'
            f"{definitions}</section>")


def _page_data(board: Leaderboard) -> list[dict]:
    data = []
    for name in board.metric_order():
        view = board.for_metric(name)
        data += [{**cell.setting.to_dict(), "model": cell.model, "recipe": cell.recipe, "method": cell.method,
                  "metric": name, "result": cell.interval.to_dict() if cell.interval else None,
                  "gain_vs_ce": cell.gain.to_dict() if cell.gain else None, "status": cell.status_text or "complete",
                  "entry": f"entries/{cell.slug}.json"} for cell in view.cells]
    return data


def _metric_select(board: Leaderboard) -> str:
    options = "".join(f'<option value="{e(name)}"{" selected" if name == board.metric else ""}>'
                      f"{e(board.for_metric(name).metric_info.short)}</option>" for name in board.metric_order())
    return f'<label>Metric <select id="metric" data-metric-select="">{options}</select></label>'


def _cost_html(board: Leaderboard) -> str:
    lines = cost_lines(board.provenance()["costs"])
    if not lines:
        return ""
    items = "".join(f"<li>{e(line)}</li>" for line in lines)
    return f'<section id="cost"><h2>Cost: estimated and actual wall time</h2><ul>{items}</ul></section>'


def render_html(board: Leaderboard) -> str:
    provenance = board.provenance()
    methods = sorted({c.method for c in board.cells}, key=lambda m: (m != BASELINE_METHOD, m != FOCUS_METHOD, m))
    colors = method_colors(methods)
    script = (ASSETS / "leaderboard.js").read_text()
    style = (ASSETS / "leaderboard.css").read_text()
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           f"script-src 'sha256-{script_hash}'")
    filters = "".join([
        _metric_select(board),
        _filter("dataset", "Data set", sorted({t.setting.dataset for t in board.tables})),
        _filter("model", "Backbone", sorted({m for t in board.tables for m in t.models})),
        _filter("recipe", "Recipe", sorted({r for t in board.tables for r in t.recipes})),
        _filter("method", "Method", methods),
    ])
    views = "".join(_metric_view(board.for_metric(name), colors, shown=name == board.metric)
                    for name in board.metric_order())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{e(csp)}">
<title>augbench leaderboard</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>augbench leaderboard</h1>
<p class="lead">Which augmentations work together with self-distillation, and by how much, over
{provenance['runs']} runs from <code>{e(board.loaded.source)}</code>. The metric selector switches every table and
chart between {e(", ".join(board.for_metric(m).metric_info.short for m in board.metric_order()))}.</p>
<p class="protocol">{e(protocol_text(provenance["tuned"]))}</p>
<p class="howto">Each cell: mean ± half-width of the 95% interval, n seeds; below it the difference from CE on the
same backbone, recipe and seeds. <span class="up">{SIGNIFICANT_UP}</span>/<span class="down">{SIGNIFICANT_DOWN}</span>
mark differences whose interval excludes zero (better/worse in the metric's direction); "Holm ▲" or "Holm n.s." says
whether the mark survives Holm's correction over the whole table; "{DEGENERATE}" marks an interval built from
identical differences, never marked. <span class="flagged">⚠</span> marks incomplete cells; "tuned: ..." gives the values an
Optuna search chose for the cell on the validation split, and in brackets how many trials, drawn how, under which
pruner. Click a column header to sort.</p>
{f'<details class="notes" open><summary>Notes</summary><pre>{e(board.notes)}</pre></details>' if board.notes else ""}
</header>
<nav class="filters" aria-label="filters">{filters}<span id="shown" aria-live="polite"></span></nav>
<main>{views}{_cost_html(board)}{_provenance_html(board)}</main>
<footer>Generated by <code>augbench leaderboard build</code>; every number is in
<a href="results.csv">results.csv</a> and, with its provenance, in <code>entries/</code>; every run's record is in
<code>records/</code>.</footer>
<script type="application/json" id="leaderboard-data">{json_for_script(_page_data(board))}</script>
<script>{script}</script>
</body>
</html>
"""
