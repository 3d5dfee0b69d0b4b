"""Per-sample augmentation operations, registered by name.

An operation is built from keyword arguments (as a recipe file gives them)
and maps one uint8 ``[C, H, W]`` image tensor (grayscale or RGB) to another.
Randomness comes from torch's global generator, which the loader seeds per
batch, so every view is reproducible from (seed, epoch, batch).

A factory declares its arguments with annotated keyword parameters: the
recipe loader checks names and types against them. Values out of range are
reported by the factory itself with :class:`OpArgumentError`. This file
holds the registry and the standard CIFAR crop and flip; the other op
families live in their own files (``erasing``, ``policies``,
``albumentations_op``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Op = Callable[[torch.Tensor], torch.Tensor]
OPS: dict[str, Callable[..., Op]] = {}


class OpArgumentError(ValueError):
    """An operation argument with a value out of its range.

    Attributes:
        field: the argument's name.
        value: the value given.
        accepted: what would be accepted, in words.
    """

    def __init__(self, field: str, value, accepted: str):
        super().__init__(f"{field}: got {value!r}; accepted: {accepted}")
        self.field, self.value, self.accepted = field, value, accepted


def require(ok: bool, field: str, value, accepted: str) -> None:
    """Raises :class:`OpArgumentError` unless ``ok``."""
    if not ok:
        raise OpArgumentError(field, value, accepted)


def register_op(name: str):
    """Decorator: registers a factory ``(**args) -> Op`` under ``name``."""

    def wrap(factory):
        if name in OPS:
            raise ValueError(f"augmentation op '{name}' registered twice")
        OPS[name] = factory
        return factory

    return wrap


@register_op("pad_crop")
class PadCrop:
    """Zero-pad by ``padding`` pixels and take a random crop of the original size (He et al. 2016)."""

    def __init__(self, padding: int = 4, fill: int = 0):
        require(padding >= 0, "padding", padding, "an integer >= 0")
        require(0 <= fill <= 255, "fill", fill, "an integer in [0, 255]")
        self.padding = int(padding)
        self.fill = int(fill)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if p == 0:
            return img
        _, h, w = img.shape
        padded = F.pad(img, (p, p, p, p), value=self.fill)
        top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
        return padded[:, top:top + h, left:left + w]


@register_op("flip")
class HorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        require(0 <= p <= 1, "p", p, "a number in [0, 1]")
        self.p = float(p)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) < self.p:
            return img.flip(-1)
        return img
