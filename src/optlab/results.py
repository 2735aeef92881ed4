r"""``results.json``: the one place that owns the file format of ``python -m optlab compare``.

It writes the file (:func:`new_doc`, :func:`run_record`, :func:`write_results`), reads it back
checked (:func:`load_results` gives typed records; :func:`read_results_doc` the checked dict),
and says once what "finished", "diverged" and "the mean over seeds" mean
(:func:`mean_over_seeds`, :func:`compare_final`). The CLI, ``summary``, the plots and every
chapter read results through it; no other code parses ``results.json``.

Schema (``SCHEMA_VERSION = 1``)
-------------------------------
A JSON object (``NaN``/``Infinity`` literals are never written nor accepted):

* ``schema_version`` — ``1``. Files written before the field existed have no
  ``schema_version``; they have exactly this layout and read as version 1. Any other value is
  refused with one line naming the file.
* ``provenance`` — an object: ``command``, ``date``, ``finished`` (absent while the command
  runs), ``git_commit``, versions, ``device``, ``device_name``, ``threads`` (the training's),
  ``eval_threads`` (the per-epoch evaluation's; absent in files before it existed),
  ``load_average_at_start`` (a list of numbers or null), ``busy_cores_at_start`` (the cores
  other work kept busy as the command started, measured; null where not measured; absent in
  older files), ``dataset``...
* ``config`` — an object: the settings that define the numbers (``preset``, ``optimizers``,
  ``lr``, ``epochs``, ``seeds``, ``batch_size``, ``dataset``...). Any other key (``schedule``,
  ``clip_norm``, later ones) is kept as it is: :attr:`ResultsDoc.config` is the plain dict.
* ``runs`` — a list of run records (below), the final phase.
* ``selection`` — optional: the ``tuned`` preset's grid search (``grid``, ``chosen_lr``,
  ``val_size``, ``train_size``, ``epochs``, ``seed`` and its own ``runs``).
* ``budgets`` — optional: the ``lbfgs`` preset's budgets.

A run record: ``optimizer`` (str), ``hparams`` (object with a numeric or null ``lr``),
``seed`` (int), ``status`` (``"ok"``, ``"diverged"`` or ``"running"``), ``epochs`` (a list of
per-epoch objects whose ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
``test_loss``, ``test_acc``, ``seconds``, ``grad_evals``, ``examples``,
``epochs_of_gradients`` are numbers or null), and optionally ``phase`` (``"final"`` when
absent, or ``"selection"``), ``variant`` (str or null) and any other key (``threads``,
``compile_seconds``, ``schedule``...), kept in :attr:`RunRecord.extra`. A metric that was NaN
is written as ``null`` and ±inf as ±1e308 (JSON has neither); a metric that was not measured
(``val_acc`` without a validation split) is absent.

Definitions
-----------
* **finished**: status ``"ok"`` or ``"diverged"`` — the run will not change any more;
  ``"running"`` (a file written while its command was going) is **unfinished**.
* **diverged**: status ``"diverged"``, or a finished run whose last epoch has a non-finite loss
  or accuracy (``null``, or ±1e308).
* **the mean over seeds** of one setting (optimizer, variant, learning rate) and metric: the
  last epoch's value of every finished, non-diverged seed, with a 95 % Student-t interval
  (:func:`optlab.stats.mean_interval`). Diverged and unfinished seeds are never averaged in as
  NaN and never dropped silently: :class:`SeedMean` lists them, its text says how many of how
  many, and ``diverged="raise"`` refuses to average when one diverged.

Every problem with a file is a :class:`ResultsFormatError` whose message is one line naming the
file, what is wrong and what to do. No torch here: ``summary`` and the plots read results
without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .atomic import write_text_atomically
from .stats import Interval, binomial_se, mean_interval, paired_difference, verdict

__all__ = [
    "SCHEMA_VERSION", "FINISHED", "STATUSES", "NUMBERS", "CSV_COLUMNS",
    "ResultsFormatError", "DivergedSeedsError",
    "EpochRecord", "RunRecord", "ResultsDoc", "Setting", "SeedMean", "Comparison",
    "new_doc", "run_record", "run_key", "dumps", "csv_text", "write_results",
    "check_results_doc", "read_results_doc", "finished_runs", "parse_results", "load_results",
    "is_diverged", "mean_over_seeds", "compare_final", "compare_means", "images_measured",
]

#: The version of the layout this module writes and reads (the module docstring describes it).
SCHEMA_VERSION = 1
#: Versions this module reads; a file without ``schema_version`` is version 1.
READABLE_VERSIONS = (1,)

#: Statuses of a run that will not change any more (``"running"`` is the only other one).
FINISHED = ("ok", "diverged")
STATUSES = (*FINISHED, "running")

#: The per-epoch values that the readers compute with: numbers or null.
NUMBERS = ("epoch", "train_loss", "train_acc", "train_acc_running", "val_loss", "val_acc",
           "test_loss", "test_acc", "seconds", "grad_evals", "examples", "epochs_of_gradients")
#: The metrics whose non-finite value marks a run as diverged.
DIVERGENCE_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
#: How :func:`run_record`'s JSON writes ±inf (JSON has no infinity).
JSON_INF = 1e308

CSV_COLUMNS = ("phase", "variant", "optimizer", "lr", "seed", "status", "epoch", "train_loss",
               "train_acc", "train_acc_running", "val_loss", "val_acc", "test_loss",
               "test_acc", "seconds",
               "grad_evals", "examples", "epochs_of_gradients", "budget")

_FOREIGN = ("it is likely from an interrupted or foreign run: move it away (or give another "
            "--out); compare --force keeps it as results.json.bak and starts over")


class ResultsFormatError(ValueError):
    """A file that is not a readable results document; the message is one line."""


class DivergedSeedsError(ValueError):
    """``mean_over_seeds(..., diverged="raise")`` met a diverged seed; the message names it."""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def new_doc(config: Mapping[str, Any]) -> dict[str, Any]:
    """An empty results document of the current schema for the experiment ``config``."""
    return {"schema_version": SCHEMA_VERSION, "provenance": {}, "config": dict(config),
            "runs": []}


def run_record(result: Any, phase: str, threads: int, variant: str | None = None
               ) -> dict[str, Any]:
    """The record of one run: ``result`` is an ``engine.RunResult`` (anything with
    ``as_dict()``), tagged with its phase, variant and thread count."""
    return {"phase": phase, "variant": variant, **result.as_dict(), "threads": threads}


def run_key(run: Mapping[str, Any]) -> str:
    """Identity of a run for ``--resume``: phase, variant, optimizer, hyperparameters, seed,
    and its initialization when recorded (files written before runs recorded it have none)."""
    ident = {k: run.get(k) for k in ("phase", "variant", "optimizer", "hparams", "seed")}
    if run.get("init") is not None:
        ident["init"] = run["init"]
    return json.dumps(ident, sort_keys=True)


def dumps(doc: Mapping[str, Any]) -> str:
    """The text of ``results.json`` for ``doc`` (its ``schema_version`` first; no NaN)."""
    out = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in doc.items()
                                                if k != "schema_version"}}
    return json.dumps(out, indent=1, allow_nan=False) + "\n"


def csv_text(doc: Mapping[str, Any]) -> str:
    """The tidy ``results.csv`` of ``doc``: one row per run (selection runs first) and epoch."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in _all_runs(doc):
        for e in r["epochs"]:
            w.writerow({"phase": r.get("phase"), "variant": r.get("variant"),
                        "optimizer": r["optimizer"], "lr": r["hparams"].get("lr"),
                        "seed": r["seed"], "status": r["status"], **e})
    return buf.getvalue()


