"""Data set families from real files: every registered data set, image folders, Tiny-ImageNet, the decode cache.

Images are PNG and JPEG files written here with Pillow; nothing is mocked and nothing downloads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import _write_fake_cifar10, _write_fake_fmnist

import augbench.data.fashion_mnist as fmnistmod
from augbench import models
from augbench.augment import list_recipes, load_recipe
from augbench.cli import main
from augbench.data import DATASETS, list_datasets, load_dataset
from augbench.data.cache import cache_root
from augbench.errors import DataError, UsageError

CLASSES = ("cat", "dog", "frog")
#: Class c is drawn around this grey level, so a decoded image tells its class.
LEVEL = {0: 40, 1: 128, 2: 215}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """The cache and every default data place point into tmp_path."""
    monkeypatch.setenv("AUGBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AUGBENCH_DATA", str(tmp_path / "no-env-data"))
    monkeypatch.setattr(fmnistmod, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "no-system-data"))


def _image(label: int, size: tuple[int, int], channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((channels,) if channels > 1 else ())
    return np.clip(LEVEL[label] + rng.integers(-20, 21, shape), 0, 255).astype(np.uint8)


def write_image_folder(root: Path, splits=("train", "test"), per_class=(4, 2), size=(12, 12), channels=3,
                       classes=CLASSES) -> Path:
    """PATH/<split>/<class>/*.png|jpg; even files PNG (exact pixels), odd files JPEG."""
    for s, (split, n) in enumerate(zip(splits, per_class)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = _image(label, size, channels, seed=10_000 * s + 100 * label + i)
                suffix = "png" if i % 2 == 0 else "jpg"
                Image.fromarray(pixels).save(folder / f"{i:03d}.{suffix}", quality=95)
    return root


def write_tiny_imagenet(parent: Path, per_class=4, per_val=2, grayscale=True) -> Path:
    """A tiny-imagenet-200 layout with 3 classes of 64x64 JPEGs (one of them grayscale)."""
    root = parent / "tiny-imagenet-200"
    wnids = ["n02", "n01", "n03"]  # not sorted: labels follow the sorted ids
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for wnid in wnids:
        label = sorted(wnids).index(wnid)
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = _image(label, (64, 64), 1 if grayscale and i == 0 else 3, seed=i)
            Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG")
            (folder.parent / f"{wnid}_boxes.txt").write_text("")
        for i in range(per_val):
            name = f"val_{wnid}_{i}.JPEG"
            Image.fromarray(_image(label, (64, 64), 3, seed=100 + i)).save(root / "val" / "images" / name)
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


# ----------------------------------------------------------------------------- every registered data set

def _write_fmnist(tmp: Path) -> str:
    _write_fake_fmnist(tmp / "fm")
    return str(tmp / "fm")


def _write_cifar10(tmp: Path) -> str:
    _write_fake_cifar10(tmp / "c10")
    return str(tmp / "c10")


def _write_cifar100(tmp: Path) -> str:
    import pickle

    folder = tmp / "c100" / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for split, n in (("train", 12), ("test", 6)):
        with open(folder / split, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "fine_labels": list(np.arange(n) % 100)}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)]}, fh)
    return str(tmp / "c100")


#: How to make each registered data set from files written in ``tmp``: returns the --data-root (None: none needed).
WRITERS = {
    "fashion_mnist": _write_fmnist,
    "cifar10": _write_cifar10,
    "cifar100": _write_cifar100,
    "synthetic": lambda tmp: None,
    "synthetic_gray": lambda tmp: None,
    "imagefolder": lambda tmp: str(write_image_folder(tmp / "folder")),
    "tiny_imagenet": lambda tmp: str(write_tiny_imagenet(tmp / "ti")),
}


@pytest.mark.parametrize("name", list_datasets())
def test_every_registered_data_set_loads_and_resizes(name, tmp_path):
    assert name in WRITERS, f"data set {name!r} is registered but this test has no writer for it: add one"
    root = WRITERS[name](tmp_path)
    ds = load_dataset(name, data_root=root)
    n, c, h, w = ds.train_images.shape
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64 and h == w
    assert ds.test_images.shape[1:] == (c, h, w) and len(ds.test_labels) == ds.test_images.shape[0]
    assert len(ds.train_labels) == n and 0 <= int(ds.train_labels.min()) <= int(ds.train_labels.max()) < ds.num_classes
    assert len(ds.class_names) == ds.num_classes and len(ds.mean) == len(ds.std) == c
    assert all(0 < m < 1 for m in ds.mean) and all(0 < s < 1 for s in ds.std)
    for size in (64, 16):  # the DLB Tiny-ImageNet size and a size smaller than every native size
        resized = load_dataset(name, data_root=root, image_size=size)
        assert resized.train_images.shape == (n, c, size, size) and resized.test_images.shape[2:] == (size, size)
        if name not in ("synthetic", "synthetic_gray"):  # generated data sets generate anew at the size
            assert torch.equal(resized.train_labels, ds.train_labels)
            assert max(abs(a - b) for a, b in zip(resized.mean, ds.mean)) < 0.03  # resizing keeps the colours
    with pytest.raises(UsageError, match="--image-size"):
        load_dataset(name, data_root=root, image_size=3)


@pytest.mark.parametrize("recipe", sorted(list_recipes()))
def test_every_shipped_recipe_works_at_64_px(recipe):
    # Raises UsageError naming an op that fails; mean fills take a data set's mean (Tiny-ImageNet's, roughly).
    prepared = load_recipe(recipe).prepared(200, (3, 64, 64), mean=(0.48, 0.45, 0.40))
    assert prepared.name == recipe


@pytest.mark.parametrize("model", models.list_models())
def test_every_shipped_model_works_at_64_px(model):
    net = models.create(model, num_classes=200, in_chans=3).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 200)


# ----------------------------------------------------------------------------- imagefolder


def test_imagefolder_reads_classes_labels_and_pixels(tmp_path):
    root = write_image_folder(tmp_path / "d")
    ds = load_dataset("imagefolder", data_root=str(root))
    assert ds.class_names == sorted(CLASSES) and ds.num_classes == 3
    assert ds.train_images.shape == (12, 3, 12, 12) and ds.test_images.shape == (6, 3, 12, 12)
    assert ds.train_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.val_images is None and ds.splits is None and ds.source == str(root.resolve())
    # PNG is lossless: the first file of class "dog" (label 1) comes back exactly
    png = np.array(Image.open(root / "train" / "dog" / "000.png")).transpose(2, 0, 1)
    assert torch.equal(ds.train_images[4], torch.from_numpy(png))
    # each image's grey level tells its class: labels and pixels stay paired through decoding
    levels = ds.train_images.float().mean(dim=(1, 2, 3))
    for label in range(3):
        assert torch.all((levels[ds.train_labels == label] - LEVEL[label]).abs() < 12)


def test_imagefolder_image_size_rule_is_shorter_side_and_centre_crop(tmp_path):
    root = tmp_path / "d"
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
        # 40 wide, 20 high: left quarter black, centre half white, right quarter black
        pixels = np.zeros((20, 40), dtype=np.uint8)
        pixels[:, 10:30] = 255
        Image.fromarray(pixels).save(root / split / "a" / "x.png")
    with pytest.raises(DataError, match="not square; pass --image-size"):
        load_dataset("imagefolder", data_root=str(root))
    ds = load_dataset("imagefolder", data_root=str(root), image_size=10)
    # the centre 20x20 square is the white band: it fills the image and the black sides are cut (a plain
    # resize to 10x10 would squeeze them into the outer columns; the filter only grazes them at the edges)
    assert ds.train_images.shape == (1, 1, 10, 10) and int(ds.train_images.min()) > 200
    assert int(ds.train_images[..., 1:-1].min()) == 255


def test_imagefolder_val_folder_replaces_the_held_out_fraction(tmp_path, small_config):
    from augbench.engine import build

    root = write_image_folder(tmp_path / "d", splits=("train", "test", "val"), per_class=(6, 2, 3))
    ds = load_dataset("imagefolder", data_root=str(root))
    assert ds.val_images.shape == (9, 3, 12, 12) and ds.val_labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert "val/" in ds.splits or str(root / "val") in ds.splits
    setup = build(small_config(dataset="imagefolder", batch_size=4, train_subset=None, val_fraction=0.5,
                               image_size=16), data_root=str(root), device="cpu")
    assert setup.sizes == {"train_size": 18, "val_size": 9, "test_size": 6}  # all of train trains
    assert setup.val[0].shape == (9, 3, 16, 16) and setup.data_splits == ds.splits


def test_imagefolder_grayscale_and_other_formats(tmp_path):
    root = write_image_folder(tmp_path / "d", channels=1)
    (root / "train" / "cat" / "notes.txt").write_text("not an image, and not named like one: skipped")
    Image.fromarray(_image(0, (12, 12), 1, 5)).save(root / "train" / "cat" / "extra.bmp")
    Image.fromarray(_image(0, (12, 12), 1, 6)).save(root / "train" / "cat" / "extra.tiff")
    ds = load_dataset("imagefolder", data_root=str(root))
    assert ds.in_chans == 1 and ds.train_images.shape[0] == 14


def _expect_exit_2(args, capsys, *fragments):
    assert main(args) == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert str(fragment) in err, err
    return err


BAD_FOLDERS = {
    "class_without_images": lambda root: _empty(root / "train" / "dog"),
    "folder_without_images": lambda root: [_rmtree(p) for p in list((root / "train").iterdir())] and root / "train",
    "truncated": lambda root: _truncate(root / "train" / "frog" / "001.jpg"),
    "not_an_image": lambda root: _overwrite(root / "test" / "cat" / "000.png", b"plain text, not a PNG"),
    "mixed_channels": lambda root: _save(root / "train" / "dog" / "002.png", _image(1, (12, 12), 1, 0)),
    "class_missing_from_test": lambda root: _rmtree(root / "test" / "frog") or root / "test",
    "unknown_class_in_test": lambda root: (root / "test" / "bird").mkdir() or root / "test" / "bird",
    "no_test_folder": lambda root: _rmtree(root / "test") or root,
    "stray_image": lambda root: _save(root / "train" / "loose.png", _image(0, (12, 12), 3, 0)),
    "mixed_sizes": lambda root: _save(root / "test" / "dog" / "000.png", _image(1, (16, 16), 3, 0)),
}


def _empty(folder: Path) -> Path:
    for p in folder.iterdir():
        p.unlink()
    return folder


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:200])
    return path


def _overwrite(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def _rmtree(path: Path) -> None:
    for p in sorted(path.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    path.rmdir()


@pytest.mark.parametrize("damage", sorted(BAD_FOLDERS))
def test_bad_image_folder_exits_2_naming_the_path_and_caches_nothing(damage, tmp_path, capsys):
    root = write_image_folder(tmp_path / "d")
    named = BAD_FOLDERS[damage](root)
    _expect_exit_2(["train", "--dataset", "imagefolder", "--data-root", str(root), "--epochs", "1",
                    "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"], capsys, named)
    assert not (tmp_path / "run" / "result.json").exists()
    assert not list((tmp_path / "cache").rglob("*.u8cache*")), "a failed decode left a file in the cache"


def test_imagefolder_needs_a_data_root(monkeypatch):
    monkeypatch.delenv("AUGBENCH_DATA")
    with pytest.raises(UsageError, match="--data-root"):
        load_dataset("imagefolder")


# ----------------------------------------------------------------------------- Tiny-ImageNet


def test_tiny_imagenet_layout_splits_and_labels(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    for data_root in (tmp_path, root):  # the parent folder or tiny-imagenet-200 itself
        ds = load_dataset("tiny_imagenet", data_root=str(data_root))
        assert ds.class_names == ["n01", "n02", "n03"] and ds.num_classes == 3
        assert ds.train_images.shape == (12, 3, 64, 64) and ds.test_images.shape == (6, 3, 64, 64)
        # wnids.txt lists n02 first; label 0 is the sorted first id, n01 (grey level 40)
        assert ds.train_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
        assert ds.test_labels.tolist() == [1, 1, 0, 0, 2, 2]
        assert ds.val_images is None and "official val" in ds.splits
    # the grayscale JPEG is converted to RGB: its three channels are equal
    gray = ds.train_images[0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    levels = ds.test_images.float().mean(dim=(1, 2, 3))
    for label in range(3):
        assert torch.all((levels[ds.test_labels == label] - LEVEL[label]).abs() < 12)


def test_tiny_imagenet_at_32_px_and_the_record_says_where_test_came_from(tmp_path, small_config):
    from augbench.engine import train

    write_tiny_imagenet(tmp_path, per_class=8, per_val=2)
    config = small_config(dataset="tiny_imagenet", image_size=32, recipe="random_resized_crop", batch_size=4,
                          train_subset=None, epochs=1, val_fraction=0.25)
    record = train(config, tmp_path / "run", data_root=str(tmp_path), device="cpu", progress=False,
                   log=lambda _: None)
    assert record["status"] == "finished" and record["config"]["image_size"] == 32
    assert record["train_size"] == 18 and record["val_size"] == 6 and record["test_size"] == 6
    assert "test: the official val set" in record["data_splits"]


def test_tiny_imagenet_missing_says_download(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset("tiny_imagenet", data_root=str(tmp_path / "nowhere"))
    msg = str(exc.value)
    assert "--download" in msg and "tiny-imagenet-200" in msg and str(tmp_path / "nowhere") in msg


@pytest.mark.parametrize("damage", ["no_annotations", "unknown_wnid", "class_without_val", "empty_class"])
def test_bad_tiny_imagenet_is_named(damage, tmp_path):
    root = write_tiny_imagenet(tmp_path)
    annotations = root / "val" / "val_annotations.txt"
    if damage == "no_annotations":
        annotations.unlink()
        named = "val_annotations.txt"
    elif damage == "unknown_wnid":
        annotations.write_text(annotations.read_text() + "val_x.JPEG\tn99\t0\t0\t1\t1\n")
        named = annotations
    elif damage == "class_without_val":
        annotations.write_text("".join(line + "\n" for line in annotations.read_text().splitlines()
                                       if "\tn03\t" not in line))
        named = annotations
    else:
        for p in (root / "train" / "n03" / "images").iterdir():
            p.unlink()
        named = root / "train" / "n03" / "images"
    with pytest.raises(DataError, match=re.escape(str(named))):
        load_dataset("tiny_imagenet", data_root=str(tmp_path))
    assert not list((tmp_path / "cache").rglob("*.u8cache*"))


# ----------------------------------------------------------------------------- the decode cache


def _cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "decoded").glob("*.u8cache"))


def test_cache_miss_then_hit_without_decoding(tmp_path):
    root = write_image_folder(tmp_path / "d")
    first = load_dataset("imagefolder", data_root=str(root))
    (cached,) = _cache_files(tmp_path)
    assert cache_root() == tmp_path / "cache"
    inode = cached.stat().st_ino
    # Garble a file but keep its size and modification time: a hit must not decode it again.
    victim = root / "train" / "cat" / "000.png"
    st = victim.stat()
    victim.write_bytes(b"\0" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = load_dataset("imagefolder", data_root=str(root))
    assert cached.stat().st_ino == inode
    assert torch.equal(again.train_images, first.train_images) and again.mean == first.mean
    assert again.class_names == first.class_names and torch.equal(again.test_labels, first.test_labels)


@pytest.mark.parametrize("change", ["touch", "add_file", "remove_file", "rename_class"])
def test_a_changed_source_invalidates_the_cache(change, tmp_path):
    root = write_image_folder(tmp_path / "d")
    first = load_dataset("imagefolder", data_root=str(root))
    (cached,) = _cache_files(tmp_path)
    inode = cached.stat().st_ino
    victim = root / "train" / "dog" / "000.png"
    if change == "touch":  # same size, new pixels, new mtime
        _save(victim, 255 - np.asarray(Image.open(victim)))
        os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    elif change == "add_file":
        _save(root / "train" / "dog" / "999.png", _image(1, (12, 12), 3, 9))
    elif change == "remove_file":
        victim.unlink()
    else:
        (root / "train" / "dog").rename(root / "train" / "dingo")
        (root / "test" / "dog").rename(root / "test" / "dingo")
    second = load_dataset("imagefolder", data_root=str(root))
    assert _cache_files(tmp_path) == [cached] and cached.stat().st_ino != inode  # replaced, not added to
    assert not torch.equal(second.train_images, first.train_images) or second.class_names != first.class_names
    # another image size is another file; the first stays valid
    load_dataset("imagefolder", data_root=str(root), image_size=8)
    assert len(_cache_files(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["truncated", "flipped_pixel", "flipped_header", "empty", "garbage_tail"])
def test_a_corrupt_cache_file_is_detected_and_rebuilt(damage, tmp_path, capsys):
    root = write_image_folder(tmp_path / "d")
    # a copy: the loaded tensors map the file, and this test damages the file in place
    expected = load_dataset("imagefolder", data_root=str(root)).train_images.clone()
    (cached,) = _cache_files(tmp_path)
    raw = bytearray(cached.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "flipped_pixel":
        raw[8192] ^= 0x01  # inside the image array
    elif damage == "flipped_header":
        raw[20] ^= 0x20
    elif damage == "empty":
        raw = bytearray()
    else:
        raw += b"\0" * 10
    cached.write_bytes(bytes(raw))
    second = load_dataset("imagefolder", data_root=str(root))
    assert "corrupt" in capsys.readouterr().err
    assert torch.equal(second.train_images, expected)
    assert cached.read_bytes() != bytes(raw)  # rebuilt
    third = load_dataset("imagefolder", data_root=str(root))  # and trusted again
    assert torch.equal(third.train_images, expected) and capsys.readouterr().err == ""


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "d")
    monkeypatch.setenv("AUGBENCH_CACHE", str(tmp_path / "elsewhere"))
    load_dataset("imagefolder", data_root=str(root))
    assert list((tmp_path / "elsewhere" / "decoded").glob("*.u8cache")) and not (tmp_path / "cache").exists()


def test_cached_tensors_map_the_file_instead_of_copying_it(tmp_path):
    root = write_image_folder(tmp_path / "d", per_class=(40, 4), size=(32, 32))
    load_dataset("imagefolder", data_root=str(root))
    ds = load_dataset("imagefolder", data_root=str(root))
    (cached,) = _cache_files(tmp_path)
    # The pixels live in the file's mapping (Linux lists mappings in /proc/self/maps), not in a copy.
    address = ds.train_images.data_ptr()
    spans = [line.split()[0].split("-") for line in Path("/proc/self/maps").read_text().splitlines()
             if line.endswith(str(cached))]
    assert any(int(lo, 16) <= address < int(hi, 16) for lo, hi in spans), spans
    ds.train_images[0].zero_()  # copy-on-write: the process may change its copy, the file stays intact
    assert torch.equal(load_dataset("imagefolder", data_root=str(root)).train_images[1:], ds.train_images[1:])
    assert load_dataset("imagefolder", data_root=str(root)).train_images[0].any()


def test_registry_lists_the_new_families():
    assert {"imagefolder", "tiny_imagenet"} <= set(DATASETS)


def test_a_second_loader_waits_for_the_first_decode_and_maps_its_file(tmp_path):
    import fcntl
    import threading
    import time

    root = write_image_folder(tmp_path / "d")
    folder = tmp_path / "cache" / "decoded"
    folder.mkdir(parents=True)
    loaded = {}
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a process that is decoding holds it
        waiter = threading.Thread(target=lambda: loaded.update(ds=load_dataset("imagefolder", data_root=str(root))))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and not _cache_files(tmp_path)  # waiting, not decoding alongside
    finally:
        os.close(fd)
    waiter.join(timeout=30)
    assert not waiter.is_alive() and loaded["ds"].train_images.shape == (12, 3, 12, 12)
    assert len(_cache_files(tmp_path)) == 1


def test_an_experiment_file_carries_the_image_size(tmp_path):
    from augbench.tune.experiment import load_experiment, preflight

    root = write_image_folder(tmp_path / "d", per_class=(8, 2))
    text = ("name: folder64\ndataset: imagefolder\nimage_size: {size}\nval_fraction: 0.25\n"
            "backbones: [cifar_resnet8]\nrecipes: [baseline]\nmethods: [ce]\nepochs: 1\n"
            "fixed: {{batch_size: 4}}\nsearch: {{space: {{}}}}\nfinal: {{seeds: [0]}}\n")
    path = tmp_path / "exp.yaml"
    path.write_text(text.format(size=64))
    experiment = load_experiment(path)
    assert experiment.run_config(experiment.cells()[0], {}, 0).image_size == 64
    preflight(experiment, data_root=str(root))  # builds a run at 64 px from the folder
    path.write_text(text.format(size=3))
    with pytest.raises(UsageError, match="image_size"):
        load_experiment(path)


def test_train_image_size_flag_reaches_the_record(tmp_path, capsys):
    import json

    root = write_image_folder(tmp_path / "d", splits=("train", "test", "val"), per_class=(4, 2, 2), size=(20, 30))
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-root", str(root), "--image-size", "16",
                 "--epochs", "1", "--batch-size", "4", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["config"]["image_size"] == 16 and record["status"] == "finished"
    assert (record["train_size"], record["val_size"], record["test_size"]) == (12, 6, 6)
    assert str(root / "val") in record["data_splits"]
