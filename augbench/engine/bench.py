"""``augbench bench``: where a training step's time goes, measured side by side in one process.

Four measurements, each after a warm-up, on one data set, backbone and batch size:

1. **model only**: CE train steps (forward, backward, SGD) on normalised
   inputs already on the device, at batch n and 2n: the ceiling a data path
   can at best reach; and, where the device has native bfloat16, fp32 against
   bf16 autocast at batch n;
2. **data path**: images per second that each recipe's augmentation delivers,
   two views, normalised, on the device: the per-sample path (every image
   through each op's ``sample`` form in a Python loop, normalised on the host,
   copied: how augbench worked before batch ops) against the batched path
   (the loader of a real run), and their ratio; with ``kornia`` installed,
   Kornia's batched equivalents of the single ops are measured alongside;
3. **end to end**: forward samples per second of the real training loop
   (``engine.timing.time_training``: loader, method, optimizer) for each recipe x
   method, and its ratio to the model-only rate at the method's batch, timed
   in alternating rounds with it (median of the per-round ratios);
4. **DLB's step** against a CE step on a batch of 2n (DLB forwards n new and
   n replayed samples per step), timed in alternating rounds with it, for the
   run's ``forward`` mode and for ``forward=joint`` (one call on 2n).

Ratios come from one run, so they compare like with like even on a busy
machine; absolute rates are this machine's at this moment.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from augbench import models
from augbench.augment import load_recipe
from augbench.augment.ops import OPS
from augbench.config import RunConfig
from augbench.data import load_dataset
from augbench.data.loader import normalize
from augbench.engine.build import make_optimizer
from augbench.engine.run import bf16_problem, build, resolve_device
from augbench.engine.timing import time_training
from augbench.losses import soft_cross_entropy
from augbench.methods import Batch
from augbench.methods.base import resolve_args
from augbench.methods.dlb import DLB
from augbench.methods.registry import get_method

DEFAULT_RECIPES = ("baseline", "cutout", "random_erasing", "mixup", "cutmix", "autoaugment", "randaugment",
                   "trivialaugment")
DEFAULT_METHODS = ("ce", "dlb")
#: Seconds each path of a data-path comparison runs per round, at least: a batched batch takes a fraction of a
#: millisecond, and the default steps alone would time a window of a few milliseconds.
DATA_PATH_WINDOW = 0.2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn: Callable[[], int], device: torch.device, steps: int, warmup: int = 3, min_seconds: float = 0.0) -> float:
    """Items per second of ``fn`` (which returns the items it handled) over ``steps`` calls after ``warmup``, or
    over more calls until ``min_seconds`` have passed (a window of a few milliseconds is mostly timer noise and
    scheduling on a shared machine)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start, items, calls = time.perf_counter(), 0, 0
    while calls < steps or time.perf_counter() - start < min_seconds:
        items, calls = items + fn(), calls + 1
    _sync(device)
    return items / (time.perf_counter() - start)


def _paired_rates(first: Callable[[], int], second: Callable[[], int], device: torch.device, steps: tuple[int, int],
                  rounds: int = 5, min_seconds: float = 0.0) -> tuple[float, float, float]:
    """Rates of ``first`` and ``second`` and their ratio, measured in alternating rounds; medians over rounds.

    On a shared machine the speed drifts (CPU steal); timing the two side by side, round after round, and
    taking the median of the per-round ratios keeps a drift from landing on one of them only.
    """
    first_rates, second_rates = [], []
    for i in range(rounds):
        first_rates.append(_rate(first, device, steps[0], warmup=3 if i == 0 else 1, min_seconds=min_seconds))
        second_rates.append(_rate(second, device, steps[1], warmup=3 if i == 0 else 1, min_seconds=min_seconds))
    ratios = [a / b for a, b in zip(first_rates, second_rates)]
    return statistics.median(first_rates), statistics.median(second_rates), statistics.median(ratios)


def _model_step(config: RunConfig, ds, device: torch.device, batch_size: int) -> Callable[[], int]:
    """One CE train step (forward, backward, SGD) on normalised inputs already on the device; returns the batch."""
    torch.manual_seed(0)
    model = models.create(config.model, num_classes=ds.num_classes, in_chans=ds.in_chans).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    mean, std = torch.tensor(ds.mean, device=device), torch.tensor(ds.std, device=device)
    index = torch.arange(batch_size) % len(ds.train_labels)
    images = normalize(ds.train_images[index].to(device), mean, std, dtype)
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = ds.train_labels[index].to(device)

    def step() -> int:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            loss = soft_cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch_size

    return step


