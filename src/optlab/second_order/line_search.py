r"""The strong-Wolfe line search (Nocedal & Wright, Alg. 3.5 and 3.6) on a scalar function
:math:`\phi(\alpha) = f(x + \alpha p)`.

It sees only :math:`\phi`, so the same code serves :func:`optlab.minimize` (BFGS, L-BFGS on
NumPy vectors) and :class:`optlab.second_order.LBFGSOptimizer` (flat torch tensors).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


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


__all__ = ["LineSearchResult", "wolfe_line_search"]
