"""One training run: data, model, method, optimizer, per-epoch evaluation, checkpoints, the record.

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
"""

from __future__ import annotations

import copy
import json
import math
import random
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from augbench import models
from augbench.augment.recipe import Recipe, load_recipe
from augbench.config import RunConfig
from augbench.data import (
    add_label_noise,
    load_dataset,
    parse_label_noise,
    stratified_split,
    stratified_subset,
)
from augbench.data.loader import TrainLoader
from augbench.engine.budget import plan_budget
from augbench.engine.callbacks import Callback, EarlyStop
from augbench.engine.metrics import evaluate
from augbench.engine.schedules import SCHEDULES
from augbench.errors import UsageError
from augbench.methods import Batch, Method, create_method
from augbench.track.record import device_name, git_commit, now_iso, read_json, versions, write_json_atomic

CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, RESULT_FILE = "config.json", "metrics.jsonl", "checkpoint.pt", "result.json"
#: Steps between two reads of the running loss (the non-finite check); the only host syncs inside an epoch.
FINITE_CHECK_EVERY = 50


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: accepted: auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return device


def bf16_problem(device: torch.device) -> str | None:
    """Why ``--bf16`` would not help on ``device`` (None when it runs natively).

    On a CPU, bfloat16 autocast is emulated, and slower than float32, unless the
    CPU has AVX512-BF16 or AMX-BF16 instructions; on CUDA the GPU must support it.
    """
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"{torch.cuda.get_device_name(device)} has no bfloat16"
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            flags = ""
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            return None
        return "this CPU has no native bfloat16 instructions (avx512_bf16 or amx_bf16)"
    return f"bfloat16 is not supported on {device.type} by augbench"


@dataclass
class Setup:
    """Everything built and validated before the first file is written."""

    config: RunConfig
    device: torch.device
    loader: TrainLoader
    model: torch.nn.Module
    method: Method
    recipe: Recipe
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    sizes: dict[str, int]
    label_noise: dict[str, Any] | None
    steps_per_epoch: int
    planned_steps: int
    num_epochs: int
    data_splits: str | None = None  # where val and test came from, when not the obvious reading


