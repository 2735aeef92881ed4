r"""The MNIST comparison engine: many optimizers, one pass, the core's own update rules.

What :func:`train_stack` does, in the order a step does it:

* **Data.** The images live on the device as one float tensor in :math:`[0, 1]` (scaled once,
  as in the paper). Each epoch draws one permutation from a ``torch.Generator`` seeded from
  the run's seed (on the CPU, so the batch order is the same on every device), gathers the
  training set once into a buffer in that order, and the steps read consecutive slices of 32.
  No ``DataLoader``. A last partial batch (when the batch size does not divide the training
  set) is **dropped**; with 60,000 images and batches of 32 there is none.
* **Stacked models.** Models that share a batch schedule, i.e. the same seed, train together:
  their parameters are the rows of one ``(K, P)`` tensor (:mod:`optlab.mlp`), the forward and
  backward are batched matrix products, and the loss is each model's own mean, summed.
* **The core's rules.** Models are grouped by rule and hyperparameters into contiguous rows.
  Each group's rows are updated by the pure function of :mod:`optlab.rules`
  (``rule.update(params, grad, state, **hparams)``); the learning rate is a ``(K_g, 1)`` tensor,
  so one group can hold several learning rates; the step counter is a 0-d tensor, so that
  ``torch.compile`` traces the rules once. The new rows are concatenated and written back.
  This is the same code the ``torch.optim`` adapters (:func:`optlab.make_optimizer`) run, and
  the tests check the two agree.
* **Schedules and clipping.** A model's ``schedule`` (:mod:`optlab.schedules`) is evaluated
  for every step of the run up front (one ``(steps, K_g, 1)`` table per group, on the device);
  before each step the group's learning-rate tensor is overwritten in place with that step's row,
  outside the compiled function, which therefore sees the same tensor every step and is never
  recompiled. ``clip_norm`` scales each model's gradient, one row of the ``(K, P)`` gradient, by
  :math:`\min(1, C/\lVert g\rVert)` over all its ``P`` parameters (:mod:`optlab.clipping`),
  inside the compiled step, before its rule.
* **One compiled step.** Forward, backward and every group's update form one function, compiled
  with ``torch.compile`` when it pays (``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA);
  if compilation fails it warns once and runs eagerly.
* **Metrics.** After each epoch, all K models are evaluated in one batched, chunked forward pass
  on the training set (or its training part when a validation split is carved off), the
  validation split if any, and the test set. Beside that full-pass ``train_acc``, each epoch
  records ``train_acc_running``: the share of the epoch's training examples that the model
  classified correctly *in the step that trained on them* (before that step's update), which is
  the running mean over the epoch's minibatches that Keras's ``fit`` reports as ``accuracy``.
  The step adds each model's correct count to a ``(K,)`` tensor; it is read once per epoch.
  A model whose loss is not finite is marked
  ``diverged`` and frozen (its metrics stop; the others go on).

:func:`train_lbfgs` runs L-BFGS (not elementwise: it needs dot products over all parameters) as
a single model with :func:`optlab.make_optimizer` and a closure on large or full batches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import mlp
from .clipping import check_clip_norm, clip_coefficient
from .rules import get_rule, resolve_hparams
from .schedules import Schedule, lr_at, split_schedule

__all__ = [
    "ModelSpec",
    "PreparedData",
    "EpochMetrics",
    "RunResult",
    "prepare_data",
    "train_stack",
    "train_lbfgs",
    "pick_device",
    "set_threads",
    "default_threads",
    "enable_compile_cache",
    "checkpoint_epoch",
    "DeviceError",
]


class DeviceError(RuntimeError):
    """The requested device is not available (the CLI turns it into one line, exit status 2)."""


# --------------------------------------------------------------------------------------------
# Device, threads, compile cache
# --------------------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then MPS, then the CPU; an unavailable explicit choice raises
    :class:`DeviceError`."""
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is available to this PyTorch "
                          f"({torch.__version__}); use --device cpu or auto")
    if name == "mps" and not mps_ok:
        raise DeviceError("--device mps: Apple's MPS backend is not available here; "
                          "use --device cpu or auto")
    if name not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"--device {name}: choose auto, cpu, cuda or mps")
    return torch.device(name)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def default_threads(n_models: int, compiled: bool, load: float | None = None) -> int:
    """One thread for a single or eager model (steadier and as fast), two for a compiled stack;
    never more than the cores that are idle. On a busy machine (1-minute load average above
    ``cores - 2``) a stack gets one thread too: a 2-thread OpenMP step whose second thread is
    preempted waits at every barrier (measured here: 79 ms/step on 2 threads against 3.8 ms on
    1 thread, for the same K=4 step at a load average of 7.5 on 2 cores). ``load``: the load
    average to judge by (default: now); a long run passes the one from its start, since its own
    earlier stacks raise the load average later on."""
    cores = _cores()
    want = 2 if (compiled and n_models > 1) else 1
    try:
        idle = cores - (os.getloadavg()[0] if load is None else load)
    except (AttributeError, OSError):  # pragma: no cover
        idle = cores
    if idle < want - 0.5:
        want = 1
    return max(1, min(want, cores))


