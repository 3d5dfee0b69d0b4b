"""One training run: data, model, method, optimizer, per-epoch evaluation, checkpoints, the record.

The hot loop is ``_train_epoch``: move a batch to the device, let the method
compute its loss, step. Everything a method does lives in its own file.
"""

from __future__ import annotations

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
from augbench.augment.pipeline import normalize
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


def build(config: RunConfig, *, data_root: str | None = None, download: bool = False, device: str = "auto",
          num_workers: int = 0, mp_context: str | None = None,
          recipe: Recipe | None = None) -> Setup:
    """Validates ``config`` and builds data, model and method; raises UsageError, writes nothing."""
    config.validate()
    recipe = recipe or load_recipe(config.recipe)
    dev = resolve_device(device)
    noise = parse_label_noise(config.label_noise)
    method_cls_args = dict(config.method_args)
    ds = load_dataset(config.dataset, data_root=data_root, download=download)

    # Every global generator a run draws from (batch mixing uses numpy's, as timm does) starts from the seed.
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    random.seed(config.seed)
    method = create_method(config.method, ds.num_classes, method_cls_args)
    model = models.create(config.model, num_classes=ds.num_classes, in_chans=ds.in_chans).to(dev)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    train_idx, val_idx = stratified_split(ds.train_labels, config.val_fraction, config.seed)
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

    recipe = recipe.prepared(ds.num_classes, tuple(ds.train_images.shape[1:]))
    loader = TrainLoader(ds.train_images[train_idx], train_labels, torch.arange(len(train_idx)), recipe.pipeline,
                         method.num_views, config.batch_size, ds.mean, ds.std, config.seed,
                         sampler=method.sampler or "shuffle", num_workers=num_workers, mp_context=mp_context)
    mean, std = torch.tensor(ds.mean), torch.tensor(ds.std)

    def on_device(images, labels):
        return normalize(images, mean, std).to(dev), labels.to(dev)

    plan = plan_budget(config.budget, config.epochs, len(loader), method.forward_passes_per_sample)
    method.setup(len(train_idx), dev)
    return Setup(
        config=config, device=dev, loader=loader, model=model, method=method, recipe=recipe,
        val=on_device(ds.train_images[val_idx], ds.train_labels[val_idx]),
        test=on_device(ds.test_images, ds.test_labels),
        sizes={"train_size": len(train_idx), "val_size": len(val_idx), "test_size": len(ds.test_labels)},
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
            "started_at": self.started_at,
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
        # Drop metric lines written after the checkpoint (a crash between the two).
        lines = "".join(json.dumps(m) + "\n" for m in self.history)
        tmp = self._path(METRICS_FILE + ".tmp")
        tmp.write_text(lines)
        tmp.replace(self._path(METRICS_FILE))
        return state["epoch"] + 1

    # -- training ----------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        s, cfg = self.s, self.s.config
        model, method, device = s.model, s.method, s.device
        model.train()
        method.on_epoch_start(epoch, s.num_epochs)
        steps = min(s.steps_per_epoch, s.planned_steps - self.step)
        loss_sum, correct, seen, forwarded = 0.0, 0, 0, 0
        parts_sum: dict[str, float] = {}
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{s.num_epochs}", disable=not self.progress,
                   leave=False, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        start = time.perf_counter()
        for i, (views, labels, index) in enumerate(s.loader.epoch(epoch)):
            if i >= steps:
                break
            if cfg.channels_last:
                views = [v.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last) for v in views]
            else:
                views = [v.to(device, non_blocking=True) for v in views]
            batch = Batch(views, labels.to(device), index.to(device), s.recipe.mixer, s.recipe.mix_policy)
            with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                out = method.step(model, batch)
            if not torch.isfinite(out.loss):
                raise EarlyStop("failed", f"non-finite loss ({out.loss.item()}) at epoch {epoch + 1}, step {i + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            n = len(out.labels)
            loss_sum += out.loss.item() * n
            correct += (out.logits.argmax(1) == out.labels).sum().item()
            seen += n
            forwarded += out.forward_samples
            for key, value in out.parts.items():
                parts_sum[key] = parts_sum.get(key, 0.0) + value * n
            rate = forwarded / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}", img_s=f"{rate:.0f}",
                            refresh=False)
            bar.update()
        bar.close()
        seconds = time.perf_counter() - start
        method.on_epoch_end(epoch, s.num_epochs)
        self.train_seconds += seconds
        self.forward_samples += forwarded
        metrics = {"epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                   "train_loss": loss_sum / max(seen, 1), "train_acc": 100.0 * correct / max(seen, 1),
                   **{f"train_{k}": v / max(seen, 1) for k, v in parts_sum.items()},
                   "epoch_seconds": seconds, "images_per_second": forwarded / max(seconds, 1e-9),
                   "forward_samples": self.forward_samples}
        return metrics

    def _evaluate(self, metrics: dict[str, Any]) -> None:
        s, cfg = self.s, self.s.config
        for split, (images, labels) in (("val", s.val), ("test", s.test)):
            result = evaluate(s.model, images, labels, cfg.eval_batch_size, cfg.channels_last, self.autocast_dtype)
            metrics.update({f"{split}_{k}": v for k, v in result.items()})

    def execute(self, resume: bool) -> dict[str, Any]:
        s = self.s
        start_epoch = self._restore() if resume else 0
        for cb in self.callbacks:
            cb.on_start(s.config.to_dict(), resumed=resume)
        status, reason = "finished", None
        try:
            for epoch in range(start_epoch, s.num_epochs):
                metrics = self._train_epoch(epoch)
                self._evaluate(metrics)
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
        record = self.record(status, reason)
        write_json_atomic(self._path(RESULT_FILE), record)
        for cb in self.callbacks:
            cb.on_finish(record)
        return record

    def record(self, status: str, reason: str | None) -> dict[str, Any]:
        s, cfg = self.s, self.s.config
        last = self.history[-1] if self.history else {}
        with_val = [m for m in self.history if not math.isnan(m.get("val_acc", float("nan")))]
        best = max(with_val, key=lambda m: m["val_acc"]) if with_val else None
        record = {
            "dataset": cfg.dataset, "model": cfg.model, "recipe": s.recipe.name, "recipe_spec": s.recipe.spec,
            "method": cfg.method, "method_args": s.method.args, "hyperparameters": cfg.hyperparameters(),
            "seed": cfg.seed,
            "epochs": cfg.epochs, "epochs_trained": len(self.history), "budget": cfg.budget,
            **s.sizes, "label_noise": s.label_noise,
            "test_acc": last.get("test_acc"), "test_acc_at_best_val": best["test_acc"] if best else None,
            "best_val_acc": best["val_acc"] if best else None, "best_val_epoch": best["epoch"] if best else None,
            "val_acc": last.get("val_acc"), "test_nll": last.get("test_nll"), "test_ece": last.get("test_ece"),
            "forward_samples": self.forward_samples, "train_seconds": self.train_seconds,
            "samples_per_second": self.forward_samples / self.train_seconds if self.train_seconds else None,
            "peak_memory_mb": _peak_memory_mb(s.device), "device": device_name(s.device),
            "versions": versions(), "git_commit": git_commit(), "started_at": self.started_at,
            "finished_at": now_iso(), "status": status, "reason": reason,
            "config": cfg.to_dict(), "command": self.command,
        }
        record.update(self.extra_record)
        return record


def _epoch_line(m: dict[str, Any], num_epochs: int) -> str:
    return (f"epoch {m['epoch']}/{num_epochs}  loss {m['train_loss']:.4f}  train {m['train_acc']:.2f}%  "
            f"val {m['val_acc']:.2f}%  test {m['test_acc']:.2f}%  {m['images_per_second']:.0f} img/s  "
            f"{m['epoch_seconds']:.1f}s")


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

