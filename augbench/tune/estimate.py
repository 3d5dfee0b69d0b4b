"""``augbench tune EXPERIMENT --dry-run``: what an experiment costs, before anything runs.

Counts the runs the plan holds (``plan.search_slots`` and ``plan.final_slots``
of every cell: search trials are an upper bound, since pruned trials end
early) and times the real engine on the experiment's real data: for each
distinct (backbone, method, recipe) one short probe builds the run as a
worker would (``engine.build``), takes ``WARMUP_STEPS`` training steps (first
allocations, DLB's first step with nothing to replay) and then times
``PROBE_STEPS`` more through the engine's own loop (loader, method,
optimizer; ``engine.timing.time_training``); per backbone it times the engine's evaluation (``time_evaluation``)
on a slice of the validation set. One run of a cell is then estimated as

    seconds = set-up + planned_steps * seconds_per_step + evaluated_images * seconds_per_eval_image,
    evaluated_images = epochs * val_size + 2 * test_size

(the engine validates after every epoch and tests once at the end, with the
last and with the best-validation weights).

with ``planned_steps`` from the budget (``engine.budget.plan_budget``), and the
experiment as the sum over its runs. With ``--workers N`` the probes run at
the threads each worker gets (``runner.worker_threads``: the cores shared
out), and the wall time is the plan's runs dealt, in order, to whichever
worker is free first (the workers claim them that way); the runs' sum is
what their records add up to. Workers that share one accelerator slow each
other down, which the estimate does not model: it holds for CPU workers of a
core or more each (measured: ``docs/pilot.md``). Given ``--throughput``
(training forward samples per second on another device, as records'
``samples_per_second`` report), the estimate for that device is

    (forward_samples + eval_images * r) / throughput,

where r, this machine's seconds per evaluated image over its seconds per
training forward sample, carries evaluation over at the measured ratio
(set-up time is not carried over).

A dry run writes nothing: no run folder, no storage. ``--save`` writes the
estimate to ``OUT/estimate.json`` (atomically), where the leaderboard finds it
and sets it beside the actual wall time.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from augbench.engine.budget import plan_budget
from augbench.engine.record import device_name, now_iso
from augbench.engine.run import build, resolve_device
from augbench.engine.timing import time_evaluation, time_training
from augbench.errors import UsageError
from augbench.run_folder import ESTIMATE_FILE, write_json_atomic
from augbench.tune.experiment import load_experiment
from augbench.tune.grid import Experiment
from augbench.tune.plan import final_slots, search_slots
from augbench.tune.runner import threads_note, worker_threads

WARMUP_STEPS = 5
PROBE_STEPS = 12
EVAL_PROBE_IMAGES = 1000


@dataclass(frozen=True)
class Probe:
    """One (backbone, method, recipe) timed on this machine."""

    model: str
    method: str
    recipe: str
    seconds_per_step: float
    forward_samples_per_step: float
    steps_per_epoch: int
    forward_passes_per_sample: int
    setup_seconds: float

    @property
    def samples_per_second(self) -> float:
        return self.forward_samples_per_step / self.seconds_per_step


@dataclass
class Estimate:
    """The cost of an experiment: runs, forward samples, seconds here and, given a throughput, elsewhere."""

    experiment: str
    device: str
    search_runs: int
    final_runs: int
    forward_samples: float
    eval_images: float
    seconds: float
    train_seconds: float
    eval_seconds: float
    setup_seconds: float
    probe_seconds: float
    probes: list[Probe]
    eval_seconds_per_image: dict[str, float]
    throughput: float | None = None
    created_at: str = ""
    runs_by_cell: dict[str, int] = field(default_factory=dict)
    workers: int = 1
    threads: int | None = None  # each worker's training threads during the probes (None: the process default)
    wall_seconds: float | None = None  # first start to last finish with ``workers`` workers (None: ``seconds``)
    run_seconds: list[float] = field(default_factory=list)  # each run's estimate, in the plan's order

    @property
    def runs(self) -> int:
        return self.search_runs + self.final_runs

    @property
    def eval_ratio(self) -> float:
        """Seconds per evaluated image over seconds per training forward sample, on this machine."""
        per_forward = self.train_seconds / self.forward_samples if self.forward_samples else 0.0
        return (self.eval_seconds / self.eval_images) / per_forward if self.eval_images and per_forward else 0.0

    @property
    def seconds_at_throughput(self) -> float | None:
        if not self.throughput:
            return None
        return (self.forward_samples + self.eval_images * self.eval_ratio) / self.throughput

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment, "device": self.device, "created_at": self.created_at,
            "runs": self.runs, "search_runs_at_most": self.search_runs, "final_runs": self.final_runs,
            "forward_samples": self.forward_samples, "eval_images": self.eval_images, "seconds": self.seconds,
            "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
            "setup_seconds": self.setup_seconds, "probe_seconds": self.probe_seconds,
            "throughput": self.throughput, "seconds_at_throughput": self.seconds_at_throughput,
            "eval_ratio": self.eval_ratio, "eval_seconds_per_image": self.eval_seconds_per_image,
            "probes": [{**dataclasses.asdict(p), "samples_per_second": p.samples_per_second} for p in self.probes],
            "runs_by_cell": self.runs_by_cell, "workers": self.workers, "threads": self.threads,
            "wall_seconds": self.wall_seconds if self.wall_seconds is not None else self.seconds,
            "formula": "sum over runs of set-up + planned_steps * seconds_per_step + epochs * (val + test images) * "
                       "eval seconds per image; search trials counted in full (an upper bound)",
        }


def probe_training(config, *, data_root: str | None, device: str) -> tuple[Probe, Any]:
    """Times ``PROBE_STEPS`` training steps of ``config`` through the engine's loop; returns the probe and setup."""

    start = time.perf_counter()
    setup = build(config, data_root=data_root, device=device)
    setup_seconds = time.perf_counter() - start
    timed = time_training(setup, PROBE_STEPS, warmup_steps=WARMUP_STEPS)
    probe = Probe(config.model, config.method, str(config.recipe), timed["seconds_per_step"],
                  timed["forward_samples_per_step"], setup.steps_per_epoch, setup.method.forward_passes_per_sample,
                  setup_seconds)
    return probe, setup


