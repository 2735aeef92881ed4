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


def test_preconditioned_top_eigenvalue_is_that_of_DH():
    flat, x, y = _tiny_problem(2)
    H = _dense_hessian(flat, x, y)
    d = torch.rand(flat.numel(), dtype=torch.float64,
                   generator=torch.Generator().manual_seed(5)) * 10 + 0.1
    exact = torch.linalg.eigvals(torch.diag(d) @ H).real.max().item()
    est = top_hessian_eigenvalue(flat, x, y, sizes=TINY, max_iter=5000, tol=1e-13,
                                 precondition=d)
    assert est.value == pytest.approx(exact, rel=1e-6)
    plain = torch.linalg.eigvalsh(H).max().item()
    assert abs(exact - plain) > 0.1 * plain  # the preconditioning changed the answer


def test_power_iteration_from_a_given_start():
    flat, x, y = _tiny_problem(0)
    exact = torch.linalg.eigvalsh(_dense_hessian(flat, x, y)).max().item()
    first = top_hessian_eigenvalue(flat, x, y, sizes=TINY, max_iter=3000, tol=1e-13)
    again = top_hessian_eigenvalue(flat, x, y, sizes=TINY, max_iter=3000, tol=1e-13,
                                   start=first.vector)
    assert again.value == pytest.approx(exact, rel=1e-6)
    assert again.iterations < first.iterations  # it starts at the answer
    with pytest.raises(ValueError, match="start must be"):
        power_iteration(lambda v: v, 3, start=torch.zeros(3))


def test_adam_preconditioner_gives_torch_adams_step():
    from optlab.curvature import adam_preconditioner
    from optlab.rules import AdamState

    g = torch.Generator().manual_seed(0)
    w = torch.randn(50, dtype=torch.float64, generator=g, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.01)
    for _ in range(4):
        opt.zero_grad()
        (w**4).sum().backward()
        before = w.detach().clone()
        opt.step()
    st = opt.state[w]
    state = AdamState(step=st["step"], m=st["exp_avg"], v=st["exp_avg_sq"])
    m_hat = st["exp_avg"] / (1 - 0.9**4)
    step = 0.01 * m_hat * adam_preconditioner(state)
    torch.testing.assert_close(before - w.detach(), step, rtol=1e-10, atol=1e-14)


def test_curvature_along_training_measures_the_trained_networks():
    from optlab import engine
    from optlab.curvature import adam_stability_limit, curvature_along_training
    from optlab.data import synthetic_dataset

    data = engine.prepare_data(synthetic_dataset(n_train=256, n_test=64, seed=1))
    points, runs = curvature_along_training(
        data, seed=3, init="glorot", optimizers=["sgd", "adam"], lr=0.01, epochs=2, at=[0, 2],
        n_images=128, max_iter=200, tol=1e-6, compile=False)
    assert sorted((p["optimizer"], p["epoch"]) for p in points) == [
        ("adam", 0), ("adam", 2), ("sgd", 0), ("sgd", 2)]
    at0 = [p for p in points if p["epoch"] == 0]
    direct = top_hessian_eigenvalue(mlp.init_flat(3, init="glorot"), data.x_train[:128],
                                    data.y_train[:128], max_iter=200, tol=1e-6)
    for p in at0:  # the initial network, the same for both optimizers
        assert p["top_eigenvalue"] == pytest.approx(direct.value, rel=1e-3)
    late = {p["optimizer"]: p for p in points if p["epoch"] == 2}
    assert late["sgd"]["top_eigenvalue"] != late["adam"]["top_eigenvalue"]
    assert late["adam"]["adam_limit"] == pytest.approx(adam_stability_limit(0.9)) == 38
    assert 0 < late["adam"]["effective_lr_q10"] <= late["adam"]["effective_lr_median"]
    assert "preconditioned_top_eigenvalue" not in late["sgd"]
    assert [len(r["epochs"]) for r in runs] == [2, 2]
