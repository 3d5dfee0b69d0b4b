"""Learned and random augmentation policies, and colour jitter.

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

``autoaugment``, ``randaugment`` and ``trivialaugment`` are **batch** ops:
every sample draws its own operations, magnitudes and signs on the training
device from the generator it is given, exactly as torchvision's transforms
draw them for one image (``torchvision/transforms/v2/_auto_augment.py``:
the policy tables and magnitude ranges are read from torchvision's classes,
so they are torchvision's), and the operations run batched
(:mod:`augbench.augment.policy_ops`). ``tv_autoaugment``, ``tv_randaugment``
and ``tv_trivialaugment`` are torchvision's own transforms, one image at a
time in the loader (sample ops); the batch ops' ``sample`` is the same
transform, the per-sample reference ``augbench bench`` measures against.

All work on uint8 ``[C, H, W]`` images, one or three channels; saturation
and hue leave a grayscale image unchanged. ``fill`` is the pixel value for
areas that geometric operations uncover.
"""

from __future__ import annotations

from typing import Literal

import torch
from torchvision.transforms import v2

from augbench.augment.ops import Fill, check_fill, constant, fill_values, register_op, require, uniform_int
from augbench.augment.policy_ops import IDENTITY, CapturedApply, apply_steps

AUTOAUGMENT_POLICIES = {
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
}


def _fill(fill: Fill) -> int | list[int]:
    """The fill torchvision gets; ``mean`` stands in as 0 until the recipe is prepared for a data set."""
    check_fill(fill)
    return 0 if fill == "mean" else fill


@register_op("tv_autoaugment")
def tv_autoaugment(policy: Literal["cifar10", "svhn", "imagenet"] = "cifar10", fill: Fill = 0) -> v2.Transform:
    """torchvision's AutoAugment, one image at a time in the loader."""
    return v2.AutoAugment(AUTOAUGMENT_POLICIES[policy], fill=_fill(fill))


@register_op("tv_randaugment")
def tv_randaugment(num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                   fill: Fill = 0) -> v2.Transform:
    """torchvision's RandAugment, one image at a time in the loader."""
    require(num_ops >= 0, "num_ops", num_ops, "an integer >= 0")
    require(num_magnitude_bins >= 2, "num_magnitude_bins", num_magnitude_bins, "an integer >= 2")
    require(0 <= magnitude < num_magnitude_bins, "magnitude", magnitude,
            f"an integer in [0, num_magnitude_bins - 1 = {num_magnitude_bins - 1}]")
    return v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=num_magnitude_bins,
                          fill=_fill(fill))


@register_op("tv_trivialaugment")
def tv_trivialaugment(num_magnitude_bins: int = 31, fill: Fill = 0) -> v2.Transform:
    """torchvision's TrivialAugment Wide, one image at a time in the loader."""
    require(num_magnitude_bins >= 2, "num_magnitude_bins", num_magnitude_bins, "an integer >= 2")
    return v2.TrivialAugmentWide(num_magnitude_bins=num_magnitude_bins, fill=_fill(fill))


class _Table:
    """A policy's operations and magnitudes for one image size, on one device.

    ``names[k]`` is operation ``k`` (``names[0]`` is ``Identity``);
    ``magnitudes[k, j]`` its magnitude at bin ``j`` (0 where it has none);
    ``signed[k]`` whether its sign is drawn.
    """

    def __init__(self, space: dict, bins: int, h: int, w: int, device):
        self.names = self.op_names(space)
        rows = []
        for name in self.names:
            values = space[name][0](bins, h, w) if name in space else None
            rows.append(torch.zeros(bins) if values is None else values.float())
        self.magnitudes = torch.stack(rows).to(device)
        self.signed = torch.tensor([name in space and space[name][1] for name in self.names], device=device)

    @staticmethod
    def op_names(space: dict) -> list[str]:
        """``Identity``, then the policy's operations in torchvision's order."""
        return [IDENTITY] + [name for name in space if name != IDENTITY]


