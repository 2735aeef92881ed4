"""The chapters' name for the landscape figure: :mod:`optlab.viz.landscape` (what it draws),
:mod:`optlab.viz.style` (its colours); how it redraws fast is :mod:`optlab.viz.blit`."""

from __future__ import annotations

from .viz.landscape import (
    LOSS_FLOOR,
    LOSS_HEADROOM,
    LandscapeFigure,
    Run,
    RunArtists,
    contour_png,
    draw_contour,
    exit_point,
    f_star,
    log_levels,
    plot,
    row_of,
)
from .viz.style import COLORS, CONTOUR_ALPHA, CONTOUR_CMAP, PALETTE

__all__ = [
    "COLORS",
    "CONTOUR_ALPHA",
    "CONTOUR_CMAP",
    "LOSS_FLOOR",
    "LOSS_HEADROOM",
    "PALETTE",
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
