r"""Interactive figures for the chapters: one call, live in Jupyter, a frame slider in the book.

A chapter writes ONE line::

    optlab.widgets.explore(surface="rosenbrock", optimizers=("sgd", "momentum", "adam"),
                           sweep="lr", lr=3e-3)

* **In a live kernel** this is an ipywidgets dashboard: surface, optimizers, learning rate η,
  β1, β2, ε, start point and number of steps; the contour with every optimizer's path on the
  left, the loss against the step on the right (log scale), diverged runs marked with an ``x``
  and "(diverged)". Each control change re-runs :func:`optlab.trajectory` and moves the
  existing lines (a cached background is blitted; see
  :meth:`optlab.landscape.LandscapeFigure.render`), so slider moves cost tens of milliseconds.
  Changes that arrive faster than that, or on several threads (ipykernel 7), are coalesced:
  the picture always ends as that of the controls' last state (:meth:`Dashboard.refresh`).
  The η slider is logarithmic, over the decades that suit the surface (:func:`lr_range`).
* **In the book build** (``OPTLAB_BOOK_BUILD=1``, set by ``make book`` and inherited by the
  kernels that execute the chapters) there is no kernel behind the page, so a live dashboard
  would be dead. The same figure is precomputed over ``values`` of the ``sweep`` knob and
  returned as a matplotlib frame slider (:func:`sweep_animation`, :func:`frame_slider`): the
  reader drags through the sweep in the static page, offline, with the knob's name and value
  next to the slider, its first and last values at the ends, and the value in each frame's
  title.

Nothing is clamped or guessed: a value the controls could not show, an unknown or repeated
optimizer, a string where a number belongs raise a one-line ``ValueError`` naming the
parameter and the fix (:func:`check_optimizers`, :func:`check_knob` ...).

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
Labels are plain text/Unicode (the static widget manager cannot typeset LaTeX).
"""

from __future__ import annotations

import html as html_lib
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from .landscape import COLORS, LandscapeFigure, f_star, row_of
from .rules import FIRST_ORDER, NONNEGATIVE, POSITIVE, UNIT_OPEN_RIGHT, Range, get_rule
from .surfaces import SURFACES, Surface, get_surface
from .trajectories import Trajectory, trajectory

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
    "beta1": ("momentum", "nesterov", "adam", "adamw", "nadamw"),
    "beta2": ("adam", "adamw", "nadamw"),
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
_CDN_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>", re.IGNORECASE)


def build_mode() -> bool:
    """True while the book is being built (``OPTLAB_BOOK_BUILD`` set and not ``0``)."""
    return os.environ.get("OPTLAB_BOOK_BUILD", "").strip() not in ("", "0")


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


def _check_seed(seed: Any) -> int:
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


def _fmt(value: Any) -> str:
    """A knob value for titles and slider labels: 3 significant digits (0.0316, 0.9, 1e-08)."""
    return f"{float(value):.3g}"


def _run_summary(label: str, traj: Trajectory, row: int, fstar: float | None) -> str:
    r = row_of(traj, row)
    if r.diverged:
        return f"{label}: diverged at step {max(r.last + 1, 0)}"
    loss = r.loss[-1]
    if fstar is None:
        return f"{label}: f = {loss:.3g} after {len(r.loss) - 1} steps"
    return f"{label}: f − f* = {loss - fstar:.2e} after {len(r.loss) - 1} steps"


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


# --------------------------------------------------------------------------------------------
# Book build: a frame slider over a precomputed sweep
# --------------------------------------------------------------------------------------------

_FRAME_SLIDER_STYLE = """<style>
.optlab-frames .animation { display: block; max-width: 100%; text-align: center; }
.optlab-frames .animation img { display: block; max-width: 100%; height: auto;
  margin: 0 auto; }
.optlab-frames .optlab-slider { display: flex; flex-wrap: wrap; align-items: center;
  justify-content: center; gap: 0.2em 0.8em; margin: 0.3em auto; max-width: 720px; }
.optlab-frames .optlab-slider-name { white-space: nowrap; }
.optlab-frames .optlab-slider-name output { font-weight: 600;
  font-variant-numeric: tabular-nums; }
.optlab-frames .optlab-slider-range { display: flex; align-items: center; gap: 0.5em;
  flex: 1 1 240px; min-width: 0; }
.optlab-frames .optlab-slider-range input[type=range].anim-slider { flex: 1 1 auto;
  width: auto; min-width: 80px; margin: 0; }
.optlab-frames .optlab-slider-end { font-size: 0.85em; opacity: 0.75; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.optlab-frames .anim-buttons { display: flex; flex-wrap: wrap; justify-content: center; }
</style>"""

