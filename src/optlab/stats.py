r"""Statistics over seeds that a reviewer accepts: intervals, paired differences, the noise of one
test accuracy.

* :func:`mean_interval` — the mean over seeds with a Student-t 95 % interval,
  :math:`\bar x \pm t_{0.975,\,n-1}\, s/\sqrt n` (``s`` the sample standard deviation);
* :func:`paired_difference` — the same interval for the per-seed differences ``a_i - b_i`` of two
  settings that share seeds (same initialization and data order), which removes the seed's own
  effect and is the comparison the text should make;
* :func:`binomial_se` — the standard error :math:`\sqrt{p(1-p)/n}` of one accuracy measured on
  ``n`` images (about 0.17 points at 97 % on MNIST's 10,000 test images);
* :func:`verdict` — "resolved" only when the interval excludes zero (and, given a ``noise``
  level, the difference exceeds it), else "unresolved". :func:`optlab.results.compare_final`
  passes two binomial standard errors of one test accuracy as the noise.

With 3 seeds the t quantile is 4.30, so intervals are wide: a difference smaller than its interval
is reported as unresolved, never as a ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "binomial_se", "mean_interval", "paired_difference", "verdict"]


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds and its two-sided interval at ``level`` (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95
    method: str = "t"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes(self, value: float = 0.0) -> bool:
        """True when the whole interval lies on one side of ``value``."""
        return bool(self.low > value or self.high < value)

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4g} (n = {self.n}, no interval)"
        bounds = f"[{self.low:.4g}, {self.high:.4g}]"
        return f"{self.mean:.4g} {bounds} ({self.level:.0%} t, n = {self.n})"


def _t_quantile(level: float, dof: int) -> float:
    from scipy.stats import t  # scipy is a dependency; imported here to keep `import optlab` light

    return float(t.ppf(0.5 + level / 2, dof))


def mean_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> Interval:
    """Mean of ``values`` (one per seed) with the Student-t interval at ``level``.

    Non-finite values (a diverged seed) are not dropped silently: the result is NaN, and the caller
    reports the divergence. Fewer than two values give NaN bounds."""
    if not 0 < level < 1:
        raise ValueError(f"mean_interval: level must be in (0, 1); got {level}")
    x = np.asarray(values, dtype=float).ravel()
    n = x.size
    if n == 0:
        raise ValueError("mean_interval: no values (no finished seeds)")
    mean = float(x.mean())
    if n < 2 or not np.all(np.isfinite(x)):
        return Interval(mean, math.nan, math.nan, n, level)
    half = _t_quantile(level, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """Interval of the mean of ``a_i - b_i`` over seeds ``i`` shared by both settings."""
    xa, xb = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if xa.shape != xb.shape:
        raise ValueError(f"paired_difference: the settings need the same seeds; got {xa.size} "
                         f"and {xb.size} values")
    return mean_interval(xa - xb, level)


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` independent examples."""
    if not 0 <= accuracy <= 1:
        raise ValueError(f"binomial_se: accuracy must be in [0, 1]; got {accuracy}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"binomial_se: n must be an integer >= 1 (a count of examples); "
                         f"got {n!r}")
    return math.sqrt(accuracy * (1 - accuracy) / n)


def verdict(diff: Interval, noise: float = 0.0) -> str:
    """``"resolved"`` when the interval of a difference excludes 0 and the mean difference is
    larger than ``noise`` (e.g. two binomial standard errors of one accuracy), else
    ``"unresolved"`` (an interval with NaN bounds, from fewer than two seeds, is unresolved)."""
    if not noise >= 0:
        raise ValueError(f"verdict: noise must be >= 0; got {noise}")
    return "resolved" if diff.excludes(0.0) and abs(diff.mean) > noise else "unresolved"
