"""Where the committed comparison results are, for a chapter opened in or outside the repository.

The chapters read ``<results>/<preset>/results.json`` (written by ``python -m optlab compare``).
They find ``<results>`` through :func:`results_file`, not through the current directory, so a
chapter downloaded from the book and opened elsewhere still finds them. Search order:

1. ``$OPTLAB_RESULTS_DIR`` when it is set (then only there: an explicit choice is never
   silently replaced by another folder);
2. ``results/`` of the repository that holds the imported package's source (an editable install,
   or ``PYTHONPATH=src``);
3. ``results/`` in the current directory or one of its parents (a clone whose package is
   installed elsewhere).

A missing file raises :class:`ResultsNotFound` whose message is one line naming what is missing,
where it was looked for and the two ways to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "OPTLAB_RESULTS_DIR"

# the repository root when the package is imported from <repo>/src/optlab
_PACKAGE_REPO = Path(__file__).resolve().parents[2]


class ResultsNotFound(FileNotFoundError):
    """A results file is not where :func:`results_file` looks; the message says how to fix it."""


def _candidates() -> list[Path]:
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return [Path(env).expanduser()]
    out = [_PACKAGE_REPO / "results"]
    cwd = Path.cwd().resolve()
    out += [p / "results" for p in (cwd, *cwd.parents) if (p / "pyproject.toml").is_file()]
    return list(dict.fromkeys(out))  # in order, without repeats


def results_file(preset: str, filename: str = "results.json") -> Path:
    """The path of ``<results>/<preset>/<filename>`` (``results.json``, or e.g. the
    ``curvature.json`` of ``python -m optlab curvature``); :class:`ResultsNotFound` if no
    searched folder has it (see the module docstring for the search order)."""
    candidates = _candidates()
    for folder in candidates:
        path = folder / preset / filename
        if path.is_file():
            return path
    where = ", ".join(str(c) for c in candidates)
    command = (f"python -m optlab curvature --out results/{preset}"
               if filename == "curvature.json" else
               f"python -m optlab compare --preset {preset} --out results/{preset}")
    raise ResultsNotFound(
        f"{preset}/{filename} not found (looked in {where}): set {ENV_VAR} to a folder holding "
        f"{preset}/{filename}, or write it with `{command}`"
    )
