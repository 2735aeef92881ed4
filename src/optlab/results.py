"""Reading ``results.json`` safely: one place that says whether a file is a results document of
``python -m optlab compare`` and which of its runs are finished.

No torch here: ``python -m optlab summary`` and the plots read results without it. Every problem
is a :class:`ResultsFormatError` whose message is one line naming the file, what is wrong and
what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["ResultsFormatError", "FINISHED", "check_results_doc", "finished_runs",
           "read_results_doc", "run_key"]

#: Statuses of a run that will not change any more (``"running"`` is the only other one).
FINISHED = ("ok", "diverged")
STATUSES = (*FINISHED, "running")

_FOREIGN = ("it is likely from an interrupted or foreign run: move it away (or give another "
            "--out); compare --force keeps it as results.json.bak and starts over")


class ResultsFormatError(ValueError):
    """A file that is not a readable results document; the message is one line."""


def run_key(run: dict[str, Any]) -> str:
    """Identity of a run for ``--resume``: phase, variant, optimizer, hyperparameters, seed,
    and its initialization when recorded (files written before runs recorded it have none)."""
    ident = {k: run.get(k) for k in ("phase", "variant", "optimizer", "hparams", "seed")}
    if run.get("init") is not None:
        ident["init"] = run["init"]
    return json.dumps(ident, sort_keys=True)


def _check_run(run: Any, where: str) -> str | None:
    if not isinstance(run, dict):
        return f"{where} is {type(run).__name__}, not an object"
    for key, kind in (("optimizer", str), ("hparams", dict), ("status", str), ("epochs", list)):
        if not isinstance(run.get(key), kind):
            return f"{where} has no {kind.__name__} {key!r}"
    if not isinstance(run.get("seed"), int) or isinstance(run.get("seed"), bool):
        return f"{where} has no integer 'seed'"
    if run["status"] not in STATUSES:
        return f"{where} has status {run['status']!r}, not one of {', '.join(STATUSES)}"
    if not _is_number_or_none(run["hparams"].get("lr")):
        return f"{where} has a 'lr' that is not a number"
    for j, e in enumerate(run["epochs"]):
        if not isinstance(e, dict):
            return f"{where} epoch {j + 1} is {type(e).__name__}, not an object"
        for key in NUMBERS:
            if not _is_number_or_none(e.get(key)):
                return f"{where} epoch {j + 1} has a {key!r} that is not a number"
    return None


#: The per-epoch values that the readers (summary, plots) compute with: numbers or null.
NUMBERS = ("epoch", "train_loss", "train_acc", "train_acc_running", "val_loss", "val_acc",
           "test_loss", "test_acc", "seconds", "grad_evals", "examples", "epochs_of_gradients")


def _is_number_or_none(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def check_results_doc(doc: Any, label: str = "results.json") -> dict[str, Any]:
    """``doc`` itself if it has the shape ``compare`` writes (an object with a ``config`` object,
    a ``runs`` list of run objects, optionally a ``selection`` object with its own ``runs``);
    :class:`ResultsFormatError` naming the first thing that is wrong otherwise."""
    problem = None
    if not isinstance(doc, dict):
        problem = f"it holds {type(doc).__name__ if doc is not None else 'null'}, not an object"
    elif not isinstance(doc.get("runs"), list):
        problem = "it has no list of 'runs'"
    elif not isinstance(doc.get("config", {}), dict):
        problem = "its 'config' is not an object"
    elif not isinstance(doc.get("provenance", {}), dict):
        problem = "its 'provenance' is not an object"
    elif not _is_load_average(doc.get("provenance", {}).get("load_average_at_start")):
        problem = "its provenance's 'load_average_at_start' is not a list of numbers"
    elif not isinstance(doc.get("selection", {}), dict) or not isinstance(
            doc.get("selection", {}).get("runs", []), list):
        problem = "its 'selection' is not an object with a list of 'runs'"
    else:
        for section, runs in (("runs", doc["runs"]),
                              ("selection runs", doc.get("selection", {}).get("runs", []))):
            for i, r in enumerate(runs):
                problem = _check_run(r, f"{section}[{i}]")
                if problem:
                    break
            if problem:
                break
    if problem:
        raise ResultsFormatError(f"{label} is not a results.json of python -m optlab compare "
                                 f"({problem}); {_FOREIGN}")
    return doc


def _is_load_average(x: Any) -> bool:
    return x is None or (isinstance(x, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in x))


class _NotJSONConstant(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJSONConstant(name)


def read_results_doc(path: str | os.PathLike) -> dict[str, Any]:
    """The checked document of the results file ``path`` (not a directory)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultsFormatError(f"{p} is not text (not UTF-8); {_FOREIGN}") from None
    except OSError as e:
        raise ResultsFormatError(f"cannot read {p}: {e.strerror or e}; check the path and its "
                                 "permissions") from None
    if not text.strip():
        raise ResultsFormatError(f"{p} is empty; {_FOREIGN}")
    try:
        doc = json.loads(text, parse_constant=_no_constant)  # NaN, Infinity: not from compare
    except _NotJSONConstant as e:
        raise ResultsFormatError(f"{p} is not a results.json of python -m optlab compare (it "
                                 f"holds {e}, which compare never writes); {_FOREIGN}") from None
    except ValueError as e:
        raise ResultsFormatError(f"{p} is not valid JSON ({str(e).splitlines()[0]}; "
                                 f"{len(text):,} characters, truncated?); {_FOREIGN}") from None
    except RecursionError:
        raise ResultsFormatError(f"{p} is not a results.json of python -m optlab compare (it "
                                 f"nests too deeply to read); {_FOREIGN}") from None
    return check_results_doc(doc, str(p))


def finished_runs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{run key: run} of every finished run (``ok`` or ``diverged``), selection runs included."""
    out: dict[str, dict[str, Any]] = {}
    for r in list(doc.get("selection", {}).get("runs", [])) + list(doc.get("runs", [])):
        if r.get("status") in FINISHED:
            out[run_key(r)] = r
    return out
