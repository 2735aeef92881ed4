"""The book's colours: one fixed colour per optimizer and per second-order method, and bluish
grey contours that every path colour stands out on (``tests/test_viz_landscape.py`` measures
the distances)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.colors import LinearSegmentedColormap

from ..rules import FIRST_ORDER

#: Saturated, distinct path colours (red, blue, orange, green, purple, magenta, brown, black,
#: navy, olive): each differs from every contour colour by a CIELAB distance of 45 or more.
PALETTE: tuple[str, ...] = ("#d62728", "#1f6fd1", "#e67e00", "#2ca02c", "#9b30d9", "#e0218a",
                            "#8b5a00", "#111111", "#000080", "#556b2f")
#: A fixed colour per optimizer, the same in every figure of the book.
COLORS: dict[str, str] = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(FIRST_ORDER)}
#: A fixed colour per second-order method, the same in every second-order figure (red, green,
#: purple, blue from :data:`PALETTE`: saturated, away from the grey contours).
METHOD_COLORS: dict[str, str] = {
    "newton": PALETTE[0],
    "newton_damped": PALETTE[3],
    "bfgs": PALETTE[4],
    "lbfgs": PALETTE[1],
}
#: The contour lines' colours: bluish grey, dark on the valley floor, light on the walls.
CONTOUR_CMAP = LinearSegmentedColormap.from_list("optlab_contours", ["#475569", "#cbd5e1"])
#: The contour lines' opacity.
CONTOUR_ALPHA = 0.6


def colors_for(labels: Sequence[str], runs: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The fixed colour of each optimizer (a label, or the ``name`` of its run in ``runs``);
    colours by position when a label is no optimizer or labels repeat a rule."""
    names = [getattr((runs or {}).get(lab), "name", lab) for lab in labels]
    if all(n in COLORS for n in names) and len(set(names)) == len(names):
        return {lab: COLORS[n] for lab, n in zip(labels, names, strict=True)}
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


__all__ = ["COLORS", "CONTOUR_ALPHA", "CONTOUR_CMAP", "METHOD_COLORS", "PALETTE", "colors_for"]
