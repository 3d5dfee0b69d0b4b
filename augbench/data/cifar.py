"""CIFAR-10 and CIFAR-100: Krizhevsky (2009), "Learning Multiple Layers of
Features from Tiny Images", tech. report, University of Toronto.

Read from the python-pickle layout (``cifar-10-batches-py`` /
``cifar-100-python``; CIFAR-100 uses the 100 fine labels).  Downloaded with
torchvision only when asked to (``--download``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from augbench.data import cache
from augbench.data.registry import (
    ENV_VAR,
    ImageDataset,
    check_labels,
    make_dataset,
    register_dataset,
    search_bases,
)
from augbench.errors import DataError

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
        "num_classes": 10,
        "torchvision": "CIFAR10",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
        "num_classes": 100,
        "torchvision": "CIFAR100",
    },
}

# The CIFAR pickles hold only dicts, lists, str/bytes and numpy arrays; refuse
# anything else, so a tampered file cannot run code when it is read.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        if module.startswith("numpy.core.") and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def _decode(value):
    return value.decode("latin1") if isinstance(value, bytes) else value


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{path}: cannot read CIFAR pickle ({exc}); the file is corrupt or not a CIFAR batch"
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {_decode(k): v for k, v in obj.items()}


def _read_cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_cifar_pickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise DataError(f"{path}: missing field {key!r}; found fields {sorted(batch)}")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: field 'data' is {data.dtype} {data.shape}; expected uint8 of shape (N, 3072)"
        )
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if labels.shape[0] != data.shape[0]:
        raise DataError(
            f"{path}: field {label_key!r} has {labels.shape[0]} entries but 'data' has {data.shape[0]} rows"
        )
    check_labels(labels, num_classes, str(path), label_key)
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_folder_in(base: Path, spec: dict) -> Path | None:
    """``base`` itself if it holds the batch files, else ``base/<folder>`` if that does."""
    for folder in (base, base / spec["folder"]):
        if (folder / spec["meta"]).is_file() or (folder / spec["train"][0]).is_file():
            return folder
    return None


def _cifar_expected(spec: dict) -> str:
    files = spec["train"] + spec["test"] + [spec["meta"]]
    if len(spec["train"]) > 1:
        files = [f"{spec['train'][0]}..{spec['train'][-1][-1]}"] + spec["test"] + [spec["meta"]]
    return f"{spec['folder']}/{{{', '.join(files)}}}"


def _read_cifar(name: str, folder: Path) -> ImageDataset:
    spec = _CIFAR[name]
    missing = [f for f in spec["train"] + spec["test"] + [spec["meta"]] if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"{folder}: {name} is incomplete; missing {', '.join(missing)}; expected layout {_cifar_expected(spec)}"
        )
    parts = {
        split: [_read_cifar_batch(folder / f, spec["label_key"], spec["num_classes"]) for f in spec[split]]
        for split in ("train", "test")
    }
    meta_path = folder / spec["meta"]
    meta = _read_cifar_pickle(meta_path)
    if spec["names_key"] not in meta:
        raise DataError(f"{meta_path}: missing field {spec['names_key']!r}; found fields {sorted(meta)}")
    names = [str(_decode(n)) for n in meta[spec["names_key"]]]
    if len(names) != spec["num_classes"]:
        raise DataError(
            f"{meta_path}: field {spec['names_key']!r} has {len(names)} names; expected {spec['num_classes']}"
        )
    train_x = np.concatenate([x for x, _ in parts["train"]])
    train_y = np.concatenate([y for _, y in parts["train"]])
    test_x = np.concatenate([x for x, _ in parts["test"]])
    test_y = np.concatenate([y for _, y in parts["test"]])
    return make_dataset(name, train_x, train_y, test_x, test_y, names, str(folder.resolve()))


def _load_cifar(name: str, root: str | None, download: bool) -> ImageDataset:
    spec = _CIFAR[name]
    bases = search_bases(root) + [("cache", cache.cache_root())]
    searched: list[str] = []
    for _label, base in bases:
        searched.append(str(base))
        folder = _cifar_folder_in(base, spec)
        if folder is not None:
            return _read_cifar(name, folder)
    if not download:
        raise DataError(
            f"{name} not found; looked in: {'; '.join(searched)} (each the folder itself or the one holding "
            f"{spec['folder']}/). Expected layout: {_cifar_expected(spec)} (the python version from "
            "https://www.cs.toronto.edu/~kriz/cifar.html). Pass --download to fetch it "
            f"(into --data-root, or {cache.cache_root()} when none is given), or --data-root DIR / {ENV_VAR}=DIR "
            "for an existing copy."
        )
    import torchvision  # lazy: only --download needs torchvision's CIFAR classes

    target = Path(root).expanduser() if root else cache.cache_root()
    target.mkdir(parents=True, exist_ok=True)
    try:
        getattr(torchvision.datasets, spec["torchvision"])(str(target), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"--download: fetching {name} into {target} failed: {exc}") from exc
    return _read_cifar(name, target / spec["folder"])


@register_dataset("cifar10")
def load_cifar10(
    root: str | None = None, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test, 3x32x32, 10 classes."""
    return _load_cifar("cifar10", root, download)


@register_dataset("cifar100")
def load_cifar100(
    root: str | None = None, download: bool = False, image_size: int | None = None
) -> ImageDataset:
    """CIFAR-100 (Krizhevsky 2009): 50,000 train / 10,000 test, 3x32x32, 100 fine labels."""
    return _load_cifar("cifar100", root, download)


