"""``python -m optlab compare``: presets, the run loop, and writing ``results.json`` / ``.csv``.

:func:`run_comparison` takes a :class:`CompareConfig` and writes ``OUT/results.json`` (provenance,
config, one record per run with its per-epoch metrics) and a tidy ``OUT/results.csv`` beside it
(one row per run and epoch), in the format that :mod:`optlab.results` owns (its schema, writer
and reader; this module keeps the lock, the resume rules and the run loop). Both are rewritten
atomically (temporary file + ``os.replace``)
after every epoch, and each stack's state (parameters, rule states, batch-order generator, epoch)
is checkpointed atomically beside them (``OUT/.checkpoint-<phase>-seed<S>.pt``, removed when the
stack finishes), so an interruption loses at most the epoch under way: ``resume=True`` keeps the
runs already finished (same optimizer, hyperparameters, seed and configuration) and continues an
unfinished stack from its checkpoint, to the same numbers as an uninterrupted run (bit for bit
on the CPU).

Nothing finished is ever lost: the directory is locked while a run writes into it (``OUT/.lock``
holds the PID), a file is never rewritten with fewer finished runs than it had, and a run into
a directory that holds results refuses unless it resumes them (same configuration) or is
forced (``force=True``; the old file is kept as ``results.json.bak``, or ``.bak2``,
``.bak3``... when an earlier one is there).

Presets (explicit settings override them):

* ``paper`` — the first paper: SGD, RMSprop, Adam, AdaGrad; lr 0.001 for all; batch 32;
  10 epochs; 3 seeds.
  The paper does not say which framework it used; run it under both conventions with
  ``--preset paper --out results/paper`` and ``--preset paper --conventions keras --out
  results/paper-keras``.
* ``init`` — the initialization ablation: SGD and Adam at the paper's lr 0.001, batch 32,
  10 epochs, seeds 0-2, each from PyTorch's ``nn.Linear`` weights, Glorot-uniform and
  He-uniform (one stack per seed and init; every run records its ``init``).
* ``tuned`` — every first-order rule of the core, each at the learning rate of a 5-point log
  grid that gives the best validation accuracy, **averaged over the selection seeds 0-2**, at
  the **full horizon** (validation = the last 10,000 training images, ``select_epochs`` =
  ``epochs`` = 10), then **5 fresh seeds** (3-7) x 10 epochs at that rate on the full training
  set. The grid search is stored in the ``"selection"`` section, with the pick that a short
  horizon would have made from the same runs (``short_epochs`` = 3: the mean over the
  selection seeds, and seed 0 alone, as an earlier version of this preset did), so the
  short-horizon bias is on record.
* ``lbfgs`` — L-BFGS (full batch, and large batches) against Adam (batch 32, lr 0.001) at equal
  budgets of example-gradients and of training time (both recorded in ``"budgets"``).
* ``generalization`` — held-out accuracy of SGD with momentum against the adaptive rules
  (Adam, AdamW, AMSGrad, Lion), each with its own conventions (:data:`GENERALIZATION_HPARAMS`);
  batch 32; 10 epochs; 3 seeds. Run once per data set (``--dataset mnist`` and
  ``--dataset fashion-mnist``).
* ``batch-size`` — plain SGD, lr 0.02 at batch 32, 10 epochs, 2 seeds: the base of chapter 14's
  sweep, which reruns it with ``--batch-size B --lr sgd=...`` (the rate scaled with ``B``).
* ``schedules`` — plain SGD, lr 0.1, batch 32, 3 epochs, 2 seeds: chapter 14 runs it with each
  ``--schedule`` (none, step, cosine, inverse_time).
* ``warmup`` — Adam at lr 0.03 with a cosine decay, batch 32, 3 epochs, 3 seeds: chapter 14 runs
  it with and without ``--warmup-steps``.

Any preset takes a learning-rate ``schedule`` (text such as ``"cosine"`` or
``"step:every=1875,gamma=0.5"``, :func:`optlab.schedules.parse_schedule`, applied to each rule's
own rate), ``warmup_steps`` (a linear warmup, over a constant rate when there is no schedule)
and ``clip_norm`` (global gradient-norm clipping per model). They apply to the first-order rules
(L-BFGS keeps its line search). A schedule's ``total`` defaults to the phase's number of updates
(epochs x batches per epoch: the whole run, or the whole grid-search run). The configuration
records the three as given; each run records its schedule's ``describe()`` and ``clip_norm``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import engine
from .engine import ModelSpec, RunResult
from .results import (
    ResultsFormatError,
    finished_runs,
    new_doc,
    read_results_doc,
    run_key,
    write_results,
)
from .results import run_record as _run_record
from .rules import FIRST_ORDER, get_rule, resolve_hparams
from .schedules import Schedule

PAPER_OPTIMIZERS = ("sgd", "rmsprop", "adam", "adagrad")

#: L-BFGS settings of the ``lbfgs`` preset: (label, batch size or None for the full training
#: set, optimizer hyperparameters).
LBFGS_VARIANTS: tuple[tuple[str, int | None, dict[str, Any]], ...] = (
    ("full-batch", None, {"lr": 1.0, "max_iter": 5, "history_size": 10,
                          "line_search_fn": "strong_wolfe"}),
    ("batch-6000", 6000, {"lr": 1.0, "max_iter": 5, "history_size": 10,
                          "line_search_fn": "strong_wolfe"}),
)
# max_iter=1 with the full batch does not train this network (nor does torch.optim.LBFGS with
# the same settings: after the first, tiny steepest-descent step the line search returns the
# same point); 5 iterations per step(closure) keeps the budget granularity fine enough.

#: The L-BFGS run of a preset other than ``lbfgs`` (``--optimizers adam,lbfgs``).
LBFGS_DEFAULT_VARIANT: dict[str, Any] = {
    "label": "full-batch", "batch_size": None,
    "hparams": {"lr": 1.0, "max_iter": 5, "line_search_fn": "strong_wolfe"}}

#: Hyperparameters of the ``generalization`` preset, each rule with its own conventions:
#: momentum at the rate chosen for it in ``results/tuned`` (MNIST, 3-epoch grid); Adam, AdamW
#: and AMSGrad at ``torch.optim``'s default rate; AdamW with decoupled decay 0.1 (a decay that
#: acts within 10 epochs: ``lr * weight_decay`` = 1e-4 per step); Lion with Chen et al.'s
#: convention, a rate 10x smaller and a decay 10x larger than AdamW's (the same
#: ``lr * weight_decay``).
GENERALIZATION_HPARAMS: dict[str, dict[str, Any]] = {
    "momentum": {"lr": 1e-2},
    "adam": {"lr": 1e-3},
    "adamw": {"lr": 1e-3, "weight_decay": 0.1},
    "amsgrad": {"lr": 1e-3},
    "lion": {"lr": 1e-4, "weight_decay": 1.0},
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"optimizers": list(PAPER_OPTIMIZERS), "lr": {"*": 1e-3}, "batch_size": 32,
              "epochs": 10, "seeds": [0, 1, 2]},
    "init": {"optimizers": ["sgd", "adam"], "lr": {"*": 1e-3}, "batch_size": 32,
             "epochs": 10, "seeds": [0, 1, 2], "inits": ["pytorch", "glorot", "he"]},
    "tuned": {"optimizers": list(FIRST_ORDER), "lr": None, "batch_size": 32, "epochs": 10,
              "seeds": [3, 4, 5, 6, 7], "val_size": 10_000, "select_epochs": None,
              "select_seeds": [0, 1, 2], "short_epochs": 3},
    "lbfgs": {"optimizers": ["adam", "lbfgs"], "lr": {"adam": 1e-3}, "batch_size": 32,
              "epochs": 10, "seeds": [0, 1, 2]},
    "generalization": {
        "optimizers": list(GENERALIZATION_HPARAMS),
        "lr": {o: hp["lr"] for o, hp in GENERALIZATION_HPARAMS.items()},
        "hparams": {o: {k: v for k, v in hp.items() if k != "lr"}
                    for o, hp in GENERALIZATION_HPARAMS.items() if len(hp) > 1},
        "batch_size": 32, "epochs": 10, "seeds": [0, 1, 2]},
    # chapter 14's batch-size sweep: one run per (--batch-size, --lr) pair, B = 32 .. 4096,
    # the rate scaled from 0.02 at B = 32 linearly or by the square root (results/batch-size/)
    "batch-size": {"optimizers": ["sgd"], "lr": {"*": 0.02}, "batch_size": 32, "epochs": 10,
                   "seeds": [0, 1]},
    # chapter 14's schedules: plain SGD at 0.1, rerun with --schedule step/cosine/inverse_time
    "schedules": {"optimizers": ["sgd"], "lr": {"*": 0.1}, "batch_size": 32, "epochs": 3,
                  "seeds": [0, 1]},
    # chapter 14's warmup: Adam at 0.03 (30x its default) with cosine decay, rerun with
    # --warmup-steps N
    "warmup": {"optimizers": ["adam"], "lr": {"*": 0.03}, "batch_size": 32, "epochs": 3,
               "seeds": [0, 1, 2], "schedule": "cosine"},
}


class ConfigError(ValueError):
    """A bad setting; the CLI prints its one-line message and exits with status 2."""


@dataclass
class CompareConfig:
    preset: str = "paper"
    optimizers: list[str] = field(default_factory=lambda: list(PAPER_OPTIMIZERS))
    lr: dict[str, float] | None = None  # per optimizer; "*" = all; None: grid (tuned)/defaults
    epochs: int = 10
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    batch_size: int = 32
    dataset: str = "mnist"
    data_dir: str | None = None
    device: str = "auto"
    threads: int | None = None
    compile: bool | None = None  # None: automatic
    val_size: int = 0
    select_epochs: int | None = 3  # None: the full horizon, ``epochs``
    select_seeds: list[int] | None = None  # None: the first of ``seeds``
    short_epochs: int | None = None  # also record the pick this shorter horizon would make
    grid: dict[str, list[float]] | None = None
    lbfgs_variants: list[dict[str, Any]] | None = None
    synthetic_size: tuple[int, int] = (2048, 512)
    conventions: str = "pytorch"  # whose defaults fill the hyperparameters (optlab.conventions)
    init: str | None = None  # the initial weights; None: the conventions' own (INIT_FOR)
    # per optimizer, hyperparameters other than lr that differ from the conventions' defaults
    hparams: dict[str, dict[str, Any]] | None = None
    inits: list[str] | None = None  # an ablation: every seed once per init (overrides init)
    schedule: str | None = None  # text form (optlab.schedules.parse_schedule); None: constant
    warmup_steps: int = 0  # linear warmup over this many updates (0: none)
    clip_norm: float | None = None  # global gradient-norm clipping per model (None: none)

    def schedule_for(self, lr: float, total_steps: int) -> Schedule | None:
        """The schedule of a model whose base rate is ``lr``, in a phase of ``total_steps``
        updates (the default ``total`` of a cosine); ``None`` for a constant rate."""
        text = self.schedule or ("constant" if self.warmup_steps else None)
        if text is None:
            return None
        from .schedules import parse_schedule

        return parse_schedule(text, lr, self.warmup_steps, total_steps=total_steps)

    def total_steps(self, n_train: int, epochs: int) -> int:
        """The number of updates of a phase on ``n_train`` images for ``epochs`` epochs."""
        return epochs * (n_train // self.batch_size)

    def hparams_for(self, name: str, lr: float | None) -> dict[str, Any]:
        """The hyperparameters ``name`` trains with: the conventions' defaults, then the
        preset's own for ``name`` (``hparams``), then ``lr``."""
        from .conventions import hparams_for

        own = dict((self.hparams or {}).get(name, {}))
        return hparams_for(name, self.conventions, **own,
                           **({"lr": lr} if lr is not None else {}))

    def lr_for(self, name: str) -> float | None:
        if not self.lr:
            return None
        return self.lr.get(name, self.lr.get("*"))

    def experiment(self) -> dict[str, Any]:
        """The settings that define the numbers (not where or how fast they are computed)."""
        d = asdict(self)
        for k in ("device", "threads", "compile", "data_dir"):
            d.pop(k)
        if d["hparams"] is None:  # files written before presets had their own hparams
            d.pop("hparams")
        for k in ("inits", "select_seeds", "short_epochs"):  # newer settings: absent if unused
            if d[k] is None:
                d.pop(k)
        for k, unused in (("schedule", None), ("warmup_steps", 0), ("clip_norm", None)):
            if d[k] == unused:  # absent when unused: files written before them still resume
                d.pop(k)
        return engine.jsonable(d)

    @property
    def selection_epochs(self) -> int:
        return self.epochs if self.select_epochs is None else self.select_epochs

    @property
    def selection_seeds(self) -> list[int]:
        return list(self.select_seeds) if self.select_seeds else [self.seeds[0]]

    def init_list(self) -> list[str]:
        """The initializations to run: the ablation's, else the one init."""
        return list(self.inits) if self.inits else [self.init or "pytorch"]


