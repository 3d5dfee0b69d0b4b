"""Fashion-MNIST: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747.

Read from the four IDX files (plain or gzip), parsed here with numpy.  Debian
ships them in the package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``).  There is no download.
"""

from __future__ import annotations

import functools
import gzip
import math
from pathlib import Path

import numpy as np

from augbench.data.registry import (
    ENV_VAR,
    ImageDataset,
    channel_stats,
    check_labels,
    make_dataset,
    register_dataset,
    search_bases,
)
from augbench.errors import DataError

#: Where Debian's ``dataset-fashion-mnist`` puts the gzip'd IDX files.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_FMNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (LeCun's MNIST format), plain or ``.gz``.

    Header: two zero bytes, type code 0x08 (uint8), number of dimensions, then
    one big-endian uint32 per dimension; then the data, row major.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:  # truncated / not gzip
        raise DataError(f"{path}: cannot read IDX file ({exc}); re-install or re-download it") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(
            f"{path}: not an IDX file of uint8 with {ndim} dimension(s) "
            f"(magic number {raw[:4].hex() or 'missing'}; expected 000008{ndim:02x}); "
            "the file is corrupt or is not what its name says"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated ({len(raw)} bytes; need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX file has {len(raw)} bytes but its header {dims} implies {expected}; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _fmnist_files_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (plain preferred over .gz); None if none are there.

    A folder with only some of them is an error: it names the missing files.
    """
    found: dict[str, Path] = {}
    for key, stem in _FMNIST_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
    if not found:
        return None
    if len(found) < len(_FMNIST_FILES):
        missing = [stem for key, stem in _FMNIST_FILES.items() if key not in found]
        raise DataError(
            f"{folder}: Fashion-MNIST is incomplete; missing {', '.join(missing)} (plain or .gz); "
            f"expected all of {', '.join(_FMNIST_FILES.values())}"
        )
    return found


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist_arrays(folder: str) -> tuple:
    """Parse the four files once per process (~1 s); returned arrays are read-only."""
    files = _fmnist_files_in(Path(folder))
    assert files is not None
    train_x = _read_idx(files["train_images"], 3)
    train_y = _read_idx(files["train_labels"], 1)
    test_x = _read_idx(files["test_images"], 3)
    test_y = _read_idx(files["test_labels"], 1)
    for xk, yk, x, y in (
        ("train_images", "train_labels", train_x, train_y),
        ("test_images", "test_labels", test_x, test_y),
    ):
        if x.shape[0] != y.shape[0]:
            raise DataError(
                f"{files[xk]} has {x.shape[0]} images but {files[yk]} has {y.shape[0]} labels; "
                "they must match"
            )
        if x.shape[1:] != (28, 28):
            raise DataError(f"{files[xk]}: images are {x.shape[1:]}; Fashion-MNIST images are 28x28")
        check_labels(y, 10, str(files[yk]), "labels")
    train_x = train_x[:, None]
    test_x = test_x[:, None]
    return train_x, train_y, test_x, test_y, channel_stats(train_x)


@register_dataset("fashion_mnist")
def load_fashion_mnist(
    root: str | None = None, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test, 1x28x28, 10 classes.

    Searched in ``root`` (``--data-root``), then ``$AUGBENCH_DATA`` (each the
    folder itself or its ``fashion-mnist`` / ``fashion_mnist`` subfolder), then
    :data:`FASHION_MNIST_SYSTEM_DIR`.  There is no download: install Debian's
    ``dataset-fashion-mnist`` or point ``--data-root`` at the IDX files.
    """
    searched: list[str] = []
    candidates: list[Path] = []
    for _label, base in search_bases(root):
        candidates += [base, base / "fashion-mnist", base / "fashion_mnist"]
    candidates.append(Path(FASHION_MNIST_SYSTEM_DIR))
    for folder in candidates:
        searched.append(str(folder))
        if folder.is_dir() and _fmnist_files_in(folder) is not None:
            resolved = str(folder.resolve())
            train_x, train_y, test_x, test_y, stats = _load_fashion_mnist_arrays(resolved)
            return make_dataset(
                "fashion_mnist", train_x, train_y, test_x, test_y, FASHION_MNIST_CLASSES, resolved, stats
            )
    raise DataError(
        "Fashion-MNIST not found; looked for "
        f"{', '.join(_FMNIST_FILES.values())} (plain or .gz) in: {'; '.join(searched)}. "
        "Install it with `apt-get install dataset-fashion-mnist`, or pass --data-root DIR "
        f"(or set {ENV_VAR}=DIR) for a folder holding those four files."
    )


