"""A worker: claims waiting trials of an experiment from the storage and trains them until none is left.

Any number of workers, on any machines, may share one storage; see
:mod:`augbench.tune.coordination` for why none runs a trial twice and
:mod:`augbench.tune.plan` for what gets enqueued. One trial is one call of
``augbench.engine.train`` into the slot's run folder::

    OUT/search/<cell>/trial-<k>/    search slot k (k is also the trial number of its first attempt)
    OUT/final/<cell>/seed-<s>/      final run with seed s

A retry of a slot trains the same configuration into the same folder, so it
resumes from the checkpoint its predecessor left (and a run that had finished
is not trained again). Each trial's result record goes into that folder
(``result.json``) and into the trial's user attr ``record``.

An experiment with ``ddp: {nproc_per_node: N}`` (N > 1) trains each trial as
one DDP run: the worker launches ``torchrun --standalone --nproc_per_node N
-m augbench train ...`` on its own machine (a free rendezvous port per run),
relays rank 0's lines and reads the record from the run folder. The trial's
callbacks then see the run afterwards, from its metrics file: W&B gets every
epoch and the pruner the validation curve, but a DDP search trial is not
pruned while it runs.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from augbench.engine import train
from augbench.engine.callbacks import Callback, EarlyStop
from augbench.errors import UsageError
from augbench.run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    read_json,
    write_json_atomic,
)
from augbench.track.wandb_logger import WandbLogger
from augbench.tune.coordination import OWNER_ATTR, Heartbeat, fail_lost_trials, owner_info, planning_lock
from augbench.tune.grid import Cell, Experiment
from augbench.tune.plan import plan
from augbench.tune.reproduce import command_line, train_command
from augbench.tune.samplers import build_sampler
from augbench.tune.storage import RECORD, load_study, redact_url, scrub, study_name, study_summaries

REPRODUCE_DIR = "runs/reproduce"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch metric lines of a run folder (after a resume: those of the restored checkpoint)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class PruningCallback(Callback):
    """Reports ``val_acc`` per epoch to ``trial`` and raises ``EarlyStop("pruned")`` when it should stop."""

    def __init__(self, trial, run_dir: Path, pruner_name: str):
        self.trial, self.run_dir, self.pruner_name = trial, Path(run_dir), pruner_name
        self.epochs: int | None = None  # the run's last epoch, from its configuration

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        self.epochs = config.get("epochs")
        # A retried trial is a new Optuna trial: give it the curve its predecessor already trained.
        if resumed:
            for metrics in read_metrics(self.run_dir):
                self.trial.report(metrics["val_acc"], metrics["epoch"])

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        epoch, value = metrics["epoch"], metrics["val_acc"]
        self.trial.report(value, epoch)
        # At the last epoch the run is trained: stopping it then saves nothing and would drop a finished trial.
        if epoch != self.epochs and self.trial.should_prune():
            raise EarlyStop("pruned", f"{self.pruner_name} pruner at epoch {epoch}: validation accuracy "
                                      f"{value:.2f}% is below what other trials of this cell reached")


class ResumeNote(Callback):
    """Notes in the trial how many epochs its run folder's checkpoint already held (a retry resumes there)."""

    def __init__(self, trial, run_dir: Path):
        self.trial, self.run_dir = trial, run_dir

    def on_start(self, config: dict[str, Any], resumed: bool) -> None:
        self.trial.set_user_attr("resumed_from_epoch", len(read_metrics(self.run_dir)) if resumed else 0)


class Interrupted(KeyboardInterrupt):
    """Raised in a worker on SIGINT/SIGTERM; the running trial is handed back for a later retry."""


