r"""Second-order methods: Newton, damped Newton, BFGS and L-BFGS.

* :func:`minimize` runs one of them on a 2-D toy surface (or any object with ``f``, ``grad``
  and ``hessian`` on 1-D NumPy vectors) and returns a :class:`MinimizeResult` holding every
  iterate, so that a chapter can draw the path, and for (L-)BFGS every inverse-Hessian
  approximation, so that it can draw that matrix as an ellipse converging to the true one.
* :func:`two_loop` is L-BFGS's two-loop recursion as a pure function. It uses only ``@`` and
  arithmetic, so the same code runs on NumPy vectors (:func:`minimize`) and on flat PyTorch
  tensors (:class:`LBFGSOptimizer`).
* :func:`wolfe_line_search` is the strong-Wolfe line search (Nocedal & Wright, Alg. 3.5 and
  3.6) on a scalar function :math:`\phi(\alpha) = f(x + \alpha p)`, shared the same way.
* :class:`LBFGSOptimizer` is a closure-based ``torch.optim.Optimizer`` that does what
  ``torch.optim.LBFGS`` does, with :func:`two_loop` and :func:`wolfe_line_search` inside.

Notation (Nocedal & Wright, *Numerical Optimization*, 2nd ed.): :math:`g_k = \nabla f(x_k)`,
:math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`, :math:`\rho_k = 1 / y_k^\top s_k`,
:math:`H_k` the approximation of the **inverse** Hessian, :math:`p_k` the search direction and
:math:`\alpha_k` the step length, :math:`x_{k+1} = x_k + \alpha_k p_k`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

METHODS: tuple[str, ...] = ("newton", "newton_damped", "bfgs", "lbfgs")

# Options each method takes (minimize's **options), with their defaults.
_OPTIONS: dict[str, dict[str, Any]] = {
    "newton": {"damping": False},
    "newton_damped": {
        "modification": "shift", "min_eig": 1e-3, "c1": 1e-4, "backtrack": 0.5,
        "max_backtrack": 60,
    },
    "bfgs": {"c1": 1e-4, "c2": 0.9, "h0_scaling": "none", "max_ls": 30},
    "lbfgs": {"m": 10, "c1": 1e-4, "c2": 0.9, "h0_scaling": "dynamic", "max_ls": 30},
}
_H_PATH_MAX_DIM = 64  # L-BFGS forms its implicit matrix for H_path only up to this dimension


# --------------------------------------------------------------------------------------------
# The two pieces shared with the torch optimizer: two-loop recursion and Wolfe line search
# --------------------------------------------------------------------------------------------


def two_loop(
    grad: Any,
    s_list: Sequence[Any],
    y_list: Sequence[Any],
    gamma: Any = 1.0,
    rho_list: Sequence[Any] | None = None,
) -> Any:
    r"""L-BFGS two-loop recursion (Nocedal & Wright, Alg. 7.4): the descent direction
    :math:`p = -H_k\, g` without forming :math:`H_k`.

    :math:`H_k` is the matrix obtained by applying the BFGS update

    .. math::  H \leftarrow (I - \rho\, s y^\top)\, H\, (I - \rho\, y s^\top) + \rho\, s s^\top

    for the stored pairs :math:`(s_i, y_i)`, oldest first, to :math:`H_k^0 = \gamma I`:

    .. code-block:: text

        q = -g
        for i = newest … oldest:   a_i = rho_i s_i·q ;   q = q - a_i y_i
        r = gamma q
        for i = oldest … newest:   b   = rho_i y_i·r ;   r = r + (a_i - b) s_i
        return r                   # = -H_k g

    ``grad``, ``s_list[i]`` and ``y_list[i]`` are 1-D NumPy arrays or 1-D torch tensors (the
    function uses only ``@``, ``*``, ``+`` and ``-``, so it works on both and keeps torch
    scalars on the device). ``rho_list`` may pass precomputed :math:`\rho_i = 1/y_i^\top s_i`.
    With no pairs it returns :math:`-\gamma g`. The operation order is that of
    ``torch.optim.LBFGS``, so the two agree to the last bit.
    """
    if len(s_list) != len(y_list):
        raise ValueError(f"two_loop: {len(s_list)} s vectors but {len(y_list)} y vectors")
    if rho_list is None:
        rho_list = [1.0 / (y @ s) for s, y in zip(s_list, y_list, strict=True)]
    q = -grad
    alphas = [None] * len(s_list)
    for i in range(len(s_list) - 1, -1, -1):  # newest to oldest
        alphas[i] = (s_list[i] @ q) * rho_list[i]
        q = q - alphas[i] * y_list[i]
    r = q * gamma  # H_k^0 = γ I
    for i in range(len(s_list)):  # oldest to newest
        beta = (y_list[i] @ r) * rho_list[i]
        r = r + (alphas[i] - beta) * s_list[i]
    return r


class LineSearchResult(NamedTuple):
    """What :func:`wolfe_line_search` found.

    ``alpha``, ``phi``, ``dphi``, ``payload``: the accepted step, :math:`\\phi(\\alpha)`,
    :math:`\\phi'(\\alpha)` and whatever the objective returned with them (the gradient).
    ``success`` is True when both strong Wolfe conditions hold; otherwise ``alpha`` is the best
    step found that satisfies sufficient decrease (0.0, with ``payload`` None, if none did).
    ``nfev`` counts the evaluations of :math:`\\phi`.
    """

    alpha: float
    phi: float
    dphi: float
    payload: Any
    success: bool
    nfev: int


def _cubic_min(a1: float, f1: float, d1: float, a2: float, f2: float, d2: float) -> float:
    r"""Minimizer of the cubic through :math:`(a_1, f_1, f'_1)` and :math:`(a_2, f_2, f'_2)`
    (Nocedal & Wright, eq. 3.59); NaN when it has none or the numbers are not finite."""
    with np.errstate(all="ignore"):
        if a1 == a2:
            return math.nan
        t1 = d1 + d2 - 3.0 * (f1 - f2) / (a1 - a2)
        rad = t1 * t1 - d1 * d2
        if not math.isfinite(rad) or rad < 0:
            return math.nan
        t2 = math.copysign(math.sqrt(rad), a2 - a1)
        den = d2 - d1 + 2.0 * t2
        if den == 0 or not math.isfinite(den):
            return math.nan
        a = a2 - (a2 - a1) * (d2 + t2 - t1) / den
    return a if math.isfinite(a) else math.nan


def wolfe_line_search(
    phi: Callable[[float], tuple[float, float, Any]],
    phi0: float,
    dphi0: float,
    alpha1: float = 1.0,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = 30,
    alpha_max: float = 1e10,
    xtol: float = 1e-12,
    min_width: float = 0.0,
) -> LineSearchResult:
    r"""A step length satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5/3.6).

    With :math:`\phi(\alpha) = f(x + \alpha p)` and a descent direction
    (:math:`\phi'(0) = g^\top p < 0`), find :math:`\alpha > 0` with

    .. math::
        \phi(\alpha) \le \phi(0) + c_1\, \alpha\, \phi'(0)
        \quad\text{(sufficient decrease, Armijo)}, \qquad
        |\phi'(\alpha)| \le c_2\, |\phi'(0)| \quad\text{(strong curvature)},

    :math:`0 < c_1 < c_2 < 1`. **Bracketing** (Alg. 3.5) tries :math:`\alpha_1` and grows the
    step (cubic extrapolation, clipped to :math:`[1.5\alpha, 10\alpha]`) until a trial point
    is acceptable or an interval known to contain one is found. **Zoom** (Alg. 3.6) then
    shrinks that interval :math:`[\alpha_{lo}, \alpha_{hi}]` (:math:`\alpha_{lo}` the best
    point satisfying sufficient decrease), each trial being the minimizer of the cubic through
    both ends' values and slopes (eq. 3.59), or the midpoint when that cubic has no minimizer
    in the middle 80 % of the interval.

    ``phi(alpha)`` returns ``(phi, dphi, payload)`` (the payload, e.g. the gradient at
    :math:`x + \alpha p`, comes back with the accepted step). ``max_evals`` bounds the number
    of calls; the search also stops when the interval is narrower than
    ``max(xtol * alpha, min_width)``. On failure the result has ``success=False`` and the best
    sufficient-decrease step found (possibly 0).
    """
    if not dphi0 < 0:
        return LineSearchResult(0.0, phi0, dphi0, None, False, 0)
    nfev = 0
    best = (0.0, phi0, dphi0, None)  # best step satisfying sufficient decrease so far

    def armijo(a: float, f_a: float) -> bool:
        return bool(f_a <= phi0 + c1 * a * dphi0)

    def zoom(lo: tuple, hi: tuple) -> LineSearchResult:
        nonlocal nfev
        while nfev < max_evals:
            a_lo, f_lo, d_lo, _ = lo
            a_hi, f_hi, d_hi, _ = hi
            width = abs(a_hi - a_lo)
            if width <= max(xtol * max(a_lo, a_hi), min_width):
                break
            a = _cubic_min(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi)
            left, right = min(a_lo, a_hi), max(a_lo, a_hi)
            if not (left + 0.1 * width <= a <= right - 0.1 * width):  # NaN fails too
                a = 0.5 * (a_lo + a_hi)  # bisection
            f_a, d_a, pay = phi(a)
            nfev += 1
            if not (math.isfinite(f_a) and math.isfinite(d_a)) or not armijo(a, f_a) or (
                f_a >= f_lo
            ):
                hi = (a, f_a, d_a, pay)
            else:
                if abs(d_a) <= -c2 * dphi0:
                    return LineSearchResult(a, f_a, d_a, pay, True, nfev)
                if d_a * (a_hi - a_lo) >= 0:
                    hi = lo
                lo = (a, f_a, d_a, pay)
        a_lo, f_lo, d_lo, pay_lo = lo
        return LineSearchResult(a_lo, f_lo, d_lo, pay_lo, False, nfev)

    prev = (0.0, phi0, dphi0, None)
    a = float(alpha1)
    first = True
    while nfev < max_evals:
        f_a, d_a, pay = phi(a)
        nfev += 1
        cur = (a, f_a, d_a, pay)
        if not (math.isfinite(f_a) and math.isfinite(d_a)) or not armijo(a, f_a) or (
            not first and f_a >= prev[1]
        ):
            return zoom(prev, cur)
        best = cur
        if abs(d_a) <= -c2 * dphi0:
            return LineSearchResult(a, f_a, d_a, pay, True, nfev)
        if d_a >= 0:
            return zoom(cur, prev)
        if a >= alpha_max:
            break
        a_next = _cubic_min(prev[0], prev[1], prev[2], a, f_a, d_a)
        lo_b, hi_b = a + 0.5 * (a - prev[0]), 10.0 * a
        a_next = 2.0 * a if math.isnan(a_next) else min(max(a_next, lo_b), hi_b)
        prev, a, first = cur, min(a_next, alpha_max), False
    a_b, f_b, d_b, pay_b = best
    return LineSearchResult(a_b, f_b, d_b, pay_b, False, nfev)


# --------------------------------------------------------------------------------------------
# minimize() on NumPy vectors
# --------------------------------------------------------------------------------------------


@dataclass
class MinimizeResult:
    """What :func:`minimize` returns.

    * ``x``: the last iterate; ``path``: every iterate, shape ``(nit + 1, n)``, ``path[0]``
      the start; ``f_path``: :math:`f` at each of them, shape ``(nit + 1,)``.
    * ``nit``: iterations (steps) taken; ``converged``: the gradient norm reached ``tol``
      (and, for ``newton_damped``, the Hessian there is positive semidefinite).
    * ``fun``, ``grad_norm``: :math:`f(x)` and :math:`\\|\\nabla f(x)\\|_2` at ``x``.
    * ``nfev``, ``ngev``, ``nhev``: calls of ``f``, ``grad`` and ``hessian``.
    * ``alphas``: the step length of each iteration, shape ``(nit,)`` (1.0 for plain Newton).
    * ``saddle``: for a converged BFGS or L-BFGS result, ``True`` when the point is a saddle
      or a maximum (the surface's Hessian there, evaluated once and not counted in ``nhev``,
      has a negative eigenvalue; ``message`` says so), ``False`` when it is positive
      semidefinite, ``None`` when unknown (no Hessian; and for plain Newton). A zero gradient
      is all the first-order test sees: started *at* a saddle, BFGS "converges" in 0 steps.
      ``newton_damped`` converges only where the Hessian is positive semidefinite (``False``).
    * ``H_path``: for ``bfgs`` and ``lbfgs`` the inverse-Hessian approximations, shape
      ``(nit + 1, n, n)``: ``H_path[k]`` is the matrix that gives the direction
      :math:`p_k = -H_k g_k` at ``path[k]`` (``H_path[0]`` is the identity, the last one is the
      approximation at ``x``). ``None`` for the Newton methods (and for L-BFGS with more than
      64 variables).
    """

    x: np.ndarray
    path: np.ndarray
    nit: int
    converged: bool
    fun: float
    grad_norm: float
    nfev: int
    ngev: int
    message: str
    method: str
    H_path: np.ndarray | None = None
    f_path: np.ndarray = field(default_factory=lambda: np.zeros(0))
    alphas: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nhev: int = 0
    saddle: bool | None = None


class _Objective:
    """The surface with evaluation counters and shape checks."""

    def __init__(self, surface: Any, n: int) -> None:
        self.surface, self.n = surface, n
        self.nfev = self.ngev = self.nhev = 0
        self._first: tuple[np.ndarray, np.ndarray] | None = None  # the shape-check gradient

    def check(self, x: np.ndarray) -> None:
        """Evaluate the gradient once at the start (shape check); the method reuses it."""
        self._first = (x.copy(), self.grad(x))

    def f(self, x: np.ndarray) -> float:
        self.nfev += 1
        v = np.asarray(self.surface.f(x), dtype=float)
        if v.size != 1:
            raise ValueError(f"f(x) returned shape {v.shape} for x of shape {x.shape}")
        return float(v.reshape(()))

    def grad(self, x: np.ndarray) -> np.ndarray:
        if self._first is not None:
            x_first, g_first = self._first
            self._first = None
            if np.array_equal(x, x_first):
                return g_first.copy()
        self.ngev += 1
        g = np.asarray(self.surface.grad(x), dtype=float)
        if g.shape != (self.n,):
            raise ValueError(f"grad(x) returned shape {g.shape} for x of shape {x.shape}")
        return g

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self.nhev += 1
        if not hasattr(self.surface, "hessian"):
            raise ValueError("this method needs the surface's hessian(x)")
        h = np.asarray(self.surface.hessian(x), dtype=float)
        if h.shape != (self.n, self.n):
            raise ValueError(f"hessian(x) returned shape {h.shape} for x of shape {x.shape}")
        return 0.5 * (h + h.T)


def _resolve_surface(surface: Any) -> Any:
    if isinstance(surface, str):
        from .surfaces import get_surface

        return get_surface(surface)
    if not (hasattr(surface, "f") and hasattr(surface, "grad")):
        raise ValueError(
            "surface must be a Surface, a surface name, or an object with f(x), grad(x) "
            f"(and hessian(x) for Newton); got {type(surface).__name__}"
        )
    return surface


def _surface_dim(surface: Any) -> int | None:
    for attr in ("dim", "ndim", "n_dim"):
        d = getattr(surface, attr, None)
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            return int(d)
    return None


class _Trace:
    """Accumulates the iterates and builds the result."""

    def __init__(self, obj: _Objective, method: str, x: np.ndarray, f: float) -> None:
        self.obj, self.method = obj, method
        self.xs, self.fs, self.alphas = [x.copy()], [f], []
        self.Hs: list[np.ndarray] | None = None

    def add(self, x: np.ndarray, f: float, alpha: float) -> None:
        self.xs.append(x.copy())
        self.fs.append(f)
        self.alphas.append(alpha)

    def result(self, g: np.ndarray, converged: bool, message: str) -> MinimizeResult:
        return MinimizeResult(
            x=self.xs[-1].copy(),
            path=np.array(self.xs),
            nit=len(self.xs) - 1,
            converged=bool(converged),
            fun=float(self.fs[-1]),
            grad_norm=float(np.linalg.norm(g)),
            nfev=self.obj.nfev,
            ngev=self.obj.ngev,
            message=message,
            method=self.method,
            H_path=None if self.Hs is None else np.array(self.Hs),
            f_path=np.array(self.fs, dtype=float),
            alphas=np.array(self.alphas, dtype=float),
            nhev=self.obj.nhev,
        )


def _finite(*values: Any) -> bool:
    return all(bool(np.all(np.isfinite(v))) for v in values)


def _diverged(x: np.ndarray, f: float, g: np.ndarray) -> bool:
    return not _finite(x, f, g) or float(np.max(np.abs(x))) > _X_MAX


_MSG_CONV = "converged: gradient norm below tol"
_MSG_MAXIT = "maximum number of iterations reached"
_MSG_DIVERGED = "stopped: diverged (f or the gradient not finite, or |x| above 1e100)"
_MSG_LS = (
    "stopped: the line search found no strong-Wolfe step (f may be unbounded below along the "
    "search direction, or the precision of f is exhausted)"
)
_X_MAX = 1e100


def _newton(obj: _Objective, x: np.ndarray, max_iter: int, tol: float) -> MinimizeResult:
    f, g = obj.f(x), obj.grad(x)
    tr = _Trace(obj, "newton", x, f)
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
        if _diverged(x, f, g):
            return tr.result(g, False, _MSG_DIVERGED)
    if np.linalg.norm(g) > tol:
        return tr.result(g, False, _MSG_MAXIT)
    msg = _MSG_CONV
    if _finite(x):
        eig = np.linalg.eigvalsh(obj.hessian(x))
        if eig[0] < 0 < eig[-1]:
            msg += " (the Hessian is indefinite there: a saddle point)"
        elif eig[-1] < 0:
            msg += " (the Hessian is negative definite there: a maximum)"
    return tr.result(g, True, msg)


def _newton_damped(
    obj: _Objective, x: np.ndarray, max_iter: int, tol: float, *, modification: str,
    min_eig: float, c1: float, backtrack: float, max_backtrack: int,
) -> MinimizeResult:
    f, g = obj.f(x), obj.grad(x)
    tr = _Trace(obj, "newton_damped", x, f)
    for _ in range(max_iter):
        gnorm = np.linalg.norm(g)
        lam, V = np.linalg.eigh(obj.hessian(x))
        neg_tol = 1e-8 * max(1.0, abs(lam[-1]))
        if gnorm <= tol and lam[0] >= -neg_tol:
            return tr.result(g, True, _MSG_CONV + " (the Hessian is positive semidefinite)")
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
        if _diverged(x, f, g):
            return tr.result(g, False, _MSG_DIVERGED)
    gnorm = np.linalg.norm(g)
    if gnorm <= tol:
        lam = np.linalg.eigvalsh(obj.hessian(x))
        if lam[0] >= -1e-8 * max(1.0, abs(lam[-1])):
            return tr.result(g, True, _MSG_CONV + " (the Hessian is positive semidefinite)")
    return tr.result(g, False, _MSG_MAXIT)


def _first_alpha(p: np.ndarray) -> float:
    """Initial trial step of the first iteration (and after a reset): at most unit length."""
    return min(1.0, 1.0 / float(np.linalg.norm(p)))


def _line_search(
    obj: _Objective, x: np.ndarray, f: float, g: np.ndarray, p: np.ndarray, alpha1: float,
    c1: float, c2: float, max_ls: int,
) -> LineSearchResult:
    def phi(a: float) -> tuple[float, float, np.ndarray]:
        xa = x + a * p
        fa, ga = obj.f(xa), obj.grad(xa)
        return fa, float(ga @ p), ga

    return wolfe_line_search(phi, f, float(g @ p), alpha1, c1=c1, c2=c2, max_evals=max_ls)


def _quasi_newton(
    obj: _Objective, x: np.ndarray, max_iter: int, tol: float, *, method: str, c1: float,
    c2: float, h0_scaling: str, max_ls: int, m: int | None = None,
) -> MinimizeResult:
    """BFGS (``m is None``: the dense inverse-Hessian update) or L-BFGS (memory ``m``)."""
    n = x.size
    eye = np.eye(n)
    f, g = obj.f(x), obj.grad(x)
    tr = _Trace(obj, method, x, f)
    limited = m is not None
    store_H = not limited or n <= _H_PATH_MAX_DIM
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

    if store_H:
        tr.Hs = [eye.copy()]
    for _ in range(max_iter):
        if np.linalg.norm(g) <= tol:
            return tr.result(g, True, _MSG_CONV)
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
            return tr.result(g, False, _MSG_LS)
        s = ls.alpha * p
        x_new = x + s
        g_new = ls.payload
        y = g_new - g
        ys = float(y @ s)
        if ys > 0:  # curvature condition; the Wolfe step guarantees it, but guard
            if limited:
                if fresh and h0_scaling == "first":
                    gamma = ys / float(y @ y)
                elif h0_scaling == "dynamic":
                    gamma = ys / float(y @ y)  # N&W eq. 7.20, recomputed every iteration
                S.append(s)
                Y.append(y)
                R.append(1.0 / ys)
                if len(S) > m:
                    S.pop(0)
                    Y.pop(0)
                    R.pop(0)
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
            tr.Hs.append(implicit_H() if limited else H.copy())
        if _diverged(x, f, g):
            return tr.result(g, False, _MSG_DIVERGED)
    if np.linalg.norm(g) <= tol:
        return tr.result(g, True, _MSG_CONV)
    return tr.result(g, False, _MSG_MAXIT)


def minimize(
    surface: Any,
    x0: Any,
    method: str = "bfgs",
    *,
    max_iter: int = 200,
    tol: float = 1e-8,
    **options: Any,
) -> MinimizeResult:
    r"""Minimize a smooth function with a second-order method, recording every iterate.

    ``surface`` is a :class:`optlab.surfaces.Surface`, a surface name (looked up with
    :func:`optlab.surfaces.get_surface`), or any object with ``f(x)``, ``grad(x)`` and
    ``hessian(x)`` on 1-D NumPy vectors (``hessian`` only for the Newton methods). ``x0`` is the
    start, shape ``(n,)``. The iteration stops when :math:`\|\nabla f(x_k)\|_2 \le` ``tol``, after
    ``max_iter`` steps, or when no acceptable step is found; ``result.message`` says which.

    **Methods** (``method=``) and their ``options``:

    ``"newton"`` — plain Newton, no safeguard:

    .. math::  x_{k+1} = x_k - \nabla^2 f(x_k)^{-1} \nabla f(x_k)

    computed by solving :math:`\nabla^2 f(x_k)\, p = \nabla f(x_k)` (never by inverting). It
    minimizes the local quadratic model only when the Hessian is positive definite; otherwise it
    jumps to the model's critical point, so it is attracted to saddle points and maxima as much
    as to minima (started near a saddle it converges there, quadratically). One step solves a
    quadratic exactly. ``damping=True`` runs ``"newton_damped"`` instead.

    ``"newton_damped"`` — Newton with a Levenberg-style eigenvalue shift and a backtracking
    (Armijo) line search (Nocedal & Wright §3.4). With the eigenvalues
    :math:`\lambda_1 \le \dots \le \lambda_n` of :math:`\nabla^2 f(x_k)`:

    .. math::
        \mu_k = \max(0,\ \delta - \lambda_1), \qquad
        p_k = -(\nabla^2 f(x_k) + \mu_k I)^{-1} \nabla f(x_k), \qquad
        x_{k+1} = x_k + \alpha_k p_k

    with :math:`\delta` = ``min_eig`` (1e-3). The shifted matrix has every eigenvalue
    :math:`\ge \delta`, so :math:`p_k` is a descent direction (:math:`g_k^\top p_k < 0`); where
    the Hessian is already :math:`\succeq \delta I` the step *is* the Newton step, and the
    quadratic convergence near a minimum is kept. :math:`\alpha_k = \beta^j` (``backtrack``
    :math:`\beta = 0.5`) is the first step with
    :math:`f(x_k + \alpha p_k) \le f(x_k) + c_1 \alpha\, g_k^\top p_k` (``c1`` 1e-4), so
    **f decreases at every step**. Along an eigenvector of negative curvature the Newton
    step's pull towards the saddle becomes a push away from it (the component
    :math:`-g_i / \lambda_i` becomes :math:`-g_i / (\lambda_i + \mu_k)`, of the other sign and,
    for small :math:`\delta`, large). ``modification="abs"`` uses instead the eigenvalues'
    absolute values, :math:`|\nabla^2 f| = V \operatorname{diag}(\max(|\lambda_i|, \delta))
    V^\top` ("saddle-free Newton", Dauphin et al. 2014): the same push, but with the length of
    the Newton step. At a critical point with a negative eigenvalue (an exact saddle) the
    gradient gives no direction: the method steps along the eigenvector :math:`v_1` signed
    downhill, backtracking until :math:`f(x + \alpha v_1) \le f(x) + c_1(\alpha\, g^\top v_1 +
    \tfrac12 \alpha^2 \lambda_1)`. It reports convergence only where the gradient is below
    ``tol`` *and* the Hessian is positive semidefinite. (On a surface unbounded below, such as
    ``saddle``, it runs until ``max_iter`` or until :math:`|x|` passes 1e100.)

    ``"bfgs"`` — quasi-Newton with the inverse-Hessian update (Nocedal & Wright eq. 6.17)

    .. math::
        p_k = -H_k g_k, \quad x_{k+1} = x_k + \alpha_k p_k, \quad
        H_{k+1} = (I - \rho_k s_k y_k^\top)\, H_k\, (I - \rho_k y_k s_k^\top)
        + \rho_k s_k s_k^\top, \quad \rho_k = \frac{1}{y_k^\top s_k},

    which makes :math:`H_{k+1}` symmetric positive definite and satisfy the secant equation
    :math:`H_{k+1} y_k = s_k`. :math:`\alpha_k` comes from :func:`wolfe_line_search`
    (strong Wolfe, ``c1`` 1e-4, ``c2`` 0.9; trial step 1, or :math:`\min(1, 1/\|p_0\|)` on the
    first iteration), which guarantees :math:`y_k^\top s_k > 0`; the update is skipped if
    that ever fails numerically. ``h0_scaling`` chooses :math:`H_0`:

    * ``"none"`` (default): :math:`H_0 = I` throughout, as scipy's BFGS; on the 2-D surfaces
      ``H_path`` then starts as the unit circle and visibly turns into the true inverse
      Hessian's ellipse;
    * ``"first"``: :math:`H_0 = I` for the first step, then, just before the first update,
      :math:`H_0 \leftarrow \frac{y_0^\top s_0}{y_0^\top y_0} I` (Nocedal & Wright eq. 6.20),
      which puts :math:`H` on the scale of the inverse Hessian along the first step. That
      helps when the problem's scale is far from 1, but on an ill-conditioned quadratic the
      first (steepest-descent) step measures the *stiff* direction, and the too-small
      :math:`H_0` takes BFGS several extra iterations to correct.

    If the line search fails, BFGS restarts once from :math:`H = I` (a steepest-descent step).

    ``"lbfgs"`` — limited-memory BFGS: the same iteration with :math:`H_k g_k` computed by
    :func:`two_loop` from the last ``m`` (10) pairs :math:`(s_i, y_i)` and
    :math:`H_k^0 = \gamma_k I`. ``h0_scaling``:

    * ``"dynamic"`` (default): :math:`\gamma_k = s_{k-1}^\top y_{k-1} / y_{k-1}^\top y_{k-1}`
      from the newest pair (Nocedal & Wright eq. 7.20, as ``torch.optim.LBFGS``);
    * ``"first"``: :math:`\gamma` from the first pair, then held;
    * ``"none"``: :math:`\gamma = 1`.

    With ``m >= nit`` nothing is forgotten, and L-BFGS with ``h0_scaling="first"`` (or
    ``"none"``) is BFGS with the same ``h0_scaling``: the same iterates up to rounding. The
    default ``"dynamic"`` differs from BFGS from the third iteration on (the initial matrix
    changes every iteration).

    Returns a :class:`MinimizeResult` (path, values, step lengths, evaluation counts and, for
    BFGS and L-BFGS, the inverse-Hessian approximations ``H_path``). Raises ``ValueError`` for
    an unknown method or option, a bad option value, or an ``x0`` that is not a finite 1-D
    vector of the surface's dimension.
    """
    key = str(method).lower().replace("-", "")
    if key not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if key == "newton" and options.pop("damping", False):
        key = "newton_damped"
    opts = dict(_OPTIONS[key])
    if key == "newton_damped":
        options.pop("damping", None)
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise ValueError(
            f"{key}: unknown option {unknown[0]!r}; it takes "
            f"{', '.join(opts) if opts else 'no options'}"
        )
    opts.update(options)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 0):
        raise ValueError(f"{key}: max_iter must be an integer >= 0; got {max_iter!r}")
    if not (tol >= 0):
        raise ValueError(f"{key}: tol must be in [0, inf); got {tol!r}")
    _check_options(key, opts)

    surface = _resolve_surface(surface)
    try:
        x = np.array(x0, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"x0 must be a 1-D array of numbers; got {x0!r}") from None
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x0 must be a non-empty 1-D array of shape (n,); got shape {x.shape}")
    if not _finite(x):
        raise ValueError(f"x0 must be finite; got {x}")
    dim = _surface_dim(surface)
    if dim is not None and x.size != dim:
        raise ValueError(f"x0 must have shape ({dim},) for this surface; got shape {x.shape}")
    obj = _Objective(surface, x.size)
    try:  # the first evaluation also checks that the surface accepts this shape
        obj.check(x)
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f"x0 of shape {x.shape} does not fit the surface: {err}") from err

    if key == "newton":
        return _newton(obj, x, int(max_iter), float(tol))
    if key == "newton_damped":
        result = _newton_damped(obj, x, int(max_iter), float(tol), **opts)
        result.saddle = False if result.converged else None  # it converges only where H >= 0
        return result
    result = _quasi_newton(
        obj, x, int(max_iter), float(tol), method=key, c1=opts["c1"], c2=opts["c2"],
        h0_scaling=opts["h0_scaling"], max_ls=opts["max_ls"], m=opts.get("m"),
    )
    return _note_saddle(result, surface)


def _note_saddle(result: MinimizeResult, surface: Any) -> MinimizeResult:
    """Set ``result.saddle`` for a converged result and say so in its message when the point
    is a saddle (a negative eigenvalue of the surface's Hessian, uncounted in ``nhev``)."""
    if not result.converged:
        return result
    lam = None
    if hasattr(surface, "hessian") and result.x.size <= 256:
        try:
            h = np.asarray(surface.hessian(result.x), dtype=float)
            lam = float(np.linalg.eigvalsh(0.5 * (h + h.T))[0])
        except (ValueError, TypeError, np.linalg.LinAlgError):
            lam = None
    if lam is not None and np.isfinite(lam):
        result.saddle = lam < -1e-12 * max(1.0, abs(lam))
    if result.saddle:
        where = "its start, a stationary point," if result.nit == 0 else "a point"
        result.message += (f"; but {where} is a saddle (the Hessian has the eigenvalue "
                           f"{lam:.3g} < 0), not a minimum: start elsewhere, or use "
                           "method='newton_damped', which leaves saddles")
    elif result.saddle is None and result.nit == 0:
        result.message += ("; the start is a stationary point (zero gradient), which may be a "
                           "saddle or a maximum: without a Hessian this cannot be told")
    return result


def _check_options(method: str, opts: dict[str, Any]) -> None:
    def bad(name: str, rng: str) -> ValueError:
        return ValueError(f"{method}: {name} must be {rng}; got {opts[name]!r}")

    if "c1" in opts and "c2" in opts and not 0 < opts["c1"] < opts["c2"] < 1:
        raise ValueError(f"{method}: need 0 < c1 < c2 < 1; got c1={opts['c1']}, c2={opts['c2']}")
    if "c1" in opts and not 0 < opts["c1"] < 1:
        raise bad("c1", "in (0, 1)")
    if "modification" in opts and opts["modification"] not in ("shift", "abs"):
        raise bad("modification", "'shift' or 'abs'")
    if "min_eig" in opts and not opts["min_eig"] > 0:
        raise bad("min_eig", "in (0, inf)")
    if "backtrack" in opts and not 0 < opts["backtrack"] < 1:
        raise bad("backtrack", "in (0, 1)")
    for name in ("max_backtrack", "max_ls", "m"):
        if name in opts and not (isinstance(opts[name], (int, np.integer)) and opts[name] >= 1):
            raise bad(name, "an integer >= 1")
    if "h0_scaling" in opts:
        choices = ("first", "none") if method == "bfgs" else ("dynamic", "first", "none")
        if opts["h0_scaling"] not in choices:
            raise bad("h0_scaling", f"one of {', '.join(map(repr, choices))}")


# --------------------------------------------------------------------------------------------
# L-BFGS as a torch.optim optimizer
# --------------------------------------------------------------------------------------------

_LBFGS_OPTIONS = (
    "lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size",
    "line_search_fn",
)


class LBFGSOptimizer(torch.optim.Optimizer):
    r"""L-BFGS for PyTorch models, built on :func:`two_loop` and :func:`wolfe_line_search`.

    Used like ``torch.optim.LBFGS``: every :meth:`step` takes a ``closure`` that zeroes the
    gradients, computes the loss, calls ``backward()`` and returns the loss, and runs up to
    ``max_iter`` L-BFGS iterations on the flattened parameter vector :math:`w`:

    .. math::
        p_k = -H_k \nabla L(w_k) \ \text{(two-loop recursion, last } m \text{ pairs,}\
        H_k^0 = \gamma_k I,\ \gamma_k = s^\top y / y^\top y), \qquad
        w_{k+1} = w_k + t_k\, p_k

    * ``line_search_fn=None``: fixed step :math:`t_k` = ``lr``, except the very first
      iteration, where :math:`t_0 = \min(1, 1/\|g_0\|_1)\,` ``lr`` (steepest descent with a
      step of length at most ``lr`` in the 1-norm), exactly as ``torch.optim.LBFGS``.
    * ``line_search_fn="strong_wolfe"``: :math:`t_k` from :func:`wolfe_line_search`
      (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`) started at that same trial step.

    Options and their meaning are ``torch.optim.LBFGS``'s: ``lr`` (1.0), ``max_iter`` (20)
    iterations per ``step``, ``max_eval`` (``max_iter * 5 // 4``) closure calls per ``step``,
    ``tolerance_grad`` (1e-7, on :math:`\|g\|_\infty`), ``tolerance_change`` (1e-9, on the
    step and on the change of the loss), ``history_size`` :math:`m` (10 here; 100 in torch).
    A pair is stored only when :math:`y^\top s > 10^{-10}`, as torch does. The state (pairs,
    last direction and step) carries over from one ``step`` call to the next, so
    ``max_iter=1`` with a closure per minibatch is stochastic L-BFGS.

    Raises ``ValueError`` for an out-of-range or unknown option, naming the parameter and its
    range; like ``torch.optim.LBFGS`` it accepts a single parameter group only.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 10,
        line_search_fn: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(
                f"lbfgs: unknown hyperparameter {sorted(unknown)[0]!r}; it takes "
                f"{', '.join(_LBFGS_OPTIONS)}"
            )
        if isinstance(lr, torch.Tensor):
            if lr.numel() != 1:
                raise ValueError("lbfgs: a tensor lr must have one element")
            lr = float(lr)
        _check_number("lr", lr, 0.0, open_low=True)
        _check_int("max_iter", max_iter, 1)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        _check_int("max_eval", max_eval, 1)
        _check_int("history_size", history_size, 1)
        _check_number("tolerance_grad", tolerance_grad, 0.0)
        _check_number("tolerance_change", tolerance_change, 0.0)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(
                f"lbfgs: line_search_fn must be None or 'strong_wolfe'; got {line_search_fn!r}"
            )
        defaults = {
            "lr": lr, "max_iter": max_iter, "max_eval": max_eval,
            "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
            "history_size": history_size, "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("lbfgs: per-parameter options (parameter groups) are not supported")
        self._params = self.param_groups[0]["params"]

    # flat-vector helpers ----------------------------------------------------------------
    def _gather_flat_grad(self) -> Any:
        views = []
        for p in self._params:
            if p.grad is None:
                views.append(p.new_zeros(p.numel()))
            elif p.grad.is_sparse:
                views.append(p.grad.to_dense().reshape(-1))
            else:
                views.append(p.grad.reshape(-1))
        return torch.cat(views, 0)

    def _add_to_params(self, step_size: float, direction: Any) -> None:
        offset = 0
        for p in self._params:
            numel = p.numel()
            p.add_(direction[offset : offset + numel].view_as(p), alpha=step_size)
            offset += numel

    def _directional_evaluate(self, closure: Callable[[], Any], x: list, t: float, d: Any):
        self._add_to_params(t, d)
        loss = _loss_float(closure())
        flat_grad = self._gather_flat_grad()
        for p, x_p in zip(self._params, x, strict=True):
            p.copy_(x_p)
        return loss, flat_grad

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss at the start."""
        if closure is None:
            raise ValueError("lbfgs: step() needs a closure that returns the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        # The state is global; it lives under the first parameter, as in torch.optim.LBFGS.
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = _loss_float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_s, old_y, rho = state.get("old_stps"), state.get("old_dirs"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # direction ------------------------------------------------------------------
            if state["n_iter"] == 1:
                d = -flat_grad
                old_s, old_y, rho, H_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y @ s
                if ys > 1e-10:  # store the pair only with safely positive curvature
                    if len(old_s) == history_size:
                        old_s.pop(0)
                        old_y.pop(0)
                        rho.pop(0)
                    old_s.append(s)
                    old_y.append(y)
                    rho.append(1.0 / ys)
                    H_diag = ys / (y @ y)  # γ = sᵀy / yᵀy
                d = two_loop(flat_grad, old_s, old_y, H_diag, rho)
            prev_flat_grad = flat_grad.clone()
            prev_loss = loss

            # step length ----------------------------------------------------------------
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(flat_grad.abs().sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:  # not a (numerically) descent direction
                break

            ls_func_evals = 0
            if line_search_fn == "strong_wolfe":
                x_init = [p.clone() for p in self._params]

                def phi(a: float, x_init=x_init, d=d) -> tuple[float, float, Any]:
                    f_a, g_a = self._directional_evaluate(closure, x_init, a, d)
                    return f_a, float(g_a @ d), g_a

                d_norm = float(d.abs().max())
                ls = wolfe_line_search(
                    phi, loss, gtd, t, c1=1e-4, c2=0.9,
                    max_evals=max(1, max_eval - current_evals),
                    min_width=tolerance_change / d_norm if d_norm > 0 else 0.0,
                )
                ls_func_evals = ls.nfev
                t = ls.alpha
                if ls.payload is not None:  # t > 0: sufficient decrease held there
                    loss, flat_grad = ls.phi, ls.payload
                    self._add_to_params(t, d)
                opt_cond = bool(flat_grad.abs().max() <= tolerance_grad)
            else:
                self._add_to_params(t, d)
                opt_cond = False
                if n_iter != max_iter:  # the next step() re-evaluates anyway
                    with torch.enable_grad():
                        loss = _loss_float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = bool(flat_grad.abs().max() <= tolerance_grad)
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping tests (torch.optim.LBFGS's) --------------------------------------
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float((d * t).abs().max()) <= tolerance_change:  # no progress in w
                break
            if abs(loss - prev_loss) < tolerance_change:  # no progress in the loss
                break

        state.update(
            d=d, t=t, old_stps=old_s, old_dirs=old_y, ro=rho, H_diag=H_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss,
        )
        return orig_loss


def _loss_float(loss: Any) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _check_number(name: str, value: Any, low: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (value > low if open_low else value >= low)
    if not ok:
        rng = f"{'(' if open_low else '['}{low:g}, inf)"
        raise ValueError(f"lbfgs: {name} must be in {rng}; got {value!r}")


def _check_int(name: str, value: Any, low: int) -> None:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"lbfgs: {name} must be an integer in [{low}, inf); got {value!r}")


__all__ = [
    "METHODS",
    "LBFGSOptimizer",
    "LineSearchResult",
    "MinimizeResult",
    "minimize",
    "two_loop",
    "wolfe_line_search",
]
