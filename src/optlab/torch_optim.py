"""``torch.optim.Optimizer`` adapters around the pure update rules of :mod:`optlab.rules`.

``make_optimizer("adam", model.parameters(), lr=1e-3)`` behaves like ``torch.optim.Adam`` but
every step calls :func:`optlab.rules.adam_update`: the course's code, not a second copy of it.

``lr`` may be a schedule (:mod:`optlab.schedules`): each parameter's update ``t`` (counted from
0, its rule state's ``step``) uses ``lr(t)``, which is what ``torch.optim.lr_scheduler`` gives when
stepped after every ``optimizer.step()``; the schedule lives in the param group, so
``state_dict()`` / ``load_state_dict()`` carry it. ``clip_norm=C`` clips the gradient of all the
optimizer's parameters together to norm ``C`` before the update (:mod:`optlab.clipping`, the same
as calling ``torch.nn.utils.clip_grad_norm_(params, C)`` first; ``p.grad`` is left as it is).

Every ``torch.optim`` adapter of the package lives here: :class:`RuleOptimizer` (the elementwise
rules) and :class:`LBFGSOptimizer` (L-BFGS as a closure-based optimizer, what
``torch.optim.LBFGS`` does, with :func:`optlab.second_order.two_loop` and
:func:`optlab.second_order.wolfe_line_search` inside).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from .clipping import check_clip_norm, clip_coefficient
from .rules import OPTIMIZERS, RULES, get_rule, resolve_hparams
from .schedules import lr_at, split_schedule
from .second_order.lbfgs_memory import remember_pair, two_loop
from .second_order.line_search import wolfe_line_search


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


_LBFGS_OPTIONS = (
    "lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size",
    "line_search_fn",
)


class LBFGSOptimizer(torch.optim.Optimizer):
    r"""L-BFGS for PyTorch models, built on :func:`two_loop` and :func:`wolfe_line_search`.

    Used like ``torch.optim.LBFGS``: every :meth:`step` takes a ``closure`` that zeroes the
    gradients, computes the loss, calls ``backward()`` and returns the loss, and runs up to
    ``max_iter`` L-BFGS iterations on the flattened parameter vector :math:`w`:

    .. math::
        p_k = -H_k \nabla L(w_k) \ \text{(two-loop recursion, last } m \text{ pairs,}\
        H_k^0 = \gamma_k I,\ \gamma_k = s^\top y / y^\top y), \qquad
        w_{k+1} = w_k + t_k\, p_k

    * ``line_search_fn=None``: fixed step :math:`t_k` = ``lr``, except the very first
      iteration, where :math:`t_0 = \min(1, 1/\|g_0\|_1)\,` ``lr`` (steepest descent with a
      step of length at most ``lr`` in the 1-norm), exactly as ``torch.optim.LBFGS``.
    * ``line_search_fn="strong_wolfe"``: :math:`t_k` from :func:`wolfe_line_search`
      (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`) started at that same trial step.

    Options and their meaning are ``torch.optim.LBFGS``'s: ``lr`` (1.0), ``max_iter`` (20)
    iterations per ``step``, ``max_eval`` (``max_iter * 5 // 4``) closure calls per ``step``,
    ``tolerance_grad`` (1e-7, on :math:`\|g\|_\infty`), ``tolerance_change`` (1e-9, on the
    step and on the change of the loss), ``history_size`` :math:`m` (10 here; 100 in torch).
    A pair is stored only when :math:`y^\top s > 10^{-10}`, as torch does. The state (pairs,
    last direction and step) carries over from one ``step`` call to the next, so
    ``max_iter=1`` with a closure per minibatch is stochastic L-BFGS.

    Raises ``ValueError`` for an out-of-range or unknown option, naming the parameter and its
    range; like ``torch.optim.LBFGS`` it accepts a single parameter group only.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 10,
        line_search_fn: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(
                f"lbfgs: unknown hyperparameter {sorted(unknown)[0]!r}; it takes "
                f"{', '.join(_LBFGS_OPTIONS)}"
            )
        if isinstance(lr, torch.Tensor):
            if lr.numel() != 1:
                raise ValueError("lbfgs: a tensor lr must have one element")
            lr = float(lr)
        _check_number("lr", lr, 0.0, open_low=True)
        _check_int("max_iter", max_iter, 1)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        _check_int("max_eval", max_eval, 1)
        _check_int("history_size", history_size, 1)
        _check_number("tolerance_grad", tolerance_grad, 0.0)
        _check_number("tolerance_change", tolerance_change, 0.0)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(
                f"lbfgs: line_search_fn must be None or 'strong_wolfe'; got {line_search_fn!r}"
            )
        defaults = {
            "lr": lr, "max_iter": max_iter, "max_eval": max_eval,
            "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
            "history_size": history_size, "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("lbfgs: per-parameter options (parameter groups) are not supported")
        self._params = self.param_groups[0]["params"]

    # flat-vector helpers ----------------------------------------------------------------
    def _gather_flat_grad(self) -> Any:
        views = []
        for p in self._params:
            if p.grad is None:
                views.append(p.new_zeros(p.numel()))
            elif p.grad.is_sparse:
                views.append(p.grad.to_dense().reshape(-1))
            else:
                views.append(p.grad.reshape(-1))
        return torch.cat(views, 0)

    def _add_to_params(self, step_size: float, direction: Any) -> None:
        offset = 0
        for p in self._params:
            numel = p.numel()
            p.add_(direction[offset : offset + numel].view_as(p), alpha=step_size)
            offset += numel

    def _directional_evaluate(self, closure: Callable[[], Any], x: list, t: float, d: Any):
        self._add_to_params(t, d)
        loss = _loss_float(closure())
        flat_grad = self._gather_flat_grad()
        for p, x_p in zip(self._params, x, strict=True):
            p.copy_(x_p)
        return loss, flat_grad

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss at the start."""
        if closure is None:
            raise ValueError("lbfgs: step() needs a closure that returns the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        # The state is global; it lives under the first parameter, as in torch.optim.LBFGS.
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = _loss_float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_s, old_y, rho = state.get("old_stps"), state.get("old_dirs"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # direction ------------------------------------------------------------------
            if state["n_iter"] == 1:
                d = -flat_grad
                old_s, old_y, rho, H_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y @ s
                if ys > 1e-10:  # store the pair only with safely positive curvature
                    remember_pair(old_s, old_y, rho, s, y, ys, history_size)
                    H_diag = ys / (y @ y)  # γ = sᵀy / yᵀy
                d = two_loop(flat_grad, old_s, old_y, H_diag, rho)
            prev_flat_grad = flat_grad.clone()
            prev_loss = loss

            # step length ----------------------------------------------------------------
            first = state["n_iter"] == 1
            t = min(1.0, 1.0 / float(flat_grad.abs().sum())) * lr if first else lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:  # not a (numerically) descent direction
                break

            ls_func_evals = 0
            if line_search_fn == "strong_wolfe":
                x_init = [p.clone() for p in self._params]

                def phi(a: float, x_init=x_init, d=d) -> tuple[float, float, Any]:
                    f_a, g_a = self._directional_evaluate(closure, x_init, a, d)
                    return f_a, float(g_a @ d), g_a

                d_norm = float(d.abs().max())
                ls = wolfe_line_search(
                    phi, loss, gtd, t, c1=1e-4, c2=0.9,
                    max_evals=max(1, max_eval - current_evals),
                    min_width=tolerance_change / d_norm if d_norm > 0 else 0.0,
                )
                ls_func_evals = ls.nfev
                t = ls.alpha
                if ls.payload is not None:  # t > 0: sufficient decrease held there
                    loss, flat_grad = ls.phi, ls.payload
                    self._add_to_params(t, d)
                opt_cond = bool(flat_grad.abs().max() <= tolerance_grad)
            else:
                self._add_to_params(t, d)
                opt_cond = False
                if n_iter != max_iter:  # the next step() re-evaluates anyway
                    with torch.enable_grad():
                        loss = _loss_float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = bool(flat_grad.abs().max() <= tolerance_grad)
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping tests (torch.optim.LBFGS's) --------------------------------------
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float((d * t).abs().max()) <= tolerance_change:  # no progress in w
                break
            if abs(loss - prev_loss) < tolerance_change:  # no progress in the loss
                break

        state.update(
            d=d, t=t, old_stps=old_s, old_dirs=old_y, ro=rho, H_diag=H_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss,
        )
        return orig_loss


def _loss_float(loss: Any) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _check_number(name: str, value: Any, low: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (value > low if open_low else value >= low)
    if not ok:
        rng = f"{'(' if open_low else '['}{low:g}, inf)"
        raise ValueError(f"lbfgs: {name} must be in {rng}; got {value!r}")


def _check_int(name: str, value: Any, low: int) -> None:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"lbfgs: {name} must be an integer in [{low}, inf); got {value!r}")
