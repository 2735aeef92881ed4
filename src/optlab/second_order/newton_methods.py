r"""Newton's method, plain and damped: the iterations behind ``optlab.minimize(...,
method="newton")`` and ``method="newton_damped"`` (the chapter prints them as the code).

Each takes the counted objective, the start, ``max_iter`` and ``tol`` (and the damped method its
options, checked by :func:`optlab.minimize`) and returns a :class:`MinimizeResult`.
"""

from __future__ import annotations

import numpy as np

from .iterates import MSG_CONV, MSG_DIVERGED, MSG_MAXIT, MinimizeResult, Objective, Trace, diverged


def newton(obj: Objective, x: np.ndarray, max_iter: int, tol: float) -> MinimizeResult:
    f, g = obj.f(x), obj.grad(x)
    tr = Trace(obj, "newton", x, f)
    for _ in range(max_iter):
        if np.linalg.norm(g) <= tol:
            break
        H = obj.hessian(x)
        try:
            step = np.linalg.solve(H, g)  # H p = g: solve, never invert
        except np.linalg.LinAlgError:
            return tr.result(g, False, "stopped: the Hessian is singular")
        x = x - step
        f, g = obj.f(x), obj.grad(x)
        tr.add(x, f, 1.0)
        if diverged(x, f, g):
            return tr.result(g, False, MSG_DIVERGED)
    if np.linalg.norm(g) > tol:
        return tr.result(g, False, MSG_MAXIT)
    msg = MSG_CONV
    eig = np.linalg.eigvalsh(obj.hessian(x))  # x is finite: the loop stops a diverged run
    if eig[0] < 0 < eig[-1]:
        msg += " (the Hessian is indefinite there: a saddle point)"
    elif eig[-1] < 0:
        msg += " (the Hessian is negative definite there: a maximum)"
    return tr.result(g, True, msg)


def newton_damped(
    obj: Objective, x: np.ndarray, max_iter: int, tol: float, *, modification: str,
    min_eig: float, c1: float, backtrack: float, max_backtrack: int,
) -> MinimizeResult:
    f, g = obj.f(x), obj.grad(x)
    tr = Trace(obj, "newton_damped", x, f)
    for _ in range(max_iter):
        gnorm = np.linalg.norm(g)
        lam, V = np.linalg.eigh(obj.hessian(x))
        neg_tol = 1e-8 * max(1.0, abs(lam[-1]))
        if gnorm <= tol and lam[0] >= -neg_tol:
            return tr.result(g, True, MSG_CONV + " (the Hessian is positive semidefinite)")
        if gnorm <= tol:
            # At a critical point with negative curvature: move along the eigenvector of the
            # most negative eigenvalue, signed downhill; accept when f drops by the model's
            # second-order decrease: f(x + a d) <= f + c1 (a g.d + a^2 lam_min / 2).
            d = V[:, 0] if g @ V[:, 0] <= 0 else -V[:, 0]
            slope, curv = float(g @ d), float(lam[0])
        else:
            if modification == "shift":
                mod = lam + max(0.0, min_eig - lam[0])  # H + λI, λ = max(0, δ − λ_min)
            else:
                mod = np.maximum(np.abs(lam), min_eig)  # |H|, eigenvalues floored at δ
            d = -V @ ((V.T @ g) / mod)  # solve (modified H) d = −g in the eigenbasis
            slope, curv = float(g @ d), 0.0
        a = 1.0
        for _ in range(max_backtrack):
            x_new = x + a * d
            f_new = obj.f(x_new)
            if np.isfinite(f_new) and f_new <= f + c1 * (a * slope + 0.5 * a * a * curv) and (
                f_new < f
            ):
                break
            a *= backtrack
        else:
            return tr.result(g, False, "stopped: backtracking found no decrease of f")
        x, f = x_new, f_new
        g = obj.grad(x)
        tr.add(x, f, a)
        if diverged(x, f, g):
            return tr.result(g, False, MSG_DIVERGED)
    gnorm = np.linalg.norm(g)
    if gnorm <= tol:
        lam = np.linalg.eigvalsh(obj.hessian(x))
        if lam[0] >= -1e-8 * max(1.0, abs(lam[-1])):
            return tr.result(g, True, MSG_CONV + " (the Hessian is positive semidefinite)")
    return tr.result(g, False, MSG_MAXIT)


__all__ = ["newton", "newton_damped"]
