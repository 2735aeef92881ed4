r"""What the explorer's controls mean: the knobs (``lr``, ``beta1``, ``beta2``, ``eps``,
``noise``), their checks (one line naming the parameter and the fix), how they set each rule's
hyperparameters, and the runs they ask for.

The knobs and the hyperparameters they set, per rule (``torch.optim`` names):

============  ==========================================  ===================================
knob          rules                                       hyperparameter
============  ==========================================  ===================================
``lr``        all                                         ``lr``
``beta1``     momentum, nesterov / adam, adamw, nadamw    ``momentum`` / ``betas[0]``
``beta2``     adam, adamw, nadamw                         ``betas[1]``
``eps``       adagrad, rmsprop, adam, adamw, nadamw       ``eps``
``noise``     all (gradient noise, a minibatch model)     ``noise`` of :func:`optlab.trajectory`
============  ==========================================  ===================================

Any other keyword (``weight_decay=1e-2``, ``alpha=0.9``, ``momentum=0.5`` ...) goes verbatim to
every selected rule that takes it (an explicit ``momentum`` wins over the ``beta1`` knob).
Nothing is clamped or guessed: a value the controls could not show, an unknown or repeated
optimizer, a string where a number belongs raise a one-line ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..rules import FIRST_ORDER, NONNEGATIVE, POSITIVE, UNIT_OPEN_RIGHT, Range, get_rule
from ..surfaces import Surface, get_surface
from ..trajectories import Trajectory, trajectory

#: The dashboard's knobs, with their plain-text labels.
KNOBS: dict[str, str] = {
    "lr": "learning rate η",
    "beta1": "β1 (momentum)",
    "beta2": "β2 (Adam)",
    "eps": "ε",
    "noise": "gradient noise σ",
}
#: The values each knob accepts, and an example of a good one (for the error messages).
KNOB_RANGES: dict[str, tuple[Range, str]] = {
    "lr": (POSITIVE, "1e-3"),
    "beta1": (UNIT_OPEN_RIGHT, "0.9"),
    "beta2": (UNIT_OPEN_RIGHT, "0.999"),
    "eps": (POSITIVE, "1e-8"),
    "noise": (NONNEGATIVE, "0.5"),
}
#: The rules each knob changes (the rest ignore it).
KNOB_RULES: dict[str, tuple[str, ...]] = {
    "lr": FIRST_ORDER,
    "beta1": tuple(n for n in FIRST_ORDER
                   if n in ("momentum", "nesterov") or "betas" in get_rule(n).defaults),
    "beta2": tuple(n for n in FIRST_ORDER if "betas" in get_rule(n).defaults),
    "eps": tuple(n for n in FIRST_ORDER if "eps" in get_rule(n).defaults),
    "noise": FIRST_ORDER,
}
#: Knob values used when no hyperparameter is given (PyTorch's defaults where they exist).
KNOB_DEFAULTS: dict[str, float] = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                   "noise": 0.0}
#: Default sweeps of :func:`sweep_animation` / the book build of :func:`explore`.
SWEEP_DEFAULTS: dict[str, np.ndarray] = {
    "lr": np.geomspace(1e-4, 1.0, 13),
    "beta1": np.array([0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]),
    "beta2": np.array([0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999]),
    "eps": np.geomspace(1e-8, 1.0, 9),
    "noise": np.array([0.0, 0.1, 0.3, 1.0, 3.0, 10.0]),
}
#: The most steps :func:`explore` runs per optimizer (a path is kept in memory and drawn).
MAX_STEPS = 100_000


# --------------------------------------------------------------------------------------------
# Checking what a chapter passes (one line naming the parameter and the fix)
# --------------------------------------------------------------------------------------------


def check_optimizers(optimizers: Any) -> tuple[str, ...]:
    """The optimizer names in ``optimizers``: one name (``"adam"``) or a sequence of names.

    Raises ``ValueError`` (one line: the parameter, the problem, the fix) for an empty
    selection, a name that is not a first-order rule (a second-order method is pointed to
    :mod:`optlab.widgets_second_order`), ``"sgd,adam"`` in one string, or a repeated name.
    """
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    try:
        names = tuple(optimizers)
    except TypeError:
        raise ValueError(f"optimizers must be a rule name or a sequence of names such as "
                         f"('sgd', 'adam'); got {optimizers!r}") from None
    if not names:
        raise ValueError(f"optimizers is empty: give at least one of {', '.join(FIRST_ORDER)}")
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"optimizers: each entry must be a rule name (a string); "
                             f"got {name!r}")
        if name in FIRST_ORDER:
            continue
        if "," in name:
            parts = tuple(p.strip() for p in name.split(","))
            raise ValueError(f"optimizers: {name!r} holds several names in one string; "
                             f"give a tuple instead: optimizers={parts!r}")
        if name in ("newton", "newton_damped", "bfgs", "lbfgs"):
            raise ValueError(f"optimizers: {name!r} is a second-order method, which explore "
                             f"does not run; use optlab.widgets_second_order (start_explorer, "
                             f"memory_explorer) or a first-order rule: {', '.join(FIRST_ORDER)}")
        raise ValueError(f"optimizers: unknown optimizer {name!r}; choose from "
                         f"{', '.join(FIRST_ORDER)}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"optimizers: {name!r} is given twice; list each optimizer once")
        seen.add(name)
    return names


def _number(param: str, value: Any) -> float:
    """``value`` as a float, or a one-line ValueError naming ``param``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)):
        raise ValueError(f"{param} must be a number; got {value!r} (write it without quotes, "
                         f"e.g. {param}={KNOB_RANGES.get(param, (None, '1.0'))[1]})")
    return float(value)


