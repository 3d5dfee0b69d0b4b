"""Groups result records into leaderboard cells and computes their statistics.

A *setting* is everything that must match for two numbers to be comparable:
data set, label-noise setting, budget mode, epochs and training-set size.
Runs of different settings are never pooled; each setting gets its own table.
Inside a setting a *cell* is one backbone x recipe x method; its number is the
mean over seeds with a Student-t interval, and its gain over CE is paired by
seed with the CE cell of the same backbone and recipe.

Inside a setting and backbone, the *interaction* of a recipe R with a method
M asks whether R's own gain survives M. Per seed s it is

    (R·M(s) − base·M(s)) − (R·CE(s) − base·CE(s)),

the augmentation's effect under M minus its effect under CE, over the seeds
present in all four cells (the two effects are shown on the same seeds, so
they add up to the interaction). ``base`` is the table's plain recipe
(baseline, none or standard). Each table's gains, and each table's
interactions, form one family for Holm's correction (``stats``).

CE forwards each sample once, so its ``samples`` budget is its ``epochs``
budget: when a ``samples`` setting has no CE cell of its own, its gains and
interactions pair with the CE runs of the ``epochs`` setting that is
otherwise identical, seed by seed. Settings that differ only in the budget
are shown side by side (``budget_pairs``).

A cell is *complete* when every planned seed has a finished run. Planned
seeds come from the records of a tuned experiment (``planned_seeds``); for
plain ``augbench train`` records they are the seeds seen. Failed and missing
runs are kept and reported, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from augbench.errors import UsageError
from augbench.leaderboard.metrics import METRICS, Metric
from augbench.leaderboard.sources import Loaded
from augbench.leaderboard.stats import (
    Family,
    Interval,
    PairedGain,
    holm_family,
    mean_interval,
    paired_contrast,
    paired_gain,
)
from augbench.tune.reproduce import command_line

BASELINE_METHOD = "ce"
FOCUS_METHOD = "dlb"
EPOCHS_BUDGET, SAMPLES_BUDGET = "epochs", "samples"
EXPERIMENTS_DIR = Path("recipes/experiments")
DIFFERENT_SEARCHES = "its four cells were not all tuned by the same search"
# Recipes that mean "no extra augmentation" come first in tables.
_PLAIN_RECIPES = ("baseline", "none", "standard")


@dataclass(frozen=True, order=True)
class Setting:
    """What must match for runs to be comparable; one table each.

    ``experiment`` is part of it: two experiments may tune the same cell differently. It is the record's
    ``group`` where it has one: the experiment files a large map is split into (each short enough to run in
    one sitting) name one group, and their runs fill one set of tables.
    """

    experiment: str
    dataset: str
    label_noise: str
    budget: str
    epochs: int
    train_size: int

    @property
    def title(self) -> str:
        return self.describe(with_budget=True)

    def describe(self, with_budget: bool) -> str:
        noise = "clean labels" if self.label_noise == "clean" else f"label noise {self.label_noise}"
        prefix = f"{self.experiment}: " if self.experiment else ""
        epochs = f"{self.epochs} epoch" + ("" if self.epochs == 1 else "s")
        budget = f", budget '{self.budget}'" if with_budget else ""
        return f"{prefix}{self.dataset} · {noise} · {epochs}{budget} · {self.train_size} training samples"

    def with_budget(self, budget: str) -> Setting:
        return Setting(self.experiment, self.dataset, self.label_noise, budget, self.epochs, self.train_size)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment or None, "dataset": self.dataset, "label_noise": self.label_noise,
                "budget": self.budget, "epochs": self.epochs, "train_size": self.train_size}


def noise_label(noise: Any) -> str:
    """A record's ``label_noise`` (null, {kind, rate, ...} or "kind:rate") as one comparable label."""
    if not noise:
        return "clean"
    if isinstance(noise, dict):
        return f"{noise.get('kind')}:{float(noise.get('rate', 0.0)):g}"
    return str(noise)


