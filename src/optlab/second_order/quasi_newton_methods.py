r"""BFGS and L-BFGS: the quasi-Newton iteration behind ``optlab.minimize(..., method="bfgs")``
and ``method="lbfgs"`` (chapter 10 prints :func:`quasi_newton` as the code).

Direction :math:`p_k = -H_k g_k` (the dense inverse-Hessian :math:`H_k` for BFGS, the two-loop
recursion over the last ``m`` pairs for L-BFGS), a strong-Wolfe step, then the update.
"""

from __future__ import annotations

import numpy as np

from .iterates import (
    MSG_CONV,
    MSG_DIVERGED,
    MSG_LS,
    MSG_MAXIT,
    MinimizeResult,
    Objective,
    Trace,
    diverged,
)
from .lbfgs_memory import remember_pair, two_loop
from .line_search import LineSearchResult, wolfe_line_search

H_PATH_MAX_DIM = 64  # L-BFGS forms its implicit matrix for H_path only up to this dimension


def _first_alpha(p: np.ndarray) -> float:
    """Initial trial step of the first iteration (and after a reset): at most unit length."""
    return min(1.0, 1.0 / float(np.linalg.norm(p)))


def _line_search(
    obj: Objective, x: np.ndarray, f: float, g: np.ndarray, p: np.ndarray, alpha1: float,
    c1: float, c2: float, max_ls: int,
) -> LineSearchResult:
    def phi(a: float) -> tuple[float, float, np.ndarray]:
        xa = x + a * p
        fa, ga = obj.f(xa), obj.grad(xa)
        return fa, float(ga @ p), ga

    return wolfe_line_search(phi, f, float(g @ p), alpha1, c1=c1, c2=c2, max_evals=max_ls)


def quasi_newton(
    obj: Objective, x: np.ndarray, max_iter: int, tol: float, *, c1: float, c2: float,
    h0_scaling: str, max_ls: int, m: int | None = None,
) -> MinimizeResult:
    """BFGS (``m is None``: the dense inverse-Hessian update) or L-BFGS (memory ``m``)."""
    n = x.size
    eye = np.eye(n)
    f, g = obj.f(x), obj.grad(x)
    limited = m is not None
    tr = Trace(obj, "lbfgs" if limited else "bfgs", x, f)
    store_H = not limited or n <= H_PATH_MAX_DIM
    # BFGS state: the matrix H; L-BFGS state: the pairs and gamma.
    H = eye.copy()
    S: list[np.ndarray] = []
    Y: list[np.ndarray] = []
    R: list[float] = []
    gamma = 1.0
    fresh = True  # no curvature pair yet (start, or after a reset)

    def implicit_H() -> np.ndarray:  # L-BFGS's H_k, column by column (symmetric up to rounding)
        Hk = -np.column_stack([two_loop(e, S, Y, gamma, R) for e in eye])
        return 0.5 * (Hk + Hk.T)

    Hs: list[np.ndarray] = [eye.copy()]
    if store_H:
        tr.Hs = Hs
    for _ in range(max_iter):
        if np.linalg.norm(g) <= tol:
            return tr.result(g, True, MSG_CONV)
        p = two_loop(g, S, Y, gamma, R) if limited else -(H @ g)
        if not g @ p < 0:  # cannot happen with a positive definite H; guard anyway
            H, S, Y, R, gamma, fresh = eye.copy(), [], [], [], 1.0, True
            p = -g

        alpha1 = _first_alpha(p) if fresh else 1.0
        ls = _line_search(obj, x, f, g, p, alpha1, c1, c2, max_ls)
        if not ls.success and not fresh:
            # restart once from steepest descent, dropping the curvature information
            H, S, Y, R, gamma, fresh = eye.copy(), [], [], [], 1.0, True
            p = -g
            ls = _line_search(obj, x, f, g, p, _first_alpha(p), c1, c2, max_ls)
        if not ls.success:
            return tr.result(g, False, MSG_LS)
        s = ls.alpha * p
        x_new = x + s
        g_new = ls.payload
        y = g_new - g
        ys = float(y @ s)
        if ys > 0:  # curvature condition; the Wolfe step guarantees it, but guard
            if m is not None:  # L-BFGS
                if h0_scaling == "dynamic" or (fresh and h0_scaling == "first"):
                    gamma = ys / float(y @ y)  # N&W eq. 7.20 (every iteration, or the first)
                remember_pair(S, Y, R, s, y, ys, m)
            else:
                if fresh and h0_scaling == "first":
                    H = (ys / float(y @ y)) * eye  # N&W eq. 6.20, before the first update
                rho = 1.0 / ys
                Hy = H @ y
                # (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, expanded (symmetric by construction)
                H = (H - rho * (np.outer(s, Hy) + np.outer(Hy, s))
                     + (rho * rho * float(y @ Hy) + rho) * np.outer(s, s))
            fresh = False
        x, f, g = x_new, ls.phi, g_new
        tr.add(x, f, ls.alpha)
        if store_H:
            Hs.append(implicit_H() if limited else H.copy())
        if diverged(x, f, g):
            return tr.result(g, False, MSG_DIVERGED)
    if np.linalg.norm(g) <= tol:
        return tr.result(g, True, MSG_CONV)
    return tr.result(g, False, MSG_MAXIT)


__all__ = ["H_PATH_MAX_DIM", "quasi_newton"]
