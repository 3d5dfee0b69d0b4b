"""How numbers are written, the same in every output (Markdown, HTML, CSV)."""

from __future__ import annotations

import yaml

from augbench.leaderboard.stats import Interval, PairedGain

SIGNIFICANT_UP, SIGNIFICANT_DOWN = "▲", "▼"


def accuracy_text(interval: Interval | None) -> str:
    """``"91.23 ± 0.45"``; a single seed has no interval and says so."""
    if interval is None:
        return "no result"
    if interval.half_width is None:
        return f"{interval.mean:.2f} (no interval)"
    return f"{interval.mean:.2f} ± {interval.half_width:.2f}"


def gain_mark(gain: PairedGain | None) -> str:
    """▲ or ▼ only when the paired interval excludes zero; nothing otherwise."""
    if gain is None or not gain.significant:
        return ""
    return SIGNIFICANT_UP if gain.interval.mean > 0 else SIGNIFICANT_DOWN


def gain_text(gain: PairedGain | None) -> str:
    """``"+0.68 ± 0.20 ▲"``: the paired gain over CE with its interval and mark."""
    if gain is None:
        return ""
    i = gain.interval
    text = f"{i.mean:+.2f}" if i.half_width is None else f"{i.mean:+.2f} ± {i.half_width:.2f}"
    mark = gain_mark(gain)
    return f"{text} {mark}" if mark else text


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


def protocol_text(tuned: str) -> str:
    """What the numbers mean and how they were made, for the top of every page.

    Args:
        tuned: ``all``, ``some`` or ``none`` of the cells used searched hyperparameters.
    """
    selection = SELECTION_TEXT[tuned]
    return (f"{selection}; the test set is only reported, never used to select anything. Every number is a mean "
            "over seeds with its 95% Student-t interval and n; a method's gain over CE is paired by seed on the "
            "same backbone, recipe and setting, and is marked (▲ better, ▼ worse) only when its interval excludes "
            "zero. Runs of different experiments, data sets, label noise, budgets, epochs or training-set sizes are "
            "never pooled: each such setting has its own table. Cells with failed or missing runs are marked "
            "incomplete, and each cell's entry lists them.")


def definition_yaml(definition: dict) -> str:
    """An experiment's resolved definition as the YAML ``augbench tune`` reads."""
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True).rstrip("\n")
