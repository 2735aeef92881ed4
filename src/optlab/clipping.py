r"""Global gradient-norm clipping: :math:`g \leftarrow g \cdot \min(1, C / \lVert g \rVert)`.

The norm is over **all** of one model's parameters (one row of a sweep on a 2-D surface, one
row of the engine's stacked ``(K, P)`` parameters, every parameter an optimizer holds). As in
``torch.nn.utils.clip_grad_norm_``, the coefficient is :math:`C / (\lVert g \rVert + 10^{-6})`
capped at 1, so a zero gradient stays zero and the clipped path equals torch's.
Works on Python floats, NumPy arrays and tensors (no torch import here).
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["check_clip_norm", "clip_coefficient"]

#: Added to the norm before dividing, as ``torch.nn.utils.clip_grad_norm_`` does.
NORM_EPS = 1e-6


def clip_coefficient(norm: Any, max_norm: float) -> Any:
    """:math:`\\min(1, C / (\\lVert g \\rVert + 10^{-6}))`, elementwise over ``norm`` (a float,
    an array of row norms, or a tensor)."""
    coef = max_norm / (norm + NORM_EPS)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(coef, torch.Tensor):
        return coef.clamp(max=1.0)
    if isinstance(coef, float):
        return min(coef, 1.0)
    import numpy as np

    return np.minimum(coef, 1.0)


def check_clip_norm(value: Any) -> float | None:
    """``value`` as a float if it is a valid clipping threshold (a finite number > 0), ``None``
    for ``None`` (no clipping); ``ValueError`` naming the parameter otherwise."""
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not value > 0):
        raise ValueError(f"clip_norm must be a finite number > 0 (the largest gradient norm "
                         f"allowed), or None for no clipping; got {value!r}")
    return float(value)
