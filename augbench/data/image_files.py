"""Decoding folders of image files into the decode cache; shared by ``imagefolder`` and ``tiny_imagenet``.

A family lists its files per split with their labels (:class:`SplitFiles`);
:func:`load_image_files` checks them, decodes them with Pillow straight into
the memory-mapped cache file (no second copy of the pixels) and returns an
:class:`ImageDataset` whose tensors are views of that file.

Every image is brought to the image size by the rule in
:mod:`augbench.data.registry`: shorter side scaled to ``S`` (bilinear,
antialiased), centre ``S x S`` cut out.  Without an image size all images
must already share one square size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from augbench.data import cache
from augbench.data.registry import ImageDataset, channel_stats
from augbench.errors import DataError

#: Bumped whenever decoding changes, so old cache files are refused.
DECODER_VERSION = "pillow-bilinear-centre-1"

# Pillow modes by the channel count they decode to.  Alpha is dropped: the
# models see colour, and a mostly opaque alpha channel would only add a constant.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"}


def image_suffixes() -> set[str]:
    """File name endings Pillow can open (``.png``, ``.jpeg``, ``.webp``, ...), lower case."""
    return {ext.lower() for ext in Image.registered_extensions()}


#: An image file as the cache key sees it: (path, size in bytes, modification time in ns).
ImageFile = tuple[str, int, int]


def list_images(folder: Path) -> list[ImageFile]:
    """Image files directly in ``folder`` (by Pillow's extensions), sorted by name; hidden files skipped.

    One ``scandir`` and one ``stat`` per file: listing 100,000 files is part of every cached load.
    """
    suffixes = image_suffixes()
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if (not entry.name.startswith(".") and os.path.splitext(entry.name)[1].lower() in suffixes
                    and entry.is_file()):
                st = entry.stat()
                found.append((entry.path, st.st_size, st.st_mtime_ns))
    return sorted(found)


def stat_image(path: Path) -> ImageFile:
    """``path`` as an :data:`ImageFile`; DataError if it is missing."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    return str(path), st.st_size, st.st_mtime_ns


@dataclass
class SplitFiles:
    """The files of one split, in order, with their labels."""

    files: list[ImageFile] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add(self, files: list[ImageFile], label: int) -> None:
        self.files += files
        self.labels += [label] * len(files)

    @property
    def paths(self) -> list[str]:
        return [path for path, _size, _mtime in self.files]


def load_image_files(
    name: str,
    source: Path,
    splits: dict[str, SplitFiles],
    class_names: list[str],
    image_size: int | None,
    channels: int | None,
    notes: str | None = None,
) -> ImageDataset:
    """Decode ``splits`` (``train`` and ``test``, optionally ``val``) through the decode cache.

    ``channels`` forces 1 (grayscale) or 3 (RGB); None takes the first training
    image's channel count and refuses images with another one.
    """
    entries = []
    prefix = len(str(source)) + 1  # the source is keyed once; each file by its path below it
    for split, files in splits.items():
        entries.append(f"split {split}")
        entries += [f"{label} {path[prefix:]} {size} {mtime}"
                    for (path, size, mtime), label in zip(files.files, files.labels)]
    key = cache.source_key(source, entries, image_size, f"{DECODER_VERSION} channels={channels}")
    path = cache.cache_path(name, source, image_size)
    source = source.resolve()

    def build(allocate: cache.Allocate) -> dict:
        first = Path(splits["train"].files[0][0])
        first_channels, first_size = _probe(first)
        chans = channels or first_channels
        if image_size is None and first_size[0] != first_size[1]:
            raise DataError(f"{first}: image is {first_size[0]}x{first_size[1]}, not square; pass --image-size N "
                            "(shorter side scaled to N, centre crop)")
        size = image_size or first_size[0]
        wanted = {}
        for split, files in splits.items():
            wanted[f"{split}_images"] = ((len(files.files), chans, size, size), "uint8")
            wanted[f"{split}_labels"] = ((len(files.files),), "int64")
        arrays = allocate(wanted)
        reference = (first, first_channels)
        for split, files in splits.items():
            images = arrays[f"{split}_images"]
            for i, p in enumerate(files.paths):
                images[i] = _decode(p, size, chans, channels is None, image_size is None, reference)
            arrays[f"{split}_labels"][:] = files.labels
        mean, std = channel_stats(arrays["train_images"])
        return {"class_names": class_names, "mean": mean, "std": std, "source": str(source), "notes": notes}

    cached = cache.load_or_build(path, key, build)
    a, meta = cached.arrays, cached.meta
    has_val = "val_images" in a
    return ImageDataset(
        name=name,
        train_images=torch.from_numpy(a["train_images"]), train_labels=torch.from_numpy(a["train_labels"]),
        test_images=torch.from_numpy(a["test_images"]), test_labels=torch.from_numpy(a["test_labels"]),
        num_classes=len(meta["class_names"]), class_names=list(meta["class_names"]),
        mean=tuple(meta["mean"]), std=tuple(meta["std"]), source=meta["source"],
        val_images=torch.from_numpy(a["val_images"]) if has_val else None,
        val_labels=torch.from_numpy(a["val_labels"]) if has_val else None,
        splits=meta["notes"],
    )


def _channels_of(path: Path, mode: str) -> int:
    if mode in _GRAY_MODES:
        return 1
    if mode in _COLOUR_MODES:
        return 3
    raise DataError(f"{path}: Pillow mode {mode!r} is neither grayscale nor colour; accepted modes: "
                    f"{', '.join(sorted(_GRAY_MODES | _COLOUR_MODES))}")


def _probe(path: Path) -> tuple[int, tuple[int, int]]:
    """(channels, (width, height)) from the file's header."""
    try:
        with Image.open(path) as im:
            return _channels_of(path, im.mode), im.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read this image ({exc}); accepted: any image file Pillow opens") from exc


def _decode(path: Path, size: int, channels: int, strict_channels: bool, strict_size: bool,
            reference: tuple[Path, int]) -> np.ndarray:
    """One file -> uint8 ``[channels, size, size]``; DataError naming the file on anything wrong."""
    try:
        with Image.open(path) as im:
            im.load()  # decodes now: a truncated file fails here, not later
            found = _channels_of(path, im.mode)
            if strict_channels and found != channels:
                raise DataError(
                    f"{path}: {found} channel(s) (mode {im.mode}) but {reference[0]} has {reference[1]}; "
                    "all images of a data set must have the same number of channels (1 = grayscale, 3 = colour)")
            if im.mode != ("L" if channels == 1 else "RGB"):
                im = im.convert("L" if channels == 1 else "RGB")
            w, h = im.size
            if (w, h) != (size, size):
                if strict_size:
                    raise DataError(f"{path}: image is {w}x{h} but {reference[0]} is {size}x{size}; pass "
                                    "--image-size N to bring all images to NxN (shorter side, centre crop)")
                side = min(w, h)
                left, top = (w - side) / 2, (h - side) / 2
                # Resampling the centre square straight to size x size is "shorter side to size, then
                # centre crop" in one step; Pillow's bilinear filter widens its support when it shrinks.
                im = im.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
            pixels = np.asarray(im)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode this image ({exc}); the file is truncated, corrupt or not an "
                        "image; accepted: any image file Pillow reads") from exc
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