def build(config: RunConfig, *, data_root: str | None = None, download: bool = False, device: str = "auto",
          num_workers: int = 0, mp_context: str | None = None,
          recipe: Recipe | None = None) -> Setup:
    """Validates ``config`` and builds data, model and method; raises UsageError, writes nothing."""
    config.validate()
    recipe = recipe or load_recipe(config.recipe)
    dev = resolve_device(device)
    if config.bf16 and (problem := bf16_problem(dev)):
        raise UsageError(f"--bf16: {problem}; accepted: a device with native bfloat16 (leave out --bf16)")
    noise = parse_label_noise(config.label_noise)
    method_cls_args = dict(config.method_args)
    ds = load_dataset(config.dataset, data_root=data_root, download=download, image_size=config.image_size)

    # Every global generator a run draws from (batch mixing uses numpy's, as timm does) starts from the seed.
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    random.seed(config.seed)
    method = create_method(config.method, ds.num_classes, method_cls_args)
    model = models.create(config.model, num_classes=ds.num_classes, in_chans=ds.in_chans).to(dev)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    if ds.val_images is not None:  # the data set ships a validation split: it replaces --val-fraction
        train_idx = torch.arange(len(ds.train_labels))
        val_images, val_labels = ds.val_images, ds.val_labels
    else:
        train_idx, val_idx = stratified_split(ds.train_labels, config.val_fraction, config.seed)
        val_images, val_labels = ds.train_images[val_idx], ds.train_labels[val_idx]
    if config.train_subset is not None:
        train_idx = stratified_subset(train_idx, ds.train_labels, config.train_subset, config.seed)
    if len(train_idx) < config.batch_size:
        raise UsageError(f"--batch-size {config.batch_size}: larger than the training set ({len(train_idx)} samples)")
    train_labels = ds.train_labels[train_idx]
    noise_info = None
    if noise is not None:
        kind, rate = noise
        train_labels, flipped = add_label_noise(train_labels, kind, rate, ds.num_classes, config.seed)
        noise_info = {"kind": kind, "rate": rate, "flipped_fraction": flipped}

    recipe = recipe.prepared(ds.num_classes, tuple(ds.train_images.shape[1:]), mean=ds.mean, device=dev)
    loader = TrainLoader(ds.train_images[train_idx], train_labels, torch.arange(len(train_idx)), recipe.pipeline,
                         method.num_views, config.batch_size, ds.mean, ds.std, config.seed,
                         sampler=method.sampler or "shuffle", num_workers=num_workers, mp_context=mp_context,
                         device=dev, dtype=torch.bfloat16 if config.bf16 else torch.float32,
                         channels_last=config.channels_last)

    plan = plan_budget(config.budget, config.epochs, len(loader), method.forward_passes_per_sample)
    method.setup(len(train_idx), dev)
    # Evaluation images stay uint8 on the device and are normalised per evaluation batch.
    return Setup(
        config=config, device=dev, loader=loader, model=model, method=method, recipe=recipe,
        val=(val_images.to(dev), val_labels.to(dev)),
        test=(ds.test_images.to(dev), ds.test_labels.to(dev)),
        sizes={"train_size": len(train_idx), "val_size": len(val_labels), "test_size": len(ds.test_labels)},
        data_splits=ds.splits,
        label_noise=noise_info, steps_per_epoch=plan.steps_per_epoch, planned_steps=plan.planned_steps,
        num_epochs=plan.num_epochs,
    )


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Run:
    """A run folder: config.json, metrics.jsonl, checkpoint.pt and, at the end, result.json."""

    def __init__(self, setup: Setup, out_dir: Path, callbacks: list[Callback] = (), progress: bool = True,
                 log: Callable[[str], None] = print, command: list[str] | None = None,
                 extra_record: dict[str, Any] | None = None):
        self.s, self.out = setup, Path(out_dir)
        self.callbacks, self.progress, self.log = list(callbacks), progress, log
        self.command = command
        self.extra_record = extra_record or {}
        cfg = setup.config
        self.autocast_dtype = torch.bfloat16 if cfg.bf16 else None
        self.optimizer = torch.optim.SGD(setup.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
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

    # -- files -------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.out / name

    def _checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch, "step": self.step, "model": self.s.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "method": self.s.method.state_dict(), "rng": _rng_state(), "history": self.history,
            "forward_samples": self.forward_samples, "train_seconds": self.train_seconds,
            "started_at": self.started_at, "best": self.best,
        }
        tmp = self._path(CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self._path(CHECKPOINT_FILE))

    def _restore(self) -> int:
        state = torch.load(self._path(CHECKPOINT_FILE), map_location=self.s.device, weights_only=False)
        self.s.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.s.method.load_state_dict(state["method"])
        _set_rng_state(state["rng"])
        self.history = state["history"]
        self.step, self.forward_samples = state["step"], state["forward_samples"]
        self.train_seconds, self.started_at = state["train_seconds"], state["started_at"]
        self.best = state["best"]
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
                out = method.step(model, batch)
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
        seconds = time.perf_counter() - start
        method.on_epoch_end(epoch, s.num_epochs)
        self.train_seconds += seconds
        self.forward_samples += forwarded
        seen = max(seen, 1)
        metrics = {"epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   "train_loss": loss_sum.item() / seen, "train_acc": 100.0 * correct.item() / seen,
                   **{f"train_{k}": v.item() / seen for k, v in parts_sum.items()},
                   "epoch_seconds": seconds, "images_per_second": forwarded / max(seconds, 1e-9),
                   "forward_samples": self.forward_samples}
        return metrics

    @staticmethod
    def _check_finite(loss_sum: torch.Tensor, epoch: int, first: int, last: int) -> None:
        """Ends the run (failed) if a loss since the last check was not finite, naming the step range."""
        if last >= first and not torch.isfinite(loss_sum).item():
            raise EarlyStop("failed", f"non-finite loss at epoch {epoch + 1}, between steps {first} and {last}")

    def _evaluate(self, split: str) -> dict[str, float]:
        s, cfg = self.s, self.s.config
        images, labels = s.val if split == "val" else s.test
        result = evaluate(s.model, images, labels, s.loader.mean, s.loader.std, cfg.eval_batch_size,
                          cfg.channels_last, self.autocast_dtype)
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

    def execute(self, resume: bool) -> dict[str, Any]:
        s = self.s
        start_epoch = self._restore() if resume else 0
        for cb in self.callbacks:
            cb.on_start(s.config.to_dict(), resumed=resume)
        status, reason = "finished", None
        try:
            for epoch in range(start_epoch, s.num_epochs):
                metrics = self._train_epoch(epoch)
                self._validate(metrics, epoch)
                if epoch == s.num_epochs - 1:
                    self.history.append(metrics)
                    metrics.update(self._test())
                else:
                    self.history.append(metrics)
                with open(self._path(METRICS_FILE), "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                self._checkpoint(epoch)
                self.log(_epoch_line(metrics, s.num_epochs))
                for cb in self.callbacks:
                    cb.on_epoch_end(metrics)
        except EarlyStop as stop:
            status, reason = stop.status, stop.reason
            self.log(f"run {status}: {reason}")
            if status != "failed" and self.history and "test_acc" not in self.history[-1]:
                self.history[-1].update(self._test())  # a pruned run still reports its test accuracy
        record = self.record(status, reason)
        write_json_atomic(self._path(RESULT_FILE), record)
        for cb in self.callbacks:
            cb.on_finish(record)
        return record

    def record(self, status: str, reason: str | None) -> dict[str, Any]:
        s, cfg = self.s, self.s.config
        last = self.history[-1] if self.history else {}
        best = self.best
        record = {
            "dataset": cfg.dataset, "model": cfg.model, "recipe": s.recipe.name, "recipe_spec": s.recipe.spec,
            "method": cfg.method, "method_args": s.method.args, "hyperparameters": cfg.hyperparameters(),
            "seed": cfg.seed,
            "epochs": cfg.epochs, "epochs_trained": len(self.history), "budget": cfg.budget,
            **s.sizes, "data_splits": s.data_splits, "label_noise": s.label_noise,
            "test_acc": last.get("test_acc"), "test_acc_at_best_val": last.get("test_acc_at_best_val"),
            "best_val_acc": best["val_acc"] if best else None, "best_val_epoch": best["epoch"] if best else None,
            "val_acc": last.get("val_acc"), "test_nll": last.get("test_nll"), "test_ece": last.get("test_ece"),
            "forward_samples": self.forward_samples, "train_seconds": self.train_seconds,
            "eval_seconds": sum(m.get("eval_seconds", 0.0) + m.get("test_seconds", 0.0) for m in self.history),
            "samples_per_second": self.forward_samples / self.train_seconds if self.train_seconds else None,
            "peak_memory_mb": _peak_memory_mb(s.device), "device": device_name(s.device),
            "versions": versions(), "git_commit": git_commit(), "started_at": self.started_at,
            "finished_at": now_iso(), "status": status, "reason": reason,
            "config": cfg.to_dict(), "command": self.command,
        }
        record.update(self.extra_record)
        return record


def _epoch_line(m: dict[str, Any], num_epochs: int) -> str:
    test = f"test {m['test_acc']:.2f}%  " if "test_acc" in m else ""
    return (f"epoch {m['epoch']}/{num_epochs}  loss {m['train_loss']:.4f}  train {m['train_acc']:.2f}%  "
            f"val {m['val_acc']:.2f}%  {test}{m['images_per_second']:.0f} img/s  {m['epoch_seconds']:.1f}s")


def train(config: RunConfig, out_dir: str | Path, *, resume: bool = False, data_root: str | None = None,
          download: bool = False, device: str = "auto", num_workers: int = 0, mp_context: str | None = None,
          recipe: Recipe | None = None, callbacks: list[Callback] = (), progress: bool = True,
          log: Callable[[str], None] = print, command: list[str] | None = None,
          extra_record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trains one run into ``out_dir`` and returns its result record.

    Rerunning with the same configuration resumes from the last checkpoint
    (``resume=True`` insists that there is one); a finished run returns its
    record without training. Bad input raises UsageError before anything is
    written.
    """
    out = Path(out_dir)
    existing = _existing_run(out, config, resume)
    if existing == "finished":
        return read_json(out / RESULT_FILE)
    setup = build(config, data_root=data_root, download=download, device=device, num_workers=num_workers,
                  mp_context=mp_context, recipe=recipe)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if existing is None:
            write_json_atomic(out / CONFIG_FILE, config.to_dict())
            (out / METRICS_FILE).write_text("")
    except OSError as err:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise UsageError(f"--out {out}: cannot write there ({err.strerror})") from None
    run = Run(setup, out, callbacks=callbacks, progress=progress, log=log, command=command,
              extra_record=extra_record)
    return run.execute(resume=existing == "resume")


def _existing_run(out: Path, config: RunConfig, resume: bool) -> str | None:
    """None (fresh), "resume" (a checkpoint for this config) or "finished"; UsageError on a conflict."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        if resume:
            raise UsageError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE})")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out}: folder exists, is not empty and is not an augbench run folder")
        return None
    saved = read_json(config_path)
    current = json.loads(json.dumps(config.to_dict()))
    if saved != current:
        differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise UsageError(f"--out {out}: holds a run with a different configuration ({', '.join(differing)} "
                         f"differ); use another --out or the same flags to resume it")
    if (out / RESULT_FILE).exists():
        return "finished"
    if (out / CHECKPOINT_FILE).exists():
        return "resume"
    if resume:
        raise UsageError(f"--resume: {out} has no checkpoint yet (the run stopped before its first epoch ended)")
    # Config written but no epoch finished: start over in the same folder.
    (out / METRICS_FILE).write_text("")
    return None

