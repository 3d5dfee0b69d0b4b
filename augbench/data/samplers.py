"""Batch samplers, registered by name: how one epoch is cut into batches.

A sampler maps ``(labels, batch_size, generator)`` to a list of index tensors
(positions into ``labels``), one per batch. A method asks for one by name
(``Method.sampler``); the default shuffles.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

BatchSampler = Callable[[torch.Tensor, int, torch.Generator], list[torch.Tensor]]
SAMPLERS: dict[str, BatchSampler] = {}


def register_sampler(name: str):
    def wrap(fn: BatchSampler) -> BatchSampler:
        if name in SAMPLERS:
            raise ValueError(f"sampler '{name}' registered twice")
        SAMPLERS[name] = fn
        return fn

    return wrap


@register_sampler("shuffle")
def shuffled_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random permutation cut into full batches; the remainder is dropped (even batches for mixing)."""
    order = torch.randperm(len(labels), generator=generator)
    full = len(order) // batch_size
    if full == 0:
        return [order]
    return list(order[: full * batch_size].view(full, batch_size))


@register_sampler("class_pairs")
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
