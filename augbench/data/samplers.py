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