_FRAME_SLIDER_SCRIPT = """<script>
(function () {
  var labels = %(labels)s;
  var slider = document.getElementById("_anim_slider%(uid)s");
  var img = document.getElementById("_anim_img%(uid)s");
  var out = document.getElementById("optlab-value-%(uid)s");
  if (!slider || !img || !out) { return; }
  function show() {
    var k = parseInt(slider.value, 10) || 0;
    var text = labels[Math.max(0, Math.min(labels.length - 1, k))];
    out.textContent = text;
    slider.setAttribute("aria-valuetext", %(name)s + " = " + text);
  }
  slider.addEventListener("input", show);
  /* the animation's buttons change the frame without an input event: follow the image */
  new MutationObserver(show).observe(img, {attributes: true, attributeFilter: ["src"]});
  show();
})();
</script>"""


def frame_slider(fig: Any, draw_frame: Any, value_labels: Sequence[str], *, name: str,
                 fps: float = 2.0) -> str:
    """A self-contained HTML frame slider of ``fig``: frame ``k`` is the figure after
    ``draw_frame(k)``, for the ``k``-th of ``value_labels`` of the parameter ``name``.

    ``FuncAnimation.to_jshtml`` without its Font Awesome CDN ``<link>`` (the book theme draws
    the icons; the page makes no outside request), plus what a reader needs to read it: a label
    ``name = value`` next to the slider that follows the frame (a small inline script; without
    JavaScript it shows the first value), the first and last values at the slider's ends, and
    styles that scale the frames down to the page's width (``max-width: 100%``).
    """
    from matplotlib.animation import FuncAnimation

    labels = [str(v) for v in value_labels]
    anim = FuncAnimation(fig, draw_frame, frames=len(labels), interval=1000.0 / fps,
                         repeat=False)
    html = _CDN_LINK.sub("", anim.to_jshtml(fps=fps, default_mode="once"))
    found = re.search(r'<input id="_anim_slider(\w+)"[^>]*>', html)
    if found is None:  # pragma: no cover - a matplotlib whose template changed
        return html
    uid, slider = found.group(1), found.group(0)
    esc = html_lib.escape
    labelled = (
        f'<div class="optlab-slider">'
        f'<label class="optlab-slider-name" for="_anim_slider{uid}">{esc(name)} = '
        f'<output id="optlab-value-{uid}" for="_anim_slider{uid}">{esc(labels[0])}</output>'
        f'</label><span class="optlab-slider-range">'
        f'<span class="optlab-slider-end" title="first value">{esc(labels[0])}</span>'
        f'{slider[:-1]} aria-label="{esc(name)}">'
        f'<span class="optlab-slider-end" title="last value">{esc(labels[-1])}</span>'
        f"</span></div>"
    )
    script = _FRAME_SLIDER_SCRIPT % {"labels": json.dumps(labels), "uid": uid,
                                     "name": json.dumps(name)}
    return (f'<div class="optlab-frames" id="optlab-frames-{uid}">{_FRAME_SLIDER_STYLE}'
            f"{html.replace(slider, labelled, 1)}{script}</div>")


