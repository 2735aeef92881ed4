"""What a run is (:class:`ModelSpec`) and what it measured (:class:`EpochMetrics`,
:class:`RunResult`), and :func:`jsonable`, which makes them JSON."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..clipping import check_clip_norm
from ..rules import resolve_hparams
from ..schedules import Schedule, split_schedule


@dataclass(frozen=True)
class ModelSpec:
    """One model of a comparison: optimizer name, its hyperparameters (``torch.optim``
    keywords, missing ones take the rule's defaults), the seed and the weight initialization;
    optionally a learning-rate ``schedule`` and a gradient-norm threshold ``clip_norm``.

    ``hparams["lr"]`` may itself be a schedule: it is then moved to ``schedule`` and
    ``hparams["lr"]`` holds its base rate (what the results file records as ``lr``)."""

    optimizer: str
    hparams: dict[str, Any]
    seed: int
    init: str = "pytorch"  # the initial weights' scheme (optlab.mlp.INITS)
    schedule: Schedule | None = None
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        hparams, schedule = split_schedule(self.hparams)
        if schedule is not None:
            if self.schedule is not None:
                raise ValueError("ModelSpec: give the schedule once, as lr or as schedule")
            object.__setattr__(self, "hparams", hparams)
            object.__setattr__(self, "schedule", schedule)
        elif self.schedule is not None:
            if not isinstance(self.schedule, Schedule):
                raise ValueError(f"ModelSpec: schedule must be an optlab.schedules schedule; "
                                 f"got {self.schedule!r}")
            if "lr" not in self.hparams:
                object.__setattr__(self, "hparams",
                                   {**self.hparams, "lr": self.schedule.base_lr})
        object.__setattr__(self, "clip_norm", check_clip_norm(self.clip_norm))

    def controls(self) -> dict[str, Any]:
        """What a results record adds for the schedule and clipping (nothing when unused)."""
        out: dict[str, Any] = {}
        if self.schedule is not None:
            out["schedule"] = self.schedule.describe()
        if self.clip_norm is not None:
            out["clip_norm"] = self.clip_norm
        return out

    def resolved(self) -> dict[str, Any]:
        if self.optimizer == "lbfgs":
            return dict(self.hparams)
        return resolve_hparams(self.optimizer, **self.hparams)


def jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    val_loss: float | None = None
    val_acc: float | None = None
    eval_seconds: float | None = None
    #: Keras's training accuracy: correct predictions in the epoch's own training steps (each
    #: batch scored by the weights before that batch's update), over the examples seen.
    train_acc_running: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra" and v is not None}
        d.update(self.extra)
        return jsonable(d)


@dataclass
class RunResult:
    spec: ModelSpec
    status: str = "running"  # running | ok | diverged
    epochs: list[EpochMetrics] = field(default_factory=list)
    compile_seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "optimizer": self.spec.optimizer,
            "hparams": jsonable(self.spec.resolved()),
            "seed": self.spec.seed,
            "init": self.spec.init,
            **jsonable(self.spec.controls()),
            "status": self.status,
            "epochs": [e.as_dict() for e in self.epochs],
        }
        if self.compile_seconds is not None:
            d["compile_seconds"] = round(self.compile_seconds, 3)
        d.update(jsonable(self.info))
        return d
