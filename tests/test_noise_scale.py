"""optlab.noise_scale: the gradient noise scale from per-example gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optlab import mlp
from optlab.noise_scale import mlp_noise_scale, noise_scale_from_sums


def test_estimates_are_unbiased_on_a_known_distribution():
    """g_i ~ N(G, diag(s^2)): tr Σ = Σ s^2 and ‖G‖² known; the estimates average to them over
    many small samples (the plain ‖ḡ‖² would be biased up by tr Σ / n)."""
    rng = np.random.default_rng(0)
    G, s = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, 2.0])
    n, reps = 8, 20_000
    g = G + s * rng.standard_normal((reps, n, 3))
    est = [noise_scale_from_sums(gi.sum(0), float((gi**2).sum()), n) for gi in g]
    trace = np.mean([e.trace_cov for e in est])
    grad_sq = np.mean([e.grad_sq for e in est])
    assert trace == pytest.approx(np.sum(s**2), rel=0.02)
    assert grad_sq == pytest.approx(np.sum(G**2), rel=0.05)
    naive = np.mean([np.sum(gi.mean(0) ** 2) for gi in g])
    assert naive > np.sum(G**2) + 0.8 * np.sum(s**2) / n  # what the correction removes


def test_mlp_noise_scale_matches_explicit_per_example_gradients():
    torch.manual_seed(0)
    flat = mlp.init_flat(0, dtype=torch.float64)
    x = torch.rand(20, 784, dtype=torch.float64)
    y = torch.full((20,), 3)  # one class: a clear mean gradient (random labels would have none)
    rows = []
    for i in range(20):  # one example at a time, with the package's hand-written backward
        _, g = mlp.loss_and_grad(flat[None], x[i : i + 1], y[i : i + 1])
        rows.append(g[0])
    g = torch.stack(rows)
    direct = noise_scale_from_sums(g.sum(0), float((g * g).sum()), 20)
    ns = mlp_noise_scale(flat, x, y)
    assert ns.trace_cov == pytest.approx(direct.trace_cov, rel=1e-9)
    assert ns.grad_sq == pytest.approx(direct.grad_sq, rel=1e-9)
    assert ns.b_noise == pytest.approx(direct.trace_cov / direct.grad_sq, rel=1e-9)
    assert ns.trace_cov > 0 and ns.grad_sq > 0


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        noise_scale_from_sums(np.ones(3), 3.0, 1)
    with pytest.raises(ValueError, match="flat must have shape"):
        mlp_noise_scale(torch.zeros(5), torch.zeros(4, 784), torch.zeros(4, dtype=torch.long))
    flat = mlp.init_flat(0)
    with pytest.raises(ValueError, match="n >= 2"):
        mlp_noise_scale(flat, torch.zeros(1, 784), torch.zeros(1, dtype=torch.long))


def test_estimates_equal_mccandlish_two_batch_formulas():
    """With B_small = 1 (each example's |g_i|², averaged) and B_big = n (|ḡ|²), McCandlish et
    al.'s Appendix A estimators of |G|² and tr Σ are the ones noise_scale_from_sums returns."""
    rng = np.random.default_rng(1)
    n = 13
    g = rng.normal(0.3, 1.7, size=(n, 5))
    small = float(np.mean(np.sum(g**2, axis=1)))  # |g_{B_small}|², B_small = 1
    big = float(np.sum(g.mean(0) ** 2))  # |g_{B_big}|², B_big = n
    grad_sq = (n * big - 1 * small) / (n - 1)
    trace = (small - big) / (1 / 1 - 1 / n)
    est = noise_scale_from_sums(g.sum(0), float((g**2).sum()), n)
    assert est.grad_sq == pytest.approx(grad_sq, rel=1e-12)
    assert est.trace_cov == pytest.approx(trace, rel=1e-12)