def sweep_animation(
    surface: str | Surface = "rosenbrock",
    optimizers: str | Sequence[str] = ("sgd", "momentum", "adam"),
    sweep: str = "lr",
    values: Any = None,
    steps: int = 200,
    x0: Any = None,
    *,
    seed: int = 0,
    dpi: float = 100,
    fps: float = 2.0,
    figsize: tuple[float, float] = (9.0, 3.6),
    **hparams: Any,
) -> Any:
    """The two-panel figure over a sweep of one knob, as a self-contained HTML frame slider.

    Every optimizer runs once per value of ``sweep`` (``lr``, ``beta1``, ``beta2``, ``eps`` or
    ``noise``; ``values`` defaults to :data:`SWEEP_DEFAULTS`), vectorized; frame ``k`` shows
    them all at ``values[k]``, on one shared loss axis, titled with the surface and the value.
    Returns an :class:`IPython.display.HTML` from :func:`frame_slider` (offline; the slider
    labelled with the knob's name, its value and both ends). The object also carries ``runs``
    (``{optimizer: Trajectory}``), ``values`` and ``sweep`` for checks in a chapter, and
    ``figure`` (the :class:`~optlab.landscape.LandscapeFigure`, at the last frame). Takes a
    second or two. Bad arguments raise a one-line ``ValueError`` (see :func:`explore`).
    """
    from IPython.display import HTML

    optimizers = check_optimizers(optimizers)
    check_sweep(sweep, optimizers)
    surf = get_surface(surface)
    steps, start, seed = check_steps(steps), check_start(surf, x0), _check_seed(seed)
    knobs, extra = split_hparams(hparams)
    vals = check_sweep_values(sweep, SWEEP_DEFAULTS[sweep] if values is None else values)
    knobs[sweep] = vals
    runs = run_optimizers(surf, optimizers, knobs, extra, steps=steps, x0=start, seed=seed)

    colors = {n: COLORS.get(n, f"C{i}") for i, n in enumerate(optimizers)}
    view = LandscapeFigure(surf, optimizers, dpi=dpi, figsize=figsize, colors=colors)
    view.fit(runs, range(vals.size))
    label = KNOBS[sweep]

    def frame(k: int) -> None:
        view.update(runs, k, title=f"{surf.label}: {label} = {_fmt(vals[k])}")

    frame(0)
    view.freeze()  # frames: paths blitted onto the cached contour, saved as palette PNGs
    out = HTML(frame_slider(view.fig, frame, [_fmt(v) for v in vals], name=label, fps=fps))
    out.runs, out.values, out.sweep = runs, vals, sweep
    out.figure = view
    return out


# --------------------------------------------------------------------------------------------
# Book build: the "Run live" lab under the frame slider (computed in the reader's browser)
# --------------------------------------------------------------------------------------------

#: Plain-text labels of the hyperparameters a lab shows (``betas`` as two controls).
_LAB_LABELS: dict[str, str] = {
    "momentum": "momentum β", "dampening": "dampening τ", "alpha": "α (decay of s)",
    "eps": "ε", "weight_decay": "weight decay λ", "lr_decay": "lr_decay",
    "initial_accumulator_value": "G₀ (initial sum)", "momentum_decay": "momentum_decay ψ",
    "betas.0": "β₁", "betas.1": "β₂",
}
#: Hyperparameters a lab leaves at their value (nesterov refuses dampening != 0).
_LAB_FIXED: dict[str, tuple[str, ...]] = {"nesterov": ("dampening",)}


def _lab_control(key: str, value: Any) -> dict[str, Any]:
    """The control of one hyperparameter: a checkbox (``bool``), a β slider (decay rates in
    [0, 1), logarithmic in 1 − β), a log slider (``eps``) or a number box (the rest, >= 0)."""
    label = _LAB_LABELS.get(key, key)
    if isinstance(value, bool):
        return {"key": key, "label": label, "kind": "bool", "value": value}
    v = float(value)
    if key in ("momentum", "dampening", "alpha", "betas.0", "betas.1"):
        return {"key": key, "label": label, "kind": "beta", "value": v}
    if key == "eps":
        e = math.floor(math.log10(v)) if v > 0 else -8
        return {"key": key, "label": label, "kind": "log", "value": v, "lo": min(e - 4, -12),
                "hi": max(0, e + 1)}
    return {"key": key, "label": label, "kind": "number", "value": v, "min": 0,
            "example": f"{v:g}" if v else "0.01"}


