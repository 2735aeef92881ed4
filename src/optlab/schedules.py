r"""Learning-rate schedules: pure functions of the step.

A schedule maps the number of updates already applied, ``t = 0, 1, 2, ...`` (a rule's
``state.step``), to the learning rate of the next update. Each is a small frozen dataclass, so it
is a value: it can be compared, printed, recorded in a results file (:meth:`Schedule.describe`)
and rebuilt from its text form (:func:`parse_schedule`). ``t`` may be an ``int`` or a 0-d tensor
(then the result is a tensor, and a compiled step does not recompile as ``t`` changes).

* ``constant(lr)``: :math:`\eta_t = \eta` (``ConstantLR(factor=1)``);
* ``step(lr, every, gamma)``: :math:`\eta\,\gamma^{\lfloor t/\text{every}\rfloor}` (``StepLR``);
* ``cosine(lr, total, lr_min)``:
  :math:`\eta_{\min} + \tfrac12(\eta-\eta_{\min})\,(1+\cos(\pi \min(t,T)/T))`
  (``CosineAnnealingLR`` for :math:`t \le T`; held at :math:`\eta_{\min}` after);
* ``inverse_time(lr, decay)``: :math:`\eta / (1 + \text{decay}\cdot t)` (a ``LambdaLR``);
* ``linear_warmup(s, n)``: :math:`s(t)\cdot\min(1, (t+1)/n)`, composable with any of the above.

Wherever ``lr=`` takes a number it also takes a schedule, and :func:`lr_at` is the one place
that turns either into the rate of update ``t``:
``optlab.trajectory("adam", "rosenbrock", lr=linear_warmup(constant(0.1), 20))``,
``optlab.make_optimizer("sgd", params, lr=cosine(0.1, 1000))``, an engine
``ModelSpec("adam", {"lr": cosine(1e-3, 18750)}, seed)`` (the compiled step reads the rate from
a tensor, so a schedule never recompiles it), and ``python -m optlab compare --schedule cosine
--warmup-steps 500`` (the results file records each run's :meth:`Schedule.describe`).

``inverse_time`` satisfies the Robbins-Monro conditions :math:`\sum_t \eta_t = \infty`,
:math:`\sum_t \eta_t^2 < \infty`; a constant step does not, which is why SGD with a constant
step stalls at a noise floor proportional to :math:`\eta` (chapter 2).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any

__all__ = ["SCHEDULES", "Schedule", "constant", "cosine", "inverse_time", "linear_warmup",
           "lr_at", "parse_schedule", "radam_rectification", "split_schedule", "step"]


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _cos(x: Any) -> Any:
    if _is_tensor(x):
        import torch

        return torch.cos(x)
    return math.cos(x)


def _minimum(x: Any, cap: float) -> Any:
    if _is_tensor(x):
        return x.clamp(max=cap)
    return min(x, cap)


class Schedule:
    """Base of the schedules: ``schedule(t)`` is the learning rate after ``t`` updates."""

    name: str = ""

    def __call__(self, t: Any) -> Any:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """``{"name": ..., **parameters}``: what a results file records."""
        out: dict[str, Any] = {"name": self.name}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.describe() if isinstance(value, Schedule) else value
        return out

    @property
    def base_lr(self) -> float:
        return float(self.lr)  # type: ignore[attr-defined]


#: The largest count of updates a schedule takes (``every``, ``total``, warmup ``steps``): 2**53,
#: the last integer a float64 holds exactly and far below int64's range, so ``t`` as an int64
#: tensor can still be compared with it.
MAX_STEPS = 2**53


def _check_positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 < value < math.inf):
            raise ValueError(f"{name}: {key} must be a finite number > 0; got {value!r}")


def _check_count(name: str, **values: float) -> None:
    """A number of updates: a finite number in (0, MAX_STEPS]."""
    _check_positive(name, **values)
    for key, value in values.items():
        if value > MAX_STEPS:
            raise ValueError(f"{name}: {key} must be at most 2**53 updates (a run never gets "
                             f"there); got {value!r}")


@dataclass(frozen=True)
class constant(Schedule):  # noqa: N801 - schedules read as functions: constant(0.1)
    """:math:`\\eta_t = \\eta`."""

    lr: float
    name = "constant"

    def __post_init__(self) -> None:
        _check_positive(self.name, lr=self.lr)

    def __call__(self, t: Any) -> Any:
        return self.lr + 0 * t


@dataclass(frozen=True)
class step(Schedule):  # noqa: N801
    """:math:`\\eta_t = \\eta\\,\\gamma^{\\lfloor t / \\text{every} \\rfloor}` (``StepLR``)."""

    lr: float
    every: int
    gamma: float = 0.1
    name = "step"

    def __post_init__(self) -> None:
        _check_positive(self.name, lr=self.lr, gamma=self.gamma)
        _check_count(self.name, every=self.every)

    def __call__(self, t: Any) -> Any:
        return self.lr * self.gamma ** (t // self.every)


@dataclass(frozen=True)
class cosine(Schedule):  # noqa: N801
    """Half a cosine from ``lr`` to ``lr_min`` over ``total`` updates, then ``lr_min``."""

    lr: float
    total: int
    lr_min: float = 0.0
    name = "cosine"

    def __post_init__(self) -> None:
        _check_positive(self.name, lr=self.lr)
        _check_count(self.name, total=self.total)
        if not 0 <= self.lr_min <= self.lr:
            raise ValueError(f"cosine: lr_min must be in [0, lr]; got {self.lr_min!r}")

    def __call__(self, t: Any) -> Any:
        phase = _minimum(t, self.total) / self.total
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + _cos(math.pi * phase))


@dataclass(frozen=True)
class inverse_time(Schedule):  # noqa: N801
    """:math:`\\eta_t = \\eta / (1 + \\text{decay}\\cdot t)`: the Robbins-Monro "1/t" schedule."""

    lr: float
    decay: float
    name = "inverse_time"

    def __post_init__(self) -> None:
        _check_positive(self.name, lr=self.lr, decay=self.decay)

    def __call__(self, t: Any) -> Any:
        return self.lr / (1 + self.decay * t)


@dataclass(frozen=True)
class linear_warmup(Schedule):  # noqa: N801
    """Multiply ``schedule`` by :math:`\\min(1, (t+1)/\\text{steps})`: the first update uses
    ``1/steps`` of the rate, update ``steps`` and later the full one. ``schedule`` may be a
    number (a constant rate) or any schedule."""

    schedule: Any
    steps: int
    name = "linear_warmup"

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            object.__setattr__(self, "schedule", constant(self.schedule))
        _check_count(self.name, steps=self.steps)

    def __call__(self, t: Any) -> Any:
        return self.schedule(t) * _minimum((t + 1) / self.steps, 1.0)

    @property
    def base_lr(self) -> float:
        return self.schedule.base_lr


def radam_rectification(t: Any, beta2: float = 0.999, threshold: float = 5.0) -> tuple[Any, Any]:
    r"""RAdam's :math:`\rho_t` and rectification :math:`r_t` (Liu et al. 2020, Algorithm 2) at
    step ``t = 1, 2, ...`` (an int or an array of them):

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}
                          {(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}.

    :math:`\rho_t` is the length of the simple average that :math:`v_t` approximates; while it
    is at most ``threshold`` RAdam takes an un-adapted momentum step and ``r_t`` is returned as
    0. ``threshold=5`` is ``torch.optim.RAdam``'s; the paper's Algorithm 2 uses 4."""
    if not 0 < beta2 < 1:
        raise ValueError(f"radam_rectification: beta2 must be in (0, 1); got {beta2!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 4:
        raise ValueError(f"radam_rectification: threshold must be a number >= 4 (r_t is real "
                         f"only for rho_t > 4; PyTorch uses 5, the paper 4); got {threshold!r}")
    if not (_is_tensor(t) or hasattr(t, "__array__")) and (isinstance(t, bool) or t < 1):
        raise ValueError(f"radam_rectification: t counts steps from 1; got {t!r}")
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
    ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
    r = abs(ratio) ** 0.5 * (rho > threshold)
    return rho, r


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (constant, step, cosine, inverse_time)
}


def _number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_schedule(text: str, lr: float, warmup_steps: int = 0,
                   total_steps: int | None = None) -> Schedule:
    """``"cosine:total=18750,lr_min=0"`` (the CLI's ``--schedule``) at base rate ``lr``, wrapped in
    a linear warmup of ``warmup_steps`` updates when that is > 0. ``total_steps`` (the run's
    number of updates) is the ``total`` of a schedule that takes one when the text gives none:
    ``"cosine"`` then decays over the whole run."""
    if not isinstance(text, str):
        raise TypeError(f"parse_schedule: give the schedule as text such as "
                        f"'cosine:total=18750'; got {text!r}")
    name, _, rest = text.partition(":")
    cls = SCHEDULES.get(name.strip())
    if cls is None:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    params: dict[str, Any] = {}
    allowed = {f.name for f in fields(cls)} - {"lr"}  # type: ignore[arg-type]
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise ValueError(f"schedule {name}: expected key=value with key in "
                             f"{', '.join(sorted(allowed)) or '(none)'}; got {item!r}")
        if key in params:
            raise ValueError(f"schedule {name}: {key} given twice; give it once")
        try:
            params[key] = _number(value)
        except ValueError:
            raise ValueError(f"schedule {name}: {key} must be a number; got {value!r}") from None
    if "total" in allowed and "total" not in params and total_steps is not None:
        params["total"] = total_steps
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0 (0: no warmup); "
                         f"got {warmup_steps!r}")
    try:
        schedule: Schedule = cls(lr=lr, **params)  # type: ignore[call-arg]
    except TypeError as err:
        required = {f.name for f in fields(cls) if f.default is MISSING} - {"lr"}  # type: ignore[arg-type]
        missing = sorted(required - params.keys())
        raise ValueError(f"schedule {name} needs {', '.join(missing)} (e.g. "
                         f"{name}:{','.join(k + '=...' for k in missing)})") from err
    return linear_warmup(schedule, warmup_steps) if warmup_steps else schedule



def lr_at(lr: Any, step: Any) -> Any:
    """The learning rate of the update after ``step`` updates: ``lr(step)`` for a
    :class:`Schedule`, ``lr`` itself for a number or an array (a sweep). The one place where
    ``trajectory``, the ``torch.optim`` adapter and the compiled engine turn ``lr`` into a rate."""
    return lr(step) if isinstance(lr, Schedule) else lr


def split_schedule(hparams: dict[str, Any]) -> tuple[dict[str, Any], Schedule | None]:
    """``hparams`` with a scheduled ``lr`` replaced by the schedule's base rate (what the rules'
    validation and defaults see), and the schedule (``None`` when ``lr`` is not one)."""
    lr = hparams.get("lr")
    if not isinstance(lr, Schedule):
        return dict(hparams), None
    return {**hparams, "lr": lr.base_lr}, lr
