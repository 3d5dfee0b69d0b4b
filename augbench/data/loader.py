"""The training loader: batches of ``(views, labels, index)``, normalised, on the training device.

Each sample gets ``num_views`` independently augmented views. The recipe's
pipeline is split in two (``augbench.augment.pipeline``):

- the *loader stage* (present only when the recipe has sample ops such as
  torchvision's policies or Albumentations) runs on the host, in persistent
  DataLoader worker processes when ``num_workers > 0``, with pinned memory
  when the device is an accelerator;
- the *device stage* (batch ops: crop, flip, Cutout, random erasing) runs on
  the training device, followed by normalisation (in bf16 under ``--bf16``).

When there is no loader stage the whole training set is held on the device
as uint8 and a batch is one gather: no host work per step at all.

On a CPU with loader workers (``num_workers > 0``) the device *is* the host.
There, for a recipe worth it (a sample op, or a heavy batch op such as the
batched policies: ``Pipeline.worth_workers``), the workers do all of the
augmentation: the loader stage, the device stage and the normalisation,
each batch with the same generators as in the training process (so the same
views), while the training process only trains: the CPU's counterpart of a
GPU that never waits for its data. It pays when a core is left to the
workers (the model on fewer threads than there are cores), as
``augbench bench --threads 1 --workers 1`` measures. Cheap recipes stay in
the training process, where they cost less than the batch's trip between
processes. These workers run at the lowest CPU priority (``nice`` 19): a
worker that takes a core from one of the model's threads stalls all of them
at the next barrier, so the workers should run when the model leaves a core
idle (and when the model waits for a batch, nothing else wants the cores).

Reproducibility: batch b of epoch e is augmented from seeds derived from
(seed, e, b) alone (the global generators for sample ops, one host generator
for batch ops in the loader stage, one device generator for the device
stage), so the views are the same with 0 or N workers and after a resume.

DistributedDataParallel (``world_size > 1``): every rank computes the same
seeded order of global batches and keeps its own shard of each
(``augbench.data.samplers.shard``: a contiguous slice of the batch positions,
per block), and its augmentation seeds also take (rank, world size), so each
rank augments with its own stream. One process (``world_size == 1``) draws
exactly what it drew before the rank existed.
"""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augbench.data.samplers import SAMPLER_BLOCKS, SAMPLERS, shard