def evaluated_images(num_epochs: int, val_size: int, test_size: int) -> int:
    """Images one run evaluates: validation after every epoch, test with the last and the best-validation weights."""
    return num_epochs * val_size + 2 * test_size


def probe_evaluation(setup) -> float:
    """Seconds per image of the engine's evaluation, timed on a slice of the validation set."""

    return time_evaluation(setup, EVAL_PROBE_IMAGES)


def _check_throughput(throughput: float | None) -> None:
    if throughput is not None and not throughput > 0:
        raise UsageError(f"--throughput {throughput:g}: accepted: a number of images per second > 0")


def makespan(durations: list[float], workers: int) -> float:
    """Seconds until the last of ``durations`` ends when each, in order, goes to whichever of ``workers`` is
    free first."""
    free = [0.0] * max(1, workers)
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def estimate(experiment: Experiment, *, data_root: str | None = None, device: str = "auto",
             throughput: float | None = None, workers: int = 1, log=print) -> Estimate:
    """Counts the runs of ``experiment`` and estimates their cost from probes on this machine, for ``workers``
    local worker processes."""

    _check_throughput(throughput)
    if workers == 1:
        return _estimate(experiment, data_root, device, throughput, log)
    threads, before = worker_threads(workers), torch.get_num_threads()
    torch.set_num_threads(threads)  # what each worker process will train with
    try:
        est = _estimate(experiment, data_root, device, throughput, log)
    finally:
        torch.set_num_threads(before)
    est.workers, est.threads = workers, threads
    est.wall_seconds = makespan(est.run_seconds, workers)
    return est


