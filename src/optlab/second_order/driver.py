r""":func:`minimize`: one of Newton, damped Newton, BFGS or L-BFGS on a toy surface (or any object
with ``f``, ``grad`` and ``hessian`` on 1-D NumPy vectors), with its arguments checked, every
iterate recorded and a converged point tested for a saddle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .iterates import MinimizeResult, Objective, finite
from .newton_methods import newton, newton_damped
from .quasi_newton_methods import quasi_newton

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
    if not finite(x):
        raise ValueError(f"x0 must be finite; got {x}")
    dim = _surface_dim(surface)
    if dim is not None and x.size != dim:
        raise ValueError(f"x0 must have shape ({dim},) for this surface; got shape {x.shape}")
    obj = Objective(surface, x.size)
    try:  # the first evaluation also checks that the surface accepts this shape
        obj.check(x)
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f"x0 of shape {x.shape} does not fit the surface: {err}") from err

    if key == "newton":
        return newton(obj, x, int(max_iter), float(tol))
    if key == "newton_damped":
        result = newton_damped(obj, x, int(max_iter), float(tol), **opts)
        result.saddle = False if result.converged else None  # it converges only where H >= 0
        return result
    result = quasi_newton(
        obj, x, int(max_iter), float(tol), c1=opts["c1"], c2=opts["c2"],
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


def _resolve_surface(surface: Any) -> Any:
    if isinstance(surface, str):
        from ..surfaces import get_surface

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



__all__ = ["METHODS", "minimize"]