class Augmenter(Protocol):
    """What the loader needs of a recipe's operations (``augbench.augment.Pipeline`` is one)."""

    @property
    def needs_loader(self) -> bool:
        """Whether some operation runs per sample in the loader's worker processes."""

    @property
    def worth_workers(self) -> bool:
        """Whether, on a CPU with loader workers, the workers should do all the augmentation."""

    def run_loader_stage(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 images of one batch through the per-sample operations."""

    def resident(self, images: torch.Tensor) -> torch.Tensor:
        """The training set as it is kept on the device when there is no loader stage (padded once, say)."""

    def run_device_stage(self, images: torch.Tensor, generator: torch.Generator,
                         resident: bool = False) -> torch.Tensor:
        """uint8 images of one batch through the batched operations, on the training device (``resident``:
        the images are rows of :meth:`resident`'s output)."""


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


def normalization(mean: torch.Tensor, std: torch.Tensor, device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """``(scale, shift)``, each ``[1, C, 1, 1]`` in ``dtype`` on ``device``, with
    ``x * scale + shift = (x / 255 - mean) / std``."""
    return ((1.0 / (255.0 * std)).to(device, dtype).view(1, -1, 1, 1),
            (-mean / std).to(device, dtype).view(1, -1, 1, 1))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
              dtype: torch.dtype = torch.float32, scale_shift: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> ``dtype``, ``(x / 255 - mean) / std`` per channel, on the images' device.

    Computed as ``x * (1 / (255 std)) - mean / std``: one conversion, then a multiply and an add in place
    (on a CPU about twice as fast as one out-of-place ``addcmul``), in the images' memory format. A caller
    that normalises every step passes ``scale_shift`` from :func:`normalization`, made once.
    """
    scale, shift = scale_shift or normalization(mean, std, images.device, dtype)
    return images.to(dtype, copy=True).mul_(scale).add_(shift)


#: Salts that keep the streams of one batch apart.
_SHUFFLE, _LOADER_BATCH_OPS, _DEVICE_OPS = 0xBA7C4, 0x10AD, 0xDE71CE


class _LoaderStage(Dataset):
    """Item ``(epoch, b, positions)``: the uint8 views of batch b after the loader stage."""

    def __init__(self, images: torch.Tensor, pipeline: Augmenter, num_views: int, seed: int,
                 stream: tuple[int, ...] = ()):
        self.images, self.pipeline, self.num_views, self.seed = images, pipeline, num_views, seed
        self.stream = stream

    def __len__(self) -> int:  # items are addressed by key, not by position
        return 0

    def __getitem__(self, key) -> list[torch.Tensor]:
        epoch, b, positions = key
        seed = mix_seed(self.seed, epoch, b, *self.stream)
        generator = torch.Generator().manual_seed(mix_seed(seed, _LOADER_BATCH_OPS))
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                raw = self.images[positions]
                return [self.pipeline.run_loader_stage(raw, generator) for _ in range(self.num_views)]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _device_seed(seed: int, epoch: int, b: int, stream: tuple[int, ...]) -> int:
    """The device stage's seed for batch b of ``epoch``: the same wherever the batch is finished."""
    return mix_seed(seed, epoch, b, _DEVICE_OPS, *stream)


def _device_stage_input(loaded: list[torch.Tensor] | None, resident: torch.Tensor | None, positions: torch.Tensor,
                        views: int, device: torch.device) -> tuple[torch.Tensor, bool]:
    """The uint8 views of one batch that the device stage starts from, all in one tensor, and whether they are rows
    of the resident set: the loader stage's views (``loaded``) where the recipe has a loader stage, else every
    view's images in one gather from the set as the device stage keeps it (``resident``)."""
    if loaded is not None:
        return torch.cat([v.to(device, non_blocking=True) for v in loaded]), False
    return resident.index_select(0, torch.cat((positions,) * views)), True


def finish(pipeline: Augmenter, images: torch.Tensor, generator: torch.Generator, views: int, mean, std,
           dtype: torch.dtype, channels_last: bool, scale_shift=None, resident: bool = False) -> list[torch.Tensor]:
    """Device stage, then normalisation, on all ``views`` views of a batch at once (fewer, larger ops)."""
    images = pipeline.run_device_stage(images, generator, resident)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return list(normalize(images, mean, std, dtype, scale_shift).chunk(views))


class _WholeBatch(Dataset):
    """Item ``(epoch, b, positions)``: the finished views of batch b, as :meth:`TrainLoader.epoch` makes them in
    the training process (same seeds, same ops), made in a loader worker instead (a CPU device only)."""

    def __init__(self, stage: _LoaderStage | None, images: torch.Tensor, pipeline: Augmenter, num_views: int,
                 seed: int, stream: tuple[int, ...], mean, std, dtype: torch.dtype, channels_last: bool):
        self.stage, self.images, self.pipeline, self.num_views = stage, images, pipeline, num_views
        self.seed, self.stream, self.mean, self.std = seed, stream, mean, std
        self.dtype, self.channels_last = dtype, channels_last

    def __len__(self) -> int:
        return 0

    def __getitem__(self, key) -> list[torch.Tensor]:
        epoch, b, positions = key
        generator = torch.Generator().manual_seed(_device_seed(self.seed, epoch, b, self.stream))
        raw, resident = _device_stage_input(self.stage[key] if self.stage is not None else None, self.images,
                                            positions, self.num_views, positions.device)
        return finish(self.pipeline, raw, generator, self.num_views, self.mean, self.std, self.dtype,
                      self.channels_last, resident=resident)


class _EpochKeys:
    """The DataLoader's sampler: the keys of the current epoch (set before each epoch is iterated)."""

    def __init__(self):
        self.keys: list = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _yield_to_training(worker_id: int) -> None:
    """A CPU loader worker takes the lowest priority (see the module docstring)."""
    os.nice(19)


class TrainLoader:
    """Augmented, normalised batches of the training samples on ``device``, one epoch at a time.

    Args:
        images: uint8 ``[N, C, H, W]`` of the whole training pool.
        labels: int64 ``[N]`` labels (possibly noisy).
        index: int64 ``[N]`` ids reported with each sample (positions in the train split).
        pipeline: the recipe's operations.
        num_views: views per sample.
        batch_size: samples per batch.
        mean, std: per-channel normalization in [0, 1] units.
        seed: run seed; shuffling and augmentation derive from it.
        sampler: name of a registered batch sampler.
        num_workers: DataLoader worker processes for the loader stage (0: in this process).
        mp_context: start method for workers (``forkserver`` when W&B is on).
        device: the training device; batches arrive there.
        dtype: dtype of the normalised views (``torch.bfloat16`` under ``--bf16``).
        channels_last: views in channels-last memory format.
        rank, world_size: this process's shard of every global batch (``batch_size`` is the global batch).
    """

    def __init__(self, images, labels, index, pipeline: Augmenter, num_views: int, batch_size: int,
                 mean, std, seed: int, sampler: str = "shuffle", num_workers: int = 0,
                 mp_context: str | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, channels_last: bool = False, rank: int = 0,
                 world_size: int = 1):
        self.device = torch.device(device)
        self.images, self.labels, self.index = images, labels, index
        self.pipeline, self.num_views, self.batch_size = pipeline, num_views, batch_size
        self.seed, self.sampler, self.blocks = seed, SAMPLERS[sampler], SAMPLER_BLOCKS[sampler]
        self.rank, self.world_size = rank, world_size
        # Extra parts of every augmentation seed: none in one process, so its streams stay what they were.
        self.stream = (rank, world_size) if world_size > 1 else ()
        self.num_workers, self.mp_context = num_workers, mp_context
        self.dtype, self.channels_last = dtype, channels_last
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device)
        self._scale_shift = normalization(self.mean, self.std, self.device, dtype)
        self.device_labels, self.device_index = labels.to(self.device), index.to(self.device)
        # Without sample ops the images live on the device; otherwise the loader stage reads them on the host.
        self.device_images = None if pipeline.needs_loader else pipeline.resident(images.to(self.device))
        self._stage = _LoaderStage(images, pipeline, num_views, seed, self.stream) if pipeline.needs_loader else None
        # Loader workers finish whole batches on a CPU device, for a recipe worth it (see the module docstring).
        workers_augment = self.device.type == "cpu" and num_workers > 0 and pipeline.worth_workers
        self._whole = _WholeBatch(self._stage, self.device_images, pipeline, num_views, seed, self.stream, self.mean,
                                  self.std, dtype, channels_last) if workers_augment else None
        self._keys = _EpochKeys()
        self._dataloader: DataLoader | None = None
        self._generator = torch.Generator(device=self.device)

    def close(self) -> None:
        """Stops the worker processes now. Idle persistent workers left for garbage collection still wake up
        and take time slices from the training threads: on 2 cores, 2 idle workers cost a run of another
        recipe in the same process about a quarter of its throughput (measured with ``augbench bench``)."""
        self._dataloader = None
        gc.collect()  # the DataLoader's iterator, and with it the workers, may sit in a reference cycle

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """The global batches of ``epoch``: the same on every rank."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch, _SHUFFLE))
        return self.sampler(self.labels, self.batch_size, generator)

    def __len__(self) -> int:
        return len(self.batches(0))

    def _loader_views(self, epoch: int, batches: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
        """uint8 views of each batch after the loader stage, on the host (pinned for an accelerator); or, where
        the workers augment, each batch's finished views."""
        keys = [(epoch, b, positions) for b, positions in enumerate(batches)]
        if self.num_workers == 0:
            return (self._stage[key] for key in keys)
        if self._dataloader is None:
            self._dataloader = DataLoader(
                self._whole if self._whole is not None else self._stage, batch_size=None, sampler=self._keys,
                num_workers=self.num_workers, multiprocessing_context=self.mp_context, prefetch_factor=4,
                persistent_workers=True, pin_memory=self.device.type == "cuda",
                worker_init_fn=_yield_to_training if self._whole is not None else None)
        self._keys.keys = keys
        return iter(self._dataloader)

    def _finish(self, images: torch.Tensor, views: int, resident: bool = False) -> list[torch.Tensor]:
        """:func:`finish` on the training device."""
        return finish(self.pipeline, images, self._generator, views, self.mean, self.std, self.dtype,
                      self.channels_last, self._scale_shift, resident)

    def epoch(self, epoch: int) -> Iterator[tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]]:
        batches = [shard(p, self.blocks, self.rank, self.world_size) for p in self.batches(epoch)]
        # One copy of the epoch's order to the device, instead of one per step.
        sizes = [len(p) for p in batches]
        order = torch.cat(batches).to(self.device, non_blocking=True) if batches else torch.zeros(0)
        device_positions = order.split(sizes)
        loaded = self._loader_views(epoch, batches) if self._stage is not None or self._whole is not None else None
        for b, positions in enumerate(device_positions):
            if self._whole is not None:  # finished in a worker, as below
                views = next(loaded)
            else:
                self._generator.manual_seed(_device_seed(self.seed, epoch, b, self.stream))
                raw, resident = _device_stage_input(next(loaded) if loaded is not None else None, self.device_images,
                                                    positions, self.num_views, self.device)
                views = self._finish(raw, self.num_views, resident)
            yield views, self.device_labels.index_select(0, positions), self.device_index.index_select(0, positions)
