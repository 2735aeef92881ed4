"""optlab.schedules: closed forms, torch.optim.lr_scheduler twins, the CLI text form."""

from __future__ import annotations

import math

import pytest
import torch

from optlab.schedules import (
    constant,
    cosine,
    inverse_time,
    linear_warmup,
    parse_schedule,
    step,
)


def _torch_lrs(make_scheduler, n: int, lr: float) -> list[float]:
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("schedule, twin", [
    (constant(0.1), lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    (step(0.1, every=7, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    (cosine(0.1, total=40, lr_min=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=0.01)),
    (inverse_time(0.1, decay=0.3),
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + 0.3 * t))),
])
def test_schedule_equals_its_torch_scheduler(schedule, twin):
    ours = [float(schedule(t)) for t in range(41)]
    assert ours == pytest.approx(_torch_lrs(twin, 41, 0.1), rel=1e-12, abs=1e-15)


def test_closed_forms_and_tensor_steps():
    assert cosine(1.0, total=10)(5) == pytest.approx(0.5)
    assert cosine(1.0, total=10, lr_min=0.2)(25) == pytest.approx(0.2)  # held after the end
    assert step(1.0, every=3, gamma=0.1)(8) == pytest.approx(0.01)
    assert linear_warmup(0.5, steps=4)(0) == pytest.approx(0.125)
    assert linear_warmup(0.5, steps=4)(100) == pytest.approx(0.5)
    warm = linear_warmup(cosine(1.0, total=20), steps=4)
    expected = [cosine(1.0, total=20)(t) * min(1.0, (t + 1) / 4) for t in range(20)]
    assert [warm(t) for t in range(20)] == pytest.approx(expected, rel=1e-15)
    t = torch.tensor(6.0)  # the compiled engine passes a 0-d tensor
    for s in (constant(0.1), step(0.1, 4), cosine(0.1, 10), inverse_time(0.1, 1.0),
              linear_warmup(cosine(0.1, 10), 8)):
        out = s(t)
        assert isinstance(out, torch.Tensor) and float(out) == pytest.approx(s(6))


def test_robbins_monro_partial_sums():
    inv = inverse_time(0.1, decay=1.0)
    s1 = sum(inv(t) for t in range(100_000))
    s2 = sum(inv(t) ** 2 for t in range(100_000))
    assert s1 > 0.1 * (math.log(100_000) - 1)  # grows like log T: diverges
    assert s2 < 0.1**2 * math.pi**2 / 6 + 1e-12  # bounded


def test_describe_and_parse_round_trip():
    s = parse_schedule("cosine:total=18750,lr_min=0", lr=1e-3, warmup_steps=500)
    assert s.describe() == {"name": "linear_warmup", "steps": 500, "schedule": {
        "name": "cosine", "lr": 1e-3, "total": 18750, "lr_min": 0}}
    assert s.base_lr == 1e-3
    assert parse_schedule("constant", lr=0.1) == constant(0.1)


@pytest.mark.parametrize("text, message", [
    ("exponential", "unknown schedule 'exponential'"),
    ("cosine", "schedule cosine needs total"),
    ("step:every=x", "every must be a number"),
    ("step:evry=3", "expected key=value with key in every, gamma"),
])
def test_bad_schedule_text_is_one_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(text, lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        constant(-1.0)


# --------------------------------------------------------------------------------------------
# make_optimizer with a schedule and clipping == torch.optim + lr_scheduler + clip_grad_norm_
# --------------------------------------------------------------------------------------------

def _two_param_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(5, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    target = torch.randn(16, 3, generator=g, dtype=torch.float64)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)

    def loss(params):
        w, c = params
        return ((x @ w + c - target) ** 2).mean() * 10

    return [a, b], loss


def _train(make, params0, loss, steps, clip_norm=None):
    params = [p.clone().requires_grad_() for p in params0]
    opt, sched = make(params)
    for _ in range(steps):
        opt.zero_grad()
        loss(params).backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        opt.step()
        if sched is not None:
            sched.step()
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("name, ours_kw, twin, sched", [
    ("sgd", {"momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), None),
    ("adam", {}, lambda p: torch.optim.Adam(p, lr=0.01), None),
    ("rmsprop", {}, lambda p: torch.optim.RMSprop(p, lr=0.01), None),
])
@pytest.mark.parametrize("clip_norm", [None, 0.3])
def test_make_optimizer_with_a_schedule_equals_torch_lr_scheduler(name, ours_kw, twin, sched,
                                                                   clip_norm):
    from optlab import make_optimizer

    rule = "momentum" if ours_kw.get("momentum") else name
    ours_kw = {k: v for k, v in ours_kw.items()}
    schedule = linear_warmup(cosine(0.01, total=30, lr_min=1e-4), 5)
    lrs = torch.optim.lr_scheduler

    def theirs(params):
        opt = twin(params)
        return opt, lrs.LambdaLR(opt, lambda t: float(schedule(t)) / 0.01)

    def ours(params):
        return make_optimizer(rule, params, lr=schedule, clip_norm=clip_norm, **ours_kw), None

    params0, loss = _two_param_problem()
    a, _ = _train(ours, params0, loss, 30)  # ours clips inside step()
    b, _ = _train(theirs, params0, loss, 30, clip_norm)
    for x, y, p0 in zip(a, b, params0, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-12)
        assert (x - p0).abs().max() > 1e-3


def test_make_optimizer_schedule_against_step_lr_and_state_dict_round_trip():
    from optlab import make_optimizer

    params0, loss = _two_param_problem(1)
    lrs = torch.optim.lr_scheduler
    sched = step(0.05, every=4, gamma=0.5)
    full, _ = _train(lambda p: (make_optimizer("adam", p, lr=sched), None), params0, loss, 12)
    ref, _ = _train(lambda p: ((o := torch.optim.Adam(p, lr=0.05)), lrs.StepLR(o, 4, 0.5)),
                    params0, loss, 12)
    for x, y in zip(full, ref, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-12)
    # 5 steps, state_dict into a fresh optimizer, 7 more steps: the same as 12 at once
    half, opt = _train(lambda p: (make_optimizer("adam", p, lr=sched), None), params0, loss, 5)
    params = [p.clone().requires_grad_() for p in half]
    fresh = make_optimizer("adam", params, lr=0.123)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["lr"] == sched
    for _ in range(7):
        fresh.zero_grad()
        loss(params).backward()
        fresh.step()
    for x, y in zip(params, full, strict=True):
        torch.testing.assert_close(x.detach(), y, rtol=0, atol=1e-12)


def test_make_optimizer_refuses_bad_schedules_and_clip():
    from optlab import make_optimizer

    w = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        make_optimizer("sgd", w, lr=0.1, clip_norm=0.0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        make_optimizer("sgd", w, lr=cosine(-0.1, total=10))


def test_parse_schedule_defaults_total_to_the_run():
    assert parse_schedule("cosine", lr=0.1, total_steps=500) == cosine(0.1, total=500)
    assert parse_schedule("cosine:total=20", lr=0.1, total_steps=500) == cosine(0.1, 20)
    assert parse_schedule("step:every=3", lr=0.1, total_steps=500) == step(0.1, 3)  # no total
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 0"):
        parse_schedule("constant", lr=0.1, warmup_steps=-1)
    with pytest.raises(ValueError, match="total must be a finite number > 0; got -1"):
        parse_schedule("cosine:total=-1", lr=0.1, total_steps=500)


def test_clip_coefficient_floats_arrays_tensors():
    import numpy as np

    from optlab.clipping import check_clip_norm, clip_coefficient

    assert clip_coefficient(0.5, 1.0) == 1.0
    assert clip_coefficient(4.0, 1.0) == pytest.approx(1 / (4 + 1e-6), rel=1e-15)
    np.testing.assert_allclose(clip_coefficient(np.array([[0.5], [4.0]]), 2.0),
                               [[1.0], [2 / (4 + 1e-6)]])
    t = clip_coefficient(torch.tensor([0.1, 10.0], dtype=torch.float64), 1.0)
    assert t.tolist() == pytest.approx([1.0, 1 / (10 + 1e-6)], rel=1e-15)
    assert check_clip_norm(None) is None and check_clip_norm(3) == 3.0
    for bad in (0, -1.0, float("inf"), True, "1"):
        with pytest.raises(ValueError, match="clip_norm must be"):
            check_clip_norm(bad)


def test_radam_rectification_is_torch_radams_step():
    """With a constant gradient, m_hat = v_hat = 1, so torch's RAdam moves by lr * r_t once
    rho_t > 5 and by lr (its un-adapted momentum step) before."""
    from optlab.schedules import radam_rectification

    lr, beta2, n = 0.01, 0.99, 40
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RAdam([w], lr=lr, betas=(0.9, beta2), eps=0.0)
    moves = []
    for _ in range(n):
        before = w.detach().clone()
        w.grad = torch.ones_like(w)
        opt.step()
        moves.append(float(before - w.detach()) / lr)
    for t in range(1, n + 1):
        rho, r = radam_rectification(t, beta2)
        assert moves[t - 1] == pytest.approx(r if rho > 5 else 1.0, rel=1e-9), t
    rho_1, r_1 = radam_rectification(1, beta2)
    assert rho_1 == pytest.approx(1.0) and r_1 == 0  # one sample: no variance estimate yet
    rho_big, r_big = radam_rectification(10**6, beta2)
    assert rho_big == pytest.approx(2 / (1 - beta2) - 1) and r_big == pytest.approx(1.0)


def test_radam_rectification_on_arrays_and_bad_input():
    import numpy as np

    from optlab.schedules import radam_rectification

    t = np.arange(1, 2001)
    rho, r = radam_rectification(t)
    assert np.all(np.diff(rho) > 0) and np.all((r >= 0) & (r < 1))
    assert np.all(np.diff(r[rho > 5]) > 0)  # the rectification only grows towards 1
    scalar = [radam_rectification(int(k))[1] for k in (3, 10, 100, 1000)]
    assert np.allclose(scalar, r[[2, 9, 99, 999]])
    with pytest.raises(ValueError, match="beta2"):
        radam_rectification(3, beta2=1.0)
    with pytest.raises(ValueError, match="from 1"):
        radam_rectification(0)


def test_radam_rectification_threshold_below_four_is_refused():
    """r_t's radicand (rho_t - 4)(rho_t - 2) is negative for 2 < rho_t < 4: a threshold below 4
    would return a made-up r_t there, so it is one line naming the fix; 4 (the paper's) works."""
    import numpy as np

    from optlab.schedules import radam_rectification

    with pytest.raises(ValueError, match="threshold must be a number >= 4"):
        radam_rectification(5, threshold=3.0)
    rho, r = radam_rectification(np.arange(1, 50), 0.999, threshold=4)
    assert np.all(r[rho <= 4] == 0) and np.all(r[rho > 4] > 0)
