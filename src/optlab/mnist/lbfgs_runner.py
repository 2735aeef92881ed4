"""L-BFGS on MNIST: one model, the core's closure-based optimizer, large or full batches
(:func:`train_lbfgs`; L-BFGS is not elementwise, so it cannot join a stack)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .. import mlp
from .device_data import PreparedData, data_generator
from .records import ModelSpec, RunResult
from .runtime import _sync
from .stack import _epoch_metrics, _finite


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
    from ..torch_optim import make_optimizer

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
            if max_examples is not None and not crossed["gradients"] \
                    and counter["examples"] >= max_examples:
                crossed["gradients"] = True
                marks.append("gradients")
            if max_seconds is not None and not crossed["time"] and seconds >= max_seconds:
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
