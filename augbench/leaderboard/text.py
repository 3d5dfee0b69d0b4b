"""How numbers are written, the same in every output (Markdown, HTML, CSV)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from augbench.errors import UsageError
from augbench.leaderboard.metrics import METRICS, Metric
from augbench.leaderboard.stats import Family, Interval, PairedGain

SIGNIFICANT_UP, SIGNIFICANT_DOWN = "▲", "▼"
DEGENERATE = "degenerate"
DEFAULT_METRIC = METRICS["test_acc"]


def accuracy_text(interval: Interval | None, metric: Metric = DEFAULT_METRIC) -> str:
    """``"91.23 ± 0.45"``; a single seed has no interval and says so."""
    if interval is None:
        return "no result"
    d = metric.digits
    if interval.half_width is None:
        return f"{interval.mean:.{d}f} (no interval)"
    return f"{interval.mean:.{d}f} ± {interval.half_width:.{d}f}"


def gain_mark(gain: PairedGain | None, metric: Metric = DEFAULT_METRIC) -> str:
    """▲ (better) or ▼ (worse, in the metric's direction) only when the paired interval excludes zero."""
    if gain is None or not gain.significant:
        return ""
    return SIGNIFICANT_UP if metric.better(gain.interval.mean) else SIGNIFICANT_DOWN


def holm_mark(gain: PairedGain | None, family: Family | None, key, metric: Metric = DEFAULT_METRIC) -> str:
    """``"Holm ▲"`` when the mark survives Holm's correction over the table, ``"Holm n.s."`` when it does not;
    nothing for an unmarked interval (Holm never adds a mark)."""
    mark = gain_mark(gain, metric)
    if not mark or family is None:
        return ""
    return f"Holm {mark}" if family.holm_significant(key) else "Holm n.s."


def gain_text(gain: PairedGain | None, metric: Metric = DEFAULT_METRIC, family: Family | None = None,
              key=None) -> str:
    """``"+0.68 ± 0.20 ▲ (Holm ▲)"``: a paired difference with its interval, plain mark and, given the table's
    family, its Holm mark; ``"+1.00 ± 0.00 degenerate"`` when every seed gave the same difference."""
    if gain is None:
        return ""
    i, d = gain.interval, metric.digits
    text = f"{i.mean:+.{d}f}" if i.half_width is None else f"{i.mean:+.{d}f} ± {i.half_width:.{d}f}"
    if gain.degenerate:
        return f"{text} {DEGENERATE}"
    mark = gain_mark(gain, metric)
    holm = holm_mark(gain, family, key, metric)
    return " ".join(part for part in (text, mark, f"({holm})" if holm else "") if part)


def family_text(family: Family | None, what: str) -> str:
    """One sentence for under a table: how many intervals it shows and what Holm's correction covered."""
    if family is None or not family.shown:
        return ""
    untested = family.shown - family.tested - family.degenerate
    return (f"This table shows {family.shown} {what} interval{'s' if family.shown != 1 else ''} "
            f"({family.degenerate} degenerate, {untested} from one seed); Holm–Bonferroni covers the "
            f"{family.tested} tested. Plain marks hold per interval (95%); Holm marks hold for the whole table at "
            "once (family-wise 5%, Holm 1979). A degenerate interval (the same difference on every seed) is never "
            "marked.")


def resolution_text(gains: Iterable[PairedGain | None], metric: Metric, what: str) -> str:
    """Says plainly whether a table's intervals are narrow enough to conclude anything (``metric.resolution``)."""
    shown = [g for g in gains if g is not None]
    if metric.resolution is None or not shown:
        return ""
    limit = f"±{metric.resolution:g} {metric.difference_unit}"
    wide = [g for g in shown if g.interval.half_width is None or g.degenerate
            or g.interval.half_width > metric.resolution]
    if not wide:
        return f"Resolved: all {len(shown)} {what} intervals are within {limit}."
    text = (f"Too wide to conclude: {len(wide)} of {len(shown)} {what} intervals are wider than {limit} (the "
            "leaderboard's target), degenerate, or from one seed.")
    if not any(g.significant for g in shown):
        text += " None of them excludes zero: this table cannot tell any of its differences from no difference."
    return text + " More seeds, longer runs or more training data narrow them."


def count_text(value: float | None) -> str:
    """``1234567`` -> ``"1.23M"``: forward samples in a few characters."""
    if value is None:
        return "n/a"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def provenance_items(provenance: dict) -> list[tuple[str, list[str], bool]]:
    """The "how these results were produced" list: (label, values, values are code) in reading order."""
    def versions_line(v: dict | None) -> str:
        return ", ".join(f"{k} {val}" for k, val in (v or {}).items()) or "unknown"

    items = [
        ("Source", [f"{provenance['source']} ({provenance['source_kind']})"], False),
        ("Experiment", provenance["experiments"] or ["plain augbench train runs"], False),
        ("Experiment command", provenance["experiment_commands"], True),
        ("Leaderboard command", [provenance["build_command"]] if provenance["build_command"] else [], True),
        ("Code (git commit)", [c or "unknown" for c in provenance["git_commits"]], True),
        ("Versions", [versions_line(v) for v in provenance["versions"]], False),
        ("Hardware", [d or "unknown" for d in provenance["devices"]], False),
        ("Runs", [f"{provenance['runs']} final runs, {seconds_text(provenance['train_seconds'])} of training, "
                  f"from {provenance['started_at'] or '?'} to {provenance['finished_at'] or '?'}"], False),
        ("Notes", provenance["notes"], False),
    ]
    return [(label, values, code) for label, values, code in items if values]


SELECTION_TEXT = {
    "all": "Hyperparameters were tuned per cell on a validation split held out from the training set",
    "some": "Hyperparameters were tuned on a validation split held out from the training set for the cells "
            "whose method had a search space; the other cells used the fixed hyperparameters they were given",
    "none": "Nothing was tuned: every run used the fixed hyperparameters it was given (see each cell's entry)",
}


def tuned_text(params: list[dict[str, Any]], searches: list[dict[str, Any]] = ()) -> str:
    """``tuned: lr 0.264, temperature 3.1 (8 qmc trials, median pruner from epoch 6 after 3 finished trials)``
    for a cell whose runs used searched values ('' for none); distinct sets (seeds that used different values)
    are separated by ``;``, and ``searches`` (experiments' ``search`` sections) say how they were chosen."""
    def value(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    if not params:
        return ""
    how = "; ".join(filter(None, (search_text(search) for search in searches)))
    return ("tuned: " + "; ".join(", ".join(f"{k} {value(v)}" for k, v in p.items()) for p in params)
            + (f" ({how})" if how else ""))


def search_text(search: dict[str, Any]) -> str:
    """``8 qmc trials, median pruner from epoch 6 after 3 finished trials`` from an experiment's ``search``
    section ('' when it names no trials)."""
    # lazy: the tune package loads Optuna and the engine, which a page without tuned cells never needs
    from augbench.tune.pruning import PRUNERS, parse_pruner
    from augbench.tune.samplers import DEFAULT_SAMPLER

    if not search.get("trials"):
        return ""
    text = f"{search['trials']} {search.get('sampler') or DEFAULT_SAMPLER} trials"
    try:
        pruner = parse_pruner(search.get("pruner", "median"), "experiment", "search.pruner")
    except UsageError:
        return text  # a definition from another version: the trials still say something
    return f"{text}, {PRUNERS[pruner.type].describe(pruner.options)}"


def protocol_text(tuned: str) -> str:
    """What the numbers mean and how they were made, for the top of every page.

    Args:
        tuned: ``all``, ``some`` or ``none`` of the cells used searched hyperparameters.
    """
    selection = SELECTION_TEXT[tuned]
    return (f"{selection}; the test set is only reported, never used to select anything. Every number is a mean "
            "over seeds with its 95% Student-t interval and n; a method's gain over CE is paired by seed on the "
            "same backbone, recipe and setting, and is marked (▲ better, ▼ worse) only when its interval excludes "
            "zero and is not degenerate. Runs of different experiments, data sets, label noise, budgets, epochs or training-set sizes are "
            "never pooled: each such setting has its own table. Cells with failed or missing runs are marked "
            "incomplete, and each cell's entry lists them.")


def definition_yaml(definition: dict) -> str:
    """An experiment's resolved definition as the YAML ``augbench tune`` reads."""
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True).rstrip("\n")


def interaction_intro(metric: Metric, baseline_recipe: str | None) -> str:
    """What the compatibility table holds, under its heading."""
    return (f"Each cell: the interaction (recipe's effect under the method minus its effect under CE, in "
            f"{metric.difference_unit} of {metric.short}, paired by seed over the seeds present in all four cells, ± its 95% "
            f"interval, n seeds); below it the two effects over {baseline_recipe} on those seeds. Near zero: the "
            "recipe's gain survives the method unchanged; ▼: the method loses part of the recipe's gain (or adds "
            "to its harm); ▲: they work better together than apart.")


def budget_pair_intro() -> str:
    return ("Each method's gain over CE, paired by seed, at equal epochs (the method may forward more samples than "
            "CE) and at equal forward samples (a two-view method trains fewer epochs); below each gain, its forward "
            "samples per run relative to CE's. A method that forwards exactly CE's samples at equal epochs ran once: "
            "its equal-epochs gain is its equal-samples gain, shown in both columns and counted once.")


def forward_ratio_text(ratio: float | None, shown_as: str | None = None, runs: str | None = None) -> str:
    """``"2.00× CE's forward samples"``; for a gain shown under a budget other than its runs' (``shown_as`` !=
    ``runs``), it says so: a one-forward method's equal-epochs runs are its equal-samples runs."""
    text = "forward samples n/a" if ratio is None else f"{ratio:.2f}× CE's forward samples"
    return text if shown_as == runs else f"{text}: the equal-{runs} runs"


def cost_lines(costs: list[dict]) -> list[str]:
    """Per experiment: the dry-run estimate and the actual wall time, as plain sentences."""
    lines = []
    for cost in costs:
        parts = []
        estimate = cost["estimate"]
        if estimate and estimate.get("published_cost"):
            # Recovered from a page published before builds kept every record (scripts/recover_records.py):
            # the estimate and the search trials' times behind this line are gone, so it stands as published.
            lines.append(f"{cost['experiment']}: {estimate['published_cost']} (as published; from "
                         f"{estimate.get('recovered_from') or 'an earlier page'})")
            continue
        if estimate:
            parts.append(f"estimated {seconds_text(estimate.get('seconds'))} for at most {estimate.get('runs')} "
                         f"runs on {estimate.get('device') or 'the probing machine'} (augbench tune --dry-run, "
                         f"{estimate.get('created_at') or 'undated'})")
            if (estimate.get("workers") or 1) > 1:
                parts.append(f"{seconds_text(estimate.get('wall_seconds'))} from first start to last finish with "
                             f"{estimate['workers']} workers")
        if cost["actual_seconds"] is not None:
            parts.append(f"actual {seconds_text(cost['actual_seconds'])} over {cost['runs']} runs (sum of each "
                         f"run's finished_at − started_at, search trials included), "
                         f"{seconds_text(cost['elapsed_seconds'])} from first start to last finish")
            if estimate and estimate.get("seconds") and cost["actual_seconds"]:
                parts.append(f"estimate/actual {estimate['seconds'] / cost['actual_seconds']:.2f}")
        if parts:
            lines.append(f"{cost['experiment']}: " + "; ".join(parts))
    return lines
