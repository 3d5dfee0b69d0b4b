"""Occlusion: Cutout and random erasing, as batch ops.

Cutout: DeVries & Taylor, "Improved Regularization of Convolutional Neural
Networks with Cutout", arXiv:1708.04552, 2017. A square hole of side
``length`` with its centre drawn uniformly over the image (so part of it may
fall outside). CIFAR-10 setting: one 16 x 16 hole; CIFAR-100: 8 x 8. The
original code (``util/cutout.py`` in uoguelph-mlrg/Cutout) multiplies the
*normalised* image by the mask, so its holes hold the data-set mean:
``fill: mean`` does the same on uint8 images. Written here because neither
torchvision nor albumentations draws the hole centre over the whole image as
the paper does.

Random erasing: Zhong, Zheng, Kang, Li & Yang, "Random Erasing Data
Augmentation", AAAI 2020, arXiv:1708.04896. With probability ``p`` a
rectangle of area ``s * H * W``, ``s ~ U(scale)``, and aspect ratio
``r ~ logU(ratio)`` is filled with random values (RE-R) or a constant. The
rectangle is drawn as torchvision's ``RandomErasing.get_params`` draws it: up
to 10 attempts, the first that fits wins, none fitting leaves the image as it
is. The batched form draws the 10 attempts of every sample at once.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torchvision.transforms import RandomErasing as TorchvisionRandomErasing

from augbench.augment.ops import Fill, check_fill, fill_tensor, register_op, require, uniform_int

#: torchvision's number of attempts to find a rectangle that fits.
ERASING_ATTEMPTS = 10


def random_bytes(shape: torch.Size, generator: torch.Generator, device) -> torch.Tensor:
    """Uniform uint8 values of ``shape``, drawn four at a time as int32 (about 3x faster than uint8 draws)."""
    count = math.prod(shape)
    words = torch.randint(-2**31, 2**31 - 1, ((count + 3) // 4,), generator=generator, device=device,
                          dtype=torch.int32)
    return words.view(torch.uint8)[:count].view(shape)


def _box_mask(top: torch.Tensor, left: torch.Tensor, height, width, h: int, w: int,
              only: torch.Tensor | None = None) -> torch.Tensor:
    """bool ``[B, 1, h, w]``: True inside each sample's box ``[top, top + height) x [left, left + width)``
    (and, given ``only`` ``[B]``, only for the samples it marks: folded into the rows, one full-size pass)."""
    rows = torch.arange(h, device=top.device).view(1, h)
    cols = torch.arange(w, device=top.device).view(1, w)
    top, left = top.view(-1, 1), left.view(-1, 1)
    # per-sample sizes as [B, 1]; a size given as a number stays a number (no tensor made from a host value)
    height, width = (size.view(-1, 1) if torch.is_tensor(size) else size for size in (height, width))
    in_rows = (rows >= top) & (rows < top + height)
    if only is not None:
        in_rows &= only.view(-1, 1)
    in_cols = (cols >= left) & (cols < left + width)
    return (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)


@register_op("cutout", kind="batch")
class Cutout:
    """Cutout (DeVries & Taylor 2017): ``holes`` square holes of side ``length``.

    ``length`` is given at ``reference_size`` pixels and scaled to the image:
    16 at 32 px (the paper's CIFAR-10 setting) is 14 at 28 px. With
    ``reference_size: null`` it is taken in pixels as is. ``fill``: a pixel
    value, one per channel, or ``mean`` (the original code's holes).
    """

    def __init__(self, length: int = 16, holes: int = 1, fill: Fill = 0, reference_size: int | None = 32):
        require(length >= 1, "length", length, "an integer >= 1")
        require(holes >= 1, "holes", holes, "an integer >= 1")
        check_fill(fill)
        require(reference_size is None or reference_size >= 1, "reference_size", reference_size,
                "an integer >= 1, or null for no scaling")
        self.length, self.holes, self.fill, self.reference_size = length, holes, fill, reference_size

    def hole_side(self, height: int, width: int) -> int:
        if self.reference_size is None:
            return self.length
        return max(1, round(self.length * min(height, width) / self.reference_size))

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = images.shape
        side = self.hole_side(h, w)
        hole = torch.zeros(b, 1, h, w, dtype=torch.bool, device=images.device)
        for _ in range(self.holes):
            cy = uniform_int(h, b, generator, images.device)
            cx = uniform_int(w, b, generator, images.device)
            # The hole [cy - side//2, cy + side - side//2) is clipped by the mask to the image.
            hole |= _box_mask(cy - side // 2, cx - side // 2, side, side, h, w)
        return torch.where(hole, fill_tensor(self.fill, c, images.device), images)

    def sample(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        side = self.hole_side(h, w)
        img = img.clone()
        for _ in range(self.holes):
            cy, cx = torch.randint(0, h, ()).item(), torch.randint(0, w, ()).item()
            top, left = max(cy - side // 2, 0), max(cx - side // 2, 0)
            img[:, top:min(cy + side - side // 2, h), left:min(cx + side - side // 2, w)] = \
                fill_tensor(self.fill, c, img.device)
        return img


@register_op("random_erasing", kind="batch")
class RandomErasing:
    """Random erasing (Zhong et al. 2020); CIFAR setting p=0.5, scale (0.02, 0.4), ratio (0.3, 1/0.3).

    ``value: random`` fills the rectangle with uniform random pixel values
    (the paper's RE-R); an integer (or one per channel) fills it with that
    constant, ``mean`` with the data set's mean.
    """

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.4),
                 ratio: tuple[float, float] = (0.3, 3.3), value: Fill | Literal["random"] = "random"):
        require(0 <= p <= 1, "p", p, "a number in [0, 1]")
        require(0 < scale[0] <= scale[1] < 1, "scale", list(scale), "[min, max] with 0 < min <= max < 1")
        require(0 < ratio[0] <= ratio[1], "ratio", list(ratio), "[min, max] with 0 < min <= max")
        if value != "random":
            check_fill(value, "value")
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value

    def _boxes(self, b: int, h: int, w: int, generator: torch.Generator, device):
        """Per sample: whether to erase, and the box (top, left, height, width), as torchvision draws it."""
        def uniform(low, high):
            return low + (high - low) * torch.rand(b, ERASING_ATTEMPTS, generator=generator, device=device)

        area = h * w * uniform(*self.scale)
        aspect = torch.exp(uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        heights = torch.round(torch.sqrt(area * aspect)).long()
        widths = torch.round(torch.sqrt(area / aspect)).long()
        fits = (heights < h) & (widths < w)
        first = fits.long().argmax(1, keepdim=True)  # the first attempt that fits (0 if none does)
        height, width = heights.gather(1, first).squeeze(1), widths.gather(1, first).squeeze(1)
        erase = fits.any(1) & (torch.rand(b, generator=generator, device=device) < self.p)
        top = uniform_int(h - height + 1, b, generator, device)
        left = uniform_int(w - width + 1, b, generator, device)
        return erase, top, left, height, width

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = images.shape
        erase, top, left, height, width = self._boxes(b, h, w, generator, images.device)
        box = _box_mask(top, left, height, width, h, w, only=erase)
        if self.value == "random":
            fill = random_bytes(images.shape, generator, images.device)
        else:
            fill = fill_tensor(self.value, c, images.device)
        return torch.where(box, fill, images)

    def sample(self, img: torch.Tensor) -> torch.Tensor:
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
            img[:, top:top + eh, left:left + ew] = fill_tensor(self.value, c, img.device)
        return img
