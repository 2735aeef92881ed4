"""optlab.curvature: power iteration on Hessian-vector products against dense Hessians."""

from __future__ import annotations

import pytest
import torch

from optlab import mlp
from optlab.curvature import mlp_loss_hvp, power_iteration, top_eigenvalue, top_hessian_eigenvalue

TINY = (6, 5, 4, 3)


def _tiny_problem(seed=0, init="pytorch"):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(40, TINY[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, TINY[-1], (40,), generator=g)
    flat = mlp.init_flat(seed, dtype=torch.float64, sizes=TINY, init=init)
    return flat, x, y


def _dense_hessian(flat, x, y):
    def loss(w):
        return torch.nn.functional.cross_entropy(mlp.forward(w.unsqueeze(0), x, sizes=TINY)[0], y)

    return torch.autograd.functional.hessian(loss, flat)


@pytest.mark.parametrize("init", ["pytorch", "glorot", "he"])
def test_hvp_equals_dense_hessian_times_v(init):
    flat, x, y = _tiny_problem(1, init)
    H = _dense_hessian(flat, x, y)
    v = torch.randn(flat.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(mlp_loss_hvp(flat, x, y, TINY)(v), H @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_top_hessian_eigenvalue_of_a_tiny_mlp(seed):
    flat, x, y = _tiny_problem(seed)
    exact = torch.linalg.eigvalsh(_dense_hessian(flat, x, y)).max().item()
    est = top_hessian_eigenvalue(flat, x, y, sizes=TINY, max_iter=3000, tol=1e-13)
    assert est.converged
    assert est.value == pytest.approx(exact, rel=1e-6)


def test_negative_dominant_eigenvalue_is_shifted_away():
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(0)))
    H = Q @ torch.diag(torch.tensor([-5.0, -1.0, 0.5, 1.0, 3.0], dtype=torch.float64)) @ Q.T
    plain = power_iteration(lambda v: H @ v, 5, max_iter=2000, tol=1e-14)
    top = top_eigenvalue(lambda v: H @ v, 5, max_iter=2000, tol=1e-14)
    assert plain.value == pytest.approx(-5.0, rel=1e-8)  # the largest magnitude
    assert top.value == pytest.approx(3.0, rel=1e-8)  # the largest value


def test_inits_have_their_documented_scales():
    sizes = (784, 128, 64, 32, 10)
    for init, bound in [("glorot", (6 / (784 + 128)) ** 0.5), ("he", (6 / 784) ** 0.5),
                        ("pytorch", 1 / 784**0.5)]:
        w1 = mlp.unflatten(mlp.init_flat(0, init=init).unsqueeze(0), sizes)[0]
        b1 = mlp.unflatten(mlp.init_flat(0, init=init).unsqueeze(0), sizes)[1]
        assert w1.abs().max().item() <= bound and w1.abs().max().item() > 0.99 * bound
        assert (b1.abs().max().item() == 0) == (init != "pytorch")
    with pytest.raises(ValueError, match="init must be one of"):
        mlp.init_flat(0, init="xavier")
