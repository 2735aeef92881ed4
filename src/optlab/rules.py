r"""First-order update rules: one pure function per optimizer, with explicit state.

Every rule is a pair of functions, in the spirit of optax's ``init`` / ``update``::

    state = rule.init(params)
    params, state = rule.update(params, grad, state, **hparams)

* ``params`` and ``grad`` are arrays of the same shape: a NumPy array, a PyTorch tensor, or a
  Python float. The rules are **elementwise**, so the same code updates a point on a 2-D toy
  surface (shape ``(2,)``), a batch of points (shape ``(N, 2)``), or one layer of the MNIST
  network. Nothing is modified in place; a new array and a new state come back.
* Hyperparameters use ``torch.optim``'s keyword names (``lr``, ``momentum``, ``dampening``,
  ``betas``, ``eps``, ``weight_decay``, ``alpha``, ``initial_accumulator_value`` ...). They may
  be floats or arrays that broadcast against ``params`` (a sweep over learning rates is one call
  with ``lr`` of shape ``(N, 1)``).
* ``state.step`` counts the updates already applied (0 after ``init``). It may be an ``int`` or a
  0-d tensor (the compiled MNIST engine passes a tensor so that ``torch.compile`` does not
  recompile every step); the rules use it only arithmetically.

Every rule is registered as one :class:`Rule` (:data:`RULES`), which carries every fact the
package needs about it: defaults, allowed ranges, its ``torch.optim`` twin, the learning-rate
grid of the ``tuned`` preset, a demo learning rate and a one-line summary. Everything else
(``trajectory``, ``make_optimizer``, ``compare``, the dashboards, the tests) reads the registry,
so a new rule is one section of this file (see ``CONTRIBUTING.md``). The element-wise math goes
through :mod:`optlab.xp`, so this module runs on floats without NumPy (in the browser, too).

Each docstring gives the equation and its convention, next to the lines that compute it. Where
the source papers and PyTorch differ (momentum as an EMA, ``eps`` inside or outside the square
root, the first momentum step), an option selects either, and the default is PyTorch's, so that
every rule is equal to its ``torch.optim`` twin (tested step by step in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from . import xp

Array = Any  # np.ndarray | torch.Tensor | float



# --------------------------------------------------------------------------------------------
# The registry: one Rule per optimizer, with every fact the package needs about it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """An allowed interval for a hyperparameter, used for validation, error messages and the
    property tests' strategies."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def __contains__(self, x: float) -> bool:
        lo_ok = x >= self.low if self.low_closed else x > self.low
        hi_ok = x <= self.high if self.high_closed else x < self.high
        return bool(lo_ok and hi_ok)

    def __str__(self) -> str:
        hi = "inf" if math.isinf(self.high) else f"{self.high:g}"
        left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"{left}{self.low:g}, {hi}{right}"

    def phrase(self) -> str:
        """``"in (0, inf)"``, or ``"0"`` for a range that holds one value."""
        return f"{self.low:g}" if self.low == self.high else f"in {self}"


POSITIVE = Range(0.0, math.inf, False, False)
NONNEGATIVE = Range(0.0, math.inf, True, False)
UNIT_OPEN_RIGHT = Range(0.0, 1.0, True, False)
UNIT_CLOSED = Range(0.0, 1.0, True, True)
ZERO = Range(0.0, 0.0, True, True)


