"""The Optuna samplers a search can use (``search.sampler`` in an experiment file), one registration each.

A sampler is built for every trial from a seed that depends only on the
cell, the slot and the attempt (``augbench.tune.worker``), so a search
draws the same parameters whichever worker runs which trial.

- ``tpe`` (the default): Tree-structured Parzen Estimator, Bergstra, Bardenet,
  Bengio & Kégl, "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011;
  Optuna's ``TPESampler`` with ``constant_liar`` so that parallel workers do
  not all try the same point. Its first 10 trials are random (Optuna's
  ``n_startup_trials``).
- ``random``: independent uniform draws (Bergstra & Bengio, JMLR 2012),
  Optuna's ``RandomSampler``; the baseline a search should beat.
- ``qmc``: scrambled Sobol points, Optuna's ``QMCSampler``, which cover a small
  budget of trials more evenly than random ones.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from augbench.registry import registrar

#: Name -> ``seed -> optuna sampler``.
SEARCH_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {}
#: Decorator: ``@register_search_sampler(NAME)`` makes a sampler factory a choice of ``search.sampler``.
register_search_sampler = registrar(SEARCH_SAMPLERS, "search sampler")
DEFAULT_SAMPLER = "tpe"


@register_search_sampler("tpe")
def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


@register_search_sampler("random")
def _random(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@register_search_sampler("qmc")
def _qmc(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
