"""optlab.trajectory: shapes, sweeps, divergence, noise, validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import optlab
from optlab.rules import FIRST_ORDER, RULES
from optlab.surfaces import SURFACES, get_surface, quadratic
from optlab.trajectories import Trajectory, trajectories, trajectory

#: A learning rate per rule that moves sensibly on Rosenbrock.
#: Each rule's demo learning rate: sensible Rosenbrock paths from its start.
LRS = {name: rule.demo_lr for name, rule in RULES.items()}


def test_lazy_package_attribute():
    assert optlab.trajectory is trajectory


def test_shapes_single_start():
    t = trajectory("adam", "rosenbrock", [0.5, 0.5], 25, lr=0.01)
    assert isinstance(t, Trajectory)
    assert t.path.shape == (26, 1, 2) and t.losses.shape == (26, 1)
    assert t.diverged.shape == (1,) and t.diverged.dtype == bool
    assert t.diverged_at.shape == (1,) and np.issubdtype(t.diverged_at.dtype, np.integer)
    assert t.final.shape == (1, 2) and t.final_loss.shape == (1,)
    assert t.name == "adam" and t.hparams["lr"] == 0.01 and t.hparams["betas"] == (0.9, 0.999)
    assert (t.n, t.steps) == (1, 25)
    np.testing.assert_array_equal(t.path[0, 0], [0.5, 0.5])
    np.testing.assert_array_equal(t.final, t.path[-1])
    np.testing.assert_array_equal(t.losses, SURFACES["rosenbrock"].f(t.path))
    assert not t.diverged[0] and t.diverged_at[0] == -1


def test_shapes_many_starts_and_defaults():
    s = SURFACES["himmelblau"]
    x0 = np.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 2.0]])
    t = trajectory("momentum", s, x0, 10, lr=1e-3)
    assert t.path.shape == (11, 3, 2) and t.losses.shape == (11, 3) and t.final.shape == (3, 2)
    np.testing.assert_array_equal(t.path[0], x0)
    d = trajectory("sgd", "beale", steps=3)  # default start: surface.start, default lr
    np.testing.assert_array_equal(d.path[0, 0], SURFACES["beale"].start)
    assert d.hparams["lr"] == optlab.RULES["sgd"].defaults["lr"]
    assert trajectory("sgd", "beale", steps=0).path.shape == (1, 1, 2)


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_rows_of_a_batch_equal_single_runs(name):
    """The batch runner (arrays) and the single-path runner (floats) agree to the last bit on
    a polynomial surface."""
    s = SURFACES["rosenbrock"]
    lrs = LRS[name] * np.array([0.25, 0.5, 1.0, 1.5])
    sweep = trajectory(name, s, s.start, 150, lr=lrs)
    assert sweep.path.shape == (151, 4, 2)
    np.testing.assert_array_equal(sweep.hparams["lr"], lrs)
    for i, lr in enumerate(lrs):
        single = trajectory(name, s, s.start, 150, lr=float(lr))
        np.testing.assert_allclose(sweep.path[:, i], single.path[:, 0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(sweep.losses[:, i], single.losses[:, 0], rtol=1e-12)
        assert sweep.diverged[i] == single.diverged[0]
    starts = np.array([[-1.0, 2.0], [0.5, 0.0], [1.5, 1.5]])
    batch = trajectory(name, s, starts, 100, lr=LRS[name])
    for i, x0 in enumerate(starts):
        one = trajectory(name, s, x0, 100, lr=LRS[name])
        np.testing.assert_allclose(batch.path[:, i], one.path[:, 0], rtol=1e-13, atol=1e-15)


def test_sweep_equals_single_runs_on_a_trigonometric_surface():
    s = SURFACES["rastrigin"]
    lrs = np.geomspace(1e-4, 1e-2, 5)
    sweep = trajectory("adam", s, s.start, 100, lr=lrs)
    for i, lr in enumerate(lrs):
        single = trajectory("adam", s, s.start, 100, lr=lr)
        np.testing.assert_allclose(sweep.path[:, i], single.path[:, 0], rtol=1e-9, atol=1e-12)


def test_betas_sweep_and_column_sweeps():
    s = SURFACES["beale"]
    b1 = np.array([0.5, 0.8, 0.9])
    t = trajectory("adam", s, None, 50, lr=0.01, betas=(b1, 0.99))
    for i, b in enumerate(b1):
        one = trajectory("adam", s, None, 50, lr=0.01, betas=(b, 0.99))
        np.testing.assert_allclose(t.path[:, i], one.path[:, 0], rtol=1e-13)
    # a sweep already shaped as a column, a torch tensor, several sweeps of the same length
    col = trajectory("adam", s, None, 50, lr=np.full((3, 1), 0.01), betas=(b1, 0.99))
    np.testing.assert_array_equal(col.path, t.path)
    lr_t = torch.full((3,), 0.01, dtype=torch.float64)
    tt = trajectory("adam", s, None, 50, lr=lr_t, betas=(b1, 0.99))
    np.testing.assert_array_equal(tt.path, t.path)
    both = trajectory("momentum", s, None, 30, lr=np.array([1e-4, 2e-4]),
                      momentum=np.array([0.5, 0.9]))
    one = trajectory("momentum", s, None, 30, lr=2e-4, momentum=0.9)
    np.testing.assert_allclose(both.path[:, 1], one.path[:, 0], rtol=1e-13)


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_too_large_lr_diverges_and_path_stops(single):
    s = quadratic(condition=10.0)
    lrs = np.array([0.01, 0.1, 1.0])  # GD on curvature 10 needs lr < 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings leak out
        if single:
            t = trajectory("sgd", s, s.start, 100, lr=1.0)
            i = 0
        else:
            t = trajectory("sgd", s, s.start, 100, lr=lrs)
            i = 2
            assert not t.diverged[:2].any() and (t.diverged_at[:2] == -1).all()
    at = t.diverged_at[i]
    assert t.diverged[i] and 0 < at <= 100
    assert np.isfinite(t.path[:at, i]).all() and np.isfinite(t.losses[:at, i]).all()
    assert np.isnan(t.path[at:, i]).all() and np.isnan(t.losses[at:, i]).all()
    assert np.isnan(t.final[i]).all() and np.isnan(t.final_loss[i])
    # |1 - 1.0 * 10| = 9: the y coordinate grows 9x a step until it leaves the escape box
    (_, _), (y0, y1) = s.bounds
    limit = y1 + 10 * (y1 - y0)
    assert abs(s.start[1]) * 9.0 ** (at - 1) <= limit < abs(s.start[1]) * 9.0**at


@pytest.mark.parametrize("name", FIRST_ORDER)
@pytest.mark.parametrize("surface", ["rosenbrock", "rastrigin", "beale", "saddle"])
def test_divergence_never_raises_nor_warns(name, surface):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = trajectory(name, surface, None, 200, lr=1e3)
        b = trajectory(name, surface, None, 200, lr=np.array([1e-4, 1e3]))
        inf = trajectory(name, surface, None, 200, escape_factor=np.inf, lr=1e8)
    for traj in (t, b, inf):
        for i in np.flatnonzero(traj.diverged):
            at = traj.diverged_at[i]
            assert np.isfinite(traj.path[:at, i]).all() and np.isnan(traj.path[at:, i]).all()
        assert ((traj.diverged_at >= 0) == traj.diverged).all()
    if surface != "saddle":
        assert not b.diverged[0]


def test_escape_factor_and_start_outside():
    s = SURFACES["saddle"]  # unbounded below: every path but y = 0 eventually escapes
    t = trajectory("sgd", s, s.start, 1000, lr=0.01)
    assert t.diverged[0] and t.diverged_at[0] > 300
    wide = trajectory("sgd", s, s.start, 1000, lr=0.01, escape_factor=100.0)
    assert t.diverged_at[0] < wide.diverged_at[0] < 1000
    out = trajectory("adam", "rosenbrock", [[1e6, 0.0], [0.0, 0.0]], 5)
    assert out.diverged.tolist() == [True, False] and out.diverged_at[0] == 0
    assert np.isnan(out.path[:, 0]).all()


def test_sgd_small_lr_converges_to_the_quadratic_minimum():
    s = quadratic(condition=10.0, angle=0.4)
    t = trajectory("sgd", s, s.start, 2000, lr=0.05)
    np.testing.assert_allclose(t.final[0], s.minima[0], atol=1e-8)
    assert np.all(np.diff(t.losses[:, 0]) <= 0)  # lr < 1/L: monotone decrease
    starts = np.random.default_rng(0).uniform(-2, 2, (10, 2))
    many = trajectory("sgd", s, starts, 2000, lr=0.05)
    np.testing.assert_allclose(many.final, 0.0, atol=1e-8)


def test_noise_is_reproducible_and_seeded():
    s = SURFACES["quadratic"]
    a = trajectory("sgd", s, None, 50, noise=0.5, seed=3, lr=0.05)
    b = trajectory("sgd", s, None, 50, noise=0.5, seed=3, lr=0.05)
    c = trajectory("sgd", s, None, 50, noise=0.5, seed=4, lr=0.05)
    clean = trajectory("sgd", s, None, 50, lr=0.05)
    np.testing.assert_array_equal(a.path, b.path)
    assert not np.allclose(a.path[1:], c.path[1:])
    assert not np.allclose(a.path[1:], clean.path[1:])
    np.testing.assert_array_equal(clean.path, trajectory("sgd", s, None, 50, seed=9, lr=0.05).path)
    # the batch runner uses the same noise: a batch of one equals the single path
    batch = trajectory("sgd", s, None, 50, noise=np.array([0.5]), seed=3, lr=0.05)
    np.testing.assert_allclose(batch.path, a.path, rtol=1e-13, atol=1e-15)
    # with noise, SGD hovers around the minimum instead of converging to it
    long = trajectory("sgd", s, None, 3000, noise=0.5, seed=0, lr=0.05)
    assert 1e-6 < np.abs(long.path[-500:, 0]).mean() < 0.5


def test_noise_sweep_rows_get_the_level_they_ask_for():
    s = SURFACES["quadratic"]
    t = trajectory("sgd", s, None, 400, noise=np.array([0.0, 0.1, 1.0]), seed=0, lr=0.05)
    spread = np.abs(t.path[-200:]).mean(axis=(0, 2))
    assert spread[0] < 1e-3 < spread[1] < spread[2]


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"lr": -0.1}, "lr must be in (0, inf)"),
        ({"lr": np.array([0.1, -0.1])}, "lr must be in (0, inf)"),
        ({"lr": float("nan")}, "lr must be in"),
        ({"betas": (0.9, 1.0)}, "beta2 must be in [0, 1)"),
        ({"betas": (np.array([0.9, 1.5]), 0.99)}, "beta1 must be in [0, 1)"),
        ({"rho": 0.9}, "unknown hyperparameter 'rho'"),
        ({"lr": np.ones((2, 2))}, "1-D array"),
        ({"lr": np.array([0.1, 0.2]), "eps": np.array([1e-8, 1e-8, 1e-8])}, "same length N"),
        ({"noise": -1.0}, "noise must be >= 0"),
        ({"escape_factor": 0.0}, "escape_factor must be > 0"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        trajectory("adam", "rosenbrock", None, 10, **kwargs)
    assert fragment in str(err.value)


def test_bad_names_and_shapes_raise_value_error():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        trajectory("adamax", "rosenbrock", None, 10)
    with pytest.raises(ValueError, match="unknown surface 'bowl'"):
        trajectory("sgd", "bowl", None, 10)
    with pytest.raises(ValueError, match="x0 must have shape"):
        trajectory("sgd", "rosenbrock", [1.0, 2.0, 3.0], 10)
    with pytest.raises(ValueError, match="same length N"):
        trajectory("sgd", "rosenbrock", np.zeros((3, 2)), 10, lr=np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="steps"):
        trajectory("sgd", "rosenbrock", None, -1)


def test_trajectories_runs_several_optimizers():
    s = get_surface("quadratic", condition=20, angle=0.5)
    out = trajectories(["sgd", "adam"], s, None, 30)
    assert list(out) == ["sgd", "adam"]
    np.testing.assert_array_equal(out["adam"].path, trajectory("adam", s, None, 30).path)
    cfg = trajectories({"sgd": {"lr": 0.05}, "fast adam": {"name": "adam", "lr": 0.1}}, s,
                       [1.0, 1.0], 30)
    assert list(cfg) == ["sgd", "fast adam"] and cfg["fast adam"].name == "adam"
    np.testing.assert_array_equal(cfg["sgd"].path,
                                  trajectory("sgd", s, [1.0, 1.0], 30, lr=0.05).path)
    mixed = trajectories([("adam", {"lr": 0.1}), {"name": "adam", "lr": 0.01, "label": "slow"}],
                         s, None, 30, noise=0.1, seed=2)
    assert list(mixed) == ["adam", "slow"] and mixed["slow"].hparams["lr"] == 0.01
    np.testing.assert_array_equal(
        mixed["adam"].path, trajectory("adam", s, None, 30, noise=0.1, seed=2, lr=0.1).path
    )
    with pytest.raises(ValueError, match="appears twice"):
        trajectories([("adam", {"lr": 0.1}), ("adam", {"lr": 0.2})], s, None, 5)
    with pytest.raises(ValueError, match="lr must be in"):
        trajectories({"sgd": {"lr": 0.0}}, s, None, 5)


# --------------------------------------------------------------------------------------------
# Schedules and clipping: a trajectory equals the loop written by hand with torch.optim,
# torch.optim.lr_scheduler and torch.nn.utils.clip_grad_norm_
# --------------------------------------------------------------------------------------------

def _torch_path(surface, opt_factory, sched_factory, start, steps, clip_norm=None):

    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([w])
    sched = sched_factory(opt)
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        gx, gy = surface.gxy(*w.detach().tolist())
        w.grad = torch.tensor([gx, gy], dtype=torch.float64)
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([w], clip_norm)
        opt.step()
        sched.step()
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


def _scheduled_cases():
    from optlab import schedules as S

    lrs = torch.optim.lr_scheduler
    return [
        ("sgd", S.step(2e-3, every=7, gamma=0.5), {}, lambda p: torch.optim.SGD(p, lr=2e-3),
         lambda o: lrs.StepLR(o, 7, 0.5)),
        ("momentum", S.cosine(5e-4, total=40, lr_min=1e-5), {},
         lambda p: torch.optim.SGD(p, lr=5e-4, momentum=0.9),
         lambda o: lrs.CosineAnnealingLR(o, T_max=40, eta_min=1e-5)),
        ("nesterov", S.inverse_time(5e-4, decay=0.1), {},
         lambda p: torch.optim.SGD(p, lr=5e-4, momentum=0.9, nesterov=True),
         lambda o: lrs.LambdaLR(o, lambda t: 1 / (1 + 0.1 * t))),
        ("adam", S.linear_warmup(S.constant(0.05), 10), {},
         lambda p: torch.optim.Adam(p, lr=0.05),
         lambda o: lrs.LambdaLR(o, lambda t: min(1.0, (t + 1) / 10))),
        ("adam", S.linear_warmup(S.cosine(0.05, total=40), 8), {},
         lambda p: torch.optim.Adam(p, lr=0.05),  # LinearLR(1/n, n-1) is the (t+1)/n warmup
         lambda o: lrs.ChainedScheduler([lrs.LinearLR(o, 1 / 8, 1.0, 7),
                                         lrs.CosineAnnealingLR(o, T_max=40)])),
        ("rmsprop", S.step(1e-2, every=10, gamma=0.3), {},
         lambda p: torch.optim.RMSprop(p, lr=1e-2), lambda o: lrs.StepLR(o, 10, 0.3)),
        ("adagrad", S.cosine(0.5, total=40), {"lr_decay": 0.01},
         lambda p: torch.optim.Adagrad(p, lr=0.5, lr_decay=0.01),
         lambda o: lrs.CosineAnnealingLR(o, T_max=40)),
        ("adamw", S.inverse_time(0.05, decay=0.05), {"weight_decay": 0.1},
         lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
         lambda o: lrs.LambdaLR(o, lambda t: 1 / (1 + 0.05 * t))),
    ]


@pytest.mark.parametrize("clip_norm", [None, 0.5])
@pytest.mark.parametrize("case", range(8))
def test_scheduled_and_clipped_trajectory_equals_torch_loop(case, clip_norm):
    name, schedule, extra, make_opt, make_sched = _scheduled_cases()[case]
    surf = get_surface("rosenbrock")
    steps = 40
    ours = trajectory(name, surf, None, steps, lr=schedule, clip_norm=clip_norm, **extra)
    theirs = _torch_path(surf, make_opt, make_sched, surf.start, steps, clip_norm)
    np.testing.assert_allclose(ours.path[:, 0], theirs, rtol=0, atol=1e-12)
    assert np.abs(theirs[-1] - theirs[0]).max() > 1e-3  # it moved
    assert ours.hparams["lr"] is schedule and ours.clip_norm == clip_norm


def test_schedule_changes_the_path_and_batch_equals_scalar():
    from optlab import schedules as S

    sched = S.step(0.05, every=5, gamma=0.2)
    plain = trajectory("adam", "rosenbrock", steps=30, lr=0.05)
    scheduled = trajectory("adam", "rosenbrock", steps=30, lr=sched)
    np.testing.assert_array_equal(plain.path[:6], scheduled.path[:6])  # same rate for 5 steps
    assert np.abs(plain.path[-1] - scheduled.path[-1]).max() > 1e-3
    # a batch (another hyperparameter swept) runs the same schedule on every row
    batch = trajectory("adam", "rosenbrock", steps=30, lr=sched, eps=np.array([1e-8, 1e-8]),
                       clip_norm=2.0)
    single = trajectory("adam", "rosenbrock", steps=30, lr=sched, clip_norm=2.0)
    np.testing.assert_allclose(batch.path[:, 0], single.path[:, 0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(batch.path[:, 1], single.path[:, 0], rtol=0, atol=1e-14)


def test_clipping_caps_each_rows_step_and_a_sweep_of_lrs_still_works():
    # plain GD, one step from two starts with very different gradients: the step is
    # lr * min(1, C/|g|) * g, so its length is at most lr * C, each row on its own norm
    s = get_surface("rosenbrock")
    x0 = np.array([[-1.5, 2.0], [1.0, 1.001]])
    t = trajectory("sgd", s, x0, 1, lr=np.array([1e-3, 1e-3]), clip_norm=1.0)
    steps = np.linalg.norm(t.path[1] - t.path[0], axis=1)
    g = np.array([s.gxy(x, y) for x, y in x0])
    norms = np.linalg.norm(g, axis=1)
    assert norms[0] > 1 > norms[1]
    np.testing.assert_allclose(steps, 1e-3 * norms * np.minimum(1.0, 1.0 / (norms + 1e-6)),
                               rtol=1e-9)
    assert steps[0] == pytest.approx(1e-3, rel=1e-5) and steps[1] < 0.5e-3


@pytest.mark.parametrize("kwargs, fragment", [
    ({"clip_norm": 0}, "clip_norm must be a finite number > 0"),
    ({"clip_norm": -1.0}, "clip_norm must be a finite number > 0"),
    ({"clip_norm": float("nan")}, "clip_norm must be a finite number > 0"),
])
def test_bad_clip_norm_is_one_line(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        trajectory("sgd", "rosenbrock", steps=3, **kwargs)


def test_trajectories_pass_schedules_and_clipping_through():
    from optlab import schedules as S

    sched = S.cosine(0.05, total=30)
    both = trajectories({"plain": {"name": "adam", "lr": 0.05},
                         "scheduled": {"name": "adam", "lr": sched, "clip_norm": None}},
                        "rosenbrock", steps=30, clip_norm=0.5)
    alone = trajectory("adam", "rosenbrock", steps=30, lr=0.05, clip_norm=0.5)
    np.testing.assert_array_equal(both["plain"].path, alone.path)
    assert both["plain"].clip_norm == 0.5 and both["scheduled"].clip_norm is None
    np.testing.assert_array_equal(both["scheduled"].path,
                                  trajectory("adam", "rosenbrock", steps=30, lr=sched).path)


@pytest.mark.parametrize("name", [n for n, r in optlab.RULES.items() if r.torch_twin is not None])
def test_every_twinned_rule_takes_a_schedule_and_clipping_as_its_torch_twin(name):
    """The registry's twins: warmup + step decay + clipping through trajectory == torch.optim
    with a LambdaLR and clip_grad_norm_ (float64, 40 steps, on a rotated quadratic, where a
    rounding difference does not grow as on Rosenbrock's curved valley)."""
    from optlab import schedules as S

    rule = optlab.RULES[name]
    base = rule.demo_lr
    sched = S.linear_warmup(S.step(base, every=7, gamma=0.5), 5)
    surf = quadratic(condition=10.0, angle=0.5)
    ours = trajectory(name, surf, None, 40, lr=sched, clip_norm=1.0)
    theirs = _torch_path(surf, lambda p: rule.torch_twin(p, lr=base),
                         lambda o: torch.optim.lr_scheduler.LambdaLR(
                             o, lambda t: float(sched(t)) / base), surf.start, 40, 1.0)
    # torch keeps NAdam's step and momentum product as float32 scalars: 1e-10 apart from step 1
    tol = 1e-9 if name == "nadamw" else 1e-12
    np.testing.assert_allclose(ours.path[:, 0], theirs, rtol=tol, atol=tol)
    assert np.abs(theirs[-1] - theirs[0]).max() > 1e-3