@dataclass(frozen=True)
class TorchTwin:
    """A factory ``(params, **hparams) -> torch.optim.Optimizer``: the ``torch.optim`` class
    the rule equals, called with the rule's hyperparameters plus ``fixed`` ones.

    The hyperparameters not given take the rule's defaults (not torch's: the heavy ball's
    momentum is 0.9 either way). ``torch_lacks`` maps the rule's options that torch does not
    have to the value torch implies; any other value is refused. Torch is imported only when
    the factory is called.
    """

    cls: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    torch_lacks: Mapping[str, Any] = field(default_factory=dict)
    rule: str = ""  # set by the Rule that holds it

    def __call__(self, params: Any, **hparams: Any) -> Any:
        import torch

        hparams = resolve_hparams(self.rule, **hparams)
        for key, implied in self.torch_lacks.items():
            value = hparams.pop(key, implied)
            if value != implied:
                raise ValueError(f"{self}: torch has no {key}={value!r} (only {implied!r}); "
                                 f"drop {key} to build the twin")
        return getattr(torch.optim, self.cls)(params, **hparams, **self.fixed)

    def __str__(self) -> str:
        fixed = ", ".join(f"{k}={v!r}" for k, v in self.fixed.items())
        return f"torch.optim.{self.cls}({fixed})"


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One update rule and every fact about it that the package reads, in one place.

    Attributes
    ----------
    name : str
        The registry key (``"adam"``).
    init, update : callables
        ``init(params) -> state`` and ``update(params, grad, state, **hparams)``.
    defaults : Mapping
        Every hyperparameter the rule takes, with its default (``torch.optim``'s).
    ranges : Mapping
        The allowed :class:`Range` of each numeric hyperparameter (booleans have none).
    summary : str
        One line, for ``python -m optlab compare --help`` and the dashboards' menus.
    lr_grid : tuple of float
        The learning rates the ``tuned`` preset tries.
    demo_lr : float
        A learning rate that gives a sensible path on the toy surfaces (Rosenbrock from its
        start in a few hundred steps): the benchmark's and the examples' choice.
    torch_twin : TorchTwin or None
        The ``torch.optim`` optimizer the rule equals (tested step by step), or ``None``.
    keras_form : Mapping or None
        The hyperparameters (other than ``lr``) that make the rule Keras 3's optimizer of the
        same name (``conventions="keras"``, :mod:`optlab.conventions`), or ``None`` if Keras
        has none.
    init_keys : tuple of str
        The hyperparameters ``init`` reads (AdaGrad's initial accumulator).
    """

    name: str
    init: Callable[..., Any]
    update: Callable[..., tuple[Array, Any]]
    defaults: Mapping[str, Any]
    ranges: Mapping[str, Range]
    summary: str
    lr_grid: tuple[float, ...]
    demo_lr: float
    torch_twin: TorchTwin | None = None
    keras_form: Mapping[str, Any] | None = None
    init_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.torch_twin is not None:
            object.__setattr__(self, "torch_twin", replace(self.torch_twin, rule=self.name))
        numeric = {k for k, v in self.defaults.items() if not isinstance(v, bool)}
        if set(self.ranges) != numeric:
            raise ValueError(f"rule {self.name}: ranges must cover exactly the numeric "
                             f"hyperparameters {sorted(numeric)}; got {sorted(self.ranges)}")
        if not self.lr_grid or not all(lr in self.ranges["lr"] for lr in self.lr_grid):
            raise ValueError(f"rule {self.name}: lr_grid must be learning rates in "
                             f"{self.ranges['lr']}; got {self.lr_grid!r}")
        _validate(self, dict(self.defaults, lr=self.demo_lr))
        if self.keras_form is not None:
            _validate(self, {**self.defaults, **self.keras_form})

    def init_state(self, params: Array, **hparams: Any) -> Any:
        """``init`` with the hyperparameters it reads (AdaGrad's initial accumulator)."""
        return self.init(params, **{k: hparams[k] for k in self.init_keys if k in hparams})


def _flat(value: Any) -> list[Any]:
    """The elements of a number, a tensor, a NumPy array or nested sequences, as a flat list of
    Python objects. NumPy and torch are never imported: an array can exist only if they are."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist") and hasattr(value, "dtype"):  # a NumPy array or scalar
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _numbers(rule: str, key: str, value: Any, rng: Range | None) -> list[float]:
    """The elements of ``value`` as floats; ``ValueError`` for text or booleans."""
    items = _flat(value)
    if any(isinstance(x, (str, bytes)) for x in items):
        hint = f" (write {key}={value}, not {key}={value!r})" if isinstance(value, str) else ""
        raise ValueError(f"{rule}: {key} must be numbers, not text; got {value!r}{hint}")
    if rng is None:
        return []
    if any(isinstance(x, bool) for x in items):
        raise ValueError(f"{rule}: {key} must be a number {rng.phrase()}, not {value}")
    try:
        return [float(x) for x in items]
    except (TypeError, ValueError):
        raise ValueError(f"{rule}: {key} must be a number {rng.phrase()}; got {value!r}") from None


def _check_value(rule: Rule, key: str, value: Any) -> None:
    rng = rule.ranges.get(key)
    if key == "betas" and rng is not None:
        _numbers(rule.name, key, value, None)  # text first
        try:
            b1, b2 = value
        except (TypeError, ValueError):
            raise ValueError(
                f"{rule.name}: betas must be a pair (beta1, beta2), each {rng.phrase()}; "
                f"got {value!r}"
            ) from None
        for i, b in enumerate((b1, b2), start=1):
            if not all(x in rng for x in _numbers(rule.name, f"beta{i}", b, rng)):
                raise ValueError(f"{rule.name}: beta{i} must be {rng.phrase()}; got {b!r}")
        return
    if rng is None:  # a boolean option: only text is refused
        _numbers(rule.name, key, value, None)
        return
    bad = [x for x in _numbers(rule.name, key, value, rng) if x not in rng]  # NaN is never in
    if bad:
        raise ValueError(f"{rule.name}: {key} must be {rng.phrase()}; got {bad[0]:g}")


def _validate(rule: Rule, resolved: Mapping[str, Any]) -> None:
    for key, value in resolved.items():
        _check_value(rule, key, value)
    if resolved.get("eps_inside_sqrt") and resolved.get("eps_hat"):
        _check_eps_form(True, True, rule.name)


def _check_eps_form(eps_inside_sqrt: bool, eps_hat: bool, rule: str) -> None:
    if eps_inside_sqrt and eps_hat:
        raise ValueError(f"{rule}: choose one placement of eps: eps_inside_sqrt or eps_hat")


#: Every elementwise rule, by name, in the course's order. Add a rule with :func:`register`.
RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add ``rule`` to :data:`RULES` (and so to every consumer: ``trajectory``,
    ``make_optimizer``, ``compare``, the dashboards, the tests)."""
    if rule.name in RULES:
        raise ValueError(f"a rule called {rule.name!r} is already registered")
    RULES[rule.name] = rule
    return rule


# --------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------


class StepState(NamedTuple):
    """State of plain (S)GD: only the step counter."""

    step: Any


def sgd_init(params: Array) -> StepState:
    return StepState(step=0)


def sgd_update(
    params: Array, grad: Array, state: StepState, *, lr: float = 1e-3, weight_decay: float = 0.0
) -> tuple[Array, StepState]:
    r"""Gradient descent (full batch), SGD (one example) or minibatch SGD: the same rule.

    .. math::  g_t = \nabla J(w_t) + \lambda w_t, \qquad w_{t+1} = w_t - \eta\, g_t

    Which of the three it is depends only on the data the gradient was computed on.
    ``weight_decay`` (:math:`\lambda`) is the L2 penalty folded into the gradient, as in
    ``torch.optim.SGD``.
    """
    g = grad + weight_decay * params  # g_t = ∇J + λ w
    return params - lr * g, StepState(state.step + 1)  # w ← w − η g


register(Rule(
    name="sgd", init=sgd_init, update=sgd_update,
    defaults={"lr": 1e-3, "weight_decay": 0.0},
    ranges={"lr": POSITIVE, "weight_decay": NONNEGATIVE},
    summary="gradient descent / SGD / minibatch SGD",
    lr_grid=(3e-3, 1e-2, 3e-2, 1e-1, 3e-1), demo_lr=1e-3,
    torch_twin=TorchTwin("SGD"),
    keras_form={},
))


# --------------------------------------------------------------------------------------------
# Momentum (heavy ball) and Nesterov
# --------------------------------------------------------------------------------------------


class MomentumState(NamedTuple):
    """Velocity buffer ``buf`` (PyTorch's ``momentum_buffer``) and the step counter."""

    step: Any
    buf: Array


def momentum_init(params: Array) -> MomentumState:
    return MomentumState(step=0, buf=xp.zeros_like(params))


def momentum_update(
    params: Array,
    grad: Array,
    state: MomentumState,
    *,
    lr: float = 1e-3,
    momentum: float = 0.9,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> tuple[Array, MomentumState]:
    r"""Polyak's heavy ball, in PyTorch's convention.

    .. math::
        v_{t+1} = \beta\, v_t + (1 - \tau)\, g_t, \qquad w_{t+1} = w_t - \eta\, v_{t+1}

    with momentum :math:`\beta` and dampening :math:`\tau`.

    * ``dampening=0`` (PyTorch's default) accumulates gradients: in a steady state the step is
      :math:`\eta\, g / (1-\beta)`, ten times the plain step for :math:`\beta = 0.9`.
    * ``dampening=momentum`` gives the survey's EMA form (chapter 3)
      :math:`v = (1-\beta)\, g + \beta\, v`: the buffer is an average of gradients, and, from a
      zero buffer, the same trajectory as the accumulating form needs the learning rate
      :math:`\eta / (1-\beta)` (PyTorch's first step differs: see the next point).
    * PyTorch copies the first gradient into the buffer (``buf = g`` on step 1, no dampening).
      That equals a zero buffer with :math:`\tau = 0` on the first step, which is what the
      ``(state.step > 0)`` factor below does; the two conventions differ only when
      ``dampening > 0``.

    ``nesterov=True`` steps along :math:`g_t + \beta v_{t+1}` instead (see :func:`nesterov_update`).
    """
    g = grad + weight_decay * params
    # PyTorch: buf ← g on the first step, i.e. no dampening then. ``step > 0`` is a bool (or a
    # bool tensor when the step is a 0-d tensor), so this stays pure arithmetic.
    tau = dampening * (state.step > 0)
    buf = momentum * state.buf + (1 - tau) * g  # v ← β v + (1 − τ) g
    direction = g + momentum * buf if nesterov else buf
    return params - lr * direction, MomentumState(state.step + 1, buf)  # w ← w − η v


register(Rule(
    name="momentum", init=momentum_init, update=momentum_update,
    defaults={"lr": 1e-3, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0},
    ranges={"lr": POSITIVE, "momentum": UNIT_OPEN_RIGHT, "dampening": UNIT_CLOSED,
            "weight_decay": NONNEGATIVE},
    summary="Polyak's heavy ball",
    lr_grid=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1), demo_lr=3e-4,
    torch_twin=TorchTwin("SGD"),
    keras_form={},  # SGD(momentum=...): v = β v − η g; w += v (equal, constant η)
))


def nesterov_update(
    params: Array,
    grad: Array,
    state: MomentumState,
    *,
    lr: float = 1e-3,
    momentum: float = 0.9,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
) -> tuple[Array, MomentumState]:
    r"""Nesterov's accelerated gradient with constant momentum, in PyTorch's form.

    Sutskever et al. (2013) write the method with a velocity that carries the learning rate and
    take the gradient at the look-ahead point :math:`w_t + \beta v_t`:

    .. math::
        v_{t+1} = \beta\, v_t - \eta\, \nabla J(w_t + \beta v_t), \qquad w_{t+1} = w_t + v_{t+1}

    PyTorch's ``SGD(nesterov=True)``, whose documentation notes that it "subtly differs from
    Sutskever et al.", changes two things, and this function does the same:

    * the stored parameters are the look-ahead points :math:`y_t = w_t + \beta v_t`, so the
      gradient :math:`g_t = \nabla J(y_t)` is taken at the stored parameters;
    * the buffer sums raw gradients, :math:`b = -v/\eta`, and the learning rate multiplies the
      step instead of entering the buffer:

    .. math::
        b_{t+1} = \beta\, b_t + g_t, \qquad y_{t+1} = y_t - \eta\,(g_t + \beta\, b_{t+1})

    (``momentum`` is :math:`\beta`). With a constant learning rate both forms are the same method
    (PyTorch's iterates are Sutskever et al.'s look-ahead points); under a learning-rate schedule
    they differ,
    because Sutskever et al.'s velocity keeps the learning rates it was built with while PyTorch
    multiplies its whole buffer by the current one. The step is a heavy-ball step whose
    direction carries one more momentum term. ``dampening`` must be 0, as in PyTorch
    (:func:`resolve_hparams` rejects other values).
    """
    return momentum_update(
        params, grad, state, lr=lr, momentum=momentum, dampening=dampening,
        weight_decay=weight_decay, nesterov=True,
    )


register(Rule(
    name="nesterov", init=momentum_init, update=nesterov_update,
    defaults={"lr": 1e-3, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0},
    ranges={"lr": POSITIVE, "momentum": UNIT_OPEN_RIGHT, "dampening": ZERO,
            "weight_decay": NONNEGATIVE},
    summary="Nesterov's accelerated gradient",
    lr_grid=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1), demo_lr=3e-4,
    torch_twin=TorchTwin("SGD", fixed={"nesterov": True}),
    keras_form={},  # SGD(nesterov=True): w += β v − η g, PyTorch's points (const. η)
))


# --------------------------------------------------------------------------------------------
# AdaGrad
# --------------------------------------------------------------------------------------------


class AdagradState(NamedTuple):
    """Running sum of squared gradients (PyTorch's ``sum``)."""

    step: Any
    sum_sq: Array


def adagrad_init(params: Array, initial_accumulator_value: float = 0.0) -> AdagradState:
    return AdagradState(step=0, sum_sq=xp.full_like(params, initial_accumulator_value))


def adagrad_update(
    params: Array,
    grad: Array,
    state: AdagradState,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    eps_inside_sqrt: bool = False,
) -> tuple[Array, AdagradState]:
    r"""AdaGrad (Duchi, Hazan & Singer 2011): a per-coordinate step that shrinks with the
    gradients seen so far.

    .. math::
        G_t = G_{t-1} + g_t^2, \qquad
        w_{t+1} = w_t - \frac{\eta_t}{\sqrt{G_t} + \epsilon}\, g_t, \qquad
        \eta_t = \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}

    :math:`G_0` is ``initial_accumulator_value`` (0 in PyTorch, 0.1 in Keras); ``eps`` is 1e-10
    in PyTorch, 1e-7 in Keras. ``initial_accumulator_value`` is read by :func:`adagrad_init`;
    it is accepted here so that one dict of hyperparameters serves both.
    ``eps_inside_sqrt=True`` divides by :math:`\sqrt{G_t + \epsilon}`, as Keras 3 does
    (``keras/src/optimizers/adagrad.py``).
    """
    t = state.step + 1
    g = grad + weight_decay * params
    clr = lr / (1 + (t - 1) * lr_decay)
    sum_sq = state.sum_sq + g * g  # G ← G + g²
    denom = xp.sqrt(sum_sq + eps) if eps_inside_sqrt else xp.sqrt(sum_sq) + eps
    return params - clr * g / denom, AdagradState(t, sum_sq)  # w ← w − η_t g / (√G + ε)


register(Rule(
    name="adagrad", init=adagrad_init, update=adagrad_update,
    defaults={"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10,
              "initial_accumulator_value": 0.0, "eps_inside_sqrt": False},
    ranges={"lr": POSITIVE, "lr_decay": NONNEGATIVE, "weight_decay": NONNEGATIVE,
            "eps": POSITIVE, "initial_accumulator_value": NONNEGATIVE},
    summary="per-coordinate steps from the sum of squared gradients",
    lr_grid=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1), demo_lr=0.5,
    torch_twin=TorchTwin("Adagrad", torch_lacks={"eps_inside_sqrt": False}),
    init_keys=("initial_accumulator_value",),
    keras_form={"initial_accumulator_value": 0.1, "eps": 1e-7, "eps_inside_sqrt": True},
))


# --------------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------------


class RMSpropState(NamedTuple):
    """EMA of squared gradients, EMA of gradients (centered variant), momentum buffer."""

    step: Any
    square_avg: Array
    grad_avg: Array
    buf: Array


def rmsprop_init(params: Array) -> RMSpropState:
    z = xp.zeros_like(params)
    return RMSpropState(step=0, square_avg=z, grad_avg=z, buf=z)


def rmsprop_update(
    params: Array,
    grad: Array,
    state: RMSpropState,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    eps_inside_sqrt: bool = False,
) -> tuple[Array, RMSpropState]:
    r"""RMSprop (Tieleman & Hinton 2012): AdaGrad with a leaky (EMA) sum of squared gradients.

    .. math::
        s_t = \alpha\, s_{t-1} + (1-\alpha)\, g_t^2, \qquad
        w_{t+1} = w_t - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon}

    * PyTorch puts :math:`\epsilon` **outside** the root and calls the decay ``alpha`` (0.99);
      Keras calls it ``rho`` (0.9) and uses eps 1e-7; the course's source papers (and Keras 3)
      write :math:`w - \eta\, g/\sqrt{s + \epsilon}`: set ``eps_inside_sqrt=True`` for that. With
      :math:`\epsilon = 10^{-8}` the two differ only where :math:`\sqrt{s}` is below about
      :math:`10^{-4}`, where eps inside the root caps the step at :math:`\eta g/\sqrt{\epsilon}`.
    * ``centered=True`` divides by an estimate of the standard deviation,
      :math:`\sqrt{s_t - \bar g_t^2}`, with :math:`\bar g_t` the EMA of gradients.
    * ``momentum > 0`` keeps a buffer :math:`b \leftarrow \beta b + g/(\sqrt{s}+\epsilon)` and
      steps :math:`w \leftarrow w - \eta b`, as ``torch.optim.RMSprop`` does.
    """
    g = grad + weight_decay * params
    square_avg = alpha * state.square_avg + (1 - alpha) * g * g  # s ← α s + (1 − α) g²
    grad_avg = state.grad_avg
    second = square_avg
    if centered:
        grad_avg = alpha * grad_avg + (1 - alpha) * g
        second = square_avg - grad_avg * grad_avg
    denom = xp.sqrt(second + eps) if eps_inside_sqrt else xp.sqrt(second) + eps
    buf = state.buf
    if isinstance(momentum, (int, float)) and momentum == 0:
        new_params = params - lr * g / denom  # w ← w − η g / (√s + ε)
    else:  # an array of momenta (a sweep) may hold zeros: b = 0·b + g/(√s+ε) is the plain step
        buf = momentum * buf + g / denom
        new_params = params - lr * buf
    return new_params, RMSpropState(state.step + 1, square_avg, grad_avg, buf)


register(Rule(
    name="rmsprop", init=rmsprop_init, update=rmsprop_update,
    defaults={"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
              "centered": False, "eps_inside_sqrt": False},
    ranges={"lr": POSITIVE, "alpha": UNIT_OPEN_RIGHT, "eps": POSITIVE,
            "weight_decay": NONNEGATIVE, "momentum": UNIT_OPEN_RIGHT},
    summary="per-coordinate steps from an EMA of squared gradients",
    lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), demo_lr=1e-2,
    torch_twin=TorchTwin("RMSprop", torch_lacks={"eps_inside_sqrt": False}),
    keras_form={"alpha": 0.9, "eps": 1e-7, "eps_inside_sqrt": True},
))


