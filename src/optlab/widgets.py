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
* **In the book build** (``OPTLAB_BOOK_BUILD=1``, set by ``make book`` and inherited by the
  kernels that execute the chapters) there is no kernel behind the page, so a live dashboard
  would be dead. The same figure is precomputed over ``values`` of the ``sweep`` knob and
  returned as a matplotlib frame slider (:func:`sweep_animation`, ``FuncAnimation.to_jshtml``):
  the reader drags through the sweep in the static page, offline.

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

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .landscape import COLORS, LandscapeFigure, f_star, row_of
from .rules import FIRST_ORDER, get_rule
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
_ADAM_FAMILY = ("adam", "adamw", "nadamw")
_CDN_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>", re.IGNORECASE)


def build_mode() -> bool:
    """True while the book is being built (``OPTLAB_BOOK_BUILD`` set and not ``0``)."""
    return os.environ.get("OPTLAB_BOOK_BUILD", "").strip() not in ("", "0")


# --------------------------------------------------------------------------------------------
# Knobs -> rule hyperparameters -> trajectories
# --------------------------------------------------------------------------------------------


def split_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(knobs, extra)``: the dashboard knobs given in ``hparams`` (``lr``, ``beta1``,
    ``beta2``, ``eps``, ``noise``; ``betas=(b1, b2)`` counts as both betas) and the rest.

    Raises ``ValueError`` for a keyword that no first-order rule takes.
    """
    knobs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in hparams.items():
        if key == "betas":
            knobs["beta1"], knobs["beta2"] = value
        elif key in KNOBS:
            knobs[key] = value
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


def _fmt(knob: str, value: float) -> str:
    if knob in ("lr", "eps") or (value != 0 and abs(value) < 1e-2):
        return f"{value:.1e}"
    return f"{value:g}"


def _run_summary(label: str, traj: Trajectory, row: int, fstar: float | None) -> str:
    r = row_of(traj, row)
    if r.diverged:
        return f"{label}: diverged at step {max(r.last + 1, 0)}"
    loss = r.loss[-1]
    if fstar is None:
        return f"{label}: f = {loss:.3g} after {len(r.loss) - 1} steps"
    return f"{label}: f − f* = {loss - fstar:.2e} after {len(r.loss) - 1} steps"


# --------------------------------------------------------------------------------------------
# Book build: a frame slider over a precomputed sweep
# --------------------------------------------------------------------------------------------


def sweep_animation(
    surface: str | Surface = "rosenbrock",
    optimizers: Sequence[str] = ("sgd", "momentum", "adam"),
    sweep: str = "lr",
    values: Any = None,
    steps: int = 200,
    x0: Any = None,
    *,
    seed: int = 0,
    dpi: float = 72,
    fps: float = 2.0,
    figsize: tuple[float, float] = (9.0, 3.6),
    **hparams: Any,
) -> Any:
    """The two-panel figure over a sweep of one knob, as a self-contained HTML frame slider.

    Every optimizer runs once per value of ``sweep`` (``lr``, ``beta1``, ``beta2``, ``eps`` or
    ``noise``; ``values`` defaults to :data:`SWEEP_DEFAULTS`), vectorized; frame ``k`` shows
    them all at ``values[k]``, on one shared loss axis. Returns an
    :class:`IPython.display.HTML` from ``FuncAnimation.to_jshtml(default_mode="once")`` without
    its Font Awesome CDN ``<link>`` (the book theme draws the icons), so the page makes no
    outside request. The object also carries ``runs`` (``{optimizer: Trajectory}``),
    ``values`` and ``sweep`` for checks in a chapter. Takes a second or two.
    """
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    if sweep not in KNOBS:
        raise ValueError(f"sweep must be one of {', '.join(KNOBS)}; got {sweep!r}")
    optimizers = list(optimizers)
    if not optimizers:
        raise ValueError("sweep_animation: no optimizers")
    surf = get_surface(surface)
    knobs, extra = split_hparams(hparams)
    vals = np.asarray(SWEEP_DEFAULTS[sweep] if values is None else values, dtype=float).ravel()
    if vals.size < 2:
        raise ValueError(f"sweep_animation: need at least 2 values of {sweep}; got {vals}")
    knobs[sweep] = vals
    runs = run_optimizers(surf, optimizers, knobs, extra, steps=steps, x0=x0, seed=seed)

    colors = {n: COLORS.get(n, f"C{i}") for i, n in enumerate(optimizers)}
    view = LandscapeFigure(surf, optimizers, dpi=dpi, figsize=figsize, colors=colors)
    view.fit(runs, range(vals.size))
    label = KNOBS[sweep]

    def frame(k: int) -> None:
        view.update(runs, k, title=f"{surf.name}: {label} = {_fmt(sweep, vals[k])}")

    frame(0)
    view.freeze()  # frames: paths blitted onto the cached contour, saved as palette PNGs
    anim = FuncAnimation(view.fig, frame, frames=vals.size, interval=1000.0 / fps,
                         repeat=False)
    html = _CDN_LINK.sub("", anim.to_jshtml(fps=fps, default_mode="once"))
    out = HTML(html)
    out.runs, out.values, out.sweep = runs, vals, sweep
    out.figure = view
    return out


# --------------------------------------------------------------------------------------------
# Live kernel: the ipywidgets dashboard
# --------------------------------------------------------------------------------------------


def _selection_options(preset: Sequence[float], value: float) -> list[float]:
    return sorted({float(v) for v in preset} | {float(value)})


class Dashboard:
    """The live explorer: controls, the figure (an ``ipywidgets.Image``) and a status line.

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
    last_update_ms : float
        Wall time of the last refresh (trajectories + drawing + PNG).
    """

    def __init__(
        self,
        surface: str | Surface = "rosenbrock",
        optimizers: Sequence[str] = ("sgd", "momentum", "adam"),
        steps: int = 200,
        x0: Any = None,
        *,
        seed: int = 0,
        dpi: float = 80,
        **hparams: Any,
    ) -> None:
        import ipywidgets as w

        knobs, self.extra = split_hparams(hparams)
        for name in optimizers:
            get_rule(name)  # ValueError for an unknown name, before any widget exists
        self.seed = seed
        k = {**KNOB_DEFAULTS, **knobs}
        surf = get_surface(surface)
        start = surf.start if x0 is None else np.asarray(x0, dtype=float).reshape(2)

        options = [(name, s) for name, s in SURFACES.items()]
        if all(s is not surf for _, s in options):
            options.insert(0, (f"{surf!r}", surf))
        style = {"description_width": "120px"}
        box = w.Layout(width="340px")
        (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
        c: dict[str, Any] = {
            "surface": w.Dropdown(options=options, value=surf, description="surface",
                                  style=style, layout=box),
            "optimizers": w.SelectMultiple(options=list(FIRST_ORDER), value=tuple(optimizers),
                                           rows=len(FIRST_ORDER), description="optimizers",
                                           style=style, layout=box),
            "lr": w.FloatLogSlider(value=k["lr"], base=10, min=-5, max=1, step=0.05,
                                   readout_format=".1e", description=KNOBS["lr"],
                                   style=style, layout=box),
            "beta1": w.FloatSlider(value=k["beta1"], min=0.0, max=0.999, step=0.001,
                                   readout_format=".3f", description=KNOBS["beta1"],
                                   style=style, layout=box),
            "beta2": w.SelectionSlider(
                options=_selection_options(SWEEP_DEFAULTS["beta2"], k["beta2"]),
                value=float(k["beta2"]), description=KNOBS["beta2"], style=style, layout=box),
            "eps": w.FloatLogSlider(value=k["eps"], base=10, min=-12, max=0, step=0.5,
                                    readout_format=".0e", description=KNOBS["eps"],
                                    style=style, layout=box),
            "x": w.FloatSlider(value=float(start[0]), min=x_lo, max=x_hi,
                               step=(x_hi - x_lo) / 200, readout_format=".2f",
                               description="start x", style=style, layout=box),
            "y": w.FloatSlider(value=float(start[1]), min=y_lo, max=y_hi,
                               step=(y_hi - y_lo) / 200, readout_format=".2f",
                               description="start y", style=style, layout=box),
            "steps": w.IntSlider(value=int(steps), min=10, max=max(1000, int(steps)), step=10,
                                 description="steps", style=style, layout=box),
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
        self.last_update_ms = float("nan")
        self._holding = False

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

    # -- events ----------------------------------------------------------------------------
    def _on_change(self, change: Any) -> None:
        if not self._holding:
            self.refresh()

    def _on_surface(self, change: Any) -> None:
        surf: Surface = change["new"]
        (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
        self._holding = True
        try:  # widen, move, then narrow: a slider clamps its value to [min, max]
            for key, lo, hi, v in (("x", x_lo, x_hi, surf.start[0]),
                                   ("y", y_lo, y_hi, surf.start[1])):
                s = self.controls[key]
                s.min, s.max = min(s.min, lo), max(s.max, hi)
                s.value = float(v)
                s.min, s.max, s.step = lo, hi, (hi - lo) / 200
        finally:
            self._holding = False
        self.refresh()

    # -- state -----------------------------------------------------------------------------
    def knobs(self) -> dict[str, float]:
        """The knob values the controls show."""
        c = self.controls
        out = {key: float(c[key].value) for key in ("lr", "beta1", "beta2", "eps")}
        if "noise" in c:
            out["noise"] = float(c["noise"].value)
        return out

    def refresh(self) -> None:
        """Re-run the selected optimizers and redraw (called on every control change)."""
        t0 = time.perf_counter()
        c = self.controls
        surf: Surface = c["surface"].value
        self.view.set_surface(surf)
        x0 = np.array([c["x"].value, c["y"].value], dtype=float)
        self.runs = run_optimizers(surf, c["optimizers"].value, self.knobs(), self.extra,
                                   steps=int(c["steps"].value), x0=x0, seed=self.seed)
        self.view.update(self.runs, title=surf.name)
        self.image.value = self.view.png()
        fstar = f_star(surf)
        lines = [_run_summary(n, t, 0, fstar) for n, t in self.runs.items()]
        self.status.value = (
            "<span style='font-family: monospace; font-size: 90%'>"
            + (" &nbsp;|&nbsp; ".join(lines) or "select at least one optimizer")
            + "</span>"
        )
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
    optimizers: Sequence[str] = ("sgd", "momentum", "adam"),
    sweep: str = "lr",
    values: Any = None,
    steps: int = 200,
    x0: Any = None,
    *,
    seed: int = 0,
    mode: str | None = None,
    **hparams: Any,
) -> Any:
    """Optimizer paths on a toy surface, to play with: ONE call in a chapter.

    Parameters
    ----------
    surface : str or Surface
        Where to start (the dashboard offers every surface).
    optimizers : sequence of str
        Rules from :data:`optlab.rules.FIRST_ORDER` to show first.
    sweep, values : the knob the book's frame slider sweeps (``lr``, ``beta1``, ``beta2``,
        ``eps``, ``noise``) and its values (default :data:`SWEEP_DEFAULTS`). Ignored live.
    steps : int
    x0 : (x, y), optional
        Start point; the surface's own by default.
    seed : int
        Seed of the gradient noise (with ``noise=``).
    mode : ``"live"``, ``"book"`` or None
        None: ``"book"`` when :func:`build_mode` (``OPTLAB_BOOK_BUILD=1``), else ``"live"``.
    **hparams
        Knob values (``lr=3e-3``, ``beta1=0.9``, ``beta2=0.999``, ``eps=1e-8``,
        ``noise=0.5``) and other hyperparameters (``weight_decay=1e-2``); see the module doc.

    Returns
    -------
    A :class:`Dashboard` (live) or the HTML frame slider of :func:`sweep_animation` (book);
    either displays itself as the cell's result.
    """
    if mode is None:
        mode = "book" if build_mode() else "live"
    if mode == "book":
        return sweep_animation(surface, optimizers, sweep, values, steps, x0, seed=seed,
                               **hparams)
    if mode != "live":
        raise ValueError(f"mode must be 'live', 'book' or None; got {mode!r}")
    if sweep not in KNOBS:  # same check as the book, so a chapter fails in tests too
        raise ValueError(f"sweep must be one of {', '.join(KNOBS)}; got {sweep!r}")
    return Dashboard(surface, optimizers, steps, x0, seed=seed, **hparams)


__all__ = [
    "KNOBS",
    "KNOB_DEFAULTS",
    "SWEEP_DEFAULTS",
    "Dashboard",
    "build_mode",
    "explore",
    "rule_hparams",
    "run_optimizers",
    "split_hparams",
    "sweep_animation",
]
