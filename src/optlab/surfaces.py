r"""Two-dimensional toy loss surfaces, with analytic gradients and Hessians.

Every surface is a :class:`Surface`: a loss :math:`f(x, y)` with its gradient and Hessian written
out by hand (no autograd), a box for plots, its global minima and a start point that makes a good
demo. The functions are vectorized over points stored in the last axis::

    s = get_surface("rosenbrock")
    s.f(np.zeros((100, 100, 2)))        # (100, 100)      -- a grid, for contour plots
    s.grad(np.array([[0.0, 1.0]]))      # (1, 2)
    s.hessian([1.0, 1.0])               # (2, 2)

The surfaces and what each one shows:

* ``quadratic`` -- :math:`\tfrac12 x^\top A x` with :math:`A = s\,R_\theta\,
  \mathrm{diag}(1, \kappa)\,R_\theta^\top`: an ill-conditioned valley (condition number
  :math:`\kappa`), rotated by :math:`\theta` so that the valley need not follow the axes. Build
  other ones with :func:`quadratic`.
* ``rosenbrock`` -- the curved banana valley (:math:`a = 1, b = 100`): easy to find, slow to follow.
* ``beale`` -- flat plateaus and sharp ridges; the minimum sits at the end of a narrow valley.
* ``himmelblau`` -- four global minima: which one a method reaches depends on its path.
* ``saddle`` -- :math:`x^2 - y^2`: no minimum at all; shows how methods escape a saddle point.
* ``rastrigin`` -- a parabola covered in a lattice of local minima (:math:`A = 10`).

Each formula is written once, over two coordinates ``x, y`` (:attr:`Surface.fxy`,
:attr:`Surface.gxy`, :attr:`Surface.hxy`) that may be Python floats, NumPy arrays or torch
tensors; functions such as ``cos`` go through :mod:`optlab.xp`. :func:`optlab.trajectory` uses
the float form for a single path, where NumPy's per-call overhead on two-element arrays would
dominate the run time. This module imports without NumPy (it runs in the browser on floats);
:meth:`Surface.f`, :meth:`Surface.grad`, :meth:`Surface.grid`, :attr:`Surface.minima` ... import
NumPy when first called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from . import xp

Bounds = tuple[tuple[float, float], tuple[float, float]]
Point = tuple[float, float]
# Component forms on two coordinates (floats, arrays or tensors): (x, y) -> value, (gx, gy),
# (hxx, hxy, hyy).
_F = Callable[[Any, Any], Any]
_G = Callable[[Any, Any], tuple[Any, Any]]
_H = Callable[[Any, Any], tuple[Any, Any, Any]]


def _numpy() -> Any:
    """NumPy, imported on first use: the surfaces work on floats without it (in the browser)."""
    import numpy

    return numpy


def _points(x: Any) -> Any:
    np = _numpy()
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2); got shape {arr.shape}")
    return arr


def _readonly(np: Any, values: Any, shape: tuple[int, ...]) -> Any:
    arr = np.array(values, dtype=float).reshape(shape)
    arr.flags.writeable = False
    return arr


class SurfaceParams(Mapping[str, Any]):
    """The parameters of a surface (read-only). A value given as a function of no arguments is
    built on first access: the quadratic's matrix ``A`` is a NumPy array, and building it must
    not need NumPy until someone asks for it."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._built: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        if not callable(value):
            return value
        if key not in self._built:
            self._built[key] = value()
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SurfaceParams({dict(self)!r})"


