"""How long a run trains under a budget: epochs, or forward samples matched to CE.

``epochs``: every method trains ``--epochs`` epochs, whatever it forwards per
step. ``samples``: every method gets the forward-sample count CE would use in
``--epochs`` epochs, so a method that forwards each new sample
``forward_passes_per_sample`` times (DLB, CS-KD: 2) takes that many times
fewer optimizer steps; the last epoch may be partial. The learning-rate
schedule is laid over the planned steps either way, so it always completes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from augbench.config import BUDGETS


@dataclass(frozen=True)
class BudgetPlan:
    """Steps and epochs one run trains.

    Attributes:
        steps_per_epoch: batches in one epoch of the method's sampler.
        planned_steps: optimizer steps the run takes in total.
        num_epochs: epochs the loop runs (the last one partial when
            ``planned_steps`` is not a multiple of ``steps_per_epoch``).
    """

    steps_per_epoch: int
    planned_steps: int
    num_epochs: int


def plan_budget(budget: str, epochs: int, steps_per_epoch: int, forward_passes_per_sample: int) -> BudgetPlan:
    """The steps and epochs a method trains for ``epochs`` under ``budget``."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r} (accepted: {', '.join(BUDGETS)})")
    passes = forward_passes_per_sample if budget == "samples" else 1
    planned_steps = max(1, round(epochs * steps_per_epoch / passes))
    return BudgetPlan(steps_per_epoch=steps_per_epoch, planned_steps=planned_steps,
                      num_epochs=math.ceil(planned_steps / steps_per_epoch))
