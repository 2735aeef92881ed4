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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import mlp

__all__ = ["EigenEstimate", "mlp_loss_hvp", "power_iteration", "top_eigenvalue",
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
                    device: str | torch.device = "cpu", shift: float = 0.0) -> EigenEstimate:
    """Dominant eigenvalue of ``H - shift * I`` (plus ``shift``), given ``v -> H v``.

    Stops when the Rayleigh quotient changes by less than ``tol`` relative, or after
    ``max_iter`` products."""
    if max_iter < 1:
        raise ValueError(f"power_iteration: max_iter must be >= 1; got {max_iter}")
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


def top_eigenvalue(hvp: HVP, dim: int, **kwargs) -> EigenEstimate:
    """Largest (algebraic) eigenvalue of a symmetric H given its products: power iteration, and a
    second, shifted run when the dominant eigenvalue is negative."""
    first = power_iteration(hvp, dim, **kwargs)
    if first.value >= 0:
        return first
    second = power_iteration(hvp, dim, **{**kwargs, "shift": first.value})
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
                           tol: float = 1e-4, seed: int = 0) -> EigenEstimate:
    """Top eigenvalue of the Hessian of one MLP's mean cross-entropy on ``(x, y)`` (pass the full
    training set, or say which batch you used: the value depends on it)."""
    _check_mlp_inputs(flat, x, y, sizes)
    if not (tol >= 0):
        raise ValueError(f"top_hessian_eigenvalue: tol must be >= 0; got {tol}")
    hvp = mlp_loss_hvp(flat, x, y, sizes)
    return top_eigenvalue(hvp, flat.numel(), max_iter=max_iter, tol=tol, seed=seed,
                          dtype=flat.dtype, device=flat.device)


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
