"""The comparison's settings: the presets (``paper``, ``tuned``, ``lbfgs``), :class:`CompareConfig`
and :func:`make_config`, which checks every setting before any work (:class:`ConfigError`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..clipping import check_clip_norm
from ..rules import FIRST_ORDER, get_rule, resolve_hparams
from ..schedules import MAX_STEPS, Schedule
from .records import jsonable

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
    """A bad setting. ``param`` names it (a :func:`make_config` keyword, or ``out``) when one
    setting is to blame, and the message then starts with that name; the CLI prints the one line
    with the parameter's flag in its place (``epochs`` -> ``--epochs``) and exits with status 2."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


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
    jobs: int = 1  # seed stacks trained at once, in parallel processes
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
        from ..schedules import parse_schedule

        return parse_schedule(text, lr, self.warmup_steps, total_steps=total_steps)

    def total_steps(self, n_train: int, epochs: int) -> int:
        """The number of updates of a phase on ``n_train`` images for ``epochs`` epochs."""
        return epochs * (n_train // self.batch_size)

    def hparams_for(self, name: str, lr: float | None) -> dict[str, Any]:
        """The hyperparameters ``name`` trains with: the conventions' defaults, then the
        preset's own for ``name`` (``hparams``), then ``lr``."""
        from ..conventions import hparams_for

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
        for k in ("device", "threads", "jobs", "compile", "data_dir"):
            d.pop(k)
        if d["hparams"] is None:  # files written before presets had their own hparams
            d.pop("hparams")
        for k in ("inits", "select_seeds", "short_epochs"):  # newer settings: absent if unused
            if d[k] is None:
                d.pop(k)
        for k, unused in (("schedule", None), ("warmup_steps", 0), ("clip_norm", None)):
            if d[k] == unused:  # absent when unused: files written before them still resume
                d.pop(k)
        return jsonable(d)

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
    from ..conventions import CONVENTIONS, INIT_FOR
    from ..mlp import INITS
    from ..rules import OPTIMIZERS

    if cfg.conventions not in CONVENTIONS:
        raise ConfigError(f"conventions: choose one of {', '.join(CONVENTIONS)}; "
                          f"got {cfg.conventions!r}", param="conventions")
    cfg.init = cfg.init or INIT_FOR[cfg.conventions]
    if cfg.init not in INITS:
        raise ConfigError(f"init: choose one of {', '.join(INITS)}; got {cfg.init!r}",
                          param="init")
    if cfg.inits is not None:
        if not cfg.inits or len(set(cfg.inits)) != len(cfg.inits):
            raise ConfigError("inits: give each initialization once", param="inits")
        for name in cfg.inits:
            if name not in INITS:
                raise ConfigError(f"inits: choose from {', '.join(INITS)}; got {name!r}",
                                  param="inits")
        if overrides.get("init") is not None:  # --init on the ablation preset: that init only
            cfg.inits = None
    if cfg.select_epochs is not None and cfg.select_epochs < 1:
        raise ConfigError(f"select_epochs must be >= 1; got {cfg.select_epochs}",
                          param="select_epochs")
    if cfg.short_epochs is not None and not 1 <= cfg.short_epochs:
        raise ConfigError(f"short_epochs must be >= 1; got {cfg.short_epochs}",
                          param="short_epochs")
    if cfg.conventions != "pytorch":
        for name in cfg.optimizers:
            if name != "lbfgs" and name not in CONVENTIONS[cfg.conventions]:
                raise ConfigError(f"conventions {cfg.conventions}: optlab has no "
                                  f"{cfg.conventions} form of {name}; use "
                                  "conventions='pytorch'", param="conventions")
    if not cfg.optimizers:
        raise ConfigError("optimizers: give at least one optimizer", param="optimizers")
    for name in cfg.optimizers:
        if name not in OPTIMIZERS:
            raise ConfigError(f"optimizers: unknown optimizer {name!r}; choose from "
                              f"{', '.join(OPTIMIZERS)}", param="optimizers")
    if len(set(cfg.optimizers)) != len(cfg.optimizers):
        raise ConfigError("optimizers: each optimizer once", param="optimizers")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1; got {cfg.epochs}", param="epochs")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {cfg.batch_size}", param="batch_size")
    for key in ("seeds", "select_seeds"):
        seeds = getattr(cfg, key)
        if seeds is None and key == "select_seeds":
            continue
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple)):
            raise ConfigError(f"{key}: give a list of seeds, e.g. {key}=[0, 1, 2]; got "
                              f"{seeds!r}", param=key)
        if not seeds:
            raise ConfigError(f"{key}: give at least one seed", param=key)
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
                raise ConfigError(f"{key}: seed {seed} is out of range; a seed is an integer "
                                  f"in 0 .. 2**62 - 1 (it seeds 64-bit generators)", param=key)
        twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
        if twice:
            raise ConfigError(f"{key}: seed {', '.join(map(str, twice))} given twice (it "
                              "would train the same runs again); give each seed once",
                              param=key)
        setattr(cfg, key, list(seeds))
    if cfg.lr:
        for name, v in cfg.lr.items():
            if name != "*" and name not in cfg.optimizers:
                raise ConfigError(f"lr {name}=...: {name} is not among the optimizers "
                                  f"({','.join(cfg.optimizers)})", param="lr")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"lr must be a number; got {v!r}" + (
                    f" for {name}" if name != "*" else ""), param="lr")
            if not (v > 0):  # catches NaN too
                raise ConfigError(f"lr must be > 0; got {v:g}" + (
                    f" for {name}" if name != "*" else ""), param="lr")
            if not FLOAT32_TINY <= v <= FLOAT32_MAX:  # the parameters are float32
                what = "0" if v < FLOAT32_TINY else "inf"
                raise ConfigError(f"lr {v:g}" + (f" for {name}" if name != "*" else "")
                                  + f" is {what} in float32 (the parameters' type); give a "
                                  f"rate between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g}",
                                  param="lr")
    if cfg.lr and (cfg.grid is not None or cfg.preset == "tuned"):
        raise ConfigError("lr with preset='tuned': the tuned preset picks every learning rate "
                          "from its grid, so the lr given would not be used; drop it, or use "
                          "preset='paper' to fix the rates", param="lr")
    if not (cfg.grid is not None or cfg.preset == "tuned"):
        for key in ("select_epochs", "select_seeds"):
            if overrides.get(key) is not None:
                raise ConfigError(f"{key} sets the grid search of preset='tuned', and preset "
                                  f"{cfg.preset!r} has none, so it would not be used; drop "
                                  f"it, or use preset='tuned'", param=key)
    for name in cfg.hparams or {}:
        if name not in cfg.optimizers:
            raise ConfigError(f"hparams for {name}: {name} is not among the optimizers "
                              f"({','.join(cfg.optimizers)})", param="hparams")
    for name in cfg.optimizers:  # the core's own validation of every hyperparameter
        if name != "lbfgs":
            lr = cfg.lr_for(name)
            own = (cfg.hparams or {}).get(name, {})
            try:
                resolve_hparams(name, **own, **({"lr": lr} if lr is not None else {}))
            except ValueError as e:
                raise ConfigError(str(e)) from None
    if cfg.dataset not in ("mnist", "fashion-mnist", "synthetic"):
        raise ConfigError(f"dataset {cfg.dataset}: choose mnist, fashion-mnist or synthetic",
                          param="dataset")
    from ..data import DataError, check_data_dir

    try:
        check_data_dir(cfg.data_dir)
    except DataError as e:
        raise ConfigError(str(e)) from None
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be >= 1; got {cfg.threads}", param="threads")
    if isinstance(cfg.jobs, bool) or not isinstance(cfg.jobs, int) or cfg.jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1; got {cfg.jobs!r}", param="jobs")
    if cfg.preset == "tuned" and cfg.grid is None:
        cfg.grid = {o: list(get_rule(o).lr_grid) for o in cfg.optimizers if o != "lbfgs"}
    if cfg.grid is not None:  # a rule left out would run untuned yet be reported as tuned
        ungridded = [o for o in cfg.optimizers if o != "lbfgs" and not cfg.grid.get(o)]
        if ungridded:
            raise ConfigError(f"{ungridded[0]} has no learning-rate grid to tune over: give "
                              f"one (its Rule.lr_grid in optlab.rules) or drop it from "
                              "the optimizers")
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
            raise ConfigError(f"val_size must be in (0, {n_train}); got {val}", param="val_size")
        smallest = n_train - val
    if cfg.batch_size > smallest:
        raise ConfigError(f"batch_size {cfg.batch_size} exceeds the {smallest:,} training "
                          f"images of {cfg.dataset}" + (" (less the validation split)"
                                                        if smallest < n_train else "")
                          + f"; give a batch size <= {smallest:,}", param="batch_size")
    return cfg


