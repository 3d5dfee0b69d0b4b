"""A per-sample pipeline: operations in order on uint8 images; normalization is done per batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from augbench.augment.ops import OPS, Op


@dataclass
class SamplePipeline:
    """Operations applied in order to each uint8 ``[C, H, W]`` image of each view.

    Attributes:
        ops: the built operations.
        spec: ``[(name, args), ...]`` they were built from (for records and display).
    """

    ops: list[Op]
    spec: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: list[tuple[str, dict[str, Any]]]) -> SamplePipeline:
        return cls([OPS[name](**args) for name, args in spec], list(spec))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            img = op(img)
        return img


#: The standard CIFAR augmentation (He et al. 2016): pad 4 and crop, horizontal flip.
BASELINE_SPEC: list[tuple[str, dict[str, Any]]] = [("pad_crop", {"padding": 4}), ("flip", {"p": 0.5})]


def baseline_pipeline() -> SamplePipeline:
    return SamplePipeline.from_spec(BASELINE_SPEC)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> float, ``(x / 255 - mean) / std`` per channel."""
    return images.float().div_(255.0).sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
