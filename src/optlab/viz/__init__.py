"""Visualisation, split into what to draw and how to redraw it fast.

What to draw:

* :mod:`.style` — the book's colours (per optimizer, per second-order method, the contours);
* :mod:`.landscape` — the two-panel figure: contour and paths, loss against the step
  (:class:`~optlab.viz.landscape.LandscapeFigure`, :func:`~optlab.viz.landscape.plot`,
  :func:`~optlab.viz.landscape.draw_contour`);
* :mod:`.knobs` — what the explorer's controls mean: the knobs, their checks, the runs they ask
  for;
* :mod:`.explore` and :mod:`.second_order_explorers` — the one call a chapter makes.

How to redraw fast and ship it:

* :mod:`.blit` — a figure that repaints only its moving artists onto a cached background, and
  writes palette PNGs for animations (:class:`~optlab.viz.blit.BlitFigure`);
* :mod:`.dashboard` — the live ipywidgets dashboard, coalescing bursts of control changes;
* :mod:`.frames` — the self-contained HTML frame slider of the static book.

The chapters use the short names :mod:`optlab.landscape`, :mod:`optlab.widgets` and
:mod:`optlab.widgets_second_order`, which re-export these. Importing this package imports
nothing else: each module imports matplotlib (and ipywidgets, IPython) itself.
"""