class _BatchedPolicy:
    """A torchvision policy drawn per sample on the device and applied batched.

    ``_draw`` returns one ``(op_ids, bin)`` pair per step of the policy; the
    magnitude is the table's value at that bin, negated with probability 1/2
    for signed operations (``rand <= 0.5``, as torchvision draws it).
    """

    transform: v2.Transform
    #: ``apply_ops``'s ``grouped``: None picks by device (grouped on a CPU, no host reads on an accelerator).
    grouped: bool | None = None
    #: On CUDA, replay the operations from a CUDA graph (:class:`policy_ops.CapturedApply`): the same pixels.
    cuda_graphs: bool = True
    _captured: CapturedApply | None = None

    def __init__(self, transform: v2.Transform, space: dict, bins: int, fill: Fill):
        self.transform, self.space, self.bins, self.fill = transform, space, bins, fill
        self._fill = _fill(fill)  # what torchvision's transform was given
        self._tables: dict[tuple, _Table] = {}

    def table(self, h: int, w: int, device) -> _Table:
        key = (h, w, str(device))
        if key not in self._tables:
            self._tables[key] = _Table(self.space, self.bins, h, w, device)
        return self._tables[key]

    def _draw(self, table: _Table, b: int, generator: torch.Generator, device) -> list[tuple]:
        raise NotImplementedError

    def draw(self, b: int, h: int, w: int, generator: torch.Generator, device) -> list[tuple]:
        """``[(op_ids, signed magnitude), ...]``, one pair per step of the policy, for ``b`` samples."""
        table = self.table(h, w, device)
        steps = []
        for op_ids, bins in self._draw(table, b, generator, device):
            magnitude = table.magnitudes[op_ids, bins]
            negate = table.signed[op_ids] & (torch.rand(b, generator=generator, device=device) <= 0.5)
            steps.append((op_ids, torch.where(negate, -magnitude, magnitude)))
        return steps

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = images.shape
        names, fill = self.table(h, w, images.device).names, fill_values(self._fill, c)
        steps = self.draw(b, h, w, generator, images.device)
        if images.is_cuda and self.grouped is not True and self.cuda_graphs:
            if self._captured is None:
                self._captured = CapturedApply()
            return self._captured(images, steps, names, fill)
        return apply_steps(images, steps, names, fill, self.grouped)

    def sample(self, img: torch.Tensor) -> torch.Tensor:
        """torchvision's transform on one image (the per-sample reference)."""
        return self.transform(img)


@register_op("autoaugment", kind="batch", heavy=True)
class AutoAugment(_BatchedPolicy):
    """AutoAugment (Cubuk et al. 2019) with the policy learned on ``policy``: per sample, one of the 25
    sub-policies, each of its two operations applied with its probability at its magnitude bin (of 10)."""

    def __init__(self, policy: Literal["cifar10", "svhn", "imagenet"] = "cifar10", fill: Fill = 0):
        transform = tv_autoaugment(policy, fill)
        super().__init__(transform, transform._AUGMENTATION_SPACE, 10, fill)
        names = _Table.op_names(self.space)
        steps = list(zip(*transform._policies))  # step k: the k-th operation of every sub-policy
        #: ``[steps, sub-policies]`` tables as flat lists (made into tensors once per device, by ``constant``)
        self._shape = (len(steps), len(steps[0]))
        self._ops = [names.index(name) for step in steps for name, _, _ in step]
        self._probability = [p for step in steps for _, p, _ in step]
        self._bin = [0 if j is None else j for step in steps for _, _, j in step]

    def _draw(self, table, b, generator, device):
        ops, probability, bins = (constant(values, dtype, device).view(self._shape) for values, dtype in (
            (self._ops, torch.long), (self._probability, torch.float32), (self._bin, torch.long)))
        chosen = uniform_int(ops.shape[1], b, generator, device)  # the sub-policy
        draws = []
        for step in range(ops.shape[0]):
            applied = torch.rand(b, generator=generator, device=device) <= probability[step, chosen]
            draws.append((torch.where(applied, ops[step, chosen], 0), bins[step, chosen]))
        return draws


@register_op("randaugment", kind="batch", heavy=True)
class RandAugment(_BatchedPolicy):
    """RandAugment (Cubuk et al. 2020): per sample, ``num_ops`` operations drawn uniformly from 14, each at
    magnitude M = ``magnitude`` of ``num_magnitude_bins``."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31, fill: Fill = 0):
        transform = tv_randaugment(num_ops, magnitude, num_magnitude_bins, fill)
        super().__init__(transform, transform._AUGMENTATION_SPACE, num_magnitude_bins, fill)
        self.num_ops, self.magnitude = num_ops, magnitude

    def _draw(self, table, b, generator, device):
        m = torch.full((b,), self.magnitude, device=device)
        return [(uniform_int(len(table.names), b, generator, device), m) for _ in range(self.num_ops)]


@register_op("trivialaugment", kind="batch", heavy=True)
class TrivialAugment(_BatchedPolicy):
    """TrivialAugment Wide (Müller & Hutter 2021): per sample, one operation of 14 at a magnitude bin drawn
    uniformly from ``num_magnitude_bins``."""

    def __init__(self, num_magnitude_bins: int = 31, fill: Fill = 0):
        transform = tv_trivialaugment(num_magnitude_bins, fill)
        super().__init__(transform, transform._AUGMENTATION_SPACE, num_magnitude_bins, fill)

    def _draw(self, table, b, generator, device):
        op_ids = uniform_int(len(table.names), b, generator, device)
        return [(op_ids, uniform_int(self.bins, b, generator, device))]


@register_op("color_jitter")
def color_jitter(brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0) -> v2.Transform:
    """Random brightness, contrast, saturation and hue, each factor drawn from ``[1 - x, 1 + x]`` (hue: ``[-x, x]``)."""
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        require(value >= 0, name, value, "a number >= 0")
    require(0 <= hue <= 0.5, "hue", hue, "a number in [0, 0.5]")
    return v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)
