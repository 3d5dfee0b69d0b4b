"""An experiment's plan in its storage: the slots every cell must fill, and the trials that fill them.

A slot is one run that must end exactly once: a search trial of a cell
(``trial-<k>``, k < ``search.trials``; only for cells with a search space) or
a final run (``seed-<s>`` for each final seed). Its trials carry the slot in
the user attr ``slot``, which is also the run folder's name, so a retry finds
the checkpoint its predecessor left.

Planning is idempotent; every worker runs it under the planning lock when it
starts and whenever it runs out of work:

- it creates the experiment's studies, or refuses a different definition
  under the same name;
- it enqueues a trial for each search slot that has none;
- when a slot's latest trial FAILED, it enqueues a retry with the same
  parameters, unless the slot has failed ``retries + 1`` times (a user's
  interruption does not count) or failed on bad input, which a retry would
  only repeat;
- when every search slot of a cell is settled (complete, pruned or failed for
  good), it enqueues the final runs with the parameters of the best complete
  search trial (highest best validation accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from augbench.errors import UsageError
from augbench.tune.coordination import planning_lock
from augbench.tune.grid import Cell, Experiment
from augbench.tune.optuna_adapter import enqueued_params
from augbench.tune.storage import (
    KIND_CELL,
    KIND_EXPERIMENT,
    load_study,
    redact_url,
    study_name,
    study_summaries,
)

# Slot states; "left" covers waiting, to be retried and not yet planned.
DONE, PRUNED, RUNNING, LEFT, FAILED = "done", "pruned", "running", "left", "failed"
LOST_REASON = "lost: its worker stopped (no heartbeat within the grace period)"


def search_slots(experiment: Experiment, cell: Cell) -> list[str]:
    return [f"trial-{k}" for k in range(experiment.trials)] if experiment.space_for(cell.method) else []


def final_slots(experiment: Experiment) -> list[str]:
    return [f"seed-{s}" for s in experiment.final_seeds]


@dataclass
class Slot:
    name: str
    attempts: list = field(default_factory=list)  # FrozenTrials, oldest first
    retries: int = 0

    @property
    def latest(self):
        return self.attempts[-1] if self.attempts else None

    @property
    def counted_failures(self) -> int:
        return sum(1 for t in self.attempts if t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))

    @property
    def state(self) -> str:
        latest = self.latest
        if latest is None or latest.state == TrialState.WAITING:
            return LEFT
        if latest.state == TrialState.RUNNING:
            return RUNNING
        if latest.state == TrialState.COMPLETE:
            return DONE
        if latest.state == TrialState.PRUNED:
            return PRUNED
        return LEFT if self.retry_due else FAILED

    @property
    def retry_due(self) -> bool:
        """The latest trial failed and the slot may run again."""
        latest = self.latest
        return (latest is not None and latest.state == TrialState.FAIL and latest.user_attrs.get("retry", True)
                and self.counted_failures <= self.retries)

    @property
    def reason(self) -> str | None:
        latest = self.latest
        if latest is None or latest.state != TrialState.FAIL:
            return None
        return latest.user_attrs.get("reason") or LOST_REASON


def slots_of(trials, names: list[str], retries: int) -> dict[str, Slot]:
    slots = {name: Slot(name, retries=retries) for name in names}
    for trial in sorted(trials, key=lambda t: t.number):
        slot = trial.user_attrs.get("slot")
        if slot in slots:
            slots[slot].attempts.append(trial)
    return slots


def settled(slots: dict[str, Slot]) -> bool:
    return all(s.state in (DONE, PRUNED, FAILED) for s in slots.values())


def best_trial(slots: dict[str, Slot]):
    """The complete search trial with the highest objective (ties: the earliest)."""
    complete = [s.latest for s in slots.values() if s.latest is not None and s.latest.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: (t.value, -t.number), default=None)


def fixed_params(trial) -> dict[str, Any]:
    """The parameters a trial ran with, or was enqueued with if it never suggested them."""
    return dict(trial.params) or enqueued_params(trial)


@dataclass
class CellPlan:
    """What the storage says about one cell."""

    cell: Cell
    search: dict[str, Slot]
    final: dict[str, Slot]
    best: Any = None  # the chosen search trial, None without a search

    @property
    def search_failed(self) -> bool:
        return bool(self.search) and settled(self.search) and self.best is None


def read_cell(storage, experiment: Experiment, cell: Cell, names) -> CellPlan:
    """The slots of ``cell`` as the storage has them (``names``: the storage's study names)."""
    def trials_of(phase: str):
        name = study_name(experiment.name, cell.id, phase)
        return load_study(storage, name).get_trials(deepcopy=False) if name in names else []

    search = slots_of(trials_of("search"), search_slots(experiment, cell), experiment.retries)
    final = slots_of(trials_of("final"), final_slots(experiment), experiment.retries)
    best = best_trial(search) if search and settled(search) else None
    return CellPlan(cell, search, final, best)


def _create_study(storage, name: str, user_attrs: dict[str, Any]):
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    for key, value in user_attrs.items():
        study.set_user_attr(key, value)
    return study


def _check_experiment(storage, experiment: Experiment, existing: dict[str, Any], storage_name: str) -> None:
    stored = existing.get("definition_hash")
    if existing.get("kind") != KIND_EXPERIMENT:
        raise UsageError(f"--storage {redact_url(storage_name)}: holds a study named {experiment.name!r} that "
                         "is not an augbench experiment; rename the experiment or use another storage")
    if stored != experiment.definition_hash():
        old = existing.get("experiment", {})
        new = experiment.to_dict()
        differing = sorted(k for k in set(old) | set(new)
                           if k in experiment.definition() and old.get(k) != new.get(k))
        raise UsageError(f"{experiment.source}: experiment {experiment.name!r} in --storage "
                         f"{redact_url(storage_name)} has a different definition ({', '.join(differing) or 'fields'}"
                         " differ); give the changed experiment a new name, or use another --out/--storage")


def check_stored_definition(storage, experiment: Experiment, storage_name: str) -> bool:
    """Whether the storage holds this experiment; UsageError when it holds another definition of it."""
    study = study_summaries(storage).get(experiment.name)
    if study is None:
        return False
    _check_experiment(storage, experiment, study.user_attrs, storage_name)
    return True


def plan(storage, experiment: Experiment, storage_name: str) -> int:
    """Creates what is missing (studies, slot trials, retries, final runs); returns trials enqueued."""
    enqueued = 0
    with planning_lock(storage_name, experiment.name):
        studies = study_summaries(storage)
        if experiment.name in studies:
            _check_experiment(storage, experiment, studies[experiment.name].user_attrs, storage_name)
        else:
            _create_study(storage, experiment.name, {"kind": KIND_EXPERIMENT, "experiment": experiment.to_dict(),
                                                     "definition_hash": experiment.definition_hash()})
        for cell in experiment.cells():
            for phase in ("search", "final") if experiment.space_for(cell.method) else ("final",):
                name = study_name(experiment.name, cell.id, phase)
                if name not in studies:
                    _create_study(storage, name, {"kind": KIND_CELL, "experiment": experiment.name, "cell": cell.id,
                                                  "phase": phase, **cell.axes()})
        names = set(study_summaries(storage))

        def handle(cell: Cell, phase: str):
            return load_study(storage, study_name(experiment.name, cell.id, phase))

        for cell in experiment.cells():
            state = read_cell(storage, experiment, cell, names)
            for slot in state.search.values():
                if slot.latest is None:
                    handle(cell, "search").enqueue_trial({}, user_attrs={"slot": slot.name,
                                                                         "seed": experiment.search_seed})
                    enqueued += 1
                elif slot.retry_due:
                    enqueued += _enqueue_retry(handle(cell, "search"), slot)
            if state.search and (not settled(state.search) or state.best is None):
                continue
            tuned = fixed_params(state.best) if state.best is not None else {}
            for seed, slot in zip(experiment.final_seeds, state.final.values()):
                if slot.latest is None:
                    handle(cell, "final").enqueue_trial(tuned, user_attrs={
                        "slot": slot.name, "seed": seed, "tuned_params": tuned,
                        "source_trial": state.best.number if state.best is not None else None})
                    enqueued += 1
                elif slot.retry_due:
                    enqueued += _enqueue_retry(handle(cell, "final"), slot)
    return enqueued


def _enqueue_retry(study, slot: Slot) -> int:
    latest = slot.latest
    keep = {k: v for k, v in latest.user_attrs.items() if k in ("slot", "seed", "tuned_params", "source_trial")}
    study.enqueue_trial(fixed_params(latest), user_attrs={**keep, "retry_of": latest.number,
                                                          "attempt": len(slot.attempts) + 1})
    return 1
