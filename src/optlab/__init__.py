"""optlab: the package behind the course *Training Deep Models: Optimization*.

* :mod:`optlab.rules` — the first-order update rules as pure ``init`` / ``update`` functions;
* :func:`make_optimizer` — the same rules as ``torch.optim`` optimizers (plus L-BFGS);
* :mod:`optlab.surfaces`, :func:`trajectory` — 2-D toy surfaces and optimizer paths on them;
* :func:`minimize` — Newton, BFGS and L-BFGS on the toy surfaces;
* :mod:`optlab.data`, :mod:`optlab.engine` — MNIST and the fast optimizer comparison;
* :mod:`optlab.plots`, :mod:`optlab.widgets` — figures and interactive dashboards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rules import FIRST_ORDER, RULES, get_rule, resolve_hparams
    from .torch_optim import OPTIMIZERS, make_optimizer

__version__ = "0.1.0"

__all__ = [
    "FIRST_ORDER",
    "OPTIMIZERS",
    "RULES",
    "get_rule",
    "make_optimizer",
    "resolve_hparams",
    "__version__",
]


def __getattr__(name: str):  # lazy: keep `import optlab` light for the CLI and the widgets
    # (and free of torch: `python -m optlab` imports this first, so a Ctrl-C during the torch
    # import must happen inside the CLI's main, which turns it into one line)
    if name in {"FIRST_ORDER", "RULES", "get_rule", "resolve_hparams"}:
        from . import rules

        return getattr(rules, name)
    if name in {"OPTIMIZERS", "make_optimizer"}:
        from . import torch_optim

        return getattr(torch_optim, name)
    if name == "trajectory":
        from .trajectories import trajectory

        return trajectory
    if name == "minimize":
        from .second_order import minimize

        return minimize
    if name in {"surfaces", "second_order", "trajectories", "data", "engine", "plots", "widgets",
                "landscape", "exercises", "notebook", "widgets_second_order", "mlp"}:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")
