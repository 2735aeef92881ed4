"""Keras 3's update rules, written as loops from its sources, equal optlab's rules under
conventions="keras" step by step (float64, 100 steps, a nonconvex loss)."""

from __future__ import annotations

import numpy as np
import pytest

import optlab
from optlab.conventions import CONVENTIONS, hparams_for


def _grad(w: np.ndarray) -> np.ndarray:  # gradient of sum(w^4/4 - w^2 + 0.3 w sin(3w))
    return w**3 - 2 * w + 0.3 * (np.sin(3 * w) + 3 * w * np.cos(3 * w))


def keras_rmsprop(w, lr, steps, rho=0.9, eps=1e-7):  # keras/src/optimizers/rmsprop.py
    velocity = np.zeros_like(w)
    for _ in range(steps):
        g = _grad(w)
        velocity = rho * velocity + (1 - rho) * g**2
        w = w - lr * g / np.sqrt(velocity + eps)
    return w


def keras_adagrad(w, lr, steps, initial_accumulator_value=0.1, eps=1e-7):  # .../adagrad.py
    accumulator = np.full_like(w, initial_accumulator_value)
    for _ in range(steps):
        g = _grad(w)
        accumulator = accumulator + g**2
        w = w - lr * g / np.sqrt(accumulator + eps)
    return w


def keras_adam(w, lr, steps, beta_1=0.9, beta_2=0.999, eps=1e-7, weight_decay=None,
               amsgrad=False):  # keras/src/optimizers/adam.py
    m, v, v_hat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for iterations in range(steps):
        g = _grad(w)
        if weight_decay:  # base_optimizer._apply_weight_decay, before the step (AdamW)
            w = w - w * weight_decay * lr
        local_step = iterations + 1
        alpha = lr * np.sqrt(1 - beta_2**local_step) / (1 - beta_1**local_step)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        if amsgrad:
            v_hat = np.maximum(v_hat, v)
            w = w - m * alpha / (np.sqrt(v_hat) + eps)
        else:
            w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def keras_lion(w, lr, steps, beta_1=0.9, beta_2=0.99):  # keras/src/optimizers/lion.py
    m = np.zeros_like(w)
    for _ in range(steps):
        g = _grad(w)
        w = w - lr * np.sign(m * beta_1 + g * (1.0 - beta_1))
        m = m * beta_2 + g * (1.0 - beta_2)
    return w


def keras_sgd(w, lr, steps, momentum=0.0, nesterov=False):  # keras/src/optimizers/sgd.py
    m = np.zeros_like(w)
    for _ in range(steps):
        g = _grad(w)
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


def keras_nadam(w, lr, steps, beta_1=0.9, beta_2=0.999, eps=1e-7):  # .../nadam.py
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    for iterations in range(steps):
        g = _grad(w)
        u_t = beta_1 * (1.0 - 0.5 * 0.96 ** (iterations + 1))
        u_t_1 = beta_1 * (1.0 - 0.5 * 0.96 ** (iterations + 2))
        u_product = u_product * u_t  # _backend_update_step, before update_step
        u_product_t_1 = u_product * u_t_1
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2 ** (iterations + 1))
        w = w - m_hat * lr / (np.sqrt(v_hat) + eps)
    return w


def _optlab(name, w, lr, steps, conventions):
    rule = optlab.get_rule(name)
    hp = optlab.resolve_hparams(name, **hparams_for(name, conventions, lr=lr))
    state = rule.init_state(w, **hp)
    for _ in range(steps):
        w, state = rule.update(w, _grad(w), state, **hp)
    return w


@pytest.mark.parametrize("name, reference", [
    ("sgd", keras_sgd), ("rmsprop", keras_rmsprop), ("adagrad", keras_adagrad),
    ("adam", keras_adam), ("adamw", lambda w, lr, n: keras_adam(w, lr, n, weight_decay=0.004)),
    ("momentum", lambda w, lr, n: keras_sgd(w, lr, n, momentum=0.9)),
    ("nesterov", lambda w, lr, n: keras_sgd(w, lr, n, momentum=0.9, nesterov=True)),
    ("nadamw", keras_nadam),
    ("amsgrad", lambda w, lr, n: keras_adam(w, lr, n, amsgrad=True)), ("lion", keras_lion),
])
def test_keras_convention_equals_keras_update_step(name, reference):
    assert name in CONVENTIONS["keras"]
    w0 = np.random.default_rng(0).normal(size=50) * 1.5
    for lr in (1e-3, 3e-2):
        ours = _optlab(name, w0.copy(), lr, 100, "keras")
        assert np.allclose(ours, reference(w0.copy(), lr, 100), rtol=1e-9, atol=1e-12)


def test_conventions_differ_where_keras_differs():
    w0 = np.random.default_rng(1).normal(size=50)
    for name in ("rmsprop", "adagrad", "adam"):
        a = _optlab(name, w0.copy(), 1e-3, 20, "keras")
        b = _optlab(name, w0.copy(), 1e-3, 20, "pytorch")
        assert not np.allclose(a, b, rtol=1e-9, atol=0), name
    assert np.allclose(_optlab("sgd", w0.copy(), 1e-3, 20, "keras"),
                       _optlab("sgd", w0.copy(), 1e-3, 20, "pytorch"))


def test_bad_conventions_are_one_line():
    with pytest.raises(ValueError, match="unknown conventions 'tf'"):
        hparams_for("adam", "tf")
    with pytest.raises(ValueError, match="lbfgs has no keras form"):
        hparams_for("lbfgs", "keras")
    with pytest.raises(ValueError, match="choose one placement of eps"):
        optlab.get_rule("adam").update(np.ones(2), np.ones(2), optlab.get_rule("adam").init(
            np.ones(2)), eps_inside_sqrt=True, eps_hat=True)
    assert hparams_for("adam", "keras", eps=1e-3)["eps"] == 1e-3  # the user's value wins


def test_every_keras_form_in_the_registry_has_a_reference_loop_here():
    params = test_keras_convention_equals_keras_update_step.pytestmark[0].args[1]
    assert {name for name, _ in params} == set(CONVENTIONS["keras"])