def _metric(record: dict[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _unique(values: list[Any]) -> list[Any]:
    """Distinct values in first-seen order (dicts compared by their JSON)."""
    seen, result = set(), []
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            result.append(value)
    return result


def _seed(record: dict[str, Any], origin: str) -> int:
    try:
        return int(record["seed"])
    except (TypeError, ValueError):
        raise UsageError(f"{origin}: field 'seed' must be an integer, got {record['seed']!r}") from None


@dataclass
class Cell:
    """One backbone x recipe x method in one setting: its runs by seed (one kept per seed) and statistics."""

    setting: Setting
    model: str
    recipe: str
    method: str
    runs: dict[int, dict[str, Any]]
    origins: dict[int, str]
    planned_seeds: list[int]
    metric: str
    duplicates: int = 0
    interval: Interval | None = None
    interval_at_best_val: Interval | None = None
    gain: PairedGain | None = None
    gain_ce_budget: str | None = None  # the budget of the CE runs the gain pairs with
    notes: list[str] = field(default_factory=list)
    searches: list[dict[str, Any]] = field(default_factory=list)  # the search sections that chose tuned_params

    def values(self, metric: str | None = None) -> dict[int, float]:
        """Per-seed values of ``metric`` (a registered metric or a record field) from finished runs."""
        metric = metric or self.metric
        key = METRICS[metric].field if metric in METRICS else metric
        return {seed: v for seed, r in sorted(self.runs.items())
                if r.get("status") == "finished" and (v := _metric(r, key)) is not None}

    @property
    def finished_seeds(self) -> list[int]:
        return sorted(self.values())

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Runs that did not finish with a result: failed, pruned, or finished without the metric."""
        result, done = [], self.values()
        for seed, record in sorted(self.runs.items()):
            if seed in done:
                continue
            status = record.get("status")
            reason = record.get("reason") or (f"no {self.metric} in the record" if status == "finished" else None)
            result.append({"seed": seed, "status": status, "reason": reason, "origin": self.origins[seed]})
        return result

    @property
    def tuned_params(self) -> list[dict[str, Any]]:
        """The values an Optuna search chose for this cell, as its runs used them (one dict when every seed used
        the same; empty when nothing was searched)."""
        return _unique([self.runs[s]["tuned_params"] for s in sorted(self.runs) if self.runs[s].get("tuned_params")])

    @property
    def missing_seeds(self) -> list[int]:
        """Planned seeds with no record at all."""
        return [s for s in self.planned_seeds if s not in self.runs]

    @property
    def complete(self) -> bool:
        return set(self.planned_seeds) <= set(self.finished_seeds)

    @property
    def status_text(self) -> str:
        """Empty for a complete cell; otherwise what is wrong, short enough for a table cell."""
        if self.complete and not self.notes:
            return ""
        parts = []
        if not self.complete:
            parts.append(f"incomplete: {len(self.finished_seeds)}/{len(self.planned_seeds)} seeds")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.missing_seeds:
            parts.append(f"{len(self.missing_seeds)} missing")
        parts.extend(self.notes)
        return ", ".join(parts)

    def compute_mean(self, key: str) -> float | None:
        """Mean of a per-run number (forward_samples, train_seconds, ...) over the finished runs."""
        values = [v for r in self.runs.values() if r.get("status") == "finished" and (v := _metric(r, key)) is not None]
        return math.fsum(values) / len(values) if values else None

    @property
    def slug(self) -> str:
        """A file-name-safe, unique name for this cell's entry (names in records may hold any character)."""
        s = self.setting
        parts = (s.experiment, s.dataset, s.label_noise, s.budget, f"{s.epochs}ep", f"n{s.train_size}", self.model,
                 self.recipe, self.method)
        readable = re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(parts)).strip("-.")[:100]
        digest = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:8]
        return f"{readable}-{digest}"

    def provenance(self) -> dict[str, Any]:
        runs = [self.runs[s] for s in sorted(self.runs)]
        return {
            "experiments": _unique([r["experiment"] for r in runs if r.get("experiment")]),
            "cells": _unique([r["cell"] for r in runs if r.get("cell") is not None]),
            "git_commits": _unique([r.get("git_commit") for r in runs]),
            "versions": _unique([r.get("versions") for r in runs]),
            "devices": _unique([r.get("device") for r in runs]),
            "hyperparameters": _unique([r.get("hyperparameters") for r in runs]),
            "method_args": _unique([r.get("method_args") for r in runs]),
            "tuned_params": _unique([r.get("tuned_params") for r in runs if r.get("tuned_params") is not None]),
            "budget": self.setting.budget,
            "epochs": self.setting.epochs,
            "sizes": _unique([{k: r.get(k) for k in ("train_size", "val_size", "test_size")} for r in runs]),
            "label_noise": _unique([r.get("label_noise") for r in runs]),
            "planned_seeds": self.planned_seeds,
            "started_at": min((r["started_at"] for r in runs if r.get("started_at")), default=None),
            "finished_at": max((r["finished_at"] for r in runs if r.get("finished_at")), default=None),
            "reproduce": [{"seed": s, "command": command_line(self.runs[s].get("reproduce"))
                           or command_line(self.runs[s].get("command"))} for s in sorted(self.runs)],
        }


