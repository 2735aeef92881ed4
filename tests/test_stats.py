"""optlab.stats: intervals over seeds that have the coverage they claim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from optlab.stats import binomial_se, mean_interval, paired_difference, verdict


def test_t_interval_matches_scipy():
    x = [0.971, 0.975, 0.969, 0.978, 0.973]
    iv = mean_interval(x)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert iv.mean == pytest.approx(np.mean(x))
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    samples = rng.normal(0.97, 0.004, size=(4000, 3))  # 3 seeds, as the presets run
    covered = np.mean([mean_interval(s).excludes(0.97) is False for s in samples])
    assert abs(covered - 0.95) < 0.015  # binomial s.e. of the coverage is 0.0034


def test_pairing_removes_the_seed_effect():
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 0.01, size=5)  # a shared init moves both settings
    a = 0.970 + seed_effect + rng.normal(0, 0.0005, size=5)
    b = 0.968 + seed_effect + rng.normal(0, 0.0005, size=5)
    unpaired = mean_interval(a).half_width + mean_interval(b).half_width
    paired = paired_difference(a, b)
    assert paired.half_width < unpaired / 5
    assert verdict(paired) == "resolved" and paired.low > 0


def test_small_differences_are_unresolved_and_diverged_seeds_are_not_dropped():
    assert verdict(paired_difference([0.97, 0.96, 0.98], [0.975, 0.955, 0.97])) == "unresolved"
    iv = mean_interval([0.97, float("nan"), 0.96])
    assert math.isnan(iv.mean) and math.isnan(iv.low)
    single = mean_interval([0.97])
    assert single.n == 1 and math.isnan(single.high) and "no interval" in str(single)


def test_binomial_standard_error_of_one_mnist_test_accuracy():
    assert binomial_se(0.97, 10_000) == pytest.approx(0.0017, abs=1e-4)
    with pytest.raises(ValueError, match="accuracy must be in"):
        binomial_se(97.0, 10_000)
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([1, 2, 3], [1, 2])


def test_a_difference_inside_the_noise_is_unresolved_even_when_the_interval_excludes_zero():
    consistent = paired_difference([0.9705, 0.9722, 0.9691], [0.9700, 0.9716, 0.9687])
    assert consistent.excludes(0.0) and verdict(consistent) == "resolved"
    two_se = 2 * binomial_se(0.97, 10_000)  # 0.34 points; the gap is 0.05
    assert verdict(consistent, noise=two_se) == "unresolved"
    assert verdict(consistent, noise=0.0001) == "resolved"
    with pytest.raises(ValueError, match="noise must be >= 0"):
        verdict(consistent, noise=float("nan"))