def check_knob(knob: str, value: Any) -> float:
    """``value`` of knob ``knob`` (``lr``, ``beta1``, ``beta2``, ``eps``, ``noise``) as a float.

    Raises ``ValueError`` for a non-number (``"0.01"``, ``True``), NaN, infinity or a value
    outside the knob's range, e.g. ``lr = -0.1 is outside (0, inf); use e.g. lr=1e-3``. Values
    are never clamped: the dashboard's sliders widen to hold any valid value.
    """
    rng, example = KNOB_RANGES[knob]
    v = _number(knob, value)
    if not (math.isfinite(v) and v in rng):
        raise ValueError(f"{knob} = {v:g} is outside {rng}; use e.g. {knob}={example}")
    return v


def check_sweep_values(sweep: str, values: Any) -> np.ndarray:
    """The swept values of knob ``sweep`` as a 1-D float array (at least 2, each valid)."""
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        raise ValueError(f"values must be a list of {sweep} values, e.g. "
                         f"values=[{KNOB_RANGES[sweep][1]}, ...]; got {values!r}")
    vals = np.array([check_knob(sweep, v) for v in np.asarray(values, dtype=object).ravel()],
                    dtype=float)
    if vals.size < 2:
        raise ValueError(f"values: a sweep needs at least 2 values of {sweep}; got {vals.size}")
    return vals


def check_sweep(sweep: str, optimizers: Sequence[str]) -> None:
    """Raise a one-line ``ValueError`` unless ``sweep`` is a knob that changes at least one
    of ``optimizers`` (a sweep of ``beta1`` over SGD alone would show one picture N times)."""
    if sweep not in KNOBS:
        raise ValueError(f"sweep must be one of {', '.join(KNOBS)}; got {sweep!r}")
    if not set(optimizers) & set(KNOB_RULES[sweep]):
        raise ValueError(f"sweep={sweep!r} changes none of the optimizers "
                         f"{', '.join(optimizers)}; add one that takes it "
                         f"({', '.join(KNOB_RULES[sweep])}) or sweep another knob")


def check_steps(steps: Any) -> int:
    """``steps`` as an int in ``[1, MAX_STEPS]``, or a one-line ValueError."""
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (Integral, np.integer)):
        raise ValueError(f"steps must be a whole number such as 200; got {steps!r}")
    if not 1 <= int(steps) <= MAX_STEPS:
        raise ValueError(f"steps = {int(steps)} is outside [1, {MAX_STEPS}]; use e.g. steps=200")
    return int(steps)


def check_start(surface: Surface, x0: Any) -> np.ndarray:
    """The start point: the surface's own for ``None``, else ``x0`` as 2 finite numbers inside
    the surface's plotting box (where the dashboard's start sliders reach)."""
    if x0 is None:
        return np.array(surface.start, dtype=float)
    try:
        p = np.asarray(x0, dtype=float).reshape(2)
    except (TypeError, ValueError):
        raise ValueError(f"x0 must be a point (w1, w2) such as (-1.2, 1.0); got {x0!r}") from None
    (x_lo, x_hi), (y_lo, y_hi) = surface.bounds
    if not (np.isfinite(p).all() and x_lo <= p[0] <= x_hi and y_lo <= p[1] <= y_hi):
        raise ValueError(f"x0 = ({p[0]:g}, {p[1]:g}) is outside the {surface.label} plotting box "
                         f"[{x_lo:g}, {x_hi:g}] × [{y_lo:g}, {y_hi:g}]; choose a start inside it")
    return p


