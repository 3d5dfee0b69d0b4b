"""leaderboard/entries/*.json: one file per cell, with its numbers, every run and its provenance."""

from __future__ import annotations

import json
from typing import Any

from augbench.leaderboard.aggregate import Cell, Leaderboard
from augbench.leaderboard.sources import command_line

RUN_FIELDS = ("status", "reason", "test_acc", "test_acc_at_best_val", "best_val_acc", "best_val_epoch", "test_nll",
              "test_ece", "epochs_trained", "forward_samples", "train_seconds", "samples_per_second",
              "peak_memory_mb", "device", "git_commit", "started_at", "finished_at", "trial_number")


def entry(cell: Cell, board: Leaderboard) -> dict[str, Any]:
    def number(interval):
        return interval.to_dict() if interval else None

    runs = []
    for seed in sorted(cell.runs):
        record = cell.runs[seed]
        runs.append({"seed": seed, **{k: record.get(k) for k in RUN_FIELDS if k in record},
                     "reproduce": command_line(record.get("reproduce")) or command_line(record.get("command")),
                     "origin": cell.origins[seed]})
    return {
        **cell.setting.to_dict(), "model": cell.model, "recipe": cell.recipe, "method": cell.method,
        "metric": board.metric,
        "result": number(cell.interval),
        "result_at_best_val": number(cell.interval_at_best_val),
        "gain_vs_ce": cell.gain.to_dict() if cell.gain else None,
        "complete": cell.complete,
        "status": cell.status_text or "complete",
        "planned_seeds": cell.planned_seeds,
        "finished_seeds": cell.finished_seeds,
        "missing_seeds": cell.missing_seeds,
        "failed_runs": cell.failed,
        "compute": {k: cell.compute_mean(k) for k in ("forward_samples", "train_seconds", "samples_per_second",
                                                       "peak_memory_mb")},
        "provenance": cell.provenance(),
        "runs": runs,
        "source": board.loaded.source,
    }


def render_entries(board: Leaderboard) -> dict[str, str]:
    """File name (under entries/) -> JSON text, one per cell."""
    return {f"{cell.slug}.json": json.dumps(entry(cell, board), indent=2, default=str) + "\n"
            for cell in board.cells}
