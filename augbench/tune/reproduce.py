"""The ``augbench train`` command line that reproduces a run of a tuned experiment."""

from __future__ import annotations

import shlex
from typing import Any

from augbench.config import RunConfig

#: RunConfig field -> ``augbench train`` flag. Fields without a flag must keep their defaults.
TRAIN_FLAGS = {
    "dataset": "--dataset", "model": "--model", "method": "--method", "recipe": "--recipe",
    "epochs": "--epochs", "budget": "--budget", "batch_size": "--batch-size", "lr": "--lr",
    "momentum": "--momentum", "weight_decay": "--weight-decay", "schedule": "--schedule",
    "milestones": "--milestones", "gamma": "--gamma", "warmup_epochs": "--warmup-epochs", "seed": "--seed",
    "val_fraction": "--val-fraction", "train_subset": "--train-subset", "label_noise": "--label-noise",
    "image_size": "--image-size",
    # Recorded with the run; every value it gave is also written out as a flag above, which wins.
    "protocol": "--protocol",
}


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def train_command(config: RunConfig, out: str) -> list[str]:
    """``["augbench", "train", ...]`` giving exactly ``config``, writing into ``out``."""
    default = RunConfig()
    for name in ("nesterov", "eval_batch_size"):
        if getattr(config, name) != getattr(default, name):
            raise ValueError(f"{name}={getattr(config, name)!r} has no augbench train flag")
    command = ["augbench", "train"]
    for name, flag in TRAIN_FLAGS.items():
        value = getattr(config, name)
        if value is None or value == []:
            continue
        command += [flag, *map(_text, value)] if isinstance(value, list) else [flag, _text(value)]
    for key, value in config.method_args.items():
        command += ["--method-arg", f"{key}={_text(value)}"]
    command.append("--channels-last" if config.channels_last else "--no-channels-last")
    if config.bf16:
        command.append("--bf16")
    return [*command, "--out", out]


def command_line(command: Any) -> str | None:
    """A command as one shell line: an argument list (as ``train_command`` returns it and records store it) or
    a string; None for none."""
    if command is None or command == []:
        return None
    if isinstance(command, (list, tuple)):
        return shlex.join(str(c) for c in command)
    return str(command)
