"""Image data sets held whole in memory as uint8 tensors.

Every loader returns an :class:`ImageDataset` with ``uint8 [N, C, H, W]`` images
and ``int64 [N]`` labels, plus the per-channel mean and std of the *training*
images (in ``[0, 1]`` units) for normalisation.

Data sets
---------
``fashion_mnist``
    Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for
    Benchmarking Machine Learning Algorithms", arXiv:1708.07747.  Read from the
    four IDX files (plain or gzip), parsed here with numpy.  Debian ships them
    in the package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).
``cifar10`` / ``cifar100``
    Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny Images",
    tech. report, University of Toronto.  Read from the python-pickle layout
    (``cifar-10-batches-py`` / ``cifar-100-python``; CIFAR-100 uses the 100
    fine labels).  Downloaded with torchvision only when asked to.
``synthetic`` / ``synthetic_gray``
    Generated here, deterministic, small and learnable; for tests and smoke
    runs where no real data set is at hand.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augbench.errors import DataError, UsageError

__all__ = [
    "CACHE_DIR",
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "ImageDataset",
    "list_datasets",
    "load_dataset",
    "make_synthetic",
    "register_dataset",
]

#: Environment variable naming a data folder, searched after ``--data-root``.
ENV_VAR = "AUGBENCH_DATA"
#: Where Debian's ``dataset-fashion-mnist`` puts the gzip'd IDX files.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
#: Where CIFAR is looked for last, and downloaded to when no ``--data-root`` is given.
CACHE_DIR = os.path.join("~", ".cache", "augbench")


@dataclass
class ImageDataset:
    """A labelled image data set, train and test split, whole in memory.

    ``train_images`` / ``test_images`` are contiguous ``uint8 [N, C, H, W]``;
    labels are ``int64 [N]`` in ``[0, num_classes)``.  ``mean`` and ``std`` are
    per channel, in ``[0, 1]`` units, over the TRAIN images (population std).
    ``source`` is the folder the data was read from, or ``"generated"``.
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

    @property
    def in_chans(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[2])

    def __repr__(self) -> str:  # the default would print whole tensors
        return (
            f"ImageDataset(name={self.name!r}, train={tuple(self.train_images.shape)}, "
            f"test={tuple(self.test_images.shape)}, num_classes={self.num_classes}, "
            f"source={self.source!r})"
        )


Loader = Callable[[str | None, bool], ImageDataset]

