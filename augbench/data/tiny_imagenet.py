"""``tiny_imagenet``: Tiny ImageNet, 200 classes of 64x64 colour images.

Le & Yang (2015), "Tiny ImageNet Visual Recognition Challenge", Stanford
CS231N; a subset of ImageNet (Deng et al. 2009).  The third benchmark of DLB
(Shen et al. 2022, "Self-Distillation from the Last Mini-Batch for Consistency
Regularization", CVPR, arXiv:2203.16172).

Layout of the official ``tiny-imagenet-200.zip``::

    tiny-imagenet-200/wnids.txt                       one WordNet id per line (the 200 classes)
    tiny-imagenet-200/train/<wnid>/images/*.JPEG      500 per class
    tiny-imagenet-200/val/images/*.JPEG               10,000 images
    tiny-imagenet-200/val/val_annotations.txt         "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>"

Splits: the labels of its test set are not public, so its labelled val set is
augbench's *test* split, and validation is held out from train
(``--val-fraction``), as for every data set; the result record says so.
Labels follow the sorted WordNet ids, as torchvision's ``ImageFolder`` (and so
the DLB code) numbers them.  The few grayscale JPEGs are converted to RGB, as
``ImageFolder``'s loader does.

Memory: 110,000 x 3 x 64 x 64 uint8 = 1.35 GB (1.23 GB of it train), decoded
once straight into the memory-mapped cache file; loading holds that one copy.
"""

from __future__ import annotations

from pathlib import Path

from augbench.data import cache
from augbench.data.image_files import SplitFiles, list_images, load_image_files, stat_image
from augbench.data.registry import ENV_VAR, ImageDataset, register_dataset, search_bases
from augbench.errors import DataError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER = "tiny-imagenet-200"
_LAYOUT = (f"{FOLDER}/wnids.txt, {FOLDER}/train/<wnid>/images/*.JPEG, {FOLDER}/val/images/*.JPEG and "
           f"{FOLDER}/val/val_annotations.txt")
SPLITS_NOTE = ("test: the official val set (its test labels are not public); "
               "val: held out from train (--val-fraction)")


def _is_tiny_imagenet(folder: Path) -> bool:
    return (folder / "wnids.txt").is_file() or ((folder / "train").is_dir() and (folder / "val").is_dir())


def _find(root: str | None) -> tuple[Path | None, list[str]]:
    searched = []
    for _label, base in search_bases(root) + [("cache", cache.cache_root())]:
        for folder in (base, base / FOLDER):
            searched.append(str(folder))
            if folder.is_dir() and _is_tiny_imagenet(folder):
                return folder, searched
    return None, searched


def _download(root: str | None) -> Path:
    from torchvision.datasets.utils import download_and_extract_archive  # lazy: only --download needs it

    target = Path(root).expanduser() if root else cache.cache_root()
    try:
        download_and_extract_archive(URL, download_root=str(target), md5=MD5)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"--download: fetching {URL} into {target} failed: {exc}") from exc
    return target / FOLDER


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); expected layout {_LAYOUT}") from exc


def _splits(folder: Path) -> tuple[dict[str, SplitFiles], list[str]]:
    for needed in ("wnids.txt", "train", "val/images", "val/val_annotations.txt"):
        if not (folder / needed).exists():
            raise DataError(f"{folder}: missing {needed}; expected layout {_LAYOUT}")
    wnids = sorted({line.strip() for line in _read_lines(folder / "wnids.txt")})
    label_of = {w: i for i, w in enumerate(wnids)}
    train = SplitFiles()
    for wnid in wnids:
        images = folder / "train" / wnid / "images"
        paths = list_images(images) if images.is_dir() else []
        if not paths:
            raise DataError(f"{images}: class {wnid!r} (listed in wnids.txt) has no images; "
                            f"expected layout {_LAYOUT}")
        train.add(paths, label_of[wnid])
    annotations = folder / "val" / "val_annotations.txt"
    test = SplitFiles()
    for n, line in enumerate(_read_lines(annotations), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            raise DataError(f"{annotations}: line {n} {line!r}: expected '<file>\\t<wnid>\\t...' with a wnid "
                            "from wnids.txt")
        path = folder / "val" / "images" / fields[0]
        if not path.is_file():
            raise DataError(f"{path}: listed in {annotations} (line {n}) but missing")
        test.add([stat_image(path)], label_of[fields[1]])
    lacking = sorted(set(wnids) - {wnids[y] for y in test.labels})
    if lacking:
        raise DataError(f"{annotations}: class {lacking[0]!r} is in train/ but has no val images; every "
                        "training class needs test images")
    return {"train": train, "test": test}, wnids


@register_dataset("tiny_imagenet")
def load_tiny_imagenet(root: str | None = None, download: bool = False,
                       image_size: int | None = None) -> ImageDataset:
    """Tiny ImageNet (Le & Yang 2015): 100,000 train / 10,000 test (the official val), 3x64x64, 200 classes.

    Searched in ``--data-root``, then ``$AUGBENCH_DATA``, then augbench's cache
    folder (each the folder itself or its ``tiny-imagenet-200/``); downloaded
    from the official address only with ``--download``.
    """
    folder, searched = _find(root)
    if folder is None:
        if not download:
            raise DataError(
                f"tiny_imagenet not found; looked in: {'; '.join(searched)}. Expected layout: {_LAYOUT}. "
                f"Pass --download to fetch {URL} (into --data-root, or {cache.cache_root()} when none is "
                f"given), or --data-root DIR / {ENV_VAR}=DIR for an existing copy."
            )
        folder = _download(root)
    splits, wnids = _splits(folder)
    return load_image_files("tiny_imagenet", folder, splits, wnids, image_size, channels=3, notes=SPLITS_NOTE)