# --------------------------------------------------------------------------------------------
# Adam and AdamW
# --------------------------------------------------------------------------------------------


class AdamState(NamedTuple):
    """First moment ``m`` (``exp_avg``) and second moment ``v`` (``exp_avg_sq``)."""

    step: Any
    m: Array
    v: Array


def adam_init(params: Array) -> AdamState:
    return AdamState(step=0, m=xp.zeros_like(params), v=xp.zeros_like(params))


def adam_step(
    params: Array,
    g: Array,
    state: AdamState,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    bias_correction: bool,
    eps_inside_sqrt: bool,
    eps_hat: bool,
) -> tuple[Array, AdamState]:
    """The step Adam and AdamW share, on the gradient ``g`` they prepared (with L2 for Adam;
    AdamW has already decayed ``params``): moments, bias correction, the scaled step."""
    beta1, beta2 = betas
    t = state.step + 1
    m = beta1 * state.m + (1 - beta1) * g  # m ← β₁ m + (1 − β₁) g
    v = beta2 * state.v + (1 - beta2) * g * g  # v ← β₂ v + (1 − β₂) g²
    if eps_hat:  # Kingma & Ba's "ε̂" form (Keras): α_t = η √(1 − β₂ᵗ) / (1 − β₁ᵗ)
        alpha_t = lr * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
        new_params = params - alpha_t * m / (xp.sqrt(v) + eps)  # w ← w − α_t m / (√v + ε̂)
        return new_params, AdamState(t, m, v)
    if bias_correction:
        m_hat = m / (1 - beta1**t)  # m̂ = m / (1 − β₁ᵗ)
        v_hat = v / (1 - beta2**t)  # v̂ = v / (1 − β₂ᵗ)
    else:
        m_hat, v_hat = m, v
    denom = xp.sqrt(v_hat + eps) if eps_inside_sqrt else xp.sqrt(v_hat) + eps
    return params - lr * m_hat / denom, AdamState(t, m, v)  # w ← w − η m̂ / (√v̂ + ε)


