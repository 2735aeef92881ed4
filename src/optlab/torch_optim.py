"""``torch.optim.Optimizer`` adapters around the pure update rules of :mod:`optlab.rules`.

``make_optimizer("adam", model.parameters(), lr=1e-3)`` behaves like ``torch.optim.Adam`` but
every step calls :func:`optlab.rules.adam_update`: the course's code, not a second copy of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .rules import OPTIMIZERS, RULES, get_rule, resolve_hparams


class RuleOptimizer(torch.optim.Optimizer):
    """Applies one :class:`optlab.rules.Rule` to every parameter tensor (the rules are
    elementwise, so a tensor of any shape is a flat vector to them)."""

    def __init__(self, params: Iterable[Any], rule: str, **hparams: Any) -> None:
        self.rule = get_rule(rule)
        defaults = resolve_hparams(rule, **hparams)
        super().__init__(params, defaults)
        for group in self.param_groups:  # per-group overrides are validated too
            resolve_hparams(rule, **{k: group[k] for k in self.rule.defaults})
            _refuse_a_rate_that_is_zero_in(group, rule)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hp = {k: group[k] for k in self.rule.defaults}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "rule_state" not in state:
                    state["rule_state"] = self.rule.init_state(p.detach(), **hp)
                new_p, state["rule_state"] = self.rule.update(
                    p.detach(), p.grad, state["rule_state"], **hp
                )
                p.copy_(new_p)
        return loss




def make_optimizer(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """A ``torch.optim.Optimizer`` running the course's rule ``name``.

    ``hparams`` take ``torch.optim``'s keyword names. ``"lbfgs"`` returns a closure-based
    optimizer built on the two-loop recursion of :mod:`optlab.second_order`.
    Raises ``ValueError`` for an unknown name or an out-of-range hyperparameter.
    """
    if name == "lbfgs":
        from .second_order import LBFGSOptimizer

        return LBFGSOptimizer(params, **hparams)
    if name not in RULES:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return RuleOptimizer(params, name, **hparams)


def _refuse_a_rate_that_is_zero_in(group: dict[str, Any], rule: str) -> None:
    """A positive ``lr`` that rounds to 0 in the parameters' dtype (``1e-320`` in float32)
    would train nothing while looking valid: ``ValueError`` naming the smallest usable rate."""
    lr = group.get("lr")
    if not isinstance(lr, (int, float)):
        return
    for p in group["params"]:
        if p.dtype.is_floating_point and lr > 0 and torch.tensor(lr, dtype=p.dtype) == 0:
            tiny = torch.finfo(p.dtype).tiny
            raise ValueError(f"{rule}: lr {lr:g} is 0 in {p.dtype} (the parameters' type), so "
                             f"nothing would train; give lr >= {tiny:.3g}")
