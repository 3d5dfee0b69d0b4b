"""Tests for augbench.data: loaders, splits and label noise. No network, no downloads."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import augbench.data.cache as cachemod
import augbench.data.fashion_mnist as fmnistmod
from augbench.data import (
    DATASETS,
    ImageDataset,
    add_label_noise,
    list_datasets,
    load_dataset,
    parse_label_noise,
    stratified_split,
    stratified_subset,
)
from augbench.errors import DataError, UsageError

FMNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@pytest.fixture
def no_default_data(tmp_path, monkeypatch):
    """Point every default search place at empty folders."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(fmnistmod, "FASHION_MNIST_SYSTEM_DIR", str(empty / "system"))
    monkeypatch.setattr(cachemod, "CACHE_DIR", str(empty / "cache"))
    monkeypatch.delenv("AUGBENCH_CACHE", raising=False)
    monkeypatch.setenv("AUGBENCH_DATA", str(empty / "env"))
    return empty


# ----------------------------------------------------------------------------- registry


def test_registry_and_unknown_name():
    names = list_datasets()
    for n in ("fashion_mnist", "cifar10", "cifar100", "synthetic", "synthetic_gray"):
        assert n in names and n in DATASETS
    with pytest.raises(UsageError, match="--dataset") as exc:
        load_dataset("imagenet")
    assert "fashion_mnist" in str(exc.value) and "synthetic" in str(exc.value)


# ----------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.skipif(
    not Path(fmnistmod.FASHION_MNIST_SYSTEM_DIR).is_dir(), reason="dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_system_copy(monkeypatch):
    monkeypatch.delenv("AUGBENCH_DATA", raising=False)
    ds = load_dataset("fashion_mnist")
    assert isinstance(ds, ImageDataset)
    assert ds.train_images.shape == (60000, 1, 28, 28)
    assert ds.test_images.shape == (10000, 1, 28, 28)
    assert ds.train_images.dtype == torch.uint8 and ds.train_images.is_contiguous()
    assert ds.train_labels.dtype == torch.int64 and ds.train_labels.shape == (60000,)
    assert ds.test_labels.shape == (10000,)
    assert ds.num_classes == 10 and len(ds.class_names) == 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.in_chans == 1 and ds.image_size == 28
    counts = torch.bincount(ds.train_labels, minlength=10)
    assert counts.min() >= 5000 and counts.max() <= 7000
    assert 0.2 < ds.mean[0] < 0.4 and 0.25 < ds.std[0] < 0.45  # published: 0.286, 0.353
    assert ds.source == str(Path(fmnistmod.FASHION_MNIST_SYSTEM_DIR).resolve())
    # The second load comes from the in-process cache, and is a separate copy.
    ds.train_images[0].zero_()
    again = load_dataset("fashion_mnist")
    assert again.train_images[0].any()


def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _write_fake_fmnist(folder: Path, gz: bool = False, n_train: int = 30, n_test: int = 10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    _write_idx(folder / FMNIST_FILES[0], rng.integers(0, 256, (n_train, 28, 28)), gz)
    _write_idx(folder / FMNIST_FILES[1], np.arange(n_train) % 10, gz)
    _write_idx(folder / FMNIST_FILES[2], rng.integers(0, 256, (n_test, 28, 28)), gz)
    _write_idx(folder / FMNIST_FILES[3], np.arange(n_test) % 10, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reader_on_fake_files(tmp_path, no_default_data, gz):
    _write_fake_fmnist(tmp_path / "root" / "fashion-mnist", gz=gz)
    ds = load_dataset("fashion_mnist", data_root=str(tmp_path / "root"))
    assert ds.train_images.shape == (30, 1, 28, 28) and ds.test_images.shape == (10, 1, 28, 28)
    assert ds.train_labels.tolist() == [i % 10 for i in range(30)]
    assert ds.source.endswith("fashion-mnist")


def test_fashion_mnist_found_through_env(tmp_path, no_default_data, monkeypatch):
    _write_fake_fmnist(tmp_path / "envroot" / "fashion_mnist")
    monkeypatch.setenv("AUGBENCH_DATA", str(tmp_path / "envroot"))
    ds = load_dataset("fashion_mnist")
    assert ds.train_images.shape[0] == 30


def test_fashion_mnist_missing_mentions_apt_get(tmp_path, no_default_data):
    with pytest.raises(DataError) as exc:
        load_dataset("fashion_mnist", data_root=str(tmp_path / "nowhere"))
    msg = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "--data-root" in msg and "AUGBENCH_DATA" in msg
    assert str(tmp_path / "nowhere") in msg and str(no_default_data / "system") in msg


@pytest.mark.parametrize("damage", ["magic", "truncated", "badgzip"])
def test_fashion_mnist_corrupt_file_named(tmp_path, no_default_data, damage):
    root = tmp_path / "fm"
    _write_fake_fmnist(root, gz=(damage == "badgzip"))
    if damage == "magic":
        bad = root / FMNIST_FILES[0]
        raw = bytearray(bad.read_bytes())
        raw[2] = 0x0D  # float type code
        bad.write_bytes(bytes(raw))
    elif damage == "truncated":
        bad = root / FMNIST_FILES[1]
        bad.write_bytes(bad.read_bytes()[:-5])
    else:
        bad = root / (FMNIST_FILES[2] + ".gz")
        bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError) as exc:
        load_dataset("fashion_mnist", data_root=str(root))
    assert str(bad) in str(exc.value)


def test_fashion_mnist_incomplete_folder_names_missing(tmp_path, no_default_data):
    root = tmp_path / "fm"
    _write_fake_fmnist(root)
    (root / FMNIST_FILES[3]).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset("fashion_mnist", data_root=str(root))


# ----------------------------------------------------------------------------- CIFAR


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def _fake_batch(rng, n: int, label_key: str, num_classes: int) -> dict:
    return {
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, num_classes, n)],
    }


