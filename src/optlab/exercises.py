"""Checked exercises for the chapters.

A chapter states an exercise, leaves a cell where the reader writes ``answer = ...``, computes the
solution in a folded cell, and calls :func:`check`. The reader gets one friendly line, never a
traceback: unanswered (``None``), a note to fill in the answer; right, a tick; wrong, "not yet"
with a hint that does not give the solution away. The chapter's own claim about the solution (the
``claim`` callable) is always tested, so a notebook run under nbval (where ``answer`` is ``None``)
still proves that the published solution satisfies what the exercise says.
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
    hint: str = "",
) -> None:
    """Compare the reader's ``answer`` with ``solution`` and print the verdict in one line.

    Returns nothing, so that a check as a cell's last line shows only its message.

    * ``claim``, if given, is a predicate the *solution* must satisfy (for instance "this learning
      rate makes the run converge"); it is always evaluated, and a solution that fails it raises
      ``AssertionError``: that is the chapter's error, not the reader's.
    * ``answer is None``: prints how to answer (in the static book: where the solution is).
    * a number (or array) within ``rtol``/``atol`` of the solution, or an equal non-number:
      prints "correct ✓".
    * otherwise prints "not yet" and a hint: whether the value is too high or too low, the
      tolerance, and the exercise's own ``hint``. The solution's value is never printed.
    """
    if claim is not None and not claim(solution):
        raise AssertionError(f"{name}: the published solution {solution!r} fails its own claim")
    if answer is None:
        print(_unanswered_line(name))
        return
    verdict = _compare(answer, solution, rtol=rtol, atol=atol)
    if verdict == "":
        print(f"{name}: correct ✓")
        return
    extra = f" Hint: {hint}" if hint else ""
    print(f"{name}: not yet — {verdict}.{extra} Change `answer` and run both cells again.")


def _unanswered_line(name: str) -> str:
    from optlab.notebook import build_mode

    if build_mode():
        return (f"{name}: work it out, then unfold the solution cell above to compare "
                "(opened as a notebook, the chapter checks your `answer` here).")
    return f"{name}: fill in your answer — set `answer = ...` in the cell above and run both cells."


def _compare(answer: Any, solution: Any, *, rtol: float, atol: float) -> str:
    """"" when ``answer`` is right, else a hint that does not reveal ``solution``."""
    try:
        sol = np.asarray(solution, dtype=float)
    except (TypeError, ValueError):
        return "" if answer == solution else "that is not the expected answer"
    try:
        ans = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return f"expected a number, got {type(answer).__name__} {answer!r}"
    if ans.shape != sol.shape and ans.size != 1 and sol.size != 1:
        return f"expected {sol.size} values (shape {sol.shape}), got shape {ans.shape}"
    close = np.isclose(ans, sol, rtol=rtol, atol=atol)
    if bool(np.all(close)):
        return ""
    tolerance = _tolerance_words(rtol, atol)
    if sol.size == 1 and ans.size == 1:
        side = "too high" if float(ans) > float(sol) else "too low"
        if not np.isfinite(float(ans)):
            side = "not a finite number"
        return f"your value is {side} (a right answer is {tolerance})"
    return f"{int(np.size(close) - np.count_nonzero(close))} of {np.size(close)} values are off " \
           f"(a right answer is {tolerance} in every entry)"


def _tolerance_words(rtol: float, atol: float) -> str:
    parts = []
    if rtol > 0:
        parts.append(f"within {rtol:.0%}" if rtol >= 0.01 else f"within a relative {rtol:g}")
    if atol > 0:
        parts.append(f"within ±{atol:g}")
    return " or ".join(parts) + " of the solution" if parts else "exactly the solution"