@dataclass(frozen=True)
class Interaction:
    """Does recipe ``recipe``'s gain over ``baseline_recipe`` survive ``method``? All three on the same seeds."""

    model: str
    recipe: str
    method: str
    baseline_recipe: str
    effect: PairedGain  # recipe − baseline recipe, under the method
    effect_ce: PairedGain  # recipe − baseline recipe, under CE
    interaction: PairedGain  # effect − effect_ce: the compatibility
    note: str = ""  # why it may not mean what it says ("" when nothing is known against it)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_recipe": self.baseline_recipe, "effect_under_method": self.effect.to_dict(),
                "effect_under_ce": self.effect_ce.to_dict(), "interaction": self.interaction.to_dict(),
                **({"note": self.note} if self.note else {})}


@dataclass
class Table:
    """The cells of one setting, with the display order of backbones, recipes and methods.

    ``gain_family`` is the Holm family of the gains over CE the table shows; ``interactions`` (keyed by
    backbone, recipe, method) and ``interaction_family`` the same for the compatibility table.
    """

    setting: Setting
    models: list[str]
    recipes: list[str]
    methods: list[str]
    cells: dict[tuple[str, str, str], Cell]
    baseline_recipe: str | None = None
    interactions: dict[tuple[str, str, str], Interaction] = field(default_factory=dict)
    gain_family: Family | None = None
    interaction_family: Family | None = None

    def rows(self) -> list[tuple[str, str]]:
        """(model, recipe) pairs that have at least one cell, in display order."""
        present = {(m, r) for m, r, _ in self.cells}
        return [(m, r) for m in self.models for r in self.recipes if (m, r) in present]

    def interaction_rows(self) -> list[tuple[str, str]]:
        present = {(m, r) for m, r, _ in self.interactions}
        return [(m, r) for m in self.models for r in self.recipes if (m, r) in present]

    def interaction_methods(self) -> list[str]:
        present = {method for _, _, method in self.interactions}
        return [m for m in self.methods if m in present]


@dataclass
class BudgetPair:
    """Two settings that differ only in the budget: each method's gain over CE at equal epochs and at equal
    forward samples, side by side; ``family`` is the Holm family of the gains this comparison shows."""

    epochs: Table
    samples: Table
    models: list[str]
    recipes: list[str]
    methods: list[str]
    family: Family

    @property
    def title(self) -> str:
        return self.epochs.setting.describe(with_budget=False)

    def rows(self) -> list[tuple[str, str]]:
        present = {(m, r) for t in (self.epochs, self.samples) for m, r, method in t.cells if method in self.methods}
        return [(m, r) for m in self.models for r in self.recipes if (m, r) in present]

    def cell(self, model: str, recipe: str, method: str, budget: str) -> tuple[Cell | None, str]:
        """The cell shown under ``budget`` and the budget its runs were made under.

        A method that forwards exactly as many samples as CE at equal epochs (one forward per sample: LSR,
        PS-KD, Tf-KD) is run once, under epochs (``augbench.tune.grid``): those runs answer the equal-samples
        question too, and are shown there as what they are.
        """
        if budget == EPOCHS_BUDGET:
            return self.epochs.cells.get((model, recipe, method)), EPOCHS_BUDGET
        own = self.samples.cells.get((model, recipe, method))
        if own is not None:
            return own, SAMPLES_BUDGET
        ratio = self.forward_ratio(model, recipe, method, EPOCHS_BUDGET)
        if ratio is not None and math.isclose(ratio, 1.0, rel_tol=1e-9):
            return self.epochs.cells.get((model, recipe, method)), EPOCHS_BUDGET
        return None, SAMPLES_BUDGET

    def forward_ratio(self, model: str, recipe: str, method: str, budget: str) -> float | None:
        """The method's mean forward samples per run over CE's (the epochs CE serves both budgets)."""
        table = self.epochs if budget == EPOCHS_BUDGET else self.samples
        cell = table.cells.get((model, recipe, method))
        ce = table.cells.get((model, recipe, BASELINE_METHOD)) or self.epochs.cells.get((model, recipe,
                                                                                           BASELINE_METHOD))
        ours, theirs = (c.compute_mean("forward_samples") if c else None for c in (cell, ce))
        return ours / theirs if ours and theirs else None

    def gains(self) -> dict[tuple[str, str, str, str], PairedGain | None]:
        """(model, recipe, method, budget of the runs) -> a gain over CE that this comparison shows; a gain
        shown under both budgets (:meth:`cell`) is one interval, counted once."""
        result = {}
        for model, recipe in self.rows():
            for method in self.methods:
                for budget in (EPOCHS_BUDGET, SAMPLES_BUDGET):
                    cell, runs_budget = self.cell(model, recipe, method, budget)
                    if cell is not None:
                        result[(model, recipe, method, runs_budget)] = cell.gain
        return result


