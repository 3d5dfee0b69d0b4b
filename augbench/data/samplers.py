"""Batch samplers, registered by name: how one epoch is cut into batches.

A sampler maps ``(labels, batch_size, generator)`` to a list of index tensors
(positions into ``labels``), one per batch. A method asks for one by name
(``Method.sampler``); the default shuffles.

Under DistributedDataParallel every rank draws the same global batches (same
seeded generator) and keeps its shard of each (:func:`shard`). A sampler
registers how many aligned blocks its batches are made of (``blocks``): a
``class_pairs`` batch is anchors then their partners, and a rank takes the
same contiguous slice of both blocks, so every pair stays on one rank.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from augbench.registry import add

BatchSampler = Callable[[torch.Tensor, int, torch.Generator], list[torch.Tensor]]
SAMPLERS: dict[str, BatchSampler] = {}
#: Sampler name -> number of aligned blocks in each of its batches (see :func:`shard`).
SAMPLER_BLOCKS: dict[str, int] = {}


def register_sampler(name: str, blocks: int = 1):
    """Decorator: makes a batch sampler available as ``--sampler NAME``; ``blocks``: see :func:`shard`."""
    def wrap(fn: BatchSampler) -> BatchSampler:
        add(SAMPLERS, name, fn, "sampler")
        SAMPLER_BLOCKS[name] = blocks
        return fn

    return wrap


def shard(positions: torch.Tensor, blocks: int, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s part of one global batch: the same contiguous slice of each of its ``blocks`` blocks.

    With one block (``shuffle``) rank r takes positions ``[r * k, (r + 1) * k)`` of the batch, ``k = n /
    world_size``; the shards of all ranks are disjoint and together are the global batch. The caller
    checks that every block divides by ``world_size``.
    """
    if world_size == 1:
        return positions
    per_block = positions.view(blocks, -1)
    k = per_block.shape[1] // world_size
    return per_block[:, rank * k:(rank + 1) * k].reshape(-1)


@register_sampler("shuffle")
def shuffled_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random permutation cut into full batches; the remainder is dropped (even batches for mixing)."""
    order = torch.randperm(len(labels), generator=generator)
    full = len(order) // batch_size
    if full == 0:
        return [order]
    return list(order[: full * batch_size].view(full, batch_size))


@register_sampler("class_pairs", blocks=2)
def class_pair_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Batches of ``batch_size`` anchors followed by one same-class partner per anchor (CS-KD).

    The anchors are a random permutation cut into full batches, as in
    ``shuffle``: every sample is an anchor once per epoch. Anchor i's partner
    (position ``batch_size + i``) is drawn uniformly from the *other* samples of
    its class (the anchor itself only when it is alone in its class), as in
    ``PairBatchSampler`` of the official CS-KD code, which may also draw the
    anchor itself. A batch therefore holds ``2 * batch_size`` samples.
    """
    anchors_per_epoch = shuffled_batches(labels, batch_size, generator)
    labels = labels.long()
    by_class = torch.argsort(labels, stable=True)  # sample positions grouped by class
    counts = torch.bincount(labels)
    class_start = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.empty_like(labels)
    rank_in_class[by_class] = torch.arange(len(labels)) - class_start[labels[by_class]]
    batches = []
    for anchors in anchors_per_epoch:
        classes = labels[anchors]
        others = counts[classes] - 1
        # A uniform draw among the class's other members: skip over the anchor's own rank.
        draw = (torch.rand(len(anchors), generator=generator) * others).long().clamp(max=(others - 1).clamp(min=0))
        draw = draw + (draw >= rank_in_class[anchors]).long()
        partners = torch.where(others > 0, by_class[(class_start[classes] + draw).clamp(max=len(labels) - 1)],
                               anchors)
        batches.append(torch.cat([anchors, partners]))
    return batches