def set_threads(n: int) -> int:
    """``torch.set_num_threads(n)`` capped at the available cores; returns the value set."""
    n = max(1, min(int(n), _cores()))
    torch.set_num_threads(n)
    return n


def enable_compile_cache() -> str:
    """Point inductor's on-disk cache at ``$XDG_CACHE_HOME/optlab/inductor`` (unless
    ``TORCHINDUCTOR_CACHE_DIR`` is already set), so a rerun compiles from a warm cache."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "optlab", "inductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Float images ``(N, 784)`` in [0, 1] and int64 labels, on the device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    evals: dict[str, tuple[torch.Tensor, torch.Tensor]]  # "train", ["val"], "test"
    name: str = "mnist"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def _to_float(images: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = images.reshape(images.shape[0], -1)
    if x.dtype == torch.uint8:
        return (x.to(device=device, dtype=dtype) / 255.0).contiguous()
    return x.to(device=device, dtype=dtype).contiguous()


def prepare_data(
    dataset: Any, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    val_size: int = 0,
) -> PreparedData:
    """Scale a dataset (``train_images``/``train_labels``/``test_images``/``test_labels``, uint8
    images) to [0, 1] once and move it to ``device``. ``val_size > 0`` carves the **last**
    ``val_size`` training images off as a validation split (never the test set)."""
    device = torch.device(device)
    x = _to_float(dataset.train_images, device, dtype)
    y = dataset.train_labels.to(device=device, dtype=torch.int64)
    xt = _to_float(dataset.test_images, device, dtype)
    yt = dataset.test_labels.to(device=device, dtype=torch.int64)
    name = getattr(dataset, "name", "mnist")
    if val_size:
        if not 0 < val_size < x.shape[0]:
            raise ValueError(f"val_size must be in (0, {x.shape[0]}); got {val_size}")
        n = x.shape[0] - val_size
        evals = {"train": (x[:n], y[:n]), "val": (x[n:], y[n:]), "test": (xt, yt)}
        return PreparedData(x[:n], y[:n], evals, name)
    return PreparedData(x, y, {"train": (x, y), "test": (xt, yt)}, name)


def data_generator(seed: int) -> torch.Generator:
    """The generator of a run's batch order: seeded from the run seed, independent of the
    generator of its initial weights (:func:`optlab.mlp.init_flat` uses ``seed`` itself)."""
    return torch.Generator().manual_seed(1_000_003 + int(seed))


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The stacked step: forward, backward and the core's rules, per group of rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    rule: str
    start: int
    stop: int
    hparams: tuple[tuple[str, Any], ...]  # constant hyperparameters except lr
    clip_norm: float | None = None


def _group_key(spec: ModelSpec) -> tuple[str, str]:
    hp = {k: v for k, v in spec.resolved().items() if k != "lr"}
    hp["__clip_norm"] = spec.clip_norm
    return spec.optimizer, json.dumps(jsonable(hp), sort_keys=True)


def _order_by_group(specs: Sequence[ModelSpec]) -> list[int]:
    """Indices of ``specs`` sorted so that each group (rule + hyperparameters but lr) is one
    contiguous block, groups in order of first appearance."""
    first: dict[tuple[str, str], int] = {}
    for i, s in enumerate(specs):
        first.setdefault(_group_key(s), i)
    return sorted(range(len(specs)), key=lambda i: (first[_group_key(specs[i])], i))


def _tensorize_state(state: Any, like: torch.Tensor, step_dtype: torch.dtype) -> Any:
    """Rule states with every scalar (the step counter, NAdam's ``mu_product``) stored as a
    one-element tensor of shape ``(1,)`` on the device, so the compiled step sees the same types
    at every call. The step hands the rules a 0-d view of it (``_scalar_views``).

    Why ``(1,)`` and not 0-d: with torch 2.13 on the CPU, ``torch.compile`` drops in-place
    writes to a 0-d float64 input (``s.copy_(s + 1)`` leaves ``s`` unchanged; float32 and
    1-element tensors are fine), which froze Adam's step counter at 0 in compiled runs. The
    compiled-vs-readable test catches that."""
    fields, seen = {}, set()
    for name, v in state._asdict().items():
        if isinstance(v, torch.Tensor):  # un-alias (RMSprop's init shares one zero buffer)
            fields[name] = v.clone() if id(v) in seen else v
            seen.add(id(v))
        else:
            fields[name] = torch.tensor([float(v)], dtype=step_dtype, device=like.device)
    return type(state)(**fields)


def _scalar_views(state: Any) -> Any:
    """The state as the rules expect it: each ``(1,)`` scalar buffer as a 0-d tensor (a 0-d
    float64 tensor does not promote the float32 parameters it multiplies)."""
    return type(state)(*(v[0] if v.dim() == 1 else v for v in state))


def _state_tensors(state: Any) -> list[torch.Tensor]:
    seen, out = set(), []
    for v in state:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _make_step(groups: tuple[_Group, ...], batch_size: int) -> Callable[..., None]:
    """The whole training step as one function of tensors (what ``torch.compile`` sees).

    ``flat`` (K, P), the rule states, ``pos`` (the batch index, a 0-d int64 tensor) and
    ``correct`` (the epoch's correct counts per model, ``(K,)`` int64) are updated in place:
    the rules are pure, so their results are written back with ``copy_``,
    one write per tensor."""
    rules = [get_rule(g.rule) for g in groups]

    def step(flat, states, lrs, xs, ys, pos, arange, correct):
        idx = pos * batch_size + arange
        x = xs.index_select(0, idx)
        y = ys.index_select(0, idx)
        _, grad = mlp.loss_and_grad(flat, x, y, with_loss=False, correct_out=correct)
        pieces = []
        for g, rule, state, lr in zip(groups, rules, states, lrs, strict=False):
            view = _scalar_views(state)
            g_rows = grad[g.start : g.stop]
            if g.clip_norm is not None:  # each model's norm over all its parameters
                norm = torch.linalg.vector_norm(g_rows, dim=1, keepdim=True)
                g_rows = g_rows * clip_coefficient(norm, g.clip_norm)
            new_p, new_state = rule.update(
                flat[g.start : g.stop], g_rows, view, lr=lr, **dict(g.hparams)
            )
            pieces.append(new_p)
            for old, cur, new in zip(state, view, new_state, strict=False):
                if new is not cur:  # fields a rule passes through unchanged are not rewritten
                    old.copy_(new.reshape(old.shape))
        flat.copy_(torch.cat(pieces) if len(pieces) > 1 else pieces[0])
        pos.add_(1)

    return step


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


class _Stepper:
    """Runs the step compiled, falling back to eager (with one warning) if compilation fails;
    the first call's time (compilation included) is recorded apart."""

    _cache: dict[Any, Callable[..., None]] = {}

    def __init__(self, groups, batch_size, compile_mode: str | None, key):
        self.eager = _make_step(groups, batch_size)
        self.fn = self.eager
        self.compiled = False
        self.compile_seconds: float | None = None
        self._first = True
        if compile_mode is not None:
            try:
                from torch import _dynamo  # noqa: F401

                ck = (key, compile_mode)
                if ck not in self._cache:
                    kw: dict[str, Any] = {"dynamic": False, "fullgraph": False}
                    if compile_mode != "default":
                        kw["mode"] = compile_mode
                    self._cache[ck] = torch.compile(self.eager, **kw)
                self.fn = self._cache[ck]
                self.compiled = True
            except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
                _warn_once(f"torch.compile unavailable ({type(e).__name__}: {e}); running eagerly")

    def __call__(self, *args) -> None:
        if not self._first:
            self.fn(*args)
            return
        self._first = False
        t0 = time.perf_counter()
        if self.compiled:
            try:
                self.fn(*args)
            except Exception as e:  # noqa: BLE001
                _warn_once(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); "
                           "running eagerly")
                self.fn, self.compiled = self.eager, False
                self.fn(*args)
        else:
            self.fn(*args)
        _sync(args[0].device)
        if self.compiled:
            self.compile_seconds = time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover
        torch.mps.synchronize()


def compile_mode_for(device: torch.device, compile: bool | None, work: int) -> str | None:
    """``None`` (eager) or the ``torch.compile`` mode. ``compile=None`` means automatic: on when
    the run is long enough to repay a cold compile (``work`` = models x steps >= 10,000) on the
    CPU, always on CUDA (CUDA graphs), off on MPS."""
    if compile is False:
        return None
    if device.type == "mps":
        return None if compile is None else "default"
    if device.type == "cuda":
        return "reduce-overhead"
    if compile is None and work < 10_000:
        return None
    return "default"


# --------------------------------------------------------------------------------------------
# Training a stack
# --------------------------------------------------------------------------------------------


def _epoch_metrics(
    flat: torch.Tensor, data: PreparedData, epoch: int, seconds: float
) -> list[EpochMetrics]:
    t0 = time.perf_counter()
    res = {name: mlp.evaluate(flat, x, y) for name, (x, y) in data.evals.items()}
    host = {name: (lo.cpu().tolist(), ac.cpu().tolist()) for name, (lo, ac) in res.items()}
    ev = time.perf_counter() - t0
    out = []
    for k in range(flat.shape[0]):
        m = EpochMetrics(
            epoch=epoch,
            train_loss=host["train"][0][k], train_acc=host["train"][1][k],
            test_loss=host["test"][0][k], test_acc=host["test"][1][k],
            seconds=round(seconds, 4), eval_seconds=round(ev, 4),
        )
        if "val" in host:
            m.val_loss, m.val_acc = host["val"][0][k], host["val"][1][k]
        out.append(m)
    return out


def _finite(m: EpochMetrics) -> bool:
    vals = [m.train_loss, m.test_loss] + ([m.val_loss] if m.val_loss is not None else [])
    return all(math.isfinite(v) for v in vals)


def train_stack(
    specs: Sequence[ModelSpec],
    data: PreparedData,
    *,
    epochs: int,
    batch_size: int = 32,
    compile: bool | None = None,
    dtype: torch.dtype = torch.float32,
    on_epoch: Callable[[list[RunResult], int], None] | None = None,
    progress: Any = None,
    checkpoint: str | os.PathLike | None = None,
    on_params: Callable[[int, torch.Tensor, list[Any]], None] | None = None,
) -> list[RunResult]:
    """Train the models ``specs`` (all with the same seed) side by side for ``epochs`` epochs.

    Returns one :class:`RunResult` per spec, in the order given. ``on_epoch(results, epoch)``
    is called after each epoch's metrics (e.g. to save them); ``progress`` is an optional
    ``tqdm``-like object with ``update(n)`` and ``set_postfix_str(s)``.

    ``checkpoint``: a file where the stack's state (parameters, rule states, batch-order
    generator, epoch and the metrics so far) is saved atomically after every epoch, before
    ``on_epoch``. If it exists and was written for the same models, data size, batch size and
    epochs (:func:`checkpoint_epoch`), training continues after its epoch, to the same numbers
    as an uninterrupted run (bit for bit on the CPU); otherwise it is overwritten. The caller
    removes it when the stack is done.

    ``on_params(epoch, params, states)``: a look at the models between epochs, called with
    epoch 0 before training and then after every epoch's metrics: ``params`` is a ``(K, P)``
    copy in the order of ``specs``, ``states[i]`` the rule state of ``specs[i]`` (its tensors
    that row's ``(P,)`` slices, its step counter a 0-d tensor). For measurements such as the
    Hessian's top eigenvalue along training (:mod:`optlab.curvature`); it must not write them.
    """
    if not specs:
        return []
    seeds = {s.seed for s in specs}
    if len(seeds) != 1:
        raise ValueError(f"a stack shares one batch schedule, so one seed; got {sorted(seeds)}")
    seed = seeds.pop()
    inits = {s.init for s in specs}
    if len(inits) != 1:
        raise ValueError(f"a stack starts from one network, so one init; got {sorted(inits)}")
    init = inits.pop()
    if any(s.optimizer == "lbfgs" for s in specs):
        raise ValueError("lbfgs is not elementwise: train it with train_lbfgs")
    device = data.x_train.device
    order = _order_by_group(specs)
    ordered = [specs[i] for i in order]
    k = len(ordered)
    n_batches = data.n_train // batch_size
    if n_batches < 1:
        raise ValueError(f"batch size {batch_size} exceeds the {data.n_train} training images")
    step_dtype = torch.float32 if device.type == "mps" else torch.float64

    # parameters: the seed's initial network, repeated K times (same init whatever optimizer)
    flat = mlp.init_flat(seed, dtype=dtype, device=device, init=init)
    flat = flat.unsqueeze(0).repeat(k, 1).contiguous()
    groups: list[_Group] = []
    states, lrs = [], []
    lr_tables: list[torch.Tensor | None] = []  # per group: (steps, K_g, 1) when scheduled
    i = 0
    while i < k:
        key = _group_key(ordered[i])
        j = i
        while j < k and _group_key(ordered[j]) == key:
            j += 1
        hp = ordered[i].resolved()
        rule = get_rule(ordered[i].optimizer)
        const = tuple(sorted((kk, v) for kk, v in hp.items() if kk != "lr"))
        groups.append(_Group(ordered[i].optimizer, i, j, const, ordered[i].clip_norm))
        lr = torch.tensor([ordered[m].resolved()["lr"] for m in range(i, j)], dtype=dtype,
                          device=device).view(-1, 1)
        lrs.append(lr)
        lr_tables.append(_lr_table(ordered[i:j], epochs * n_batches, dtype, device))
        st = rule.init_state(flat[i:j], **hp)
        states.append(_tensorize_state(st, flat, step_dtype))
        i = j
    groups_t = tuple(groups)

    xs = torch.empty_like(data.x_train[: n_batches * batch_size])
    ys = torch.empty_like(data.y_train[: n_batches * batch_size])
    pos = torch.zeros((), dtype=torch.int64, device=device)
    correct = torch.zeros(k, dtype=torch.int64, device=device)
    arange = torch.arange(batch_size, device=device)
    mode = compile_mode_for(device, compile, k * n_batches * epochs)
    if mode == "reduce-overhead":  # CUDA graphs: every mutated input must keep its address
        from torch import _dynamo

        state_ts = [x for st in states for x in _state_tensors(st)]
        for t in [flat, pos, correct, xs, ys, arange, *lrs, *state_ts]:
            _dynamo.mark_static_address(t)
    key = (groups_t, batch_size, k, str(dtype), device.type)
    stepper = _Stepper(groups_t, batch_size, mode, key)

    results = [RunResult(spec) for spec in ordered]
    for r in results:
        r.info.update({"stack_size": k, "batch_order_seed": seed})
    alive = [True] * k
    g = data_generator(seed)
    n_used = n_batches * batch_size
    identity = _stack_identity(ordered, epochs, batch_size, data.n_train)
    start = 1
    if checkpoint is not None:
        saved = _read_checkpoint(checkpoint, identity)
        if saved is not None:
            start = _restore(saved, flat, states, g, results, alive) + 1
    if on_params is not None and start == 1:
        on_params(0, *_params_in_spec_order(flat, states, groups_t, order))
    for epoch in range(start, epochs + 1):
        if not any(alive):
            break
        t0 = time.perf_counter()
        perm = torch.randperm(data.n_train, generator=g)[:n_used].to(device)
        torch.index_select(data.x_train, 0, perm, out=xs)
        torch.index_select(data.y_train, 0, perm, out=ys)
        pos.zero_()
        correct.zero_()
        compile_s = 0.0
        for b in range(n_batches):
            step_index = (epoch - 1) * n_batches + b  # updates applied so far
            for lr, table in zip(lrs, lr_tables, strict=True):
                if table is not None:
                    lr.copy_(table[step_index])
            if b == 0 and epoch == start:
                stepper(flat, states, lrs, xs, ys, pos, arange, correct)
                compile_s = stepper.compile_seconds or 0.0
            else:
                stepper(flat, states, lrs, xs, ys, pos, arange, correct)
            if progress is not None and (b + 1) % 64 == 0:
                progress.update(64)
        _sync(device)
        seconds = time.perf_counter() - t0 - compile_s
        if progress is not None:
            progress.update(n_batches % 64)
        metrics = _epoch_metrics(flat, data, epoch, seconds)
        for m, running in zip(metrics, (correct.double() / n_used).cpu().tolist(), strict=True):
            m.train_acc_running = running
        for m_idx, (r, m) in enumerate(zip(results, metrics, strict=False)):
            if not alive[m_idx]:
                continue
            r.epochs.append(m)
            if not _finite(m):
                alive[m_idx] = False
                r.status = "diverged"
        if epoch == start:
            for r in results:
                r.compile_seconds = stepper.compile_seconds
                r.info["compile"] = stepper.compiled
                r.info["compile_mode"] = mode if stepper.compiled else None
        if epoch == epochs:
            for m_idx, r in enumerate(results):
                if alive[m_idx]:
                    r.status = "ok"
        if progress is not None:
            best = max((m.test_acc for m, a in zip(metrics, alive, strict=True) if a),
                       default=float("nan"))
            progress.set_postfix_str(f"epoch {epoch} best test acc {best:.4f}")
        if checkpoint is not None:
            _write_checkpoint(checkpoint, identity, epoch, flat, states, g, results, alive)
        if on_epoch is not None:
            on_epoch(results, epoch)
        if on_params is not None:
            on_params(epoch, *_params_in_spec_order(flat, states, groups_t, order))
    inverse = [0] * k
    for pos_i, orig in enumerate(order):
        inverse[orig] = pos_i
    return [results[inverse[i]] for i in range(k)]


def _params_in_spec_order(flat: torch.Tensor, states: list[Any], groups: tuple[_Group, ...],
                          order: list[int]) -> tuple[torch.Tensor, list[Any]]:
    """The stack's parameters (a copy) and per-model rule states, in the callers' order."""
    rows: list[Any] = [None] * len(order)
    for g, st in zip(groups, states, strict=True):
        for row in range(g.start, g.stop):
            rows[row] = type(st)(*(t[row - g.start] if t.dim() == 2 else t.reshape(())
                                   for t in st))
    params = torch.empty_like(flat)
    by_spec: list[Any] = [None] * len(order)
    for pos_i, orig in enumerate(order):
        params[orig] = flat[pos_i]
        by_spec[orig] = rows[pos_i]
    return params, by_spec


# --------------------------------------------------------------------------------------------
# Checkpoints of a stack between epochs
# --------------------------------------------------------------------------------------------


def _lr_table(specs: Sequence[ModelSpec], steps: int, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor | None:
    """The learning rate of each of ``specs`` (one group's rows) at every step ``t < steps``,
    shape ``(steps, K_g, 1)``, or ``None`` when none of them has a schedule (their ``lr``
    tensor then never changes). Evaluated in float64 with :func:`optlab.schedules.lr_at` on a
    tensor of steps, then cast to the parameters' dtype."""
    if all(s.schedule is None for s in specs):
        return None
    t = torch.arange(steps, dtype=torch.float64)
    cols = [torch.as_tensor(lr_at(s.schedule if s.schedule is not None
                                  else float(s.resolved()["lr"]), t),
                            dtype=torch.float64).expand(steps) for s in specs]
    return torch.stack(cols, dim=1).unsqueeze(-1).to(device=device, dtype=dtype).contiguous()


def _stack_identity(ordered: Sequence[ModelSpec], epochs: int, batch_size: int,
                    n_train: int) -> str:
    models = [[s.optimizer, jsonable(s.resolved()), s.seed, s.init]
              + ([jsonable(s.controls())] if s.controls() else []) for s in ordered]
    return json.dumps({"models": models, "epochs": epochs, "batch_size": batch_size,
                       "n_train": n_train}, sort_keys=True)


def _read_checkpoint(path: str | os.PathLike, identity: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is one of this stack (tensors and plain data only:
    ``weights_only`` loading runs no pickled code), else ``None``."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file is not used
        _warn_once(f"checkpoint {path} is unreadable ({type(e).__name__}); starting the stack "
                   "from epoch 1")
        return None
    if not isinstance(saved, dict) or saved.get("identity") != identity:
        return None
    return saved


def checkpoint_epoch(path: str | os.PathLike, specs: Sequence[ModelSpec], *, epochs: int,
                     batch_size: int, n_train: int) -> int | None:
    """The last epoch saved in the checkpoint ``path`` of a :func:`train_stack` of ``specs``
    with these settings, or ``None`` when there is none (or it is another stack's)."""
    ordered = [specs[i] for i in _order_by_group(specs)]
    saved = _read_checkpoint(path, _stack_identity(ordered, epochs, batch_size, n_train))
    return None if saved is None else int(saved["epoch"])


def _write_checkpoint(path, identity, epoch, flat, states, g, results, alive) -> None:
    import io

    from .atomic import write_bytes_atomically

    state = {
        "identity": identity,
        "epoch": epoch,
        "flat": flat.detach().cpu().clone(),
        "states": [[t.detach().cpu().clone() for t in st] for st in states],
        "generator": g.get_state(),
        "alive": list(alive),
        "results": [{"status": r.status, "compile_seconds": r.compile_seconds,
                     "info": jsonable(r.info),
                     "epochs": [dataclasses.asdict(m) for m in r.epochs]} for r in results],
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomically(path, buf.getvalue())


def _restore(saved, flat, states, g, results, alive) -> int:
    """Copy a checkpoint into the stack's tensors (in place: their addresses stay, as CUDA
    graphs need) and results; returns its epoch."""
    with torch.no_grad():
        flat.copy_(saved["flat"].to(flat.device))
        for st, tensors in zip(states, saved["states"], strict=True):
            for old, new in zip(st, tensors, strict=True):
                old.copy_(new.to(old.device))
    g.set_state(saved["generator"])
    alive[:] = saved["alive"]
    for r, rec in zip(results, saved["results"], strict=True):
        r.status = rec["status"]
        r.compile_seconds = rec["compile_seconds"]
        r.info.update(rec["info"])
        r.epochs = [EpochMetrics(**m) for m in rec["epochs"]]
    return int(saved["epoch"])


# --------------------------------------------------------------------------------------------
# L-BFGS: one model, the core's closure-based optimizer, large or full batches
# --------------------------------------------------------------------------------------------


def train_lbfgs(
    spec: ModelSpec,
    data: PreparedData,
    *,
    batch_size: int,
    max_examples: int | None = None,
    max_seconds: float | None = None,
    dtype: torch.dtype = torch.float32,
    on_eval: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Train one model with ``make_optimizer("lbfgs", **spec.hparams)``: each
    ``step(closure)`` works on one batch of ``batch_size`` images (the whole training set when it
    equals ``n_train``); batches follow the seed's permutation, and the initial network is the
    seed's, as in :func:`train_stack`.

    Budgets: ``max_examples`` example-gradients (a closure call on a batch of B images costs B)
    and ``max_seconds`` of training time (evaluation excluded). Training goes on until **both**
    are spent (a missing one counts as spent), so one run serves both comparisons. Metrics are
    taken each time another ``n_train`` example-gradients (an "epoch of gradients") are done,
    when a budget is crossed (marked ``"budget": "gradients"`` / ``"time"``) and at the end;
    each record carries ``grad_evals``, ``examples``, ``epochs_of_gradients`` and cumulative
    training ``seconds``."""
    from .torch_optim import make_optimizer

    if max_examples is None and max_seconds is None:
        raise ValueError("train_lbfgs needs max_examples or max_seconds")
    device = data.x_train.device
    param = mlp.init_flat(spec.seed, dtype=dtype, device=device, init=spec.init)
    param.requires_grad_(True)
    opt = make_optimizer("lbfgs", [param], **spec.hparams)
    batch_size = min(batch_size, data.n_train)
    n_batches = data.n_train // batch_size
    used = n_batches * batch_size
    g = data_generator(spec.seed)
    counter = {"evals": 0, "examples": 0}
    batch: dict[str, torch.Tensor] = {}

    def closure():
        loss, grad = mlp.loss_and_grad(param.detach().view(1, -1), batch["x"], batch["y"])
        param.grad = grad.view(-1)
        counter["evals"] += 1
        counter["examples"] += int(batch["x"].shape[0])
        return loss.sum()

    result = RunResult(spec)
    result.info.update({"batch_size": batch_size, "batches_per_epoch": n_batches})
    seconds, n_steps, epoch = 0.0, 0, 0
    next_mark = data.n_train
    crossed = {"gradients": max_examples is None, "time": max_seconds is None}
    while True:
        epoch += 1
        perm = torch.randperm(data.n_train, generator=g)[:used].to(device)
        xs, ys = data.x_train[perm], data.y_train[perm]
        for b in range(n_batches):
            batch["x"] = xs[b * batch_size : (b + 1) * batch_size]
            batch["y"] = ys[b * batch_size : (b + 1) * batch_size]
            t0 = time.perf_counter()
            opt.step(closure)
            _sync(device)
            seconds += time.perf_counter() - t0
            n_steps += 1
            marks = []
            if not crossed["gradients"] and counter["examples"] >= max_examples:
                crossed["gradients"] = True
                marks.append("gradients")
            if not crossed["time"] and seconds >= max_seconds:
                crossed["time"] = True
                marks.append("time")
            done = all(crossed.values())
            if counter["examples"] >= next_mark or marks or done:
                while next_mark <= counter["examples"]:
                    next_mark += data.n_train
                m = _epoch_metrics(param.detach().view(1, -1), data, epoch, seconds)[0]
                m.extra.update({"step": n_steps, "grad_evals": counter["evals"],
                                "examples": counter["examples"],
                                "epochs_of_gradients": round(counter["examples"] / data.n_train,
                                                             4)})
                if marks:
                    m.extra["budget"] = "+".join(marks)
                m.eval_seconds = None
                result.epochs.append(m)
                if not _finite(m):
                    result.status = "diverged"
                    done = True
                if on_eval is not None:
                    on_eval(result)
            if done:
                break
        if done:
            break
    if result.status != "diverged":
        result.status = "ok"
    result.info.update({"grad_evals": counter["evals"], "examples": counter["examples"],
                        "train_seconds": round(seconds, 3), "steps": n_steps})
    return result
