"""The chapters' name for the second-order sliders (Newton's damping, the start point,
L-BFGS's memory): :mod:`optlab.viz.second_order_explorers`."""

from __future__ import annotations

from .viz.second_order_explorers import (
    memory_explorer,
    newton_damping_explorer,
    start_explorer,
    sweep_explorer,
)
from .viz.style import METHOD_COLORS

__all__ = [
    "METHOD_COLORS",
    "memory_explorer",
    "newton_damping_explorer",
    "start_explorer",
    "sweep_explorer",
]
