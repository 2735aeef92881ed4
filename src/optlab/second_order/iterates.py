r"""What every method of :func:`optlab.minimize` shares: the objective with evaluation counters
and shape checks (:class:`Objective`), the record of the iterates (:class:`Trace`), the result
(:class:`MinimizeResult`) and the stopping tests and messages.

Notation (Nocedal & Wright, *Numerical Optimization*, 2nd ed.): :math:`g_k = \nabla f(x_k)`,
:math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`, :math:`\rho_k = 1 / y_k^\top s_k`,
:math:`H_k` the approximation of the **inverse** Hessian, :math:`p_k` the search direction and
:math:`\alpha_k` the step length, :math:`x_{k+1} = x_k + \alpha_k p_k`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MSG_CONV = "converged: gradient norm below tol"
MSG_MAXIT = "maximum number of iterations reached"
MSG_DIVERGED = "stopped: diverged (f or the gradient not finite, or |x| above 1e100)"
MSG_LS = (
    "stopped: the line search found no strong-Wolfe step (f may be unbounded below along the "
    "search direction, or the precision of f is exhausted)"
)
X_MAX = 1e100  # beyond this |x| a run counts as diverged


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


class Objective:
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


class Trace:
    """Accumulates the iterates and builds the result."""

    def __init__(self, obj: Objective, method: str, x: np.ndarray, f: float) -> None:
        self.obj, self.method = obj, method
        self.xs: list[np.ndarray] = [x.copy()]
        self.fs: list[float] = [f]
        self.alphas: list[float] = []
        self.Hs: list[np.ndarray] | None = None  # BFGS / L-BFGS: H_k at every iterate

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


def finite(*values: Any) -> bool:
    """True when every entry of every value is finite."""
    return all(bool(np.all(np.isfinite(v))) for v in values)


def diverged(x: np.ndarray, f: float, g: np.ndarray) -> bool:
    """True when ``x``, ``f`` or ``g`` is not finite, or ``|x|`` passed :data:`X_MAX`."""
    return not finite(x, f, g) or float(np.max(np.abs(x))) > X_MAX


__all__ = ["MinimizeResult", "Objective", "Trace", "diverged", "finite"]
