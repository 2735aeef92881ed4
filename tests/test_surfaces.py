"""The toy surfaces: analytic derivatives against finite differences, minima, conditioning."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optlab
from optlab.surfaces import SURFACES, Surface, get_surface, quadratic

# The defaults plus a few configured surfaces (a rotated, badly conditioned quadratic ...).
CONFIGURED = {
    **SURFACES,
    "quadratic-rotated": quadratic(condition=50.0, angle=0.6, scale=0.3),
    "rosenbrock-a2": get_surface("rosenbrock", a=2.0, b=10.0),
    "rastrigin-A3": get_surface("rastrigin", A=3.0),
}
NAMES = list(CONFIGURED)


def _random_points(s: Surface, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = s.bounds
    return np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], axis=-1)


def test_required_surfaces_exist():
    assert {"quadratic", "rosenbrock", "beale", "himmelblau", "saddle", "rastrigin"} <= set(
        SURFACES
    )
    assert optlab.surfaces.SURFACES is SURFACES  # the lazy attribute of the package


@pytest.mark.parametrize("name", NAMES)
def test_shapes_are_vectorized(name):
    s = CONFIGURED[name]
    pts = _random_points(s, 12).reshape(3, 4, 2)
    assert s.f(pts).shape == (3, 4)
    assert s.grad(pts).shape == (3, 4, 2)
    assert s.hessian(pts).shape == (3, 4, 2, 2)
    assert s.f([0.5, 0.25]).shape == ()
    assert s.grad([0.5, 0.25]).shape == (2,)
    assert s.hessian([0.5, 0.25]).shape == (2, 2)
    # each point alone gives the same numbers as the batch
    np.testing.assert_array_equal(s.grad(pts)[1, 2], s.grad(pts[1, 2]))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        s.f(np.zeros(3))


def _central_difference(fn, pts, h: float = 1e-6):
    """d fn / d x_i at each point by central differences, stacked on a new last axis."""
    return np.stack([(fn(pts + h * e) - fn(pts - h * e)) / (2 * h) for e in np.eye(2)], axis=-1)


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_central_differences(name):
    s = CONFIGURED[name]
    pts = _random_points(s, 50, seed=1)
    fd = _central_difference(s.f, pts)
    g = s.grad(pts)
    scale = np.abs(g).max(axis=-1, keepdims=True) + 1.0
    np.testing.assert_allclose(g / scale, fd / scale, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_hessian_matches_central_differences_of_grad(name):
    s = CONFIGURED[name]
    pts = _random_points(s, 50, seed=2)
    fd = _central_difference(s.grad, pts)
    H = s.hessian(pts)
    scale = np.abs(H).max(axis=(-2, -1), keepdims=True) + 1.0
    np.testing.assert_allclose(H / scale, fd / scale, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_hessian_is_symmetric(name):
    s = CONFIGURED[name]
    H = s.hessian(_random_points(s, 30, seed=3))
    np.testing.assert_array_equal(H, np.swapaxes(H, -1, -2))


@pytest.mark.parametrize("name", NAMES)
def test_minima_are_stationary_and_global(name):
    s = CONFIGURED[name]
    assert s.minima.ndim == 2 and s.minima.shape[1] == 2
    if name == "saddle":
        assert s.minima.shape == (0, 2)
        return
    assert len(s.minima) >= 1
    np.testing.assert_allclose(s.grad(s.minima), 0.0, atol=1e-10)
    # positive definite Hessian: a strict local minimum
    assert np.all(np.linalg.eigvalsh(s.hessian(s.minima)) > 0)
    (x0, x1), (y0, y1) = s.bounds
    for lo, hi, mins in ((x0, x1, s.minima[:, 0]), (y0, y1, s.minima[:, 1])):
        assert np.all((lo <= mins) & (mins <= hi)), "the minima lie inside the plotting box"
    X, Y = np.meshgrid(np.linspace(x0, x1, 1201), np.linspace(y0, y1, 1201))
    grid_min = s.f(np.stack([X, Y], axis=-1)).min()
    f_min = s.f(s.minima)
    assert np.all(f_min <= grid_min + 1e-12), "a listed minimum is not the global one"
    np.testing.assert_allclose(f_min, f_min.min(), atol=1e-12)  # all listed minima are global


def test_himmelblau_has_four_minima():
    s = SURFACES["himmelblau"]
    assert s.minima.shape == (4, 2)
    np.testing.assert_allclose(s.f(s.minima), 0.0, atol=1e-20)


def test_saddle_is_a_saddle():
    s = SURFACES["saddle"]
    np.testing.assert_array_equal(s.grad([0.0, 0.0]), 0.0)
    assert sorted(np.linalg.eigvalsh(s.hessian([0.0, 0.0]))) == [-2.0, 2.0]


@pytest.mark.parametrize("condition,angle,scale", [(10.0, 0.0, 1.0), (50.0, 0.6, 0.3),
                                                   (1.0, 1.0, 2.0), (1e4, -2.0, 1e-2)])
def test_quadratic_hessian_is_A_and_condition_is_the_eigenvalue_ratio(condition, angle, scale):
    s = quadratic(condition=condition, angle=angle, scale=scale)
    A = s.params["A"]
    pts = _random_points(s, 7, seed=4)
    np.testing.assert_array_equal(s.hessian(pts), np.broadcast_to(A, (7, 2, 2)))
    np.testing.assert_array_equal(A, A.T)
    lam = np.linalg.eigvalsh(A)
    assert lam[1] / lam[0] == pytest.approx(condition, rel=1e-9)
    assert lam[0] == pytest.approx(scale, rel=1e-9)
    np.testing.assert_allclose(s.f(pts), 0.5 * np.einsum("ni,ij,nj->n", pts, A, pts), rtol=1e-13)
    np.testing.assert_allclose(s.grad(pts), pts @ A, rtol=1e-12, atol=1e-15)
    # the shallow eigenvector is (cos a, sin a): the valley is rotated by `angle`
    v = np.array([math.cos(angle), math.sin(angle)])
    np.testing.assert_allclose(A @ v, scale * v, atol=1e-12 * condition)


def test_quadratic_rejects_bad_parameters():
    with pytest.raises(ValueError, match="condition"):
        quadratic(condition=0.5)
    with pytest.raises(ValueError, match="scale"):
        quadratic(scale=0.0)


@pytest.mark.parametrize("name", NAMES)
def test_start_and_latex(name):
    s = CONFIGURED[name]
    assert s.start.shape == (2,)
    (x0, x1), (y0, y1) = s.bounds
    assert x0 < s.start[0] < x1 and y0 < s.start[1] < y1
    assert np.linalg.norm(s.grad(s.start)) > 1e-3, "the demo start is not a stationary point"
    assert isinstance(s.latex, str) and "f" in s.latex and "$" not in s.latex


def test_noisy_grad_models_minibatch_noise():
    s = SURFACES["rosenbrock"]
    x = np.tile(s.start, (20000, 1))
    noisy = s.noisy_grad(x, 0.5, np.random.default_rng(0))
    err = noisy - s.grad(x)
    assert abs(err.mean()) < 0.02 and err.std() == pytest.approx(0.5, rel=0.02)
    np.testing.assert_array_equal(s.noisy_grad(x[:3], 0.5, 7), s.noisy_grad(x[:3], 0.5, 7))
    np.testing.assert_array_equal(s.noisy_grad(x[:3], 0.0, 7), s.grad(x[:3]))


def test_get_surface():
    assert get_surface("beale") is SURFACES["beale"]
    q = get_surface("quadratic", condition=25, angle=0.3)
    assert q.params["condition"] == 25 and q.params["angle"] == 0.3
    assert get_surface(q) is q
    with pytest.raises(ValueError, match="unknown surface 'bowl'.*quadratic.*rosenbrock"):
        get_surface("bowl")
    with pytest.raises(ValueError, match="unknown parameter 'kappa'"):
        get_surface("quadratic", kappa=3)
    with pytest.raises(ValueError, match="unknown parameter"):
        get_surface("beale", a=1)


def test_grid_for_contour_plots():
    X, Y, Z = SURFACES["himmelblau"].grid(50)
    assert X.shape == Y.shape == Z.shape == (50, 50)
    assert np.isfinite(Z).all()
