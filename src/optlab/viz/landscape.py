r"""What to draw: optimizer paths on the 2-D surfaces: contour, paths, loss curves.

The figure the chapters and :mod:`optlab.widgets` draw has two panels::

    contour of f (log-spaced levels), minima (*),     |  f(w_t) − f*  against the step t
    each optimizer's path from the start (o),         |  (log y axis), one curve per optimizer,
    x where a diverged path was last seen in the box  |  x at a diverged run's last finite loss

Everything is drawn once and then *updated*: :meth:`LandscapeFigure.update` moves the existing
lines (``Line2D.set_data``) instead of plotting again; how the moved lines reach the screen fast
(blitting onto a cached picture of the contour, axes and ticks; palette PNGs for animations) is
:class:`optlab.viz.blit.BlitFigure`'s job, which :class:`LandscapeFigure` extends.

Typical use in a chapter::

    from optlab.trajectories import trajectories
    runs = trajectories({"sgd": {"lr": 1e-3}, "adam": {"lr": 0.05}}, "rosenbrock")
    optlab.landscape.plot(runs, title="...")     # a Figure; the cell displays it
    optlab.landscape.draw_contour(ax, surface)   # or only the contour, on your own axes

``runs`` maps a label to a :class:`~optlab.trajectories.Trajectory`; a Trajectory with ``N``
rows (a sweep) is drawn one row at a time (``row=k``). Optimizer names get fixed colours
(:data:`COLORS`); other labels get colours by position (:data:`PALETTE`). The contours are
bluish grey (:data:`CONTOUR_CMAP`) and every path colour is saturated, so that a path stands out
on them (``tests/test_viz_landscape.py`` measures the colour distances for every rule).

The figure is safe to drive from several threads (an ipywidgets dashboard under ipykernel 7
receives its messages on more than one thread): :meth:`LandscapeFigure.update`, ``fit``,
``render`` and ``png`` hold the figure's lock, and what a render shows is derived from the
state the last :meth:`update` asked for, never from the previous frame's pixels or artists'
visibility.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D

from ..surfaces import Surface, get_surface
from .blit import BlitFigure
from .style import CONTOUR_ALPHA, CONTOUR_CMAP, colors_for

#: Losses below this (above f*) are drawn at this value on the log axis.
LOSS_FLOOR = 1e-16
#: Losses are drawn up to this factor above the start's (a diverging run climbs to there).
LOSS_HEADROOM = 1e3


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def log_levels(Z: np.ndarray, n: int = 20) -> np.ndarray:
    """``n`` contour levels spaced evenly in ``log(Z - Z.min())``.

    Loss surfaces are steep walls around flat valleys: linear levels put every line on the walls.
    Log-spaced levels of the height above the lowest grid value show the valley floor too.
    The lowest level is the 0.1 % quantile of that height (at least ``1e-6`` of its range).
    """
    Z = np.asarray(Z, dtype=float)
    finite = Z[np.isfinite(Z)]
    if finite.size == 0:
        raise ValueError("log_levels: no finite values")
    base = finite.min()
    height = finite - base
    hi = height.max()
    if hi <= 0:
        return np.array([base])
    lo = max(float(np.quantile(height, 1e-3)), hi * 1e-6)
    return base + np.geomspace(lo, hi, n)


def f_star(surface: Surface) -> float | None:
    """The lowest value of ``surface`` at its listed minima; ``None`` if it has none."""
    if surface.minima.size == 0:
        return None
    return float(np.min(surface.f(surface.minima)))


def _as_runs(runs: Any) -> dict[str, Any]:
    """``{label: Trajectory}`` from a Trajectory, a mapping, or an iterable of Trajectories."""
    if hasattr(runs, "path") and hasattr(runs, "losses"):
        return {str(getattr(runs, "name", "run")): runs}
    if isinstance(runs, Mapping):
        return {str(k): v for k, v in runs.items()}
    if isinstance(runs, Iterable):
        out: dict[str, Any] = {}
        for r in runs:
            label = str(getattr(r, "name", f"run {len(out)}"))
            out[label if label not in out else f"{label} ({len(out)})"] = r
        return out
    raise TypeError(f"expected a Trajectory or a mapping label -> Trajectory; got {type(runs)}")


def exit_point(xy: np.ndarray, last: int, bounds: Any) -> np.ndarray | None:
    """Where a diverged path is last seen in the plotting box ``bounds``.

    Its last finite point (index ``last``) if that is in the box; otherwise the point where
    the path leaves the box for the last time (on the box's edge). None if no point up to
    ``last`` is in the box.
    """
    (x0, x1), (y0, y1) = bounds
    pts = xy[: last + 1]
    inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return None
    i = int(idx[-1])
    if i == last:
        return pts[i]
    p, d = pts[i], pts[i + 1] - pts[i]
    s = 1.0
    for k, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
        if d[k] > 0:
            s = min(s, (hi - p[k]) / d[k])
        elif d[k] < 0:
            s = min(s, (lo - p[k]) / d[k])
    return p + s * d


@dataclass(frozen=True)
class Run:
    """One row of a Trajectory, ready to draw."""

    xy: np.ndarray  # (steps + 1, 2), NaN after divergence
    loss: np.ndarray  # (steps + 1,)
    diverged: bool
    last: int  # index of the last finite point (-1 if none)


def row_of(traj: Any, row: int = 0) -> Run:
    """Row ``row`` of a :class:`~optlab.trajectories.Trajectory` (``path`` ``(T+1, N, 2)``).

    A Trajectory with a single row serves every ``row`` (a swept hyperparameter that an
    optimizer does not take leaves it with one row).
    """
    path = np.asarray(traj.path, dtype=float)
    losses = np.asarray(traj.losses, dtype=float)
    if path.ndim == 2:  # (T+1, 2): a bare path
        path, losses = path[:, None, :], losses.reshape(-1, 1)
    r = 0 if path.shape[1] == 1 else row
    xy, loss = path[:, r, :], losses[:, r]
    diverged = bool(np.asarray(traj.diverged).reshape(-1)[r])
    finite = np.flatnonzero(np.isfinite(xy).all(axis=1) & np.isfinite(loss))
    return Run(xy, loss, diverged, int(finite[-1]) if finite.size else -1)


# --------------------------------------------------------------------------------------------
# Drawing on given axes
# --------------------------------------------------------------------------------------------


def draw_contour(
    ax: Any,
    surface: str | Surface,
    *,
    levels: int = 20,
    grid: int = 150,
    cmap: Any = CONTOUR_CMAP,
    minima: bool = True,
    linewidths: float = 0.7,
) -> list[Any]:
    """Contour lines of ``surface`` over its plotting box, log-spaced levels, minima as stars,
    axes labelled w₁, w₂ (the book's parameters).

    Sets the axes' limits to ``surface.bounds`` and an equal aspect where the box is not too
    elongated. Returns the artists drawn (the contour set and the minima markers) so a caller
    can ``.remove()`` them to switch surfaces.
    """
    surf = get_surface(surface)
    X, Y, Z = surf.grid(grid)
    cs = ax.contour(X, Y, Z, levels=log_levels(Z, levels), cmap=cmap, linewidths=linewidths,
                    alpha=CONTOUR_ALPHA, zorder=1)
    artists: list[Any] = [cs]
    if minima and surf.minima.size:
        (m,) = ax.plot(surf.minima[:, 0], surf.minima[:, 1], linestyle="none", marker="*",
                       markersize=11, color="gold", markeredgecolor="black", zorder=5,
                       label="_minimum")
        artists.append(m)
    (x0, x1), (y0, y1) = surf.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ratio = (y1 - y0) / (x1 - x0)
    ax.set_aspect("equal" if 0.5 <= ratio <= 2 else "auto", adjustable="box")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    return artists


def contour_png(surface: str | Surface, width: int = 560, *,
                levels: int = 20) -> tuple[bytes, int, int]:
    """The contour of ``surface`` alone, as ``(png, width, height)`` in pixels.

    The picture is exactly the plotting box ``surface.bounds`` (no axes, ticks or margins):
    pixel ``(0, 0)`` is the corner ``(xmin, ymax)`` and ``(width, height)`` is ``(xmax, ymin)``,
    so a page can draw paths over it in data coordinates (the book's live labs do, in SVG).
    The height follows the box's aspect ratio, kept within half to twice the width.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    surf = get_surface(surface)
    sx, sy = surf.span
    height = int(round(width * min(2.0, max(0.5, sy / sx))))
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    draw_contour(ax, surf, levels=levels)
    ax.set_aspect("auto")
    ax.set_axis_off()
    canvas.draw()
    rgb = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    img = Image.fromarray(rgb).quantize(64, method=Image.Quantize.FASTOCTREE)  # palette PNG
    buf = io.BytesIO()
    img.save(buf, format="png", optimize=True)
    return buf.getvalue(), width, height


@dataclass
class RunArtists:
    """The artists of one labelled run: its path, loss curve and divergence marks."""

    path: Line2D
    path_x: Line2D  # 'x' where a diverged path was last seen in the box (see exit_point)
    loss: Line2D | None  # None without a loss panel
    loss_x: Line2D | None  # 'x' at the last finite loss of a diverged run

    def set_visible(self, visible: bool) -> None:
        for a in (self.path, self.path_x, self.loss, self.loss_x):
            if a is not None:
                a.set_visible(visible)


def _new_run_artists(ax_map: Any, ax_loss: Any, label: str, color: str) -> RunArtists:
    kw = {"color": color}
    (path,) = ax_map.plot([], [], "-o", lw=1.4, ms=2.2, label=label, zorder=3, **kw)
    (path_x,) = ax_map.plot([], [], "x", ms=11, mew=2.5, zorder=8, clip_on=False, **kw)
    # zorder 3: above the spines (2.5), which the blitted frames draw before any dynamic artist
    (loss,) = ax_loss.plot([], [], "-", lw=1.5, label=label, zorder=3, **kw) if ax_loss else (None,)
    (loss_x,) = ax_loss.plot([], [], "x", ms=10, mew=2.5, zorder=4, **kw) if ax_loss else (None,)
    return RunArtists(path, path_x, loss, loss_x)


# --------------------------------------------------------------------------------------------
# The two-panel figure
# --------------------------------------------------------------------------------------------


class LandscapeFigure(BlitFigure):
    """Contour + paths (left) and loss against step (right), updated in place and redrawn by
    blitting (:class:`~optlab.viz.blit.BlitFigure`: ``render``, ``png``, ``freeze``; before
    ``freeze`` for an animation, :meth:`fit` every frame's runs so that the axes stay put).

    Parameters
    ----------
    surface : str or Surface
    labels : sequence of str
        The runs the figure can show (e.g. every optimizer of a dashboard); each gets its artists
        and a fixed colour once. :meth:`update` shows those it is given and hides the others.
    loss : bool
        Draw the right-hand loss panel.
    figsize, dpi : the figure's size (inches) and resolution.

    What a call to :meth:`render` shows depends only on the surface, the last :meth:`update`
    (its runs, row and title) and the loss range given to :meth:`fit`: the loss axis spans the
    fitted range and the shown runs, so a fresh figure given the same calls draws the same
    pixels. ``lock`` (a re-entrant lock) serializes every method that reads or moves artists.
    """

    def __init__(
        self,
        surface: str | Surface,
        labels: Sequence[str],
        *,
        loss: bool = True,
        figsize: tuple[float, float] | None = None,
        dpi: float = 100,
        levels: int = 20,
        grid: int = 150,
        colors: Mapping[str, str] | None = None,
    ) -> None:
        if figsize is None:
            figsize = (9.0, 3.6) if loss else (4.6, 3.6)
        super().__init__(figsize, dpi)
        self.ax_loss: Any
        if loss:
            self.ax_map, self.ax_loss = self.fig.subplots(1, 2, width_ratios=[0.85, 1])
            self.ax_map.set_anchor("E")  # an equal-aspect map leaves its spare width outside
        else:
            self.ax_map, self.ax_loss = self.fig.add_subplot(), None
        self.levels, self.grid = levels, grid
        self.labels = list(labels)
        colors = dict(colors or colors_for(self.labels))
        self.artists = {
            lab: _new_run_artists(self.ax_map, self.ax_loss, lab, colors[lab]) for lab in labels
        }
        (self.start,) = self.ax_map.plot([], [], "o", color="black", ms=6, zorder=7,
                                         markerfacecolor="white", markeredgewidth=1.5)
        self._surface_artists: list[Any] = []
        self._legend_key: tuple | None = None
        self._legend_artist: Any = None
        self.surface: Surface = get_surface(surface)
        self._limits: tuple | None = None
        self._fit_span = (np.inf, -np.inf)  # the loss range fit() was given (this surface)
        # The intended state of the dynamic artists, set by update(): the labels shown, and
        # for each whether its path left the box diverging (an 'x' on the map).
        self._shown: dict[str, bool] = {}
        # The title changes with every frame of a sweep: render() draws it with the runs.
        self.title = self.fig.suptitle("", fontsize=11)
        self._show_surface(self.surface)

    # -- surface -------------------------------------------------------------------------
    def set_surface(self, surface: str | Surface) -> None:
        """Draw another surface's contour (the only full redraw; paths are kept)."""
        surf = get_surface(surface)
        with self.lock:
            if surf is not self.surface:
                self._show_surface(surf)

    def _show_surface(self, surf: Surface) -> None:
        with self.lock:
            for a in self._surface_artists:
                a.remove()
            self.forget_backgrounds()
            self._limits = None  # the loss axis changes scale: set its limits again
            self._fit_span = (np.inf, -np.inf)
            self._surface_artists = draw_contour(self.ax_map, surf, levels=self.levels,
                                                 grid=self.grid)
            self.surface = surf
            self.f_star = f_star(surf)
            if self.ax_loss is not None:
                ax = self.ax_loss
                ax.set_xlabel("step $t$")
                if self.f_star is None:  # no minimum (saddle): the loss goes negative
                    ax.set_yscale("symlog", linthresh=1e-2)
                    ax.set_ylabel("$f(w_t)$")
                else:
                    ax.set_yscale("log")
                    ax.set_ylabel("$f(w_t) - f^*$")
                ax.grid(True, which="major", alpha=0.3)
            self._lay_out()

    def _lay_out(self) -> None:
        """Place the axes once per surface (constrained layout), then keep them in place.

        The layout is computed with a stand-in title and the widest loss-axis tick labels the
        figure can show, so it does not depend on the runs: every later picture of this surface
        has the same axes, a redraw for new loss limits skips the layout (the costly part of a
        full draw), and a figure's pixels depend only on what it shows, not on its history.
        """
        title, xlim = self.title.get_text(), self.ax_loss and self.ax_loss.get_xlim()
        ylim = self.ax_loss and self.ax_loss.get_ylim()
        self.title.set_text("Wg")  # one line, as every title
        if self.ax_loss is not None:
            self.ax_loss.set_xlim(0, 10_000)
            self.ax_loss.set_ylim(*((-1e5, 1e5) if self.f_star is None else (1e-16, 1e5)))
        for a in self.dynamic_artists():  # the static part alone, as in a new figure
            a.set_visible(a is self.title)
        for ax in self.fig.axes:  # start where a new figure starts: the layout is iterative
            spec = ax.get_subplotspec()
            if spec is not None:
                ax.set_position(spec.get_position(self.fig))
            ax.set_in_layout(True)  # (set_position takes an axes out of the layout)
        ConstrainedLayoutEngine().execute(self.fig)  # once; the figure keeps no layout engine
        self.fig.set_layout_engine(None)
        for a, visible in self.intended_visibility().items():
            a.set_visible(visible)
        self.title.set_text(title)
        if self.ax_loss is not None:
            self.ax_loss.set_xlim(*xlim)
            self.ax_loss.set_ylim(*ylim)

    # -- runs ----------------------------------------------------------------------------
    def update(self, runs: Any, row: int = 0, *, title: str | None = None) -> dict[str, Run]:
        """Show ``runs`` (``{label: Trajectory}``), row ``row`` of each, by moving the artists.

        Labels not in ``runs`` are hidden. Returns the drawn rows by label.
        """
        runs = _as_runs(runs)
        unknown = set(runs) - set(self.artists)
        if unknown:
            raise KeyError(f"LandscapeFigure has no artists for {sorted(unknown)}; "
                           f"it was built for {self.labels}")
        with self.lock:
            return self._update(runs, row, title)

    def _update(self, runs: dict[str, Any], row: int, title: str | None) -> dict[str, Run]:
        drawn: dict[str, Run] = {}
        shown: dict[str, bool] = {}
        steps = 1
        span = self._fit_span
        for label, art in self.artists.items():
            if label not in runs:
                continue
            r = drawn[label] = row_of(runs[label], row)
            art.path.set_data(r.xy[:, 0], r.xy[:, 1])
            mark = r.diverged and r.last >= 0
            where = exit_point(r.xy, r.last, self.surface.bounds) if mark else None
            art.path_x.set_data(*(([where[0]], [where[1]]) if where is not None else ([], [])))
            shown[label] = where is not None
            steps = max(steps, len(r.loss) - 1)
            if art.loss is not None and art.loss_x is not None:  # (with a loss panel)
                y = self._loss_y(r.loss)
                t = np.arange(len(y))
                art.loss.set_data(t, y)
                art.loss_x.set_data(t[r.last:r.last + 1] if mark else [],
                                    y[r.last:r.last + 1] if mark else [])
                span = _widen(span, y)
            art.path.set_label(label + (" (diverged)" if r.diverged else ""))
        self._shown = shown
        if drawn:
            x0 = next(iter(drawn.values())).xy[0]
            self.start.set_data([x0[0]], [x0[1]])
        if self.ax_loss is not None:
            lo, hi = span
            ylim = self._loss_ylim(lo, hi) if np.isfinite(lo) else self._loss_ylim(1e-6, 1.0)
            limits = ((0, steps), ylim)
            if limits != self._limits:  # new axis limits: another background (render)
                self._limits = limits
                self.ax_loss.set_xlim(*limits[0])
                self.ax_loss.set_ylim(*limits[1])
        if title is not None:
            self.title.set_text(title)
        for a, visible in self.intended_visibility().items():
            a.set_visible(visible)
        self._legend(drawn)  # after the paths show: the legend copies their look, visibility too
        return drawn

    def fit(self, runs: Any, rows: Iterable[int]) -> None:
        """Widen the loss axis to hold every row in ``rows`` of ``runs`` (call before an
        animation over the rows, so that all frames share one y axis). Kept until the surface
        changes."""
        with self.lock:
            for traj in _as_runs(runs).values():
                for r in rows:
                    self._fit_span = _widen(self._fit_span, self._loss_y(row_of(traj, r).loss))

    def _loss_y(self, loss: np.ndarray) -> np.ndarray:
        """The loss as drawn: above f* (floored at LOSS_FLOOR) and capped at LOSS_HEADROOM
        times the start's (a diverging run climbs to the cap and is marked there)."""
        y = loss if self.f_star is None else np.maximum(loss - self.f_star, LOSS_FLOOR)
        cap = LOSS_HEADROOM * max(abs(float(y[0])), 1.0) if np.isfinite(y[0]) else np.inf
        return np.clip(y, -cap, cap)

    def _loss_ylim(self, lo: float, hi: float) -> tuple[float, float]:
        """Limits that change rarely (whole decades), so that most updates can blit."""
        if self.f_star is None:  # symlog: round outwards to powers of ten (or 0)
            def out(v: float, up: bool) -> float:
                if abs(v) < 1e-2:
                    return 1e-2 if up else -1e-2
                e = 10.0 ** np.ceil(np.log10(abs(v)))
                return float(np.copysign(e, v)) if (v > 0) == up else float(np.copysign(e / 10, v))
            return out(lo, False), out(hi, True)
        lo = max(lo, LOSS_FLOOR)
        hi = max(hi, lo * 10)
        return (float(10.0 ** np.floor(np.log10(lo) - 0.3)),
                float(10.0 ** np.ceil(np.log10(hi) + 0.3)))

    def _legend(self, drawn: Mapping[str, Run]) -> None:
        key = tuple((lab, r.diverged) for lab, r in drawn.items())
        if key == self._legend_key:
            return
        self._legend_key = key
        ax = self.ax_loss if self.ax_loss is not None else self.ax_map
        if self._legend_artist is not None:
            self._legend_artist.remove()
            self._legend_artist = None
        handles = [self.artists[lab].path for lab in drawn]
        if handles:
            self._legend_artist = ax.legend(handles=handles, loc="upper right", fontsize=9,
                                            framealpha=0.85)

    # -- what blitting redraws ----------------------------------------------------------
    def dynamic_artists(self) -> list[Artist]:
        """The artists render() draws over the cached background, in drawing order (zorder,
        as a full draw would): the runs, the start, the legend, the title, and the minima
        markers, which sit above the paths."""
        arts: list[Artist] = [a for art in self.artists.values()
                for a in (art.path, art.path_x, art.loss, art.loss_x) if a is not None]
        arts += [self.start, self.title]
        arts += [a for a in self._surface_artists if isinstance(a, Line2D)]  # the minima
        if self._legend_artist is not None:
            arts.append(self._legend_artist)
        return sorted(arts, key=lambda a: a.get_zorder())  # stable: ties keep this order

    def intended_visibility(self) -> dict[Artist, bool]:
        """Whether each dynamic artist shows, from the state :meth:`update` set (the runs
        shown), never from an artist's current visibility: a render interrupted between
        hiding and restoring, or an earlier frame, cannot leave anything hidden or shown."""
        vis: dict[Any, bool] = {a: True for a in self.dynamic_artists()}  # minima, title, legend
        for label, art in self.artists.items():
            on = label in self._shown
            for a in (art.path, art.loss, art.loss_x):
                if a is not None:
                    vis[a] = on
            vis[art.path_x] = on and self._shown[label]  # (unclipped: hidden when empty)
        vis[self.start] = bool(self._shown)
        return vis

    def background_key(self) -> Hashable:
        """The loss axis's limits: the static part changes with them (and with the surface,
        which drops the cached backgrounds)."""
        return self._limits


def _widen(span: tuple[float, float], y: np.ndarray) -> tuple[float, float]:
    """``span`` widened to hold the finite values of ``y``."""
    fin = y[np.isfinite(y)]
    if not fin.size:
        return span
    return (min(span[0], float(fin.min())), max(span[1], float(fin.max())))


def plot(
    runs: Any,
    surface: str | Surface | None = None,
    *,
    row: int = 0,
    loss: bool = True,
    title: str | None = None,
    **kwargs: Any,
) -> Figure:
    """The two-panel figure of ``runs`` (``{label: Trajectory}`` or one Trajectory), row ``row``.

    ``surface`` defaults to the runs' own. Returns the :class:`~matplotlib.figure.Figure`
    (a notebook displays it; ``fig.savefig(...)`` to write it). ``kwargs`` go to
    :class:`LandscapeFigure` (``figsize``, ``dpi``, ``levels``, ``colors``).
    """
    runs = _as_runs(runs)
    if surface is None:
        if not runs:
            raise ValueError("plot: no runs and no surface")
        surface = next(iter(runs.values())).surface
    kwargs.setdefault("dpi", 100)
    kwargs.setdefault("colors", colors_for(list(runs), runs))
    lf = LandscapeFigure(surface, list(runs), loss=loss, **kwargs)
    lf.update(runs, row, title=title)
    return lf.fig


__all__ = [
    "LOSS_FLOOR",
    "LOSS_HEADROOM",
    "LandscapeFigure",
    "Run",
    "RunArtists",
    "contour_png",
    "draw_contour",
    "exit_point",
    "f_star",
    "log_levels",
    "plot",
    "row_of",
]