class Worker:
    """Runs trials of one experiment until every slot is settled (done, pruned or failed for good)."""

    def __init__(self, experiment: Experiment, storage, storage_name: str, out_dir: Path, *,
                 use_wandb: bool = True, device: str = "auto", data_root: str | None = None,
                 log: Callable[[str], None] = print, poll_seconds: float | None = None):
        self.exp, self.storage, self.storage_name = experiment, storage, storage_name
        self.out = Path(out_dir)
        self.use_wandb, self.device, self.data_root, self.log = use_wandb, device, data_root, log
        self.poll = poll_seconds or min(5.0, experiment.heartbeat_interval)
        self.cells = {cell.id: cell for cell in experiment.cells()}
        self.loaded: dict[tuple[str, str], Any] = {}  # (cell, phase) -> Optuna Study, once it exists
        self.trained = 0
        self.mp_context = None
        if use_wandb and experiment.loader_workers:
            # W&B's threads must not be forked into DataLoader workers; a forkserver that has imported the data
            # pipeline once starts each epoch's workers in a fraction of a second instead of seconds.
            multiprocessing.set_forkserver_preload(["augbench.data.loader", "augbench.augment"])
            self.mp_context = "forkserver"

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Works until nothing is left to run anywhere; returns the number of trials this worker ran."""
        plan(self.storage, self.exp, self.storage_name)
        last_reap = 0.0
        while True:
            if time.monotonic() - last_reap > self.exp.heartbeat_interval:
                self.fail_lost()
                last_reap = time.monotonic()
            claimed = self.claim()
            if claimed is not None:
                self.run_trial(*claimed)
                continue
            self.fail_lost()
            last_reap = time.monotonic()
            if plan(self.storage, self.exp, self.storage_name):
                continue
            if not self.live_trials():
                return self.trained
            time.sleep(self.poll)

    def _studies(self):
        """(cell, phase, Optuna study) of the experiment's studies, in grid order."""
        names = None
        for cell in self.cells.values():
            for phase in ("search", "final"):
                if (cell.id, phase) not in self.loaded:
                    name = study_name(self.exp.name, cell.id, phase)
                    names = set(study_summaries(self.storage)) if names is None else names
                    if name not in names:
                        continue
                    pruner = self.exp.pruner.build() if phase == "search" else optuna.pruners.NopPruner()
                    self.loaded[cell.id, phase] = load_study(self.storage, name, pruner=pruner)
                yield cell, phase, self.loaded[cell.id, phase]

    def claim(self):
        """Takes one WAITING trial for this worker (``Study.ask``); (cell, phase, study, trial) or None."""
        with planning_lock(self.storage_name, self.exp.name):
            for cell, phase, study in self._studies():
                if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    continue
                trial = study.ask()
                trial.set_user_attr(OWNER_ATTR, owner_info())
                if "slot" not in trial.user_attrs:  # no waiting trial after all: ask made one of its own
                    trial.set_user_attr("reason", "not a planned slot")
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                return cell, phase, study, trial
        return None

    def live_trials(self) -> int:
        return sum(len(study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)))
                   for _, _, study in self._studies())

    def fail_lost(self) -> None:
        for cell, phase, study in self._studies():
            if fail_lost_trials(study, self.exp.heartbeat_grace):
                self.log(f"[{cell.id} {phase}] a trial whose worker stopped was failed; it will be retried")

    # -- one trial ---------------------------------------------------------------------------------
    def run_trial(self, cell: Cell, phase: str, study, trial) -> None:
        slot, seed = trial.user_attrs["slot"], trial.user_attrs["seed"]
        # Each slot's attempt samples from its own seed, whichever worker runs it.
        study.sampler = build_sampler(self.exp.sampler, cell.id, slot, trial.user_attrs.get("attempt", 1),
                                      tuple(self.exp.space_for(cell.method)))
        prefix = f"[{cell.id} {phase} {slot}]"
        with Heartbeat(trial, self.exp.heartbeat_interval) as heartbeat:
            try:
                outcome = self._train(study, trial, cell, phase, slot, seed, prefix)
            except Exception as err:  # before training started (parameters, run folder): still this trial's failure
                self.log(f"{prefix} failed:\n{scrub(traceback.format_exc(), self.storage_name)}")
                outcome = self._failure(f"{type(err).__name__}: {err}", True, None)
            if heartbeat.lost:
                self.log(f"{prefix} trial {trial.number} was declared lost by another worker while it ran; "
                         "its retry will reuse this run folder")
                return
            self._tell(study, trial, outcome, prefix)
        self.trained += 1

    def _run_dir(self, phase: str, cell: Cell, slot: str, config_dict: dict[str, Any]) -> Path:
        run_dir = self.out / phase / cell.id / slot
        config_path = run_dir / CONFIG_FILE
        if config_path.exists() and read_json(config_path) != json.loads(json.dumps(config_dict)):
            # Left by an earlier definition of this experiment (or a search slot whose parameters were never
            # stored): keep it, out of the way.
            aside = run_dir.with_name(f"{slot}.superseded-{int(time.time())}")
            shutil.move(str(run_dir), aside)
            self.log(f"[{cell.id} {phase} {slot}] {run_dir} held another configuration; moved to {aside}")
        return run_dir

    def _train(self, study, trial, cell: Cell, phase: str, slot: str, seed: int, prefix: str) -> dict[str, Any]:
        """Trains the trial's run; returns {"record": ...} or {"reason": ..., "retry": bool}."""
        space = self.exp.space_for(cell.method)
        params = {name: param.suggest(trial) for name, param in space.items()}
        config = self.exp.run_config(cell, params, seed)
        run_dir = self._run_dir(phase, cell, slot, config.to_dict())
        reproduce = train_command(config, f"{REPRODUCE_DIR}/{self.exp.name}/{phase}/{cell.id}/{slot}")
        extra = {"experiment": self.exp.name, "group": self.exp.table_group, "cell": cell.id, "phase": phase, "slot": slot,
                 "trial_number": trial.number, "tuned_params": params, "storage": redact_url(self.storage_name),
                 "reproduce": command_line(reproduce)}
        if phase == "final":
            extra["planned_seeds"] = list(self.exp.final_seeds)
        trial.set_user_attr("run_dir", str(run_dir))
        callbacks: list[Callback] = [ResumeNote(trial, run_dir)]
        wandb = self._wandb(run_dir, cell, phase, slot, trial.number, extra) if self.use_wandb else None
        if wandb is not None:
            callbacks.append(wandb)  # before pruning, so that the epoch that prunes is logged too
        if phase == "search":
            callbacks.append(PruningCallback(trial, run_dir, self.exp.pruner.type))
        self.log(f"{prefix} trial {trial.number}: seed {seed}" + (f", {params}" if params else ""))
        try:
            if self.exp.ddp_processes > 1:
                record, reason = self._train_ddp(config, run_dir, callbacks, extra, prefix)
                if record is None:  # a rerun resumes from the checkpoint the ranks left
                    return self._failure(reason, True, wandb)
            else:
                record = train(config, run_dir, data_root=self.data_root, device=self.device,
                               num_workers=self.exp.loader_workers,
                               mp_context=self.mp_context,
                               callbacks=callbacks, progress=False, log=lambda line: self.log(f"{prefix} {line}"),
                               command=reproduce, extra_record=extra)
        except KeyboardInterrupt:
            self._give_back(study, trial, prefix, wandb)
            raise
        except UsageError as err:
            return self._failure(f"bad input: {err}", False, wandb)
        except Exception as err:
            self.log(f"{prefix} failed:\n{scrub(traceback.format_exc(), self.storage_name)}")
            return self._failure(f"{type(err).__name__}: {err}", True, wandb)
        if record.get("trial_number") != trial.number:
            # A finished run folder reused by a retry: the record now belongs to this trial.
            record = {**record, **extra}
            write_json_atomic(run_dir / RESULT_FILE, record)
            if wandb is not None:
                wandb.close(0)
        return {"record": json.loads(json.dumps(record, default=str))}

    def _train_ddp(self, config, run_dir: Path, callbacks: list[Callback], extra: dict[str, Any],
                   prefix: str) -> tuple[dict[str, Any] | None, str | None]:
        """Trains the run on ``ddp_processes`` processes with torchrun: ``(record, None)`` or ``(None, reason)``.

        The callbacks see the run once it has ended (``on_start`` as for a resumed run, which replays the
        metrics file, then ``on_finish``); ResumeNote is told beforehand whether a checkpoint was there.
        """
        resumed = (run_dir / CHECKPOINT_FILE).exists()
        for cb in callbacks:
            if isinstance(cb, ResumeNote):
                cb.on_start(config.to_dict(), resumed)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node", str(self.exp.ddp_processes), "-m", "augbench",
                   *train_command(config, str(run_dir))[1:], "--no-progress", "--device", self.device,
                   "--workers", str(self.exp.loader_workers)]
        if config.sync_bn:
            command.append("--sync-bn")
        if self.data_root:
            command += ["--data-root", self.data_root]
        tail: list[str] = []
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for line in proc.stdout:
                self.log(f"{prefix} {line.rstrip()}")
                tail = [*tail[-2:], line.rstrip()]
            proc.wait()
        except KeyboardInterrupt:  # torchrun stops its ranks on SIGTERM; rank 0 records the run as resumable
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        record = read_json(run_dir / RESULT_FILE) if (run_dir / RESULT_FILE).exists() else None
        # A record that is not resumable is the run's outcome (finished, or failed for good: non-finite loss).
        if record is None or record.get("resumable"):
            reason = (record or {}).get("reason") or (f"torchrun exited with status {proc.returncode}: "
                                                      + " | ".join(tail))
            return None, reason
        record = {**record, **extra}
        write_json_atomic(run_dir / RESULT_FILE, record)
        for cb in callbacks:
            if not isinstance(cb, ResumeNote):
                cb.on_start(config.to_dict(), True)
                cb.on_finish(record)
        return record, None

    def _wandb(self, run_dir: Path, cell: Cell, phase: str, slot: str, number: int, extra: dict[str, Any]):
        return WandbLogger(run_dir, project=self.exp.wandb_project, group=f"{self.exp.name}/{cell.id}",
                           job_type=phase, name=f"{cell.id}/{phase}/{slot}/trial-{number}",
                           extra_config=extra, mode=self.exp.wandb_mode,
                           tags=[self.exp.name, cell.method, cell.recipe, cell.model], read_history=read_metrics,
                           redact=lambda text: scrub(text, self.storage_name))

    def _failure(self, reason: str, retry: bool, wandb) -> dict[str, Any]:
        if wandb is not None:
            wandb.close(1)
        return {"reason": scrub(reason, self.storage_name), "retry": retry}

    def _give_back(self, study, trial, prefix: str, wandb) -> None:
        if wandb is not None:
            wandb.close(130)
        try:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("reason", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            self.log(f"{prefix} interrupted; the next `augbench tune` or `augbench worker` resumes it")
        except Exception:  # the storage may be what went away; the heartbeat grace period covers that
            pass

    def _tell(self, study, trial, outcome: dict[str, Any], prefix: str) -> None:
        record = outcome.get("record")
        try:
            if record is None:
                trial.set_user_attr("reason", outcome["reason"])
                trial.set_user_attr("retry", outcome["retry"])
                study.tell(trial, state=TrialState.FAIL)
                self.log(f"{prefix} trial {trial.number} failed: {outcome['reason']}")
                return
            trial.set_user_attr(RECORD, record)
            status, value = record["status"], record.get("best_val_acc")
            if status == "finished" and value is not None:
                study.tell(trial, values=value)
                self.log(f"{prefix} trial {trial.number} complete: best val {value:.2f}%, "
                         f"test {record['test_acc']:.2f}%")
            elif status == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
                self.log(f"{prefix} trial {trial.number} pruned after {record['epochs_trained']} epochs")
            else:
                reason = record.get("reason") or "no validation accuracy"
                trial.set_user_attr("reason", reason)
                study.tell(trial, state=TrialState.FAIL)
                self.log(f"{prefix} trial {trial.number} failed: {reason}")
        except (UpdateFinishedTrialError, ValueError) as err:
            self.log(f"{prefix} trial {trial.number} was finished elsewhere ({err}); result kept in its folder")
