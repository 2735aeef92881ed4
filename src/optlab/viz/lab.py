r"""The book's "Run live" labs: what a chapter's lab starts from, as JSON in the page.

:func:`optlab.widgets.explore` in the book build puts :func:`lab_markup` of :func:`lab_config`
under its frame slider: a hidden placeholder that ``book/tools/optlab_assets.py`` completes
(the contour image, :func:`optlab.viz.landscape.contour_png`) and ``optlab-lab.js`` turns into
the lab. The paths are then computed in the reader's browser by :mod:`optlab.live`, with the
package's own rules.
"""

from __future__ import annotations

import html as html_lib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..live import surface_spec
from ..notebook import source_of
from ..rules import FIRST_ORDER, Range, get_rule
from ..surfaces import Surface, get_surface
from .knobs import KNOB_DEFAULTS, check_optimizers, check_start, lr_range, rule_hparams
from .style import COLORS

#: Plain-text labels of the hyperparameters a lab shows (``betas`` as two controls).
_LAB_LABELS: dict[str, str] = {
    "momentum": "momentum β", "dampening": "dampening τ", "alpha": "α (decay of s)",
    "eps": "ε", "weight_decay": "weight decay λ", "lr_decay": "lr_decay",
    "initial_accumulator_value": "G₀ (initial sum)", "momentum_decay": "momentum_decay ψ",
    "betas.0": "β₁", "betas.1": "β₂",
}


def _lab_control(key: str, value: Any, rng: Range | None) -> dict[str, Any] | None:
    """The control of one hyperparameter, from the registry's range of it (``rng``): a
    checkbox (a ``bool``), a β slider (a range within [0, 1]: logarithmic in 1 − β), a log
    slider (a range that excludes 0: ``eps``), or a number box (the rest, >= the range's
    low end). None for a range that holds one value (Nesterov's dampening is 0)."""
    label = _LAB_LABELS.get(key, key)
    if isinstance(value, bool):
        return {"key": key, "label": label, "kind": "bool", "value": value}
    v = float(value)
    if rng is not None and rng.low == rng.high:
        return None
    if rng is not None and rng.low >= 0 and rng.high <= 1:
        return {"key": key, "label": label, "kind": "beta", "value": v}
    if rng is not None and not rng.low_closed and v > 0:
        e = math.floor(math.log10(v))
        return {"key": key, "label": label, "kind": "log", "value": v, "lo": min(e - 4, -12),
                "hi": max(0, e + 1)}
    low = rng.low if rng is not None and math.isfinite(rng.low) else 0.0
    return {"key": key, "label": label, "kind": "number", "value": v, "min": low,
            "example": f"{v:g}" if v else "0.01"}


def lab_config(
    surface: str | Surface,
    optimizers: Sequence[str],
    knobs: Mapping[str, Any],
    extra: Mapping[str, Any] = {},
    *,
    steps: int = 200,
    x0: Any = None,
    edit: str | None = None,
) -> dict[str, Any]:
    """What a chapter's "Run live" lab starts from, as JSON-ready data.

    The surface (:func:`optlab.live.surface_spec`), its box and the start, the steps, the η
    slider (the chapter's η within :func:`lr_range`), per rule its colour and a control per
    hyperparameter (set from ``knobs`` and ``extra`` as in :func:`explore`), and the editor:
    the source of rule ``edit``'s update function as ``show_source`` prints it (default: the
    last of ``optimizers``). ``book/tools/optlab_assets.py`` adds the contour image.
    """
    surf = get_surface(surface)
    names = check_optimizers(optimizers)
    edit = names[-1] if edit is None else edit
    if edit not in FIRST_ORDER:
        raise ValueError(f"edit must be one of {', '.join(FIRST_ORDER)}; got {edit!r}")
    start = check_start(surf, x0)
    lr = float(knobs.get("lr", KNOB_DEFAULTS["lr"]))
    lo, hi = lr_range(surf)
    (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
    rules = []
    for i, name in enumerate(names):
        rule = get_rule(name)
        hp = {**rule.defaults, **rule_hparams(name, knobs, extra)}
        controls: list[dict[str, Any] | None] = []
        for key, value in hp.items():
            rng = rule.ranges.get(key)
            if key == "lr":
                continue
            if key == "betas":
                controls += [_lab_control("betas.0", value[0], rng),
                             _lab_control("betas.1", value[1], rng)]
            elif isinstance(value, (bool, int, float)):
                controls.append(_lab_control(key, value, rng))
        rules.append({"name": name, "color": COLORS.get(name, f"C{i}"),
                      "hparams": [c for c in controls if c is not None]})
    edited = get_rule(edit)
    return {
        "surface": surface_spec(surf),
        "label": surf.label,
        "extent": [x_lo, x_hi, y_lo, y_hi],
        "start": [float(start[0]), float(start[1])],
        "steps": int(steps),
        "maxSteps": max(2000, int(steps)),
        "lr": {"value": lr, "lo": min(math.log10(lo), math.log10(lr)),
               "hi": max(math.log10(hi), math.log10(lr))},
        "rules": rules,
        "noise": bool(knobs.get("noise", 0.0)),  # the frame slider's; the lab has none
        "edit": {"rule": edit, "init": edited.init.__name__,
                 "source": source_of(edited.update).rstrip() + "\n"},
    }


def lab_markup(config: Mapping[str, Any]) -> str:
    """The lab's placeholder in a page: ``<div class="optlab-lab" hidden data-lab="...">``.

    Hidden, so that without JavaScript the page shows only the frame slider; the book's
    extension adds the contour image and the script, which builds the lab from ``data-lab``.
    """
    return (f'<div class="optlab-lab" hidden data-lab="{html_lib.escape(json.dumps(config))}">'
            f"</div>")


__all__ = ["lab_config", "lab_markup"]
