r"""The gradient noise scale of McCandlish et al. (2018): how large a batch is worth its cost.

With per-example gradients :math:`g_i` of mean :math:`G` and covariance :math:`\Sigma`, a
minibatch of :math:`B` examples has :math:`\mathbb E\lVert g_B - G \rVert^2 = \mathrm{tr}\,\Sigma/B`
(chapter 2). The *simple noise scale*

.. math::
    B_{\text{noise}} = \frac{\mathrm{tr}\,\Sigma}{\lVert G \rVert^2}

is the batch size at which that noise equals the squared length of the signal. Well below it a
larger batch buys an almost noise-free step for little more than its cost (steps fall like
:math:`1/B`); well above it the gradient is already accurate and more examples are wasted.
McCandlish et al. predict the *critical batch size* to be of this order.

From :math:`n` sampled per-example gradients (their sum and the sum of their squared norms
are enough, so they can be accumulated in chunks):

.. math::
    \widehat{\mathrm{tr}\,\Sigma} = \frac{\sum_i \lVert g_i\rVert^2 - n\lVert\bar g\rVert^2}{n-1},
    \qquad
    \widehat{\lVert G\rVert^2} = \lVert\bar g\rVert^2 - \frac{\widehat{\mathrm{tr}\,\Sigma}}{n},

both unbiased (:math:`\mathbb E\lVert\bar g\rVert^2 = \lVert G\rVert^2 + \mathrm{tr}\,\Sigma/n`).
They are McCandlish et al.'s estimators from two batch sizes (their Appendix A),
:math:`\lVert G\rVert^2 \approx (B_{\text{big}}\lVert g_{B_{\text{big}}}\rVert^2
- B_{\text{small}}\lVert g_{B_{\text{small}}}\rVert^2)/(B_{\text{big}} - B_{\text{small}})` and
:math:`\mathrm{tr}\,\Sigma \approx (\lVert g_{B_{\text{small}}}\rVert^2
- \lVert g_{B_{\text{big}}}\rVert^2)/(1/B_{\text{small}} - 1/B_{\text{big}})`, with a small
batch of one example (:math:`\lVert g_{B_{\text{small}}}\rVert^2` averaged over the :math:`n`)
and a big batch of all :math:`n`. The ratio of two unbiased estimates is itself biased, so
average :math:`\mathrm{tr}\,\Sigma` and :math:`\lVert G\rVert^2` over measurements before
dividing, as McCandlish et al. do. Their :math:`B_{\text{noise}}` weights both by the Hessian;
this :math:`\mathrm{tr}\,\Sigma/\lVert G\rVert^2` is their :math:`B_{\text{simple}}`, equal to it
when the Hessian is a multiple of the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import mlp

__all__ = ["NoiseScale", "mlp_noise_scale", "noise_scale_from_sums"]


@dataclass(frozen=True)
class NoiseScale:
    """``trace_cov`` = tr Σ (per example), ``grad_sq`` = ‖G‖² (unbiased), from ``n`` examples."""

    trace_cov: float
    grad_sq: float
    n: int

    @property
    def b_noise(self) -> float:
        """:math:`\\mathrm{tr}\\,\\Sigma / \\lVert G\\rVert^2` (inf when the signal is not
        resolved: ``grad_sq <= 0``; sample more examples)."""
        return self.trace_cov / self.grad_sq if self.grad_sq > 0 else float("inf")


def noise_scale_from_sums(grad_sum: Any, sq_norm_sum: float, n: int) -> NoiseScale:
    """The unbiased estimates from ``grad_sum`` = Σ g_i (a vector), ``sq_norm_sum`` =
    Σ ‖g_i‖² and the number of examples ``n`` (at least 2)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"noise_scale_from_sums: n must be an integer >= 2 (a covariance needs "
                         f"two examples); got {n!r}")
    mean_sq = float((grad_sum * grad_sum).sum()) / n**2
    trace = (float(sq_norm_sum) - n * mean_sq) / (n - 1)
    return NoiseScale(trace_cov=trace, grad_sq=mean_sq - trace / n, n=n)


def mlp_noise_scale(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> NoiseScale:
    """:class:`NoiseScale` of one MLP (``flat`` of shape ``(P,)``) on the examples ``(x, y)``
    (a random sample of the training set).

    Never forms the per-example gradients: one example's gradient of a layer's weight is the
    outer product :math:`a_{i} \\delta_{i}^\\top` of its input activation and its back-propagated
    error, whose squared norm is :math:`\\lVert a_i\\rVert^2 \\lVert \\delta_i\\rVert^2`; so
    one batched forward and backward give every :math:`\\lVert g_i\\rVert^2` and the sum
    :math:`\\sum_i g_i` (tested against per-example :func:`optlab.mlp.loss_and_grad`)."""
    if flat.ndim != 1 or flat.shape[0] != mlp.n_params():
        raise ValueError(f"mlp_noise_scale: flat must have shape ({mlp.n_params()},); "
                         f"got {tuple(flat.shape)}")
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
        raise ValueError(f"mlp_noise_scale: x must be (n, 784) and y (n,) with n >= 2; got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    with torch.no_grad():
        ps = [p[0] for p in mlp.unflatten(flat.detach()[None])]
        n_layers = len(ps) // 2
        acts, h = [x], x
        for j in range(n_layers):
            h = h @ ps[2 * j] + ps[2 * j + 1]
            if j < n_layers - 1:
                h = torch.relu(h)
                acts.append(h)
        delta = torch.softmax(h, dim=-1) - torch.nn.functional.one_hot(y, h.shape[-1]).to(h)
        sq_norms = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        grads: list[torch.Tensor] = [torch.empty(0)] * len(ps)
        for j in range(n_layers - 1, -1, -1):
            a = acts[j]
            d2 = (delta * delta).sum(dim=1).double()
            sq_norms += (a * a).sum(dim=1).double() * d2 + d2  # weight, bias
            grads[2 * j] = (a.t() @ delta).reshape(-1)
            grads[2 * j + 1] = delta.sum(dim=0)
            if j > 0:
                delta = (delta @ ps[2 * j].t()) * (a > 0)
        grad_sum = torch.cat(grads).double()
    return noise_scale_from_sums(grad_sum, float(sq_norms.sum()), int(x.shape[0]))
