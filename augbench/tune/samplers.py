"""The Optuna samplers a search can use (``search.sampler`` in an experiment file), one registration each.

A sampler is built for every trial from a :class:`SamplerDraw`: seeds that
depend only on the cell, the slot and the attempt (``build_sampler``), so a
search draws the same parameters whichever worker runs which trial.

- ``tpe`` (the default): Tree-structured Parzen Estimator, Bergstra, Bardenet,
  Bengio & Kégl, "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011;
  Optuna's ``TPESampler`` with ``constant_liar`` so that parallel workers do
  not all try the same point. Its first 10 trials are random (Optuna's
  ``n_startup_trials``): a search of 10 trials or fewer is a random search.
- ``random``: independent uniform draws (Bergstra & Bengio, JMLR 2012),
  Optuna's ``RandomSampler``; the baseline a search should beat.
- ``qmc``: slot ``trial-k`` of a cell takes point k of one scrambled Sobol
  sequence per cell (SciPy's ``scipy.stats.qmc.Sobol``, whose scrambling is a
  random linear matrix scramble with a digital shift),
  one coordinate per searched parameter in the order the space declares them.
  The first 2^m points of a Sobol sequence are balanced (each of the 2^m
  equal slices of every coordinate holds one point), so 8 or 16 trials cover
  a small space more evenly than as many random draws. The point belongs to
  the slot, not to the order in which workers ask, so it is the same with
  one worker or many. (Optuna's own ``QMCSampler`` counts asks in the study
  and its scramble follows its seed: seeded per trial, as the other samplers
  are here, every trial would be the first point of its own sequence, that
  is a random draw.)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution

from augbench.registry import registrar


@dataclass(frozen=True)
class SamplerDraw:
    """What one trial's sampler is built from."""

    seed: int            # from (cell, slot, attempt): this trial's own random stream
    cell_seed: int       # from the cell alone: one sequence shared by all its slots
    index: int           # k for slot trial-k (0 for a final run): the slot's place in that sequence
    names: tuple[str, ...]  # the searched parameters, in the order the space declares them


#: Name -> ``SamplerDraw -> optuna sampler``.
SEARCH_SAMPLERS: dict[str, Callable[[SamplerDraw], optuna.samplers.BaseSampler]] = {}
#: Decorator: ``@register_search_sampler(NAME)`` makes a sampler factory a choice of ``search.sampler``.
register_search_sampler = registrar(SEARCH_SAMPLERS, "search sampler")
DEFAULT_SAMPLER = "tpe"


def _hash_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:4], "big")


def build_sampler(name: str, cell_id: str, slot: str, attempt: int, names: tuple[str, ...]):
    """The sampler ``name`` for one attempt of one slot of cell ``cell_id``."""
    index = int(slot.split("-", 1)[1]) if slot.startswith("trial-") else 0
    draw = SamplerDraw(seed=_hash_seed(cell_id, slot, attempt), cell_seed=_hash_seed(cell_id), index=index,
                       names=tuple(names))
    return SEARCH_SAMPLERS[name](draw)


@register_search_sampler("tpe")
def _tpe(draw: SamplerDraw) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=draw.seed, constant_liar=True)


@register_search_sampler("random")
def _random(draw: SamplerDraw) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=draw.seed)


def sobol_point(dimensions: int, seed: int, index: int) -> list[float]:
    """Point ``index`` (from 0) of the scrambled Sobol sequence of ``seed`` in [0, 1)^dimensions."""
    from scipy.stats import qmc  # slow to import; only a qmc search needs it

    engine = qmc.Sobol(dimensions, scramble=True, seed=seed)
    if index:
        engine.fast_forward(index)
    return [float(u) for u in engine.random(1)[0]]


def _from_unit(u: float, dist: BaseDistribution) -> Any:
    """The value of ``dist`` at quantile ``u`` of its range (log-uniform for a log range, on its step grid)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    is_int = isinstance(dist, optuna.distributions.IntDistribution)
    low, high = dist.low, dist.high
    if dist.log:
        # An integer range widens by half a step on each side, so each integer gets its share of the log scale.
        lo, hi = (math.log(low - 0.5), math.log(high + 0.5)) if is_int else (math.log(low), math.log(high))
        value = math.exp(lo + u * (hi - lo))
    elif dist.step is not None:
        steps = round((high - low) / dist.step)
        value = low + min(int(u * (steps + 1)), steps) * dist.step
    else:
        value = low + u * (high - low)
    value = min(max(value, low), high)
    return int(round(value)) if is_int else float(value)


class SobolSlotSampler(optuna.samplers.BaseSampler):
    """Draws every parameter of one trial from coordinate j (the parameter's place in ``names``) of one point."""

    def __init__(self, draw: SamplerDraw):
        self.names = draw.names
        self.point = sobol_point(max(len(draw.names), 1), draw.cell_seed, draw.index)
        self.fallback = optuna.samplers.RandomSampler(seed=draw.seed)  # a parameter outside the declared space

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def sample_independent(self, study, trial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if param_name not in self.names:
            return self.fallback.sample_independent(study, trial, param_name, param_distribution)
        return _from_unit(self.point[self.names.index(param_name)], param_distribution)


@register_search_sampler("qmc")
def _qmc(draw: SamplerDraw) -> optuna.samplers.BaseSampler:
    return SobolSlotSampler(draw)
