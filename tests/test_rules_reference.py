"""Rules without a ``torch.optim`` twin against plain loops written from their papers."""

from __future__ import annotations

import numpy as np
import pytest

from optlab import make_optimizer
from optlab.rules import RULES, get_rule


def _lion_algorithm_2(w, grads, lr, beta1, beta2, wd):
    """Chen et al. (2023), Algorithm 2, one coordinate at a time, in plain Python floats."""
    w, m = w.tolist(), [0.0] * len(w)
    for g in grads:
        for i, gi in enumerate(g.tolist()):
            update = beta1 * m[i] + (1 - beta1) * gi  # interpolation
            sign = (update > 0) - (update < 0)
            w[i] = w[i] - lr * (sign + wd * w[i])  # decoupled decay, times lr
            m[i] = beta2 * m[i] + (1 - beta2) * gi  # momentum update
    return np.array(w)


def test_every_rule_without_a_twin_has_a_reference_here():
    assert {n for n, r in RULES.items() if r.torch_twin is None} == {"lion"}


@pytest.mark.parametrize("hp", [{"lr": 1e-3}, {"lr": 3e-3, "betas": (0.8, 0.95),
                                                "weight_decay": 0.5}])
def test_lion_equals_algorithm_2_over_100_steps_float64(hp):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=13)
    grads = rng.normal(size=(100, 13)) * 10.0 ** rng.uniform(-3, 1, size=(100, 1))
    full = {"betas": (0.9, 0.99), "weight_decay": 0.0, **hp}
    want = _lion_algorithm_2(w0, grads, full["lr"], *full["betas"], full["weight_decay"])
    rule = get_rule("lion")
    w, state = w0, rule.init(w0)
    for g in grads:
        w, state = rule.update(w, g, state, **hp)
    assert np.abs(want - w0).max() > 0.05, "the test must move the parameters"
    np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-15)
    assert state.step == 100


def test_lion_as_a_torch_optimizer_equals_algorithm_2():
    import torch

    rng = np.random.default_rng(1)
    w0, grads = rng.normal(size=6), rng.normal(size=(100, 6))
    p = torch.tensor(w0, requires_grad=True)
    opt = make_optimizer("lion", [p], lr=1e-3, weight_decay=0.1)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    want = _lion_algorithm_2(w0, grads, 1e-3, 0.9, 0.99, 0.1)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-12, atol=1e-15)