#: Adam's options that ``torch.optim.Adam``/``AdamW`` do not have, at the value torch implies.
_ADAM_OPTIONS_TORCH_LACKS = {"bias_correction": True, "eps_inside_sqrt": False, "eps_hat": False}


def adam_update(
    params: Array,
    grad: Array,
    state: AdamState,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
    eps_inside_sqrt: bool = False,
    eps_hat: bool = False,
) -> tuple[Array, AdamState]:
    r"""Adam (Kingma & Ba 2015): momentum on the gradient, RMSprop on its scale, both corrected
    for starting at zero.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
        w_{t+1} = w_t - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    * ``weight_decay`` is **L2 regularization**: :math:`\lambda w` is added to the gradient
      before the moments, so it is rescaled by :math:`1/\sqrt{\hat v}` like the gradient
      (that is what ``torch.optim.Adam`` does; compare :func:`adamw_update`).
    * ``bias_correction=False`` drops the two divisions. Both moments then start near zero, but
      :math:`\sqrt{v}` is shrunk less than :math:`m`: the first step is
      :math:`\eta (1-\beta_1)/\sqrt{1-\beta_2} \approx 3.16\,\eta` per coordinate for the
      default betas. With the correction it is :math:`\approx \eta` (chapter 7 measures both).
    * ``eps_inside_sqrt=True`` gives the papers' :math:`\hat m / \sqrt{\hat v + \epsilon}`.
    * ``eps_hat=True`` gives Keras 3's form (``keras/src/optimizers/adam.py``), Kingma & Ba's
      "efficient version" with :math:`\hat\epsilon`,
      :math:`w - \alpha_t\, m_t / (\sqrt{v_t} + \hat\epsilon)` with
      :math:`\alpha_t = \eta \sqrt{1-\beta_2^t} / (1-\beta_1^t)`,
      i.e. :math:`\epsilon` added before the bias correction of :math:`v`, so its effect is
      :math:`\hat\epsilon/\sqrt{1-\beta_2^t}` in the :math:`\hat v` form: about 31.6x larger at
      the first step, the same once :math:`\beta_2^t \approx 0`.
    """
    _check_eps_form(eps_inside_sqrt, eps_hat, "adam")
    g = grad + weight_decay * params  # L2: coupled with the adaptive scaling
    return adam_step(params, g, state, lr, betas, eps, bias_correction, eps_inside_sqrt, eps_hat)


