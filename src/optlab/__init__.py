"""optlab: the package behind the course *Training Deep Models: Optimization*.

* :mod:`optlab.rules` — the first-order update rules as pure ``init`` / ``update`` functions;
* :func:`make_optimizer` — the same rules as ``torch.optim`` optimizers (plus L-BFGS);
* :mod:`optlab.surfaces`, :func:`trajectory` — 2-D toy surfaces and optimizer paths on them;
* :func:`minimize` — Newton, BFGS and L-BFGS on the toy surfaces;
* :mod:`optlab.data`, :mod:`optlab.engine` — MNIST and the fast optimizer comparison;
* :mod:`optlab.plots`, :mod:`optlab.widgets` — figures and interactive dashboards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rules import FIRST_ORDER, OPTIMIZERS, RULES, get_rule, resolve_hparams
    from .torch_optim import make_optimizer

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


def __getattr__(name: str) -> Any:  # lazy: `import optlab` imports neither torch nor matplotlib
    # (nor numpy: `python -m optlab` imports this first, so a Ctrl-C during an import must happen
    # inside the CLI's main, which turns it into one line)
    if name in {"FIRST_ORDER", "OPTIMIZERS", "RULES", "get_rule", "resolve_hparams"}:
        from . import rules

        return getattr(rules, name)
    if name == "make_optimizer":
        from .torch_optim import make_optimizer

        return make_optimizer
    if name == "trajectory":
        from .trajectories import trajectory

        return trajectory
    if name == "minimize":
        from .second_order import minimize

        return minimize
    if name in {"surfaces", "second_order", "trajectories", "data", "engine", "plots", "widgets",
                "landscape", "exercises", "notebook", "widgets_second_order", "mlp",
                "schedules", "stats", "curvature", "conventions", "torch_optim", "results",
                "rules"}:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")
