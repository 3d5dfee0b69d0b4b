"""Augmentation operations, registered by name, of two kinds.

- A **batch** op acts on a whole uint8 ``[B, C, H, W]`` batch on the training
  device and draws its per-sample parameters (crop offsets, flip mask, hole
  boxes, ...) as tensors from the ``torch.Generator`` it is given. It never
  leaves the device and never reads a value back to the host. Each batch op
  also keeps ``sample(img)``, the same operation on one ``[C, H, W]`` image
  drawn from torch's global generator: the per-sample reference that
  ``augbench bench`` measures the batched form against. A batch op that can
  do part of its work once for the whole training set has ``resident(images)``
  (the set as it should be kept on the device) and takes ``resident=True``
  when its batch is rows of that (``pad_crop`` pads the set once).
- A **sample** op maps one uint8 ``[C, H, W]`` image to another, drawing from
  torch's global generator (torchvision's policies, Albumentations). Sample
  ops run in the loader (DataLoader worker processes when there are any).

The registry says which kind each op is (:data:`OP_KINDS`), and which batch
ops are *heavy* (:data:`HEAVY_OPS`): so costly on a CPU that, with loader
workers, a recipe that has one is augmented in the workers (see
``augbench.data.loader``). The three batched policies are heavy: their
hundreds of small kernels per call cost a CE step of ``cifar_resnet8`` at
batch 64 up to a tenth of its time on the reference 2-core CPU, and with a
one-thread model and one loader worker, end to end / model only went from
0.90 to 0.94 for RandAugment (5 alternating rounds each; AutoAugment 0.94
either way). The cheap ops lose by the move (baseline 0.99 in the training
process, 0.93 in a worker: the batch's trip between processes costs more
than its crop and flip). A factory declares
its arguments with annotated keyword parameters: the recipe loader checks
names and types against them. Values out of range are reported by the factory
itself with :class:`OpArgumentError`.

Fills: an op that uncovers or erases pixels takes ``fill``, an integer in
``[0, 255]``, one integer per channel, or ``"mean"``: the per-channel mean of
the data set's training images, which :func:`resolve_fill` substitutes when a
recipe is prepared for a data set (normalised, the mean is 0, which is what
Cutout's and AutoAugment's original code leave in their holes).

This file holds the registry, the fill helpers and the standard CIFAR crop
and flip; the other op families live in their own files (``erasing``,
``policies``, ``albumentations_op``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from augbench.registry import add

Op = Callable[..., torch.Tensor]
OPS: dict[str, Callable[..., Op]] = {}
#: ``"batch"`` or ``"sample"`` for every registered op (see the module docstring).
OP_KINDS: dict[str, str] = {}
KINDS = ("batch", "sample")
#: Batch ops worth a loader worker on a CPU (see the module docstring).
HEAVY_OPS: set[str] = set()
#: The type of a ``fill`` argument: a pixel value, one per channel, or the data set's mean.
Fill = int | list | Literal["mean"]


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


def register_op(name: str, kind: str = "sample", heavy: bool = False):
    """Decorator: registers a factory ``(**args) -> Op`` under ``name`` as a ``batch`` or ``sample`` op
    (``heavy``: a batch op worth a loader worker on a CPU)."""
    if kind not in KINDS:
        raise ValueError(f"augmentation op '{name}': kind {kind!r}; accepted: {', '.join(KINDS)}")
    if heavy and kind != "batch":
        raise ValueError(f"augmentation op '{name}': heavy=True; accepted only with kind 'batch'")

    def wrap(factory):
        add(OPS, name, factory, "augmentation op")
        OP_KINDS[name] = kind
        if heavy:
            HEAVY_OPS.add(name)
        return factory

    return wrap


# -- fills -----------------------------------------------------------------------------------------

FILL_ACCEPTED = "an integer in [0, 255], a list of one such integer per channel, or 'mean'"


def check_fill(fill: Any, field: str = "fill") -> None:
    """Raises :class:`OpArgumentError` unless ``fill`` is a pixel value, one per channel, or ``"mean"``."""
    if fill == "mean":
        return
    values = fill if isinstance(fill, list) else [fill]
    ok = bool(values) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)
    require(ok, field, fill, FILL_ACCEPTED)


def resolve_fill(fill: Any, mean: Sequence[float] | None) -> Any:
    """``"mean"`` as the data set's per-channel mean in uint8 units (``mean`` in [0, 1]); other fills unchanged."""
    if fill != "mean":
        return fill
    if mean is None:
        raise ValueError("fill 'mean' needs the data set's mean: prepare the recipe for a data set first")
    return [int(round(255.0 * m)) for m in mean]


def fill_values(fill: Any, channels: int) -> list[int]:
    """One fill value per channel (a single value is repeated)."""
    if fill == "mean":
        raise ValueError("fill 'mean' was not resolved: prepare the recipe for a data set first")
    values = fill if isinstance(fill, list) else [fill]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(f"fill {fill!r} has {len(values)} values for a {channels}-channel image")
    return values


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def constant(values: Sequence, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """A small constant tensor made once per device and kept: a copy to an accelerator from host memory
    would wait for the device at every step."""
    key = (tuple(values), dtype, str(device))
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype, device=device)
    return _CONSTANTS[key]


