"""Writes augbench's generated 32-px RGB problem in CIFAR-10's python-pickle layout, at CIFAR-10's size.

For throughput measurements on a machine that has no copy of CIFAR-10 (nothing is downloaded at run time):
``augbench bench --dataset cifar10 --data-root DIR`` then times the CIFAR-10 shapes (50,000 train images of
3x32x32, 10 classes) on the textures of ``augbench.data.synthetic``. The accuracies it would give are not
CIFAR-10's.

Usage: ``python scripts/synthetic_cifar10.py DIR [--train 50000] [--test 10000]``.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

from augbench.data.synthetic import make_synthetic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=int, default=50000)
    parser.add_argument("--test", type=int, default=10000)
    args = parser.parse_args(argv)
    ds = make_synthetic(n_train=args.train, n_test=args.test, channels=3, size=32)
    out = args.folder / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y = ds.train_images.numpy(), ds.train_labels.numpy()
    chunks = [(train_x[i::5], train_y[i::5]) for i in range(5)]
    files = [(f"data_batch_{i + 1}", chunk) for i, chunk in enumerate(chunks)]
    files.append(("test_batch", (ds.test_images.numpy(), ds.test_labels.numpy())))
    for name, (x, y) in files:
        with open(out / name, "wb") as f:
            pickle.dump({"data": x.reshape(len(x), -1), "labels": y.tolist()}, f)
    with open(out / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(ds.class_names)}, f)
    print(f"{out}: {len(train_y)} train and {len(ds.test_labels)} test images, 3x32x32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
