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

from augbench.augment.ops import HEAVY_OPS, OP_KINDS, OPS, Op, resolve_fill

#: Arguments that hold a fill value (and so may say ``mean``).
FILL_FIELDS = ("fill", "value")

#: Batch ops that run as one when they follow each other: ``(first, second) -> fused(a, b, images, generator)``.
#: A fused pair draws the same parameters in the same order as the two ops would, so its output is the same.
#: pad_crop then flip: the flip is folded into the crop's gather (one pass over the batch instead of three).
FUSED = {
    ("pad_crop", "flip"): lambda crop, flip, images, generator, **kw: crop(images, generator, then_flip=flip, **kw),
}


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

    @property
    def worth_workers(self) -> bool:
        """Whether, on a CPU with loader workers, the workers should do all of this pipeline (it has a sample op
        or a heavy batch op: :data:`augbench.augment.ops.HEAVY_OPS`)."""
        return self.needs_loader or any(name in HEAVY_OPS for name, _ in self.spec)

    def for_dataset(self, mean: Sequence[float]) -> Pipeline:
        """This pipeline with every ``mean`` fill replaced by the data set's per-channel mean."""
        spec = [(name, {k: resolve_fill(v, mean) if k in FILL_FIELDS else v for k, v in args.items()})
                for name, args in self.spec]
        return Pipeline.from_spec(spec)

    def run_loader_stage(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loader stage on a host batch; sample ops draw from torch's global generator."""
        return self._run(0, self.split, images, generator)

    def resident(self, images: torch.Tensor) -> torch.Tensor:
        """The training set as a loader keeps it on the device when there is no loader stage: prepared once by
        the first op where it can be (``pad_crop`` pads it; see :mod:`augbench.augment.ops`), else as it is."""
        first = self.ops[0] if self.ops and not self.needs_loader else None
        return first.resident(images) if hasattr(first, "resident") else images

    def run_device_stage(self, images: torch.Tensor, generator: torch.Generator,
                         resident: bool = False) -> torch.Tensor:
        """The device stage on a batch on the training device; with ``resident``, the batch is rows of
        :meth:`resident`'s output (the same views)."""
        return self._run(self.split, len(self.ops), images, generator, resident)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Every op on a uint8 ``[B, C, H, W]`` batch (previews, probes)."""
        return self._run(0, len(self.ops), images, generator)

    def _run(self, start: int, end: int, images: torch.Tensor, generator: torch.Generator,
             resident: bool = False) -> torch.Tensor:
        """Ops ``start`` to ``end - 1``; a pair in :data:`FUSED` runs as one; ``resident`` goes to the first."""
        names, kinds, i = [name for name, _ in self.spec], self.kinds, start
        while i < end:
            kw = {"resident": True} if resident and i == start and hasattr(self.ops[i], "resident") else {}
            fused = FUSED.get(tuple(names[i:i + 2])) if i + 1 < end else None
            if fused is not None:
                images, i = fused(self.ops[i], self.ops[i + 1], images, generator, **kw), i + 2
                continue
            images, i = self.run_one(self.ops[i], kinds[i], images, generator, **kw), i + 1
        return images

    @staticmethod
    def run_one(op: Op, kind: str, images: torch.Tensor, generator: torch.Generator, **kw) -> torch.Tensor:
        """One op on a batch: a batch op as it is (with ``kw``, such as ``resident``), a sample op image by image."""
        return op(images, generator, **kw) if kind == "batch" else torch.stack([op(img) for img in images])


#: Earlier name of :class:`Pipeline`, from when every op was a sample op.
SamplePipeline = Pipeline

#: The standard CIFAR augmentation (He et al. 2016): pad 4 and crop, horizontal flip.
BASELINE_SPEC: list[tuple[str, dict[str, Any]]] = [("pad_crop", {"padding": 4}), ("flip", {"p": 0.5})]


def baseline_pipeline() -> Pipeline:
    return Pipeline.from_spec(BASELINE_SPEC)
