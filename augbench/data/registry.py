"""The data set registry and what every data set family shares.

Every loader returns an :class:`ImageDataset` with ``uint8 [N, C, H, W]`` images
and ``int64 [N]`` labels, plus the per-channel mean and std of the *training*
images (in ``[0, 1]`` units) for normalisation.  A family lives in its own file
(``fashion_mnist.py``, ``cifar.py``, ``imagefolder.py``, ...) and becomes a
``--dataset`` choice by :func:`register_dataset`.

Image size rule
---------------
``--image-size S`` brings every image to ``S x S``: the shorter side is scaled
to ``S`` (bilinear, antialiased) and the centre ``S x S`` is cut out, like
torchvision's ``Resize(S)`` + ``CenterCrop(S)``.  For square images this is an
exact resize.  Without it a data set keeps its native size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augbench.errors import DataError, FieldError
from augbench.registry import registrar

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "ImageDataset",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]

#: Environment variable naming a data folder, searched after ``--data-root``.
ENV_VAR = "AUGBENCH_DATA"


@dataclass
class ImageDataset:
    """A labelled image data set, train and test split, whole in memory.

    ``train_images`` / ``test_images`` are contiguous ``uint8 [N, C, H, W]``;
    labels are ``int64 [N]`` in ``[0, num_classes)``.  ``mean`` and ``std`` are
    per channel, in ``[0, 1]`` units, over the TRAIN images (population std).
    ``source`` is the folder the data was read from, or ``"generated"``.

    ``val_images`` / ``val_labels`` are set only when the data set ships its own
    labelled validation split (an image folder's ``val/``); otherwise the
    validation split is held out from train.  ``splits`` says in words where
    each split came from when that is not the obvious reading (it goes into
    the result record).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    splits: str | None = None

    @property
    def in_chans(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[2])

    def __repr__(self) -> str:  # the default would print whole tensors
        val = f", val={tuple(self.val_images.shape)}" if self.val_images is not None else ""
        return (
            f"ImageDataset(name={self.name!r}, train={tuple(self.train_images.shape)}{val}, "
            f"test={tuple(self.test_images.shape)}, num_classes={self.num_classes}, "
            f"source={self.source!r})"
        )


#: ``fn(root, download, image_size) -> ImageDataset``; ``image_size`` None means native size.
Loader = Callable[[str | None, bool, int | None], ImageDataset]

#: Registry: data set name -> loader.
DATASETS: dict[str, Loader] = {}


#: Decorator: ``@register_dataset(NAME)`` registers ``fn(root, download, image_size) -> ImageDataset``.
register_dataset = registrar(DATASETS, "data set")


def list_datasets() -> list[str]:
    """Registered data set names, sorted."""
    return sorted(DATASETS)


def check_image_size(image_size: int | None) -> None:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or not 8 <= image_size <= 4096):
        raise FieldError("image_size", f"--image-size: got {image_size!r}; accepted: an integer in [8, 4096], or omit it "
                         "for the data set's native size")


def load_dataset(name: str, data_root: str | None = None, download: bool = False,
                 image_size: int | None = None) -> ImageDataset:
    """Load a registered data set by name (the ``--dataset`` flag).

    ``data_root`` is the ``--data-root`` flag; ``download`` the ``--download``
    flag (only CIFAR and Tiny-ImageNet can be downloaded); ``image_size`` the
    ``--image-size`` flag (see the module docstring for the rule).
    """
    loader = DATASETS.get(name)
    if loader is None:
        raise FieldError("dataset", f"--dataset: unknown data set {name!r}; registered: {', '.join(list_datasets())}")
    check_image_size(image_size)
    ds = loader(data_root, download, image_size)
    if image_size is not None and tuple(ds.train_images.shape[2:]) != (image_size, image_size):
        ds = _resized(ds, image_size)
    return ds


# --------------------------------------------------------------------------- helpers for the families


def channel_stats(images: np.ndarray, chunk_pixels: int = 1 << 22) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and population std of uint8 ``[N, C, H, W]`` in [0, 1] units.

    Uses a 256-bin histogram per channel: exact, and far cheaper than a float copy.  Counted in chunks of
    about ``chunk_pixels`` pixels, because ``bincount`` widens its input to int64: eight bytes per pixel.
    """
    chunk = max(1, chunk_pixels // max(1, images.shape[2] * images.shape[3]))
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.zeros(256, dtype=np.float64)
        for start in range(0, images.shape[0], chunk):
            hist += np.bincount(images[start:start + chunk, c].reshape(-1), minlength=256)
        total = hist.sum()
        mean = float((hist * values).sum() / total)
        var = float((hist * (values - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


def make_dataset(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    class_names: list[str],
    source: str,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> ImageDataset:
    """Build an ImageDataset from numpy arrays; always copies (callers may mutate theirs)."""
    mean, std = stats if stats is not None else channel_stats(train_x)
    return ImageDataset(
        name=name,
        train_images=torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.uint8).copy()),
        train_labels=torch.from_numpy(np.asarray(train_y, dtype=np.int64).copy()),
        test_images=torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.uint8).copy()),
        test_labels=torch.from_numpy(np.asarray(test_y, dtype=np.int64).copy()),
        num_classes=len(class_names),
        class_names=list(class_names),
        mean=mean,
        std=std,
        source=source,
    )


def search_bases(data_root: str | None) -> list[tuple[str, Path]]:
    """(label, folder) pairs from ``--data-root`` then ``$AUGBENCH_DATA``, in search order."""
    bases: list[tuple[str, Path]] = []
    if data_root:
        bases.append(("--data-root", Path(data_root).expanduser()))
    env = os.environ.get(ENV_VAR)
    if env:
        bases.append((f"${ENV_VAR}", Path(env).expanduser()))
    return bases


def check_labels(labels: np.ndarray, num_classes: int, where: str, field: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where}: field {field!r} has labels in [{labels.min()}, {labels.max()}]; "
            f"expected integers in [0, {num_classes - 1}]"
        )


def resize_images(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, size, size]`` by the module's rule (shorter side, centre crop).

    Works in chunks so the float copy stays small next to the uint8 result.
    """
    n, c, h, w = images.shape
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for start in range(0, n, chunk):
        part = images[start:start + chunk].float()
        part = torch.nn.functional.interpolate(part, size=(new_h, new_w), mode="bilinear", antialias=True,
                                               align_corners=False)
        out[start:start + chunk] = part[:, :, top:top + size, left:left + size].round_().clamp_(0, 255).to(torch.uint8)
    return out


def _resized(ds: ImageDataset, size: int) -> ImageDataset:
    """A fixed-size data set (CIFAR, Fashion-MNIST, generated) brought to ``size``; stats recomputed."""
    train = resize_images(ds.train_images, size)
    val = resize_images(ds.val_images, size) if ds.val_images is not None else None
    mean, std = channel_stats(train.numpy())
    return ImageDataset(
        name=ds.name, train_images=train, train_labels=ds.train_labels,
        test_images=resize_images(ds.test_images, size), test_labels=ds.test_labels,
        num_classes=ds.num_classes, class_names=ds.class_names, mean=mean, std=std, source=ds.source,
        val_images=val, val_labels=ds.val_labels, splits=ds.splits,
    )
