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

:func:`optlab.mnist.lbfgs_runner.train_lbfgs` runs L-BFGS (not elementwise: it needs dot
products over all parameters) as a single model with :func:`optlab.make_optimizer` and a
closure on large or full batches.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import mlp
from ..rules import get_rule
from ..schedules import lr_at
from .checkpoint import _read_checkpoint, _restore, _stack_identity, _write_checkpoint
from .compiled_step import (
    _Group,
    _group_key,
    _order_by_group,
    _state_tensors,
    _Stepper,
    _tensorize_state,
)
from .device_data import PreparedData, data_generator
from .records import EpochMetrics, ModelSpec, RunResult
from .runtime import _cores, _sync, compile_mode_for


def _graph_key(specs: Sequence[ModelSpec], batch_size: int, n_train: int, dtype: torch.dtype,
               device: torch.device, threads: int | None = None) -> str:
    """What the compiled step's graph depends on: the rule groups in stack order, K, the batch
    size, the rows of the epoch buffer, dtype, device, torch version and the torch threads
    (inductor's CPU kernels are generated for a thread count: measured, a 2-thread run after a
    1-thread one compiled cold again)."""
    import hashlib

    ordered = [specs[i] for i in _order_by_group(specs)]
    text = json.dumps([[_group_key(s) for s in ordered], batch_size,
                       (n_train // batch_size) * batch_size, str(dtype), device.type,
                       torch.__version__, torch.get_num_threads() if threads is None else threads])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _graph_marker(key: str) -> str | None:
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return os.path.join(cache, "optlab-graphs", key) if cache else None


def compile_cache_warm(specs: Sequence[ModelSpec], *, batch_size: int, n_train: int,
                       dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                       threads: int | None = None) -> bool:
    """Whether this stack's step was compiled before into the inductor cache
    ``TORCHINDUCTOR_CACHE_DIR`` (optlab leaves a marker there after each compile), with
    ``threads`` torch threads (default: the current setting)."""
    marker = _graph_marker(_graph_key(specs, batch_size, n_train, dtype, torch.device(device),
                                      threads))
    return marker is not None and os.path.exists(marker)


def plan_compile(specs: Sequence[ModelSpec], *, epochs: int, batch_size: int, n_train: int,
                 compile: bool | None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu", threads: int | None = None) -> str | None:
    """The compile mode :func:`train_stack` will use for this stack when it runs with
    ``threads`` torch threads (default: the current setting); see :func:`compile_mode_for`,
    the work is ``len(specs) x steps``."""
    device = torch.device(device)
    warm = compile is None and compile_cache_warm(specs, batch_size=batch_size,
                                                  n_train=n_train, dtype=dtype, device=device,
                                                  threads=threads)
    return compile_mode_for(device, compile, len(specs) * (n_train // batch_size) * epochs,
                            warm, len(specs))


def _remember_compiled(key: str) -> None:
    marker = _graph_marker(key)
    if marker is None:
        return
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "a", encoding="utf-8"):
            pass
    except OSError:  # a read-only cache: the next run judges it cold, nothing worse
        pass


def _epoch_metrics(
    flat: torch.Tensor, data: PreparedData, epoch: int, seconds: float,
    threads: int | None = None,
) -> list[EpochMetrics]:
    """Every model's loss and accuracy on each evaluation set, with ``threads`` torch threads
    (default: the training's; the setting is restored after)."""
    t0 = time.perf_counter()
    train_threads = torch.get_num_threads()
    if threads is not None and threads != train_threads:
        torch.set_num_threads(threads)
    try:
        res = {name: mlp.evaluate(flat, x, y) for name, (x, y) in data.evals.items()}
        host = {name: (lo.cpu().tolist(), ac.cpu().tolist()) for name, (lo, ac) in res.items()}
    finally:
        if torch.get_num_threads() != train_threads:
            torch.set_num_threads(train_threads)
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
    eval_threads: int | None = None,
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

    ``eval_threads``: torch threads for the per-epoch evaluation (default: the current
    setting, the training's; at most the available cores). Its products are large and split
    well over cores, where the batch-32 steps do not
    (:func:`optlab.mnist.runtime.eval_threads`).
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
    if eval_threads is not None:
        if isinstance(eval_threads, bool) or not isinstance(eval_threads, int) \
                or eval_threads < 1:
            raise ValueError(f"eval_threads must be an integer >= 1 or None; got "
                             f"{eval_threads!r}")
        eval_threads = min(eval_threads, _cores())
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
    mode = plan_compile(specs, epochs=epochs, batch_size=batch_size, n_train=data.n_train,
                        compile=compile, dtype=dtype, device=device)
    if mode == "reduce-overhead":  # CUDA graphs: every mutated input must keep its address
        from torch import _dynamo

        state_ts = [x for st in states for x in _state_tensors(st)]
        for t in [flat, pos, correct, xs, ys, arange, *lrs, *state_ts]:
            _dynamo.mark_static_address(t)
    step_key = (groups_t, batch_size, k, str(dtype), device.type)
    stepper = _Stepper(groups_t, batch_size, mode, step_key)

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
        metrics = _epoch_metrics(flat, data, epoch, seconds, eval_threads)
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
            if stepper.compiled:
                _remember_compiled(_graph_key(specs, batch_size, data.n_train, dtype, device))
            for r in results:
                r.compile_seconds = stepper.compile_seconds
                r.info["compile"] = stepper.compiled
                r.info["compile_mode"] = mode if stepper.compiled else None
                r.info["eval_threads"] = eval_threads or torch.get_num_threads()
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
