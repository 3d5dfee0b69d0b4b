"""Synthetic label noise for robustness experiments (the ``--label-noise`` flag).

Two standard corruptions of the training labels:

``sym:R`` (symmetric / uniform)
    Each label is, with probability ``R``, replaced by a class drawn uniformly
    from the OTHER ``C - 1`` classes, so ``R`` is the expected fraction of wrong
    labels.  (Patrini et al. 2017, "Making Deep Neural Networks Robust to Label
    Noise: a Loss Correction Approach", CVPR; some papers instead draw from all
    ``C`` classes, which gives ``R (C - 1) / C`` wrong labels.)
``asym:R`` (pair flip)
    Each label is, with probability ``R``, moved to the next class,
    ``y -> (y + 1) mod C`` (Han et al. 2018, "Co-teaching: Robust Training of
    Deep Neural Networks with Extremely Noisy Labels", NeurIPS).

Both are seeded with a ``torch.Generator`` and never modify their input.
"""

from __future__ import annotations

import math

import torch

from augbench.errors import FieldError, UsageError

__all__ = ["NOISE_KINDS", "add_label_noise", "parse_label_noise"]

NOISE_KINDS = ("sym", "asym")
_ACCEPTED = "'none', or sym:R or asym:R with 0 <= R < 1 (e.g. sym:0.4)"


def _check_rate(rate, shown) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        r = float("nan")
    if math.isnan(r) or not (0.0 <= r < 1.0):
        raise FieldError("label_noise", f"--label-noise: rate {shown!r} is out of range; accepted: {_ACCEPTED}")
    return r


def parse_label_noise(text: str | None) -> tuple[str, float] | None:
    """Parse ``--label-noise``: ``"sym:0.4"`` -> ``("sym", 0.4)``; ``None`` / ``"none"`` -> ``None``."""
    if text is None:
        return None
    s = str(text).strip().lower()
    if s in ("", "none"):
        return None
    kind, sep, rate_text = s.partition(":")
    kind = kind.strip()
    if not sep or kind not in NOISE_KINDS:
        raise FieldError("label_noise", f"--label-noise: got {text!r}; accepted: {_ACCEPTED}")
    try:
        rate = float(rate_text)
    except ValueError:
        raise UsageError(
            f"--label-noise: got {text!r}; the rate is not a number; accepted: {_ACCEPTED}"
        ) from None
    return kind, _check_rate(rate, rate_text.strip())


def add_label_noise(
    labels: torch.Tensor, kind: str, rate: float, num_classes: int, seed: int
) -> tuple[torch.Tensor, float]:
    """Return ``(noisy_labels, fraction_flipped)``; ``labels`` is left untouched.

    ``kind`` is ``"sym"`` (uniform over the other classes) or ``"asym"``
    (pair flip ``y -> (y + 1) % num_classes``); each label is flipped
    independently with probability ``rate``.  Output is int64.
    """
    if kind not in NOISE_KINDS:
        raise FieldError("label_noise", f"--label-noise: unknown kind {kind!r}; accepted: {_ACCEPTED}")
    rate = _check_rate(rate, rate)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(
            f"add_label_noise: expected 1-D integer labels, got {labels.dtype} {tuple(labels.shape)}"
        )
    if num_classes < 2:
        raise ValueError(f"add_label_noise: need at least 2 classes, got num_classes={num_classes}")
    y = labels.to(torch.int64).clone()
    n = y.numel()
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"add_label_noise: labels must lie in [0, {num_classes - 1}]")
    if n == 0 or rate == 0.0:
        return y, 0.0
    gen = torch.Generator().manual_seed(int(seed))
    flip = torch.rand(n, generator=gen) < rate
    if kind == "sym":
        shift = torch.randint(1, num_classes, (n,), generator=gen)  # uniform over the other C-1 classes
    else:
        shift = torch.ones(n, dtype=torch.int64)
    y[flip] = (y[flip] + shift[flip]) % num_classes
    return y, float(flip.sum()) / n