@dataclass(frozen=True, eq=False)
class Surface:
    """A 2-D loss surface with analytic derivatives.

    The formulas themselves are :attr:`fxy`, :attr:`gxy` and :attr:`hxy`, functions of two
    coordinates ``x, y`` that may be Python floats, NumPy arrays or torch tensors (and need no
    NumPy for floats)::

        s.fxy(1.0, 2.0)            # the loss, a float
        s.gxy(1.0, 2.0)            # (df/dx, df/dy)
        s.hxy(1.0, 2.0)            # (d2f/dx2, d2f/dxdy, d2f/dy2)

    :meth:`f`, :meth:`grad` and :meth:`hessian` take points of shape ``(..., 2)`` and return
    NumPy arrays.

    Attributes
    ----------
    name : str
        The key in :data:`SURFACES`.
    latex : str
        The formula, as LaTeX (without ``$``), for the chapters.
    minimum_points : tuple of (x, y)
        The global minima as floats; :attr:`minima` is the same as an array.
    bounds : ((xmin, xmax), (ymin, ymax))
        The box to plot; :func:`optlab.trajectory` also measures divergence from it.
    start_point : (x, y)
        A start point that makes a good demo, as floats; :attr:`start` is the same as an array.
    params : Mapping
        The parameters the surface was built with (e.g. ``condition``, ``angle``, ``A``).
    """

    name: str
    latex: str
    minimum_points: tuple[Point, ...]
    bounds: Bounds
    start_point: Point
    params: Mapping[str, Any]
    fxy: _F = field(repr=False)
    gxy: _G = field(repr=False)
    hxy: _H = field(repr=False)

    @cached_property
    def minima(self) -> Any:
        """The global minima, a read-only array of shape ``(k, 2)``; ``(0, 2)`` when there is
        none (``saddle``)."""
        return _readonly(_numpy(), self.minimum_points, (len(self.minimum_points), 2))

    @cached_property
    def start(self) -> Any:
        """:attr:`start_point` as a read-only array of shape ``(2,)``."""
        return _readonly(_numpy(), self.start_point, (2,))

    def f(self, x: Any) -> Any:
        """The loss at points ``x`` of shape ``(..., 2)``; returns shape ``(...)`` (a NumPy
        float for a single point)."""
        np = _numpy()
        p = _points(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(self.fxy(p[..., 0], p[..., 1]), dtype=float)[()]

    def grad(self, x: Any) -> Any:
        """The gradient at points ``x`` of shape ``(..., 2)``; returns shape ``(..., 2)``."""
        np = _numpy()
        p = _points(x)
        with np.errstate(over="ignore", invalid="ignore"):
            gx, gy = self.gxy(p[..., 0], p[..., 1])
        out = np.empty(p.shape, dtype=float)
        out[..., 0] = gx
        out[..., 1] = gy
        return out

    def hessian(self, x: Any) -> Any:
        """The symmetric Hessian at points ``x`` of shape ``(..., 2)``; returns ``(..., 2, 2)``."""
        np = _numpy()
        p = _points(x)
        with np.errstate(over="ignore", invalid="ignore"):
            hxx, hxy, hyy = self.hxy(p[..., 0], p[..., 1])
        out = np.empty((*p.shape, 2), dtype=float)
        out[..., 0, 0] = hxx
        out[..., 0, 1] = hxy
        out[..., 1, 0] = hxy
        out[..., 1, 1] = hyy
        return out

    def noisy_grad(self, x: Any, sigma: float, rng: Any = None) -> Any:
        r"""The gradient plus Gaussian noise: :math:`\nabla f(x) + \sigma\,\xi`,
        :math:`\xi \sim \mathcal N(0, I)`.

        This models **minibatch noise**: a minibatch gradient is an unbiased estimate of the
        full-batch gradient whose error is, by the central limit theorem, roughly Gaussian with a
        standard deviation that shrinks like :math:`1/\sqrt{\text{batch size}}`. A larger
        ``sigma`` plays the part of a smaller batch. ``rng`` is a ``numpy.random.Generator``, a
        seed or ``None``.
        """
        g = self.grad(x)
        if sigma == 0:
            return g
        return g + sigma * _numpy().random.default_rng(rng).standard_normal(g.shape)

    @property
    def span(self) -> tuple[float, float]:
        """The widths of the plotting box, ``(xmax - xmin, ymax - ymin)``."""
        (x0, x1), (y0, y1) = self.bounds
        return (x1 - x0, y1 - y0)

    def grid(self, n: int = 200) -> tuple[Any, Any, Any]:
        """``X, Y, Z`` on an ``n`` by ``n`` grid over :attr:`bounds`, ready for ``contour``."""
        np = _numpy()
        (x0, x1), (y0, y1) = self.bounds
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        return X, Y, self.f(np.stack([X, Y], axis=-1))

    @property
    def label(self) -> str:
        """A human-readable name for titles and menus: ``"ravine, κ = 100"``, ``"Rosenbrock"``,
        ``"Himmelblau"`` ... (non-default parameters are named; the formula is :attr:`latex`)."""
        p = self.params
        if self.name == "quadratic":
            kappa = p.get("condition", 1.0)
            text = "round bowl" if kappa == 1 else f"ravine, κ = {kappa:g}"
            return text + (f", curvature × {p['scale']:g}" if p.get("scale", 1.0) != 1 else "")
        base = _LABELS.get(self.name, self.name)
        changed = [f"{k} = {p[k]:g}" for k, v in _factory_defaults(self.name).items()
                   if k in p and p[k] != v]
        return f"{base} ({', '.join(changed)})" if changed else base

    def with_start(self, start: Any) -> Surface:
        """The same surface with another default start point."""
        x, y = (float(v) for v in _flat_pair(start))
        return replace(self, start_point=(x, y))

    def __repr__(self) -> str:
        extra = {k: v for k, v in self.params.items() if k != "A"}
        args = ", ".join(f"{k}={v:g}" for k, v in extra.items())
        return f"Surface({self.name}{', ' + args if args else ''})"


def _flat_pair(point: Any) -> list[Any]:
    """The two coordinates of a point given as a pair, an array of shape (2,) or (1, 2) ..."""
    values = point.tolist() if hasattr(point, "tolist") else point
    while isinstance(values, (list, tuple)) and len(values) == 1:
        values = values[0]
    if not isinstance(values, (list, tuple)) or len(values) != 2:
        raise ValueError(f"a point must have two coordinates (x, y); got {point!r}")
    return list(values)


#: The human-readable names of the surfaces (see :attr:`Surface.label`).
_LABELS: dict[str, str] = {
    "rosenbrock": "Rosenbrock",
    "beale": "Beale",
    "himmelblau": "Himmelblau",
    "saddle": "saddle x² − y²",
    "rastrigin": "Rastrigin",
}


def _make(
    name: str, latex: str, minima: Any, bounds: Bounds, start: Any, fxy: _F, gxy: _G, hxy: _H,
    **params: Any,
) -> Surface:
    m = tuple((float(x), float(y)) for x, y in minima)
    sx, sy = start
    b = tuple((float(lo), float(hi)) for lo, hi in bounds)
    return Surface(name, latex, m, b, (float(sx), float(sy)), SurfaceParams(params),  # type: ignore[arg-type]
                   fxy, gxy, hxy)


# --------------------------------------------------------------------------------------------
# The surfaces
# --------------------------------------------------------------------------------------------


def quadratic(condition: float = 10.0, angle: float = 0.0, scale: float = 1.0) -> Surface:
    r"""The quadratic bowl :math:`f(w) = \tfrac12 w^\top A w`,
    :math:`A = s\, R_\theta\, \mathrm{diag}(1, \kappa)\, R_\theta^\top`.

    ``condition`` (:math:`\kappa \ge 1`) is the ratio of the two curvatures, ``angle``
    (:math:`\theta`, radians) rotates the valley away from the axes and ``scale``
    (:math:`s > 0`) is the smaller curvature: the eigenvalues of the Hessian :math:`A` are
    :math:`s` and :math:`s\kappa`. Gradient descent converges for :math:`\eta < 2/(s\kappa)`.
    The Hessian is exactly :math:`A` (available as ``surface.params["A"]``).
    """
    if not (math.isfinite(condition) and condition >= 1):
        raise ValueError(f"quadratic: condition must be >= 1; got {condition!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"quadratic: scale must be > 0; got {scale!r}")
    if not math.isfinite(angle):
        raise ValueError(f"quadratic: angle must be finite; got {angle!r}")
    c, s = math.cos(angle), math.sin(angle)
    kappa = float(condition)
    # A = scale R diag(1, κ) Rᵀ with R = [[c, −s], [s, c]], in the order the matrix product
    # takes, then symmetrized exactly.
    a = scale * (c * c + (s * kappa) * s)
    b = 0.5 * (scale * (c * s - (s * kappa) * c) + scale * (s * c - (c * kappa) * s))
    d = scale * (s * s + (c * kappa) * c)

    def matrix() -> Any:
        return _readonly(_numpy(), ((a, b), (b, d)), (2, 2))

    def fxy(x, y):
        return 0.5 * (a * x * x + 2.0 * b * x * y + d * y * y)

    def gxy(x, y):
        return a * x + b * y, b * x + d * y

    def hxy(x, y):
        one = 0.0 * x + 1.0  # broadcast the constants to the points' shape
        return a * one, b * one, d * one

    latex = (
        r"f(w) = \tfrac12\, w^\top A w,\quad A = "
        + (f"{scale:g}\\," if scale != 1 else "")
        + r"R_\theta \begin{pmatrix} 1 & 0 \\ 0 & "
        + f"{condition:g}"
        + r" \end{pmatrix} R_\theta^\top,\ \theta = "
        + f"{angle:.3g}"
    )
    # Start high on the steep wall and far along the shallow direction: GD zig-zags.
    start = (c * -1.5 + -s * 1.0, s * -1.5 + c * 1.0)  # R (−1.5, 1)
    return _make(
        "quadratic", latex, [[0.0, 0.0]], ((-2.0, 2.0), (-2.0, 2.0)), start, fxy, gxy, hxy,
        condition=float(condition), angle=float(angle), scale=float(scale), A=matrix,
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    r"""Rosenbrock's banana :math:`f = (a - x)^2 + b\,(y - x^2)^2`, minimum at :math:`(a, a^2)`."""
    if not b > 0:
        raise ValueError(f"rosenbrock: b must be > 0; got {b!r}")

    def fxy(x, y):
        u, v = a - x, y - x * x
        return u * u + b * v * v

    def gxy(x, y):
        v = y - x * x
        return -2.0 * (a - x) - 4.0 * b * x * v, 2.0 * b * v

    def hxy(x, y):
        return 2.0 - 4.0 * b * y + 12.0 * b * x * x, -4.0 * b * x, 2.0 * b + 0.0 * x

    latex = f"f(x, y) = ({a:g} - x)^2 + {b:g}\\,(y - x^2)^2"
    y_box = (min(-1.0, a * a - 2.0), max(3.0, a * a + 2.0))
    return _make(
        "rosenbrock", latex, [[a, a * a]], ((a - 3.0, a + 1.0), y_box),
        (round(a - 2.2, 12), a * a), fxy, gxy, hxy, a=float(a), b=float(b),
    )


def beale() -> Surface:
    r"""Beale's function
    :math:`(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`, minimum at (3, 0.5)."""

    def fxy(x, y):
        y2 = y * y
        u1, u2, u3 = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y2 * y
        return u1 * u1 + u2 * u2 + u3 * u3

    def gxy(x, y):
        y2 = y * y
        y3 = y2 * y
        u1, u2, u3 = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y3
        gx = 2.0 * (u1 * (y - 1.0) + u2 * (y2 - 1.0) + u3 * (y3 - 1.0))
        gy = 2.0 * x * (u1 + 2.0 * y * u2 + 3.0 * y2 * u3)
        return gx, gy

    def hxy(x, y):
        y2 = y * y
        y3 = y2 * y
        u1, u2, u3 = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y3
        a1, a2, a3 = y - 1.0, y2 - 1.0, y3 - 1.0  # d u_i / dx
        b1, b2, b3 = x, 2.0 * x * y, 3.0 * x * y2  # d u_i / dy
        hxx = 2.0 * (a1 * a1 + a2 * a2 + a3 * a3)
        hxy_ = 2.0 * (a1 * b1 + u1 + a2 * b2 + 2.0 * y * u2 + a3 * b3 + 3.0 * y2 * u3)
        hyy = 2.0 * (b1 * b1 + b2 * b2 + 2.0 * x * u2 + b3 * b3 + 6.0 * x * y * u3)
        return hxx, hxy_, hyy

    latex = r"f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2"
    return _make(
        "beale", latex, [[3.0, 0.5]], ((-4.5, 4.5), (-4.5, 4.5)), (1.0, 1.5), fxy, gxy, hxy
    )


#: Himmelblau's four minima (all with f = 0), to full double precision.
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.7793102533777469, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644034),
)


def himmelblau() -> Surface:
    r"""Himmelblau's function :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2`: four global minima."""

    def fxy(x, y):
        p, q = x * x + y - 11.0, x + y * y - 7.0
        return p * p + q * q

    def gxy(x, y):
        p, q = x * x + y - 11.0, x + y * y - 7.0
        return 4.0 * x * p + 2.0 * q, 2.0 * p + 4.0 * y * q

    def hxy(x, y):
        p, q = x * x + y - 11.0, x + y * y - 7.0
        return 4.0 * p + 8.0 * x * x + 2.0, 4.0 * (x + y), 4.0 * q + 8.0 * y * y + 2.0

    latex = r"f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2"
    return _make(
        "himmelblau", latex, _HIMMELBLAU_MINIMA, ((-5.0, 5.0), (-5.0, 5.0)), (-0.3, -0.9),
        fxy, gxy, hxy,
    )


def saddle() -> Surface:
    r"""The saddle :math:`x^2 - y^2`: a stationary point at the origin that is no minimum.

    Unbounded below, so it has no minima; a method that escapes the saddle eventually leaves
    the plotting box (and, far enough out, :func:`optlab.trajectory` stops it and flags it).
    """

    def fxy(x, y):
        return x * x - y * y

    def gxy(x, y):
        return 2.0 * x, -2.0 * y

    def hxy(x, y):
        one = 0.0 * x + 1.0
        return 2.0 * one, 0.0 * one, -2.0 * one

    # Almost on the stable manifold (y = 0): plain GD lingers near the saddle before escaping.
    return _make(
        "saddle", "f(x, y) = x^2 - y^2", (), ((-2.0, 2.0), (-2.0, 2.0)),
        (-1.8, 1e-3), fxy, gxy, hxy,
    )


def rastrigin(A: float = 10.0) -> Surface:
    r"""Rastrigin's function :math:`2A + \sum_i \big(x_i^2 - A\cos(2\pi x_i)\big)`, minimum at 0."""
    if not A >= 0:
        raise ValueError(f"rastrigin: A must be >= 0; got {A!r}")
    tau = 2.0 * math.pi

    def fxy(x, y):
        return 2.0 * A + x * x - A * xp.cos(tau * x) + y * y - A * xp.cos(tau * y)

    def gxy(x, y):
        return 2.0 * x + A * tau * xp.sin(tau * x), 2.0 * y + A * tau * xp.sin(tau * y)

    def hxy(x, y):
        k = A * tau * tau
        return 2.0 + k * xp.cos(tau * x), 0.0 * x * y, 2.0 + k * xp.cos(tau * y)

    latex = (
        f"f(x, y) = {2 * A:g} + x^2 - {A:g}\\cos(2\\pi x) + y^2 - {A:g}\\cos(2\\pi y)"
    )
    return _make(
        "rastrigin", latex, [[0.0, 0.0]], ((-5.12, 5.12), (-5.12, 5.12)), (-2.3, 3.6),
        fxy, gxy, hxy, A=float(A),
    )


#: Factories of the surfaces, by name; their keyword arguments are the surface's parameters.
FACTORIES: dict[str, Callable[..., Surface]] = {
    "quadratic": quadratic,
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "rastrigin": rastrigin,
}

#: Every surface with its default parameters.
SURFACES: dict[str, Surface] = {name: make() for name, make in FACTORIES.items()}


def _factory_defaults(name: str) -> dict[str, Any]:
    """The default parameters of the factory of surface ``name`` ({} for a custom name)."""
    import inspect

    if name not in FACTORIES:
        return {}
    return {k: p.default for k, p in inspect.signature(FACTORIES[name]).parameters.items()}


def get_surface(name: str | Surface, **params: Any) -> Surface:
    """The surface ``name``, built with ``params`` (e.g. ``get_surface("quadratic",
    condition=50, angle=math.pi / 6)``). A :class:`Surface` passes through unchanged.

    Raises ``ValueError`` for an unknown name (listing the known ones) or parameter.
    """
    if isinstance(name, Surface):
        if params:
            raise ValueError("get_surface: parameters apply to a surface name, not a Surface")
        return name
    if name not in FACTORIES:
        raise ValueError(f"unknown surface {name!r}: choose one of {', '.join(FACTORIES)}")
    if not params:
        return SURFACES[name]
    import inspect

    allowed = list(inspect.signature(FACTORIES[name]).parameters)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
        raise ValueError(f"{name}: unknown parameter {unknown[0]!r}; {takes}")
    return FACTORIES[name](**params)


__all__ = [
    "FACTORIES",
    "SURFACES",
    "Surface",
    "beale",
    "get_surface",
    "himmelblau",
    "quadratic",
    "rastrigin",
    "rosenbrock",
    "saddle",
]