def check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (Integral, np.integer)) \
            or int(seed) < 0:
        raise ValueError(f"seed must be a whole number >= 0 such as 0; got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------------------------
# Knobs -> rule hyperparameters -> trajectories
# --------------------------------------------------------------------------------------------


def split_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(knobs, extra)``: the dashboard knobs given in ``hparams`` (``lr``, ``beta1``,
    ``beta2``, ``eps``, ``noise``; ``betas=(b1, b2)`` counts as both betas), each checked by
    :func:`check_knob`, and the rest.

    Raises ``ValueError`` for a bad knob value or a keyword that no first-order rule takes.
    """
    knobs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in hparams.items():
        if key == "betas":
            try:
                b1, b2 = value
            except (TypeError, ValueError):
                raise ValueError(f"betas must be a pair (beta1, beta2) such as (0.9, 0.999); "
                                 f"got {value!r}") from None
            knobs["beta1"], knobs["beta2"] = check_knob("beta1", b1), check_knob("beta2", b2)
        elif key in KNOBS:
            knobs[key] = check_knob(key, value)
        else:
            extra[key] = value
    takers = {k: [n for n in FIRST_ORDER if k in get_rule(n).defaults] for k in extra}
    for key, rules in takers.items():
        if not rules:
            raise ValueError(f"explore: no optimizer takes {key!r}; the knobs are "
                             f"{', '.join(KNOBS)}, or a hyperparameter of one of "
                             f"{', '.join(FIRST_ORDER)}")
    return knobs, extra


def rule_hparams(name: str, knobs: Mapping[str, Any], extra: Mapping[str, Any] = {}) -> dict:
    """The hyperparameters of rule ``name`` set by ``knobs`` and ``extra`` (see module doc)."""
    defaults = get_rule(name).defaults
    kw: dict[str, Any] = {k: v for k, v in extra.items() if k in defaults}
    if "lr" in knobs:
        kw["lr"] = knobs["lr"]
    if "betas" in defaults and ("beta1" in knobs or "beta2" in knobs):
        b1, b2 = defaults["betas"]
        kw["betas"] = (knobs.get("beta1", b1), knobs.get("beta2", b2))
    elif name in ("momentum", "nesterov") and "beta1" in knobs and "momentum" not in extra:
        kw["momentum"] = knobs["beta1"]
    if "eps" in defaults and "eps" in knobs:
        kw["eps"] = knobs["eps"]
    return kw


def run_optimizers(
    surface: str | Surface,
    optimizers: Iterable[str],
    knobs: Mapping[str, Any],
    extra: Mapping[str, Any] = {},
    *,
    steps: int = 200,
    x0: Any = None,
    seed: int = 0,
) -> dict[str, Trajectory]:
    """``{optimizer: Trajectory}`` with the knobs applied; a knob given as a 1-D array is a
    sweep (one row per value) for the rules it applies to, the others run once."""
    kn = dict(knobs)
    noise = kn.pop("noise", 0.0)
    return {
        name: trajectory(name, surface, x0, steps, noise=noise, seed=seed,
                         **rule_hparams(name, kn, extra))
        for name in optimizers
    }


def fmt(value: Any) -> str:
    """A knob value for titles and slider labels: 3 significant digits (0.0316, 0.9, 1e-08)."""
    return f"{float(value):.3g}"



def lr_range(surface: str | Surface) -> tuple[float, float]:
    """``(lo, hi)``: the learning rates worth trying on ``surface``, for the η slider.

    Two scales set it: plain gradient descent is stable for :math:`\\eta < 2/L`, with
    :math:`L` the largest curvature (Hessian eigenvalue) at the start and at the minima; the
    adaptive rules move about η per step, so η of 1/1000 to 1/4 of the plotting box's width.
    ``lo`` is the smaller of a tenth of :math:`2/L` and 1/1000 of the box, ``hi`` the larger of
    :math:`2 \\cdot 2/L` and 1/4 of the box, both rounded outwards to half decades: about 3 to
    4 decades (rosenbrock: 1e-4 to 1; a κ = 10 ravine: 3.2e-3 to 1).
    """
    surf = get_surface(surface)
    points = np.vstack([surf.start[None, :], surf.minima])
    curvature = float(np.max(np.abs(np.linalg.eigvalsh(surf.hessian(points)))))
    width = float(min(surf.span))
    stable = 2.0 / curvature if curvature > 0 else width
    lo, hi = min(stable / 10, width / 1000), max(2 * stable, width / 4)
    return (float(10.0 ** (np.floor(2 * np.log10(lo)) / 2)),
            float(10.0 ** (np.ceil(2 * np.log10(hi)) / 2)))


__all__ = [
    "KNOBS",
    "KNOB_DEFAULTS",
    "KNOB_RANGES",
    "KNOB_RULES",
    "MAX_STEPS",
    "SWEEP_DEFAULTS",
    "check_knob",
    "check_optimizers",
    "check_seed",
    "check_start",
    "check_steps",
    "check_sweep",
    "check_sweep_values",
    "fmt",
    "lr_range",
    "rule_hparams",
    "run_optimizers",
    "split_hparams",
]
