"""Tuning grids with Optuna: every cell searched on validation data, then retrained with the final seeds.

Data flow: an experiment file (:mod:`~augbench.tune.experiment`, read field
by field through :mod:`~augbench.tune.schema`) names the cells of a grid
(:mod:`~augbench.tune.grid`), each with a search space
(:mod:`~augbench.tune.space`) and a pruner (:mod:`~augbench.tune.pruning`),
checked before anything runs (:mod:`~augbench.tune.preflight`); planning
(:mod:`~augbench.tune.plan`) turns each cell into slots — search trials and
final runs — held as Optuna trials in a storage
(:mod:`~augbench.tune.storage`); workers (:mod:`~augbench.tune.worker`) claim
waiting trials and train each with ``augbench.engine.train``, pruned by
the pruner :mod:`~augbench.tune.pruning` names and logged to W&B
(:mod:`augbench.track.wandb_logger`); :mod:`~augbench.tune.coordination`
keeps workers on many machines from running anything twice and notices a
worker that died. :mod:`~augbench.tune.runner` is what the ``tune``,
``worker`` and ``status`` commands do; :mod:`~augbench.tune.optuna_adapter`
holds the one thing taken from Optuna that it does not document.

A leaderboard reads results back with :func:`augbench.tune.storage.final_records`,
which imports nothing that trains.
"""
