"""The validated configuration of one training run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from augbench.errors import UsageError

BUDGETS = ("epochs", "samples")
SCHEDULES = ("multistep", "cosine")


@dataclass
class RunConfig:
    """Everything that determines a run's result (and nothing that doesn't).

    ``milestones`` are epochs for the ``multistep`` schedule; empty means the
    official DLB recipe scaled to the run: decay by ``gamma`` at 50% and 75%
    of the epochs.
    """

    dataset: str = "fashion_mnist"
    model: str = "cifar_resnet8"
    method: str = "ce"
    method_args: dict[str, Any] = field(default_factory=dict)
    recipe: str = "baseline"
    epochs: int = 5
    budget: str = "epochs"
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    seed: int = 0
    val_fraction: float = 0.1
    train_subset: int | None = None
    image_size: int | None = None
    label_noise: str | None = None
    channels_last: bool = True
    bf16: bool = False
    eval_batch_size: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"{source}: unknown field '{unknown[0]}' (accepted: {', '.join(sorted(names))})")
        return cls(**data)

    def hyperparameters(self) -> dict[str, Any]:
        keys = ("lr", "batch_size", "momentum", "nesterov", "weight_decay", "schedule", "milestones", "gamma",
                "warmup_epochs", "channels_last", "bf16")
        return {k: getattr(self, k) for k in keys}

    def validate(self) -> None:
        """Checks values that need no data or registry; raises UsageError naming the flag."""
        checks = [
            (self.epochs >= 1, "--epochs", "an integer >= 1"),
            (self.batch_size >= 2, "--batch-size", "an integer >= 2"),
            (self.lr > 0, "--lr", "a number > 0"),
            (0 <= self.momentum < 1, "--momentum", "a number in [0, 1)"),
            (self.weight_decay >= 0, "--weight-decay", "a number >= 0"),
            (self.schedule in SCHEDULES, "--schedule", " or ".join(SCHEDULES)),
            (self.budget in BUDGETS, "--budget", " or ".join(BUDGETS)),
            (0 < self.gamma <= 1, "--gamma", "a number in (0, 1]"),
            (0 <= self.warmup_epochs < self.epochs, "--warmup-epochs", "a number in [0, --epochs)"),
            (0 <= self.val_fraction < 1, "--val-fraction", "a number in [0, 1)"),
            (self.train_subset is None or self.train_subset >= 1, "--train-subset", "an integer >= 1"),
            (self.image_size is None or 8 <= self.image_size <= 4096, "--image-size",
             "an integer in [8, 4096], or none for the data set's native size"),
            (self.eval_batch_size >= 1, "--eval-batch-size", "an integer >= 1"),
            (all(0 < m for m in self.milestones), "--milestones", "positive epoch numbers"),
        ]
        for ok, flag, accepted in checks:
            if not ok:
                raise UsageError(f"{flag}: got {getattr(self, flag[2:].replace('-', '_'))!r}; accepted: {accepted}")

    def resolved_milestones(self) -> list[int]:
        if self.milestones:
            return sorted(self.milestones)
        return sorted({max(1, round(self.epochs * 0.5)), max(1, round(self.epochs * 0.75))})