def lab_config(
    surface: str | Surface,
    optimizers: Sequence[str],
    knobs: Mapping[str, Any],
    extra: Mapping[str, Any] = {},
    *,
    steps: int = 200,
    x0: Any = None,
    edit: str | None = None,
) -> dict[str, Any]:
    """What a chapter's "Run live" lab starts from, as JSON-ready data.

    The surface (:func:`optlab.live.surface_spec`), its box and the start, the steps, the η
    slider (the chapter's η within :func:`lr_range`), per rule its colour and a control per
    hyperparameter (set from ``knobs`` and ``extra`` as in :func:`explore`), and the editor:
    the source of rule ``edit``'s update function as ``show_source`` prints it (default: the
    last of ``optimizers``). ``book/tools/optlab_assets.py`` adds the contour image.
    """
    from .live import surface_spec
    from .notebook import source_of

    surf = get_surface(surface)
    names = check_optimizers(optimizers)
    edit = names[-1] if edit is None else edit
    if edit not in FIRST_ORDER:
        raise ValueError(f"edit must be one of {', '.join(FIRST_ORDER)}; got {edit!r}")
    start = check_start(surf, x0)
    lr = float(knobs.get("lr", KNOB_DEFAULTS["lr"]))
    lo, hi = lr_range(surf)
    (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
    rules = []
    for i, name in enumerate(names):
        hp = {**get_rule(name).defaults, **rule_hparams(name, knobs, extra)}
        controls = []
        for key, value in hp.items():
            if key == "lr" or key in _LAB_FIXED.get(name, ()):
                continue
            if key == "betas":
                controls += [_lab_control("betas.0", value[0]), _lab_control("betas.1", value[1])]
            elif isinstance(value, (bool, int, float)):
                controls.append(_lab_control(key, value))
        rules.append({"name": name, "color": COLORS.get(name, f"C{i}"), "hparams": controls})
    rule = get_rule(edit)
    return {
        "surface": surface_spec(surf),
        "label": surf.label,
        "extent": [x_lo, x_hi, y_lo, y_hi],
        "start": [float(start[0]), float(start[1])],
        "steps": int(steps),
        "maxSteps": max(2000, int(steps)),
        "lr": {"value": lr, "lo": min(math.log10(lo), math.log10(lr)),
               "hi": max(math.log10(hi), math.log10(lr))},
        "rules": rules,
        "noise": bool(knobs.get("noise", 0.0)),  # the frame slider's; the lab has none
        "edit": {"rule": edit, "init": rule.init.__name__,
                 "source": source_of(rule.update).rstrip() + "\n"},
    }


def lab_markup(config: Mapping[str, Any]) -> str:
    """The lab's placeholder in a page: ``<div class="optlab-lab" hidden data-lab="...">``.

    Hidden, so that without JavaScript the page shows only the frame slider; the book's
    extension adds the contour image and the script, which builds the lab from ``data-lab``.
    """
    return (f'<div class="optlab-lab" hidden data-lab="{html_lib.escape(json.dumps(config))}">'
            f"</div>")


# --------------------------------------------------------------------------------------------
# Live kernel: the ipywidgets dashboard
# --------------------------------------------------------------------------------------------


def _selection_options(preset: Sequence[float], value: float) -> list[float]:
    return sorted({float(v) for v in preset} | {float(value)})


@dataclass(frozen=True)
class DashboardState:
    """Everything a dashboard's picture depends on: what the controls show at one moment."""

    surface: Surface
    optimizers: tuple[str, ...]
    knobs: Mapping[str, float]
    x0: tuple[float, float]
    steps: int


class Dashboard:
    """The live explorer: controls, the figure (an ``ipywidgets.Image``) and a status line.

    Control changes may arrive on several threads at once (ipykernel 7 handles widget messages
    on a subshell thread) and faster than a redraw: :meth:`refresh` coalesces them: one thread
    redraws at a time, and a change that arrives meanwhile makes it redraw once more, from the
    controls' latest values. A redraw is a function of :class:`DashboardState` alone, so after
    a burst of changes the picture is exactly that of the last state.

    Attributes
    ----------
    widget : ipywidgets.VBox
        What the notebook displays (``Dashboard`` displays as it).
    controls : dict[str, ipywidgets.Widget]
        ``surface``, ``optimizers``, ``lr``, ``beta1``, ``beta2``, ``eps``, ``x``, ``y``,
        ``steps`` (and ``noise`` when gradient noise is on).
    view : optlab.landscape.LandscapeFigure
    runs : dict[str, Trajectory]
        The runs on display.
    state : DashboardState
        The state on display.
    last_update_ms : float
        Wall time of the last redraw (trajectories + drawing + PNG).
    redraws : int
        How many redraws ran (fewer than control changes when they came in a burst).
    """

    def __init__(
        self,
        surface: str | Surface = "rosenbrock",
        optimizers: str | Sequence[str] = ("sgd", "momentum", "adam"),
        steps: int = 200,
        x0: Any = None,
        *,
        seed: int = 0,
        dpi: float = 80,
        **hparams: Any,
    ) -> None:
        import ipywidgets as w

        optimizers = check_optimizers(optimizers)  # before any widget exists
        knobs, self.extra = split_hparams(hparams)
        surf = get_surface(surface)
        steps, start, self.seed = check_steps(steps), check_start(surf, x0), _check_seed(seed)
        k = {**KNOB_DEFAULTS, **knobs}

        options = [(s.label, s) for s in SURFACES.values()]
        if all(s is not surf for _, s in options):
            options.insert(0, (surf.label, surf))
        style = {"description_width": "120px"}
        box = w.Layout(width="340px")
        wide = w.Layout(width="420px")
        (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
        lr_lo, lr_hi = self._lr_bounds(surf, k["lr"])
        c: dict[str, Any] = {
            "surface": w.Dropdown(options=options, value=surf, description="surface",
                                  style=style, layout=box),
            "optimizers": w.SelectMultiple(options=list(FIRST_ORDER), value=optimizers,
                                           rows=len(FIRST_ORDER), description="optimizers",
                                           style=style, layout=box),
            # log10 steps of 0.01 (2.3 % apart) over ~3-4 decades fitted to the surface
            "lr": w.FloatLogSlider(value=k["lr"], base=10, min=lr_lo, max=lr_hi, step=0.01,
                                   readout_format=".3g", description=KNOBS["lr"],
                                   style=style, layout=wide),
            "beta1": w.FloatSlider(value=k["beta1"], min=0.0, max=max(0.999, k["beta1"]),
                                   step=0.001, readout_format=".3f",
                                   description=KNOBS["beta1"], style=style, layout=wide),
            "beta2": w.SelectionSlider(
                options=_selection_options(SWEEP_DEFAULTS["beta2"], k["beta2"]),
                value=float(k["beta2"]), description=KNOBS["beta2"], style=style, layout=wide),
            "eps": w.FloatLogSlider(value=k["eps"], base=10,
                                    min=min(-12.0, math.floor(math.log10(k["eps"]))),
                                    max=max(0.0, math.ceil(math.log10(k["eps"]))), step=0.25,
                                    readout_format=".0e", description=KNOBS["eps"],
                                    style=style, layout=wide),
            "x": w.FloatSlider(value=float(start[0]), min=x_lo, max=x_hi,
                               step=(x_hi - x_lo) / 200, readout_format=".2f",
                               description="start w₁", style=style, layout=box),
            "y": w.FloatSlider(value=float(start[1]), min=y_lo, max=y_hi,
                               step=(y_hi - y_lo) / 200, readout_format=".2f",
                               description="start w₂", style=style, layout=box),
            "steps": w.IntSlider(value=steps, min=min(10, steps), max=max(1000, steps),
                                 step=10 if steps >= 10 else 1, description="steps",
                                 style=style, layout=box),
        }
        if k["noise"]:
            c["noise"] = w.FloatSlider(value=float(k["noise"]), min=0.0,
                                       max=max(4.0 * float(k["noise"]), 1.0), step=0.01,
                                       description=KNOBS["noise"], style=style, layout=box)
        self.controls = c
        self.view = LandscapeFigure(surf, list(FIRST_ORDER), dpi=dpi)
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self.runs: dict[str, Trajectory] = {}
        self.state: DashboardState | None = None
        self.last_update_ms = float("nan")
        self.redraws = 0
        self._pending = threading.Lock()  # guards the two fields below
        self._requests = 0  # refresh() calls so far
        self._redrawing = False  # a thread is redrawing (and will pick up later requests)
        self._adjusting = threading.local()  # set while _on_surface moves the start sliders

        column = w.VBox
        self.widget = w.VBox([
            w.HBox([
                column([c["surface"], c["optimizers"]]),
                column([c["lr"], c["beta1"], c["beta2"], c["eps"]]),
                column([c["x"], c["y"], c["steps"], *([c["noise"]] if "noise" in c else [])]),
            ], layout=w.Layout(flex_flow="row wrap")),  # columns wrap on narrow pages
            self.image,
            self.status,
        ])
        c["surface"].observe(self._on_surface, names="value")
        for key, ctl in c.items():
            if key != "surface":
                ctl.observe(self._on_change, names="value")
        self.refresh()

    @staticmethod
    def _lr_bounds(surf: Surface, lr: float) -> tuple[float, float]:
        """log10 bounds of the η slider: :func:`lr_range` of ``surf``, widened to hold ``lr``."""
        lo, hi = lr_range(surf)
        return (min(math.log10(lo), math.floor(2 * math.log10(lr)) / 2),
                max(math.log10(hi), math.ceil(2 * math.log10(lr)) / 2))

    # -- events ----------------------------------------------------------------------------
    def _on_change(self, change: Any) -> None:
        if not getattr(self._adjusting, "on", False):
            self.refresh()

    def _on_surface(self, change: Any) -> None:
        surf: Surface = change["new"]
        (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
        self._adjusting.on = True
        try:  # widen, move, then narrow: a slider clamps its value to [min, max]
            for key, lo, hi, v in (("x", x_lo, x_hi, surf.start[0]),
                                   ("y", y_lo, y_hi, surf.start[1])):
                s = self.controls[key]
                s.min, s.max = min(s.min, lo), max(s.max, hi)
                s.value = float(v)
                s.min, s.max, s.step = lo, hi, (hi - lo) / 200
            lr = self.controls["lr"]
            lo, hi = (math.log10(b) for b in lr_range(surf))
            lr.min, lr.max = min(lr.min, lo), max(lr.max, hi)
            lr.value = float(min(max(lr.value, 10.0 ** lo), 10.0 ** hi))  # within the new range
            lr.min, lr.max = lo, hi
        finally:
            self._adjusting.on = False
        self.refresh()

    # -- state -----------------------------------------------------------------------------
    def knobs(self) -> dict[str, float]:
        """The knob values the controls show."""
        c = self.controls
        out = {key: float(c[key].value) for key in ("lr", "beta1", "beta2", "eps")}
        if "noise" in c:
            out["noise"] = float(c["noise"].value)
        return out

    def current_state(self) -> DashboardState:
        """What the controls show now."""
        c = self.controls
        return DashboardState(surface=c["surface"].value,
                              optimizers=tuple(c["optimizers"].value), knobs=self.knobs(),
                              x0=(float(c["x"].value), float(c["y"].value)),
                              steps=int(c["steps"].value))

    def refresh(self) -> None:
        """Redraw for the controls' current values (called on every control change).

        Safe from any thread and in bursts: if another thread is redrawing, this call only
        tells it to redraw once more when it is done (from the then-current controls) and
        returns at once; otherwise it redraws until no request is left.
        """
        with self._pending:
            self._requests += 1
            if self._redrawing:
                return
            self._redrawing = True
        try:
            while True:
                with self._pending:
                    seen = self._requests
                self.draw(self.current_state())
                with self._pending:
                    if self._requests == seen:
                        self._redrawing = False
                        return
        except BaseException:
            with self._pending:
                self._redrawing = False
            raise

    def draw(self, state: DashboardState) -> None:
        """Re-run the optimizers of ``state`` and show them (the picture, the status line):
        a function of ``state`` alone."""
        t0 = time.perf_counter()
        runs = run_optimizers(state.surface, state.optimizers, state.knobs, self.extra,
                              steps=state.steps, x0=np.array(state.x0), seed=self.seed)
        with self.view.lock:
            self.view.set_surface(state.surface)
            self.view.update(runs, title=state.surface.label)
            png = self.view.png()
        fstar = f_star(state.surface)
        lines = [_run_summary(n, t, 0, fstar) for n, t in runs.items()]
        self.runs, self.state = runs, state
        self.image.value = png
        self.status.value = (
            "<span style='font-family: monospace; font-size: 90%'>"
            + (" &nbsp;|&nbsp; ".join(lines) or "select at least one optimizer")
            + "</span>"
        )
        self.redraws += 1
        self.last_update_ms = (time.perf_counter() - t0) * 1000.0

    # -- display ---------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# --------------------------------------------------------------------------------------------
# The one call a chapter makes
# --------------------------------------------------------------------------------------------


def explore(
    surface: str | Surface = "rosenbrock",
    optimizers: str | Sequence[str] = ("sgd", "momentum", "adam"),
    sweep: str = "lr",
    values: Any = None,
    steps: int = 200,
    x0: Any = None,
    *,
    seed: int = 0,
    mode: str | None = None,
    lab: bool = True,
    edit: str | None = None,
    **hparams: Any,
) -> Any:
    """Optimizer paths on a toy surface, to play with: ONE call in a chapter.

    Parameters
    ----------
    surface : str or Surface
        Where to start (the dashboard offers every surface).
    optimizers : str or sequence of str
        Rules from :data:`optlab.rules.FIRST_ORDER` to show first (one name for one rule).
    sweep, values : the knob the book's frame slider sweeps (``lr``, ``beta1``, ``beta2``,
        ``eps``, ``noise``) and its values (default :data:`SWEEP_DEFAULTS`). Ignored live.
    steps : int
        1 to :data:`MAX_STEPS`.
    x0 : (w1, w2), optional
        Start point inside the surface's plotting box; the surface's own by default.
    seed : int
        Seed of the gradient noise (with ``noise=``).
    mode : ``"live"``, ``"book"`` or None
        None: ``"book"`` when :func:`build_mode` (``OPTLAB_BOOK_BUILD=1``), else ``"live"``.
    lab : bool
        Book only: put a "Run live" lab under the frame slider (:func:`lab_config`): the same
        setup recomputed in the reader's browser by the package's own rules (Pyodide), with
        η, each rule's hyperparameters, the steps and the start (a click) to change, and an
        editor for the rule's code. Without gradient noise (``noise`` is not used there).
    edit : str, optional
        The rule whose code the lab's editor starts from (default: the last optimizer).
    **hparams
        Knob values (``lr=3e-3``, ``beta1=0.9``, ``beta2=0.999``, ``eps=1e-8``,
        ``noise=0.5``) and other hyperparameters (``weight_decay=1e-2``); see the module doc.

    Returns
    -------
    A :class:`Dashboard` (live) or the HTML frame slider of :func:`sweep_animation` (book);
    either displays itself as the cell's result.

    Raises
    ------
    ValueError
        One line naming the parameter and the fix, in both modes, for anything it would
        otherwise have to clamp or guess: an unknown optimizer or a repeated one, a knob
        outside its range or given as a string, too few or bad sweep values, a sweep that
        changes none of the optimizers, a start outside the plotting box, a bad ``steps``,
        ``seed`` or ``mode``.
    """
    if mode is None:
        mode = "book" if build_mode() else "live"
    if mode not in ("live", "book"):
        raise ValueError(f"mode must be 'live', 'book' or None; got {mode!r}")
    names = check_optimizers(optimizers)  # the same checks in both modes, so that a chapter
    check_sweep(sweep, names)  # that the book would refuse fails its tests too
    if values is not None:
        check_sweep_values(sweep, values)
    if mode == "book":
        out = sweep_animation(surface, names, sweep, values, steps, x0, seed=seed, **hparams)
        if lab:
            knobs, extra = split_hparams(hparams)
            config = lab_config(surface, names, knobs, extra, steps=steps, x0=x0, edit=edit)
            out.data += lab_markup(config)
        return out
    return Dashboard(surface, names, steps, x0, seed=seed, **hparams)


__all__ = [
    "KNOBS",
    "KNOB_DEFAULTS",
    "KNOB_RANGES",
    "KNOB_RULES",
    "MAX_STEPS",
    "SWEEP_DEFAULTS",
    "Dashboard",
    "DashboardState",
    "build_mode",
    "check_knob",
    "check_optimizers",
    "check_start",
    "check_steps",
    "check_sweep",
    "check_sweep_values",
    "explore",
    "frame_slider",
    "lab_config",
    "lab_markup",
    "lr_range",
    "rule_hparams",
    "run_optimizers",
    "split_hparams",
    "sweep_animation",
]
