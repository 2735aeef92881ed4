r"""The paper's MLP, 784-128-64-32-10 with ReLU, as *stacked* tensors and a hand-written backward.

K models live side by side in one flat parameter tensor of shape ``(K, P)`` (``P = 111,146``);
each layer's weight is a view ``(K, in, out)`` and its bias a view ``(K, 1, out)`` into it. All K
models see the same minibatch, so a forward pass is a handful of batched matrix products, and
the backward is written out by hand (about fifteen lines, tested against ``torch.autograd``):

.. math::
    \partial z_L = \frac{\mathrm{softmax}(z_L) - \mathrm{onehot}(y)}{B}, \quad
    \partial W_j = a_{j-1}^\top \partial z_j, \quad
    \partial b_j = \textstyle\sum_i \partial z_j, \quad
    \partial z_{j-1} = (\partial z_j W_j^\top) \odot [z_{j-1} > 0]

The loss of model k is its own mean cross-entropy; the gradient is that of the *sum* over models,
so each model receives exactly its own gradient (a mean over K would scale every learning rate
by 1/K).
"""

from __future__ import annotations

import math

import torch

#: Layer widths of the paper's network.
LAYER_SIZES: tuple[int, ...] = (784, 128, 64, 32, 10)


def _layer_shapes(sizes: tuple[int, ...] = LAYER_SIZES) -> list[tuple[int, int]]:
    return list(zip(sizes[:-1], sizes[1:], strict=False))


def n_params(sizes: tuple[int, ...] = LAYER_SIZES) -> int:
    """Number of parameters of one model (111,146 for the paper's MLP)."""
    return sum(i * o + o for i, o in _layer_shapes(sizes))


def unflatten(flat: torch.Tensor, sizes: tuple[int, ...] = LAYER_SIZES) -> list[torch.Tensor]:
    """Views ``[W1, b1, W2, b2, ...]`` into ``flat`` of shape ``(K, P)``: ``W`` is
    ``(K, in, out)`` (the transpose of ``nn.Linear.weight``), ``b`` is ``(K, 1, out)``."""
    k = flat.shape[0]
    out, pos = [], 0
    for i, o in _layer_shapes(sizes):
        out.append(flat[:, pos : pos + i * o].view(k, i, o))
        pos += i * o
        out.append(flat[:, pos : pos + o].view(k, 1, o))
        pos += o
    return out


#: Weight initializations: what each framework's dense layer uses by default, and He's.
INITS = ("pytorch", "glorot", "he")


def init_flat(
    seed: int, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
    sizes: tuple[int, ...] = LAYER_SIZES, init: str = "pytorch",
) -> torch.Tensor:
    """One model's parameters, shape ``(P,)``, from a generator seeded with ``seed``.

    * ``"pytorch"`` (default): as ``nn.Linear`` does by default, Kaiming-uniform with
      ``a = sqrt(5)``, i.e. weights and biases uniform in :math:`\\pm 1/\\sqrt{\\text{fan\\_in}}`;
    * ``"glorot"``: Keras ``Dense``'s default, weights uniform in
      :math:`\\pm\\sqrt{6/(\\text{fan\\_in} + \\text{fan\\_out})}` and zero biases;
    * ``"he"``: He-uniform (Keras ``HeUniform``), weights uniform in
      :math:`\\pm\\sqrt{6/\\text{fan\\_in}}` and zero biases.

    The numbers are drawn in float32 on the CPU whatever ``dtype``/``device``, so a seed gives the
    same network everywhere, whatever the optimizer."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    g = torch.Generator().manual_seed(int(seed))
    parts = []
    for fan_in, fan_out in _layer_shapes(sizes):
        w = torch.empty(fan_out, fan_in)
        if init == "pytorch":
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
            bound = 1.0 / math.sqrt(fan_in)
            b = torch.empty(fan_out).uniform_(-bound, bound, generator=g)
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out if init == "glorot" else fan_in))
            w.uniform_(-limit, limit, generator=g)
            b = torch.zeros(fan_out)
        parts += [w.t().reshape(-1), b]  # stored as (in, out)
    return torch.cat(parts).to(device=device, dtype=dtype)


def to_module(flat_row: torch.Tensor, sizes: tuple[int, ...] = LAYER_SIZES) -> torch.nn.Sequential:
    """An ``nn.Sequential`` of ``nn.Linear`` + ReLU holding a copy of one model's parameters
    (``flat_row`` of shape ``(P,)``): the readable twin of the stacked network."""
    views = unflatten(flat_row.detach().reshape(1, -1), sizes)
    layers: list[torch.nn.Module] = []
    for j, (i, o) in enumerate(_layer_shapes(sizes)):
        lin = torch.nn.Linear(i, o, dtype=flat_row.dtype, device=flat_row.device)
        with torch.no_grad():
            lin.weight.copy_(views[2 * j][0].t())
            lin.bias.copy_(views[2 * j + 1][0, 0])
        layers.append(lin)
        if j < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def forward(flat: torch.Tensor, x: torch.Tensor,
            sizes: tuple[int, ...] = LAYER_SIZES) -> torch.Tensor:
    """Logits ``(K, B, 10)`` of the K stacked models on one shared batch ``x`` of shape
    ``(B, 784)``."""
    ps = unflatten(flat, sizes)
    h = x
    n_layers = len(ps) // 2
    for j in range(n_layers):
        h = torch.matmul(h, ps[2 * j]) + ps[2 * j + 1]
        if j < n_layers - 1:
            h = torch.relu(h)
    return h


def loss_and_grad(
    flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, with_loss: bool = True,
    correct_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Per-model mean cross-entropy ``(K,)`` and its gradient ``(K, P)`` (same layout as
    ``flat``), by a hand-written backward pass. ``x``: ``(B, 784)``, ``y``: ``(B,)`` int64.

    ``correct_out``: an int64 tensor ``(K,)`` to which each model's number of correct
    predictions on this batch is added in place (the logits of this forward pass, i.e. before
    the update: what Keras's ``fit`` averages into its training accuracy); no host sync."""
    ps = unflatten(flat)
    n_layers = len(ps) // 2
    batch = x.shape[0]
    acts = [x]  # a_0 = x (shared), a_j = relu(z_j)
    h = x
    for j in range(n_layers):
        h = torch.matmul(h, ps[2 * j]) + ps[2 * j + 1]
        if j < n_layers - 1:
            h = torch.relu(h)
            acts.append(h)
    logits = h  # (K, B, C)
    if correct_out is not None:
        correct_out.add_((logits.argmax(dim=-1) == y).sum(dim=1))
    logp = torch.log_softmax(logits, dim=-1)
    loss = None
    if with_loss:
        loss = -logp.gather(-1, y.view(1, -1, 1).expand(logits.shape[0], -1, 1)).mean(dim=(1, 2))
    onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).to(logits.dtype)
    gz = (torch.exp(logp) - onehot) / batch  # dL/dz for the last layer, (K, B, C)
    grads: list[torch.Tensor] = [None] * len(ps)  # type: ignore[list-item]
    for j in range(n_layers - 1, -1, -1):
        a = acts[j]
        if j == 0:  # shared input: x^T @ gz broadcasts over K
            grads[0] = torch.matmul(a.t(), gz)
        else:
            grads[2 * j] = torch.matmul(a.transpose(1, 2), gz)
        grads[2 * j + 1] = gz.sum(dim=1, keepdim=True)
        if j > 0:
            gz = torch.matmul(gz, ps[2 * j].transpose(1, 2)) * (a > 0)
    k = flat.shape[0]
    return loss, torch.cat([g.reshape(k, -1) for g in grads], dim=1)


