"""``torch.optim.Optimizer`` adapters around the pure update rules of :mod:`optlab.rules`.

``make_optimizer("adam", model.parameters(), lr=1e-3)`` behaves like ``torch.optim.Adam`` but
every step calls :func:`optlab.rules.adam_update`: the course's code, not a second copy of it.

``lr`` may be a schedule (:mod:`optlab.schedules`): each parameter's update ``t`` (counted from
0, its rule state's ``step``) uses ``lr(t)``, which is what ``torch.optim.lr_scheduler`` gives when
stepped after every ``optimizer.step()``; the schedule lives in the param group, so
``state_dict()`` / ``load_state_dict()`` carry it. ``clip_norm=C`` clips the gradient of all the
optimizer's parameters together to norm ``C`` before the update (:mod:`optlab.clipping`, the same
as calling ``torch.nn.utils.clip_grad_norm_(params, C)`` first; ``p.grad`` is left as it is).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .clipping import check_clip_norm, clip_coefficient
from .rules import OPTIMIZERS, RULES, get_rule, resolve_hparams
from .schedules import lr_at, split_schedule


class RuleOptimizer(torch.optim.Optimizer):
    """Applies one :class:`optlab.rules.Rule` to every parameter tensor (the rules are
    elementwise, so a tensor of any shape is a flat vector to them)."""

    def __init__(self, params: Iterable[Any], rule: str, clip_norm: float | None = None,
                 **hparams: Any) -> None:
        self.rule = get_rule(rule)
        numeric, schedule = split_schedule(hparams)
        defaults = resolve_hparams(rule, **numeric)
        if schedule is not None:
            defaults["lr"] = schedule
        self.clip_norm = check_clip_norm(clip_norm)
        self._state_type: Any = None  # the rule's state NamedTuple, known after one init
        super().__init__(params, defaults)
        for group in self.param_groups:  # per-group overrides are validated too
            group_numeric, _ = split_schedule({k: group[k] for k in self.rule.defaults})
            resolve_hparams(rule, **group_numeric)
            _refuse_a_rate_that_is_zero_in(group, rule)

    def _clip_coefficient(self) -> Any:
        """The factor of every gradient this step: 1 without clipping."""
        if self.clip_norm is None:
            return None
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        if not grads:
            return None
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        return clip_coefficient(norm, self.clip_norm)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        coef = self._clip_coefficient()
        for group in self.param_groups:
            hp = {k: group[k] for k in self.rule.defaults}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state or self._state_type is None:
                    rule_state = self.rule.init_state(p.detach(), **hp)
                    self._state_type = type(rule_state)
                if state:  # the rule's fields, kept as plain entries (state_dict round-trips)
                    rule_state = self._state_type(
                        **{k: state[k] for k in self._state_type._fields})
                grad = p.grad if coef is None else p.grad * coef.to(p.grad.dtype)
                new_p, new_state = self.rule.update(
                    p.detach(), grad, rule_state, **{**hp, "lr": lr_at(hp["lr"], rule_state.step)}
                )
                state.update(new_state._asdict())
                p.copy_(new_p)
        return loss




def make_optimizer(name: str, params: Iterable[Any], **hparams: Any) -> torch.optim.Optimizer:
    """A ``torch.optim.Optimizer`` running the course's rule ``name``.

    ``hparams`` take ``torch.optim``'s keyword names; ``lr`` may be a schedule
    (:mod:`optlab.schedules`) and ``clip_norm=C`` clips the global gradient norm (see the module
    docstring). ``"lbfgs"`` returns a closure-based
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
