"""One training run's loop: train an epoch, evaluate, checkpoint, report; the record at the end.

Built by :mod:`augbench.engine.build`, checkpointed by
:mod:`augbench.engine.checkpoint`, recorded by :mod:`augbench.engine.record`
and started in its run folder by :mod:`augbench.engine.train`.

The hot loop is ``_train_epoch``: take a batch (already augmented and
normalised on the device), let the method compute its loss, step. It never
reads a value back to the host per step: loss, accuracy and the method's
loss parts accumulate as device tensors and are read every
``FINITE_CHECK_EVERY`` steps (the non-finite-loss check) and at the end of
the epoch. Everything a method does lives in its own file.

Evaluation: the validation split after every epoch (the pruner and best-val
selection need it); the test split once at the end, on the final weights and
on a copy of the weights from the best-validation epoch, kept since that
epoch (in memory and in the checkpoint). So ``test_acc_at_best_val`` is exact
and the test set costs two passes per run, not one per epoch.

DistributedDataParallel (``torchrun --nproc_per_node N -m augbench train``;
:mod:`augbench.engine.distributed`): every rank builds the same model from
the same seed, draws its shard of every global batch (``--batch-size`` stays
the global batch) with its own augmentation stream, and the method runs on
the DDP-wrapped model, so gradients are averaged over the ranks. BatchNorm
normalises with each rank's own shard statistics unless ``--sync-bn``
(CUDA). After each epoch rank 0's BatchNorm buffers go to every rank; the
evaluation is sharded over the ranks and its counts summed. Rank 0 alone
writes the run folder; the checkpoint holds every rank's RNG and method
state, and the record carries ``world_size``. When a rank fails, rank 0 ends
the run with status ``failed``, the reason and ``resumable``: a rerun of the
same command resumes from the last checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from augbench.engine import checkpoint, distributed
from augbench.engine.build import Setup, bf16_problem, build, make_optimizer, resolve_device
from augbench.engine.callbacks import Callback, EarlyStop
from augbench.engine.distributed import World
from augbench.engine.metrics import evaluate
from augbench.engine.record import git_commit, now_iso, result_record
from augbench.errors import UsageError
from augbench.methods import Batch
from augbench.run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    write_json_atomic,
)
from augbench.schedules import SCHEDULES

# Importable from here as well, where the engine's users found them before they had modules of their own.
__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "FINITE_CHECK_EVERY", "METRICS_FILE", "RESULT_FILE", "Run", "Setup",
           "bf16_problem", "build", "resolve_device"]

#: Steps between two reads of the running loss (the non-finite check); the only host syncs inside an epoch.
FINITE_CHECK_EVERY = 50


class Run:
    """A run folder: config.json, metrics.jsonl, checkpoint.pt and, at the end, result.json."""

    def __init__(self, setup: Setup, out_dir: Path, callbacks: list[Callback] = (), progress: bool = True,
                 log: Callable[[str], None] = print, command: list[str] | None = None,
                 extra_record: dict[str, Any] | None = None):
        self.s, self.out = setup, Path(out_dir)
        self.world = setup.world
        # Rank 0 alone reports and writes; the other ranks train, evaluate and take part in every collective.
        main = self.world.is_main
        self.callbacks, self.progress, self.log = list(callbacks) if main else [], progress and main, log
        if not main:
            self.log = lambda line: None
        self.train_model = setup.model
        if self.world.enabled:
            device_ids = [setup.device.index] if setup.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(setup.model, device_ids=device_ids)
        self.command = command
        self.extra_record = extra_record or {}
        cfg = setup.config
        self.autocast_dtype = torch.bfloat16 if cfg.bf16 else None
        self.optimizer = make_optimizer(setup.model, cfg)
        factor = SCHEDULES[cfg.schedule](cfg, float(cfg.epochs))
        # Progress is measured in budget epochs, so a halved (samples) budget runs the whole schedule.
        scale = cfg.epochs / setup.planned_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: factor(step * scale))
        self.history: list[dict[str, Any]] = []
        # The weights of the best-validation epoch so far: {"epoch", "val_acc", "state"} (None before any).
        self.best: dict[str, Any] | None = None
        self.final_test: dict[str, Any] = {}
        self.step = 0
        self.forward_samples = 0
        self.train_seconds = 0.0
        self.started_at = now_iso()
        git_commit()  # read now, once per process: the record names the code this process runs, not a later commit

    # -- files -------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.out / name

    def _checkpoint(self, epoch: int) -> None:
        own = {"method": self.s.method.state_dict(), "rng": checkpoint.rng_state()}
        ranks = [own]
        if self.world.enabled:
            ranks = distributed.gather(distributed.to_device(own, "cpu"))
            if not self.world.is_main:
                return
        state = {
            "epoch": epoch, "step": self.step, "model": self.s.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "method": own["method"], "rng": own["rng"], "history": self.history,
            "forward_samples": self.forward_samples, "train_seconds": self.train_seconds,
            "started_at": self.started_at, "best": self.best, "world_size": self.world.size,
        }
        if self.world.enabled:
            state["rank_states"] = ranks  # rank r's RNG and method state (DLB's replay, PS-KD's memory, ...)
        checkpoint.save(self._path(CHECKPOINT_FILE), state)

    def _restore(self) -> int:
        """Loads the checkpoint (rank 0 reads it; under DDP every rank gets the shared state and its own part)."""
        world, device = self.world, self.s.device
        state = None
        if world.is_main:
            state = checkpoint.load(self._path(CHECKPOINT_FILE))
        if world.enabled:
            state = distributed.broadcast(state)
        saved_world = state.get("world_size", 1)
        if saved_world != world.size:
            raise UsageError(f"--out {self.out}: its checkpoint was written by {saved_world} process(es), this "
                             f"run has {world.size}; accepted: resume with {saved_world} process(es) in all "
                             f"(torchrun --nproc_per_node), or use another --out")
        own = state["rank_states"][world.rank] if world.enabled else {"method": state["method"], "rng": state["rng"]}
        self.s.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.s.method.load_state_dict(distributed.to_device(own["method"], device))
        checkpoint.set_rng_state(own["rng"])
        self.history = state["history"]
        self.step, self.forward_samples = state["step"], state["forward_samples"]
        self.train_seconds, self.started_at = state["train_seconds"], state["started_at"]
        self.best = distributed.to_device(state["best"], device)
        if not world.is_main:
            return state["epoch"] + 1
        # Drop metric lines written after the checkpoint (a crash between the two).
        lines = "".join(json.dumps(m) + "\n" for m in self.history)
        tmp = self._path(METRICS_FILE + ".tmp")
        tmp.write_text(lines)
        tmp.replace(self._path(METRICS_FILE))
        return state["epoch"] + 1

    # -- training ----------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        s = self.s
        model, method, device = s.model, s.method, s.device
        model.train()
        method.on_epoch_start(epoch, s.num_epochs)
        steps = min(s.steps_per_epoch, s.planned_steps - self.step)
        # Running sums stay on the device: reading them is a host sync, done every FINITE_CHECK_EVERY steps.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        parts_sum: dict[str, torch.Tensor] = {}
        seen, forwarded, checked = 0, 0, 0
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{s.num_epochs}", disable=not self.progress,
                   leave=False, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        start = time.perf_counter()
        step = 0
        for step, (views, labels, index) in enumerate(s.loader.epoch(epoch), start=1):
            if step > steps:
                step -= 1
                break
            batch = Batch(views, labels, index, s.recipe.mixer, s.recipe.mix_policy)
            with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                out = method.step(self.train_model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            n = out.labels.shape[0]
            loss_sum += out.loss.detach().float() * n
            correct += (out.logits.detach().argmax(1) == out.labels).sum()
            for key, value in out.parts.items():
                parts_sum[key] = parts_sum.get(key, 0.0) + value.detach().float() * n
            seen += n
            forwarded += out.forward_samples
            bar.update()
            if step % FINITE_CHECK_EVERY == 0:
                self._check_finite(loss_sum, epoch, checked + 1, step)
                checked = step
                rate = forwarded / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{100 * correct.item() / seen:.1f}",
                                img_s=f"{rate:.0f}", refresh=False)
        self._check_finite(loss_sum, epoch, checked + 1, step)
        bar.close()
        method.on_epoch_end(epoch, s.num_epochs)
        if self.world.enabled:
            loss_sum, correct, parts_sum, seen, forwarded = _sum_over_ranks(loss_sum, correct, parts_sum, seen,
                                                                            forwarded)
            distributed.broadcast_buffers(model)  # rank 0's BatchNorm statistics: evaluated and saved
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        self.forward_samples += forwarded
        seen = max(seen, 1)
        metrics = {"epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   "train_loss": loss_sum.item() / seen, "train_acc": 100.0 * correct.item() / seen,
                   **{f"train_{k}": v.item() / seen for k, v in parts_sum.items()},
                   "epoch_seconds": seconds, "images_per_second": forwarded / max(seconds, 1e-9),
                   "forward_samples": self.forward_samples}
        return metrics

    def _check_finite(self, loss_sum: torch.Tensor, epoch: int, first: int, last: int) -> None:
        """Ends the run (failed) if a loss since the last check was not finite, naming the step range.

        Under DDP every rank stops when any rank's loss was not finite.
        """
        if last < first:
            return
        finite = torch.isfinite(loss_sum).item()
        if self.world.enabled:
            finite = distributed.all_true(finite, loss_sum.device)
        if not finite:
            raise EarlyStop("failed", f"non-finite loss at epoch {epoch + 1}, between steps {first} and {last}")

    def _evaluate(self, split: str) -> dict[str, float]:
        s, cfg = self.s, self.s.config
        images, labels = s.val if split == "val" else s.test
        reduce = None
        if self.world.enabled:  # rank r evaluates the r-th contiguous slice; the counts are summed
            bounds = [len(labels) * r // self.world.size for r in (self.world.rank, self.world.rank + 1)]
            images, labels = images[bounds[0]:bounds[1]], labels[bounds[0]:bounds[1]]
            reduce = distributed.sum_
        result = evaluate(s.model, images, labels, s.loader.mean, s.loader.std, cfg.eval_batch_size,
                          cfg.channels_last, self.autocast_dtype, reduce=reduce)
        return {f"{split}_{k}": v for k, v in result.items()}

    def _validate(self, metrics: dict[str, Any], epoch: int) -> None:
        """Validation metrics into ``metrics``; a copy of the weights when validation improves."""
        start = time.perf_counter()
        metrics.update(self._evaluate("val"))
        val = metrics["val_acc"]
        if not math.isnan(val) and (self.best is None or val > self.best["val_acc"]):
            state = {k: v.detach().clone() for k, v in self.s.model.state_dict().items()}
            self.best = {"epoch": epoch + 1, "val_acc": val, "state": state}
        metrics["eval_seconds"] = time.perf_counter() - start

    def _test(self) -> dict[str, Any]:
        """Test metrics of the final weights and, exactly, of the best-validation epoch's weights."""
        start = time.perf_counter()
        result = self._evaluate("test")
        last_epoch = self.history[-1]["epoch"] if self.history else None
        if self.best is not None and self.best["epoch"] != last_epoch:
            final_state = copy.deepcopy(self.s.model.state_dict())
            self.s.model.load_state_dict(self.best["state"])
            at_best = self._evaluate("test")
            self.s.model.load_state_dict(final_state)
        else:
            at_best = result
        if self.best is not None:
            result.update({"test_acc_at_best_val": at_best["test_acc"], "best_val_epoch": self.best["epoch"]})
        result["test_seconds"] = time.perf_counter() - start
        return result

    def _epoch_callbacks(self, metrics: dict[str, Any]) -> None:
        """Rank 0's callbacks; under DDP their decision to stop the run reaches every rank."""
        stop = None
        try:
            for cb in self.callbacks:
                cb.on_epoch_end(metrics)
        except EarlyStop as early:
            stop = early
        if self.world.enabled:
            decision = distributed.broadcast((stop.status, stop.reason) if stop is not None else None)
            stop = EarlyStop(*decision) if decision is not None else None
        if stop is not None:
            raise stop

    def execute(self, resume: bool) -> dict[str, Any]:
        s, main = self.s, self.world.is_main
        start_epoch = self._restore() if resume else 0
        for cb in self.callbacks:
            cb.on_start(s.config.to_dict(), resumed=resume)
        status, reason, resumable = "finished", None, False
        try:
            for epoch in range(start_epoch, s.num_epochs):
                metrics = self._train_epoch(epoch)
                self._validate(metrics, epoch)
                if epoch == s.num_epochs - 1:
                    self.history.append(metrics)
                    metrics.update(self._test())
                else:
                    self.history.append(metrics)
                if main:
                    with open(self._path(METRICS_FILE), "a") as f:
                        f.write(json.dumps(metrics) + "\n")
                self._checkpoint(epoch)
                self.log(_epoch_line(metrics, s.num_epochs))
                self._epoch_callbacks(metrics)
        except EarlyStop as stop:
            status, reason = stop.status, stop.reason
            self.log(f"run {status}: {reason}")
            if status != "failed" and self.history and "test_acc" not in self.history[-1]:
                self.history[-1].update(self._test())  # a pruned run still reports its test accuracy
        except Exception as err:
            # One process fails alone; under DDP a failed rank (or a rank whose peer died) ends the run as
            # failed, and the checkpoint of the last epoch stays for a rerun to resume from.
            if not self.world.enabled or isinstance(err, UsageError):
                raise
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # torchrun's stop must not cut the record short
            status, reason, resumable = "failed", _rank_failure(self.world, err, len(self.history)), True
            # Every rank says why it stopped (torchrun shows all ranks' stderr); rank 0 also records it.
            print(f"augbench train: run failed: {reason}", file=sys.stderr, flush=True)
        finally:
            s.loader.close()  # the next run in this process (a grid's) must not share the cores with idle workers
        record = result_record(self, status, reason)
        if resumable:
            record["resumable"] = True
        if main:
            write_json_atomic(self._path(RESULT_FILE), record)
            for cb in self.callbacks:
                cb.on_finish(record)
        return record


