"""Occlusion: Cutout and random erasing.

Cutout: DeVries & Taylor, "Improved Regularization of Convolutional Neural
Networks with Cutout", arXiv:1708.04552, 2017. A square hole of side
``length`` with its centre drawn uniformly over the image (so part of it may
fall outside), pixels set to ``fill``. CIFAR-10 setting: one 16 x 16 hole;
CIFAR-100: 8 x 8. Written here because neither torchvision nor
albumentations draws the hole centre over the whole image as the paper does.

Random erasing: Zhong, Zheng, Kang, Li & Yang, "Random Erasing Data
Augmentation", AAAI 2020, arXiv:1708.04896. With probability ``p`` a
rectangle of area ``s * H * W``, ``s ~ U(scale)``, and aspect ratio
``r ~ logU(ratio)`` is filled with random values (RE-R) or a constant. The
rectangle is drawn by torchvision's ``RandomErasing.get_params``.
"""

from __future__ import annotations

import torch
from torchvision.transforms import RandomErasing as TorchvisionRandomErasing

from augbench.augment.ops import register_op, require


@register_op("cutout")
class Cutout:
    """Cutout (DeVries & Taylor 2017): ``holes`` square holes of side ``length``.

    ``length`` is given at ``reference_size`` pixels and scaled to the image:
    16 at 32 px (the paper's CIFAR-10 setting) is 14 at 28 px. With
    ``reference_size: null`` it is taken in pixels as is. The paper zeroes
    normalized pixels (the data set mean); here the hole is filled on uint8
    images with the constant ``fill``.
    """

    def __init__(self, length: int = 16, holes: int = 1, fill: int = 0, reference_size: int | None = 32):
        require(length >= 1, "length", length, "an integer >= 1")
        require(holes >= 1, "holes", holes, "an integer >= 1")
        require(0 <= fill <= 255, "fill", fill, "an integer in [0, 255]")
        require(reference_size is None or reference_size >= 1, "reference_size", reference_size,
                "an integer >= 1, or null for no scaling")
        self.length, self.holes, self.fill, self.reference_size = length, holes, fill, reference_size

    def hole_side(self, height: int, width: int) -> int:
        if self.reference_size is None:
            return self.length
        return max(1, round(self.length * min(height, width) / self.reference_size))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        side = self.hole_side(h, w)
        img = img.clone()
        for _ in range(self.holes):
            cy, cx = torch.randint(0, h, ()).item(), torch.randint(0, w, ()).item()
            top, left = max(cy - side // 2, 0), max(cx - side // 2, 0)
            img[:, top:min(cy + side - side // 2, h), left:min(cx + side - side // 2, w)] = self.fill
        return img


@register_op("random_erasing")
class RandomErasing:
    """Random erasing (Zhong et al. 2020); CIFAR setting p=0.5, scale (0.02, 0.4), ratio (0.3, 1/0.3).

    ``value: random`` fills the rectangle with uniform random pixel values
    (the paper's RE-R); an integer fills it with that constant.
    """

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.4),
                 ratio: tuple[float, float] = (0.3, 3.3), value: int | str = "random"):
        require(0 <= p <= 1, "p", p, "a number in [0, 1]")
        require(0 < scale[0] <= scale[1] < 1, "scale", list(scale), "[min, max] with 0 < min <= max < 1")
        require(0 < ratio[0] <= ratio[1], "ratio", list(ratio), "[min, max] with 0 < min <= max")
        require(value == "random" or (isinstance(value, int) and 0 <= value <= 255), "value", value,
                "'random' or an integer in [0, 255]")
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return img
        c, h, w = img.shape
        top, left, eh, ew, _ = TorchvisionRandomErasing.get_params(img, self.scale, self.ratio, value=[0])
        if (eh, ew) == (h, w):  # torchvision found no rectangle that fits: leave the image as it is
            return img
        img = img.clone()
        if self.value == "random":
            img[:, top:top + eh, left:left + ew] = torch.randint(0, 256, (c, eh, ew), dtype=torch.uint8)
        else:
            img[:, top:top + eh, left:left + ew] = self.value
        return img