def model_only_rate(config: RunConfig, ds, device: torch.device, batch_size: int, steps: int) -> float:
    """CE train steps per second x batch on normalised inputs already on the device (images/s)."""
    return _rate(_model_step(config, ds, device, batch_size), device, steps)


def data_path_rates(recipe_name: str, config: RunConfig, ds, device: torch.device, batch_size: int, batches: int,
                    workers: int, data_root: str | None = None) -> dict[str, float]:
    """Images/s (two views, normalised, on the device) of the per-sample path and of the batched loader."""
    # Workers only where the recipe needs them (sample ops): the batched path is measured on the same core.
    workers = workers if load_recipe(recipe_name).pipeline.needs_loader else 0
    setup = build(dataclasses.replace(config, recipe=recipe_name, method="dlb"), device=str(device),
                  num_workers=workers, data_root=data_root)
    loader, pipeline, mixer = setup.loader, setup.recipe.pipeline, setup.recipe.mixer
    shape = tuple(ds.train_images.shape[-2:])
    dtype = torch.bfloat16 if config.bf16 else torch.float32

    def mix(views):
        if mixer is not None:
            params = mixer.sample(views[0].shape[0], shape)
            views = [mixer.apply(v, loader.device_labels[:v.shape[0]], params)[0] for v in views]
        return views

    positions = loader.batches(0)

    def per_sample() -> int:
        images = loader.images[positions[per_sample.b % len(positions)]]
        per_sample.b += 1
        views = []
        for _ in range(2):
            out = []
            for img in images:
                for op, kind in zip(pipeline.ops, pipeline.kinds):
                    img = op.sample(img) if kind == "batch" else op(img)
                out.append(img)
            views.append(normalize(torch.stack(out), loader.mean.cpu(), loader.std.cpu(), dtype).to(device))
        mix(views)
        return 2 * images.shape[0]

    per_sample.b = 0
    epoch = [loader.epoch(0)]

    def batched() -> int:
        try:
            views, _, _ = next(epoch[0])
        except StopIteration:
            epoch[0] = loader.epoch(1)
            views, _, _ = next(epoch[0])
        mix(views)
        return 2 * views[0].shape[0]

    fast, slow, ratio = _paired_rates(batched, per_sample, device, (max(3, batches // 2), max(2, batches // 8)),
                                      min_seconds=DATA_PATH_WINDOW)
    rates = {"batched": fast, "per_sample": slow, "ratio": ratio}
    epoch.clear()
    loader.close()  # its workers would slow every later measurement
    return rates


def kornia_rates(ds, device: torch.device, batch_size: int, batches: int) -> dict[str, dict[str, float]]:
    """Kornia's batched ops and policies (float images, as Kornia needs) against augbench's, two views each."""
    try:
        import kornia.augmentation as K  # optional: only this comparison uses it
    except ImportError:
        return {}

    h, w = ds.train_images.shape[-2:]
    side = max(1, round(16 * min(h, w) / 32))
    pairs = {
        "pad_crop": (OPS["pad_crop"](padding=4), K.RandomCrop((h, w), padding=4)),
        "flip": (OPS["flip"](p=0.5), K.RandomHorizontalFlip(p=0.5)),
        "cutout": (OPS["cutout"](length=16), K.RandomErasing(scale=(side * side / (h * w),) * 2, ratio=(1.0, 1.0),
                                                             p=1.0)),
        "random_erasing": (OPS["random_erasing"](), K.RandomErasing(scale=(0.02, 0.4), ratio=(0.3, 3.3), p=0.5)),
    }
    import kornia.augmentation.auto as KA  # Kornia's policies act on RGB: both sides get 3 channels
    policies = {
        "autoaugment": (OPS["autoaugment"](policy="cifar10"), KA.AutoAugment("cifar10")),
        "randaugment": (OPS["randaugment"](num_ops=2, magnitude=9), KA.RandAugment(n=2, m=9)),
        "trivialaugment": (OPS["trivialaugment"](), KA.TrivialAugment()),
    }
    images = ds.train_images[:batch_size].to(device)
    rgb = images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] == 1 else images
    generator = torch.Generator(device=device).manual_seed(0)
    rates = {}
    for name, (ours, theirs), x in [(*pair, images) for pair in pairs.items()] + \
            [(*pair, rgb) for pair in policies.items()]:
        ours_rate = _rate(lambda op=ours, x=x: sum(op(x, generator).shape[0] for _ in range(2)), device, batches)
        as_float = x.float() / 255
        theirs_rate = _rate(lambda op=theirs, x=as_float: sum(op(x).shape[0] for _ in range(2)), device, batches)
        rates[name] = {"augbench": ours_rate, "kornia": theirs_rate}
    return rates


def end_to_end_rate(config: RunConfig, device: torch.device, workers: int, steps: int,
                    data_root: str | None = None, model_rate: Callable[[], float] | None = None,
                    rounds: int = 3) -> dict[str, float]:
    """Forward samples/s of the engine's own training loop (loader, method, optimizer) over ``steps`` steps,
    the median of ``rounds`` rounds; with ``model_rate`` (the model's own images/s, measured anew each call),
    also ``ratio``: the median of the per-round ratios, each round timing the two side by side."""
    setup = build(config, device=str(device), num_workers=workers, data_root=data_root)
    rates, ratios, seconds = [], [], []
    try:
        for _ in range(rounds):
            timed = time_training(setup, steps, warmup_steps=3)
            rates.append(timed["forward_samples_per_second"])
            seconds.append(timed["seconds_per_step"] * steps)
            if model_rate is not None:
                ratios.append(rates[-1] / model_rate())
    finally:
        setup.loader.close()
    result = {"forward_samples_per_second": statistics.median(rates), "seconds": statistics.median(seconds)}
    if ratios:
        result["ratio"] = statistics.median(ratios)
    return result


def _dlb_step(config: RunConfig, device: torch.device, batch_size: int, forward: str,
              data_root: str | None = None) -> Callable[[], int]:
    """One DLB train step (n new + n replayed, the baseline recipe's views already on the device); returns 1."""
    setup = build(dataclasses.replace(config, method="dlb", method_args={**config.method_args, "forward": forward},
                                      recipe="baseline", batch_size=batch_size), device=str(device), data_root=data_root)
    views, labels, index = next(setup.loader.epoch(0))
    model, method = setup.model, setup.method
    optimizer = make_optimizer(model, config)

    def step() -> int:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            out = method.step(model, Batch(views, labels, index))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return 1

    return step


def dlb_step_ratio(config: RunConfig, ds, device: torch.device, batch_size: int, steps: int,
                   data_root: str | None = None, rounds: int = 5) -> dict[str, Any]:
    """Seconds per DLB step (n new + n replayed, inputs on the device) against a CE step on 2n, for the run's
    ``forward`` mode and, as ``joint_ratio``, for ``forward=joint`` (one call on the 2n batch, BatchNorm
    statistics over both halves) alongside. Each ratio is the median over ``rounds`` alternating rounds of the
    DLB and CE steps."""
    ce_images = _model_step(config, ds, device, 2 * batch_size)

    def ce_step() -> int:
        ce_images()
        return 1

    forward = resolve_args(DLB, config.method_args)["forward"]
    result: dict[str, Any] = {"forward": forward}
    for mode in dict.fromkeys((forward, "joint")):
        dlb_step = _dlb_step(config, device, batch_size, mode, data_root)
        # Steps per second; CE's over DLB's is DLB's seconds per step over CE's.
        ce_rate, dlb_rate, ratio = _paired_rates(ce_step, dlb_step, device, (steps, steps), rounds=rounds)
        if mode == forward:
            result.update(dlb_step_seconds=1 / dlb_rate, ce_2n_step_seconds=1 / ce_rate, ratio=ratio)
        if mode == "joint":
            result["joint_ratio"] = ratio
    return result


def run_bench(config: RunConfig, recipes: list[str], methods: list[str], device: str = "auto", workers: int = 2,
              steps: int = 30, data_root: str | None = None, log: Callable[[str], None] = print,
              threads: int | None = None) -> dict[str, Any]:
    """All four measurements; returns them as one JSON-ready dict (``threads``: the model's CPU threads, set for
    the rest of the process; None leaves torch's)."""
    if threads is not None:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    for name in recipes:
        load_recipe(name)  # a bad recipe or method name fails before anything is measured
    for method in methods:
        get_method(method)
    build(config, device=str(dev), data_root=data_root)  # validates the configuration (bf16 on this device, model, data set)
    ds = load_dataset(config.dataset, data_root=data_root)
    n = config.batch_size
    result: dict[str, Any] = {
        "dataset": config.dataset, "image_shape": list(ds.train_images.shape[1:]), "model": config.model,
        "batch_size": n, "device": str(dev), "bf16": config.bf16, "threads": torch.get_num_threads(),
        "loader_workers": workers, "steps": steps,
    }
    log("model only ...")
    result["model_only"] = {"batch": model_only_rate(config, ds, dev, n, steps),
                            "batch_2n": model_only_rate(config, ds, dev, 2 * n, steps)}
    if bf16_problem(dev) is None:  # bf16 against fp32 on the same model and batch, side by side
        for dtype, bf16 in (("fp32", False), ("bf16", True)):
            result["model_only"][dtype] = model_only_rate(dataclasses.replace(config, bf16=bf16), ds, dev, n, steps)
    result["data_path"] = {}
    for name in recipes:
        log(f"data path: {name} ...")
        result["data_path"][name] = data_path_rates(name, config, ds, dev, n, steps, workers, data_root)
    result["kornia"] = kornia_rates(ds, dev, n, steps)
    result["end_to_end"] = {}
    for name in recipes:
        for method in methods:
            log(f"end to end: {name} x {method} ...")
            # Side by side with the model's own rate, round by round: the speed of a shared machine drifts.
            result["end_to_end"][f"{name}/{method}"] = end_to_end_rate(
                dataclasses.replace(config, recipe=name, method=method), dev, workers, steps, data_root,
                model_rate=lambda: model_only_rate(config, ds, dev, n, steps))
    log("DLB step vs CE step at 2n ...")
    result["dlb_step"] = dlb_step_ratio(config, ds, dev, n, steps, data_root)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The bench result as Markdown tables."""
    shape = "x".join(map(str, result["image_shape"]))
    lines = [f"augbench bench: {result['dataset']} {shape}, {result['model']}, batch {result['batch_size']}, "
             f"{result['device']}, {'bf16' if result['bf16'] else 'fp32'}, {result['threads']} threads, "
             f"{result['loader_workers']} loader workers (recipes with sample ops; on a CPU also the batched "
             f"policies), {result['steps']} timed steps", "",
             f"model only (CE train step, inputs on the device): {result['model_only']['batch']:,.0f} img/s at "
             f"batch {result['batch_size']}, {result['model_only']['batch_2n']:,.0f} img/s at "
             f"{2 * result['batch_size']}"
             + (f"; bf16 autocast {result['model_only']['bf16'] / result['model_only']['fp32']:.2f}x fp32's rate"
                if "bf16" in result["model_only"] else ""), "",
             "| recipe | per-sample path img/s (2 views) | batched path img/s | batched / per-sample |",
             "|---|---:|---:|---:|"]
    for name, r in result["data_path"].items():
        lines.append(f"| {name} | {r['per_sample']:,.0f} | {r['batched']:,.0f} | {r['ratio']:.1f}x |")
    if result.get("kornia"):
        lines += ["", "| op (2 views) | augbench img/s (uint8) | kornia img/s (float) | augbench / kornia |",
                  "|---|---:|---:|---:|"]
        for name, r in result["kornia"].items():
            lines.append(f"| {name} | {r['augbench']:,.0f} | {r['kornia']:,.0f} | {r['augbench'] / r['kornia']:.1f}x |")
    lines += ["", "| recipe / method | end-to-end forward samples/s | / model only |", "|---|---:|---:|"]
    for key, r in result["end_to_end"].items():
        lines.append(f"| {key} | {r['forward_samples_per_second']:,.0f} | {r['ratio']:.2f} |")
    d = result["dlb_step"]
    lines += ["", f"DLB step (n new + n replayed, forward={d['forward']}): {1000 * d['dlb_step_seconds']:.1f} ms; "
                  f"CE step on 2n: {1000 * d['ce_2n_step_seconds']:.1f} ms; ratio {d['ratio']:.2f}"
                  + (f" (forward=joint: {d['joint_ratio']:.2f})" if d["forward"] != "joint" else "")]
    return "\n".join(lines)