register(Rule(
    name="adam", init=adam_init, update=adam_update,
    defaults={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
              "bias_correction": True, "eps_inside_sqrt": False, "eps_hat": False},
    ranges={"lr": POSITIVE, "betas": UNIT_OPEN_RIGHT, "eps": POSITIVE,
            "weight_decay": NONNEGATIVE},
    summary="momentum + RMSprop scaling + bias correction",
    lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), demo_lr=0.05,
    torch_twin=TorchTwin("Adam", torch_lacks=_ADAM_OPTIONS_TORCH_LACKS),
    keras_form={"eps": 1e-7, "eps_hat": True},
))


def adamw_update(
    params: Array,
    grad: Array,
    state: AdamState,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    bias_correction: bool = True,
    eps_inside_sqrt: bool = False,
    eps_hat: bool = False,
) -> tuple[Array, AdamState]:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with **decoupled** weight decay.

    .. math::
        w_t' = (1 - \eta\lambda)\, w_t, \qquad
        w_{t+1} = w_t' - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    The decay shrinks every weight by the same factor, whatever its gradient scale; in Adam's L2
    form a weight with large gradients is barely decayed. PyTorch's default ``weight_decay`` is
    0.01 and the decay is multiplied by ``lr`` (some papers write :math:`w - \lambda w`).
    """
    _check_eps_form(eps_inside_sqrt, eps_hat, "adamw")
    decayed = params * (1 - lr * weight_decay)  # w ← (1 − ηλ) w
    return adam_step(decayed, grad, state, lr, betas, eps, bias_correction, eps_inside_sqrt,
                      eps_hat)


register(Rule(
    name="adamw", init=adam_init, update=adamw_update,
    defaults={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2,
              "bias_correction": True, "eps_inside_sqrt": False, "eps_hat": False},
    ranges={"lr": POSITIVE, "betas": UNIT_OPEN_RIGHT, "eps": POSITIVE,
            "weight_decay": NONNEGATIVE},
    summary="Adam with decoupled weight decay",
    lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), demo_lr=0.05,
    torch_twin=TorchTwin("AdamW", torch_lacks=_ADAM_OPTIONS_TORCH_LACKS),
    keras_form={"eps": 1e-7, "eps_hat": True, "weight_decay": 4e-3},
))


# --------------------------------------------------------------------------------------------
# NAdamW: the course's reading of the survey's combined method
# --------------------------------------------------------------------------------------------


class NAdamState(NamedTuple):
    """Adam's moments plus the running product of the momentum schedule ``mu_product``."""

    step: Any
    m: Array
    v: Array
    mu_product: Any


