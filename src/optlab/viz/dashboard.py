"""How the live explorer redraws: the ipywidgets :class:`Dashboard` behind
:func:`optlab.widgets.explore` in a kernel.

Each control change re-runs the optimizers (:func:`optlab.viz.knobs.run_optimizers`) and moves
the existing lines of one :class:`~optlab.viz.landscape.LandscapeFigure`, whose PNG is blitted
(:class:`~optlab.viz.blit.BlitFigure`), so slider moves cost tens of milliseconds. Changes that
arrive faster than that, or on several threads (ipykernel 7), are coalesced: the picture always
ends as that of the controls' last state (:meth:`Dashboard.refresh`). The η slider is
logarithmic, over the decades that suit the surface (:func:`~optlab.viz.knobs.lr_range`).
Labels are plain text/Unicode (the static widget manager cannot typeset LaTeX).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rules import FIRST_ORDER
from ..surfaces import SURFACES, Surface, get_surface
from ..trajectories import Trajectory
from .knobs import (
    KNOB_DEFAULTS,
    KNOBS,
    SWEEP_DEFAULTS,
    check_optimizers,
    check_seed,
    check_start,
    check_steps,
    lr_range,
    run_optimizers,
    split_hparams,
)
from .landscape import LandscapeFigure, f_star, row_of


def _run_summary(label: str, traj: Trajectory, row: int, fstar: float | None) -> str:
    r = row_of(traj, row)
    if r.diverged:
        return f"{label}: diverged at step {max(r.last + 1, 0)}"
    loss = r.loss[-1]
    if fstar is None:
        return f"{label}: f = {loss:.3g} after {len(r.loss) - 1} steps"
    return f"{label}: f − f* = {loss - fstar:.2e} after {len(r.loss) - 1} steps"



def _selection_options(preset: Iterable[float], value: float) -> list[float]:
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
        steps, start, self.seed = check_steps(steps), check_start(surf, x0), check_seed(seed)
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
    def _on_change(self, _change: Any) -> None:
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


__all__ = ["Dashboard", "DashboardState"]
