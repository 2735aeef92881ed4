"""How to redraw fast: a matplotlib figure that repaints only what moves.

:class:`BlitFigure` owns a :class:`~matplotlib.figure.Figure` on its own Agg canvas (no pyplot:
it displays itself as a cell's value, is never shown twice and never joins pyplot's list of open
figures). Its subclass says *what* is drawn; this class makes redrawing cheap:

* :meth:`BlitFigure.render` draws the static part (whatever is not in :meth:`dynamic_artists`:
  contour, axes, ticks) once per :meth:`background_key` and caches the picture (the last few);
  each call restores it and draws only the dynamic artists on top. A slider move or an
  animation frame costs a few lines, not a rebuild of the figure.
* :meth:`BlitFigure.png` encodes that picture fast (a live dashboard calls it on every move);
  after :meth:`BlitFigure.freeze`, ``savefig(format="png")`` (what matplotlib's animations
  call per frame) blits too and writes a 256-colour palette PNG, about 3x smaller.
* ``lock`` (re-entrant) serializes every method that reads or moves artists, so an ipywidgets
  dashboard receiving messages on several threads (ipykernel 7) never renders a half-moved
  figure. What a render shows comes from :meth:`intended_visibility` (the state the subclass
  last set), never from the previous frame's pixels or artists' visibility.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: How many pictures of a figure's static part (one per background key) render() keeps.
BACKGROUNDS_KEPT = 8


class _Canvas(FigureCanvasAgg):
    """The Agg canvas of a :class:`BlitFigure`.

    With ``fast_png`` set (to the BlitFigure), ``savefig(..., format="png")`` draws by blitting
    (:meth:`BlitFigure.render`) and writes a 256-colour palette PNG: a contour plot has far
    fewer colours that matter, and the file is about 3x smaller. The frames of the book's
    animations are made this way.
    """

    fast_png: BlitFigure | None = None

    def draw_idle(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: this canvas is never shown on screen (FuncAnimation calls this after
        every frame; a full redraw here would be thrown away)."""

    def print_png(self, filename_or_obj: Any, *, metadata: Any = None,
                  pil_kwargs: Any = None, **_print_figure_kwargs: Any) -> None:
        # (savefig also passes dpi, facecolor, orientation ...: Agg's print_png ignores them)
        if self.fast_png is None:
            super().print_png(filename_or_obj, metadata=metadata, pil_kwargs=pil_kwargs)
            return
        from PIL import Image

        rgb = np.ascontiguousarray(self.fast_png.render()[..., :3])
        img = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE)
        img.save(filename_or_obj, format="png", **(pil_kwargs or {}))


class _Figure(Figure):
    """A Figure that displays itself in IPython even when pyplot (and with it the inline
    backend's figure formatter) was never imported."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


class BlitFigure:
    """A figure redrawn by blitting its dynamic artists onto a cached static part.

    A subclass draws its content on ``self.fig`` and says which artists move
    (:meth:`dynamic_artists`), which of them show (:meth:`intended_visibility`) and what the
    static part depends on besides the figure's size (:meth:`background_key`, e.g. axis
    limits); it calls :meth:`forget_backgrounds` when the static part changes otherwise (a new
    contour). ``full_draws`` counts the renders that had to draw the static part.
    """

    def __init__(self, figsize: tuple[float, float], dpi: float) -> None:
        self.lock = threading.RLock()
        self.fig = _Figure(figsize=figsize, dpi=dpi, layout="constrained")
        self.canvas = _Canvas(self.fig)
        # The static part for blitting, by background key and figure size: a slider moved
        # back and forth reuses the few pictures it needs.
        self._backgrounds: OrderedDict[Hashable, Any] = OrderedDict()
        self.full_draws = 0

    # -- what the subclass says ---------------------------------------------------------
    def dynamic_artists(self) -> list[Artist]:
        """The artists drawn over the cached static part, in drawing order (by zorder, as a
        full draw would)."""
        raise NotImplementedError

    def intended_visibility(self) -> dict[Artist, bool]:
        """Whether each dynamic artist shows, from the state the subclass last set."""
        raise NotImplementedError

    def background_key(self) -> Hashable:
        """What the static part depends on besides the figure's size and resolution."""
        return None

    def forget_backgrounds(self) -> None:
        """Drop the cached static parts (call when the static content changes)."""
        with self.lock:
            self._backgrounds.clear()

    # -- drawing ------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """Draw the figure onto its Agg canvas by blitting; return the RGBA pixels.

        The static part is drawn once per :meth:`background_key` (and figure size) and cached
        (the last :data:`BACKGROUNDS_KEPT`); each call restores it and draws only the visible
        dynamic artists on top. The returned array is the canvas's buffer: copy it to keep it
        past the next render.
        """
        with self.lock:
            canvas = self.canvas
            key = (self.fig.dpi, *self.fig.get_size_inches(), self.background_key())
            visible = self.intended_visibility()
            if key in self._backgrounds:
                self._backgrounds.move_to_end(key)
                canvas.restore_region(self._backgrounds[key])
            else:
                self.full_draws += 1
                # The static part alone: hide the dynamic artists for this draw.
                for a in visible:
                    a.set_visible(False)
                try:
                    canvas.draw()
                finally:
                    for a, on in visible.items():
                        a.set_visible(on)
                self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
                while len(self._backgrounds) > BACKGROUNDS_KEPT:
                    self._backgrounds.popitem(last=False)
            for a in self.dynamic_artists():
                a.set_visible(visible.get(a, False))  # as intended, whatever an earlier
                if a.get_visible():  # render or caller left behind
                    self.fig.draw_artist(a)
            return np.asarray(canvas.buffer_rgba())

    def png(self, *, compress_level: int = 1) -> bytes:
        """The figure as PNG bytes, drawn by :meth:`render` (fast: runs on every slider move)."""
        from PIL import Image

        with self.lock:
            img = Image.fromarray(self.render())
            buf = io.BytesIO()
            img.save(buf, format="png", compress_level=compress_level)
        return buf.getvalue()

    def freeze(self) -> None:
        """Prepare for many ``savefig`` PNGs of this figure (the frames of an animation).

        Makes ``savefig(format="png")`` draw by blitting (:meth:`render`) and write a
        256-colour palette PNG: each frame costs the moving artists, not every static line and
        tick label again, and is about 3x smaller. Fix the axes first (all frames' limits) so
        that the static part stays put; the layout is frozen too.
        """
        with self.lock:
            self.render()
            self.fig.set_layout_engine(None)  # the axes stay where this render put them
            self.canvas.fast_png = self

    def _repr_png_(self) -> bytes:
        return self.png(compress_level=6)


__all__ = ["BACKGROUNDS_KEPT", "BlitFigure"]
