"""leaderboard/results.csv: one row per cell with every number the pages show, and more."""

from __future__ import annotations

import csv
import io

from augbench.leaderboard.aggregate import Leaderboard

COLUMNS = (
    "experiment", "dataset", "label_noise", "budget", "epochs", "train_size", "model", "recipe", "method", "metric",
    "mean", "ci_low", "ci_high", "half_width", "sd", "n", "planned_seeds", "finished_seeds", "complete", "status",
    "mean_at_best_val", "half_width_at_best_val", "n_at_best_val",
    "gain_vs_ce", "gain_ci_low", "gain_ci_high", "gain_half_width", "gain_n", "gain_significant",
    "forward_samples_mean", "train_seconds_mean", "samples_per_second_mean", "peak_memory_mb_mean", "entry",
)


def _seeds(seeds: list[int]) -> str:
    return " ".join(str(s) for s in seeds)


def render_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for table in board.tables:
        for model, recipe in table.rows():
            for method in table.methods:
                cell = table.cells.get((model, recipe, method))
                if cell is None:
                    continue
                i, b, g = cell.interval, cell.interval_at_best_val, cell.gain
                writer.writerow({
                    **table.setting.to_dict(), "model": model, "recipe": recipe, "method": method,
                    "metric": board.metric,
                    "mean": i and i.mean, "ci_low": i and i.low, "ci_high": i and i.high,
                    "half_width": i and i.half_width, "sd": i and i.sd, "n": i.n if i else 0,
                    "planned_seeds": _seeds(cell.planned_seeds), "finished_seeds": _seeds(cell.finished_seeds),
                    "complete": cell.complete, "status": cell.status_text or "complete",
                    "mean_at_best_val": b and b.mean, "half_width_at_best_val": b and b.half_width,
                    "n_at_best_val": b.n if b else 0,
                    "gain_vs_ce": g and g.interval.mean, "gain_ci_low": g and g.interval.low,
                    "gain_ci_high": g and g.interval.high, "gain_half_width": g and g.interval.half_width,
                    "gain_n": g.interval.n if g else 0, "gain_significant": g.significant if g else False,
                    "forward_samples_mean": cell.compute_mean("forward_samples"),
                    "train_seconds_mean": cell.compute_mean("train_seconds"),
                    "samples_per_second_mean": cell.compute_mean("samples_per_second"),
                    "peak_memory_mb_mean": cell.compute_mean("peak_memory_mb"),
                    "entry": f"entries/{cell.slug}.json",
                })
    return buffer.getvalue()