def _write_fake_cifar10(parent: Path, per_batch: int = 4) -> Path:
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _fake_batch(rng, per_batch, "labels", 10))
    _dump(folder / "test_batch", _fake_batch(rng, 6, "labels", 10))
    # bytes keys and values, as in the real (Python 2) pickles
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072})
    return folder


def test_cifar10_reader_on_fake_layout(tmp_path, no_default_data):
    folder = _write_fake_cifar10(tmp_path / "root")
    for root in (tmp_path / "root", folder):  # the parent folder or the batch folder itself
        ds = load_dataset("cifar10", data_root=str(root))
        assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (6, 3, 32, 32)
        assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
        assert ds.num_classes == 10 and ds.class_names[3] == "c3"
        assert ds.in_chans == 3 and ds.image_size == 32
    # pixel layout: row r of 'data' is 1024 red, 1024 green, 1024 blue values, row major
    with open(folder / "data_batch_1", "rb") as fh:
        first = pickle.load(fh)["data"][0]
    assert torch.equal(ds.train_images[0], torch.from_numpy(first.reshape(3, 32, 32)))
    assert len(ds.mean) == 3 and all(0.4 < m < 0.6 for m in ds.mean)


def test_cifar100_reader_on_fake_layout(tmp_path, no_default_data, monkeypatch):
    folder = tmp_path / "envroot" / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    train = _fake_batch(rng, 20, "fine_labels", 100)
    train["coarse_labels"] = [0] * 20
    _dump(folder / "train", train)
    _dump(folder / "test", _fake_batch(rng, 8, "fine_labels", 100))
    _dump(
        folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}
    )
    monkeypatch.setenv("AUGBENCH_DATA", str(tmp_path / "envroot"))
    ds = load_dataset("cifar100")
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (8, 3, 32, 32)
    assert ds.num_classes == 100 and ds.class_names[99] == "f99"
    assert ds.train_labels.tolist() == train["fine_labels"]


def test_cifar_missing_says_download(tmp_path, no_default_data):
    with pytest.raises(DataError) as exc:
        load_dataset("cifar10", data_root=str(tmp_path / "nowhere"))
    msg = str(exc.value)
    assert "--download" in msg and "cifar-10-batches-py" in msg and str(tmp_path / "nowhere") in msg
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", data_root=str(tmp_path / "nowhere"))


def test_cifar_bad_batch_named(tmp_path, no_default_data):
    folder = _write_fake_cifar10(tmp_path)
    _dump(folder / "data_batch_3", {"data": np.zeros((4, 100), dtype=np.uint8), "labels": [0] * 4})
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", data_root=str(tmp_path))
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", data_root=str(tmp_path))


def test_cifar_pickle_may_not_run_code(tmp_path, no_default_data):
    folder = _write_fake_cifar10(tmp_path)
    _dump(folder / "test_batch", {"data": os.getcwd, "labels": []})  # refers to a global function
    with pytest.raises(DataError, match="test_batch"):
        load_dataset("cifar10", data_root=str(tmp_path))


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic_rgb():
    a = load_dataset("synthetic")
    b = load_dataset("synthetic")
    assert a.train_images.shape == (2000, 3, 32, 32) and a.test_images.shape == (1000, 3, 32, 32)
    assert a.train_images.dtype == torch.uint8 and a.source == "generated"
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert a.num_classes == 10 and torch.bincount(a.train_labels).tolist() == [200] * 10
    # RGB: the channels differ
    assert not torch.equal(a.train_images[:, 0], a.train_images[:, 1])


def test_synthetic_gray():
    g = load_dataset("synthetic_gray")
    assert g.train_images.shape == (2000, 1, 28, 28) and g.in_chans == 1 and g.image_size == 28
    assert len(g.mean) == 1 and len(g.std) == 1


