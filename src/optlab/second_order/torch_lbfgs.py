"""Where :class:`LBFGSOptimizer` used to live: it is a ``torch.optim`` adapter, so it moved to
:mod:`optlab.torch_optim` with the others; ``optlab.second_order.LBFGSOptimizer`` (this name,
imported on first use) stays.
"""

from __future__ import annotations

from ..torch_optim import LBFGSOptimizer

__all__ = ["LBFGSOptimizer"]
