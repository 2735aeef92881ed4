"""Each first-order rule equals its torch.optim twin, step by step, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optlab
from optlab import make_optimizer
from optlab.rules import RULES, get_rule, resolve_hparams

#: Every rule that has a torch.optim twin, at its defaults with a learning rate that moves...
TWINNED = [name for name, rule in RULES.items() if rule.torch_twin is not None]
CASES = [(name, {"lr": 0.01}) for name in TWINNED] + [
    # ... and the options each twin has, away from their defaults.
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("momentum", {"lr": 0.02, "momentum": 0.8, "dampening": 0.8}),
    ("momentum", {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.01}),
    ("nesterov", {"lr": 0.02, "momentum": 0.7, "weight_decay": 0.01}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1, "lr_decay": 0.01, "eps": 1e-7}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5}),
    ("adam", {"lr": 0.01, "weight_decay": 0.05, "betas": (0.8, 0.99)}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("nadamw", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("amsgrad", {"lr": 0.01, "weight_decay": 0.05, "betas": (0.8, 0.99)}),
]


def _nonconvex_loss(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A smooth nonconvex loss of a small 'network': tanh layer + Rosenbrock-like coupling."""
    h = torch.tanh(x @ w[:12].reshape(4, 3))
    return (h.sum(1) - 0.3).pow(2).mean() + 0.5 * (w[12:] ** 2 - w[:4]).pow(2).sum() + torch.sin(
        w
    ).sum() * 0.1


def _run(opt_factory, steps: int = 100) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, generator=g, dtype=torch.float64).requires_grad_()
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    opt = opt_factory([w])
    for _ in range(steps):
        opt.zero_grad()
        _nonconvex_loss(w, x).backward()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("name,hparams", CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                  enumerate(CASES)])
def test_rule_equals_torch_twin_after_100_steps(name, hparams):
    twin = RULES[name].torch_twin
    w_ours = _run(lambda p: make_optimizer(name, p, **hparams))
    w_torch = _run(lambda p: twin(p, **hparams))
    moved = (w_torch - _run(lambda p: twin(p, **hparams), steps=0)).abs().max()
    assert moved > 1e-3, "the test must actually move the parameters"
    rel = (w_ours - w_torch).norm() / w_torch.norm()
    assert rel < 1e-9, f"{name}: relative difference {rel:.3e}"


def test_twins_take_the_rules_resolved_hyperparameters_and_refuse_what_torch_lacks():
    w = torch.zeros(2, requires_grad=True)
    for name in TWINNED:  # every default, the rule's own options included, builds the twin
        assert isinstance(RULES[name].torch_twin([w], **resolve_hparams(name)),
                          torch.optim.Optimizer)
    with pytest.raises(ValueError, match="torch has no eps_inside_sqrt=True"):
        RULES["adam"].torch_twin([w], lr=0.1, eps_inside_sqrt=True)
    assert str(RULES["nesterov"].torch_twin) == "torch.optim.SGD(nesterov=True)"


def test_every_name_is_a_rule_or_lbfgs():
    assert set(optlab.OPTIMIZERS) == set(RULES) | {"lbfgs"}


def test_rules_accept_numpy_and_preserve_shape_and_dtype():
    rng = np.random.default_rng(0)
    for name, rule in RULES.items():
        for dtype in (np.float32, np.float64):
            p = rng.normal(size=(5, 2)).astype(dtype)
            g = rng.normal(size=(5, 2)).astype(dtype)
            hp = resolve_hparams(name)
            new, state = rule.update(p, g, rule.init_state(p, **hp), **hp)
            assert new.shape == p.shape and state.step == 1
            assert not np.array_equal(new, p)


def test_numpy_and_torch_give_the_same_numbers():
    rng = np.random.default_rng(1)
    p0, g0 = rng.normal(size=7), rng.normal(size=7)
    for name, rule in RULES.items():
        hp = resolve_hparams(name)
        a, sa = rule.update(p0, g0, rule.init_state(p0, **hp), **hp)
        a, _ = rule.update(a, g0 * 0.5, sa, **hp)
        tp, tg = torch.tensor(p0), torch.tensor(g0)
        b, sb = rule.update(tp, tg, rule.init_state(tp, **hp), **hp)
        b, _ = rule.update(b, tg * 0.5, sb, **hp)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, err_msg=name)


