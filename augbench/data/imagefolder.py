"""``imagefolder``: a user's own images, one subfolder per class.

The layout of torchvision's ``ImageFolder`` (itself the layout of the ImageNet
release, Deng et al. 2009, "ImageNet: A Large-Scale Hierarchical Image
Database", CVPR), with the splits as top-level folders::

    PATH/train/<class>/*     required
    PATH/test/<class>/*      required, the same classes as train
    PATH/val/<class>/*       optional; replaces the validation fraction held out from train

Class names are the folder names, sorted; label ``i`` is the ``i``-th name.
Any file Pillow opens is an image (by its extension); hidden files are skipped.
"""

from __future__ import annotations

from pathlib import Path

from augbench.data.image_files import SplitFiles, image_suffixes, list_images, load_image_files
from augbench.data.registry import ENV_VAR, ImageDataset, register_dataset, search_bases
from augbench.errors import DataError, UsageError

_LAYOUT = "PATH/train/<class>/*, PATH/test/<class>/* and optionally PATH/val/<class>/*"


def _class_folders(split_dir: Path) -> dict[str, Path]:
    suffixes = image_suffixes()
    stray = [p for p in split_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    if stray:
        raise DataError(f"{stray[0]}: images must be inside class folders; expected layout {_LAYOUT}")
    folders = {p.name: p for p in sorted(split_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    if not folders:
        raise DataError(f"{split_dir}: no class folders; expected layout {_LAYOUT}")
    return folders


def _split_files(split_dir: Path, class_names: list[str]) -> SplitFiles:
    files = SplitFiles()
    for label, name in enumerate(class_names):
        paths = list_images(split_dir / name)
        if not paths:
            raise DataError(f"{split_dir / name}: class {name!r} has no images (accepted endings: "
                            f"{', '.join(sorted(image_suffixes())[:12])}, ...)")
        files.add(paths, label)
    return files


def find_root(root: str | None) -> Path:
    """``--data-root`` (else ``$AUGBENCH_DATA``) if it has the layout; DataError naming what is missing."""
    bases = search_bases(root)
    if not bases:
        raise UsageError(f"--data-root: imagefolder needs --data-root PATH (or {ENV_VAR}=PATH) with {_LAYOUT}")
    base = bases[0][1].resolve()
    if not base.is_dir():
        raise DataError(f"{base}: no such folder; expected a folder with {_LAYOUT}")
    missing = [s for s in ("train", "test") if not (base / s).is_dir()]
    if missing:
        raise DataError(f"{base}: missing {' and '.join(f'{s}/' for s in missing)}; expected layout {_LAYOUT}")
    return base


@register_dataset("imagefolder")
def load_imagefolder(root: str | None = None, download: bool = False,
                     image_size: int | None = None) -> ImageDataset:
    """Images in class folders under ``--data-root`` (see the module docstring for the layout)."""
    if download:
        raise UsageError("--download: imagefolder reads a local folder; there is nothing to download")
    base = find_root(root)
    train_classes = _class_folders(base / "train")
    class_names = sorted(train_classes)
    test_classes = _class_folders(base / "test")
    lacking = [c for c in class_names if c not in test_classes]
    if lacking:
        raise DataError(f"{base / 'test'}: class {lacking[0]!r} is in train/ but not in test/; every training "
                        "class needs test images")
    has_val = (base / "val").is_dir()
    for split, classes in (("test", test_classes), ("val", _class_folders(base / "val") if has_val else {})):
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise DataError(f"{base / split / unknown[0]}: class {unknown[0]!r} is not in train/; accepted "
                            f"classes: {', '.join(class_names)}")
    splits = {"train": _split_files(base / "train", class_names),
              "test": _split_files(base / "test", class_names)}
    notes = None
    if has_val:
        val_classes = [c for c in class_names if (base / "val" / c).is_dir()]
        val = SplitFiles()
        for c in val_classes:
            paths = list_images(base / "val" / c)
            if not paths:
                raise DataError(f"{base / 'val' / c}: class {c!r} has no images")
            val.add(paths, class_names.index(c))
        splits["val"] = val
        notes = f"val: {base / 'val'} (replaces the fraction held out from train); test: {base / 'test'}"
    return load_image_files("imagefolder", base, splits, class_names, image_size, channels=None, notes=notes)
