"""Checked exercises for the chapters.

A chapter states an exercise, leaves a cell where the reader writes ``answer = ...``, computes the
solution in a hidden cell, and calls :func:`check`. Unanswered (``None``), the check only says so;
answered, it says whether the value is right and fails loudly (``AssertionError``) when it is not,
so a notebook run under nbval also proves that the published solution satisfies the exercise's
own claim (the ``claim`` callable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def check(
    answer: Any,
    solution: Any,
    *,
    rtol: float = 1e-3,
    atol: float = 0.0,
    claim: Callable[[Any], bool] | None = None,
    name: str = "exercise",
) -> None:
    """Compare the reader's ``answer`` with ``solution`` and print the verdict.

    Returns nothing, so that a check as a cell's last line shows only its message.

    * ``answer is None``: nothing to compare; prints a hint.
    * otherwise: numeric answers are compared with ``rtol``/``atol`` (arrays elementwise),
      anything else with ``==``; a wrong answer raises ``AssertionError`` with both values.
    * ``claim``, if given, is a predicate the *solution* must satisfy (for instance "this learning
      rate makes the run converge"); it is always evaluated, so the chapter's claim is tested
      even when the reader has not answered.
    """
    if claim is not None and not claim(solution):
        raise AssertionError(f"{name}: the published solution {solution!r} fails its own claim")
    if answer is None:
        print(f"{name}: no answer yet — set `answer` above and run this cell again "
              "(the solution is in the hidden cell).")
        return
    try:
        ok = bool(np.allclose(np.asarray(answer, dtype=float), np.asarray(solution, dtype=float),
                              rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        ok = answer == solution
    if not ok:
        raise AssertionError(f"{name}: {answer!r} is not right (expected about {solution!r})")
    print(f"{name}: correct ✓")
