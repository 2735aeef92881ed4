"""The stacked engine against the readable path: hand-written backward == autograd, and K models
trained in one stack with the core's rules == each model alone with make_optimizer + autograd."""

from __future__ import annotations

import math
import os

import pytest
import torch

from optlab import engine, make_optimizer, mlp
from optlab.data import synthetic_dataset
from optlab.engine import ModelSpec
from optlab.rules import FIRST_ORDER, RULES


@pytest.fixture(scope="module")
def small():
    return synthetic_dataset(n_train=512, n_test=128, seed=3)


def test_layout_and_init_match_nn_linear():
    assert mlp.n_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    a, b = mlp.init_flat(0), mlp.init_flat(0)
    assert torch.equal(a, b) and not torch.equal(a, mlp.init_flat(1))
    for j, (fan_in, _) in enumerate(zip(mlp.LAYER_SIZES[:-1], mlp.LAYER_SIZES[1:], strict=False)):
        w = mlp.unflatten(a.view(1, -1))[2 * j]
        assert w.abs().max() <= 1 / math.sqrt(fan_in) + 1e-7
        assert w.abs().max() > 0.9 / math.sqrt(fan_in)  # uniform over the whole interval


def test_handwritten_backward_equals_autograd():
    g = torch.Generator().manual_seed(0)
    k = 3
    flat = torch.stack([mlp.init_flat(s, dtype=torch.float64) for s in range(k)])
    flat[1] *= 3  # make the models really different
    x = torch.rand(16, 784, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=g)
    loss, grad = mlp.loss_and_grad(flat, x, y)
    ref = flat.clone().requires_grad_()
    ref_loss = torch.stack([
        torch.nn.functional.cross_entropy(mlp.to_module(ref[i].detach())(x), y)
        for i in range(k)])
    logits = mlp.forward(ref, x)
    per_model = torch.stack([torch.nn.functional.cross_entropy(logits[i], y) for i in range(k)])
    per_model.sum().backward()
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, ref.grad, rtol=0, atol=1e-12)
    assert grad.abs().max() > 1e-3


@pytest.mark.parametrize("chunk", [7, 2048])
def test_evaluate_equals_each_model_alone(chunk):
    """The stacked evaluation (one first-layer product for all K models, chunks of rows)
    gives each model's own mean cross-entropy and accuracy, as nn.Sequential computes them."""
    g = torch.Generator().manual_seed(1)
    k = 3
    flat = torch.stack([mlp.init_flat(s, dtype=torch.float64) for s in range(k)])
    flat[2] *= 4  # very different models, confident (some wrong) predictions
    x = torch.rand(50, 784, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (50,), generator=g)
    loss, acc = mlp.evaluate(flat, x, y, chunk=chunk)
    for i in range(k):
        logits = mlp.to_module(flat[i])(x)
        torch.testing.assert_close(loss[i], torch.nn.functional.cross_entropy(logits, y),
                                   rtol=0, atol=1e-12)
        assert acc[i].item() == (logits.argmax(1) == y).double().mean().item()
    assert len(set(acc.tolist())) > 1 and len(set(loss.tolist())) == k
    # a diverged model (NaN weights) leaves the others' numbers as they were; K = 1 alone too
    broken = flat.clone()
    broken[0, :1000] = float("nan")
    loss_b, acc_b = mlp.evaluate(broken, x, y, chunk=chunk)
    assert math.isnan(loss_b[0]) and torch.equal(loss_b[1:], loss[1:])
    assert torch.equal(acc_b[1:], acc[1:])
    loss_1, acc_1 = mlp.evaluate(flat[2:3], x, y, chunk=chunk)
    torch.testing.assert_close(loss_1, loss[2:3], rtol=0, atol=1e-12)
    assert torch.equal(acc_1, acc[2:3])
    # another architecture: sizes follow the flat layout
    sizes = (784, 16, 10)
    small_flat = torch.stack([mlp.init_flat(s, sizes=sizes) for s in range(2)])
    loss2, _ = mlp.evaluate(small_flat, x.float(), y, sizes=sizes, chunk=chunk)
    ref = torch.nn.functional.cross_entropy(mlp.to_module(small_flat[1], sizes)(x.float()), y)
    torch.testing.assert_close(loss2[1].float(), ref, rtol=1e-6, atol=1e-6)