def _sum_over_ranks(loss_sum: torch.Tensor, correct: torch.Tensor, parts_sum: dict[str, torch.Tensor], seen: int,
                    forwarded: int):
    """An epoch's training sums over every rank (one all-reduce): the global loss, accuracy and forward count."""
    keys = sorted(parts_sum)
    device = loss_sum.device
    totals = torch.stack([loss_sum.double(), correct.double(), torch.tensor(seen, dtype=torch.float64, device=device),
                          torch.tensor(forwarded, dtype=torch.float64, device=device),
                          *(parts_sum[k].double() for k in keys)])
    totals = distributed.sum_(totals)
    parts = {k: totals[4 + i] for i, k in enumerate(keys)}
    return totals[0], totals[1], parts, int(totals[2].item()), int(totals[3].item())


def _rank_failure(world: World, err: BaseException, epochs_done: int) -> str:
    """Why this rank stopped, in one line (gloo's messages lose their source location and advice)."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    message = re.sub(r"^\[[^\]]*\]\s*", "", message).split(". This is typically")[0]
    return (f"rank {world.rank} of {world.size} stopped during epoch {epochs_done + 1}: {type(err).__name__}: "
            f"{message} (a rank failed or was killed; rerunning the same command resumes from the last checkpoint)")


def _epoch_line(m: dict[str, Any], num_epochs: int) -> str:
    test = f"test {m['test_acc']:.2f}%  " if "test_acc" in m else ""
    return (f"epoch {m['epoch']}/{num_epochs}  loss {m['train_loss']:.4f}  train {m['train_acc']:.2f}%  "
            f"val {m['val_acc']:.2f}%  {test}{m['images_per_second']:.0f} img/s  {m['epoch_seconds']:.1f}s")
