"""The chapters' name for the interactive figures: ``optlab.widgets.explore(...)``, one call,
live in Jupyter, a frame slider in the book.

The code lives in :mod:`optlab.viz`: :mod:`~optlab.viz.explore` (the call),
:mod:`~optlab.viz.knobs` (the knobs and their checks), :mod:`~optlab.viz.dashboard` (the live
dashboard), :mod:`~optlab.viz.frames` (the book's frame slider).
"""

from __future__ import annotations

from .notebook import build_mode
from .viz.dashboard import Dashboard, DashboardState
from .viz.explore import explore, sweep_animation
from .viz.frames import frame_slider
from .viz.knobs import (
    KNOB_DEFAULTS,
    KNOB_RANGES,
    KNOB_RULES,
    KNOBS,
    MAX_STEPS,
    SWEEP_DEFAULTS,
    check_knob,
    check_optimizers,
    check_start,
    check_steps,
    check_sweep,
    check_sweep_values,
    lr_range,
    rule_hparams,
    run_optimizers,
    split_hparams,
)
from .viz.lab import lab_config, lab_markup

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
