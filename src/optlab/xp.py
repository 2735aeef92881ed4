"""Element-wise math for NumPy arrays, PyTorch tensors and plain Python floats alike.

The update rules (:mod:`optlab.rules`) and the toy surfaces (:mod:`optlab.surfaces`) are written
once and run on a point of a 2-D surface (two Python floats), a batch of points (a NumPy array),
a layer of a network (a torch tensor, also inside ``torch.compile``) and, in the browser, under
Pyodide without NumPy. Arithmetic (``+ - * / **``) already works on all three; the functions
here are the rest::

    from optlab import xp
    xp.sqrt(v) + eps        # math.sqrt, numpy.sqrt or torch.sqrt, by the type of v

Each function looks at its argument's type and calls the matching library. Neither torch nor
NumPy is ever imported here: if no one has imported torch, the argument cannot be a tensor (the
same for NumPy), so ``import optlab.xp`` costs nothing and works where neither is installed.
A float result stays a float: ``sqrt(-1.0)`` and ``log(-1.0)`` are NaN and ``exp(1e3)`` is
inf, as in NumPy, instead of :mod:`math`'s exceptions. ``np.sign(tensor)`` would return a NumPy
array (and break ``torch.compile``); ``xp.sign(tensor)`` returns a tensor.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = [
    "abs", "cos", "exp", "full_like", "log", "maximum", "minimum", "namespace", "sign", "sin",
    "sqrt", "where", "zeros_like",
]

_builtin_abs = abs
_SCALARS = (float, int, bool)


def namespace(x: Any) -> ModuleType | None:
    """``torch`` for a tensor, ``numpy`` for an array or NumPy scalar, ``None`` for a Python
    float or int (the caller then uses :mod:`math`). ``TypeError`` for anything else."""
    cls = type(x)
    if cls is float or cls is int or cls is bool:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, (np.ndarray, np.generic, list, tuple)):
        return np
    if isinstance(x, _SCALARS):  # a subclass of float, e.g. without NumPy
        return None
    raise TypeError(f"expected a float, a NumPy array or a torch tensor; got {cls.__name__}")


def _either(a: Any, b: Any) -> ModuleType | None:
    """The namespace of a two-argument function: torch if either is a tensor, then NumPy."""
    na, nb = namespace(a), namespace(b)
    if na is None:
        return nb
    if nb is None or na is nb:
        return na
    return na if na.__name__ == "torch" else nb


def sqrt(x: Any) -> Any:
    """:math:`\\sqrt{x}`; NaN for a negative float."""
    m = namespace(x)
    if m is None:
        return math.sqrt(x) if x >= 0 else math.nan
    return m.sqrt(x)


def exp(x: Any) -> Any:
    """:math:`e^x`; inf for a float that overflows."""
    m = namespace(x)
    if m is None:
        try:
            return math.exp(x)
        except OverflowError:
            return math.inf
    return m.exp(x)


def log(x: Any) -> Any:
    """The natural logarithm; ``-inf`` at 0 and NaN below for a float."""
    m = namespace(x)
    if m is None:
        if x > 0:
            return math.log(x)
        return -math.inf if x == 0 else math.nan
    return m.log(x)


def cos(x: Any) -> Any:
    """The cosine; NaN for an infinite float."""
    m = namespace(x)
    if m is None:
        return math.cos(x) if math.isfinite(x) else math.nan
    return m.cos(x)


def sin(x: Any) -> Any:
    """The sine; NaN for an infinite float."""
    m = namespace(x)
    if m is None:
        return math.sin(x) if math.isfinite(x) else math.nan
    return m.sin(x)


def abs(x: Any) -> Any:  # noqa: A001 - the array-API name
    """:math:`|x|`."""
    m = namespace(x)
    return _builtin_abs(x) if m is None else m.abs(x)


def sign(x: Any) -> Any:
    """-1, 0 or 1 with ``x``'s type (NaN stays NaN), as ``numpy.sign`` and ``torch.sign``."""
    m = namespace(x)
    if m is None:
        if math.isnan(x):
            return x
        return float((x > 0) - (x < 0))
    return m.sign(x)


def _extremum(name: str, pick: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """``numpy.<name>`` / ``torch.<name>`` of ``a`` and ``b``, or ``pick`` on two floats; NaN if
    either is NaN (NumPy's and torch's rule, which Python's ``max``/``min`` do not follow)."""
    m = _either(a, b)
    if m is None:
        if math.isnan(a) or math.isnan(b):
            return math.nan
        return pick(a, b)
    if m.__name__ == "torch":
        return getattr(m, name)(*_tensors(m, a, b))
    return getattr(m, name)(a, b)


def maximum(a: Any, b: Any) -> Any:
    """The element-wise maximum; NaN if either is NaN."""
    return _extremum("maximum", max, a, b)


def minimum(a: Any, b: Any) -> Any:
    """The element-wise minimum; NaN if either is NaN."""
    return _extremum("minimum", min, a, b)


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b``."""
    m = _either(cond, _either_value(a, b))
    if m is None:
        return a if cond else b
    return m.where(cond, a, b)


def _either_value(a: Any, b: Any) -> Any:
    """The first of ``a``, ``b`` that is not a Python scalar (for choosing a namespace)."""
    return b if type(a) in _SCALARS else a


def _tensors(torch: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """``a`` and ``b`` as tensors (``torch.maximum`` takes no Python scalars)."""
    ref = a if isinstance(a, torch.Tensor) else b
    a = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    b = b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=ref.dtype, device=ref.device)
    return a, b


def zeros_like(x: Any) -> Any:
    """Zeros of ``x``'s shape and floating type (an int array gives float64; a float gives 0.0)."""
    return full_like(x, 0.0)


def full_like(x: Any, value: float) -> Any:
    """``value`` in ``x``'s shape and floating type (an int array gives float64)."""
    m = namespace(x)
    if m is None:
        return float(value)
    if m.__name__ == "torch":
        return m.full_like(x, value)
    arr = m.asarray(x)
    dtype = arr.dtype if m.issubdtype(arr.dtype, m.floating) else m.float64
    return m.full(arr.shape, value, dtype=dtype)
