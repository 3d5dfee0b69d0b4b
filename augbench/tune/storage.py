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

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.exc
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from sqlalchemy.pool import NullPool

from augbench.errors import UsageError
from augbench.registry import registrar

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


# -- storage kinds: how each opens, and its planning lock ------------------------------------------

@dataclass(frozen=True)
class StorageKind:
    """A kind of Optuna storage, by the name :func:`storage_kind` gives it.

    Attributes:
        open: ``(storage, must_exist, flag) -> storage``; raises UsageError naming ``flag``.
        lock: ``(storage, experiment name) -> context manager``, the planning lock
            (``augbench.tune.coordination``); it must be released when its holder dies.
        form: what the ``--storage`` value looks like, for error messages.
    """

    open: Callable[[str, bool, str], Any]
    lock: Callable[[str, str], Any]
    form: str


#: Storage kinds by name (``journal``, or a SQLAlchemy dialect): registering one makes it a valid
#: ``--storage``, ``$AUGBENCH_STORAGE`` and leaderboard ``--from`` value, with its planning lock.
STORAGE_KINDS: dict[str, StorageKind] = {}
register_storage_kind = registrar(STORAGE_KINDS, "storage kind")


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


def _open_rdb(url: str, must_exist: bool, flag: str):
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


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"augbench:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _session_lock(storage: str, acquire: str, release: str, params: dict) -> Iterator[None]:
    """A database session-level lock, held while the block runs, on a connection of its own."""
    engine = sqlalchemy.create_engine(sqlalchemy_url(storage), poolclass=NullPool)
    conn = engine.connect()
    try:
        conn.execute(sqlalchemy.text(acquire), params)
        conn.commit()
        yield
        conn.execute(sqlalchemy.text(release), params)
        conn.commit()
    finally:
        # Closing the session for good is what releases a session-level lock on every path.
        conn.close()
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


register_storage_kind("journal")(StorageKind(
    _open_journal, lambda storage, name: _file_lock(storage + ".plan-lock"), "the path of a journal file"))
register_storage_kind("postgresql")(StorageKind(
    _open_rdb, lambda storage, name: _session_lock(storage, "SELECT pg_advisory_lock(:key)",
                                                   "SELECT pg_advisory_unlock(:key)", {"key": _lock_key(name)}),
    "postgresql://USER:PASSWORD@HOST:PORT/DB"))
register_storage_kind("mysql")(StorageKind(
    _open_rdb, lambda storage, name: _session_lock(
        storage, "SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)",
        {"name": f"augbench:{hashlib.sha256(name.encode()).hexdigest()[:40]}"}),
    "mysql://USER:PASSWORD@HOST:PORT/DB"))
register_storage_kind("sqlite")(StorageKind(
    _open_rdb, lambda storage, name: _file_lock(f"{sqlalchemy.engine.make_url(storage).database}.plan-lock"),
    "sqlite:///PATH"))


def storage_forms() -> str:
    """Every registered kind's form, for error messages."""
    return ", ".join(kind.form for kind in STORAGE_KINDS.values())


def open_storage(storage: str, *, must_exist: bool = False, flag: str = "--storage"):
    """Opens an Optuna storage of a registered kind (:data:`STORAGE_KINDS`): a journal file, or a URL.

    Raises UsageError naming ``flag`` (the option the value came from), with the password redacted, when
    the storage cannot be opened or is of no registered kind.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The journal storage's file backend is marked experimental; augbench relies on it knowingly.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return STORAGE_KINDS[_checked_kind(storage, flag)].open(storage, must_exist, flag)


def _checked_kind(storage: str, flag: str) -> str:
    try:
        kind = storage_kind(storage)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        kind = None
    if kind not in STORAGE_KINDS:
        raise UsageError(f"{flag} {redact_url(storage)}: not a storage augbench can use; accepted: "
                         f"{storage_forms()}")
    return kind


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
        raise UsageError(f"--storage {redact_url(storage)}: accepted: {storage_forms()}")
    _checked_kind(storage, "--storage")
    return storage
