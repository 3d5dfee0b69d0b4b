"""The metrics a leaderboard can rank by: one registration each (name, label, record field, direction).

A metric is a number every finished result record holds. ``higher_is_better``
decides which way a difference is an improvement: the marks (▲ better,
▼ worse), the heatmap colours and the sort order all follow it, while the
numbers themselves stay plain differences ``method − CE`` in the metric's unit.
Adding a metric is one ``register(...)`` line; every output picks it up.
"""

from __future__ import annotations

from dataclasses import dataclass

from augbench.registry import add


@dataclass(frozen=True)
class Metric:
    """One leaderboard metric.

    Attributes:
        name: the ``--metric`` value and the key in CSV rows and entries.
        label: what the pages call it.
        short: its name on the metric selector and chart axes.
        field: the result-record field it is read from.
        unit: shown after numbers and axis names ("%", "nats").
        higher_is_better: False for losses and calibration errors.
        digits: decimals shown.
        heat_scale: the smallest difference a heatmap paints at full strength.
        resolution: the largest 95% half-width at which a difference counts as resolved (the
            leaderboard's target: 0.6 percentage points for accuracies and ECE); None: no target.
    """

    name: str
    label: str
    short: str
    field: str
    unit: str
    higher_is_better: bool
    digits: int = 2
    heat_scale: float = 0.5
    resolution: float | None = 0.6

    @property
    def difference_unit(self) -> str:
        """The unit of a difference: percentages differ by percentage points."""
        return "percentage points" if self.unit == "%" else self.unit

    def better(self, difference: float) -> bool:
        """Whether ``difference`` (new − reference) is an improvement."""
        return difference > 0 if self.higher_is_better else difference < 0

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "field": self.field, "unit": self.unit,
                "higher_is_better": self.higher_is_better}


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Makes ``metric`` a choice of ``--metric``, of the page's metric selector and of every output."""
    add(METRICS, metric.name, metric, "metric")
    return metric


register(Metric("test_acc", "test accuracy at the last epoch", "test accuracy", "test_acc", "%",
                higher_is_better=True))
register(Metric("test_acc_at_best_val", "test accuracy at the epoch of best validation accuracy",
                "test accuracy at best val", "test_acc_at_best_val", "%", higher_is_better=True))
# Guo et al. 2017 ("On calibration of modern neural networks"): NLL and 15-bin ECE, as augbench.engine.metrics writes.
register(Metric("test_nll", "test negative log-likelihood at the last epoch", "test NLL", "test_nll", "nats",
                higher_is_better=False, digits=3, heat_scale=0.02, resolution=None))
register(Metric("test_ece", "test expected calibration error (15 bins) at the last epoch", "test ECE", "test_ece",
                "%",
                higher_is_better=False))
