"""leaderboard/results.csv: every number the pages show, and more, for every metric the records hold.

One ``kind=cell`` row per cell and metric (its mean, its gain over CE) and one
``kind=interaction`` row per backbone x recipe x method and metric (the recipe's
effect under the method and under CE, and their difference). ``*_holm_p`` is
the Holm-adjusted p-value within the table that shows the interval (the
setting's results or compatibility table); a degenerate interval has no p-value
and is never significant.
"""

from __future__ import annotations

import csv
import io

from augbench.leaderboard.aggregate import Leaderboard, Table
from augbench.leaderboard.stats import Family, PairedGain

SETTING_COLUMNS = ("experiment", "dataset", "label_noise", "budget", "epochs", "train_size", "model", "recipe",
                   "method", "metric", "higher_is_better")


_SUFFIXES = ("_ci_low", "_ci_high", "_half_width", "_n", "_p", "_significant", "_degenerate", "_holm_p",
             "_holm_significant")


def _gain_columns(prefix: str, value: str | None = None) -> tuple[str, ...]:
    """``value`` (the mean's column, default ``prefix``) and ``prefix``_ci_low, ... of one paired interval."""
    return (value or prefix, *(f"{prefix}{suffix}" for suffix in _SUFFIXES))


COLUMNS = (
    "kind", *SETTING_COLUMNS,
    "mean", "ci_low", "ci_high", "half_width", "sd", "n", "planned_seeds", "finished_seeds", "complete", "status",
    "mean_at_best_val", "half_width_at_best_val", "n_at_best_val",
    *_gain_columns("gain", "gain_vs_ce"), "gain_ce_budget",
    "baseline_recipe", *_gain_columns("effect_under_method"), *_gain_columns("effect_under_ce"),
    *_gain_columns("interaction"), "interaction_seeds",
    "forward_samples_mean", "train_seconds_mean", "samples_per_second_mean", "peak_memory_mb_mean", "entry",
)


def _seeds(seeds) -> str:
    return " ".join(str(s) for s in seeds)


def gain_fields(prefix: str, gain: PairedGain | None, family: Family | None = None, key=None,
                value: str | None = None) -> dict:
    """The columns of one paired interval; Holm columns only when the interval belongs to a shown family."""
    if gain is None:
        return {f"{prefix}_n": 0, f"{prefix}_significant": False}
    i = gain.interval
    return {value or prefix: i.mean, f"{prefix}_ci_low": i.low, f"{prefix}_ci_high": i.high,
            f"{prefix}_half_width": i.half_width, f"{prefix}_n": i.n, f"{prefix}_p": i.p_value,
            f"{prefix}_significant": gain.significant, f"{prefix}_degenerate": i.degenerate,
            f"{prefix}_holm_p": family.holm_p(key) if family else None,
            f"{prefix}_holm_significant": family.holm_significant(key) if family else None}


def _rows(board: Leaderboard, table: Table):
    metric = board.metric_info
    for model, recipe in table.rows():
        for method in table.methods:
            cell = table.cells.get((model, recipe, method))
            if cell is None:
                continue
            i, b = cell.interval, cell.interval_at_best_val
            yield {
                "kind": "cell", **table.setting.to_dict(), "model": model, "recipe": recipe, "method": method,
                "metric": metric.name, "higher_is_better": metric.higher_is_better,
                "mean": i and i.mean, "ci_low": i and i.low, "ci_high": i and i.high,
                "half_width": i and i.half_width, "sd": i and i.sd, "n": i.n if i else 0,
                "planned_seeds": _seeds(cell.planned_seeds), "finished_seeds": _seeds(cell.finished_seeds),
                "complete": cell.complete, "status": cell.status_text or "complete",
                "mean_at_best_val": b and b.mean, "half_width_at_best_val": b and b.half_width,
                "n_at_best_val": b.n if b else 0,
                **gain_fields("gain", cell.gain, table.gain_family, (model, recipe, method), value="gain_vs_ce"),
                "gain_ce_budget": cell.gain_ce_budget,
                "forward_samples_mean": cell.compute_mean("forward_samples"),
                "train_seconds_mean": cell.compute_mean("train_seconds"),
                "samples_per_second_mean": cell.compute_mean("samples_per_second"),
                "peak_memory_mb_mean": cell.compute_mean("peak_memory_mb"),
                "entry": f"entries/{cell.slug}.json",
            }
    for model, recipe in table.interaction_rows():
        for method in table.interaction_methods():
            interaction = table.interactions.get((model, recipe, method))
            if interaction is None:
                continue
            key = (model, recipe, method)
            yield {
                "kind": "interaction", **table.setting.to_dict(), "model": model, "recipe": recipe,
                "method": method, "metric": metric.name, "higher_is_better": metric.higher_is_better,
                "baseline_recipe": interaction.baseline_recipe,
                **gain_fields("effect_under_method", interaction.effect),
                **gain_fields("effect_under_ce", interaction.effect_ce),
                **gain_fields("interaction", interaction.interaction, table.interaction_family, key),
                "interaction_seeds": _seeds(interaction.interaction.seeds),
                "entry": f"entries/{table.cells[key].slug}.json",
            }


def render_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in board.metric_order():
        view = board.for_metric(name)
        for table in view.tables:
            writer.writerows(_rows(view, table))
    return buffer.getvalue()