def nadamw_init(params: Array) -> NAdamState:
    return NAdamState(step=0, m=xp.zeros_like(params), v=xp.zeros_like(params), mu_product=1.0)


def nadamw_update(
    params: Array,
    grad: Array,
    state: NAdamState,
    *,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    momentum_decay: float = 4e-3,
) -> tuple[Array, NAdamState]:
    r"""NAdamW, the course's reading of the survey's combined method.

    Adam's adaptive scaling, AdamW's decoupled weight decay, and the momentum realized as
    Nesterov's look-ahead, as in Dozat's NAdam (2016): the look-ahead is the course's choice, not
    the survey's words (chapter 8 quotes them).
    With PyTorch's momentum schedule :math:`\beta_{1,t} = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})`
    (:math:`\psi` = ``momentum_decay``) and :math:`\Pi_t = \prod_{i \le t} \beta_{1,i}`:

    .. math::
        w_t' = (1-\eta\lambda)\, w_t, \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \bar m_t = \frac{1-\beta_{1,t}}{1-\Pi_t}\, g_t
                 + \frac{\beta_{1,t+1}}{1-\Pi_{t+1}}\, m_t, \quad
        w_{t+1} = w_t' - \eta\, \frac{\bar m_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    This is ``torch.optim.NAdam(..., decoupled_weight_decay=True)``. With the schedule held at
    :math:`\beta_{1,t} = \beta_1` (a large ``momentum_decay``, e.g. ``1e3``) the first moment is
    :math:`\bar m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1)\, g_t / (1-\beta_1^t)`:
    Adam's :math:`\hat m_t = (\beta_1 m_{t-1} + (1-\beta_1) g_t)/(1-\beta_1^t)` with the new moment
    :math:`m_t` in place of :math:`m_{t-1}` (bias-corrected by :math:`1-\beta_1^{t+1}`),
    Nesterov's look-ahead. (It is *not*
    :math:`\beta_1 \hat m_t + (1-\beta_1) g_t/(1-\beta_1^t)` with
    :math:`\hat m_t = m_t/(1-\beta_1^t)`; the two agree only once :math:`\beta_1^t` is negligible.)

    The default schedule is a slow warm-up: :math:`\beta_{1,t}` starts at :math:`\beta_1/2`, is
    about :math:`0.52` after 1000 steps, :math:`0.88` after 18,750 and within 1 % of
    :math:`\beta_1` only after about 24,000 (Keras 3's ``Nadam`` uses :math:`0.96^t`, about 100
    steps). Chapter 8 measures the look-ahead and the warm-up separately.
    """
    beta1, beta2 = betas
    t = state.step + 1
    decayed = params * (1 - lr * weight_decay)  # decoupled decay, as AdamW
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state.mu_product * mu
    m = beta1 * state.m + (1 - beta1) * grad
    v = beta2 * state.v + (1 - beta2) * grad * grad
    denom = xp.sqrt(v / (1 - beta2**t)) + eps
    coef_grad = lr * (1 - mu) / (1 - mu_product)
    coef_m = lr * mu_next / (1 - mu_product * mu_next)
    new_params = decayed - coef_grad * grad / denom - coef_m * m / denom
    return new_params, NAdamState(t, m, v, mu_product)


