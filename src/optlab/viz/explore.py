r"""The one call a chapter makes: :func:`explore`, live in Jupyter, a frame slider in the book.

A chapter writes ONE line::

    optlab.widgets.explore(surface="rosenbrock", optimizers=("sgd", "momentum", "adam"),
                           sweep="lr", lr=3e-3)

* **In a live kernel** this is an ipywidgets dashboard (:class:`~optlab.viz.dashboard.Dashboard`):
  surface, optimizers, learning rate η, β1, β2, ε, start point and number of steps; the contour
  with every optimizer's path on the left, the loss against the step on the right (log scale),
  diverged runs marked with an ``x`` and "(diverged)".
* **In the book build** (``OPTLAB_BOOK_BUILD=1``, set by ``make book`` and inherited by the
  kernels that execute the chapters) there is no kernel behind the page, so a live dashboard
  would be dead. The same figure is precomputed over ``values`` of the ``sweep`` knob and
  returned as a matplotlib frame slider (:func:`sweep_animation`,
  :func:`~optlab.viz.frames.frame_slider`): the reader drags through the sweep in the static
  page, offline, with the knob's name and value next to the slider, its first and last values
  at the ends, and the value in each frame's title.

The knobs and their checks are :mod:`optlab.viz.knobs`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..notebook import build_mode
from ..surfaces import Surface, get_surface
from .dashboard import Dashboard
from .frames import frame_slider, html_output
from .knobs import (
    KNOBS,
    SWEEP_DEFAULTS,
    check_optimizers,
    check_seed,
    check_start,
    check_steps,
    check_sweep,
    check_sweep_values,
    fmt,
    run_optimizers,
    split_hparams,
)
from .lab import lab_config, lab_markup
from .landscape import LandscapeFigure
from .style import COLORS


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
    fps: int = 2,
    figsize: tuple[float, float] = (9.0, 3.6),
    **hparams: Any,
) -> Any:
    """The two-panel figure over a sweep of one knob, as a self-contained HTML frame slider.

    Every optimizer runs once per value of ``sweep`` (``lr``, ``beta1``, ``beta2``, ``eps`` or
    ``noise``; ``values`` defaults to :data:`~optlab.viz.knobs.SWEEP_DEFAULTS`), vectorized;
    frame ``k`` shows them all at ``values[k]``, on one shared loss axis, titled with the
    surface and the value. Returns an :class:`IPython.display.HTML` from
    :func:`~optlab.viz.frames.frame_slider` (offline; the slider labelled with the knob's name,
    its value and both ends). The object also carries ``runs``
    (``{optimizer: Trajectory}``), ``values`` and ``sweep`` for checks in a chapter, and
    ``figure`` (the :class:`~optlab.viz.landscape.LandscapeFigure`, at the last frame). Takes a
    second or two. Bad arguments raise a one-line ``ValueError`` (see :func:`explore`).
    """
    optimizers = check_optimizers(optimizers)
    check_sweep(sweep, optimizers)
    surf = get_surface(surface)
    steps, start, seed = check_steps(steps), check_start(surf, x0), check_seed(seed)
    knobs, extra = split_hparams(hparams)
    vals = check_sweep_values(sweep, SWEEP_DEFAULTS[sweep] if values is None else values)
    knobs[sweep] = vals
    runs = run_optimizers(surf, optimizers, knobs, extra, steps=steps, x0=start, seed=seed)

    colors = {n: COLORS.get(n, f"C{i}") for i, n in enumerate(optimizers)}
    view = LandscapeFigure(surf, optimizers, dpi=dpi, figsize=figsize, colors=colors)
    view.fit(runs, range(vals.size))
    label = KNOBS[sweep]

    def frame(k: int) -> None:
        view.update(runs, k, title=f"{surf.label}: {label} = {fmt(vals[k])}")

    frame(0)
    view.freeze()  # frames: paths blitted onto the cached contour, saved as palette PNGs
    html = frame_slider(view.fig, frame, [fmt(v) for v in vals], name=label, fps=fps)
    return html_output(html, runs=runs, values=vals, sweep=sweep, figure=view)


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
        Book only: put a "Run live" lab under the frame slider (:mod:`optlab.viz.lab`): the
        same setup recomputed in the reader's browser by the package's own rules (Pyodide),
        with η, each rule's hyperparameters, the steps and the start (a click) to change, and
        an editor for the rule's code. Without gradient noise (``noise`` is not used there).
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


__all__ = ["explore", "sweep_animation"]
