"""Batch mixing: Mixup, CutMix, and both with a switch probability, replayable.

- Mixup: Zhang, Cisse, Dauphin & Lopez-Paz, "mixup: Beyond Empirical Risk
  Minimization", ICLR 2018, arXiv:1710.09412.
  ``x = lam * x_i + (1 - lam) * x_j``, ``y = lam * y_i + (1 - lam) * y_j``,
  ``lam ~ Beta(alpha, alpha)``; CIFAR setting alpha = 1.
- CutMix: Yun, Han, Oh, Chun, Choe & Yoo, "CutMix: Regularization Strategy
  to Train Strong Classifiers with Localizable Features", ICCV 2019,
  arXiv:1905.04899. A box of area ``(1 - lam) * H * W`` is pasted from x_j
  into x_i; lam is recomputed from the box actually pasted (it is clipped
  at the border) and ``y = lam * y_i + (1 - lam) * y_j``. CIFAR setting
  alpha = 1, applied with probability 0.5.

The draws follow timm's ``Mixup`` in ``mode="batch"`` draw for draw (the
per-batch mode and lambda are drawn here as ``timm/data/mixup.py`` draws them,
since timm exposes that step only as a private method; the box comes from
timm's public ``cutmix_bbox_and_lam``, or from :func:`cutmix_box`, a checked
copy of it for the usual case of no box range, and smoothed targets from
``one_hot``),
from numpy's global generator, which a run checkpoints. Unlike timm, which
mixes each sample with ``batch.flip(0)`` in place, the mixing of a batch is
drawn first as explicit :class:`MixParams` (a partner permutation as in the
papers' code, lambda, box) and applied afterwards, so that a method can
mix another view of the same batch exactly the same way (DLB's ``shared``
policy). Label smoothing is 0 unless the recipe sets it (timm's default is
0.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from timm.data.mixup import cutmix_bbox_and_lam, one_hot

from augbench.augment.ops import require
from augbench.registry import registrar


@dataclass(frozen=True)
class MixConfig:
    """What a recipe's ``mix:`` section sets (timm's Mixup arguments, per-batch mode)."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    cutmix_minmax: tuple[float, float] | None = None
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.0
    correct_lam: bool = True

    def __post_init__(self):
        require(self.mixup_alpha >= 0, "mixup_alpha", self.mixup_alpha, "a number >= 0 (0: no Mixup)")
        require(self.cutmix_alpha >= 0, "cutmix_alpha", self.cutmix_alpha, "a number >= 0 (0: no CutMix)")
        require(self.mixup_alpha > 0 or self.cutmix_alpha > 0 or self.cutmix_minmax is not None, "mixup_alpha",
                self.mixup_alpha, "mixup_alpha > 0 or cutmix_alpha > 0 (or leave out the mix section)")
        minmax = self.cutmix_minmax
        require(minmax is None or 0 < minmax[0] < minmax[1] <= 1, "cutmix_minmax", minmax,
                "[min, max] with 0 < min < max <= 1, or null")
        require(0 <= self.prob <= 1, "prob", self.prob, "a number in [0, 1]")
        require(0 <= self.switch_prob <= 1, "switch_prob", self.switch_prob, "a number in [0, 1]")
        require(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "a number in [0, 1)")


