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
    hvp = mlp_loss_hvp(flat, x, y, sizes)
    return top_eigenvalue(hvp, flat.numel(), max_iter=max_iter, tol=tol, seed=seed,
                          dtype=flat.dtype, device=flat.device)
