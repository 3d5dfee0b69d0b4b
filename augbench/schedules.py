"""Learning-rate schedules as a factor of the base rate, stepped every iteration.

A schedule is ``factor(progress)`` where progress is in epochs (fractional
within an epoch); the engine wraps it in a ``LambdaLR``. ``SCHEDULES`` is the
one list of schedule names: ``--schedule``, a run configuration's and an
experiment file's ``schedule`` accept exactly what is registered here, so a
schedule registered with :func:`register_schedule` (in this file, or by a
plugin) is usable everywhere.

The factories read the run configuration (``augbench.config.RunConfig``):
``warmup_epochs``, ``gamma`` and ``resolved_milestones()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from augbench.registry import registrar

#: (run configuration, total epochs) -> factor(progress in epochs)
ScheduleFactory = Callable[[Any, float], Callable[[float], float]]
SCHEDULES: dict[str, ScheduleFactory] = {}


#: Decorator: ``@register_schedule(NAME)`` makes a schedule factory available as ``schedule: NAME`` and
#: ``--schedule NAME``.
register_schedule = registrar(SCHEDULES, "schedule")


def _warmup(config, progress: float) -> float:
    if config.warmup_epochs > 0 and progress < config.warmup_epochs:
        return (progress + 1e-12) / config.warmup_epochs
    return 1.0


@register_schedule("multistep")
def multistep(config, total_epochs: float):
    """Multiply by ``gamma`` at each milestone epoch, as the official DLB code's MultiStepLR."""
    milestones = config.resolved_milestones()

    def factor(progress: float) -> float:
        passed = sum(1 for m in milestones if math.floor(progress + 1e-9) >= m)
        return _warmup(config, progress) * config.gamma ** passed

    return factor


@register_schedule("cosine")
def cosine(config, total_epochs: float):
    """Linear warmup over ``warmup_epochs``, then half a cosine from 1 to 0 (Loshchilov & Hutter 2017)."""
    warm = config.warmup_epochs

    def factor(progress: float) -> float:
        if progress < warm:
            return _warmup(config, progress)
        t = (progress - warm) / max(total_epochs - warm, 1e-12)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return factor
