"""The leaderboard: result records in, honest tables out (Markdown, HTML, CSV, one JSON entry per cell).

Reads records from an experiment folder, an Optuna storage or a W&B project
(``sources``), groups them into cells and computes Student-t intervals and
gains over CE and recipe x method interactions paired by seed, with Holm's
correction per table (``aggregate``, ``stats``), for every registered metric
(``metrics``), and renders them
(``render_*``). It imports nothing that trains.
"""

from augbench.leaderboard.aggregate import (
           BudgetPair,
           Cell,
           Interaction,
           Leaderboard,
           Setting,
           Table,
           aggregate,
)
from augbench.leaderboard.build import build
from augbench.leaderboard.metrics import METRICS, Metric
from augbench.leaderboard.sources import SOURCES, load_records
from augbench.leaderboard.stats import (
           holm_adjust,
           holm_family,
           mean_interval,
           paired_contrast,
           paired_gain,
           t_quantile,
)

__all__ = ["METRICS", "SOURCES", "BudgetPair", "Cell", "Interaction", "Leaderboard", "Metric", "Setting", "Table",
           "aggregate", "build", "holm_adjust", "holm_family", "load_records", "mean_interval", "paired_contrast",
           "paired_gain", "t_quantile"]