def test_momentum_dampening_is_the_papers_ema():
    """dampening=b gives v = (1-b) g + b v (after PyTorch's first step, which copies g)."""
    rule = get_rule("momentum")
    p, b = np.zeros(1), 0.8
    state = rule.init(p)
    grads = [1.0, 2.0, -1.0, 0.5]
    v = None
    for g in grads:
        p, state = rule.update(p, np.array([g]), state, lr=1.0, momentum=b, dampening=b)
        v = g if v is None else (1 - b) * g + b * v
        assert state.buf[0] == pytest.approx(v)


def test_eps_inside_sqrt_is_the_papers_form():
    p, g = np.array([1.0]), np.array([1e-6])
    hp = dict(lr=0.1, eps=1e-8, bias_correction=False)
    rule = get_rule("adam")
    out_in, _ = rule.update(p, g, rule.init(p), eps_inside_sqrt=True, **hp)
    m, v = 0.1 * 1e-6, 0.001 * 1e-12
    assert out_in[0] == pytest.approx(1 - 0.1 * m / np.sqrt(v + 1e-8), rel=1e-12)
    out_out, _ = rule.update(p, g, rule.init(p), eps_inside_sqrt=False, **hp)
    assert out_out[0] == pytest.approx(1 - 0.1 * m / (np.sqrt(v) + 1e-8), rel=1e-12)
    assert out_in[0] != pytest.approx(out_out[0], rel=1e-6)


def test_adam_first_step_is_about_lr_with_bias_correction():
    rule = get_rule("adam")
    p, g = np.zeros(3), np.array([1e-3, 1.0, -50.0])
    corrected, _ = rule.update(p, g, rule.init(p), lr=0.01)
    raw, _ = rule.update(p, g, rule.init(p), lr=0.01, bias_correction=False)
    np.testing.assert_allclose(np.abs(corrected), 0.01, rtol=1e-3)
    np.testing.assert_allclose(np.abs(raw), 0.01 * 0.1 / np.sqrt(0.001), rtol=1e-3)


@pytest.mark.parametrize(
    "name,kwargs,fragment",
    [
        ("adam", {"lr": 0.0}, "lr must be in (0, inf)"),
        ("adam", {"lr": -1e-3}, "lr must be in (0, inf)"),
        ("sgd", {"lr": float("nan")}, "lr must be in"),
        ("adam", {"betas": (0.9, 1.0)}, "beta2 must be in [0, 1)"),
        ("adamw", {"betas": (-0.1, 0.9)}, "beta1 must be in [0, 1)"),
        ("rmsprop", {"eps": 0.0}, "eps must be in (0, inf)"),
        ("adagrad", {"eps": -1.0}, "eps must be in (0, inf)"),
        ("momentum", {"momentum": 1.0}, "momentum must be in [0, 1)"),
        ("adam", {"rho": 0.9}, "unknown hyperparameter 'rho'"),
        ("adamax", {}, "unknown optimizer 'adamax'"),
        ("nesterov", {"dampening": 0.5}, "dampening must be 0"),
    ],
)
def test_invalid_hyperparameters_raise_clear_errors(name, kwargs, fragment):
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError) as err:
        make_optimizer(name, [w], **kwargs)
    assert fragment in str(err.value)


def test_rmsprop_momentum_can_be_swept_as_an_array():
    rule = get_rule("rmsprop")
    p, g = np.ones((3, 2)), np.full((3, 2), 0.5)
    mom = np.array([[0.0], [0.5], [0.9]])
    swept, _ = rule.update(p, g, rule.init(p), lr=0.1, momentum=mom)
    for i, m in enumerate(mom[:, 0]):
        single, _ = rule.update(p[i], g[i], rule.init(p[i]), lr=0.1, momentum=float(m))
        np.testing.assert_allclose(swept[i], single, rtol=0, atol=1e-15)
