"""Newton, damped Newton, BFGS and L-BFGS (the sub-package optlab.second_order), with scipy as
the reference: one section per module (newton_methods, quasi_newton_methods, lbfgs_memory and
line_search, driver and iterates, torch_lbfgs)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.optimize
import torch

import optlab
from optlab import make_optimizer
from optlab.second_order import (
    LBFGSOptimizer,
    MinimizeResult,
    minimize,
    newton,
    quasi_newton,
    remember_pair,
    two_loop,
    wolfe_line_search,
)
from optlab.second_order.iterates import Objective
from optlab.surfaces import get_surface, quadratic

ROSENBROCK = get_surface("rosenbrock")
HIMMELBLAU = get_surface("himmelblau")
C1, C2 = 1e-4, 0.9


class Counting:
    """A surface wrapper that counts calls (to check nfev / ngev)."""

    def __init__(self, surface):
        self.s, self.nf, self.ng, self.nh = surface, 0, 0, 0

    def f(self, x):
        self.nf += 1
        return self.s.f(x)

    def grad(self, x):
        self.ng += 1
        return self.s.grad(x)

    def hessian(self, x):
        self.nh += 1
        return self.s.hessian(x)


class QuadND:
    """f(x) = 1/2 x^T A x - b^T x + c in n dimensions (the methods are not 2-D only)."""

    def __init__(self, A, b, c=0.0):
        self.A, self.b, self.c = A, b, c

    def f(self, x):
        return 0.5 * x @ self.A @ x - self.b @ x + self.c

    def grad(self, x):
        return self.A @ x - self.b

    def hessian(self, x):
        return self.A


def _himmelblau_saddle() -> np.ndarray:
    """One of Himmelblau's four saddle points, from scipy's root finder on the gradient."""
    sol = scipy.optimize.root(HIMMELBLAU.grad, [0.09, 2.88], jac=HIMMELBLAU.hessian, tol=1e-14)
    assert sol.success
    return sol.x


# --------------------------------------------------------------------------------------------
# newton_methods: Newton, plain and damped
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", [1.0, 10.0, 1e2, 1e3])
@pytest.mark.parametrize("angle", [0.0, 0.4, 1.1, 2.5])
def test_newton_solves_a_quadratic_in_one_step(condition, angle):
    rng = np.random.default_rng(int(condition) + int(10 * angle))
    s = quadratic(condition, angle, scale=0.5)
    for x0 in rng.uniform(-2, 2, size=(5, 2)):
        r = minimize(s, x0, "newton")
        assert r.nit == 1 and r.converged
        np.testing.assert_allclose(r.x, 0.0, atol=1e-12)
        assert r.path.shape == (2, 2) and r.H_path is None


def test_newton_one_step_on_a_shifted_quadratic_in_5d():
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    A = Q @ np.diag([0.5, 1, 3, 20, 100]) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.standard_normal(5)
    r = minimize(QuadND(A, b, 2.0), rng.standard_normal(5), "newton")
    assert r.nit == 1 and r.converged
    np.testing.assert_allclose(r.x, np.linalg.solve(A, b), atol=1e-12)


@pytest.mark.parametrize("x0", [(0.8, 0.6), (1.2, 1.5), (0.9, 0.8), (1.1, 1.2)])
def test_newton_converges_quadratically_on_rosenbrock(x0):
    r = minimize(ROSENBROCK, x0, "newton", tol=1e-13)
    assert r.converged and r.nit <= 8
    e = np.linalg.norm(r.path - [1.0, 1.0], axis=1)
    assert e[-1] < 1e-12
    for k in range(len(e) - 1):
        if 1e-7 < e[k] < 0.1:  # inside the region of quadratic convergence, above rounding
            assert e[k + 1] <= 100.0 * e[k] ** 2, (k, e)


def test_plain_newton_converges_to_a_saddle():
    saddle = _himmelblau_saddle()
    for offset in [(0.05, -0.03), (-0.04, 0.06), (0.1, 0.1)]:
        r = minimize(HIMMELBLAU, saddle + offset, "newton")
        assert r.converged and r.grad_norm < 1e-8
        np.testing.assert_allclose(r.x, saddle, atol=1e-9)
        lam = np.linalg.eigvalsh(HIMMELBLAU.hessian(r.x))
        assert lam[0] < 0 < lam[1]  # indefinite: a saddle, not a minimum
        assert "saddle" in r.message
    # x^2 - y^2 is a quadratic: Newton jumps onto its saddle in one step
    r = minimize("saddle", [0.3, 0.01], "newton")
    assert r.nit == 1 and r.converged
    np.testing.assert_allclose(r.x, 0.0, atol=1e-15)


@pytest.mark.parametrize("modification", ["shift", "abs"])
def test_damped_newton_decreases_f_and_escapes_the_saddle(modification):
    saddle = _himmelblau_saddle()
    minima = HIMMELBLAU.minima
    for start in [saddle + (0.05, -0.03), saddle + (-0.04, 0.06), saddle]:  # last: exactly on it
        r = minimize(HIMMELBLAU, start, "newton_damped", modification=modification)
        assert np.all(np.diff(r.f_path) < 0), r.f_path  # strictly decreasing at every iterate
        assert r.converged and r.grad_norm < 1e-8
        assert np.min(np.linalg.norm(minima - r.x, axis=1)) < 1e-8  # a minimum, not the saddle
        assert np.linalg.eigvalsh(HIMMELBLAU.hessian(r.x))[0] > 0
    # x^2 - y^2 has no minimum: damped Newton slides down the y axis forever
    r = minimize("saddle", [0.3, 0.01], "newton_damped", modification=modification, max_iter=30)
    assert np.all(np.diff(r.f_path) < 0)
    assert not r.converged and abs(r.x[1]) > 1e3 and r.fun < -1e6


def test_damped_newton_is_newton_near_a_minimum():
    x0 = (1.1, 1.2)  # the Hessian is positive definite along the whole path
    plain = minimize(ROSENBROCK, x0, "newton")
    damped = minimize(ROSENBROCK, x0, "newton", damping=True)  # the alias
    assert damped.method == "newton_damped"
    np.testing.assert_allclose(damped.x, [1, 1], atol=1e-10)
    assert damped.nit <= plain.nit + 3


def test_damped_newton_on_rosenbrock_matches_scipy_minimum():
    ref = scipy.optimize.minimize(
        ROSENBROCK.f, [-1.2, 1.0], jac=ROSENBROCK.grad, hess=ROSENBROCK.hessian,
        method="trust-exact",
    )
    r = minimize(ROSENBROCK, [-1.2, 1.0], "newton_damped")
    assert r.converged and np.all(np.diff(r.f_path) < 0)
    np.testing.assert_allclose(r.x, ref.x, atol=1e-7)


# --------------------------------------------------------------------------------------------
# quasi_newton_methods: BFGS
# --------------------------------------------------------------------------------------------


def _secant_and_spd(surface, r: MinimizeResult) -> None:
    assert r.H_path.shape == (r.nit + 1, 2, 2)
    np.testing.assert_array_equal(r.H_path[0], np.eye(2))
    for k in range(r.nit):
        s = r.path[k + 1] - r.path[k]
        y = surface.grad(r.path[k + 1]) - surface.grad(r.path[k])
        # H_{k+1} y_k = s_k, up to rounding (y_k loses digits as the steps get tiny)
        assert np.linalg.norm(r.H_path[k + 1] @ y - s) <= 1e-6 * np.linalg.norm(s), k
    for H in r.H_path:
        np.testing.assert_array_equal(H, H.T)
        assert np.linalg.eigvalsh(H)[0] > 0


@pytest.mark.parametrize("h0_scaling", ["none", "first"])
def test_bfgs_secant_condition_and_positive_definiteness(h0_scaling):
    for surface, x0 in [(ROSENBROCK, (-1.2, 1.0)), (HIMMELBLAU, (-0.3, -0.9)),
                        (quadratic(50.0, 0.7), (1.5, -1.0))]:
        r = minimize(surface, x0, "bfgs", h0_scaling=h0_scaling)
        assert r.converged
        _secant_and_spd(surface, r)


def test_bfgs_solves_a_quadratic_in_a_few_iterations():
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for condition in [1.0, 10.0, 1e2, 1e3]:
        for angle in [0.0, 0.4, 1.1, 2.5]:
            s = quadratic(condition, angle, scale=0.5)
            A_inv = np.linalg.inv(s.params["A"])
            for x0 in rng.uniform(-2, 2, size=(3, 2)):
                r = minimize(s, x0, "bfgs")
                assert r.converged and np.linalg.norm(r.x) <= 1e-8 / 0.5  # |g| <= tol
                # no exact line search: not the 2 steps of exact-line-search BFGS, but few
                assert r.nit <= 10
                ref = scipy.optimize.minimize(
                    s.f, x0, jac=s.grad, method="BFGS", options={"gtol": 1e-8, "norm": 2}
                )
                ours.append(r.nit)
                theirs.append(ref.nit)
                if condition >= 10:  # the path explores both directions: H -> A^{-1}
                    err = np.abs(r.H_path[-1] - A_inv).max() / np.abs(A_inv).max()
                    assert err < 1e-2
    assert np.mean(ours) <= 1.1 * np.mean(theirs)


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_every_step_satisfies_the_strong_wolfe_conditions(method):
    rng = np.random.default_rng(3)
    starts = [np.array([-1.2, 1.0]), *rng.uniform([-2, -1], [2, 3], size=(4, 2))]
    for x0 in starts:
        r = minimize(ROSENBROCK, x0, method)
        assert r.converged
        assert np.all(r.alphas > 0)
        for k in range(r.nit):
            x, x_new = r.path[k], r.path[k + 1]
            s = x_new - x  # = alpha_k p_k, and both conditions are invariant to p's scale
            g, g_new = ROSENBROCK.grad(x), ROSENBROCK.grad(x_new)
            assert ROSENBROCK.f(x_new) <= ROSENBROCK.f(x) + C1 * (g @ s)  # sufficient decrease
            assert abs(g_new @ s) <= C2 * abs(g @ s) * (1 + 1e-12)  # strong curvature
            assert r.f_path[k + 1] == ROSENBROCK.f(x_new)


# --------------------------------------------------------------------------------------------
# quasi_newton_methods: L-BFGS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h0_scaling", ["none", "first"])
@pytest.mark.parametrize(
    "surface,x0",
    [(quadratic(30.0, 0.5), (1.7, -0.4)), (quadratic(300.0, 2.0), (-1.0, 1.5)),
     (ROSENBROCK, (-1.2, 1.0)), (ROSENBROCK, (1.5, -0.5))],
)
def test_lbfgs_with_full_memory_is_bfgs(h0_scaling, surface, x0):
    b = minimize(surface, x0, "bfgs", h0_scaling=h0_scaling)
    lb = minimize(surface, x0, "lbfgs", m=1000, h0_scaling=h0_scaling)
    assert b.converged and lb.converged and b.nit == lb.nit
    np.testing.assert_allclose(lb.path, b.path, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lb.H_path, b.H_path, rtol=1e-6, atol=1e-8)


def test_lbfgs_default_scaling_differs_from_bfgs_but_converges():
    s = quadratic(30.0, 0.5)
    b = minimize(s, (1.7, -0.4), "bfgs")
    lb = minimize(s, (1.7, -0.4), "lbfgs")  # gamma_k recomputed every iteration
    assert lb.converged
    n = min(b.nit, lb.nit)
    assert np.abs(lb.path[:n + 1] - b.path[:n + 1]).max() > 1e-6


def test_lbfgs_implicit_matrix_satisfies_the_secant_condition():
    r = minimize(ROSENBROCK, (-1.2, 1.0), "lbfgs", m=3)
    assert r.converged
    _secant_and_spd(ROSENBROCK, r)


@pytest.mark.parametrize("method,scipy_method", [("bfgs", "BFGS"), ("lbfgs", "L-BFGS-B")])
def test_rosenbrock_from_many_starts_like_scipy(method, scipy_method):
    rng = np.random.default_rng(2024)
    starts = [np.array([-1.2, 1.0]), *rng.uniform([-2, -1], [2, 3], size=(10, 2))]
    for x0 in starts:
        r = minimize(ROSENBROCK, x0, method)
        ref = scipy.optimize.minimize(ROSENBROCK.f, x0, jac=ROSENBROCK.grad, method=scipy_method)
        assert r.converged, (x0, r.message)
        np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-5)
        assert r.nit <= 2 * ref.nit + 10, (x0, r.nit, ref.nit)
        assert r.path.shape == (r.nit + 1, 2) and r.f_path.shape == (r.nit + 1,)
        assert r.alphas.shape == (r.nit,)


def test_lbfgs_and_bfgs_in_more_dimensions_match_scipy():
    n = 8

    class RosenND:
        f = staticmethod(scipy.optimize.rosen)
        grad = staticmethod(scipy.optimize.rosen_der)
        hessian = staticmethod(scipy.optimize.rosen_hess)

    x0 = np.full(n, -0.5)
    for method in ["bfgs", "lbfgs", "newton_damped"]:
        r = minimize(RosenND(), x0, method, max_iter=500)
        assert r.converged, (method, r.message)
        np.testing.assert_allclose(r.x, np.ones(n), atol=1e-6)


# --------------------------------------------------------------------------------------------
# lbfgs_memory and line_search: the pieces shared with the torch optimizer
# --------------------------------------------------------------------------------------------


def test_two_loop_equals_the_explicit_bfgs_matrix_in_numpy_and_torch():
    rng = np.random.default_rng(5)
    n, k = 6, 4
    M = rng.standard_normal((n, n))
    A = M @ M.T + n * np.eye(n)
    S = [rng.standard_normal(n) for _ in range(k)]
    Y = [A @ s for s in S]  # y^T s > 0
    gamma = float(S[-1] @ Y[-1] / (Y[-1] @ Y[-1]))
    H = gamma * np.eye(n)
    for s, y in zip(S, Y, strict=True):
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.standard_normal(n)
    d = two_loop(g, S, Y, gamma)
    np.testing.assert_allclose(d, -H @ g, rtol=1e-10)
    dt = two_loop(torch.tensor(g), [torch.tensor(s) for s in S], [torch.tensor(y) for y in Y],
                  gamma)
    assert isinstance(dt, torch.Tensor)
    np.testing.assert_allclose(dt.numpy(), d, rtol=1e-12)
    np.testing.assert_array_equal(two_loop(g, [], [], 2.0), -2.0 * g)


def test_remember_pair_keeps_the_newest_m_pairs_and_their_rho():
    rng = np.random.default_rng(6)
    pairs = [(rng.standard_normal(3), rng.standard_normal(3)) for _ in range(5)]
    S, Y, R = [], [], []
    for s, y in pairs:
        remember_pair(S, Y, R, s, y, float(y @ s), 3)
    assert [id(s) for s in S] == [id(s) for s, _ in pairs[-3:]]  # oldest forgotten, order kept
    assert [id(y) for y in Y] == [id(y) for _, y in pairs[-3:]]
    np.testing.assert_allclose(R, [1.0 / (y @ s) for s, y in pairs[-3:]], rtol=1e-15)
    g = rng.standard_normal(3)
    np.testing.assert_array_equal(two_loop(g, S, Y, 0.5, R), two_loop(g, S, Y, 0.5))


def test_wolfe_line_search_on_a_1d_function():
    def phi(a):  # f(x + a p) for f = x^4 - 3x along p = 1 from x = -1
        x = -1.0 + a
        return x**4 - 3 * x, 4 * x**3 - 3, None

    f0, d0, _ = phi(0.0)
    for a1 in [1e-3, 1.0, 30.0]:
        ls = wolfe_line_search(phi, f0, d0, a1)
        assert ls.success
        assert ls.phi <= f0 + C1 * ls.alpha * d0 and abs(ls.dphi) <= C2 * abs(d0)
    assert not wolfe_line_search(phi, f0, -d0).success  # not a descent direction


# --------------------------------------------------------------------------------------------
# driver and iterates: minimize's result, its counts and bad input
# --------------------------------------------------------------------------------------------


def test_minimize_runs_the_printed_iterations():
    """The functions the chapters print (newton, quasi_newton) are what minimize runs."""
    x0 = np.array([-1.2, 1.0])
    for method, run, kw in [
        ("newton", newton, {}),
        ("bfgs", quasi_newton, dict(c1=C1, c2=C2, h0_scaling="none", max_ls=30)),
        ("lbfgs", quasi_newton, dict(c1=C1, c2=C2, h0_scaling="dynamic", max_ls=30, m=10)),
    ]:
        direct = run(Objective(ROSENBROCK, 2), x0.copy(), 200, 1e-8, **kw)
        via = minimize(ROSENBROCK, x0, method)
        assert direct.method == via.method == method
        np.testing.assert_array_equal(direct.path, via.path)
        assert via.converged and direct.nfev == via.nfev


def test_minimize_imports_no_torch():
    code = ("import sys; from optlab.second_order import minimize; "
            "r = minimize('rosenbrock', [-1.2, 1.0]); assert r.converged; "
            "assert 'torch' not in sys.modules, 'minimize imported torch'; "
            "from optlab.second_order import LBFGSOptimizer; assert 'torch' in sys.modules")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr.strip().splitlines()[-1:]


def test_counts_names_and_fields():
    c = Counting(ROSENBROCK)
    r = minimize(c, (-1.2, 1.0), "bfgs")
    assert (r.nfev, r.ngev) == (c.nf, c.ng) and r.nfev > r.nit
    assert r.method == "bfgs" and "converged" in r.message
    assert r.fun == ROSENBROCK.f(r.x) and r.grad_norm == np.linalg.norm(ROSENBROCK.grad(r.x))
    assert optlab.minimize is minimize
    by_name = minimize("rosenbrock", (-1.2, 1.0), "bfgs")
    np.testing.assert_array_equal(by_name.path, r.path)
    c = Counting(ROSENBROCK)
    r = minimize(c, (-1.2, 1.0), "newton")
    assert r.nhev == c.nh == r.nit + 1


def test_already_at_the_minimum():
    for method in ["newton", "newton_damped", "bfgs", "lbfgs"]:
        r = minimize(ROSENBROCK, (1.0, 1.0), method)
        assert r.converged and r.nit == 0 and r.path.shape == (1, 2)


def test_max_iter_is_reported():
    r = minimize(ROSENBROCK, (-1.2, 1.0), "bfgs", max_iter=3)
    assert r.nit == 3 and not r.converged and "maximum" in r.message


def test_bad_input():
    with pytest.raises(ValueError, match="newton, newton_damped, bfgs, lbfgs"):
        minimize(ROSENBROCK, (0.0, 0.0), "adam")
    with pytest.raises(ValueError, match="shape"):
        minimize(ROSENBROCK, (0.0, 0.0, 0.0), "bfgs")
    with pytest.raises(ValueError, match="shape"):
        minimize(ROSENBROCK, [[0.0, 0.0]], "bfgs")
    with pytest.raises(ValueError, match="finite"):
        minimize(ROSENBROCK, (np.nan, 0.0), "bfgs")
    with pytest.raises(ValueError, match="unknown option 'memory'.*m, c1"):
        minimize(ROSENBROCK, (0.0, 0.0), "lbfgs", memory=5)
    with pytest.raises(ValueError, match="h0_scaling"):
        minimize(ROSENBROCK, (0.0, 0.0), "bfgs", h0_scaling="dynamic")
    with pytest.raises(ValueError, match="c1 < c2"):
        minimize(ROSENBROCK, (0.0, 0.0), "bfgs", c2=1e-5)
    with pytest.raises(ValueError, match="unknown surface"):
        minimize("banana", (0.0, 0.0))
    with pytest.raises(ValueError, match="grad"):
        minimize(object(), (0.0, 0.0))


# --------------------------------------------------------------------------------------------
# torch_lbfgs: LBFGSOptimizer against torch.optim.LBFGS
# --------------------------------------------------------------------------------------------


def _logistic_run(opt_cls, steps=4, **kw):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g, dtype=torch.float64)
    y = (torch.sigmoid(X @ torch.randn(5, generator=g, dtype=torch.float64))
         > torch.rand(200, generator=g, dtype=torch.float64)).double()
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([w, b], **kw)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, y)
        loss = loss + 1e-3 * (w**2).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return torch.cat([w.detach(), b.detach()]), losses


@pytest.mark.parametrize(
    "kw",
    [{"lr": 1.0, "max_iter": 20, "history_size": 10},
     {"lr": 0.5, "max_iter": 3, "history_size": 2},
     {"lr": 1.0, "max_iter": 20, "history_size": 10, "line_search_fn": "strong_wolfe"},
     {"lr": 1.0, "max_iter": 4, "history_size": 5, "line_search_fn": "strong_wolfe"}],
)
def test_lbfgs_optimizer_matches_torch_on_logistic_regression(kw):
    ours, our_losses = _logistic_run(LBFGSOptimizer, **kw)
    ref, ref_losses = _logistic_run(torch.optim.LBFGS, **kw)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-10)


def test_lbfgs_optimizer_matches_torch_on_a_small_mlp():
    def run(opt_cls):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        net = net.double()
        g = torch.Generator().manual_seed(1)
        X = torch.randn(64, 4, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (64,), generator=g)
        opt = opt_cls(net.parameters(), lr=1.0, max_iter=5, history_size=10)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(X), y)
            loss.backward()
            return loss

        losses = [float(opt.step(closure).detach()) for _ in range(3)]
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()]), losses

    ours, lo = run(LBFGSOptimizer)
    ref, lr_ = run(torch.optim.LBFGS)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    assert lo[-1] < lo[0]
    np.testing.assert_allclose(lo, lr_, rtol=1e-9)


@pytest.mark.parametrize("start", [(-1.2, 1.0), (-1.5, 2.0), (1.8, -0.5)])
def test_lbfgs_optimizer_strong_wolfe_converges_on_rosenbrock(start):
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer("lbfgs", [x], max_iter=200, line_search_fn="strong_wolfe",
                         tolerance_grad=1e-10, tolerance_change=1e-14)
    assert isinstance(opt, LBFGSOptimizer)

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(x.detach(), torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert opt.state[x]["n_iter"] <= 60


def test_lbfgs_optimizer_bad_arguments():
    p = [torch.zeros(2, requires_grad=True)]
    for kw, pattern in [
        ({"lr": 0.0}, r"lr must be in \(0, inf\)"),
        ({"lr": -1.0}, r"lr must be in \(0, inf\)"),
        ({"history_size": 0}, r"history_size must be an integer in \[1, inf\)"),
        ({"max_iter": 0}, r"max_iter must be an integer in \[1, inf\)"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"tolerance_grad": -1.0}, "tolerance_grad"),
        ({"line_search_fn": "armijo"}, "line_search_fn"),
        ({"momentum": 0.9}, "unknown hyperparameter 'momentum'"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            LBFGSOptimizer(p, **kw)
        with pytest.raises(ValueError, match=pattern):
            make_optimizer("lbfgs", p, **kw)


def test_lbfgs_optimizer_state_survives_state_dict():
    def run(x, opt, steps):
        def closure():
            opt.zero_grad()
            loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
            loss.backward()
            return loss

        for _ in range(steps):
            opt.step(closure)

    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    run(x, LBFGSOptimizer([x], max_iter=3), 6)
    y = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = LBFGSOptimizer([y], max_iter=3)
    run(y, opt, 3)
    z = y.detach().clone().requires_grad_()
    resumed = LBFGSOptimizer([z], max_iter=3)
    resumed.load_state_dict(opt.state_dict())
    run(z, resumed, 3)
    torch.testing.assert_close(z.detach(), x.detach(), rtol=0, atol=0)
