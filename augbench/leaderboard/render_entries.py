"""leaderboard/entries/*.json: one file per cell, with its numbers, every run and its provenance.

The top-level numbers use the build's ``--metric``; ``by_metric`` repeats result, gain over CE and interaction
(recipe x method, see ``aggregate``) for every metric the records hold. Holm marks are those of the table that
shows the interval.
"""

from __future__ import annotations

import json
from typing import Any

from augbench.leaderboard.aggregate import Cell, Leaderboard
from augbench.tune.reproduce import command_line

RUN_FIELDS = ("status", "reason", "test_acc", "test_acc_at_best_val", "best_val_acc", "best_val_epoch", "test_nll",
              "test_ece", "epochs_trained", "forward_samples", "train_seconds", "samples_per_second",
              "peak_memory_mb", "device", "git_commit", "started_at", "finished_at", "trial_number")


def _number(interval):
    return interval.to_dict() if interval else None


def _with_holm(gain, family, key) -> dict[str, Any] | None:
    if gain is None:
        return None
    return {**gain.to_dict(), "holm_p": family.holm_p(key) if family else None,
            "holm_significant": family.holm_significant(key) if family else False}


def metric_view(cell: Cell, board: Leaderboard) -> dict[str, Any]:
    """This cell's numbers under ``board``'s metric: result, gain over CE and interaction, with Holm's marks."""
    table = next(t for t in board.tables if t.setting == cell.setting)
    key = (cell.model, cell.recipe, cell.method)
    twin = table.cells[key]
    interaction = table.interactions.get(key)
    return {
        "metric": board.metric_info.to_dict(),
        "result": _number(twin.interval),
        "gain_vs_ce": _with_holm(twin.gain, table.gain_family, key),
        "gain_ce_budget": twin.gain_ce_budget,
        "interaction": None if interaction is None else {
            **interaction.to_dict(),
            "interaction": _with_holm(interaction.interaction, table.interaction_family, key)},
    }


def entry(cell: Cell, board: Leaderboard) -> dict[str, Any]:
    number = _number
    view = metric_view(cell, board)

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
        "higher_is_better": board.metric_info.higher_is_better,
        "gain_vs_ce": view["gain_vs_ce"],
        "gain_ce_budget": cell.gain_ce_budget,
        "interaction": view["interaction"],
        "by_metric": {name: metric_view(cell, board.for_metric(name)) for name in board.metric_order()},
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
