"""What ``augbench tune``, ``augbench worker`` and ``augbench status`` do (cli.py parses their flags).

``tune`` validates the experiment before it writes anything, opens (or creates)
the storage, writes the resolved experiment to ``OUT/experiment.yaml`` and
works through the plan, in this process or in ``--workers N`` local worker
processes. Rerunning it resumes: finished slots stay finished, an interrupted
trial resumes from its run folder's checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from augbench.errors import UsageError
from augbench.run_folder import EXPERIMENT_FILE
from augbench.tune.experiment import load_experiment
from augbench.tune.grid import Experiment
from augbench.tune.plan import (
    DONE,
    FAILED,
    LEFT,
    PRUNED,
    RUNNING,
    CellPlan,
    check_stored_definition,
    final_slots,
    plan,
    read_cell,
    search_slots,
    slots_of,
)
from augbench.tune.preflight import preflight
from augbench.tune.storage import (
    DEFAULT_STORAGE_FILE,
    STORAGE_ENV,
    is_url,
    open_storage,
    redact_url,
    storage_from_env,
    study_summaries,
    valid_storage_string,
)
from augbench.tune.worker import Interrupted, Worker


def _out_dir(experiment: Experiment, out: str | None) -> Path:
    return Path(out) if out else experiment.default_out()


def _storage_name(storage: str | None, out: Path) -> str:
    return valid_storage_string(storage_from_env(storage) or str(out / DEFAULT_STORAGE_FILE))


@contextlib.contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (a scheduler's or `kill`'s stop) ends the work like Ctrl-C: the running trial is handed back."""

    def handler(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prepare(experiment_path: str, out: str | None, storage: str | None, data_root: str | None):
    """Everything that can refuse the input, before anything is written."""
    experiment = load_experiment(experiment_path)
    out_dir = _out_dir(experiment, out)
    storage_name = _storage_name(storage, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder")
    preflight(experiment, data_root)
    return experiment, out_dir, storage_name


def _start(experiment: Experiment, out_dir: Path, storage_name: str):
    storage = open_storage(storage_name)
    plan(storage, experiment, storage_name)  # refuses another definition under the same name
    out_dir.mkdir(parents=True, exist_ok=True)
    # Atomic, since workers sharing this folder all write it.
    copy = out_dir / f"{EXPERIMENT_FILE}.{os.getpid()}.tmp"
    copy.write_text(yaml.safe_dump(experiment.to_dict(), sort_keys=False))
    copy.replace(out_dir / EXPERIMENT_FILE)
    return storage


def tune(experiment_path: str, *, out: str | None = None, storage: str | None = None, workers: int = 1,
         use_wandb: bool = True, device: str = "auto", data_root: str | None = None) -> int:
    experiment, out_dir, storage_name = _prepare(experiment_path, out, storage, data_root)
    storage_obj = _start(experiment, out_dir, storage_name)
    print(f"experiment {experiment.name}: {len(experiment.cells())} cells -> {out_dir} "
          f"(storage {redact_url(storage_name)})")
    print(summary_line(storage_obj, experiment))
    with _interrupt_on_sigterm():
        if workers == 1:
            _work_here(experiment, storage_obj, storage_name, out_dir, use_wandb, device, data_root)
        else:
            _spawn_workers(experiment_path, out_dir, storage_name, workers, use_wandb, device, data_root)
    return print_status(storage_obj, experiment, storage_name)


def work(experiment_path: str, *, out: str | None = None, storage: str | None = None, use_wandb: bool = True,
         device: str = "auto", data_root: str | None = None, name: str | None = None) -> int:
    experiment, out_dir, storage_name = _prepare(experiment_path, out, storage, data_root)
    storage_obj = _start(experiment, out_dir, storage_name)
    with _interrupt_on_sigterm():
        _work_here(experiment, storage_obj, storage_name, out_dir, use_wandb, device, data_root, name)
    names = set(study_summaries(storage_obj))
    cells = [read_cell(storage_obj, experiment, c, names) for c in experiment.cells()]
    return 1 if any(_failed(c) for c in cells) else 0


def _work_here(experiment, storage_obj, storage_name, out_dir, use_wandb, device, data_root, name=None) -> None:
    label = f"[{name}] " if name else ""
    worker = Worker(experiment, storage_obj, storage_name, out_dir, use_wandb=use_wandb, device=device,
                    data_root=data_root, log=lambda line: print(f"{label}{line}", flush=True))
    ran = worker.run()
    print(f"{label}worker done: {ran} trials run here, nothing left to claim", flush=True)


def worker_threads(workers: int) -> int:
    """Threads each of ``workers`` local worker processes trains with: the machine's cores shared out (at least 1),
    or fewer where ``$OMP_NUM_THREADS`` asks for fewer.

    Never more: workers whose threads outnumber the cores wait for each other. On 2 cores, two processes of 2
    threads each trained ``cifar_resnet8`` at 755 and 751 forward samples/s, two of 1 thread at 1,914 and 1,974
    (2.6x more together), and one of 2 threads alone at 2,731 (one measurement, batch 128, bf16).
    """
    shared = max(1, (os.cpu_count() or 1) // workers)
    asked = _asked_threads()
    return min(asked, shared) if asked else shared


def _asked_threads() -> int | None:
    """``$OMP_NUM_THREADS`` as a positive integer, or None where it is unset or not one."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else None


def threads_note(workers: int) -> str | None:
    """A line for the user where the workers' threads would outnumber the cores: ``$OMP_NUM_THREADS`` asks for more
    than :func:`worker_threads` gives, or there are more workers than cores."""
    cores = os.cpu_count() or 1
    if workers > cores:
        return (f"{workers} workers on this machine's {cores} cores take turns on them: on a CPU they train no "
                f"faster than {cores} workers would, and the --dry-run estimate, which gives each worker a core, "
                f"is too low")
    asked, threads = _asked_threads(), worker_threads(workers)
    if asked and asked > threads:
        return (f"OMP_NUM_THREADS={asked} x {workers} workers would be more threads than this machine's "
                f"{cores} cores: each worker trains with {threads} thread(s)")
    return None


def _spawn_workers(experiment_path, out_dir, storage_name, workers, use_wandb, device, data_root) -> None:
    if note := threads_note(workers):
        print(note, flush=True)
    env = dict(os.environ)
    env[STORAGE_ENV] = storage_name  # not on the command line, where process listings would show a password
    env["OMP_NUM_THREADS"] = str(worker_threads(workers))
    command = [sys.executable, "-m", "augbench", "worker", experiment_path, "--out", str(out_dir), "--device", device]
    if not use_wandb:
        command.append("--no-wandb")
    if data_root:
        command += ["--data-root", data_root]
    procs = [subprocess.Popen([*command, "--name", f"w{i + 1}"], env=env) for i in range(workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reached the workers too: give them time to hand their trials back before telling
        # those that did not get it (a SIGTERM to this process, say).
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    if any(code not in (0, 1) for code in codes):
        print(f"worker exit codes: {codes}", file=sys.stderr)


# -- status --------------------------------------------------------------------------------------

def _counts(slots) -> dict[str, int]:
    counts = {DONE: 0, PRUNED: 0, RUNNING: 0, FAILED: 0, LEFT: 0}
    for slot in slots.values():
        counts[slot.state] += 1
    return counts


def _failed(cell_plan) -> bool:
    return cell_plan.search_failed or any(s.state == FAILED for s in cell_plan.final.values())


def summary_line(storage_obj, experiment: Experiment) -> str:
    names = set(study_summaries(storage_obj))
    totals = {DONE: 0, PRUNED: 0, RUNNING: 0, FAILED: 0, LEFT: 0}
    for cell in experiment.cells():
        state = read_cell(storage_obj, experiment, cell, names)
        for slots in (state.search, state.final):
            for key, value in _counts(slots).items():
                totals[key] += value
    return (f"runs: {totals[DONE] + totals[PRUNED]} done ({totals[PRUNED]} pruned), {totals[RUNNING]} running, "
            f"{totals[FAILED]} failed, {totals[LEFT]} left")


def _phase_text(slots, waiting_for_search: bool = False) -> str:
    if not slots:
        return "-"
    c = _counts(slots)
    text = f"{c[DONE] + c[PRUNED]}/{len(slots)} done"
    if c[PRUNED]:
        text += f" ({c[PRUNED]} pruned)"
    for key in (RUNNING, FAILED):
        if c[key]:
            text += f", {c[key]} {key}"
    if c[LEFT]:
        text += f", {c[LEFT]} left" + (" (after search)" if waiting_for_search else "")
    return text


def status_rows(storage_obj, experiment: Experiment) -> list[dict]:
    names = set(study_summaries(storage_obj)) if storage_obj is not None else set()
    rows = []
    for cell in experiment.cells():
        state = read_cell(storage_obj, experiment, cell, names) if storage_obj is not None else None
        if state is None:
            state = CellPlan(cell, slots_of([], search_slots(experiment, cell), experiment.retries),
                             slots_of([], final_slots(experiment), experiment.retries))
        waiting = bool(state.search) and state.best is None and not state.search_failed
        best = state.best
        rows.append({
            "cell": cell.id, "search": _phase_text(state.search), "final": _phase_text(state.final, waiting),
            "best": f"{best.value:.2f}% {dict(best.params)}" if best is not None else "",
            "failures": [(phase, slot.name, slot.reason, len(slot.attempts))
                         for phase, slots in (("search", state.search), ("final", state.final))
                         for slot in slots.values() if slot.state == FAILED]
                        + ([("search", "all", "no search trial completed", 0)] if state.search_failed else []),
            "failed": _failed(state),
        })
    return rows


def print_status(storage_obj, experiment: Experiment, storage_name: str) -> int:
    rows = status_rows(storage_obj, experiment)
    width = max(len(r["cell"]) for r in rows)
    search_width = max(6, *(len(r["search"]) for r in rows))
    final_width = max(5, *(len(r["final"]) for r in rows))
    print(f"{'cell':{width}}  {'search':{search_width}}  {'final':{final_width}}  best search trial (val acc, params)")
    for r in rows:
        print(f"{r['cell']:{width}}  {r['search']:{search_width}}  {r['final']:{final_width}}  {r['best']}")
    failures = [(r["cell"], *f) for r in rows for f in r["failures"]]
    if failures:
        print("failed:")
        for cell, phase, slot, reason, attempts in failures:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            print(f"  {cell} {phase} {slot}{tries}: {reason}")
    if storage_obj is not None:
        print(summary_line(storage_obj, experiment))
    return 1 if any(r["failed"] for r in rows) else 0


def status(experiment_path: str, *, out: str | None = None, storage: str | None = None) -> int:
    experiment = load_experiment(experiment_path)
    out_dir = _out_dir(experiment, out)
    storage_name = _storage_name(storage, out_dir)
    storage_obj = None
    if is_url(storage_name) or Path(storage_name).is_file():
        storage_obj = open_storage(storage_name)
        if not check_stored_definition(storage_obj, experiment, storage_name):
            storage_obj = None
    print(f"experiment {experiment.name} ({experiment.source}), storage {redact_url(storage_name)}"
          + ("" if storage_obj is not None else ": not started"))
    print_status(storage_obj, experiment, storage_name)
    return 0
