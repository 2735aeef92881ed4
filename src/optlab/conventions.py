"""Framework conventions as a parameter of an experiment: what "Adam at lr 0.001" means depends
on whose defaults fill in the rest.

The first source paper does not say which framework (or initialization) it used. Its figures
could depend on any default below, so the course runs both and names them:

* ``"pytorch"`` — ``torch.optim`` 2.x defaults and ``nn.Linear``'s initialization
  (Kaiming-uniform, ``a = sqrt(5)``, biases uniform too): the package's default.
* ``"keras"`` — Keras 3 defaults, read from its sources (``keras/src/optimizers/*.py``,
  ``keras/src/layers/core/dense.py``): Glorot-uniform weights and zero biases;
  ``RMSprop(rho=0.9, epsilon=1e-7)`` with epsilon **inside** the root
  (``lr * g / sqrt(v + eps)``); ``Adagrad(initial_accumulator_value=0.1, epsilon=1e-7)``, epsilon
  inside the root as well; ``Adam(epsilon=1e-7)`` in Kingma & Ba's "epsilon hat" placement
  (``alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``, ``w -= alpha_t * m / (sqrt(v) + eps)``);
  ``SGD`` plain (momentum 0); ``Nadam(epsilon=1e-7)`` with the momentum schedule
  :math:`\beta_1(1 - \tfrac12 0.96^{t})` (``momentum_decay=1``; PyTorch's is 0.004, which
  takes some 24,000 steps to get within 1 % of :math:`\beta_1`). Keras reports train accuracy
  as the running mean over the epoch's batches; the engine reports the full pass after the
  epoch and can report both.

:func:`hparams_for` gives the hyperparameters a rule gets under a convention; an explicit value
given by the user always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .rules import RULES

__all__ = ["CONVENTIONS", "INIT_FOR", "hparams_for"]

#: Per-rule hyperparameters that differ from the rule's own (PyTorch) defaults: each rule's
#: ``keras_form`` in the registry (:class:`optlab.rules.Rule`), for the rules Keras 3 has.
CONVENTIONS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "pytorch": {},
    "keras": {name: rule.keras_form for name, rule in RULES.items()
              if rule.keras_form is not None},
}

#: The weight initialization each convention's dense layer uses (see :func:`optlab.mlp.init_flat`).
INIT_FOR: Mapping[str, str] = {"pytorch": "pytorch", "keras": "glorot"}


def hparams_for(rule: str, conventions: str = "pytorch", **explicit: Any) -> dict[str, Any]:
    """The hyperparameters ``rule`` gets under ``conventions``, overridden by ``explicit``.

    Raises ``ValueError`` for an unknown convention or rule, a rule that the convention does not
    define, or a hyperparameter the rule does not take or a value out of its range."""
    table = CONVENTIONS.get(conventions)
    if table is None:
        raise ValueError(f"unknown conventions {conventions!r}; choose one of "
                         f"{', '.join(CONVENTIONS)}")
    if conventions != "pytorch" and rule not in table:
        raise ValueError(f"{rule} has no {conventions} form in optlab; use conventions='pytorch' "
                         f"or one of {', '.join(table)}")
    from .rules import resolve_hparams  # unknown rule, unknown or bad value: ValueError

    out = {**table.get(rule, {}), **explicit}
    resolve_hparams(rule, **out)
    return out