@torch.no_grad()
def evaluate(
    flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, chunk: int = 2048,
    sizes: tuple[int, ...] = LAYER_SIZES,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean cross-entropy and accuracy of each of the K models on ``(x, y)``, as two device
    tensors of shape ``(K,)`` (no host sync), ``chunk`` examples at a time.

    The K models share their input, so the first layer is **one** matrix product for all of
    them, :math:`x\,[W_1^{(1)} \mid \dots \mid W_1^{(K)}]`, of shape ``(B, K * 128)``,
    instead of K products of a broadcast input; the later layers are batched products.
    Measured on one CPU thread, K = 4, one epoch's evaluation (the 60,000 training and 10,000
    test images): 0.72 s against 1.12 s for the broadcast form (``python
    benchmarks/mnist_epoch.py``, ``benchmarks/measured/epoch_1thread_eval.txt``). Chunks of
    2,048 rows: in a one-off comparison on the training images, 0.61 s against 0.68 s for
    8,192 and 0.72 s for one chunk of 60,000 (not in the committed measurements)."""
    ps = unflatten(flat, sizes)
    k, n_layers = flat.shape[0], len(ps) // 2
    w1 = ps[0].permute(1, 0, 2).reshape(ps[0].shape[1], -1)  # (784, K * 128), a copy
    b1 = ps[1].permute(1, 0, 2).reshape(1, -1)  # (1, K * 128)
    loss_sum = torch.zeros(k, dtype=torch.float64, device=flat.device)
    correct = torch.zeros(k, dtype=torch.int64, device=flat.device)
    rows = max(1, int(chunk))
    for i in range(0, x.shape[0], rows):
        xb, yb = x[i : i + rows], y[i : i + rows]
        h = torch.addmm(b1, xb, w1)  # z_1 of all K models side by side: (B, K * 128)
        h = h.view(xb.shape[0], k, -1).transpose(0, 1)  # (K, B, 128), a view
        for j in range(1, n_layers):
            h = torch.relu(h)  # a_{j} = relu(z_{j})
            h = torch.baddbmm(ps[2 * j + 1], h, ps[2 * j])  # z_{j+1} = a_j W_{j+1} + b_{j+1}
        logp = torch.log_softmax(h, dim=-1)
        nll = -logp.gather(-1, yb.view(1, -1, 1).expand(k, -1, 1)).squeeze(-1)
        loss_sum += nll.sum(dim=1).double()
        correct += (h.argmax(dim=-1) == yb).sum(dim=1)
    n = max(x.shape[0], 1)
    return loss_sum / n, correct.double() / n