def make_config(preset: str | None = None, **overrides: Any) -> CompareConfig:
    """A :class:`CompareConfig` from a preset (default ``paper``) and explicit overrides
    (``None`` values are ignored); validates names and values (:class:`ConfigError`)."""
    preset = preset or "paper"
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    base: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v)
                            for k, v in PRESETS[preset].items()}
    base.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("optimizers") is not None:  # the preset's settings for rules not chosen go
        chosen = set(base["optimizers"])
        for key in ("lr", "hparams"):
            if overrides.get(key) is None and isinstance(base.get(key), dict):
                base[key] = {k: v for k, v in base[key].items() if k == "*" or k in chosen}
    cfg = CompareConfig(preset=preset, **base)
    from .conventions import CONVENTIONS, INIT_FOR
    from .mlp import INITS
    from .rules import OPTIMIZERS

    if cfg.conventions not in CONVENTIONS:
        raise ConfigError(f"--conventions: choose one of {', '.join(CONVENTIONS)}; "
                          f"got {cfg.conventions!r}")
    cfg.init = cfg.init or INIT_FOR[cfg.conventions]
    if cfg.init not in INITS:
        raise ConfigError(f"--init: choose one of {', '.join(INITS)}; got {cfg.init!r}")
    if cfg.inits is not None:
        if not cfg.inits or len(set(cfg.inits)) != len(cfg.inits):
            raise ConfigError("inits: give each initialization once")
        for name in cfg.inits:
            if name not in INITS:
                raise ConfigError(f"inits: choose from {', '.join(INITS)}; got {name!r}")
        if overrides.get("init") is not None:  # --init on the ablation preset: that init only
            cfg.inits = None
    if cfg.select_epochs is not None and cfg.select_epochs < 1:
        raise ConfigError(f"--select-epochs must be >= 1; got {cfg.select_epochs}")
    if cfg.short_epochs is not None and not 1 <= cfg.short_epochs:
        raise ConfigError(f"short_epochs must be >= 1; got {cfg.short_epochs}")
    if cfg.conventions != "pytorch":
        for name in cfg.optimizers:
            if name != "lbfgs" and name not in CONVENTIONS[cfg.conventions]:
                raise ConfigError(f"--conventions {cfg.conventions}: optlab has no "
                                  f"{cfg.conventions} form of {name}; use --conventions pytorch")
    if not cfg.optimizers:
        raise ConfigError("--optimizers: give at least one optimizer")
    for name in cfg.optimizers:
        if name not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {name!r}: choose from {', '.join(OPTIMIZERS)}")
    if len(set(cfg.optimizers)) != len(cfg.optimizers):
        raise ConfigError("--optimizers: each optimizer once")
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1; got {cfg.epochs}")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1; got {cfg.batch_size}")
    if not cfg.seeds:
        raise ConfigError("--seeds: give at least one seed")
    for seed in cfg.seeds + list(cfg.select_seeds or []):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
            raise ConfigError(f"--seeds: seed {seed} is out of range; a seed is an integer "
                              f"in 0 .. 2**62 - 1 (it seeds 64-bit generators)")
    twice = sorted({s for s in cfg.seeds if cfg.seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"--seeds: seed {', '.join(map(str, twice))} given twice (it would "
                          "train the same runs again); give each seed once")
    if cfg.lr:
        for name, v in cfg.lr.items():
            if name != "*" and name not in cfg.optimizers:
                raise ConfigError(f"--lr {name}=...: {name} is not among --optimizers "
                                  f"({','.join(cfg.optimizers)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"--lr must be a number; got {v!r}" + (
                    f" for {name}" if name != "*" else ""))
            if not (v > 0):  # catches NaN too
                raise ConfigError(f"--lr must be > 0; got {v:g}" + (
                    f" for {name}" if name != "*" else ""))
            if not FLOAT32_TINY <= v <= FLOAT32_MAX:  # the parameters are float32
                what = "0" if v < FLOAT32_TINY else "inf"
                raise ConfigError(f"--lr {v:g}" + (f" for {name}" if name != "*" else "")
                                  + f" is {what} in float32 (the parameters' type); give a "
                                  f"rate between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g}")
    if cfg.lr and (cfg.grid is not None or cfg.preset == "tuned"):
        raise ConfigError("--lr with --preset tuned: the tuned preset picks every learning rate "
                          "from its grid, so --lr would not be used; drop --lr, or use --preset "
                          "paper to fix the rates")
    for name in cfg.hparams or {}:
        if name not in cfg.optimizers:
            raise ConfigError(f"hparams for {name}: {name} is not among --optimizers "
                              f"({','.join(cfg.optimizers)})")
    for name in cfg.optimizers:  # the core's own validation of every hyperparameter
        if name != "lbfgs":
            lr = cfg.lr_for(name)
            own = (cfg.hparams or {}).get(name, {})
            try:
                resolve_hparams(name, **own, **({"lr": lr} if lr is not None else {}))
            except ValueError as e:
                raise ConfigError(str(e)) from None
    if cfg.dataset not in ("mnist", "fashion-mnist", "synthetic"):
        raise ConfigError(f"--dataset {cfg.dataset}: choose mnist, fashion-mnist or synthetic")
    from .data import DataError, check_data_dir

    try:
        check_data_dir(cfg.data_dir)
    except DataError as e:
        raise ConfigError(str(e)) from None
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"--threads must be >= 1; got {cfg.threads}")
    if cfg.preset == "tuned" and cfg.grid is None:
        cfg.grid = {o: list(get_rule(o).lr_grid) for o in cfg.optimizers if o != "lbfgs"}
    if cfg.grid is not None:  # a rule left out would run untuned yet be reported as tuned
        ungridded = [o for o in cfg.optimizers if o != "lbfgs" and not cfg.grid.get(o)]
        if ungridded:
            raise ConfigError(f"{ungridded[0]} has no learning-rate grid to tune over: give "
                              f"one (its Rule.lr_grid in optlab.rules) or drop it from "
                              f"--optimizers")
    if "lbfgs" in cfg.optimizers:
        if cfg.lbfgs_variants is None:
            cfg.lbfgs_variants = ([{"label": lab, "batch_size": bs, "hparams": dict(hp)}
                                   for lab, bs, hp in LBFGS_VARIANTS]
                                  if cfg.preset == "lbfgs" else [dict(LBFGS_DEFAULT_VARIANT)])
        if cfg.lr and "lbfgs" in cfg.lr:  # lbfgs=LR sets L-BFGS's own step (a "*" does not)
            for variant in cfg.lbfgs_variants:
                variant["hparams"] = {**variant["hparams"], "lr": cfg.lr["lbfgs"]}
    elif cfg.preset == "lbfgs":
        cfg.lbfgs_variants = None
    n_train = training_size(cfg)
    _check_controls(cfg, n_train)
    smallest = n_train
    if cfg.grid is not None:
        if cfg.dataset == "synthetic" and (cfg.val_size or 10_000) >= n_train:
            cfg.val_size = n_train // 6
        val = cfg.val_size or 10_000
        if not 0 < val < n_train:
            raise ConfigError(f"val_size must be in (0, {n_train}); got {val}")
        smallest = n_train - val
    if cfg.batch_size > smallest:
        raise ConfigError(f"--batch-size {cfg.batch_size} exceeds the {smallest:,} training "
                          f"images of {cfg.dataset}" + (" (less the validation split)"
                                                        if smallest < n_train else "")
                          + f"; give a batch size <= {smallest:,}")
    return cfg


