"""Where an experiment's trials live, and how to read its result records back from a storage alone.

A storage is an Optuna storage named by a string: a PostgreSQL (or MySQL,
SQLite) URL, or the path of an Optuna journal file (the default,
``runs/<experiment>/optuna.journal``, which needs no set-up and serves any
number of worker processes on one machine).

Layout inside a storage (``augbench tune`` writes it; nothing else is needed
to read results back):

- study ``<experiment>``: the experiment itself; user attrs ``kind = "experiment"``,
  ``experiment`` (the resolved experiment file) and ``definition_hash``.
- study ``<experiment>/<cell>/search``: the search of one cell (only for cells
  with a search space); study ``<experiment>/<cell>/final``: its final runs.
  User attrs of both: ``kind = "cell"``, ``experiment``, ``cell``, ``phase``
  (``search`` or ``final``) and the cell's axes (dataset, model, recipe,
  method, label_noise).
- every trial's user attrs: ``slot`` (``trial-<k>`` or ``seed-<s>``, also its
  run folder name), ``seed``, and once it ran ``record``: the full result
  record, as the run folder's ``result.json`` holds it. A retried trial is a
  new trial with the same slot.

How a reader finds the final records: take every study whose user attr
``phase`` is ``final`` (and ``experiment`` the one wanted), and in it the
trials in state COMPLETE; their user attr ``record`` is the record. Each
final run completes exactly once, so there is one such trial per cell and
final seed. :func:`final_records` does exactly that; :func:`all_records`
returns search records too (pruned ones included). Neither imports anything
that trains.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.engine
import sqlalchemy.exc
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from augbench.errors import UsageError

DEFAULT_STORAGE_FILE = "optuna.journal"
STORAGE_ENV = "AUGBENCH_STORAGE"
KIND_EXPERIMENT, KIND_CELL = "experiment", "cell"
PHASES = ("search", "final")
RECORD = "record"


# -- naming and redaction ------------------------------------------------------------------------

def is_url(storage: str) -> bool:
    return "://" in storage


def redact_url(storage: str) -> str:
    """The storage string with any password replaced by ``***`` (``postgresql://user:***@host/db``)."""
    if not is_url(storage):
        return storage
    parts = urllib.parse.urlsplit(storage)
    if parts.password is None:
        return storage
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def storage_password(storage: str | None) -> str | None:
    if not storage or not is_url(storage):
        return None
    password = urllib.parse.urlsplit(storage).password
    return password or None


def scrub(text: str, storage: str | None) -> str:
    """``text`` with the storage's password replaced (error messages may quote a URL)."""
    password = storage_password(storage)
    if not password:
        return text
    for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.unquote(password)}:
        text = text.replace(form, "***")
    return text


def study_name(experiment: str, cell: str | None = None, phase: str | None = None) -> str:
    return experiment if cell is None else f"{experiment}/{cell}/{phase}"


# -- opening -------------------------------------------------------------------------------------

def _open_journal(path: str, must_exist: bool, flag: str):
    if must_exist and not Path(path).is_file():
        raise UsageError(f"{flag} {path}: no such journal file (has the experiment started?)")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot open ({err.strerror})") from None


def sqlalchemy_url(url: str) -> str:
    """``url`` with an installed PostgreSQL driver named (SQLAlchemy 2.1 would otherwise insist on psycopg 3)."""
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
        return f"postgresql+{driver}://{rest}"
    return url


def _open_rdb(url: str, flag: str):
    last_error = None
    # Workers that start together race to create the schema on an empty database; the loser retries.
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(sqlalchemy_url(url), engine_kwargs={"pool_pre_ping": True})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            last_error = err
            time.sleep(0.5 + attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as err:
            last_error = err
            break
    message = scrub(str(last_error).splitlines()[0] if str(last_error) else type(last_error).__name__, url)
    raise UsageError(f"{flag} {redact_url(url)}: cannot open ({message})")


def open_storage(storage: str, *, must_exist: bool = False, flag: str = "--storage"):
    """Opens an Optuna storage: a journal file, or an RDB storage for a URL.

    Raises UsageError naming ``flag`` (the option the value came from), with the password redacted, when
    the storage cannot be opened.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The journal storage's file backend is marked experimental; augbench relies on it knowingly.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if not is_url(storage):
        return _open_journal(storage, must_exist, flag)
    return _open_rdb(storage, flag)


def storage_kind(storage: str) -> str:
    """``journal`` or the SQL dialect (``postgresql``, ``sqlite``, ``mysql``) of a storage string."""
    if not is_url(storage):
        return "journal"
    return sqlalchemy.engine.make_url(sqlalchemy_url(storage)).get_backend_name()


# -- reading records -----------------------------------------------------------------------------

def _as_storage(storage):
    return open_storage(storage, must_exist=True) if isinstance(storage, str) else storage


def study_summaries(storage) -> dict[str, Any]:
    """Study name -> Optuna ``StudySummary`` (its ``user_attrs``) for every study in an opened storage."""
    return {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}


def load_study(storage, name: str, **options):
    """The Optuna study ``name`` of an opened storage (``options``: sampler, pruner)."""
    return optuna.load_study(study_name=name, storage=storage, **options)


def experiment_studies(storage, experiment: str | None = None, phase: str | None = None) -> list:
    """The cell studies (Optuna ``StudySummary``) in a storage, optionally of one experiment and phase."""
    found = []
    for study in study_summaries(_as_storage(storage)).values():
        attrs = study.user_attrs
        if attrs.get("kind") != KIND_CELL:
            continue
        if experiment is not None and attrs.get("experiment") != experiment:
            continue
        if phase is not None and attrs.get("phase") != phase:
            continue
        found.append(study)
    return sorted(found, key=lambda s: s.study_name)


def _records(storage, experiment: str | None, phase: str | None, keep: Callable[[Any], bool]) -> list[dict]:
    storage = _as_storage(storage)
    records = []
    for study in experiment_studies(storage, experiment, phase):
        for trial in load_study(storage, study.study_name).get_trials(deepcopy=False):
            if keep(trial) and RECORD in trial.user_attrs:
                records.append(trial.user_attrs[RECORD])
    return records


def final_records(storage, experiment: str | None = None) -> list[dict[str, Any]]:
    """The records of the completed final runs in ``storage`` (a storage string or an opened storage).

    These, and only these, feed the leaderboard: one per cell and final seed.
    """
    return _records(storage, experiment, "final", lambda t: t.state == TrialState.COMPLETE)


def all_records(storage, experiment: str | None = None, phase: str | None = None) -> list[dict[str, Any]]:
    """Every stored record (search and final; completed, pruned, or failed with a record)."""
    return _records(storage, experiment, phase, lambda t: True)


def storage_from_env(value: str | None) -> str | None:
    """``--storage`` if given, else ``$AUGBENCH_STORAGE`` (keeps a password off command lines)."""
    return value or os.environ.get(STORAGE_ENV) or None


def valid_storage_string(storage: str) -> str:
    if is_url(storage) and not re.match(r"^[a-z][a-z0-9+]*://", storage):
        raise UsageError(f"--storage {redact_url(storage)}: accepted: postgresql://USER:PASSWORD@HOST:PORT/DB, "
                         "mysql://..., sqlite:///PATH, or the path of a journal file")
    return storage