register(Rule(
    name="nadamw", init=nadamw_init, update=nadamw_update,
    defaults={"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2,
              "momentum_decay": 4e-3},
    ranges={"lr": POSITIVE, "betas": UNIT_OPEN_RIGHT, "eps": POSITIVE,
            "weight_decay": NONNEGATIVE, "momentum_decay": NONNEGATIVE},
    summary="NAdamW, the course's reading of the survey's combined method",
    lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), demo_lr=0.05,
    torch_twin=TorchTwin("NAdam", fixed={"decoupled_weight_decay": True}),
    # Keras's Nadam: μ_t = β₁ (1 − ½ 0.96ᵗ), i.e. momentum_decay 1 (PyTorch: 0.004); no decay
    keras_form={"eps": 1e-7, "momentum_decay": 1.0, "weight_decay": 0.0},
))


# --------------------------------------------------------------------------------------------
# AMSGrad
# --------------------------------------------------------------------------------------------


class AMSGradState(NamedTuple):
    """Adam's moments plus the running maximum ``v_max`` of the second moment
    (PyTorch's ``max_exp_avg_sq``)."""

    step: Any
    m: Array
    v: Array
    v_max: Array


def amsgrad_init(params: Array) -> AMSGradState:
    z = xp.zeros_like(params)
    return AMSGradState(step=0, m=z, v=z, v_max=z)


def amsgrad_update(
    params: Array,
    grad: Array,
    state: AMSGradState,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    eps_hat: bool = False,
) -> tuple[Array, AMSGradState]:
    r"""AMSGrad (Reddi, Kale & Kumar 2018, "On the Convergence of Adam and Beyond"): Adam
    whose denominator never shrinks.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \hat v_t = \max(\hat v_{t-1}, v_t),

        w_{t+1} = w_t - \eta\, \frac{m_t / (1-\beta_1^t)}
                                     {\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon}

    Reddi et al. show problems where Adam's effective step :math:`\eta/\sqrt{v_t}` grows when
    large, rare gradients fade from :math:`v_t`, and Adam converges to the wrong point; keeping
    the maximum makes their effective step :math:`\alpha_t/\sqrt{\hat v_t}` non-increasing
    (with a non-increasing :math:`\alpha_t`). Their algorithm has no bias correction; this is
    ``torch.optim.Adam(amsgrad=True)``, which corrects :math:`m` and the maximum of :math:`v` as
    Adam does. Dividing the maximum by :math:`\sqrt{1-\beta_2^t}` lets this form's step still
    grow, by up to :math:`1/\sqrt{1-\beta_2}` (about 32x for :math:`\beta_2 = 0.999`), while
    :math:`\beta_2^t` is not negligible. ``weight_decay`` is L2, added to the gradient, as in
    Adam.
    ``eps_hat=True`` is Keras 3's ``Adam(amsgrad=True)``: :math:`\epsilon` added before the
    bias correction, as in :func:`adam_update`.
    """
    beta1, beta2 = betas
    t = state.step + 1
    g = grad + weight_decay * params  # g ← ∇J + λ w
    m = beta1 * state.m + (1 - beta1) * g  # m ← β₁ m + (1 − β₁) g
    v = beta2 * state.v + (1 - beta2) * g * g  # v ← β₂ v + (1 − β₂) g²
    v_max = xp.maximum(state.v_max, v)  # v̂ ← max(v̂, v)
    if eps_hat:  # Keras: w ← w − α_t m / (√v̂ + ε̂), α_t = η √(1 − β₂ᵗ) / (1 − β₁ᵗ)
        alpha_t = lr * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
        new_params = params - alpha_t * m / (xp.sqrt(v_max) + eps)
        return new_params, AMSGradState(t, m, v, v_max)
    denom = xp.sqrt(v_max) / (1 - beta2**t) ** 0.5 + eps  # √v̂ / √(1 − β₂ᵗ) + ε
    step_size = lr / (1 - beta1**t)  # η / (1 − β₁ᵗ)
    return params - step_size * m / denom, AMSGradState(t, m, v, v_max)  # w ← w − η m̂ / denom