def _alone(spec: ModelSpec, data: engine.PreparedData, steps: int, batch: int,
           dtype: torch.dtype) -> torch.Tensor:
    """The readable path: nn.Sequential + autograd + make_optimizer, same init and batches."""
    model = mlp.to_module(mlp.init_flat(spec.seed, dtype=dtype))
    opt = make_optimizer(spec.optimizer, model.parameters(), **spec.hparams)
    g = engine.data_generator(spec.seed)
    n_batches = data.n_train // batch
    done = 0
    while done < steps:
        perm = torch.randperm(data.n_train, generator=g)[: n_batches * batch]
        xs, ys = data.x_train[perm], data.y_train[perm]
        for b in range(n_batches):
            if done == steps:
                break
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(xs[b * batch:(b + 1) * batch]), ys[b * batch:(b + 1) * batch])
            loss.backward()
            opt.step()
            done += 1
    return torch.cat([torch.cat([lin.weight.detach().t().reshape(-1), lin.bias.detach()])
                      for lin in model if isinstance(lin, torch.nn.Linear)])


def _stack_params(specs, data, epochs, batch, dtype, compile=False):
    """Train the stack and return its final parameters, in the order of ``specs``."""
    captured = {}
    from optlab.mnist import stack

    orig = stack._epoch_metrics

    def spy(flat, data_, epoch, seconds, threads=None):
        captured["flat"] = flat.detach().clone()
        return orig(flat, data_, epoch, seconds, threads)

    stack._epoch_metrics = spy
    try:
        results = engine.train_stack(specs, data, epochs=epochs, batch_size=batch,
                                     compile=compile, dtype=dtype)
    finally:
        stack._epoch_metrics = orig
    order = engine._order_by_group(specs)
    flat = captured["flat"]
    return results, {order[i]: flat[i] for i in range(len(specs))}