#: Registry: data set name -> ``fn(root: str | None, download: bool) -> ImageDataset``.
DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator registering ``fn(root, download) -> ImageDataset`` under ``name``."""

    def deco(fn: Loader) -> Loader:
        if name in DATASETS and DATASETS[name] is not fn:
            raise ValueError(f"data set {name!r} is already registered")
        DATASETS[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    """Registered data set names, sorted."""
    return sorted(DATASETS)


def load_dataset(name: str, data_root: str | None = None, download: bool = False) -> ImageDataset:
    """Load a registered data set by name (the ``--dataset`` flag).

    ``data_root`` is the ``--data-root`` flag; ``download`` the ``--download``
    flag (only CIFAR can be downloaded).
    """
    loader = DATASETS.get(name)
    if loader is None:
        raise UsageError(f"--dataset: unknown data set {name!r}; registered: {', '.join(list_datasets())}")
    return loader(data_root, download)


# --------------------------------------------------------------------------- helpers


def _channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and population std of uint8 ``[N, C, H, W]`` in [0, 1] units.

    Uses a 256-bin histogram per channel: exact, and far cheaper than a float copy.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].reshape(-1), minlength=256).astype(np.float64)
        total = hist.sum()
        mean = float((hist * values).sum() / total)
        var = float((hist * (values - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


def _make_dataset(
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
    mean, std = stats if stats is not None else _channel_stats(train_x)
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


def _search_bases(data_root: str | None) -> list[tuple[str, Path]]:
    """(label, folder) pairs from ``--data-root`` then ``$AUGBENCH_DATA``, in search order."""
    bases: list[tuple[str, Path]] = []
    if data_root:
        bases.append(("--data-root", Path(data_root).expanduser()))
    env = os.environ.get(ENV_VAR)
    if env:
        bases.append((f"${ENV_VAR}", Path(env).expanduser()))
    return bases


def _check_labels(labels: np.ndarray, num_classes: int, where: str, field: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where}: field {field!r} has labels in [{labels.min()}, {labels.max()}]; "
            f"expected integers in [0, {num_classes - 1}]"
        )


# --------------------------------------------------------------------------- Fashion-MNIST

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
        _check_labels(y, 10, str(files[yk]), "labels")
    train_x = train_x[:, None]
    test_x = test_x[:, None]
    return train_x, train_y, test_x, test_y, _channel_stats(train_x)


@register_dataset("fashion_mnist")
def load_fashion_mnist(root: str | None = None, download: bool = False) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 train / 10,000 test, 1x28x28, 10 classes.

    Searched in ``root`` (``--data-root``), then ``$AUGBENCH_DATA`` (each the
    folder itself or its ``fashion-mnist`` / ``fashion_mnist`` subfolder), then
    :data:`FASHION_MNIST_SYSTEM_DIR`.  There is no download: install Debian's
    ``dataset-fashion-mnist`` or point ``--data-root`` at the IDX files.
    """
    searched: list[str] = []
    candidates: list[Path] = []
    for _label, base in _search_bases(root):
        candidates += [base, base / "fashion-mnist", base / "fashion_mnist"]
    candidates.append(Path(FASHION_MNIST_SYSTEM_DIR))
    for folder in candidates:
        searched.append(str(folder))
        if folder.is_dir() and _fmnist_files_in(folder) is not None:
            resolved = str(folder.resolve())
            train_x, train_y, test_x, test_y, stats = _load_fashion_mnist_arrays(resolved)
            return _make_dataset(
                "fashion_mnist", train_x, train_y, test_x, test_y, FASHION_MNIST_CLASSES, resolved, stats
            )
    raise DataError(
        "Fashion-MNIST not found; looked for "
        f"{', '.join(_FMNIST_FILES.values())} (plain or .gz) in: {'; '.join(searched)}. "
        "Install it with `apt-get install dataset-fashion-mnist`, or pass --data-root DIR "
        f"(or set {ENV_VAR}=DIR) for a folder holding those four files."
    )


# --------------------------------------------------------------------------- CIFAR

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
    _check_labels(labels, num_classes, str(path), label_key)
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
    return _make_dataset(name, train_x, train_y, test_x, test_y, names, str(folder.resolve()))