def _check_controls(cfg: CompareConfig, n_train: int) -> None:
    """``schedule``, ``warmup_steps`` and ``clip_norm``: one :class:`ConfigError` line each."""
    from .clipping import check_clip_norm

    try:
        cfg.clip_norm = check_clip_norm(cfg.clip_norm)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    w = cfg.warmup_steps
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise ConfigError(f"warmup_steps must be an integer >= 0 (0: no warmup); got {w!r}")
    if cfg.schedule is not None and not str(cfg.schedule).strip():
        raise ConfigError("schedule is empty; give one such as 'cosine' or "
                          "'step:every=1000,gamma=0.5', or none for a constant rate")
    total = cfg.total_steps(n_train, cfg.epochs)
    try:
        cfg.schedule_for(1e-3, max(total, 1))
    except (TypeError, ValueError) as e:
        hint = ""
        if "total must" in str(e):
            hint = f" (or leave total out: it defaults to the run's {total:,} updates)"
        raise ConfigError(f"schedule {cfg.schedule!r}: {e}{hint}") from None


#: Seeds are below 2**62: they (plus offsets) seed torch's 64-bit generators.
MAX_SEED = 2**62
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32
FLOAT32_MAX = 3.4028234663852886e38


def training_size(cfg: CompareConfig) -> int:
    """The number of training images of ``cfg.dataset`` (known before loading it)."""
    if cfg.dataset == "synthetic":
        return int(cfg.synthetic_size[0])
    from .data import SPECS

    return SPECS[cfg.dataset].n_train