# ----------------------------------------------------------------------------- splits


def _labels(n: int = 1003, c: int = 7, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize("frac", [0.1, 0.25, 0.5])
def test_stratified_split(frac):
    y = _labels()
    tr, va = stratified_split(y, frac, seed=3)
    assert tr.dtype == torch.int64 and va.dtype == torch.int64
    assert torch.equal(tr, tr.sort().values) and torch.equal(va, va.sort().values)
    assert torch.equal(torch.cat([tr, va]).sort().values, torch.arange(len(y)))
    for c in range(7):
        n_c = int((y == c).sum())
        assert abs(int((y[va] == c).sum()) - frac * n_c) <= 1
    tr2, va2 = stratified_split(y, frac, seed=3)
    assert torch.equal(va, va2) and torch.equal(tr, tr2)
    _, va3 = stratified_split(y, frac, seed=4)
    assert not torch.equal(va, va3)


def test_stratified_split_edges():
    y = _labels(50, 5)
    tr, va = stratified_split(y, 0.0, seed=0)
    assert va.numel() == 0 and torch.equal(tr, torch.arange(50))
    _, va = stratified_split(y, 0.001, seed=0)  # at least one per class
    assert sorted(y[va].tolist()) == [0, 1, 2, 3, 4]
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(UsageError, match="--val-fraction"):
            stratified_split(y, bad, seed=0)


def test_stratified_subset():
    y = torch.cat([torch.full((600,), 0), torch.full((300,), 1), torch.full((100,), 2)])
    pool, _ = stratified_split(y, 0.2, seed=0)  # 480 / 240 / 80
    sub = stratified_subset(pool, y, 101, seed=1)
    assert sub.numel() == 101 and torch.equal(sub, sub.sort().values)
    assert set(sub.tolist()) <= set(pool.tolist()) and sub.unique().numel() == 101
    counts = torch.bincount(y[sub], minlength=3).tolist()
    assert counts == [61, 30, 10]  # 60.6 / 30.3 / 10.1 by largest remainder
    assert torch.equal(sub, stratified_subset(pool, y, 101, seed=1))
    assert torch.equal(stratified_subset(pool, y, len(pool), seed=1), pool)
    with pytest.raises(UsageError, match="--train-subset") as exc:
        stratified_subset(pool, y, len(pool) + 1, seed=1)
    assert str(len(pool)) in str(exc.value)
    with pytest.raises(UsageError, match="--train-subset"):
        stratified_subset(pool, y, 0, seed=1)


# ----------------------------------------------------------------------------- label noise


def test_parse_label_noise():
    assert parse_label_noise(None) is None
    assert parse_label_noise("none") is None
    assert parse_label_noise("sym:0.4") == ("sym", 0.4)
    assert parse_label_noise("asym:0.2") == ("asym", 0.2)
    for bad in ("sym", "sym:", "sym:x", "sym:1.0", "asym:-0.1", "uniform:0.2", "0.4", "sym:nan"):
        with pytest.raises(UsageError, match="--label-noise") as exc:
            parse_label_noise(bad)
        assert "sym:R or asym:R with 0 <= R < 1" in str(exc.value)


@pytest.mark.parametrize("kind", ["sym", "asym"])
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_add_label_noise(kind, rate):
    C = 10
    y = _labels(50_000, C, seed=1)
    before = y.clone()
    noisy, frac = add_label_noise(y, kind, rate, C, seed=5)
    assert torch.equal(y, before)  # input untouched
    assert noisy.dtype == torch.int64 and noisy.shape == y.shape
    changed = noisy != y
    assert abs(frac - rate) <= 0.01
    assert frac == pytest.approx(changed.float().mean().item())  # every flip changes the label
    if kind == "asym":
        assert torch.equal(noisy[changed], (y[changed] + 1) % C)
    else:
        # spread over all other classes
        offsets = ((noisy[changed] - y[changed]) % C).bincount(minlength=C)
        assert offsets[0] == 0 and offsets[1:].min() > 0.8 * changed.sum() / (C - 1)
    again, frac2 = add_label_noise(y, kind, rate, C, seed=5)
    assert torch.equal(noisy, again) and frac == frac2
    other, _ = add_label_noise(y, kind, rate, C, seed=6)
    assert not torch.equal(noisy, other)


def test_add_label_noise_rejects_bad_kind():
    with pytest.raises(UsageError, match="--label-noise"):
        add_label_noise(torch.zeros(5, dtype=torch.int64), "pair", 0.2, 10, seed=0)
    noisy, frac = add_label_noise(torch.arange(5), "sym", 0.0, 10, seed=0)
    assert frac == 0.0 and torch.equal(noisy, torch.arange(5))
