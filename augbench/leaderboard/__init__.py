"""The leaderboard: result records in, honest tables out (Markdown, HTML, CSV, one JSON entry per cell).

Reads records from an experiment folder, an Optuna storage or a W&B project
(``sources``), groups them into cells and computes Student-t intervals and
gains over CE paired by seed (``aggregate``, ``stats``), and renders them
(``render_*``). It imports nothing that trains.
"""

from augbench.leaderboard.aggregate import METRICS, Cell, Leaderboard, Setting, Table, aggregate
from augbench.leaderboard.build import build
from augbench.leaderboard.sources import SOURCES, load_records
from augbench.leaderboard.stats import mean_interval, paired_gain, t_quantile

__all__ = ["METRICS", "SOURCES", "Cell", "Leaderboard", "Setting", "Table", "aggregate", "build", "load_records",
           "mean_interval", "paired_gain", "t_quantile"]