@dataclass
class Leaderboard:
    """All tables of one build, the records they came from, and how they were chosen."""

    tables: list[Table]
    loaded: Loaded
    metric: str
    build_command: str | None = None
    budget_pairs: list[BudgetPair] = field(default_factory=list)
    notes: str = ""  # Markdown from `build --notes FILE`, shown under the pages' introduction
    _other_metrics: dict[str, Leaderboard] = field(default_factory=dict, repr=False)

    @property
    def cells(self) -> list[Cell]:
        return [cell for table in self.tables for cell in table.cells.values()]

    @property
    def metric_info(self) -> Metric:
        return METRICS[self.metric]

    def for_metric(self, name: str) -> Leaderboard:
        """The same records aggregated by another registered metric."""
        if name == self.metric:
            return self
        if name not in self._other_metrics:
            self._other_metrics[name] = aggregate(self.loaded, metric=name, build_command=self.build_command)
        return self._other_metrics[name]

    def metric_order(self) -> list[str]:
        """This board's metric first, then every other registered metric some finished record holds."""
        held = {name for name, m in METRICS.items()
                if any(_metric(r, m.field) is not None for r in self.loaded.records if r.get("status") == "finished")}
        return [self.metric] + [name for name in METRICS if name != self.metric and name in held]

    def provenance(self) -> dict[str, Any]:
        records = self.loaded.records
        names = _unique([r["experiment"] for r in records if r.get("experiment")])
        return {
            "source": self.loaded.source,
            "source_kind": self.loaded.kind,
            "build_command": self.build_command,
            "metric": self.metric,
            "tuned": tuning_state(records),
            "runs": len(records),
            "experiments": names,
            "experiment_commands": [experiment_command(name, self.loaded.experiment_files.get(name))
                                    for name in names],
            "experiment_definitions": {name: self.loaded.experiments[name] for name in names
                                       if name in self.loaded.experiments},
            "git_commits": _unique([r.get("git_commit") for r in records]),
            "versions": _unique([r.get("versions") for r in records]),
            "devices": _unique([r.get("device") for r in records]),
            "started_at": min((r["started_at"] for r in records if r.get("started_at")), default=None),
            "finished_at": max((r["finished_at"] for r in records if r.get("finished_at")), default=None),
            "train_seconds": math.fsum(_metric(r, "train_seconds") or 0.0 for r in records),
            "costs": experiment_costs(self.loaded),
            "notes": list(self.loaded.notes),
        }


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def experiment_costs(loaded: Loaded) -> list[dict[str, Any]]:
    """Per experiment: its saved dry-run estimate and its actual wall time.

    The actual time is the sum over every run of the experiment, search trials included, of
    ``finished_at - started_at`` (each run's own wall time: set-up, training, evaluation and checkpoints, without
    the idle time between runs) -- the quantity the estimate predicts for one worker. ``elapsed_seconds`` is the
    first start to the last finish, which also holds pauses (and is shorter with parallel workers).
    """
    costs = []
    for name in sorted(set(loaded.estimates) | set(loaded.run_spans)):
        spans = loaded.run_spans.get(name, [])
        seconds = [d for start, end in spans if (d := _seconds_between(start, end)) is not None]
        elapsed = _seconds_between(min(s for s, _ in spans), max(e for _, e in spans)) if spans else None
        costs.append({"experiment": name, "estimate": loaded.estimates.get(name), "runs": len(spans),
                      "actual_seconds": math.fsum(seconds) if seconds else None, "elapsed_seconds": elapsed})
    return costs