def fill_tensor(fill: Any, channels: int, device: torch.device) -> torch.Tensor:
    """A uint8 ``[C, 1, 1]`` fill for ``channels`` channels, made once per device (:func:`constant`)."""
    return constant(fill_values(fill, channels), torch.uint8, device).view(channels, 1, 1)


def uniform_int(high: torch.Tensor | int, size: int, generator: torch.Generator, device) -> torch.Tensor:
    """Integers uniform in ``[0, high)`` (``high`` may differ per sample), drawn on ``device``."""
    return (torch.rand(size, generator=generator, device=device) * high).long()


# -- crop and flip ---------------------------------------------------------------------------------

_CROP_MAPS: dict[tuple, torch.Tensor] = {}


def crop_index_maps(h: int, w: int, wide: int, device) -> torch.Tensor:
    """int64 ``[2, h * w]``: where output pixel ``(y, x)`` of an ``h x w`` crop at offset (0, 0) lies in a
    flattened padded image ``wide`` pixels wide, as read (row 0) and mirrored left-right (row 1). Made once
    per shape and device and kept (:func:`constant` does the same for fills)."""
    key = (h, w, wide, str(device))
    if key not in _CROP_MAPS:
        rows = torch.arange(h, device=device).view(h, 1) * wide
        cols = torch.arange(w, device=device).view(1, w)
        _CROP_MAPS[key] = torch.stack([rows + cols, rows + (w - 1) - cols]).view(2, h * w)
    return _CROP_MAPS[key]


@register_op("pad_crop", kind="batch")
class PadCrop:
    """Pad by ``padding`` pixels with ``fill`` and take a random crop of the original size (He et al. 2016).

    Batched: the offsets ``(top, left)`` are drawn uniformly from ``[0, 2p]``
    per sample and the crops are read from the padded batch in one gather.
    """

    def __init__(self, padding: int = 4, fill: Fill = 0):
        require(padding >= 0, "padding", padding, "an integer >= 0")
        check_fill(fill)
        self.padding, self.fill = int(padding), fill

    def _padded(self, images: torch.Tensor) -> torch.Tensor:
        p = self.padding
        values = fill_values(self.fill, images.shape[-3])
        if len(set(values)) == 1:
            return F.pad(images, (p, p, p, p), value=values[0])
        fill = fill_tensor(self.fill, images.shape[-3], images.device)
        padded = fill.expand(*images.shape[:-2], images.shape[-2] + 2 * p, images.shape[-1] + 2 * p).clone()
        padded[..., p:-p, p:-p] = images
        return padded

    def resident(self, images: torch.Tensor) -> torch.Tensor:
        """The training set as a loader keeps it on the device for this op: padded once, so that a step
        gathers its crops from rows of it (``resident=True``) without padding the batch first."""
        return self._padded(images) if self.padding else images

    def __call__(self, images: torch.Tensor, generator: torch.Generator,
                 then_flip: HorizontalFlip | None = None, resident: bool = False) -> torch.Tensor:
        """The crops; with ``then_flip``, that flip too, in the same gather (the same draws, in the same
        order, as the two ops one after the other: see :data:`augbench.augment.pipeline.FUSED`). With
        ``resident``, ``images`` are rows of :meth:`resident`'s output, already padded (the same crops)."""
        p = self.padding
        if p == 0:
            return images if then_flip is None else then_flip(images, generator)
        b, c, h, w = images.shape
        if resident:
            h, w = h - 2 * p, w - 2 * p
        wide = w + 2 * p
        padded = (images if resident else self._padded(images)).reshape(b, c, (h + 2 * p) * wide)
        offsets = uniform_int(2 * p + 1, 2 * b, generator, images.device).view(2, b)
        # One gather: output pixel (y, x) of sample i reads padded pixel (top_i + y, left_i + x), or
        # (top_i + y, left_i + w - 1 - x) where the sample is flipped: a per-sample offset added to one of
        # two fixed index maps (made once per shape and device), so each step builds its index in two ops.
        maps = crop_index_maps(h, w, wide, images.device)
        if then_flip is None:
            index = maps[0] + (offsets[0] * wide + offsets[1]).view(b, 1)
        else:
            flipped = then_flip.draw(b, generator, images.device)
            index = maps.index_select(0, flipped.long()).add_((offsets[0] * wide + offsets[1]).view(b, 1))
        return padded.gather(2, index.view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)

    def sample(self, img: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if p == 0:
            return img
        _, h, w = img.shape
        padded = self._padded(img)
        top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
        return padded[:, top:top + h, left:left + w]


@register_op("flip", kind="batch")
class HorizontalFlip:
    """Mirror left-right with probability ``p``, each sample independently."""

    def __init__(self, p: float = 0.5):
        require(0 <= p <= 1, "p", p, "a number in [0, 1]")
        self.p = float(p)

    def draw(self, b: int, generator: torch.Generator, device) -> torch.Tensor:
        """bool ``[b]``: which samples are flipped."""
        return torch.rand(b, generator=generator, device=device) < self.p

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = self.draw(images.shape[0], generator, images.device)
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)

    def sample(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) < self.p:
            return img.flip(-1)
        return img
