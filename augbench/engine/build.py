"""Building a run: device, data, splits, label noise, loader, model, method and recipe, all validated.

:func:`build` does everything that can refuse the input before the first
file of a run folder is written, and returns it as a :class:`Setup`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
from augbench.data.loader import TrainLoader, mix_seed
from augbench.engine import distributed
from augbench.engine.budget import plan_budget
from augbench.engine.distributed import SINGLE, World
from augbench.errors import FieldError, UsageError
from augbench.methods import Method, create_method


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
    world: World = SINGLE  # this process's rank among the run's processes (DDP), one process by default


def build(config: RunConfig, *, data_root: str | None = None, download: bool = False, device: str = "auto",
          num_workers: int = 0, mp_context: str | None = None,
          recipe: Recipe | None = None, world: World = SINGLE) -> Setup:
    """Validates ``config`` and builds data, model and method; raises UsageError, writes nothing.

    ``world``: this rank's shard of every batch and its own augmentation and global-RNG streams (DDP).
    """
    config.validate()
    recipe = recipe or load_recipe(config.recipe, dataset=config.dataset)
    dev = resolve_device(device)
    distributed.check_request(world, config.batch_size, config.sync_bn, str(dev))
    if config.bf16 == "auto":  # on where it runs natively; the record holds what was used
        config = dataclasses.replace(config, bf16=bf16_problem(dev) is None)
    elif config.bf16 and (problem := bf16_problem(dev)):
        raise FieldError("bf16", f"--bf16: {problem}; accepted: a device with native bfloat16 (leave out --bf16, "
                                 "or --bf16 auto)")
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
    if config.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if world.enabled:
        # Same initial weights on every rank (seeded above); from here on each rank draws its own stream
        # (dropout, batch mixing's numpy draws).
        rank_seed = mix_seed(config.seed, world.rank, world.size)
        torch.manual_seed(rank_seed)
        np.random.seed(rank_seed % 2**32)
        random.seed(rank_seed)

    if ds.val_images is not None:  # the data set ships a validation split: it replaces --val-fraction
        train_idx = torch.arange(len(ds.train_labels))
        val_images, val_labels = ds.val_images, ds.val_labels
    else:
        train_idx, val_idx = stratified_split(ds.train_labels, config.val_fraction, config.seed)
        val_images, val_labels = ds.train_images[val_idx], ds.train_labels[val_idx]
    if config.train_subset is not None:
        train_idx = stratified_subset(train_idx, ds.train_labels, config.train_subset, config.seed)
    if len(train_idx) < config.batch_size:
        raise FieldError("batch_size", f"--batch-size {config.batch_size}: larger than the training set ({len(train_idx)} samples)")
    train_labels = ds.train_labels[train_idx]
    noise_info = None
    if noise is not None:
        kind, rate = noise
        train_labels, flipped = add_label_noise(train_labels, kind, rate, ds.num_classes, config.seed)
        noise_info = {"kind": kind, "rate": rate, "flipped_fraction": flipped}

    recipe = recipe.prepared(ds.num_classes, tuple(ds.train_images.shape[1:]), mean=ds.mean, device=dev)
    if recipe.mixer is not None:
        distributed.check_mixing(world, config.batch_size)
    loader = TrainLoader(ds.train_images[train_idx], train_labels, torch.arange(len(train_idx)), recipe.pipeline,
                         method.num_views, config.batch_size, ds.mean, ds.std, config.seed,
                         sampler=method.sampler or "shuffle", num_workers=num_workers, mp_context=mp_context,
                         device=dev, dtype=torch.bfloat16 if config.bf16 else torch.float32,
                         channels_last=config.channels_last, rank=world.rank, world_size=world.size)

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
        num_epochs=plan.num_epochs, world=world,
    )


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.SGD:
    """The engine's optimizer: SGD with the run's lr, momentum, Nesterov (where momentum > 0) and weight decay."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
