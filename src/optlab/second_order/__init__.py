r"""Second-order methods: Newton, damped Newton, BFGS and L-BFGS, one module per job.

* :func:`minimize` (:mod:`.driver`) runs one of them on a 2-D toy surface (or any object with
  ``f``, ``grad`` and ``hessian`` on 1-D NumPy vectors) and returns a :class:`MinimizeResult`
  (:mod:`.iterates`) holding every iterate, so that a chapter can draw the path, and for
  (L-)BFGS every inverse-Hessian approximation, so that it can draw that matrix as an ellipse
  converging to the true one.
* :func:`newton`, :func:`newton_damped` (:mod:`.newton_methods`) and :func:`quasi_newton`
  (:mod:`.quasi_newton_methods`, BFGS and L-BFGS) are the iterations themselves, the code the
  chapters print.
* :func:`two_loop` and :func:`remember_pair` (:mod:`.lbfgs_memory`) are L-BFGS's memory as pure
  functions on 1-D vectors, and :func:`wolfe_line_search` (:mod:`.line_search`) the strong-Wolfe
  line search on a scalar function: the same code runs on NumPy vectors (:func:`minimize`) and
  on flat PyTorch tensors (:class:`LBFGSOptimizer`).
* :class:`LBFGSOptimizer` (:mod:`.torch_lbfgs`) is a closure-based ``torch.optim.Optimizer``
  that does what ``torch.optim.LBFGS`` does. It is the only part that imports torch, on first
  use of the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .driver import METHODS, minimize
from .iterates import MinimizeResult
from .lbfgs_memory import remember_pair, two_loop
from .line_search import LineSearchResult, wolfe_line_search
from .newton_methods import newton, newton_damped
from .quasi_newton_methods import quasi_newton

if TYPE_CHECKING:
    from .torch_lbfgs import LBFGSOptimizer


def __getattr__(name: str) -> Any:  # lazy: minimize on NumPy vectors needs no torch
    if name == "LBFGSOptimizer":
        from .torch_lbfgs import LBFGSOptimizer

        return LBFGSOptimizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METHODS",
    "LBFGSOptimizer",
    "LineSearchResult",
    "MinimizeResult",
    "minimize",
    "newton",
    "newton_damped",
    "quasi_newton",
    "remember_pair",
    "two_loop",
    "wolfe_line_search",
]