def _check_controls(cfg: CompareConfig, n_train: int) -> None:
    """``schedule``, ``warmup_steps`` and ``clip_norm``: one :class:`ConfigError` line each."""

    try:
        cfg.clip_norm = check_clip_norm(cfg.clip_norm)
    except ValueError as e:
        raise ConfigError(str(e), param="clip_norm") from None
    w = cfg.warmup_steps
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise ConfigError(f"warmup_steps must be an integer >= 0 (0: no warmup); got {w!r}",
                          param="warmup_steps")
    if w > MAX_STEPS:
        raise ConfigError(f"warmup_steps must be at most 2**53 updates (a run never gets "
                          f"there); got {w}", param="warmup_steps")
    given = [name for name, on in (("schedule", cfg.schedule is not None),
                                   ("warmup_steps", bool(w)),
                                   ("clip_norm", cfg.clip_norm is not None)) if on]
    if given and set(cfg.optimizers) <= {"lbfgs"}:
        raise ConfigError(f"{given[0]} applies to the first-order rules only, and L-BFGS (the "
                          f"only optimizer here) would not use it; drop it, or add a "
                          f"first-order rule to the optimizers", param=given[0])
    if cfg.schedule is not None and not str(cfg.schedule).strip():
        raise ConfigError("schedule is empty; give one such as 'cosine' or "
                          "'step:every=1000,gamma=0.5', or none for a constant rate",
                          param="schedule")
    total = cfg.total_steps(n_train, cfg.epochs)
    if total > MAX_STEPS:  # the run would never end, and a cosine over it could not be built
        raise ConfigError(f"epochs {cfg.epochs} is {total:,} updates, past the 2**53 a step "
                          f"counter holds exactly (and no run finishes); give fewer epochs",
                          param="epochs")
    try:
        cfg.schedule_for(1e-3, max(total, 1))
    except (TypeError, ValueError) as e:
        hint = ""
        if "total must" in str(e):
            hint = f" (or leave total out: it defaults to the run's {total:,} updates)"
        raise ConfigError(f"schedule {cfg.schedule!r}: {e}{hint}", param="schedule") from None


#: Seeds are below 2**62: they (plus offsets) seed torch's 64-bit generators.
MAX_SEED = 2**62


FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32


FLOAT32_MAX = 3.4028234663852886e38


def training_size(cfg: CompareConfig) -> int:
    """The number of training images of ``cfg.dataset`` (known before loading it)."""
    if cfg.dataset == "synthetic":
        return int(cfg.synthetic_size[0])
    from ..data import SPECS

    return SPECS[cfg.dataset].n_train
