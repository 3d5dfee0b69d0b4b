"""A recipe's operations in order, split into a loader stage and a device stage.

Sample ops (one image at a time) must run in the loader, on the host, in
DataLoader worker processes when there are any. Batch ops run on whole
batches on the training device. Order is kept exactly: every op up to and
including the last sample op forms the *loader stage* (batch ops in it run
batched on the host batch), everything after it the *device stage*. A recipe
of batch ops only (crop, flip, Cutout, random erasing) never touches the host
per step: its images stay on the training device as uint8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from augbench.augment.ops import OP_KINDS, OPS, Op, resolve_fill

#: Arguments that hold a fill value (and so may say ``mean``).
FILL_FIELDS = ("fill", "value")


@dataclass
class Pipeline:
    """Operations applied in order to every view.

    Attributes:
        ops: the built operations.
        spec: ``[(name, args), ...]`` they were built from (for records and display).
    """

    ops: list[Op]
    spec: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: list[tuple[str, dict[str, Any]]]) -> Pipeline:
        return cls([OPS[name](**args) for name, args in spec], list(spec))

    @property
    def kinds(self) -> list[str]:
        return [OP_KINDS[name] for name, _ in self.spec]

    @property
    def split(self) -> int:
        """Number of leading ops that form the loader stage (0: everything runs on the device)."""
        kinds = self.kinds
        return max((i + 1 for i, kind in enumerate(kinds) if kind == "sample"), default=0)

    @property
    def needs_loader(self) -> bool:
        return self.split > 0

    def for_dataset(self, mean: Sequence[float]) -> Pipeline:
        """This pipeline with every ``mean`` fill replaced by the data set's per-channel mean."""
        spec = [(name, {k: resolve_fill(v, mean) if k in FILL_FIELDS else v for k, v in args.items()})
                for name, args in self.spec]
        return Pipeline.from_spec(spec)

    def run_loader_stage(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loader stage on a host batch; sample ops draw from torch's global generator."""
        return self._run(self.ops[:self.split], self.kinds[:self.split], images, generator)

    def run_device_stage(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The device stage on a batch on the training device."""
        return self._run(self.ops[self.split:], self.kinds[self.split:], images, generator)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Every op on a uint8 ``[B, C, H, W]`` batch (previews, probes)."""
        return self._run(self.ops, self.kinds, images, generator)

    @staticmethod
    def _run(ops, kinds, images, generator):
        for op, kind in zip(ops, kinds):
            if kind == "batch":
                images = op(images, generator)
            else:
                images = torch.stack([op(img) for img in images])
        return images


#: Earlier name of :class:`Pipeline`, from when every op was a sample op.
SamplePipeline = Pipeline

#: The standard CIFAR augmentation (He et al. 2016): pad 4 and crop, horizontal flip.
BASELINE_SPEC: list[tuple[str, dict[str, Any]]] = [("pad_crop", {"padding": 4}), ("flip", {"p": 0.5})]


def baseline_pipeline() -> Pipeline:
    return Pipeline.from_spec(BASELINE_SPEC)
