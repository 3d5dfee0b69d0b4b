"""How workers that share only a storage avoid running anything twice, and notice a worker that died.

- Claiming: a worker takes a waiting trial with ``Study.ask``, which moves it
  from WAITING to RUNNING; that move is atomic in Optuna's RDB storage
  (``SELECT ... FOR UPDATE``) and in its journal storage (the log decides who
  was first), so two workers never run the same trial. Claims run under the
  planning lock, so ``ask`` always finds the waiting trial it was sent for
  and never creates one of its own.
- Planning (creating studies, enqueueing a phase's trials, enqueueing retries)
  runs under the same lock, so each slot has at most one live trial. The lock
  is the storage's own and dies with its holder: a PostgreSQL advisory lock,
  MySQL's ``GET_LOCK``, or ``flock`` on a file next to a journal or SQLite file.
- Heartbeats: the worker of a running trial writes the time into the trial's
  user attr ``augbench:heartbeat`` every ``interval`` seconds. A trial whose
  last beat is older than ``grace`` is failed by whichever worker sees it
  first (``Study.tell``: the RUNNING -> FAIL move is atomic too), and the next
  planning enqueues its retry. On the same machine a trial whose worker
  process is gone is failed at once, without waiting for the grace period.
  Optuna's own heartbeat serves only ``Study.optimize`` on RDB storages and its
  ``RetryFailedTrialCallback`` enqueues retries outside any lock, so neither
  can keep a slot to one live trial; augbench does not use them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from augbench.tune.storage import STORAGE_KINDS, storage_kind

OWNER_ATTR = "augbench:owner"
HEARTBEAT_ATTR = "augbench:heartbeat"
HOST_ENV = "AUGBENCH_HOST_ID"


# -- the planning lock ---------------------------------------------------------------------------

def planning_lock(storage: str, name: str):
    """The lock of experiment ``name`` in the storage named ``storage`` (a journal path or a URL): its storage
    kind's own (``augbench.tune.storage.STORAGE_KINDS``), released when its holder dies."""
    return STORAGE_KINDS[storage_kind(storage)].lock(storage, name)


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

class Heartbeat:
    """Beats for one running trial (an Optuna ``Trial``) from a background thread until stopped.

    ``lost`` turns true when the storage refuses a beat because the trial was
    already failed (another worker declared it lost).
    """

    def __init__(self, trial, interval: float):
        self.trial, self.interval = trial, interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def beat(self) -> None:
        self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except UpdateFinishedTrialError:
                self.lost = True
                return
            except Exception:  # a storage hiccup: the next beat may succeed, and grace allows for it
                continue


def fail_lost_trials(study, grace: float) -> int:
    """Fails the running trials of ``study`` whose worker is gone; returns how many this call failed.

    Gone means: its process on this machine has ended, or its last heartbeat (or its start, before the
    first beat) is older than ``grace`` seconds.
    """
    me, now = host_id(), time.time()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER_ATTR)
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        gone = owner and owner.get("host") == me and not owner_alive(owner)
        if not gone and now - trial.user_attrs.get(HEARTBEAT_ATTR, started) <= grace:
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
            failed += 1
        except (UpdateFinishedTrialError, ValueError):
            pass  # its worker finished it, or another worker failed it first
    return failed
