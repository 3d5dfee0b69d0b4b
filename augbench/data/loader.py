"""The training loader: batches of ``(views, labels, index)`` from uint8 tensors in memory.

Each sample gets ``num_views`` independently augmented views. Augmentation of
batch b in epoch e is seeded from (seed, e, b) alone, so the views are the
same with 0 or N worker processes and after a resume.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augbench.augment.pipeline import SamplePipeline, normalize
from augbench.data.samplers import SAMPLERS


def _mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


class _EpochBatches(Dataset):
    """Item b is batch b of one epoch, augmented under its own seed."""

    def __init__(self, images, labels, index, batches, pipeline, num_views, mean, std, seed, epoch):
        self.images, self.labels, self.index = images, labels, index
        self.batches, self.pipeline, self.num_views = batches, pipeline, num_views
        self.mean, self.std = mean, std
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int):
        positions = self.batches[b]
        seed = _mix_seed(self.seed, self.epoch, b)
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                views = []
                for _ in range(self.num_views):
                    stacked = torch.stack([self.pipeline(self.images[p]) for p in positions.tolist()])
                    views.append(normalize(stacked, self.mean, self.std))
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return views, self.labels[positions], self.index[positions]


class TrainLoader:
    """Augmented batches of the training samples, one epoch at a time.

    Args:
        images: uint8 ``[N, C, H, W]`` of the whole training pool.
        labels: int64 ``[N]`` labels (possibly noisy).
        index: int64 ``[N]`` ids reported with each sample (positions in the train split).
        pipeline: per-sample augmentation.
        num_views: views per sample.
        batch_size: samples per batch.
        mean, std: per-channel normalization in [0, 1] units.
        seed: run seed; shuffling and augmentation derive from it.
        sampler: name of a registered batch sampler.
        num_workers: DataLoader worker processes (0: in this process).
        mp_context: start method for workers (``forkserver`` when W&B is on).
    """

    def __init__(self, images, labels, index, pipeline: SamplePipeline, num_views: int, batch_size: int,
                 mean, std, seed: int, sampler: str = "shuffle", num_workers: int = 0,
                 mp_context: str | None = None):
        self.images, self.labels, self.index = images, labels, index
        self.pipeline, self.num_views, self.batch_size = pipeline, num_views, batch_size
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.seed, self.sampler = seed, SAMPLERS[sampler]
        self.num_workers, self.mp_context = num_workers, mp_context

    def batches(self, epoch: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(_mix_seed(self.seed, epoch, 0xBA7C4))
        return self.sampler(self.labels, self.batch_size, generator)

    def __len__(self) -> int:
        return len(self.batches(0))

    def epoch(self, epoch: int) -> Iterator[tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]]:
        dataset = _EpochBatches(self.images, self.labels, self.index, self.batches(epoch), self.pipeline,
                                self.num_views, self.mean, self.std, self.seed, epoch)
        if self.num_workers == 0:
            for b in range(len(dataset)):
                yield dataset[b]
            return
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers,
                            multiprocessing_context=self.mp_context, prefetch_factor=4)
        yield from loader
