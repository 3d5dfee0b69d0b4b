"""Loader throughput of every recipe (two views, N workers) next to the default model's training throughput.

Usage: python scripts/recipe_throughput.py [--dataset fashion_mnist] [--workers 2] [--batches 20]

Loader: images per second (two views per sample) out of the training loader
with the recipe's per-sample operations, after the first batch (worker start)
is left out. Training: images per second of CE steps (forward, backward, SGD
step) of the default model on normalized batches already on the device; a
mixing recipe adds its Mixup/CutMix to every step, on the device. A loader
slower than training is the bottleneck of a run with that many workers.
"""

from __future__ import annotations

import argparse
import time

import torch

from augbench import models
from augbench.augment import list_recipes, load_recipe
from augbench.augment.pipeline import normalize
from augbench.data import load_dataset
from augbench.data.loader import TrainLoader
from augbench.engine.run import resolve_device
from augbench.losses import soft_cross_entropy


def loader_images_per_second(ds, recipe, workers: int, batch_size: int, batches: int) -> float:
    loader = TrainLoader(ds.train_images, ds.train_labels, torch.arange(len(ds.train_labels)), recipe.pipeline, 2,
                         batch_size, ds.mean, ds.std, seed=0, num_workers=workers)
    iterator = iter(loader.epoch(0))
    next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    del iterator
    return batches * batch_size * 2 / seconds


def training_images_per_second(ds, mixer, device, batch_size: int, steps: int) -> float:
    torch.manual_seed(0)
    model = models.create(models.DEFAULT_MODEL, num_classes=ds.num_classes, in_chans=ds.in_chans).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    images = normalize(ds.train_images[:batch_size], torch.tensor(ds.mean), torch.tensor(ds.std)).to(device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = ds.train_labels[:batch_size].to(device)

    def step():
        inputs, targets = images, labels
        if mixer is not None:
            inputs, targets = mixer.apply(images, labels, mixer.sample(batch_size, tuple(images.shape[-2:])))
        loss = soft_cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20, help="loader batches timed per recipe")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    ds = load_dataset(args.dataset)
    device = resolve_device(args.device)
    shape = tuple(ds.train_images.shape[1:])
    train_rate = training_images_per_second(ds, None, device, args.batch_size, args.steps)
    print(f"data set {ds.name} {'x'.join(map(str, shape))}, batch {args.batch_size}, loader workers {args.workers}, "
          f"torch threads {torch.get_num_threads()}, training on {device}")
    print(f"training throughput of {models.DEFAULT_MODEL} (CE steps, no mixing): {train_rate:,.0f} images/s\n")
    print(f"| recipe | loader images/s (2 views, {args.workers} workers) | loader / training | "
          f"training images/s with the recipe's mixing |")
    print("|---|---:|---:|---:|")
    for name in list_recipes():
        recipe = load_recipe(name).prepared(ds.num_classes, shape)
        rate = loader_images_per_second(ds, recipe, args.workers, args.batch_size, args.batches)
        mixed = "-" if recipe.mixer is None else \
            f"{training_images_per_second(ds, recipe.mixer, device, args.batch_size, args.steps):,.0f}"
        print(f"| {name} | {rate:,.0f} | {rate / train_rate:.2f} | {mixed} |", flush=True)


if __name__ == "__main__":
    main()
