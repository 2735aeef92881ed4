"""Property tests of the update rules (hypothesis): descent on convex quadratics, shapes and
dtypes of any array, and NumPy and torch giving the same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optlab.rules import FIRST_ORDER, Range, get_rule, resolve_hparams
from optlab.surfaces import quadratic

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

rule_names = st.sampled_from(FIRST_ORDER)


def _values(rng: Range, default: float) -> st.SearchStrategy[float]:
    """Values of one hyperparameter, inside its registered range: from 0 (or 1/100 of the
    default) up to 100 times the default on an open-ended range, up to 0.999 on [0, 1)."""
    if rng.low == rng.high:
        return st.just(rng.low)
    low = rng.low if rng.low_closed else max(rng.low, default / 100 if default else 1e-6)
    if math.isinf(rng.high):
        high = 100 * default if default else 0.1
    else:
        high = rng.high if rng.high_closed else rng.high - 1e-3
    return st.floats(low, high)


def _hparams(name: str) -> st.SearchStrategy[dict]:
    """Random valid hyperparameters of each rule, derived from its registered ``ranges`` and
    ``defaults`` (the learning rate from 1e-4 to 0.5, where every rule is numerically tame)."""
    rule = get_rule(name)
    by_key: dict[str, st.SearchStrategy] = {}
    for key, default in rule.defaults.items():
        if isinstance(default, bool):
            by_key[key] = st.booleans()
        elif key == "lr":
            by_key[key] = st.floats(1e-4, 0.5)
        elif key == "betas":
            by_key[key] = st.tuples(*(_values(rule.ranges[key], b) for b in default))
        else:
            by_key[key] = _values(rule.ranges[key], default)
    return st.fixed_dictionaries(by_key).filter(lambda hp: _valid(name, hp))


def _valid(name: str, hp: dict) -> bool:
    try:
        resolve_hparams(name, **hp)
    except ValueError:  # combinations the rule refuses (eps_inside_sqrt with eps_hat)
        return False
    return True


rule_and_hparams = rule_names.flatmap(lambda n: st.tuples(st.just(n), _hparams(n)))


# --------------------------------------------------------------------------------------------
# Descent
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(
    name=rule_names,
    radius=st.floats(0.5, 2.0),
    theta=st.floats(0.0, 2 * math.pi),
    condition=st.floats(1.0, 20.0),
    angle=st.floats(0.0, math.pi),
)
def test_small_lr_decreases_a_convex_quadratic(name, radius, theta, condition, angle):
    """With a small enough step every rule is a descent method: from any start away from the
    minimum, each of the first few steps lowers f = 1/2 w^T A w (A positive definite)."""
    s = quadratic(condition=condition, angle=angle)
    rule = get_rule(name)
    hp = resolve_hparams(name, lr=1e-4)
    p = radius * np.array([math.cos(theta), math.sin(theta)])
    state = rule.init_state(p, **hp)
    losses = [float(s.f(p))]
    for _ in range(6):
        p, state = rule.update(p, s.grad(p), state, **hp)
        losses.append(float(s.f(p)))
    assert np.all(np.diff(losses) < 0), (name, losses)


# --------------------------------------------------------------------------------------------
# Shapes and dtypes
# --------------------------------------------------------------------------------------------


def _arrays(dtype):
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
        elements=st.floats(-10, 10, width=32),
    )


def _run_three_steps(name, hp, p, grads):
    rule = get_rule(name)
    state = rule.init_state(p, **hp)
    with np.errstate(invalid="ignore"):  # alpha = 0, centered: sqrt of a rounded-negative 0
        for g in grads:
            p, state = rule.update(p, g, state, **hp)
    return p, state


def _state_arrays(state):
    return [v for v in state if isinstance(v, (np.ndarray, torch.Tensor))]


@SETTINGS
@given(rh=rule_and_hparams, dtype=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_numpy_shapes_are_preserved(rh, dtype, data):
    name, hp = rh
    hp = resolve_hparams(name, **hp)
    p = data.draw(_arrays(dtype), label="params")
    grads = [data.draw(hnp.arrays(dtype, p.shape, elements=st.floats(-10, 10, width=32)))
             for _ in range(3)]
    new, state = _run_three_steps(name, hp, p, grads)
    assert isinstance(new, np.ndarray) and new.shape == p.shape
    assert state.step == 3
    for buf in _state_arrays(state):
        assert buf.shape == p.shape
    np.testing.assert_array_equal(p, p.copy())  # the input was not modified in place


@SETTINGS
@given(rh=rule_and_hparams, data=st.data())
def test_numpy_float64_dtype_is_preserved(rh, data):
    name, hp = rh
    hp = resolve_hparams(name, **hp)
    p = data.draw(_arrays(np.float64), label="params")
    new, state = _run_three_steps(name, hp, p, [np.ones_like(p), -np.ones_like(p), 0.5 * p])
    assert new.dtype == np.float64
    for buf in _state_arrays(state):
        assert buf.dtype == np.float64


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_numpy_float32_dtype_is_preserved(name):
    hp = resolve_hparams(name)
    rng = np.random.default_rng(0)
    for shape in [(3,), (4, 2), (2, 3, 5)]:
        p = rng.normal(size=shape).astype(np.float32)
        grads = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
        new, state = _run_three_steps(name, hp, p, grads)
        assert new.dtype == np.float32, f"{name}: float32 params came back {new.dtype}"
        for buf in _state_arrays(state):
            assert buf.dtype == np.float32, f"{name}: a state buffer is {buf.dtype}"


@SETTINGS
@given(rh=rule_and_hparams, dtype=st.sampled_from([torch.float32, torch.float64]),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=st.integers(0, 2**16))
def test_torch_shapes_and_dtypes_are_preserved(rh, dtype, shape, seed):
    name, hp = rh
    hp = resolve_hparams(name, **hp)
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(shape, generator=gen, dtype=dtype)
    grads = [torch.randn(shape, generator=gen, dtype=dtype) for _ in range(3)]
    new, state = _run_three_steps(name, hp, p, grads)
    assert isinstance(new, torch.Tensor) and new.shape == p.shape and new.dtype == dtype
    for buf in _state_arrays(state):
        assert buf.shape == p.shape and buf.dtype == dtype


# --------------------------------------------------------------------------------------------
# NumPy and torch agree
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(rh=rule_and_hparams, shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
       seed=st.integers(0, 2**16))
def test_numpy_and_torch_give_the_same_numbers(rh, shape, seed):
    name, hp = rh
    hp = resolve_hparams(name, **hp)
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape)
    grads = [rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 1) for _ in range(4)]
    a, sa = _run_three_steps(name, hp, p, grads)
    b, sb = _run_three_steps(name, hp, torch.from_numpy(p), [torch.from_numpy(g) for g in grads])
    assert b.dtype == torch.float64
    np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    for x, y in zip(_state_arrays(sa), _state_arrays(sb), strict=True):
        np.testing.assert_allclose(x, y.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
