"""Random resized crop: the ImageNet training crop, kept at the image's own size.

Szegedy et al. (2015), "Going Deeper with Convolutions", CVPR: a crop of a
random area (``scale`` of the image) and aspect ratio (``ratio``), resized to
the output size; torchvision's ``RandomResizedCrop``.  The DLB code trains
Tiny-ImageNet with ``RandomResizedCrop(32)`` and a flip (``my_dataloader.py``).

Every op keeps the image's size, so the crop is resized back to the size of the
image it came from: with ``--image-size 32`` the images are first brought to
32 px (the test images as by ``Resize(32)``), and the crop is taken from that.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import RandomResizedCrop as _TorchvisionRRC
from torchvision.transforms.v2 import functional as TF

from augbench.augment.ops import register_op, require


@register_op("random_resized_crop")
class RandomResizedCrop:
    """A crop of ``scale`` of the area and ``ratio`` aspect, bilinearly resized to the input's size.

    Parameters are drawn as torchvision draws them (up to ten tries, then a
    centre crop), from torch's global generator.
    """

    def __init__(self, scale_min: float = 0.08, scale_max: float = 1.0, ratio_min: float = 3 / 4,
                 ratio_max: float = 4 / 3):
        require(0 < scale_min <= scale_max, "scale_min", scale_min, "a number in (0, scale_max]")
        require(scale_max <= 1, "scale_max", scale_max, "a number in [scale_min, 1]")
        require(0 < ratio_min <= ratio_max, "ratio_min", ratio_min, "a number in (0, ratio_max]")
        require(math.isfinite(ratio_max), "ratio_max", ratio_max, "a finite number >= ratio_min")
        self.scale, self.ratio = (float(scale_min), float(scale_max)), (float(ratio_min), float(ratio_max))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        top, left, height, width = _TorchvisionRRC.get_params(img, list(self.scale), list(self.ratio))
        return TF.resized_crop(img, top, left, height, width, list(img.shape[-2:]), antialias=True)
