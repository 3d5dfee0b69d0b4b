"""Tuning grids with Optuna: every cell searched on validation data, then retrained with the final seeds.

Data flow: an experiment file (:mod:`~augbench.tune.experiment`) names the
cells of a grid; planning (:mod:`~augbench.tune.plan`) turns each cell into
slots — search trials and final runs — held as Optuna trials in a storage
(:mod:`~augbench.tune.storage`); workers (:mod:`~augbench.tune.worker`) claim
waiting trials and train each with ``augbench.engine.train``, pruned by
:mod:`~augbench.tune.pruning` and logged to W&B
(:mod:`augbench.track.wandb_logger`); :mod:`~augbench.tune.coordination`
keeps workers on many machines from running anything twice and notices a
worker that died. :mod:`~augbench.tune.runner` is what the ``tune``,
``worker`` and ``status`` commands do.

A leaderboard reads results back with :func:`augbench.tune.storage.final_records`,
which imports nothing that trains.
"""
