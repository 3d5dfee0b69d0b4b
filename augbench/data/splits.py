"""Seeded, stratified train/validation splits and class-balanced subsets.

Stratification keeps each class's share of the data in every part, so that a
small validation set or a small training subset is not, by chance, short of a
class.  Both functions are deterministic given ``seed`` (``torch.Generator``)
and return sorted ``int64`` index tensors.
"""

from __future__ import annotations

import math
import operator

import torch

from augbench.errors import FieldError

__all__ = ["stratified_split", "stratified_subset"]


def _as_labels(labels, what: str) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"{what}: expected a 1-D integer tensor of labels, got {labels.dtype} {tuple(labels.shape)}"
        )
    return labels.to(torch.int64)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def stratified_split(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(len(labels))`` into ``(train_idx, val_idx)``, per class.

    Each class ``c`` with ``n_c`` examples puts ``round(val_fraction * n_c)``
    of them (drawn at random) in validation, at least one when
    ``val_fraction > 0``; a class with a single example keeps it in train.
    ``val_fraction == 0`` gives an empty validation set.  Both outputs are
    sorted int64, disjoint, and together cover every index.

    Raises UsageError (``--val-fraction``) unless ``0 <= val_fraction < 1``.
    """
    try:
        f = float(val_fraction)
    except (TypeError, ValueError):
        f = float("nan")
    if not (0.0 <= f < 1.0):
        raise FieldError(
            "val_fraction", f"--val-fraction: got {val_fraction!r}; expected a number with 0 <= F < 1 (e.g. 0.1)"
        )
    labels = _as_labels(labels, "stratified_split")
    n = labels.numel()
    if f == 0.0 or n == 0:
        return torch.arange(n, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    gen = torch.Generator().manual_seed(int(seed))
    val_parts = []
    for c in torch.unique(labels).tolist():  # sorted: draw order is fixed
        idx = torch.nonzero(labels == c, as_tuple=False).flatten()
        n_c = idx.numel()
        k = max(1, _round_half_up(f * n_c))
        k = min(k, n_c - 1)  # keep at least one example of every class in train
        perm = torch.randperm(n_c, generator=gen)
        val_parts.append(idx[perm[:k]])
    val_idx = torch.sort(torch.cat(val_parts)).values
    mask = torch.ones(n, dtype=torch.bool)
    mask[val_idx] = False
    train_idx = torch.nonzero(mask, as_tuple=False).flatten()
    return train_idx, val_idx


def stratified_subset(indices: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Pick ``n`` of ``indices`` at random, keeping class proportions.

    ``labels`` is the label tensor of the whole data set; ``labels[indices]``
    are the classes of the candidates.  Class ``c`` with ``m_c`` of the ``m``
    candidates gets ``n * m_c / m`` places, rounded by largest remainder
    (Hamilton's method; ties to the lower class id) so exactly ``n`` are chosen.
    Returns sorted int64.

    Raises UsageError (``--train-subset``) unless ``1 <= n <= len(indices)``.
    """
    indices = torch.as_tensor(indices).to(torch.int64).flatten()
    labels = _as_labels(labels, "stratified_subset")
    m = indices.numel()
    try:
        k = operator.index(n)  # int, numpy int, 0-d integer tensor; not float or bool-as-flag
    except TypeError:
        k = None
    if isinstance(n, bool) or k is None or not (1 <= k <= m):
        raise FieldError(
            "train_subset",
            f"--train-subset: got {n!r}; expected an integer from 1 to {m} (the training examples available)",
        )
    n = k
    if n == m:
        return torch.sort(indices).values
    cand_labels = labels[indices]
    classes = torch.unique(cand_labels).tolist()
    members = [indices[cand_labels == c] for c in classes]
    quotas = []
    for c, mem in zip(classes, members):
        q, r = divmod(n * mem.numel(), m)  # exact integer arithmetic
        quotas.append([q, r, c])
    short = n - sum(q for q, _, _ in quotas)
    for entry in sorted(quotas, key=lambda e: (-e[1], e[2]))[:short]:
        entry[0] += 1
    gen = torch.Generator().manual_seed(int(seed))
    chosen = []
    for (k, _, _), mem in zip(quotas, members):
        perm = torch.randperm(mem.numel(), generator=gen)
        chosen.append(mem[perm[:k]])
    return torch.sort(torch.cat(chosen)).values
