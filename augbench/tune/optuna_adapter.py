"""What augbench needs from Optuna that Optuna has no public form for, in one place.

Everything else in augbench uses Optuna's public interface only: ``create_study``,
``load_study``, ``get_all_study_summaries``, ``Study.ask``/``tell``/``enqueue_trial``,
``Trial`` and the storages' constructors (``JournalStorage(JournalFileBackend(path))``,
``RDBStorage(url)``). The functions here rely on behaviour that Optuna documents
nowhere; ``tests/test_optuna_adapter.py`` checks each of them and that the
installed Optuna lies in ``SUPPORTED``, the range ``pyproject.toml`` declares.
"""

from __future__ import annotations

from typing import Any

#: The Optuna versions augbench supports: 4.x, which it was written against (``JournalFileBackend`` first
#: appears in 4.0), and 5.0, which its tests run with. pyproject.toml declares the same range; widen it
#: only after tests/test_optuna_adapter.py and tests/test_tune.py pass with the new version.
SUPPORTED = ">=4.0,<5.1"

# ``Study.enqueue_trial`` keeps the parameters it was given in this system attr until the trial suggests them.
_ENQUEUED_PARAMS = "fixed_params"


def enqueued_params(trial) -> dict[str, Any]:
    """The parameters a trial (a ``FrozenTrial``) was enqueued with; empty when it was not enqueued."""
    return dict(trial.system_attrs.get(_ENQUEUED_PARAMS, {}))