# every first-order rule (at the middle of its tuning grid), two of them twice (two learning
# rates in one group), and variants
HETERO = [ModelSpec(name, {"lr": rule.lr_grid[len(rule.lr_grid) // 2]}, 7)
          for name, rule in RULES.items()] + [
    ModelSpec("adam", {"lr": 0.003}, 7), ModelSpec("sgd", {"lr": 0.2}, 7),
    ModelSpec("rmsprop", {"lr": 0.001, "centered": True, "momentum": 0.5}, 7),
    ModelSpec("momentum", {"lr": 0.02, "dampening": 0.5, "weight_decay": 0.01}, 7),
]


def test_stack_of_different_rules_equals_each_model_alone_float64(small):
    assert {s.optimizer for s in HETERO} == set(FIRST_ORDER)
    data = engine.prepare_data(small, dtype=torch.float64)
    batch = 32  # 512 / 32 = 16 steps per epoch, 2 epochs: 32 steps, two permutations
    results, params = _stack_params(HETERO, data, 2, batch, torch.float64)
    assert [r.spec for r in results] == HETERO
    for i, spec in enumerate(HETERO):
        ref = _alone(spec, data, 32, batch, torch.float64)
        moved = (ref - mlp.init_flat(7, dtype=torch.float64)).abs().max()
        assert moved > 1e-3, spec
        err = (params[i] - ref).abs().max().item()
        assert err < 1e-10, f"{spec}: max abs difference {err:.3e}"


@pytest.mark.skipif(os.environ.get("OPTLAB_SKIP_COMPILE_TEST") == "1", reason="asked to skip")
def test_compiled_stack_float32_matches_readable_path(small):
    """One compiled test: the whole step under torch.compile, float32, a few steps."""
    specs = [ModelSpec(n, {"lr": lr}, 1) for n, lr in
             [("sgd", 0.05), ("adam", 0.003), ("momentum", 0.02)]]
    data = engine.prepare_data(synthetic_dataset(n_train=256, n_test=64, seed=1))
    results, params = _stack_params(specs, data, 1, 32, torch.float32, compile=True)
    if not results[0].info.get("compile"):
        pytest.skip("torch.compile unavailable here: the engine fell back to eager")
    for i, spec in enumerate(specs):
        ref = _alone(spec, data, 8, 32, torch.float32)
        diff = params[i] - ref
        rel = (diff.norm() / ref.norm()).item()
        # float32 rounding differs (bmm vs mm); Adam rescales a gradient of ~1e-9 to a full
        # step, so a coordinate whose gradient is rounding noise may move by ~lr: hence the
        # norm criterion, plus a loose bound on the worst coordinate.
        assert rel < 1e-5, f"{spec}: relative difference {rel:.3e}"
        assert diff.abs().max().item() < 1e-4, spec


def test_same_seed_same_numbers_other_seed_differs(small):
    data = engine.prepare_data(small)

    def run(seed):
        rs = engine.train_stack([ModelSpec("adam", {"lr": 1e-3}, seed),
                                 ModelSpec("sgd", {"lr": 0.05}, seed)], data, epochs=2,
                                compile=False)
        return [(e.train_loss, e.test_acc) for r in rs for e in r.epochs]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_divergence_is_marked_and_does_not_stop_the_others(small):
    data = engine.prepare_data(small)
    rs = engine.train_stack([ModelSpec("sgd", {"lr": 1e6}, 0),
                             ModelSpec("adam", {"lr": 1e-3}, 0)], data, epochs=3, compile=False)
    bad, good = rs
    assert bad.status == "diverged" and good.status == "ok"
    assert len(bad.epochs) == 1 and len(good.epochs) == 3
    assert all(math.isfinite(e.test_acc) for e in good.epochs)


def test_validation_split_is_carved_from_training_set(small):
    data = engine.prepare_data(small, val_size=128)
    assert data.n_train == 384 and data.evals["val"][0].shape[0] == 128
    assert data.evals["test"][0].shape[0] == 128
    torch.testing.assert_close(data.evals["val"][0][0],
                               small.train_images[384].reshape(-1).float() / 255)
    rs = engine.train_stack([ModelSpec("adam", {}, 0)], data, epochs=1, compile=False)
    assert rs[0].epochs[0].val_acc is not None


def test_partial_last_batch_is_dropped(small):
    data = engine.prepare_data(small)
    rs = engine.train_stack([ModelSpec("sgd", {"lr": 0.1}, 0)], data, epochs=1,
                            batch_size=100, compile=False)  # 512 = 5 x 100 + 12
    assert rs[0].status == "ok"


def test_lbfgs_runs_to_both_budgets(small):
    data = engine.prepare_data(small)
    spec = ModelSpec("lbfgs", {"lr": 1.0, "max_iter": 5, "line_search_fn": "strong_wolfe"}, 0)
    r = engine.train_lbfgs(spec, data, batch_size=512, max_examples=20 * 512, max_seconds=0.0)
    assert r.status == "ok"
    assert r.info["examples"] >= 20 * 512
    assert any("gradients" in e.extra.get("budget", "") for e in r.epochs)
    assert r.epochs[-1].test_acc > r.epochs[0].test_acc - 0.2
    assert r.epochs[-1].train_loss < 0.9 * r.epochs[0].train_loss


def test_device_choice():
    assert engine.pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(engine.DeviceError, match="no CUDA GPU"):
            engine.pick_device("cuda")
    assert engine.default_threads(1, False) == 1


def test_thread_rule_follows_the_measurements(monkeypatch):
    from optlab.mnist import runtime

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    monkeypatch.setattr(runtime, "_cores", lambda: 16)
    assert engine.default_threads(7, False, busy=0.0) == 1  # eager: 1 thread, steadier
    assert engine.default_threads(2, True, busy=0.0) == 1  # small compiled stacks: no gain
    assert engine.default_threads(4, True, busy=0.0) == 2  # K=4 compiled gains from 2 threads
    assert engine.default_threads(28, True, busy=0.0) == 8  # batch-32 GEMMs split no further
    assert engine.default_threads(28, True, jobs=4, busy=0.0) == 4  # cores shared by the jobs
    assert engine.default_threads(28, True, busy=12.0) == 4  # only the idle cores
    monkeypatch.setattr(runtime, "_cores", lambda: 2)
    assert engine.default_threads(28, True, busy=0.0) == 2
    assert engine.default_threads(28, True, jobs=2, busy=0.0) == 1
    # busy (measured: 2 threads 15-20x slower per step at load 10 on 2 cores)
    assert engine.default_threads(28, True, busy=1.2) == 1
    assert engine.default_threads(28, True, busy=10.0) == 1


def test_evaluation_runs_on_its_own_threads_and_gives_the_threads_back(small, monkeypatch):
    from optlab.mnist import stack

    seen: list[int] = []
    orig = mlp.evaluate

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return orig(*a, **k)

    data = engine.prepare_data(small)
    specs = [ModelSpec("adam", {}, 0), ModelSpec("sgd", {"lr": 0.1}, 0)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ref = engine.train_stack(specs, data, epochs=2, compile=False)
        monkeypatch.setattr(stack.mlp, "evaluate", spy)
        out = engine.train_stack(specs, data, epochs=2, compile=False, eval_threads=2)
        assert torch.get_num_threads() == 1  # the training's setting is back
    finally:
        torch.set_num_threads(before)
    n = min(2, engine._cores())
    assert seen and set(seen) == {n}
    assert out[0].info["eval_threads"] == n and ref[0].info["eval_threads"] == 1
    # the same numbers, to the last bit (a resumed run may evaluate on other threads)
    for a, b in zip(ref, out, strict=True):
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            assert (ea.test_acc, ea.train_acc, ea.test_loss, ea.train_loss) == \
                (eb.test_acc, eb.train_acc, eb.test_loss, eb.train_loss)
    with pytest.raises(ValueError, match="eval_threads"):
        engine.train_stack(specs, data, epochs=1, compile=False, eval_threads=0)


def test_busy_cores_counts_other_work_not_this_process(monkeypatch):
    import time

    from optlab.mnist import runtime

    monkeypatch.setattr(runtime, "_cores", lambda: 2)
    now = time.monotonic()
    start = runtime.CpuTimes(wall=now - 2.0, busy={0: 30.0, 1: 20.0}, own=3.0)
    # 2 s: the cores were busy for 3.0 CPU-s, 1.8 of them this process's own
    monkeypatch.setattr(runtime, "cpu_times",
                        lambda: runtime.CpuTimes(now, {0: 31.5, 1: 21.5}, 4.8))
    assert runtime.busy_cores(start) == 0.6
    # a CPU that left the affinity mask (or went offline) between readings is not counted
    monkeypatch.setattr(runtime, "cpu_times", lambda: runtime.CpuTimes(now, {0: 31.5}, 3.9))
    assert runtime.busy_cores(start) == 0.3
    assert runtime.idle_cores(0.6) == 1 and runtime.idle_cores(0.4) == 2
    assert runtime.idle_cores(0.5) == 2 and runtime.idle_cores(1.5) == 1  # halves round up
    assert runtime.idle_cores(7.5) == 1  # never fewer than one
    assert runtime.eval_threads(busy=0.0) == 2 and runtime.eval_threads(jobs=2, busy=0.0) == 1
    monkeypatch.setattr(runtime, "_cores", lambda: 64)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert runtime.eval_threads(busy=0.0) == 8  # not measured beyond 2: capped
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting caps both rules
    assert runtime.eval_threads(busy=0.0) == 3 and runtime.default_threads(28, True, busy=0.0) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "x")
    assert runtime.eval_threads(busy=0.0) == 8
    # the rule reads the measurement when no value is given
    monkeypatch.setattr(runtime, "_cores", lambda: 2)
    monkeypatch.setattr(runtime, "busy_cores", lambda *a, **k: 1.7)
    assert runtime.default_threads(8, True) == 1 and runtime.eval_threads() == 1


def test_proc_stat_parsing_and_cpu_quota(monkeypatch, tmp_path):
    from optlab.mnist import runtime

    text = ("cpu  900 0 100 5000 50 0 10 40 7 0\n"
            "cpu0 300 10 50 2500 20 1 4 5 7 0\n"
            "cpu1 600 0 50 2500 30 0 6 35 0 0\n"
            "intr 12345 0 0\nctxt 99\n")
    busy = runtime.parse_proc_stat(text, {0, 1}, 100.0)
    # user + nice + system + irq + softirq + steal; idle, iowait and guest not added
    assert busy == {0: 3.7, 1: 6.91}
    assert runtime.parse_proc_stat(text, {1}, 100.0) == {1: 6.91}
    assert runtime.parse_proc_stat(text, {0, 1, 2}, 100.0) is None  # a CPU without a line
    assert runtime.parse_proc_stat("cpu0 1 2 x\n", {0}, 100.0) is None
    real = runtime.cpu_times()
    if real is not None:  # Linux: this process's CPUs, and its own time
        assert set(real.busy) == set(os.sched_getaffinity(0)) and real.own > 0
    # a container's quota caps the cores (Docker --cpus=1.5 on a bigger host)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    real_open = open

    def fake_open(path, *a, **k):
        return real_open(cpu_max if path == "/sys/fs/cgroup/cpu.max" else path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    assert runtime._cpu_quota() == 1.5
    assert runtime._cores() == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert runtime._cpu_quota() is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux CPU accounting")
def test_busy_cores_sees_a_spinning_process():
    import subprocess
    import sys

    from optlab.mnist import runtime

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        other = runtime.busy_cores(min_window=1.0)
    finally:
        spin.kill()
        spin.wait()
    assert other is not None and other >= 0.3, other  # about one core, minus scheduling


def test_compile_plan_uses_the_measured_break_even_and_the_warm_cache(tmp_path, monkeypatch):
    cpu = torch.device("cpu")
    cold, warm = engine.compile_break_even(2), engine.compile_break_even(2, warm=True)
    assert warm < cold
    assert engine.compile_break_even(4) < engine.compile_break_even(1)  # measured: K=1 gains less
    assert engine.compile_mode_for(cpu, None, cold - 1, n_models=2) is None
    assert engine.compile_mode_for(cpu, None, cold, n_models=2) == "default"
    assert engine.compile_mode_for(cpu, None, warm, warm=True, n_models=2) == "default"
    assert engine.compile_mode_for(cpu, True, 1) == "default"
    assert engine.compile_mode_for(cpu, False, 10**9) is None
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    specs = [ModelSpec("adam", {}, 0), ModelSpec("sgd", {"lr": 0.1}, 0)]
    # 2 models x 1000 steps x e epochs: between the warm and the cold break-even
    e = warm // 2000 + 1
    kw = {"epochs": e, "batch_size": 32, "n_train": 32_000}
    assert e * 2000 < cold
    assert not engine.compile_cache_warm(specs, batch_size=32, n_train=32_000)
    assert engine.plan_compile(specs, compile=None, **kw) is None
    engine._remember_compiled(engine._graph_key(specs, 32, 32_000, torch.float32, cpu))
    # inductor's kernels are per thread count: another count is not warm
    other = 2 if torch.get_num_threads() == 1 else 1
    assert not engine.compile_cache_warm(specs, batch_size=32, n_train=32_000, threads=other)
    assert engine.compile_cache_warm(specs, batch_size=32, n_train=32_000)
    assert engine.plan_compile(specs, compile=None, **kw) == "default"
    # another stack (other rules, or another data size) is another graph: still cold
    assert not engine.compile_cache_warm(specs[:1], batch_size=32, n_train=32_000)
    assert not engine.compile_cache_warm(specs, batch_size=32, n_train=16_000)


def test_compile_failure_falls_back_to_eager_with_one_warning(small, monkeypatch):
    def broken(*args, **kwargs):
        def fn(*a, **k):
            raise RuntimeError("inductor exploded")
        return fn

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(engine._Stepper, "_cache", {})
    engine._WARNED.clear()
    data = engine.prepare_data(small)
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        rs = engine.train_stack([ModelSpec("adam", {}, 0)], data, epochs=1, compile=True)
    assert rs[0].status == "ok" and rs[0].info["compile"] is False


def _running_accuracy_alone(spec: ModelSpec, data: engine.PreparedData, epochs: int,
                            batch: int) -> list[float]:
    """A plain loop as Keras's fit scores training accuracy: each batch is scored by the
    logits of the forward pass that trains on it (before the update), summed over the
    epoch and divided by the examples seen."""
    model = mlp.to_module(mlp.init_flat(spec.seed, dtype=torch.float64))
    opt = make_optimizer(spec.optimizer, model.parameters(), **spec.hparams)
    g = engine.data_generator(spec.seed)
    n_batches = data.n_train // batch
    out = []
    for _ in range(epochs):
        perm = torch.randperm(data.n_train, generator=g)[: n_batches * batch]
        xs, ys = data.x_train[perm], data.y_train[perm]
        hits = 0
        for b in range(n_batches):
            x, y = xs[b * batch:(b + 1) * batch], ys[b * batch:(b + 1) * batch]
            opt.zero_grad()
            logits = model(x)
            hits += int((logits.argmax(dim=1) == y).sum())
            torch.nn.functional.cross_entropy(logits, y).backward()
            opt.step()
        out.append(hits / (n_batches * batch))
    return out


def test_running_train_accuracy_is_keras_running_mean_over_the_epoch(small):
    specs = [ModelSpec("sgd", {"lr": 0.05}, 3), ModelSpec("adam", {"lr": 0.003}, 3)]
    data = engine.prepare_data(small, dtype=torch.float64)
    results = engine.train_stack(specs, data, epochs=3, batch_size=32, compile=False,
                                 dtype=torch.float64)
    for spec, r in zip(specs, results, strict=True):
        ref = _running_accuracy_alone(spec, data, 3, 32)
        got = [e.train_acc_running for e in r.epochs]
        assert got == pytest.approx(ref, abs=1e-12), spec
        # the running mean scores each batch before its update: not the end-of-epoch pass
        assert any(abs(e.train_acc_running - e.train_acc) > 1e-3 for e in r.epochs), spec
        assert all("train_acc_running" in e.as_dict() for e in r.epochs)


# --------------------------------------------------------------------------------------------
# Schedules and clipping in the stack == torch.optim + lr_scheduler + clip_grad_norm_
# --------------------------------------------------------------------------------------------

def _reference(spec: ModelSpec, make_opt, make_sched, data, steps, batch, dtype):
    """nn.Sequential + autograd + torch.optim + lr_scheduler + clip_grad_norm_ (no optlab rule
    in the loop), on the engine's initial network and batch order."""
    model = mlp.to_module(mlp.init_flat(spec.seed, dtype=dtype))
    opt = make_opt(model.parameters())
    sched = make_sched(opt)
    g = engine.data_generator(spec.seed)
    n_batches = data.n_train // batch
    done = 0
    while done < steps:
        perm = torch.randperm(data.n_train, generator=g)[: n_batches * batch]
        xs, ys = data.x_train[perm], data.y_train[perm]
        for b in range(min(n_batches, steps - done)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(xs[b * batch:(b + 1) * batch]), ys[b * batch:(b + 1) * batch])
            loss.backward()
            if spec.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
            opt.step()
            sched.step()
            done += 1
    return torch.cat([torch.cat([lin.weight.detach().t().reshape(-1), lin.bias.detach()])
                      for lin in model if isinstance(lin, torch.nn.Linear)])


def _scheduled_specs():
    from optlab import schedules as S

    lrs = torch.optim.lr_scheduler
    keep = lambda o: lrs.LambdaLR(o, lambda t: 1.0)  # noqa: E731
    return [
        (ModelSpec("sgd", {"lr": S.step(0.1, every=10, gamma=0.5)}, 7, clip_norm=0.25),
         lambda p: torch.optim.SGD(p, lr=0.1), lambda o: lrs.StepLR(o, 10, 0.5)),
        (ModelSpec("sgd", {"lr": 0.05}, 7, clip_norm=0.25),  # same group, constant rate
         lambda p: torch.optim.SGD(p, lr=0.05), keep),
        (ModelSpec("adam", {"lr": S.linear_warmup(S.cosine(0.003, total=32), 8)}, 7),
         lambda p: torch.optim.Adam(p, lr=0.003),
         lambda o: lrs.ChainedScheduler([lrs.LinearLR(o, 1 / 8, 1.0, 7),
                                         lrs.CosineAnnealingLR(o, T_max=32)])),
        (ModelSpec("adam", {"lr": 0.003}, 7, clip_norm=0.2),
         lambda p: torch.optim.Adam(p, lr=0.003), keep),
        (ModelSpec("momentum", {"lr": 0.02}, 7, schedule=S.inverse_time(0.02, 0.1),
                   clip_norm=0.3),
         lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9),
         lambda o: lrs.LambdaLR(o, lambda t: 1 / (1 + 0.1 * t))),
    ]


def test_stack_with_schedules_and_clipping_equals_torch_reference_float64(small):
    cases = _scheduled_specs()
    specs = [c[0] for c in cases]
    data = engine.prepare_data(small, dtype=torch.float64)
    results, params = _stack_params(specs, data, 2, 32, torch.float64)  # 32 steps
    for i, (spec, make_opt, make_sched) in enumerate(cases):
        ref = _reference(spec, make_opt, make_sched, data, 32, 32, torch.float64)
        err = (params[i] - ref).abs().max().item()
        assert err < 1e-10, f"{spec}: max abs difference {err:.3e}"
        # the controls matter: without them the same model ends elsewhere
        plain = ModelSpec(spec.optimizer, {**spec.hparams}, 7)
        unclipped = _reference(plain, make_opt, lambda o: torch.optim.lr_scheduler.LambdaLR(
            o, lambda t: 1.0), data, 32, 32, torch.float64)
        assert (unclipped - ref).abs().max().item() > 1e-6, spec
    rec = results[0].as_dict()
    assert rec["schedule"] == {"name": "step", "lr": 0.1, "every": 10, "gamma": 0.5}
    assert rec["clip_norm"] == 0.25 and rec["hparams"]["lr"] == 0.1
    assert "schedule" not in results[3].as_dict() and results[3].as_dict()["clip_norm"] == 0.2


@pytest.mark.skipif(os.environ.get("OPTLAB_SKIP_COMPILE_TEST") == "1", reason="asked to skip")
def test_a_schedule_does_not_recompile_the_step(small, monkeypatch):
    """The compiled step is traced once however many steps (and learning rates) follow."""
    from torch._dynamo.testing import CompileCounter

    from optlab import schedules as S

    real_compile = torch.compile
    data = engine.prepare_data(synthetic_dataset(n_train=128, n_test=32, seed=1))
    frames = {}
    for epochs in (1, 3):
        counter = CompileCounter()
        monkeypatch.setattr(engine._Stepper, "_cache", {})
        monkeypatch.setattr(torch, "compile",
                            lambda fn, counter=counter, **kw: real_compile(fn, backend=counter))
        torch._dynamo.reset()
        specs = [ModelSpec("adam", {"lr": S.linear_warmup(S.cosine(0.01, 4 * epochs), 3)}, 0,
                           clip_norm=0.5),
                 ModelSpec("sgd", {"lr": S.step(0.1, every=2)}, 0)]
        results, params = _stack_params(specs, data, epochs, 32, torch.float32, compile=True)
        assert results[0].info.get("compile"), "the step did not compile"
        frames[epochs] = counter.frame_count
        ref = _reference(specs[1], lambda p: torch.optim.SGD(p, lr=0.1),
                         lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.1), data,
                         4 * epochs, 32, torch.float32)
        assert (params[1] - ref).abs().max().item() < 1e-5  # the rates did change
    monkeypatch.setattr(torch, "compile", real_compile)
    torch._dynamo.reset()
    assert frames[1] >= 1 and frames[3] == frames[1], frames