# --------------------------------------------------------------------------------------------
# Provenance and the results files
# --------------------------------------------------------------------------------------------


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device, dataset: Any, cfg: CompareConfig) -> dict[str, Any]:
    import numpy as np

    from . import __version__

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":  # pragma: no cover
        name = "Apple MPS"
    else:
        name = _cpu_name()
    prog = "python -m optlab" if Path(sys.argv[0]).name in ("__main__.py", "-m") else sys.argv[0]
    return {
        # quoted as a shell would need it, so that the recorded command reruns as it ran
        "command": " ".join([prog, shlex.join(sys.argv[1:])]).strip()
        if sys.argv and sys.argv[0] else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "optlab": __version__,
        "platform": platform.platform(),
        "device": device.type,
        "device_name": name,
        "cpu_cores": engine._cores(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg") else None,
        "threads": None,  # filled per run (each run records its own too)
        "compile": None,
        "compile_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "dataset": getattr(dataset, "name", cfg.dataset),
        "dataset_source": str(getattr(dataset, "source", None) or "") or None,
        "dataset_md5_ok": (True if getattr(dataset, "source", None) else None),
        "dtype": "float32",
    }


class OutputDir:
    """The ``--out`` directory, created if needed and locked for one writer: ``OUT/.lock``
    holds an exclusive ``flock`` (released by the kernel when the process ends, however it
    ends, so a lock left by a dead process never blocks) and the holder's PID."""

    def __init__(self, path: str | os.PathLike):
        text = os.fspath(path)
        if not text.strip():
            raise ConfigError("--out is empty; give a directory, e.g. --out runs/compare")
        self.path = Path(text).expanduser()
        what = f"--out {self.path}"
        if self.path.is_symlink() and not self.path.exists():
            raise ConfigError(f"{what} is a link to {os.readlink(self.path)}, which does not "
                              "exist (or the link loops); give a directory, or fix the link")
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{what} is a file, not a directory; give a directory (it is "
                              "created if missing)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"cannot use {what}: {e.strerror or e}"
                              f"{f' ({e.filename})' if e.filename else ''}; give a "
                              "writable directory") from None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            pid = self._lock.read().strip() or "unknown"
            self._lock.close()
            raise ConfigError(f"{what} is in use by another compare run (PID {pid}); wait for "
                              "it to finish, or give another --out") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        for tmp in self.path.glob(".*.tmp"):  # left by a killed writer (we hold the lock)
            if tmp.name.startswith((".results.", "..checkpoint-")):
                tmp.unlink(missing_ok=True)

    def release(self) -> None:
        self._lock.close()  # closing the file releases the flock

    def checkpoint(self, phase: str, seed: int, init: str | None = None) -> Path:
        tag = f"-{init}" if init else ""
        return self.path / f".checkpoint-{phase}-seed{seed}{tag}.pt"

    def remove_checkpoints(self) -> None:
        for p in self.path.glob(".checkpoint-*.pt"):
            p.unlink(missing_ok=True)


def _free_backup_name(path: Path) -> Path:
    """``results.json.bak``, or ``results.json.bak2``, ``.bak3``... when taken: a second
    ``--force`` must not replace the runs the first one kept."""
    candidate, n = path.with_name(path.name + ".bak"), 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.bak{n}")
    return candidate


class ResultsFile:
    """``results.json`` + ``results.csv`` in a locked :class:`OutputDir`, rewritten atomically
    on every save, never with fewer finished runs than the file had.

    A file already there is checked first (before any data is loaded): with ``resume`` its
    configuration must be ``cfg``'s and its finished runs are kept; without, a file holding runs
    is refused unless ``force`` (which moves it to ``results.json.bak``)."""

    def __init__(self, out: OutputDir, cfg: CompareConfig, *, resume: bool,
                 force: bool = False):
        self.out = out
        self.dir = out.path
        self.json_path = self.dir / "results.json"
        self.csv_path = self.dir / "results.csv"
        exp = cfg.experiment()
        self.doc: dict[str, Any] = new_doc(exp)
        self.previous: dict[str, dict[str, Any]] = {}
        self.resumed_from: str | None = None
        self.backup: Path | None = None
        self.ablation = cfg.inits is not None
        self._dirty = False
        if not (self.json_path.exists() or self.json_path.is_symlink()):
            self.on_disk: set[str] = set()
            out.remove_checkpoints()  # of a run whose results file was removed
            return
        try:
            old: dict[str, Any] | None = read_results_doc(self.json_path)
        except ResultsFormatError as e:
            if not force:
                raise ConfigError(str(e)) from None
            old = None
        if force:
            self.backup = _free_backup_name(self.json_path)
            os.replace(self.json_path, self.backup)
            out.remove_checkpoints()
            self.on_disk = set()
            return
        assert old is not None
        done = finished_runs(old)
        self.on_disk = set(done)
        same = old.get("config") == exp
        if not same and (resume or old["runs"] or old.get("selection", {}).get("runs")):
            diff = sorted(k for k in set(exp) | set(old.get("config", {}))
                          if exp.get(k) != old.get("config", {}).get(k))
            raise ConfigError(
                f"{self.json_path} holds results of another configuration (differs in: "
                f"{', '.join(diff)}); give another --out, or add --force to start over (the "
                "old file is kept as results.json.bak)")
        if not resume:
            if done:
                raise ConfigError(
                    f"{self.json_path} already holds {len(done)} finished run(s) of this "
                    "configuration; add --resume to complete it, or --force to start over "
                    "(the old file is kept as results.json.bak)")
            out.remove_checkpoints()
            self.on_disk = set()
            return
        self.previous = done
        self.doc["runs"] = [r for r in old["runs"] if run_key(r) in done]
        old_sel = [r for r in old.get("selection", {}).get("runs", []) if run_key(r) in done]
        if old_sel:
            self.doc["selection"] = {"runs": old_sel}
        self.resumed_from = old.get("provenance", {}).get("date")

    def finished(self, run: dict[str, Any]) -> dict[str, Any] | None:
        return self.previous.get(run_key(run))

    def checkpoint(self, phase: str, seed: int, init: str | None = None) -> Path:
        """Where the stack of ``seed`` (and ``init``, in an ablation over inits) in ``phase``
        keeps its state between epochs."""
        return self.out.checkpoint(phase, seed, init if self.ablation else None)

    def put(self, run: dict[str, Any], section: str = "runs") -> None:
        runs = (self.doc.setdefault("selection", {}).setdefault("runs", [])
                if section == "selection" else self.doc["runs"])
        key = run_key(run)
        for i, r in enumerate(runs):
            if run_key(r) == key:
                runs[i] = run
                break
        else:
            runs.append(run)
        self._dirty = True

    def save(self) -> None:
        """Write both files (atomically). Refuses, as a bug, to write fewer finished runs than
        the file on disk holds."""
        done = set(finished_runs(self.doc))
        lost = self.on_disk - done
        if lost:  # a guard against a bug, not a user error
            raise RuntimeError(f"refusing to write {self.json_path}: {len(lost)} finished "
                               "run(s) on disk would be lost")
        write_results(self.doc, self.dir)  # the format is optlab.results's
        self.on_disk = done
        self._dirty = False


# --------------------------------------------------------------------------------------------
# The run loop
# --------------------------------------------------------------------------------------------


class _Interrupt:
    """Test hooks: ``OPTLAB_INTERRUPT_AFTER_UNITS=N`` raises ``KeyboardInterrupt`` after N
    finished units (stacks or L-BFGS runs), ``OPTLAB_INTERRUPT_AFTER_EPOCHS=N`` after N saved
    epochs of stacks, as if the user pressed Ctrl-C."""

    def __init__(self) -> None:
        v = os.environ.get("OPTLAB_INTERRUPT_AFTER_UNITS")
        self.left = int(v) if v else None
        v = os.environ.get("OPTLAB_INTERRUPT_AFTER_EPOCHS")
        self.epochs_left = int(v) if v else None

    def unit_done(self) -> None:
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                raise KeyboardInterrupt("OPTLAB_INTERRUPT_AFTER_UNITS")

    def epoch_done(self) -> None:
        if self.epochs_left is not None:
            self.epochs_left -= 1
            if self.epochs_left <= 0:
                raise KeyboardInterrupt("OPTLAB_INTERRUPT_AFTER_EPOCHS")


def load_data(cfg: CompareConfig) -> Any:
    from . import data as _data

    if cfg.dataset == "synthetic":
        return _data.synthetic_dataset(*cfg.synthetic_size, seed=0)
    return _data.load_dataset(cfg.dataset, data_dir=cfg.data_dir)


class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def line(self, msg: str) -> None:
        if self.quiet:
            return
        stream = sys.stderr if self.tty else sys.stdout
        try:
            print(msg, file=stream, flush=True)
        except (OSError, ValueError):  # a closed pipe (`| head -1`), a full disk: keep training
            self.quiet = True
            silence_stream(stream)

    def bar(self, total: int, desc: str) -> Any:
        if self.quiet or not self.tty:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover
            return None
        return tqdm(total=total, desc=desc, leave=False, unit="step")


def silence_stream(stream: Any) -> None:
    """Point ``stream``'s file descriptor at ``/dev/null``, so that writes (and the flush at
    exit) after its reader went away neither fail nor print "Exception ignored"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real file
        pass


def _train_group(cfg, specs, data, res, log, phase, section, interrupt, device_desc
                 ) -> list[dict[str, Any]]:
    """Train one stack (specs share a seed), saving after every epoch."""
    mode = engine.compile_mode_for(data.x_train.device, cfg.compile,
                                   len(specs) * (data.n_train // cfg.batch_size) * cfg.epochs)
    load0 = (res.doc["provenance"].get("load_average_at_start") or [None])[0]
    threads = engine.set_threads(
        cfg.threads or engine.default_threads(len(specs), mode is not None, load0))
    seed = specs[0].seed
    epochs = cfg.selection_epochs if phase == "selection" else cfg.epochs
    names = ",".join(dict.fromkeys(s.optimizer for s in specs))
    bar = log.bar(epochs * (data.n_train // cfg.batch_size),
                  f"{phase} seed {seed} [{len(specs)} models]")
    records: list[dict[str, Any]] = []

    def on_epoch(results: list[RunResult], epoch: int) -> None:
        nonlocal records
        records = [_run_record(r, phase, threads) for r in results]
        for rec in records:
            res.put(rec, section)
        res.save()
        e0 = results[0].epochs[-1] if results[0].epochs else None
        secs = f"{e0.seconds:.1f} s" if e0 else ""
        if len(results) <= 8:
            accs = "  ".join(
                f"{r.spec.optimizer}"
                + (f"@{r.spec.hparams.get('lr'):g}" if phase == "selection" else "")
                + (f" {r.epochs[-1].train_acc:.4f}/{r.epochs[-1].test_acc:.4f}"
                   if r.epochs and r.epochs[-1].epoch == epoch else f" {r.status}")
                for r in results)
        else:
            ok = [r for r in results if r.epochs and r.epochs[-1].epoch == epoch]
            best = max(ok, key=lambda r: r.epochs[-1].val_acc or r.epochs[-1].test_acc,
                       default=None)
            accs = (f"best {best.spec.optimizer}@{best.spec.hparams.get('lr'):g} "
                    f"{(best.epochs[-1].val_acc or best.epochs[-1].test_acc):.4f}"
                    if best else "all diverged")
        log.line(f"{phase} seed {seed} epoch {epoch}/{epochs} {secs} "
                 f"({len(results)} models, {threads} thr) train/test acc: {accs}")
        interrupt.epoch_done()

    t0 = time.perf_counter()
    checkpoint = res.checkpoint(phase, seed, specs[0].init)
    results = engine.train_stack(specs, data, epochs=epochs, batch_size=cfg.batch_size,
                                 compile=cfg.compile, on_epoch=on_epoch, progress=bar,
                                 checkpoint=checkpoint)
    if bar is not None:
        bar.close()
    for rec in (_run_record(r, phase, threads) for r in results):
        res.put(rec, section)
    res.save()  # the finished records first, then the checkpoint goes
    checkpoint.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    comp = results[0].compile_seconds
    log.line(f"{phase} seed {seed} ({specs[0].init} init): {names} done in {wall:.1f} s"
             + (f" (compile {comp:.1f} s)" if comp else " (eager)"))
    res.doc["provenance"]["threads"] = threads
    res.doc["provenance"]["compile"] = results[0].info.get("compile_mode")
    interrupt.unit_done()
    return [_run_record(r, phase, threads) for r in results]


def _spec(cfg: CompareConfig, name: str, lr: float | None, seed: int,
          total_steps: int, init: str | None = None) -> ModelSpec:
    """The model ``name`` at rate ``lr`` (None: the conventions' default) with the config's
    schedule (over ``total_steps`` updates by default) and clipping, from ``init`` (default:
    the config's)."""
    hp = cfg.hparams_for(name, lr)
    base_lr = resolve_hparams(name, **hp)["lr"]
    return ModelSpec(name, hp, seed, init or cfg.init or "pytorch",
                     schedule=cfg.schedule_for(base_lr, total_steps), clip_norm=cfg.clip_norm)


def _specs_for(cfg: CompareConfig, seed: int, lrs: dict[str, float | None],
               n_train: int, init: str | None = None) -> list[ModelSpec]:
    total = cfg.total_steps(n_train, cfg.epochs)
    return [_spec(cfg, o, lrs.get(o), seed, total, init) for o in cfg.optimizers
            if o != "lbfgs"]


def _to_train(specs, res, phase, log, cfg, data) -> list[ModelSpec]:
    """The specs of one seed's stack still to train: all of them when the stack has a
    checkpoint to continue from (a diverged run of it included: the stack goes on as one), else
    those without a finished run."""
    pending = _pending(specs, res, phase, log)
    checkpoint = res.checkpoint(phase, specs[0].seed, specs[0].init) if specs else None
    if checkpoint is None or not checkpoint.exists():
        return pending
    epochs = cfg.selection_epochs if phase == "selection" else cfg.epochs
    done = engine.checkpoint_epoch(checkpoint, specs, epochs=epochs,
                                   batch_size=cfg.batch_size, n_train=data.n_train)
    if pending and done is not None:
        log.line(f"resume: {phase} seed {specs[0].seed} continues after epoch {done} "
                 f"from {checkpoint.name}")
        return list(specs)
    checkpoint.unlink(missing_ok=True)  # finished, or written for other runs
    return pending


def _pending(specs, res, phase, log) -> list[ModelSpec]:
    out = []
    for s in specs:
        probe = {"phase": phase, "variant": None, "optimizer": s.optimizer,
                 "hparams": engine.jsonable(s.resolved()), "seed": s.seed, "init": s.init,
                 **engine.jsonable(s.controls())}
        prev = res.finished(probe)
        if prev is not None:
            res.put(prev, "selection" if phase == "selection" else "runs")
        else:
            out.append(s)
    skipped = len(specs) - len(out)
    if skipped:
        log.line(f"resume: {skipped} finished {phase} run(s) of seed {specs[0].seed} kept")
    return out


def run_comparison(cfg: CompareConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                   quiet: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the comparison ``cfg`` and write ``out_dir/results.json`` and ``results.csv``;
    returns the results document.

    The output directory is checked and locked, and a results file already there is checked
    (:class:`ResultsFile`), before the data are loaded. On any interruption (``KeyboardInterrupt``,
    which the CLI also raises for SIGTERM) the runs recorded so far are saved before the
    exception goes on."""
    engine.enable_compile_cache()
    device = engine.pick_device(cfg.device)
    log = _Log(quiet)
    out = OutputDir(out_dir)
    try:
        res = ResultsFile(out, cfg, resume=resume, force=force)
        if res.backup is not None:
            log.line(f"--force: the previous results are kept in {res.backup}")
        try:
            return _run(cfg, res, device, log)
        except BaseException:
            if res._dirty:  # save what is recorded before the error or interrupt goes on
                try:
                    res.save()
                except OSError:
                    pass
            raise
    finally:
        out.release()


def _run(cfg: CompareConfig, res: ResultsFile, device: torch.device, log: _Log
         ) -> dict[str, Any]:
    dataset = load_data(cfg)
    prov = provenance(device, dataset, cfg)
    if res.resumed_from is not None:
        prov["resumed_from"] = res.resumed_from
    res.doc["provenance"] = prov
    interrupt = _Interrupt()
    full = engine.prepare_data(dataset, device=device)
    log.line(f"optlab compare: preset {cfg.preset}, {cfg.dataset} "
             f"({full.n_train} train), device {device.type} ({prov['device_name']})")

    lrs: dict[str, float | None] = {o: cfg.lr_for(o) for o in cfg.optimizers}
    if cfg.preset == "tuned" or cfg.grid:
        lrs.update(_select(cfg, dataset, device, res, log, interrupt))

    adam_seconds: dict[int, float] = {}
    for seed in cfg.seeds:
        for init in cfg.init_list():
            specs = _to_train(_specs_for(cfg, seed, lrs, full.n_train, init), res, "final",
                              log, cfg, full)
            if specs:
                _train_group(cfg, specs, full, res, log, "final", "runs", interrupt, device)
        for r in res.doc["runs"]:
            if r["seed"] == seed and r["optimizer"] == "adam" and r["phase"] == "final":
                adam_seconds[seed] = sum(e["seconds"] for e in r["epochs"])
        if "lbfgs" in cfg.optimizers:
            _run_lbfgs(cfg, seed, full, res, log, interrupt, adam_seconds.get(seed))
    res.doc["provenance"]["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")
    res.save()
    return res.doc


def mean_val_acc(runs: list[dict[str, Any]], optimizer: str, lr: float, seeds: list[int],
                 epoch: int) -> float | None:
    """Mean over ``seeds`` of the validation accuracy of ``optimizer`` at ``lr`` after ``epoch``
    (selection runs); ``None`` unless every seed has a finite value there (a diverged or
    unfinished seed disqualifies the rate)."""
    vals = []
    for seed in seeds:
        rec = next((r for r in runs if r["optimizer"] == optimizer and r["seed"] == seed
                    and r["hparams"].get("lr") == lr), None)
        e = (next((e for e in rec["epochs"] if e.get("epoch") == epoch), None)
             if rec is not None else None)
        v = e.get("val_acc") if e is not None else None
        if v is None or not math.isfinite(v):
            return None
        vals.append(float(v))
    return sum(vals) / len(vals)


def pick_learning_rates(runs: list[dict[str, Any]], grid: dict[str, list[float]],
                        seeds: list[int], epoch: int) -> dict[str, float]:
    """The rate of each optimizer's grid with the best mean validation accuracy over ``seeds``
    after ``epoch`` (ties: the smaller rate; no valid rate: the smallest of the grid)."""
    chosen: dict[str, float] = {}
    for o, lrs in grid.items():
        scored = [(v, -lr) for lr in lrs
                  if (v := mean_val_acc(runs, o, lr, seeds, epoch)) is not None]
        chosen[o] = -max(scored)[1] if scored else min(lrs)
    return chosen


def _select(cfg, dataset, device, res, log, interrupt) -> dict[str, float]:
    """The grid search of the ``tuned`` preset, on a validation split of the training set: one
    stack per selection seed, the pick by the mean validation accuracy over those seeds after
    ``selection_epochs``; with ``short_epochs`` also the picks a shorter horizon would make."""
    val_size = cfg.val_size or 10_000
    split = engine.prepare_data(dataset, device=device, val_size=val_size)
    seeds = cfg.selection_seeds
    grid = cfg.grid or {}
    epochs = cfg.selection_epochs
    total = cfg.total_steps(split.n_train, epochs)
    sel = res.doc.setdefault("selection", {})
    sel.update({"val_size": val_size, "train_size": split.n_train, "epochs": epochs,
                "seeds": seeds, "grid": grid,
                "criterion": "mean val_acc over the selection seeds after the last epoch"})
    if len(seeds) == 1:
        sel["seed"] = seeds[0]
    sel.setdefault("runs", [])
    for seed in seeds:
        specs = [_spec(cfg, o, lr, seed, total) for o in cfg.optimizers if o in grid
                 for lr in grid[o]]
        pending = _to_train(specs, res, "selection", log, cfg, split)
        if pending:
            _train_group(cfg, pending, split, res, log, "selection", "selection", interrupt,
                         device)
    chosen = pick_learning_rates(sel["runs"], grid, seeds, epochs)
    sel["chosen_lr"] = chosen
    if cfg.short_epochs is not None and cfg.short_epochs < epochs and cfg.schedule is None:
        # (a schedule over the phase would make the state after short_epochs another run's)
        short = cfg.short_epochs
        sel["short_horizon"] = {
            "epochs": short,
            "chosen_lr": pick_learning_rates(sel["runs"], grid, seeds, short),
            "chosen_lr_first_seed": pick_learning_rates(sel["runs"], grid, seeds[:1], short),
            "note": f"the picks after {short} epochs of the same selection runs (constant "
                    f"rates: a run's state after {short} epochs is that of a {short}-epoch "
                    "run), by the mean over the selection seeds and by the first seed alone",
        }
    res.save()
    log.line("selection: chosen lr " + ", ".join(f"{o}={v:g}" for o, v in chosen.items()))
    return chosen


def _run_lbfgs(cfg, seed, data, res, log, interrupt, adam_seconds) -> None:
    variants = cfg.lbfgs_variants or [LBFGS_DEFAULT_VARIANT]
    budget_examples = cfg.epochs * (data.n_train // cfg.batch_size) * cfg.batch_size
    budgets = res.doc.setdefault("budgets", {
        "example_gradients": budget_examples,
        "epochs_of_gradients": cfg.epochs,
        "seconds_by_seed": {},
        "note": "Adam's budget at batch size --batch-size: example-gradients = epochs x "
                "training images, seconds = its training time (evaluation and compilation "
                "excluded). Each L-BFGS run goes on until it has spent both budgets; the "
                "records where it crossed each are marked 'budget'.",
    })
    if adam_seconds is not None:
        budgets["seconds_by_seed"][str(seed)] = round(adam_seconds, 3)
    threads = engine.set_threads(cfg.threads or 1)
    for v in variants:
        bs = v["batch_size"] or data.n_train
        spec = ModelSpec("lbfgs", dict(v["hparams"]), seed, cfg.init or "pytorch")
        probe = {"phase": "final", "variant": v["label"], "optimizer": "lbfgs",
                 "hparams": engine.jsonable(spec.hparams), "seed": seed, "init": spec.init}
        prev = res.finished(probe)
        if prev is not None:
            res.put(prev)
            log.line(f"resume: lbfgs {v['label']} seed {seed} kept")
            continue
        t0 = time.perf_counter()

        def on_eval(r: RunResult, v=v) -> None:
            res.put(_run_record(r, "final", threads, v["label"]))
            res.save()

        r = engine.train_lbfgs(spec, data, batch_size=bs, max_examples=budget_examples,
                               max_seconds=adam_seconds, on_eval=on_eval)
        res.put(_run_record(r, "final", threads, v["label"]))
        res.save()
        last = r.epochs[-1]
        log.line(f"lbfgs {v['label']} seed {seed}: {r.info['grad_evals']} gradient evaluations, "
                 f"{last.extra['epochs_of_gradients']:.1f} epochs of gradients, "
                 f"{r.info['train_seconds']:.1f} s; test acc {last.test_acc:.4f} "
                 f"({time.perf_counter() - t0:.1f} s with evaluation)")
        interrupt.unit_done()

