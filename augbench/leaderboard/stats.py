"""Statistics for the leaderboard: Student-t intervals over seeds and gains paired by seed.

Every number on the leaderboard is a mean over seeds with its 95% interval

    mean ± t_{0.975, n-1} · s / sqrt(n),    s = sample standard deviation (n - 1 denominator),

and a method's gain over CE is the same interval over the per-seed
differences d_s = acc_method(s) - acc_ce(s) (a paired t interval, Student 1908),
so seed-to-seed variation shared by both methods cancels. With n = 1 there is
no interval. A gain counts as real only when its interval excludes zero.

An interval over n >= 2 identical differences (s = 0) has zero width and
t = mean / 0: it says nothing about the spread, so it is *degenerate*: reported
as such, never significant and never tested. The two-sided p-value of the
paired t test (Student 1908) is

    t = mean / (s / sqrt(n)),    p = P(|T_{n-1}| >= |t|) = I_{(n-1)/(n-1+t^2)}((n-1)/2, 1/2),

so "interval excludes zero" and "p < 0.05" agree. A table that shows m tested
intervals corrects for multiplicity with Holm's step-down procedure (Holm 1979,
"A simple sequentially rejective multiple test procedure", Scand. J. Statist.
6:65-70): sort the p-values p_(1) <= ... <= p_(m); the adjusted value is

    p~_(i) = min(1, max_{j <= i} (m - j + 1) p_(j)),

and an interval keeps its Holm mark when p~ < 0.05; the family-wise error rate
is then at most 0.05 with no assumption about how the tests depend on each other.

The t quantile is computed here (regularized incomplete beta by Lentz's
continued fraction, inverted by bisection) so the leaderboard needs no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
# Differences of recorded percentages that agree to this relative precision are identical (float rounding).
_DEGENERATE_SD = 1e-9


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b) (Numerical Recipes, 3rd ed., section 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _incomplete_beta(1.0 - x, b, a)
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``t_quantile(0.975, 2)`` = 4.302653)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Interval:
    """A mean over n values with its Student-t interval; ``half_width`` is None when n < 2."""

    mean: float
    n: int
    sd: float | None
    half_width: float | None

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    @property
    def degenerate(self) -> bool:
        """n >= 2 values that are all the same (s = 0 up to float rounding): a zero-width interval that means nothing."""
        return self.sd is not None and self.sd <= _DEGENERATE_SD * max(1.0, abs(self.mean))

    @property
    def excludes_zero(self) -> bool:
        """True only when there is a real (not degenerate) interval and zero lies outside it."""
        return self.half_width is not None and not self.degenerate and (self.low > 0 or self.high < 0)

    @property
    def p_value(self) -> float | None:
        """Two-sided p of the one-sample t test of mean 0; None with no interval or a degenerate one."""
        if self.sd is None or self.degenerate:
            return None
        df = self.n - 1
        t = self.mean / (self.sd / math.sqrt(self.n))
        return min(1.0, _incomplete_beta(df / (df + t * t), df / 2.0, 0.5))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "n": self.n, "sd": self.sd, "half_width": self.half_width, "low": self.low,
                "high": self.high, "confidence": CONFIDENCE, "degenerate": self.degenerate,
                "p_value": self.p_value}


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval | None:
    """Mean ± t_{(1+confidence)/2, n-1} · s/sqrt(n); None for no values, no interval for one."""
    n = len(values)
    if n == 0:
        return None
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, 1, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half_width = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, n, sd, half_width)


@dataclass(frozen=True)
class PairedGain:
    """A method's gain over a baseline, paired by seed."""

    interval: Interval
    seeds: tuple[int, ...]
    differences: tuple[float, ...]

    @property
    def significant(self) -> bool:
        return self.interval.excludes_zero

    @property
    def degenerate(self) -> bool:
        return self.interval.degenerate

    def to_dict(self) -> dict:
        return {**self.interval.to_dict(), "significant": self.significant, "seeds": list(self.seeds),
                "differences": list(self.differences)}


def paired_contrast(terms: Sequence[tuple[float, Mapping[int, float]]],
                    confidence: float = CONFIDENCE) -> PairedGain | None:
    """Interval of ``sum_k weight_k * values_k(s)`` over the seeds every term has; None when they share none.

    ``[(1, method), (-1, baseline)]`` is a paired gain; the interaction of a recipe R with a method M is
    ``[(1, R·M), (-1, base·M), (-1, R·CE), (1, base·CE)]``, one paired difference of differences per seed.
    """
    seeds = tuple(sorted(set.intersection(*(set(values) for _, values in terms))))
    if not seeds:
        return None
    differences = tuple(math.fsum(weight * values[s] for weight, values in terms) for s in seeds)
    return PairedGain(mean_interval(differences, confidence), seeds, differences)


def paired_gain(method_by_seed: Mapping[int, float], baseline_by_seed: Mapping[int, float],
                confidence: float = CONFIDENCE) -> PairedGain | None:
    """Interval of ``method(s) - baseline(s)`` over the seeds both have; None when they share none."""
    return paired_contrast([(1.0, method_by_seed), (-1.0, baseline_by_seed)], confidence)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: p~_(i) = min(1, max_{j<=i} (m - j + 1) p_(j)) (Holm 1979)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda k: p_values[k])
    adjusted, running = [0.0] * m, 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[k]))
        adjusted[k] = running
    return adjusted


@dataclass(frozen=True)
class Family:
    """The intervals one table shows, corrected together for multiplicity (Holm 1979).

    ``adjusted`` maps each shown key to its Holm-adjusted p-value, or None when it was not tested (one seed,
    or degenerate). ``tested`` is Holm's m.
    """

    adjusted: dict[Hashable, float | None]
    shown: int
    tested: int
    degenerate: int

    def holm_p(self, key: Hashable) -> float | None:
        return self.adjusted.get(key)

    def holm_significant(self, key: Hashable) -> bool:
        p = self.adjusted.get(key)
        return p is not None and p < ALPHA


def holm_family(gains: Mapping[Hashable, PairedGain | None]) -> Family:
    """Holm's correction over every gain a table shows; gains without a p-value are shown but not tested."""
    shown = {key: g for key, g in gains.items() if g is not None}
    tested = {key: p for key, g in shown.items() if (p := g.interval.p_value) is not None}
    adjusted: dict[Hashable, float | None] = {key: None for key in shown}
    adjusted.update(zip(tested, holm_adjust(list(tested.values()))))
    return Family(adjusted, len(shown), len(tested), sum(g.degenerate for g in shown.values()))