register(Rule(
    name="amsgrad", init=amsgrad_init, update=amsgrad_update,
    defaults={"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
              "eps_hat": False},
    ranges={"lr": POSITIVE, "betas": UNIT_OPEN_RIGHT, "eps": POSITIVE,
            "weight_decay": NONNEGATIVE},
    summary="Adam with a non-decreasing second moment (its running maximum)",
    lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), demo_lr=0.05,
    torch_twin=TorchTwin("Adam", fixed={"amsgrad": True}, torch_lacks={"eps_hat": False}),
    keras_form={"eps": 1e-7, "eps_hat": True},  # Adam(amsgrad=True)
))


# --------------------------------------------------------------------------------------------
# Lion
# --------------------------------------------------------------------------------------------


class LionState(NamedTuple):
    """Lion's one buffer: the momentum ``m`` (an EMA of gradients), and the step counter."""

    step: Any
    m: Array


def lion_init(params: Array) -> LionState:
    return LionState(step=0, m=xp.zeros_like(params))


def lion_update(
    params: Array,
    grad: Array,
    state: LionState,
    *,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
) -> tuple[Array, LionState]:
    r"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):
    the sign of an interpolation between the momentum and the gradient.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        w_{t+1} = w_t - \eta\, \big(\operatorname{sign}(c_t) + \lambda w_t\big), \quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    Every coordinate moves by exactly :math:`\eta` (plus the decay): the step has no scale
    to adapt, so Lion's learning rate is typically 3-10 times smaller than AdamW's and its
    :math:`\lambda` as much larger, to keep :math:`\eta\lambda` the same. The direction uses
    :math:`\beta_1` (0.9); the momentum that is kept uses the slower :math:`\beta_2` (0.99).
    ``weight_decay`` is decoupled, multiplied by the learning rate, as in AdamW. There is no
    ``torch.optim`` twin; the tests compare it with a loop written from the paper.
    """
    beta1, beta2 = betas
    c = beta1 * state.m + (1 - beta1) * grad  # c ← β₁ m + (1 − β₁) g
    new_params = params - lr * (xp.sign(c) + weight_decay * params)  # w ← w − η (sign c + λ w)
    m = beta2 * state.m + (1 - beta2) * grad  # m ← β₂ m + (1 − β₂) g
    return new_params, LionState(state.step + 1, m)


register(Rule(
    name="lion", init=lion_init, update=lion_update,
    defaults={"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0},
    ranges={"lr": POSITIVE, "betas": UNIT_OPEN_RIGHT, "weight_decay": NONNEGATIVE},
    summary="the sign of a momentum-gradient interpolation: equal steps in every coordinate",
    lr_grid=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3), demo_lr=1e-2,
    keras_form={},
))


# --------------------------------------------------------------------------------------------
# Looking rules up, and validating hyperparameters
# --------------------------------------------------------------------------------------------

#: The elementwise first-order rules, in the course's order.
FIRST_ORDER: tuple[str, ...] = tuple(RULES)

#: Every name :func:`optlab.make_optimizer` accepts: the first-order rules and L-BFGS
#: (:mod:`optlab.second_order`).
OPTIMIZERS: tuple[str, ...] = (*RULES, "lbfgs")


def describe_rules() -> str:
    """One line per rule, ``name  summary`` (for help texts)."""
    width = max(map(len, RULES))
    return "\n".join(f"{name:<{width}}  {rule.summary}" for name, rule in RULES.items())


def get_rule(name: str) -> Rule:
    """The rule called ``name``; a ``ValueError`` lists the known names otherwise."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        if name == "lbfgs":
            raise ValueError(
                "lbfgs is not an elementwise rule (it needs dot products over all parameters): "
                "use optlab.make_optimizer('lbfgs', params) for torch parameters, or "
                "optlab.minimize(surface, x0, 'lbfgs') on a surface"
            ) from None
        raise ValueError(
            f"unknown optimizer {name!r}: choose one of {', '.join(RULES)}"
        ) from None


def resolve_hparams(name: str, **hparams: Any) -> dict[str, Any]:
    """The rule's defaults overridden by ``hparams``, validated.

    Raises ``ValueError`` for an unknown optimizer, an unknown hyperparameter (naming the ones
    the rule takes) or a value outside its range (naming the range), e.g.
    ``adam: lr must be in (0, inf); got -0.1``. Works on floats, NumPy arrays and tensors, and
    without NumPy installed.
    """
    rule = get_rule(name)
    unknown = sorted(set(hparams) - set(rule.defaults))
    if unknown:
        raise ValueError(
            f"{name}: unknown hyperparameter {unknown[0]!r}; it takes "
            f"{', '.join(rule.defaults)}"
        )
    resolved = {**rule.defaults, **hparams}
    _validate(rule, resolved)
    return resolved
