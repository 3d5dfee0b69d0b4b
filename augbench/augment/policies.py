"""Learned and random augmentation policies, and colour jitter, from torchvision.

- AutoAugment: Cubuk, Zoph, Mane, Vasudevan & Le, "AutoAugment: Learning
  Augmentation Strategies from Data", CVPR 2019, arXiv:1805.09501. The
  policies found on CIFAR-10, SVHN and ImageNet (timm has no CIFAR policy;
  torchvision has all three).
- RandAugment: Cubuk, Zoph, Shlens & Le, "RandAugment: Practical automated
  data augmentation with a reduced search space", NeurIPS 2020,
  arXiv:1909.13719. N operations drawn uniformly from 14, all at magnitude M.
  The paper states M on a 0-10 scale; torchvision's ``num_magnitude_bins``
  sets the scale (11 bins: 0-10, torchvision's default 31: 0-30).
- TrivialAugment: Müller & Hutter, "TrivialAugment: Tuning-free Yet
  State-of-the-Art Data Augmentation", ICCV 2021, arXiv:2103.10158. One
  operation per image at a uniformly drawn magnitude (the "wide" ranges).
- Colour jitter (Krizhevsky et al. 2012; torchvision's ``ColorJitter``).

All work on uint8 ``[C, H, W]`` tensors, one or three channels; saturation
and hue leave a grayscale image unchanged. ``fill`` is the pixel value for
areas that geometric operations uncover. Randomness: torch's global generator.
"""

from __future__ import annotations

from typing import Literal

from torchvision.transforms import v2

from augbench.augment.ops import Fill, check_fill, register_op, require

AUTOAUGMENT_POLICIES = {
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
}


def _fill(fill: Fill) -> int | list[int]:
    """The fill torchvision gets; ``mean`` stands in as 0 until the recipe is prepared for a data set."""
    check_fill(fill)
    return 0 if fill == "mean" else fill


@register_op("autoaugment")
def autoaugment(policy: Literal["cifar10", "svhn", "imagenet"] = "cifar10", fill: Fill = 0) -> v2.Transform:
    """AutoAugment (Cubuk et al. 2019) with the policy learned on ``policy``."""
    return v2.AutoAugment(AUTOAUGMENT_POLICIES[policy], fill=_fill(fill))


@register_op("randaugment")
def randaugment(num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31, fill: Fill = 0) -> v2.Transform:
    """RandAugment (Cubuk et al. 2020): N = ``num_ops`` operations at magnitude M = ``magnitude``."""
    require(num_ops >= 0, "num_ops", num_ops, "an integer >= 0")
    require(num_magnitude_bins >= 2, "num_magnitude_bins", num_magnitude_bins, "an integer >= 2")
    require(0 <= magnitude < num_magnitude_bins, "magnitude", magnitude,
            f"an integer in [0, num_magnitude_bins - 1 = {num_magnitude_bins - 1}]")
    return v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=num_magnitude_bins,
                          fill=_fill(fill))


@register_op("trivialaugment")
def trivialaugment(num_magnitude_bins: int = 31, fill: Fill = 0) -> v2.Transform:
    """TrivialAugment Wide (Müller & Hutter 2021): one operation, uniformly drawn magnitude."""
    require(num_magnitude_bins >= 2, "num_magnitude_bins", num_magnitude_bins, "an integer >= 2")
    return v2.TrivialAugmentWide(num_magnitude_bins=num_magnitude_bins, fill=_fill(fill))


@register_op("color_jitter")
def color_jitter(brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0) -> v2.Transform:
    """Random brightness, contrast, saturation and hue, each factor drawn from ``[1 - x, 1 + x]`` (hue: ``[-x, x]``)."""
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        require(value >= 0, name, value, "a number >= 0")
    require(0 <= hue <= 0.5, "hue", hue, "a number in [0, 0.5]")
    return v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)