def _estimate(experiment: Experiment, data_root: str | None, device: str, throughput: float | None,
              log) -> Estimate:
    started = time.perf_counter()
    runs = []  # the configuration of every run the plan holds (search trials with the fixed values)
    runs_by_cell = {}
    for cell in experiment.cells():
        seeds = [experiment.search_seed] * len(search_slots(experiment, cell)) + [
            int(slot.split("-", 1)[1]) for slot in final_slots(experiment)]
        runs_by_cell[cell.id] = len(seeds)
        runs += [experiment.run_config(cell, {}, seed) for seed in seeds]
    search_runs = sum(len(search_slots(experiment, cell)) for cell in experiment.cells())

    probes: dict[tuple[str, str, str], Probe] = {}
    eval_per_image: dict[str, float] = {}
    sizes: dict[tuple[str, str, str], tuple[int, int]] = {}
    for config in runs:
        key = (config.model, config.method, str(config.recipe))
        if key in probes:
            continue
        probe, setup = probe_training(config, data_root=data_root, device=device)
        probes[key] = probe
        sizes[key] = (setup.sizes["val_size"], setup.sizes["test_size"])
        if config.model not in eval_per_image:
            eval_per_image[config.model] = probe_evaluation(setup)
        log(f"probe {config.model} / {config.method} / {config.recipe}: {probe.seconds_per_step:.3f} s per step, "
            f"{probe.samples_per_second:.0f} forward samples/s")
    # The first build also reads the data set from disk; later runs in one worker process find it cached.
    setup_seconds = min(p.setup_seconds for p in probes.values()) if probes else 0.0

    forward = eval_images = train_seconds = eval_seconds = 0.0
    run_seconds = []
    for config in runs:
        key = (config.model, config.method, str(config.recipe))
        probe = probes[key]
        plan = plan_budget(config.budget, config.epochs, probe.steps_per_epoch, probe.forward_passes_per_sample)
        forward += plan.planned_steps * probe.forward_samples_per_step
        train_seconds += plan.planned_steps * probe.seconds_per_step
        images = evaluated_images(plan.num_epochs, *sizes[key])
        eval_images += images
        eval_seconds += images * eval_per_image[config.model]
        run_seconds.append(setup_seconds + plan.planned_steps * probe.seconds_per_step
                           + images * eval_per_image[config.model])
    total_setup = setup_seconds * len(runs)
    return Estimate(
        experiment=experiment.name, device=device_name(resolve_device(device)), search_runs=search_runs,
        final_runs=len(runs) - search_runs, forward_samples=forward, eval_images=eval_images,
        seconds=train_seconds + eval_seconds + total_setup, train_seconds=train_seconds, eval_seconds=eval_seconds,
        setup_seconds=total_setup, probe_seconds=time.perf_counter() - started, probes=list(probes.values()),
        eval_seconds_per_image=dict(eval_per_image),
        throughput=throughput, created_at=now_iso(), runs_by_cell=runs_by_cell, run_seconds=run_seconds)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _count(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.0f}"


def report(est: Estimate, out_dir: Path, saved: bool) -> str:
    """What ``--dry-run`` prints."""
    lines = [
        f"experiment {est.experiment}: {len(est.runs_by_cell)} cells, {est.runs} runs at most "
        f"({est.search_runs} search trials at most + {est.final_runs} final runs)",
        f"forward samples: {_count(est.forward_samples)} in training, plus {_count(est.eval_images)} images "
        "evaluated (validation every epoch, test at the end)",
        f"probe on {est.device}: {WARMUP_STEPS} warm-up + {PROBE_STEPS} timed steps per backbone/method/recipe, "
        f"{est.probe_seconds:.1f} s in all",
    ]
    for p in est.probes:
        lines.append(f"  {p.model} / {p.method} / {p.recipe}: {p.seconds_per_step * 1000:.0f} ms per step, "
                     f"{p.samples_per_second:.0f} forward samples/s")
    for model, seconds in est.eval_seconds_per_image.items():
        lines.append(f"  {model} evaluation: {1 / seconds:.0f} images/s")
    parts = (f"training {_duration(est.train_seconds)}, evaluation {_duration(est.eval_seconds)}, set-up "
             f"{_duration(est.setup_seconds)}; pruned search trials end sooner")
    if est.workers == 1:
        lines.append(f"estimated wall time on this machine, one worker: {_duration(est.seconds)} ({parts})")
    else:
        lines.append(f"estimated wall time on this machine, {est.workers} workers of {est.threads} thread(s): "
                     f"{_duration(est.wall_seconds)}; the runs add up to {_duration(est.seconds)} ({parts})")
        if note := threads_note(est.workers):
            lines.append(note)
    if est.throughput:
        lines.append(f"estimated at {est.throughput:g} forward samples/s (--throughput): "
                     f"{_duration(est.seconds_at_throughput)} (evaluation at this machine's ratio "
                     f"{est.eval_ratio:.2f}, set-up not included)")
    lines.append(f"saved to {out_dir / ESTIMATE_FILE}" if saved else
                 f"nothing written (--save keeps this estimate in {out_dir / ESTIMATE_FILE} for the leaderboard)")
    return "\n".join(lines)


def dry_run(experiment_path: str, *, out: str | None = None, data_root: str | None = None, device: str = "auto",
            throughput: float | None = None, save: bool = False, workers: int = 1) -> int:
    """``augbench tune EXPERIMENT --dry-run [--workers N] [--throughput N] [--save]``: prints the estimate; writes
    only with save."""

    _check_throughput(throughput)
    experiment = load_experiment(experiment_path)
    out_dir = Path(out) if out else experiment.default_out()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder")
    est = estimate(experiment, data_root=data_root, device=device, throughput=throughput, workers=workers,
                   log=lambda _: None)
    if save:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out_dir / ESTIMATE_FILE, est.to_dict())
    print(report(est, out_dir, saved=save))
    return 0