def cutmix_box(image_size: tuple[int, int], lam: float, correct_lam: bool = True):
    """``((top, bottom, left, right), lam)``: timm's ``cutmix_bbox_and_lam`` without a box range (its
    ``rand_bbox``, margin 0), draw for draw and value for value, in Python integers.

    timm clips four numpy scalars, which costs several times more than the rest of a mixed batch's host
    work; ``tests/test_recipes.py`` checks this copy against timm's own function.
    """
    h, w = image_size
    ratio = np.sqrt(1 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy, cx = int(np.random.randint(0, h)), int(np.random.randint(0, w))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + (cut_h + 1) // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + (cut_w + 1) // 2, w)
    if correct_lam:
        lam = 1.0 - (bottom - top) * (right - left) / float(h * w)
    return (top, bottom, left, right), lam


@dataclass
class MixParams:
    """The mixing of one batch, enough to apply it again to another view of the same batch.

    Attributes:
        mode: ``mixup``, ``cutmix`` or ``none`` (the batch drew no mixing, ``prob`` < 1).
        lam: weight of each sample's own image and label (after CutMix's box correction).
        partner: int64 ``[n]``: sample i is mixed with sample ``partner[i]`` of the same batch.
        box: ``(top, bottom, left, right)`` of the region pasted from the partner (CutMix only).
    """

    mode: str
    lam: float
    partner: torch.Tensor
    box: tuple[int, int, int, int] | None = None


class BatchMixer:
    """Mixup/CutMix for one recipe and one number of classes (the ``Mixer`` that methods use)."""

    def __init__(self, config: MixConfig, num_classes: int):
        self.config, self.num_classes = config, num_classes
        # As timm: a CutMix box range forces alpha 1 (the box comes from the range, not from lambda).
        self.cutmix_alpha = 1.0 if config.cutmix_minmax is not None else config.cutmix_alpha
        self._rows: dict[str, torch.Tensor] = {}  # per device: the targets of every class (``targets``)

    def draw_mode_and_lambda(self) -> tuple[float, bool]:
        """``(lam, use_cutmix)`` for one batch; ``lam == 1`` means no mixing (drawn with probability 1 - prob).

        The same numpy draws, in the same order, as timm's ``Mixup`` in batch mode:
        ``rand() < prob``; with both alphas ``rand() < switch_prob`` picks CutMix; ``lam ~ Beta(alpha, alpha)``.
        """
        mixup_alpha, cutmix_alpha = self.config.mixup_alpha, self.cutmix_alpha
        if not np.random.rand() < self.config.prob:
            return 1.0, False
        use_cutmix = cutmix_alpha > 0.0 and (mixup_alpha <= 0.0 or np.random.rand() < self.config.switch_prob)
        alpha = cutmix_alpha if use_cutmix else mixup_alpha
        return float(np.random.beta(alpha, alpha)), use_cutmix

    def sample(self, batch_size: int, image_size: tuple[int, int]) -> MixParams:
        lam, use_cutmix = self.draw_mode_and_lambda()
        if lam == 1.0:
            return MixParams("none", 1.0, torch.arange(batch_size))
        partner = torch.from_numpy(np.random.permutation(batch_size))
        if not use_cutmix:
            return MixParams("mixup", float(lam), partner)
        if self.config.cutmix_minmax is None:
            (top, bottom, left, right), lam = cutmix_box(image_size, lam, self.config.correct_lam)
        else:
            (top, bottom, left, right), lam = cutmix_bbox_and_lam(
                image_size, lam, ratio_minmax=self.config.cutmix_minmax, correct_lam=self.config.correct_lam)
        return MixParams("cutmix", float(lam), partner, (int(top), int(bottom), int(left), int(right)))

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as (smoothed) probability vectors ``[n, classes]``; soft labels are smoothed alike.

        Hard labels pick rows of timm's ``one_hot`` of every class, made once per device: one gather per
        step instead of a fill and a scatter.
        """
        s, k = self.config.label_smoothing, self.num_classes
        if labels.dim() == 1:
            key = str(labels.device)
            if key not in self._rows:
                self._rows[key] = one_hot(torch.arange(k, device=labels.device), k, on_value=1.0 - s + s / k,
                                          off_value=s / k)
            return self._rows[key].index_select(0, labels)
        return labels.float() * (1.0 - s) + s / k

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              params: MixParams) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixes ``images`` ``[n, C, H, W]`` and ``labels`` with ``params``; returns ``(images, targets)``."""
        # non_blocking: the permutation (drawn on the host, from numpy's generator) is copied without making the
        # host wait for the device's queue (a blocking copy would, at every step; scripts/device_check.py counts).
        partner, lam = params.partner.to(images.device, non_blocking=True), params.lam
        # index_select, not images[partner]: the same gather, about 5x faster on a CPU for channels-last batches.
        if params.mode == "mixup":
            images = torch.lerp(images.index_select(0, partner), images, lam)  # lam x + (1 - lam) x[partner]
        elif params.mode == "cutmix":
            top, bottom, left, right = params.box
            images = images.clone()
            images[:, :, top:bottom, left:right] = images[:, :, top:bottom, left:right].index_select(0, partner)
        targets = self.targets(labels)
        if params.mode != "none":
            targets = torch.lerp(targets.index_select(0, partner), targets, lam)  # lam y + (1 - lam) y[partner]
        return images, targets


# -- replaying a mixed batch ---------------------------------------------------------------------
# A method that trains on an earlier batch again (DLB's replayed half) must decide how that batch is mixed
# when the recipe mixes. A recipe names the policy (``dlb_mix``); the method applies it.

#: (mix, images, labels, teacher_params) -> (images, targets). ``mix`` is the batch's mixing,
#: ``(images, labels, params or None) -> (images, targets, params)``; ``teacher_params`` are the draws the
#: replayed images were mixed with when their teacher logits were computed.
ReplayMix = Callable[[Callable[..., Any], torch.Tensor, torch.Tensor, Any], tuple[torch.Tensor, torch.Tensor]]
REPLAY_MIX_POLICIES: dict[str, ReplayMix] = {}


#: Decorator: ``@register_replay_mix(NAME)`` makes a replay mixing policy available as a recipe's ``dlb_mix: NAME``.
register_replay_mix = registrar(REPLAY_MIX_POLICIES, "replay mix policy")


@register_replay_mix("shared")
def shared_replay(mix, images: torch.Tensor, labels: torch.Tensor, teacher_params: Any):
    """Re-mixed with the same partners, lambda and box as when the teacher saw it."""
    mixed, targets, _ = mix(images, labels, teacher_params)
    return mixed, targets


@register_replay_mix("independent")
def independent_replay(mix, images: torch.Tensor, labels: torch.Tensor, teacher_params: Any):
    """Mixed afresh: new partners and lambda, so the teacher saw a different image."""
    mixed, targets, _ = mix(images, labels, None)
    return mixed, targets


@register_replay_mix("clean")
def clean_replay(mix, images: torch.Tensor, labels: torch.Tensor, teacher_params: Any):
    """Left unmixed, with its hard labels."""
    return images, labels
