r"""The curvature of a real network: the top eigenvalue of the loss Hessian, without forming it.

Chapter 1's stability theory says gradient descent on a quadratic diverges once
:math:`\eta > 2/\lambda_{\max}`. For the paper's MLP the Hessian is 111,146 x 111,146 (49 GB in
float32), but a Hessian-vector product costs about two gradients (forward-over-reverse,
:func:`torch.func.jvp` of :func:`torch.func.grad`), and *power iteration* needs nothing else:

.. math::
    v_{k+1} = \frac{H v_k}{\lVert H v_k \rVert}, \qquad
    \lambda^{(k)} = v_k^\top H v_k \;\to\; \lambda_{|\max|} .

Power iteration finds the eigenvalue of largest *magnitude*. If that one is negative (a saddle
direction dominates), :func:`top_eigenvalue` runs it again on :math:`H - \lambda I`, whose
dominant eigenvalue is :math:`\lambda_{\max} - \lambda \ge 0`, and adds :math:`\lambda` back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import mlp

__all__ = ["EigenEstimate", "adam_preconditioner", "adam_stability_limit",
           "curvature_along_training", "mlp_loss_hvp", "power_iteration", "read_curvature",
           "top_eigenvalue",
           "top_hessian_eigenvalue"]

HVP = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EigenEstimate:
    """An eigenvalue estimate, its unit eigenvector, the Rayleigh quotients per iteration, and
    whether the relative change fell below ``tol`` before ``max_iter``."""

    value: float
    vector: torch.Tensor
    history: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def iterations(self) -> int:
        return len(self.history)


def power_iteration(hvp: HVP, dim: int, *, max_iter: int = 100, tol: float = 1e-4,
                    seed: int = 0, dtype: torch.dtype = torch.float64,
                    device: str | torch.device = "cpu", shift: float = 0.0,
                    start: torch.Tensor | None = None) -> EigenEstimate:
    """Dominant eigenvalue of ``H - shift * I`` (plus ``shift``), given ``v -> H v``.

    Starts from ``start`` (e.g. the eigenvector of a nearby matrix: the previous epoch's) or a
    random vector drawn from ``seed``. Stops when the Rayleigh quotient changes by less than
    ``tol`` relative, or after ``max_iter`` products."""
    if max_iter < 1:
        raise ValueError(f"power_iteration: max_iter must be >= 1; got {max_iter}")
    if start is not None:
        if start.shape != (dim,) or not bool(torch.isfinite(start).all()) or start.norm() == 0:
            raise ValueError(f"power_iteration: start must be a finite, non-zero vector of "
                             f"shape ({dim},); got shape {tuple(start.shape)}")
        v = start.detach().to(device=device, dtype=dtype).clone()
    else:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        v = torch.randn(dim, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    v /= v.norm()
    history: list[float] = []
    for _ in range(max_iter):
        hv = hvp(v) - shift * v
        rayleigh = float(v @ hv)
        history.append(rayleigh + shift)
        norm = hv.norm()
        if not torch.isfinite(norm) or norm == 0:
            break
        v = hv / norm
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
            return EigenEstimate(history[-1], v, history, True)
    return EigenEstimate(history[-1], v, history, False)


def top_eigenvalue(hvp: HVP, dim: int, **kwargs: Any) -> EigenEstimate:
    """Largest (algebraic) eigenvalue of a symmetric H given its products: power iteration, and a
    second, shifted run when the dominant eigenvalue is negative."""
    first = power_iteration(hvp, dim, **kwargs)
    if first.value >= 0:
        return first
    second = power_iteration(hvp, dim, **{**kwargs, "shift": first.value, "start": None})
    second.history = first.history + second.history
    return second


def mlp_loss_hvp(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                 sizes: tuple[int, ...] = mlp.LAYER_SIZES) -> HVP:
    """``v -> H v`` for the mean cross-entropy of one MLP (``flat`` of shape ``(P,)``) on
    ``(x, y)``: forward-over-reverse differentiation, never the dense Hessian."""
    flat = flat.detach()

    def loss(w: torch.Tensor) -> torch.Tensor:
        logits = mlp.forward(w.unsqueeze(0), x, sizes=sizes)[0]
        return torch.nn.functional.cross_entropy(logits, y)

    grad = torch.func.grad(loss)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(grad, (flat,), (v.to(flat.dtype),))[1]

    return hvp


def top_hessian_eigenvalue(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                           sizes: tuple[int, ...] = mlp.LAYER_SIZES, max_iter: int = 100,
                           tol: float = 1e-4, seed: int = 0,
                           start: torch.Tensor | None = None,
                           precondition: torch.Tensor | None = None) -> EigenEstimate:
    r"""Top eigenvalue of the Hessian of one MLP's mean cross-entropy on ``(x, y)`` (pass the full
    training set, or say which batch you used: the value depends on it).

    ``precondition``: a positive vector ``d`` (shape ``(P,)``); then the top eigenvalue of
    :math:`D H` with :math:`D = \mathrm{diag}(d)`, computed as that of the symmetric
    :math:`D^{1/2} H D^{1/2}` (same eigenvalues). For Adam, :math:`d = 1/(\sqrt{\hat v} +
    \epsilon)` gives the *preconditioned sharpness* that governs its stability
    (:func:`adam_preconditioner`). ``start``: a starting vector (e.g. the previous estimate's)."""
    _check_mlp_inputs(flat, x, y, sizes)
    if not (tol >= 0):
        raise ValueError(f"top_hessian_eigenvalue: tol must be >= 0; got {tol}")
    hvp = mlp_loss_hvp(flat, x, y, sizes)
    if precondition is not None:
        if precondition.shape != flat.shape or not bool((precondition > 0).all()):
            raise ValueError(f"top_hessian_eigenvalue: precondition must be a positive vector of "
                             f"shape {tuple(flat.shape)}")
        root = precondition.detach().to(flat.dtype).sqrt()
        plain = hvp

        def hvp(v: torch.Tensor) -> torch.Tensor:
            return root * plain(root * v)

    return top_eigenvalue(hvp, flat.numel(), max_iter=max_iter, tol=tol, seed=seed,
                          dtype=flat.dtype, device=flat.device, start=start)


def adam_preconditioner(state: Any, *, betas: tuple[float, float] = (0.9, 0.999),
                        eps: float = 1e-8) -> torch.Tensor:
    r"""Adam's per-coordinate scale :math:`d = 1/(\sqrt{\hat v_t} + \epsilon)` from its state
    (``step``, ``v``; PyTorch's placement of :math:`\epsilon`): the step of coordinate
    :math:`i` is :math:`\eta\, d_i\, \hat m_i`, so :math:`\eta d_i` is its *effective learning
    rate*. Before the first step (``step == 0``) :math:`\hat v` is undefined: ``d`` is then
    :math:`1/\epsilon` everywhere, as the formula gives for :math:`v = 0`."""
    t = float(state.step)
    v = state.v
    v_hat = v / (1 - betas[1] ** t) if t > 0 else torch.zeros_like(v)
    return 1.0 / (v_hat.sqrt() + eps)


#: For Adam with momentum :math:`\beta_1` on a quadratic, the iteration is stable while
#: :math:`\eta\,\lambda_{\max}(D H) < 2(1+\beta_1)/(1-\beta_1)` (38 for :math:`\beta_1 = 0.9`;
#: Cohen et al. 2022, "Adaptive gradient methods at the edge of stability"), the analogue of
#: gradient descent's :math:`\eta\,\lambda_{\max}(H) < 2`.
def adam_stability_limit(beta1: float) -> float:
    r"""The threshold on :math:`\eta\,\lambda_{\max}(DH)`: ``2 (1 + beta1) / (1 - beta1)``."""
    if not 0 <= beta1 < 1:
        raise ValueError(f"adam_stability_limit: beta1 must be in [0, 1); got {beta1}")
    return 2 * (1 + beta1) / (1 - beta1)


def _check_mlp_inputs(flat: Any, x: Any, y: Any, sizes: tuple[int, ...]) -> None:
    """One-line ``ValueError`` / ``TypeError`` for inputs the MLP's loss cannot take."""
    where = "top_hessian_eigenvalue"
    for name, t in (("flat", flat), ("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor; got {type(t).__name__} "
                            f"(use torch.as_tensor({name}))")
    n_params = mlp.n_params(sizes)
    if flat.shape != (n_params,):
        raise ValueError(f"{where}: flat must have shape ({n_params},) for layer sizes {sizes}; "
                         f"got {tuple(flat.shape)}")
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(f"{where}: x must have shape (batch, {sizes[0]}); got {tuple(x.shape)}")
    if x.dtype != flat.dtype:
        raise ValueError(f"{where}: x is {x.dtype} but flat is {flat.dtype}; give both the "
                         "same dtype")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{where}: y must have shape ({x.shape[0]},), one label per row of x; "
                         f"got {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: the batch is empty; give at least one example")
    if y.dtype.is_floating_point or y.dtype == torch.bool or int(y.min()) < 0 or int(
            y.max()) >= sizes[-1]:
        raise ValueError(f"{where}: y must hold integer class labels in 0 .. {sizes[-1] - 1}")
    if not bool(torch.isfinite(flat).all()):
        raise ValueError(f"{where}: flat holds NaN or inf (a diverged model?); its Hessian "
                         "is not defined")


def curvature_along_training(
    data: Any, *, seed: int, init: str, optimizers: Sequence[str], lr: float, epochs: int,
    at: Sequence[int], n_images: int = 10_000, batch_size: int = 32, max_iter: int = 60,
    tol: float = 1e-3, compile: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    r"""Train ``optimizers`` at ``lr`` side by side from one ``init`` and ``seed``
    (:func:`optlab.engine.train_stack`, the paper's batch order) and, at each epoch in ``at``
    (0 = the initial network), measure the top eigenvalue of the Hessian of the mean
    cross-entropy on the **first** ``n_images`` training images, for every model.

    For Adam also: quantiles of its effective per-coordinate learning rate
    :math:`\eta/(\sqrt{\hat v} + \epsilon)` and the top eigenvalue of the preconditioned
    Hessian :math:`DH` (:func:`adam_preconditioner`), to compare with
    :func:`adam_stability_limit` / ``lr``. Power iteration restarts from the previous
    measurement's vector of the same model (fewer products; the value is the same within
    ``tol``).

    ``data``: an :class:`optlab.engine.PreparedData`. Returns ``(points, runs)``: one record per
    model and measured epoch, and the training runs' records (per-epoch metrics)."""
    from . import engine
    from .rules import resolve_hparams

    if not 0 < n_images <= data.n_train:
        raise ValueError(f"n_images must be in 1 .. {data.n_train}; got {n_images}")
    bad = sorted(e for e in at if not 0 <= e <= epochs)
    if bad:
        raise ValueError(f"at: epochs {bad} are outside 0 .. {epochs}")
    x, y = data.x_train[:n_images], data.y_train[:n_images]
    specs = [engine.ModelSpec(o, {"lr": lr}, seed, init) for o in optimizers]
    hps = [resolve_hparams(o, lr=lr) for o in optimizers]
    points: list[dict[str, Any]] = []
    starts: dict[tuple[int, str], torch.Tensor] = {}
    wanted = set(at)

    def measure(epoch: int, params: torch.Tensor, states: list[Any]) -> None:
        if epoch not in wanted:
            return
        for i, (spec, hp) in enumerate(zip(specs, hps, strict=True)):
            row = params[i]
            if not bool(torch.isfinite(row).all()):
                continue
            same = next((p for p in points if p["epoch"] == epoch and p["model"] < i
                         and torch.equal(params[p["model"]], row)), None)
            rec: dict[str, Any] = {"seed": seed, "init": init, "optimizer": spec.optimizer,
                                   "lr": lr, "epoch": epoch, "model": i,
                                   "n_images": n_images, "two_over_lr": 2.0 / lr}
            t0 = time.perf_counter()
            if same is not None:  # epoch 0: every model starts from the same network
                rec.update({k: same[k] for k in ("top_eigenvalue", "iterations", "converged",
                                                 "loss")})
            else:
                est = top_hessian_eigenvalue(row, x, y, max_iter=max_iter, tol=tol, seed=seed,
                                             start=starts.get((i, "plain")))
                starts[(i, "plain")] = est.vector
                loss = torch.nn.functional.cross_entropy(mlp.forward(row.unsqueeze(0), x)[0], y)
                rec.update({"top_eigenvalue": est.value, "iterations": est.iterations,
                            "converged": est.converged, "loss": float(loss)})
            rec["lr_times_top_eigenvalue"] = lr * rec["top_eigenvalue"]
            if spec.optimizer == "adam" and float(states[i].step) > 0:
                d = adam_preconditioner(states[i], betas=hp["betas"], eps=hp["eps"])
                eff = (lr * d).double()
                q = torch.quantile(eff[torch.randperm(eff.numel(), generator=torch.Generator()
                                                      .manual_seed(0))[:100_000]],
                                   torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
                pre = top_hessian_eigenvalue(row, x, y, max_iter=max_iter, tol=tol, seed=seed,
                                             start=starts.get((i, "pre")), precondition=d)
                starts[(i, "pre")] = pre.vector
                limit = adam_stability_limit(hp["betas"][0])
                rec.update({
                    "effective_lr_q10": float(q[0]), "effective_lr_median": float(q[1]),
                    "effective_lr_q90": float(q[2]),
                    "preconditioned_top_eigenvalue": pre.value,
                    "preconditioned_iterations": pre.iterations,
                    "preconditioned_converged": pre.converged,
                    "adam_limit": limit, "adam_limit_over_lr": limit / lr,
                    "lr_times_preconditioned": lr * pre.value})
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            points.append(rec)
            if log is not None:
                extra = (f", eta*lambda(DH) = {rec['lr_times_preconditioned']:.3g} "
                         f"(limit {rec['adam_limit']:.0f})" if "adam_limit" in rec else "")
                log(f"seed {seed} {init} {spec.optimizer} epoch {epoch}: lambda_max = "
                    f"{rec['top_eigenvalue']:.4g} (2/lr = {2 / lr:.4g}){extra} "
                    f"[{rec['seconds']:.0f} s]")

    results = engine.train_stack(specs, data, epochs=epochs, batch_size=batch_size,
                                 compile=compile, on_params=measure)
    runs = [{**r.as_dict(), "init": init} for r in results]
    return points, runs


def read_curvature(path: str | os.PathLike) -> dict[str, Any]:
    """The ``curvature.json`` that ``python -m optlab curvature`` wrote, checked: a
    ``provenance`` and a ``config`` object and a list of ``points``, each with its ``init``,
    ``optimizer``, ``epoch``, ``lr`` and a numeric ``top_eigenvalue``. A bad file is one
    ``ValueError`` line naming it."""
    import json

    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: not a readable curvature.json ({e}); rerun python -m "
                         "optlab curvature") from None
    if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), t) for k, t in (("provenance", dict), ("config", dict),
                                                   ("points", list))):
        raise ValueError(f"{where}: a curvature.json has provenance, config and points; rerun "
                         "python -m optlab curvature")
    for i, p in enumerate(doc["points"]):
        ok = isinstance(p, dict) and all(k in p for k in ("init", "optimizer", "epoch", "lr"))
        if not ok or isinstance(p.get("top_eigenvalue"), bool) or not isinstance(
                p.get("top_eigenvalue"), (int, float)):
            raise ValueError(f"{where}: point {i + 1} lacks init, optimizer, epoch, lr or a "
                             "numeric top_eigenvalue; rerun python -m optlab curvature")
    return doc
