"""Training one run into its run folder: fresh, resumed from its checkpoint, or already finished.

:func:`train` is what ``augbench train`` and every tuned trial call. It
refuses a folder that holds another configuration, writes ``config.json``,
and under torchrun starts the processes' group (DDP) around the run.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from augbench.augment.recipe import Recipe
from augbench.config import RunConfig
from augbench.engine import distributed
from augbench.engine.build import build
from augbench.engine.callbacks import Callback
from augbench.engine.distributed import World
from augbench.engine.run import Run
from augbench.errors import UsageError
from augbench.run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    read_json,
    write_json_atomic,
)


def train(config: RunConfig, out_dir: str | Path, *, resume: bool = False, data_root: str | None = None,
          download: bool = False, device: str = "auto", num_workers: int = 0, mp_context: str | None = None,
          recipe: Recipe | None = None, callbacks: list[Callback] = (), progress: bool = True,
          log: Callable[[str], None] = print, command: list[str] | None = None,
          extra_record: dict[str, Any] | None = None,
          dist_timeout: float = distributed.DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Trains one run into ``out_dir`` and returns its result record.

    Rerunning with the same configuration resumes from the last checkpoint
    (``resume=True`` insists that there is one); a finished run returns its
    record without training. Bad input raises UsageError before anything is
    written.

    Started by torchrun with more than one process, the processes train the
    run together (DDP, see the module docstring); ``dist_timeout`` bounds the
    wait for the rendezvous and for the other ranks.
    """
    out = Path(out_dir)
    world = distributed.world_from_env()
    kwargs = dict(resume=resume, data_root=data_root, download=download, num_workers=num_workers,
                  mp_context=mp_context, recipe=recipe, callbacks=callbacks, progress=progress, log=log,
                  command=command, extra_record=extra_record)
    if not world.enabled:
        return _train(config, out, world, device=device, **kwargs)
    device = distributed.device_for(world, device)
    distributed.check_request(world, config.batch_size, config.sync_bn, device)
    distributed.init(world, torch.device(device), dist_timeout)
    previous = signal.getsignal(signal.SIGTERM)
    distributed.raise_on_sigterm()
    try:
        return _train(config, out, world, device=device, **kwargs)
    finally:
        signal.signal(signal.SIGTERM, previous)
        distributed.shutdown()


def _train(config: RunConfig, out: Path, world: World, *, resume: bool, data_root: str | None, download: bool,
           device: str, num_workers: int, mp_context: str | None, recipe: Recipe | None,
           callbacks: list[Callback], progress: bool, log: Callable[[str], None], command: list[str] | None,
           extra_record: dict[str, Any] | None) -> dict[str, Any]:
    existing = _on_main(world, lambda: _existing_run(out, config, resume))
    if existing == "finished":
        return _on_main(world, lambda: read_json(out / RESULT_FILE))
    setup = build(config, data_root=data_root, download=download, device=device, num_workers=num_workers,
                  mp_context=mp_context, recipe=recipe, world=world)

    def prepare_folder() -> None:
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            if existing is None:
                write_json_atomic(out / CONFIG_FILE, config.to_dict())
                (out / METRICS_FILE).write_text("")
        except OSError as err:
            if created:
                shutil.rmtree(out, ignore_errors=True)
            raise UsageError(f"--out {out}: cannot write there ({err.strerror})") from None

    _on_main(world, prepare_folder)
    run = Run(setup, out, callbacks=callbacks, progress=progress, log=log, command=command,
              extra_record=extra_record)
    return run.execute(resume=existing == "resume")


def _on_main(world: World, fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0 alone (it reads or writes the run folder); its result, or UsageError, on every rank."""
    if not world.enabled:
        return fn()
    outcome = None
    if world.is_main:
        try:
            outcome = ("ok", fn())
        except UsageError as err:
            outcome = ("error", str(err))
    outcome = distributed.broadcast(outcome)
    if outcome[0] == "error":
        raise UsageError(outcome[1])
    return outcome[1]


def _existing_run(out: Path, config: RunConfig, resume: bool) -> str | None:
    """None (fresh), "resume" (a checkpoint for this config) or "finished"; UsageError on a conflict."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        if resume:
            raise UsageError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE})")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out}: folder exists, is not empty and is not an augbench run folder")
        return None
    saved = read_json(config_path)
    current = json.loads(json.dumps(config.to_dict()))
    if saved != current:
        differing = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise UsageError(f"--out {out}: holds a run with a different configuration ({', '.join(differing)} "
                         f"differ); use another --out or the same flags to resume it")
    if (out / RESULT_FILE).exists() and not read_json(out / RESULT_FILE).get("resumable"):
        return "finished"
    # A run whose rank failed (its record says resumable) continues like an interrupted one.
    if (out / CHECKPOINT_FILE).exists():
        return "resume"
    if resume:
        raise UsageError(f"--resume: {out} has no checkpoint yet (the run stopped before its first epoch ended)")
    # Config written but no epoch finished: start over in the same folder.
    (out / METRICS_FILE).write_text("")
    return None
