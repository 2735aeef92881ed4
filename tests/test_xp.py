"""optlab.xp: the same element-wise function on floats, NumPy arrays and torch tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optlab import xp

VALUES = [-2.5, -1.0, -0.0, 0.0, 1e-300, 0.7, 3.0, 800.0, math.inf, -math.inf, math.nan]
UNARY = ["sqrt", "exp", "log", "cos", "sin", "abs", "sign"]


@pytest.mark.parametrize("name", UNARY)
def test_floats_give_numpys_numbers_and_stay_floats(name):
    fn = getattr(xp, name)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(np.array(VALUES))
    got = [fn(v) for v in VALUES]
    assert all(type(g) is float for g in got), [type(g) for g in got]
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)  # NaN where NumPy has NaN


@pytest.mark.parametrize("name", UNARY)
def test_arrays_and_tensors_keep_their_type(name):
    fn = getattr(xp, name)
    arr = np.array([0.3, 1.7], dtype=np.float32)
    ten = torch.tensor([0.3, 1.7], dtype=torch.float64)
    assert isinstance(fn(arr), np.ndarray) and fn(arr).dtype == np.float32
    assert isinstance(fn(ten), torch.Tensor) and fn(ten).dtype == torch.float64


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_and_minimum_on_every_kind(name):
    fn, ref = getattr(xp, name), getattr(np, name)
    pairs = [(1.0, 2.0), (2.0, -1.0), (math.nan, 1.0), (1.0, math.nan)]
    for a, b in pairs:
        np.testing.assert_equal(fn(a, b), ref(a, b))
    a, b = np.array([1.0, 5.0]), np.array([3.0, 2.0])
    np.testing.assert_array_equal(fn(a, b), ref(a, b))
    t = fn(torch.tensor(a), 2.5)  # a tensor and a Python float
    assert isinstance(t, torch.Tensor)
    np.testing.assert_array_equal(t.numpy(), ref(a, 2.5))


def test_where_zeros_like_and_full_like():
    assert xp.where(True, 1.0, 2.0) == 1.0 and xp.where(False, 1.0, 2.0) == 2.0
    x = np.array([1.0, -1.0])
    np.testing.assert_array_equal(xp.where(x > 0, x, 0.0), [1.0, 0.0])
    assert isinstance(xp.where(torch.tensor(x) > 0, torch.tensor(x), 0.0), torch.Tensor)
    assert xp.zeros_like(3.0) == 0.0 and type(xp.full_like(3, 2)) is float
    ints = xp.zeros_like(np.array([1, 2]))
    assert ints.dtype == np.float64 and ints.shape == (2,)
    assert xp.full_like(np.zeros(3, np.float32), 0.5).dtype == np.float32
    assert xp.full_like(torch.zeros(2, dtype=torch.float64), 0.5).dtype == torch.float64


def test_other_types_are_refused_with_one_line():
    with pytest.raises(TypeError, match="expected a float, a NumPy array or a torch tensor"):
        xp.sqrt("4")
