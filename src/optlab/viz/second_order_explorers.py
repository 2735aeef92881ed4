r"""Sliders for the second-order chapters: Newton's damping, the start point, L-BFGS's memory.

:func:`optlab.widgets.explore` sweeps a hyperparameter of the *first-order* rules. The methods of
:func:`optlab.minimize` are not elementwise rules, so their sliders live here, built on the same
figure (:class:`optlab.viz.landscape.LandscapeFigure`: contour and paths on the left, the loss
against the iteration on the right) and with the same two modes:

* in a live kernel, an ``ipywidgets`` slider over the swept values; each move re-runs
  :func:`optlab.minimize` (milliseconds on a 2-D surface) and moves the figure's lines;
* when the book is built (environment variable ``OPTLAB_BOOK_BUILD=1``), or without
  ``ipywidgets``, a self-contained frame slider (``FuncAnimation.to_jshtml``, as
  :func:`optlab.viz.explore.sweep_animation`): one frame per swept value, computed at build time,
  no kernel needed.

Three entry points, one call each in a chapter::

    newton_damping_explorer("himmelblau", x0=(0.1, 2.8), min_eigs=np.geomspace(1e-3, 1e3, 13))
    start_explorer("himmelblau", starts, methods=("newton", "newton_damped"))
    memory_explorer("rosenbrock", ms=(1, 2, 3, 5, 10))

All of them are thin wrappers of :func:`sweep_explorer`, which takes any function from a swept
value to ``{label: MinimizeResult}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..notebook import build_mode
from ..second_order import MinimizeResult, minimize
from ..surfaces import Surface, get_surface
from .frames import frame_slider, html_output
from .landscape import LandscapeFigure
from .style import METHOD_COLORS


@dataclass(frozen=True)
class _Runs:
    """Several :class:`MinimizeResult` of one label, one per swept value, seen as the rows of a
    Trajectory (``path`` ``(T+1, N, 2)``, NaN-padded after each run's last iterate), so that
    :class:`~optlab.landscape.LandscapeFigure` can draw them (``update(..., row=k)``, ``fit``)."""

    path: np.ndarray
    losses: np.ndarray
    diverged: np.ndarray


def _stack(results: Sequence[MinimizeResult]) -> _Runs:
    T = max(len(r.path) for r in results)
    path = np.full((T, len(results), 2), np.nan)
    losses = np.full((T, len(results)), np.nan)
    for j, r in enumerate(results):
        path[: len(r.path), j] = r.path
        losses[: len(r.f_path), j] = r.f_path
    diverged = np.array(["diverged" in r.message for r in results])
    return _Runs(path, losses, diverged)


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list, np.ndarray)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3g}"
    return str(v)


def _title(surface: Surface, name: str, value: Any,
           results: Mapping[str, MinimizeResult]) -> str:
    its = ", ".join(f"{lab}: {r.nit} it" for lab, r in results.items())
    return f"{surface.label}: {name} = {_fmt(value)}   ({its})"


def sweep_explorer(
    surface: str | Surface,
    compute: Callable[[Any], Mapping[str, MinimizeResult]],
    values: Sequence[Any],
    *,
    name: str,
    labels: Sequence[str],
    colors: Mapping[str, str] | None = None,
    initial: int | None = None,
    mode: str | None = None,
    fps: int = 2,
    dpi: float = 100,
) -> Any:
    """A slider over ``values``; each value ``v`` shows the runs ``compute(v)``.

    ``compute(v)`` returns ``{label: MinimizeResult}`` with labels from ``labels``. ``mode``:
    ``"live"`` (an ipywidgets ``VBox``: slider + image, recomputed on each move), ``"book"``
    (an ``IPython.display.HTML`` frame slider, :func:`optlab.viz.frames.frame_slider`: every
    value computed now; the slider labelled ``name = value`` with its first and last
    values), or ``None``: ``"book"`` when the book is built (``OPTLAB_BOOK_BUILD=1``) or
    ipywidgets is missing, else ``"live"``. ``initial`` is the index shown first (live).
    The returned object carries ``results`` (``{value index: {label: MinimizeResult}}``, the
    values computed so far) for checks in a chapter.
    """
    surf = get_surface(surface)
    values = list(values)
    if not values:
        raise ValueError("sweep_explorer: values is empty")
    labels = list(labels)
    if mode is None:
        mode = "book" if build_mode() else "live"
        if mode == "live":
            try:
                import ipywidgets  # noqa: F401
            except ImportError:  # pragma: no cover
                mode = "book"
    if mode not in ("live", "book"):
        raise ValueError(f"mode must be 'live', 'book' or None; got {mode!r}")
    k0 = len(values) // 2 if initial is None else int(initial)
    cols = {lab: (colors or {}).get(lab) or METHOD_COLORS.get(lab, f"C{i % 10}")
            for i, lab in enumerate(labels)}
    view = LandscapeFigure(surf, labels, colors=cols, dpi=dpi)
    cache: dict[int, Mapping[str, MinimizeResult]] = {}

    def results_at(k: int) -> Mapping[str, MinimizeResult]:
        if k not in cache:
            cache[k] = compute(values[k])
        return cache[k]

    if mode == "live":
        import ipywidgets as w

        slider = w.SelectionSlider(options=[(_fmt(v), i) for i, v in enumerate(values)],
                                   value=k0, description=name, continuous_update=True,
                                   layout=w.Layout(width="460px"),
                                   style={"description_width": "initial"})
        image = w.Image(format="png")

        def on_change(_change: Any = None) -> None:
            # Moves may arrive on several threads (ipykernel 7): one redraw at a time, and
            # each reads the slider inside the lock, so the last redraw shows its last value.
            with view.lock:
                k = slider.value
                res = results_at(k)
                view.update({lab: _stack([r]) for lab, r in res.items()},
                            title=_title(surf, name, values[k], res))
                image.value = view.png()

        slider.observe(on_change, names="value")
        on_change()
        box = w.VBox([slider, image])
        box.results = cache
        return box

    # book: every value now, one shared loss axis, frozen background, to_jshtml
    all_res = [results_at(k) for k in range(len(values))]
    runs = {lab: _stack([res[lab] for res in all_res]) for lab in labels}
    view.fit(runs, range(len(values)))

    def frame(k: int) -> None:
        view.update(runs, k, title=_title(surf, name, values[k], all_res[k]))

    frame(0)
    view.freeze()
    html = frame_slider(view.fig, frame, [_fmt(v) for v in values], name=name, fps=fps)
    return html_output(html, results=cache)


# --------------------------------------------------------------------------------------------
# The chapters' three sliders
# --------------------------------------------------------------------------------------------


def newton_damping_explorer(
    surface: str | Surface = "himmelblau",
    x0: Any = (0.1, 2.8),
    min_eigs: Sequence[float] = tuple(np.geomspace(1e-3, 1e3, 13)),
    *,
    max_iter: int = 300,
    plain: bool = True,
) -> Any:
    r"""Damped Newton (``newton_damped``) as the eigenvalue floor :math:`\delta` = ``min_eig``
    moves, next to plain Newton (``plain=True``) from the same start ``x0``."""
    surf = get_surface(surface)
    x0 = np.asarray(x0, dtype=float)
    base = minimize(surf, x0, "newton", max_iter=max_iter) if plain else None

    def compute(d: float) -> dict[str, MinimizeResult]:
        out = {"newton": base} if base is not None else {}
        out["newton_damped"] = minimize(surf, x0, "newton_damped", min_eig=float(d),
                                        max_iter=max_iter)
        return out

    labels = ["newton", "newton_damped"] if plain else ["newton_damped"]
    return sweep_explorer(surf, compute, list(min_eigs), name="damping floor δ", labels=labels,
                          initial=0)


def start_explorer(
    surface: str | Surface,
    starts: Sequence[Any],
    methods: Sequence[str] = ("newton", "newton_damped"),
    *,
    max_iter: int = 200,
    **options: Any,
) -> Any:
    """The ``methods`` from each of ``starts`` (a list of points), one slider position each.
    ``options`` go to every :func:`optlab.minimize` call."""
    surf = get_surface(surface)
    starts = [tuple(float(c) for c in s) for s in starts]

    def compute(x0: tuple) -> dict[str, MinimizeResult]:
        return {m: minimize(surf, np.array(x0), m, max_iter=max_iter, **options) for m in methods}

    return sweep_explorer(surf, compute, starts, name="start", labels=list(methods))


def memory_explorer(
    surface: str | Surface = "rosenbrock",
    ms: Sequence[int] = (1, 2, 3, 5, 10, 20),
    x0: Any = None,
    *,
    bfgs: bool = True,
    max_iter: int = 500,
) -> Any:
    """L-BFGS with memory ``m`` on the slider, next to full BFGS (``bfgs=True``)."""
    surf = get_surface(surface)
    start = surf.start if x0 is None else np.asarray(x0, dtype=float)
    base = minimize(surf, start, "bfgs", max_iter=max_iter) if bfgs else None

    def compute(m: int) -> dict[str, MinimizeResult]:
        out = {"bfgs": base} if base is not None else {}
        out["lbfgs"] = minimize(surf, start, "lbfgs", m=int(m), max_iter=max_iter)
        return out

    labels = ["bfgs", "lbfgs"] if bfgs else ["lbfgs"]
    return sweep_explorer(surf, compute, [int(m) for m in ms], name="L-BFGS memory m",
                          labels=labels, initial=0)


__all__ = [
    "memory_explorer",
    "newton_damping_explorer",
    "start_explorer",
    "sweep_explorer",
]
