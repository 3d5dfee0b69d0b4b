"""The Optuna behaviour augbench relies on without a public form (augbench.tune.optuna_adapter), checked
against the installed Optuna, which must lie in the range pyproject.toml declares."""

import re
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from augbench.tune.optuna_adapter import SUPPORTED, enqueued_params

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def declared_optuna_range() -> str:
    (spec,) = re.findall(r'^\s*"optuna([^"]*)",', PYPROJECT.read_text(), flags=re.M)
    return spec


def test_pyproject_declares_the_range_the_adapter_supports():
    assert SpecifierSet(declared_optuna_range()) == SpecifierSet(SUPPORTED)


def test_installed_optuna_is_in_the_supported_range():
    assert Version(version("optuna")) in SpecifierSet(SUPPORTED), (
        f"optuna {version('optuna')} is outside {SUPPORTED}: check augbench/tune/optuna_adapter.py against it, "
        "then widen the range here and in pyproject.toml")


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")


def test_enqueued_params_are_readable_before_the_trial_suggests_them(study):
    study.enqueue_trial({"lr": 0.1, "alpha": 2.0}, user_attrs={"slot": "seed-0"})
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert enqueued_params(waiting) == {"lr": 0.1, "alpha": 2.0}
    assert waiting.params == {}


def test_a_trial_that_was_not_enqueued_has_no_enqueued_params(study):
    trial = study.ask()
    trial.suggest_float("lr", 0.01, 0.1)
    study.tell(trial, 1.0)
    assert enqueued_params(study.trials[0]) == {}


def test_ask_takes_the_oldest_waiting_trial_and_only_it(study):
    """Claiming a planned slot is ``ask`` on a study with a waiting trial (tune/coordination.py)."""
    study.enqueue_trial({}, user_attrs={"slot": "trial-0"})
    study.enqueue_trial({}, user_attrs={"slot": "trial-1"})
    first, second = study.ask(), study.ask()
    assert (first.user_attrs["slot"], second.user_attrs["slot"]) == ("trial-0", "trial-1")
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.RUNNING] * 2


def test_tell_by_number_fails_a_running_trial_once(study):
    """A lost trial is failed by number from any process; the second attempt is refused (fail_lost_trials)."""
    study.enqueue_trial({}, user_attrs={"slot": "trial-0"})
    trial = study.ask()
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    with pytest.raises((ValueError, optuna.exceptions.UpdateFinishedTrialError)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr("augbench:heartbeat", 0.0)  # how the running worker learns it lost the trial