def write_results(doc: Mapping[str, Any], directory: str | os.PathLike) -> Path:
    """Write ``directory/results.json`` and ``results.csv`` atomically; the JSON's path."""
    d = Path(directory)
    text = dumps(doc)
    write_text_atomically(d / "results.json", text)
    write_text_atomically(d / "results.csv", csv_text(doc))
    return d / "results.json"


def _all_runs(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((doc.get("selection") or {}).get("runs", [])) + list(doc.get("runs", []))


# --------------------------------------------------------------------------------------------
# Checking and reading
# --------------------------------------------------------------------------------------------


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
    if not isinstance(run.get("phase", "final"), str):
        return f"{where} has a 'phase' that is not a string"
    if not (run.get("variant") is None or isinstance(run.get("variant"), str)):
        return f"{where} has a 'variant' that is neither a string nor null"
    if not _is_number_or_none(run["hparams"].get("lr")):
        return f"{where} has a 'lr' that is not a number"
    for j, e in enumerate(run["epochs"]):
        if not isinstance(e, dict):
            return f"{where} epoch {j + 1} is {type(e).__name__}, not an object"
        for key in NUMBERS:
            if not _is_number_or_none(e.get(key)):
                return f"{where} epoch {j + 1} has a {key!r} that is not a number"
    return None


def _is_number_or_none(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _schema_problem(doc: dict[str, Any]) -> str | None:
    version = doc.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return f"its 'schema_version' is {version!r}, not an integer"
    if version not in READABLE_VERSIONS:
        return (f"it is schema version {version}; this optlab reads version "
                f"{', '.join(map(str, READABLE_VERSIONS))}: read it with the optlab that wrote "
                "it, or regenerate it with python -m optlab compare")
    return None


def check_results_doc(doc: Any, label: str = "results.json") -> dict[str, Any]:
    """``doc`` itself if it has the shape of the schema (see the module docstring);
    :class:`ResultsFormatError` naming the first thing that is wrong otherwise."""
    problem = None
    if not isinstance(doc, dict):
        problem = f"it holds {type(doc).__name__ if doc is not None else 'null'}, not an object"
    elif (problem := _schema_problem(doc)) is not None:
        raise ResultsFormatError(f"{label} cannot be read ({problem})")
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
    """The checked document (a dict) of the results file ``path`` (not a directory)."""
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


def finished_runs(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{run key: run} of every finished run (``ok`` or ``diverged``), selection runs included."""
    return {run_key(r): r for r in _all_runs(doc) if r.get("status") in FINISHED}


# --------------------------------------------------------------------------------------------
# Typed records
# --------------------------------------------------------------------------------------------


def _metric(x: Any) -> float:
    """A stored metric as a float: null (a NaN) is NaN, ±1e308 (an infinity) is ±inf."""
    if x is None:
        return math.nan
    v = float(x)
    return math.copysign(math.inf, v) if abs(v) >= JSON_INF else v


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a run (for L-BFGS, one evaluation). A metric is ``None`` when it was not
    measured (no validation split), NaN or ±inf when it was non-finite."""

    epoch: int | None
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    seconds: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # grad_evals, budget, eval_seconds...

    _FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
               "seconds")

    @classmethod
    def from_dict(cls, e: Mapping[str, Any]) -> EpochRecord:
        kw: dict[str, Any] = {k: _metric(e[k]) for k in cls._FIELDS if k in e}
        extra = {k: v for k, v in e.items() if k not in cls._FIELDS and k != "epoch"}
        return cls(epoch=e.get("epoch"), extra=extra, **kw)

    def value(self, name: str) -> Any:
        """The metric or extra value ``name`` (``None`` when absent)."""
        if name in self._FIELDS or name == "epoch":
            return getattr(self, name)
        return self.extra.get(name)

    @property
    def finite(self) -> bool:
        """No measured loss or accuracy is NaN or infinite."""
        return all(v is None or math.isfinite(v)
                   for v in (getattr(self, k) for k in DIVERGENCE_METRICS))


@dataclass(frozen=True)
class Setting:
    """What the seeds of one comparison row share: optimizer, variant, learning rate, and the
    initial weights in an ablation over them (``init``; ``None`` otherwise)."""

    optimizer: str
    variant: str | None = None
    lr: float | None = None
    init: str | None = None

    @property
    def label(self) -> str:
        return (self.optimizer + (f" {self.variant}" if self.variant else "")
                + (f" {self.init} init" if self.init else ""))


@dataclass(frozen=True)
class RunRecord:
    """One run of the file, checked and typed."""

    optimizer: str
    hparams: Mapping[str, Any]
    seed: int
    status: str  # as stored: "ok", "diverged" or "running"
    epochs: tuple[EpochRecord, ...]
    phase: str = "final"
    variant: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # threads, compile_seconds, schedule...
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    ablation_init: str | None = None  # the run's init when the file compares inits

    @classmethod
    def from_dict(cls, r: Mapping[str, Any], *, init_ablation: bool = False) -> RunRecord:
        """``init_ablation``: the file compares initializations (``config.inits``), so a run's
        ``init`` is part of its :class:`Setting`."""
        known = ("optimizer", "hparams", "seed", "status", "epochs", "phase", "variant")
        return cls(optimizer=r["optimizer"], hparams=dict(r["hparams"]), seed=r["seed"],
                   status=r["status"], epochs=tuple(EpochRecord.from_dict(e) for e in r["epochs"]),
                   phase=r.get("phase") or "final", variant=r.get("variant"),
                   extra={k: v for k, v in r.items() if k not in known}, raw=r,
                   ablation_init=r.get("init") if init_ablation else None)

    @property
    def lr(self) -> float | None:
        return self.hparams.get("lr")

    @property
    def setting(self) -> Setting:
        return Setting(self.optimizer, self.variant, self.lr, self.ablation_init)

    @property
    def key(self) -> str:
        return run_key(self.raw or {"phase": self.phase, "variant": self.variant,
                                    "optimizer": self.optimizer, "hparams": dict(self.hparams),
                                    "seed": self.seed})

    @property
    def finished(self) -> bool:
        """The run will not change any more (status ``ok`` or ``diverged``)."""
        return self.status in FINISHED

    @property
    def diverged(self) -> bool:
        """Status ``diverged``, or finished with a non-finite loss or accuracy at the end."""
        return self.status == "diverged" or (
            self.finished and bool(self.epochs) and not self.epochs[-1].finite)

    @property
    def outcome(self) -> Literal["finished", "diverged", "unfinished"]:
        """``"finished"`` (and usable), ``"diverged"`` or ``"unfinished"``."""
        if self.diverged:
            return "diverged"
        return "finished" if self.finished else "unfinished"

    @property
    def train_seconds(self) -> float:
        """Training time of the run, evaluation excluded: the recorded ``train_seconds`` (an
        L-BFGS run, whose per-record ``seconds`` are cumulative), else the sum of its epochs'
        ``seconds`` (for a stack, the whole stack's time)."""
        if isinstance(self.extra.get("train_seconds"), (int, float)):
            return float(self.extra["train_seconds"])
        return float(sum(e.seconds for e in self.epochs
                         if e.seconds is not None and math.isfinite(e.seconds)))

    def final(self, metric: str) -> float | None:
        """The last epoch's ``metric`` (``None`` without epochs or when not measured)."""
        return self.epochs[-1].value(metric) if self.epochs else None


@dataclass(frozen=True)
class ResultsDoc:
    """A checked results file: its config (a dict: unknown keys are kept), provenance, runs
    (the final phase), the grid-search runs of the ``tuned`` preset, and the raw sections."""

    config: Mapping[str, Any]
    provenance: Mapping[str, Any]
    runs: tuple[RunRecord, ...]
    selection_runs: tuple[RunRecord, ...] = ()
    selection: Mapping[str, Any] | None = None
    budgets: Mapping[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    source: str = "results.json"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """The command that wrote it ran to its end (``provenance.finished`` recorded)."""
        return bool(self.provenance.get("finished"))

    def runs_of(self, phase: str = "final") -> tuple[RunRecord, ...]:
        """The runs of ``phase``: ``"final"`` (the default) or ``"selection"``."""
        if phase == "selection":
            return self.selection_runs
        return tuple(r for r in self.runs if r.phase == phase)

    def settings(self, phase: str = "final") -> list[Setting]:
        """The distinct settings of ``phase``, in the order of the file."""
        return list(dict.fromkeys(r.setting for r in self.runs_of(phase)))

    def setting(self, name: str | Setting, phase: str = "final") -> Setting:
        """The one setting named ``name`` (an optimizer, or ``"optimizer variant"``, e.g.
        ``"lbfgs full-batch"``); ``KeyError`` with the choices when none or several match."""
        if isinstance(name, Setting):
            return name
        settings = self.settings(phase)
        hits = [s for s in settings if s.label == name] or [
            s for s in settings if s.optimizer == name]
        if len(hits) != 1:
            choices = ", ".join(f"{s.label!r} (lr {s.lr:g})" if s.lr is not None
                                else repr(s.label) for s in settings)
            how = "no setting" if not hits else f"{len(hits)} settings"
            raise KeyError(f"{self.source}: {how} named {name!r}; choose one of {choices}")
        return hits[0]


def parse_results(doc: Any, source: str = "results.json") -> ResultsDoc:
    """The typed :class:`ResultsDoc` of a parsed document (checked first)."""
    if isinstance(doc, ResultsDoc):
        return doc
    d = check_results_doc(doc, source)
    sel = d.get("selection")
    ablation = bool((d.get("config") or {}).get("inits"))
    return ResultsDoc(
        config=d.get("config") or {}, provenance=d.get("provenance") or {},
        runs=tuple(RunRecord.from_dict(r, init_ablation=ablation) for r in d["runs"]),
        selection_runs=tuple(RunRecord.from_dict(r) for r in (sel or {}).get("runs", [])),
        selection=sel, budgets=d.get("budgets"),
        schema_version=d.get("schema_version", 1), source=source, raw=d)


def load_results(path: str | os.PathLike | Mapping[str, Any] | ResultsDoc) -> ResultsDoc:
    """The typed, checked results at ``path``: a ``results.json``, the directory holding one
    (compare's ``--out``), or an already parsed document. Find a committed preset's file with
    ``optlab.paths.results_file(preset)``."""
    if isinstance(path, ResultsDoc):
        return path
    if isinstance(path, Mapping):
        return parse_results(dict(path))
    p = Path(path)
    if p.is_dir():
        if not (p / "results.json").is_file():
            raise ResultsFormatError(f"no results.json in {p}: give the --out directory of a "
                                     "python -m optlab compare run")
        p = p / "results.json"
    elif not p.exists():
        raise ResultsFormatError(f"{p}: no such file or directory; give a results.json or the "
                                 "directory holding it")
    return parse_results(read_results_doc(p), str(p))


def is_diverged(run: Mapping[str, Any] | RunRecord) -> bool:
    """The one definition of a diverged run (see the module docstring)."""
    rec = run if isinstance(run, RunRecord) else RunRecord.from_dict(run)
    return rec.diverged


# --------------------------------------------------------------------------------------------
# The mean over seeds, and comparisons
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedMean:
    """The mean over seeds of one setting's final ``metric``: ``values`` holds every finished,
    non-diverged seed's value; diverged and unfinished seeds are listed, not averaged."""

    setting: Setting
    metric: str
    values: Mapping[int, float]
    diverged_seeds: tuple[int, ...] = ()
    unfinished_seeds: tuple[int, ...] = ()
    level: float = 0.95

    @property
    def interval(self) -> Interval | None:
        """Mean and Student-t interval over ``values`` (``None`` when no seed has a value)."""
        if not self.values:
            return None
        return mean_interval(list(self.values.values()), self.level)

    @property
    def mean(self) -> float:
        iv = self.interval
        return math.nan if iv is None else iv.mean

    @property
    def n_seeds(self) -> int:
        return len(self.values) + len(self.diverged_seeds) + len(self.unfinished_seeds)

    def note(self) -> str:
        """``""``, or e.g. ``"1 of 3 seeds diverged (seed 2), left out"``."""
        parts = []
        for seeds, what in ((self.diverged_seeds, "diverged"),
                            (self.unfinished_seeds, "unfinished")):
            if seeds:
                parts.append(f"{len(seeds)} of {self.n_seeds} seeds {what} "
                             f"(seed{'s' if len(seeds) > 1 else ''} "
                             f"{', '.join(map(str, seeds))}), left out")
        return "; ".join(parts)

    def __str__(self) -> str:
        iv = self.interval
        text = "no finished seed" if iv is None else _interval_text(iv)
        note = self.note()
        return f"{self.setting.label} {self.metric}: {text}" + (f"; {note}" if note else "")


def _interval_text(iv: Interval, scale: float = 1.0, unit: str = "", signed: bool = False
                   ) -> str:
    fmt = "+.2f" if signed else ".4f" if scale == 1 else ".2f"
    m = f"{iv.mean * scale:{fmt}}{unit}"
    if iv.n < 2 or not math.isfinite(iv.low):
        return f"{m} (n = {iv.n}, no interval)"
    return (f"{m} [{iv.low * scale:{fmt}}, {iv.high * scale:{fmt}}] "
            f"({iv.level * 100:g} % t-interval, n = {iv.n})")


def mean_over_seeds(doc: Any, setting: str | Setting, metric: str = "test_acc", *,
                    phase: str = "final", diverged: Literal["exclude", "raise"] = "exclude",
                    level: float = 0.95) -> SeedMean:
    """The mean over seeds of ``setting``'s last-epoch ``metric`` (see :class:`SeedMean`).

    ``diverged="exclude"`` (default): diverged seeds are left out of the mean and listed in the
    result (its text says so); ``diverged="raise"``: :class:`DivergedSeedsError` when a seed
    diverged. Unfinished seeds (status ``running``) are always listed apart."""
    if diverged not in ("exclude", "raise"):
        raise ValueError(f"mean_over_seeds: diverged must be 'exclude' or 'raise'; got "
                         f"{diverged!r}")
    res = load_results(doc)
    s = res.setting(setting, phase)
    runs = sorted((r for r in res.runs_of(phase) if r.setting == s), key=lambda r: r.seed)
    values: dict[int, float] = {}
    div, unf = [], []
    for r in runs:
        if r.outcome == "unfinished":
            unf.append(r.seed)
        elif r.outcome == "diverged":
            div.append(r.seed)
        else:
            v = r.final(metric)
            if v is not None:
                values[r.seed] = float(v)
    if div and diverged == "raise":
        raise DivergedSeedsError(f"{res.source}: {s.label} diverged on seed"
                                 f"{'s' if len(div) > 1 else ''} {', '.join(map(str, div))} "
                                 f"of {len(runs)}; its mean {metric} over seeds is undefined "
                                 "(use diverged='exclude' to average the others)")
    return SeedMean(s, metric, values, tuple(div), tuple(unf), level)


def images_measured(doc: Any, metric: str = "test_acc") -> int | None:
    """How many images ``metric`` (``test_*``, ``val_*`` or ``train_*``) was measured on, from
    the file's config; ``None`` when unknown."""
    res = load_results(doc)
    cfg = res.config
    val = cfg.get("val_size") or (res.selection or {}).get("val_size")
    if metric.startswith("val"):
        return int(val) if val else None
    part = 0 if metric.startswith("train") else 1
    if cfg.get("dataset") == "synthetic":
        size = cfg.get("synthetic_size")
        return int(size[part]) if isinstance(size, list) and len(size) == 2 else None
    from .data import SPECS

    spec = SPECS.get(str(cfg.get("dataset", "mnist")))
    if spec is None:
        return None
    return spec.n_test if part else spec.n_train


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` on the seeds they share: the paired difference ``a - b`` with its
    t-interval, the binomial standard error of one accuracy, and the verdict."""

    a: SeedMean
    b: SeedMean
    diff: Interval
    seeds: tuple[int, ...]
    left_out: tuple[int, ...]
    n_images: int | None
    binomial_se: float | None
    verdict: str
    reason: str

    @property
    def noise(self) -> float:
        """Two binomial standard errors of one accuracy (0 for a loss)."""
        return 2 * self.binomial_se if self.binomial_se is not None else 0.0

    def brief(self) -> str:
        """The difference, its interval and the verdict, for a sentence: e.g. ``+0.02 points
        (95 % t-interval −0.31 to +0.36 over 3 paired seeds): unresolved``."""
        pct = self.a.metric.endswith("acc")
        scale, unit = (100.0, " points") if pct else (1.0, "")
        d = self.diff

        def num(x: float) -> str:
            return f"{x * scale:+.2f}".replace("-", "\u2212")

        if d.n < 2 or not math.isfinite(d.low):
            where = "one paired seed, no interval"
        else:
            where = (f"{d.level * 100:g} % t-interval {num(d.low)} to {num(d.high)} over "
                     f"{d.n} paired seeds")
        return f"{num(d.mean)}{unit} ({where}): {self.verdict}"

    def __str__(self) -> str:
        pct = self.a.metric.endswith("acc")
        scale, unit = (100.0, " points") if pct else (1.0, "")
        text = (f"{self.a.setting.label} - {self.b.setting.label}: "
                f"{_interval_text(self.diff, scale, unit, signed=True)}"
                f" over paired seeds {', '.join(map(str, self.seeds))}")
        if self.left_out:
            text += f" (seeds {', '.join(map(str, self.left_out))} left out: diverged or " \
                    "unfinished)"
        return f"{text}; {self.verdict}: {self.reason}"


def compare_final(doc: Any, a: str | Setting, b: str | Setting, metric: str = "test_acc", *,
                  phase: str = "final", level: float = 0.95) -> Comparison:
    """Paired comparison of the last-epoch ``metric`` of settings ``a`` and ``b`` over the
    seeds both finished without diverging (a seed fixes the initial network and the batch
    order for every optimizer, so ``a_i - b_i`` removes the seed's own effect).

    Verdict (:func:`optlab.stats.verdict`): **resolved** only when the t-interval of the mean
    difference excludes 0 *and* the difference exceeds two binomial standard errors of one
    accuracy on the file's ``n`` test (or validation) images, at the pair's mean accuracy;
    otherwise **unresolved** (the interval contains 0, the difference is inside the
    measurement noise of one test set, or fewer than two paired seeds)."""
    res = load_results(doc)
    ma = mean_over_seeds(res, a, metric, phase=phase, level=level)
    mb = mean_over_seeds(res, b, metric, phase=phase, level=level)
    n_images = images_measured(res, metric) if metric.endswith("acc") else None
    try:
        return compare_means(ma, mb, n_images)
    except ValueError as e:
        raise ValueError(f"{res.source}: {e}") from None


def compare_means(ma: SeedMean, mb: SeedMean, n_images: int | None = None) -> Comparison:
    """The paired comparison of two :class:`SeedMean` over their shared seeds, with
    :func:`compare_final`'s verdict rule; ``n_images``: how many images one accuracy was
    measured on (``None``: no binomial noise, e.g. for a loss). For values that are not a
    setting's last epoch (an L-BFGS run at a budget), build the SeedMeans directly:
    ``SeedMean(Setting("adam"), "test_acc", {seed: value, ...})``."""
    level = ma.level
    seeds = tuple(sorted(set(ma.values) & set(mb.values)))
    left_out = tuple(sorted((set(ma.values) | set(mb.values) | set(ma.diverged_seeds)
                             | set(mb.diverged_seeds) | set(ma.unfinished_seeds)
                             | set(mb.unfinished_seeds)) - set(seeds)))
    if not seeds:
        raise ValueError(f"{ma.setting.label} and {mb.setting.label} share no "
                         "finished, non-diverged seed; nothing to compare")
    diff = paired_difference([ma.values[s] for s in seeds], [mb.values[s] for s in seeds],
                             level)
    se = None
    if n_images:
        p = (sum(ma.values[s] for s in seeds) + sum(mb.values[s] for s in seeds)) / (
            2 * len(seeds))
        se = binomial_se(min(max(p, 0.0), 1.0), n_images)
    noise = 2 * se if se is not None else 0.0
    v = verdict(diff, noise)
    if diff.n < 2:
        reason = "one paired seed gives no interval"
    elif not diff.excludes(0.0):
        reason = "the interval contains 0"
    elif abs(diff.mean) <= noise:
        reason = (f"the difference is within 2 binomial standard errors of one accuracy on "
                  f"{n_images:,} images ({noise * 100:.2f} points)")
    else:
        reason = "the interval excludes 0 and the difference exceeds 2 binomial standard " \
                 "errors" + (f" ({noise * 100:.2f} points)" if se is not None else "")
    return Comparison(ma, mb, diff, seeds, left_out, n_images, se, v, reason)