def _load_cifar(name: str, root: str | None, download: bool) -> ImageDataset:
    spec = _CIFAR[name]
    bases = _search_bases(root) + [("cache", Path(CACHE_DIR).expanduser())]
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
            f"(into --data-root, or {CACHE_DIR} when none is given), or --data-root DIR / {ENV_VAR}=DIR "
            "for an existing copy."
        )
    import torchvision

    target = Path(root).expanduser() if root else Path(CACHE_DIR).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    try:
        getattr(torchvision.datasets, spec["torchvision"])(str(target), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(f"--download: fetching {name} into {target} failed: {exc}") from exc
    return _read_cifar(name, target / spec["folder"])


@register_dataset("cifar10")
def load_cifar10(root: str | None = None, download: bool = False) -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test, 3x32x32, 10 classes."""
    return _load_cifar("cifar10", root, download)


@register_dataset("cifar100")
def load_cifar100(root: str | None = None, download: bool = False) -> ImageDataset:
    """CIFAR-100 (Krizhevsky 2009): 50,000 train / 10,000 test, 3x32x32, 100 fine labels."""
    return _load_cifar("cifar100", root, download)


# --------------------------------------------------------------------------- synthetic

SYNTHETIC_SEED = 20240611
# Class textures: (period in pixels, angle in degrees) of a plaid of two gratings at +angle and -angle.
_SYNTH_TEXTURES = [(p, a) for p in (7.0, 12.0) for a in (0.0, 30.0, 45.0, 60.0, 90.0)]


def make_synthetic(
    n_train: int = 2000,
    n_test: int = 1000,
    channels: int = 3,
    size: int = 32,
    seed: int = SYNTHETIC_SEED,
    name: str = "synthetic",
) -> ImageDataset:
    """A small, learnable, deterministic 10-class image problem.

    Each class has a base colour and a smooth periodic texture: a plaid of two
    cosine gratings at angles +a and -a with a class-specific period (7 or 12
    pixels) and angle (0, 30, 45, 60 or 90 degrees).  The plaid is mirror
    symmetric, so a horizontal flip leaves the class unchanged, and each image
    draws its own random grating phases, so a shift of a few pixels (a random
    crop) gives another image of the same class.  Per image the colour is
    jittered, the texture amplitude is drawn from ``U(0, 0.4)`` (images with a
    faint texture are genuinely hard) and Gaussian pixel noise is added: a
    small CNN gets well above chance within two epochs, but not 100 %.
    Same arguments -> identical tensors.
    """
    num_classes = len(_SYNTH_TEXTURES)
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.3, 0.7, size=(num_classes, channels))

    n = n_train + n_test
    labels = np.concatenate([np.arange(n_train) % num_classes, np.arange(n_test) % num_classes])
    labels = np.concatenate([rng.permutation(labels[:n_train]), rng.permutation(labels[n_train:])])

    f32 = np.float32
    period = np.array([t[0] for t in _SYNTH_TEXTURES], dtype=f32)[labels]
    angle = np.deg2rad(np.array([t[1] for t in _SYNTH_TEXTURES], dtype=f32))[labels]
    k = f32(2 * np.pi) / period  # [n] angular frequency
    kx = (k * np.cos(angle))[:, None, None]
    ky = (k * np.sin(angle))[:, None, None]
    yy, xx = np.meshgrid(np.arange(size, dtype=f32), np.arange(size, dtype=f32), indexing="ij")
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 2, 1, 1)).astype(f32)
    # cos(kx x + ky y + p1) + cos(-kx x + ky y + p2): mirror image of one grating is the other.
    plaid = np.cos(kx * xx + ky * yy + phase[:, 0]) + np.cos(ky * yy - kx * xx + phase[:, 1])  # [n, H, W]
    amp = rng.uniform(0.0, 0.4, size=(n, 1, 1)).astype(f32) * f32(0.5)
    pattern = plaid * amp

    colour = (colours[labels] + rng.normal(0.0, 0.08, size=(n, channels))).astype(f32)
    img = colour[:, :, None, None] + pattern[:, None]
    img += rng.standard_normal(size=img.shape, dtype=f32) * f32(0.12)
    img = np.clip(np.rint(img * f32(255.0)), 0, 255).astype(np.uint8)

    class_names = [f"plaid_p{int(p)}_a{int(a)}" for p, a in _SYNTH_TEXTURES]
    return _make_dataset(
        name, img[:n_train], labels[:n_train], img[n_train:], labels[n_train:], class_names, "generated"
    )


@register_dataset("synthetic")
def load_synthetic(root: str | None = None, download: bool = False) -> ImageDataset:
    """Generated RGB 32x32, 10 classes, 2,000 train / 1,000 test (see :func:`make_synthetic`)."""
    return make_synthetic(channels=3, size=32, name="synthetic")


@register_dataset("synthetic_gray")
def load_synthetic_gray(root: str | None = None, download: bool = False) -> ImageDataset:
    """Generated grayscale 1x28x28, 10 classes, 2,000 train / 1,000 test."""
    return make_synthetic(channels=1, size=28, name="synthetic_gray")