def tuning_state(records: list[dict[str, Any]]) -> str:
    """``all``, ``some`` or ``none``: how many cells' final runs used parameters chosen by a search."""
    searched = {}
    for r in records:
        key = (r.get("experiment"), r.get("cell") or (r.get("model"), r.get("recipe"), r.get("method")))
        searched[key] = searched.get(key, False) or bool(r.get("tuned_params"))
    if searched and all(searched.values()):
        return "all"
    return "some" if any(searched.values()) else "none"


def natural_key(name: str) -> list:
    """Sorts cifar_resnet8 before cifar_resnet20."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def experiment_command(name: str, copy: str | None) -> str:
    """The command that reruns experiment ``name``: its file in the recipes (a group's parts sit in a
    subfolder), else the copy tune wrote."""
    found = sorted(EXPERIMENTS_DIR.rglob(f"{name}.yaml")) if EXPERIMENTS_DIR.is_dir() else []
    path = found[0] if found else EXPERIMENTS_DIR / f"{name}.yaml"
    return command_line(["augbench", "tune", str(path) if found or copy is None else copy])


def method_order(methods: set[str]) -> list[str]:
    first = [m for m in (BASELINE_METHOD, FOCUS_METHOD) if m in methods]
    return first + sorted(methods - set(first), key=natural_key)


def recipe_order(recipes: set[str]) -> list[str]:
    first = [r for r in _PLAIN_RECIPES if r in recipes]
    return first + sorted(recipes - set(first), key=natural_key)


def _setting(record: dict[str, Any], origin: str) -> Setting:
    try:
        return Setting(experiment=str(record.get("group") or record.get("experiment") or ""), dataset=str(record["dataset"]),
                       label_noise=noise_label(record.get("label_noise")),
                       budget=str(record.get("budget", "epochs")), epochs=int(record.get("epochs") or 0),
                       train_size=int(record.get("train_size") or 0))
    except (TypeError, ValueError) as err:
        raise UsageError(f"{origin}: a result record field has the wrong type ({err})") from None


def _better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Of two records for the same seed (a cell run twice by parallel workers), keep a finished one, then the latest."""
    rank = (new.get("status") == "finished", str(new.get("finished_at") or ""))
    return rank > (old.get("status") == "finished", str(old.get("finished_at") or ""))


def aggregate(loaded: Loaded, metric: str = "test_acc", build_command: str | None = None) -> Leaderboard:
    """Groups ``loaded`` records into tables of cells with intervals and paired gains over CE."""
    if metric not in METRICS:
        raise UsageError(f"--metric {metric}: accepted: {', '.join(METRICS)}")
    grouped: dict[tuple, Cell] = {}
    planned: dict[tuple, set[int]] = defaultdict(set)
    row_seeds: dict[tuple, set[int]] = defaultdict(set)
    for record, origin in zip(loaded.records, loaded.origins):
        setting = _setting(record, origin)
        key = (setting, str(record["model"]), str(record["recipe"]), str(record["method"]))
        cell = grouped.get(key)
        if cell is None:
            cell = grouped[key] = Cell(setting, *key[1:], runs={}, origins={}, planned_seeds=[], metric=metric)
        seed = _seed(record, origin)
        if seed in cell.runs:
            cell.duplicates += 1
            if not _better(record, cell.runs[seed]):
                continue
        cell.runs[seed] = record
        cell.origins[seed] = origin
        row_seeds[key[:3]].add(seed)
        if record.get("planned_seeds"):
            planned[key].update(int(s) for s in record["planned_seeds"])

    for key, cell in grouped.items():
        # Plain train records carry no plan: a row's methods are meant to be compared on the same seeds.
        cell.planned_seeds = sorted((planned.get(key) or row_seeds[key[:3]]) | set(cell.runs))
        cell.interval = mean_interval(list(cell.values().values()))
        cell.interval_at_best_val = mean_interval(list(cell.values("test_acc_at_best_val").values()))
        finished = [cell.runs[s] for s in cell.finished_seeds]
        if len(_unique([(r.get("hyperparameters"), r.get("method_args")) for r in finished])) > 1:
            cell.notes.append("configurations differ across seeds")
        if cell.duplicates:
            cell.notes.append(f"{cell.duplicates} duplicate run(s), latest kept")
        # The same runs as Cell.tuned_params, so the values shown and the search named come from one set.
        searched_by = _unique([r.get("experiment") for r in cell.runs.values() if r.get("tuned_params")])
        cell.searches = _unique([loaded.experiments[name]["search"] for name in searched_by
                                 if isinstance(loaded.experiments.get(name, {}).get("search"), dict)])

    def ce_cell(setting: Setting, model: str, recipe: str) -> Cell | None:
        """CE of the same setting; under the samples budget, CE of the epochs budget when it has none."""
        own = grouped.get((setting, model, recipe, BASELINE_METHOD))
        if own is None and setting.budget == SAMPLES_BUDGET:
            return grouped.get((setting.with_budget(EPOCHS_BUDGET), model, recipe, BASELINE_METHOD))
        return own

    for (setting, model, recipe, method), cell in grouped.items():
        baseline = ce_cell(setting, model, recipe)
        if method != BASELINE_METHOD and baseline is not None:
            cell.gain = paired_gain(cell.values(), baseline.values())
            cell.gain_ce_budget = baseline.setting.budget

    by_setting: dict[Setting, dict[tuple[str, str, str], Cell]] = defaultdict(dict)
    for (setting, model, recipe, method), cell in grouped.items():
        by_setting[setting][(model, recipe, method)] = cell
    tables = []
    for setting in sorted(by_setting):
        cells = by_setting[setting]
        models = sorted({m for m, _, _ in cells}, key=natural_key)
        table = Table(setting, models, recipe_order({r for _, r, _ in cells}), method_order({m for _, _, m in cells}),
                      cells)
        _add_interactions(table, lambda model, recipe, s=setting: ce_cell(s, model, recipe))
        table.gain_family = holm_family({key: cell.gain for key, cell in cells.items()
                                         if key[2] != BASELINE_METHOD})
        tables.append(table)
    return Leaderboard(tables, loaded, metric, build_command, budget_pairs=_budget_pairs(tables))


