"""How workers that share only a storage avoid running anything twice, and notice a worker that died.

- Claiming: a worker runs only the trials it moved from WAITING to RUNNING.
  That move is atomic in Optuna's RDB storage (``SELECT ... FOR UPDATE``) and
  in its journal storage (the log decides who was first), so two workers never
  run the same trial.
- Planning (creating studies, enqueueing a phase's trials, enqueueing retries)
  runs under a lock, so each slot has at most one live trial. The lock is the
  storage's own and dies with its holder: a PostgreSQL advisory lock, MySQL's
  ``GET_LOCK``, or ``flock`` on a file next to a journal or SQLite file.
- Heartbeats: the worker of a running trial beats every ``interval`` seconds
  (the RDB storage's heartbeat table, or a trial system attr in a journal). A
  trial whose last beat is older than ``grace`` is failed by whichever worker
  sees it first (the RUNNING -> FAIL move is atomic too), and the next planning
  enqueues its retry. On the same machine a trial whose worker process is gone
  is failed at once, without waiting for the grace period.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from augbench.tune.storage import journal_path, sql_engine, storage_kind

OWNER_ATTR = "augbench:owner"
HEARTBEAT_ATTR = "augbench:heartbeat"
HOST_ENV = "AUGBENCH_HOST_ID"


# -- the planning lock ---------------------------------------------------------------------------

def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"augbench:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _session_lock(storage, acquire: str, release: str, params: dict) -> Iterator[None]:
    """A database session-level lock, held while the block runs."""
    import sqlalchemy

    conn = sql_engine(storage).connect()
    try:
        conn.execute(sqlalchemy.text(acquire), params)
        conn.commit()
        yield
        conn.execute(sqlalchemy.text(release), params)
        conn.commit()
    except BaseException:
        # Closing the session for good is what releases a session-level lock on every path.
        conn.invalidate()
        raise
    finally:
        conn.close()


def _postgres_lock(storage, name: str):
    return _session_lock(storage, "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)",
                         {"key": _lock_key(name)})


def _mysql_lock(storage, name: str):
    return _session_lock(storage, "SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)",
                         {"name": f"augbench:{hashlib.sha256(name.encode()).hexdigest()[:40]}"})


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _journal_lock(storage, name: str):
    return _file_lock(journal_path(storage) + ".plan-lock")


def _sqlite_lock(storage, name: str):
    return _file_lock(f"{sql_engine(storage).url.database}.plan-lock")


#: Planning locks by storage kind (``storage_kind``): each is released when its holder dies.
PLANNING_LOCKS = {"postgresql": _postgres_lock, "mysql": _mysql_lock, "sqlite": _sqlite_lock,
                  "journal": _journal_lock}


def planning_lock(storage, name: str):
    kind = storage_kind(storage)
    if kind not in PLANNING_LOCKS:
        raise NotImplementedError(f"no planning lock for {kind} storages (accepted: {', '.join(PLANNING_LOCKS)})")
    return PLANNING_LOCKS[kind](storage, name)


# -- who runs a trial ----------------------------------------------------------------------------

def host_id() -> str:
    """This machine: host name and boot id (``$AUGBENCH_HOST_ID`` overrides it)."""
    if os.environ.get(HOST_ENV):
        return os.environ[HOST_ENV]
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}:{boot}"


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process, from /proc; None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("gone", "")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]


def owner_info() -> dict[str, Any]:
    stat = _process_stat(os.getpid())
    return {"host": host_id(), "pid": os.getpid(), "start": stat[1] if stat else None}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process that claimed a trial on this machine still runs (a reused pid does not count)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _process_stat(pid)
    if stat is None:
        return True
    state, start = stat
    if state in ("gone", "Z", "X"):
        return False
    return owner.get("start") in (None, start)


# -- heartbeats ----------------------------------------------------------------------------------

def _beat_rdb(storage, trial_id: int) -> None:
    storage.record_heartbeat(trial_id)


def _beat_journal(storage, trial_id: int) -> None:
    storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())


def _beat_for(storage):
    return _beat_journal if storage_kind(storage) == "journal" else _beat_rdb


class Heartbeat:
    """Beats for one running trial from a background thread until stopped.

    ``lost`` turns true when the storage refuses a beat because the trial was
    already failed (another worker declared it lost).
    """

    def __init__(self, storage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.beat = _beat_for(storage)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat(self.storage, self.trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        while not self._stop.wait(self.interval):
            try:
                self.beat(self.storage, self.trial_id)
            except UpdateFinishedTrialError:
                self.lost = True
                return
            except Exception:  # a storage hiccup: the next beat may succeed, and grace allows for it
                continue


def fail_lost_trials(storage, study, grace: float) -> int:
    """Fails the running trials of ``study`` whose worker is gone; returns how many this call failed.

    Gone means: its process on this machine has ended, or its heartbeat is older than ``grace``
    seconds (RDB: Optuna's own stale-trial check against the database clock).
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    journal = storage_kind(storage) == "journal"
    me, now = host_id(), time.time()
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.system_attrs.get(OWNER_ATTR)
        if owner and owner.get("host") == me and not owner_alive(owner):
            lost.append(trial)
        elif journal:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - trial.system_attrs.get(HEARTBEAT_ATTR, started) > grace:
                lost.append(trial)
    failed = 0
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in lost:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            failed += bool(storage.set_trial_state_values(trial_id, TrialState.FAIL))
        except UpdateFinishedTrialError:
            pass  # its worker finished it, or another worker failed it first
    if not journal:
        before = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        optuna.storages.fail_stale_trials(study)
        failed += len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) - before
    return failed