def _add_interactions(table: Table, ce_cell) -> None:
    """Fills ``table.interactions`` and their Holm family; see the module docstring for the formula."""
    base = next((r for r in _PLAIN_RECIPES if r in table.recipes), None)
    table.baseline_recipe = base
    if base is None:
        table.interaction_family = holm_family({})
        return
    for (model, recipe, method), cell in table.cells.items():
        if recipe == base or method == BASELINE_METHOD:
            continue
        base_method = table.cells.get((model, base, method))
        recipe_ce, base_ce = ce_cell(model, recipe), ce_cell(model, base)
        if base_method is None or recipe_ce is None or base_ce is None:
            continue
        by_cell = [cell.values(), base_method.values(), recipe_ce.values(), base_ce.values()]
        seeds = set.intersection(*(set(v) for v in by_cell))
        rm, bm, rc, bc = ({s: v for s, v in values.items() if s in seeds} for values in by_cell)
        interaction = paired_contrast([(1.0, rm), (-1.0, bm), (-1.0, rc), (1.0, bc)])
        if interaction is None:
            continue
        # Tuned cells chosen by different searches: the contrast measures the searches as much as the recipe.
        searches = {json.dumps(c.searches, sort_keys=True) for c in (cell, base_method, recipe_ce, base_ce)}
        table.interactions[(model, recipe, method)] = Interaction(
            model, recipe, method, base, effect=paired_gain(rm, bm), effect_ce=paired_gain(rc, bc),
            interaction=interaction, note=DIFFERENT_SEARCHES if len(searches) > 1 else "")
    table.interaction_family = holm_family({key: i.interaction for key, i in table.interactions.items()})


def _budget_pairs(tables: list[Table]) -> list[BudgetPair]:
    """Settings with runs at both budgets, paired for the side-by-side comparison."""
    by_setting = {t.setting: t for t in tables}
    pairs = []
    for table in tables:
        if table.setting.budget != EPOCHS_BUDGET:
            continue
        samples = by_setting.get(table.setting.with_budget(SAMPLES_BUDGET))
        if samples is None:
            continue
        methods = method_order({m for t in (table, samples) for _, _, m in t.cells} - {BASELINE_METHOD})
        models = sorted({m for t in (table, samples) for m, _, _ in t.cells}, key=natural_key)
        recipes = recipe_order({r for t in (table, samples) for _, r, _ in t.cells})
        pair = BudgetPair(table, samples, models, recipes, methods, family=holm_family({}))
        pair.family = holm_family(pair.gains())
        pairs.append(pair)
    return pairs
