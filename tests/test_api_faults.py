"""The API's rough edges of issue 10: text for numbers, lbfgs where a rule is expected, a run
too long to fit in memory, a stationary start at a saddle, unfinished seeds in plots."""

from __future__ import annotations

import json
import re
import time
import tracemalloc

import numpy as np
import pytest

import optlab
from optlab import plots


@pytest.mark.parametrize("call", [
    lambda: optlab.resolve_hparams("adam", lr="0.01"),
    lambda: optlab.trajectory("adam", "rosenbrock", steps=5, lr="0.01"),
    lambda: optlab.resolve_hparams("sgd", lr=b"0.01"),
    lambda: optlab.resolve_hparams("sgd", lr=np.array(["0.01"])),
    lambda: optlab.resolve_hparams("adam", betas=("0.9", 0.999)),
])
def test_a_number_given_as_text_is_refused_at_once(call):
    with pytest.raises(ValueError, match="must be numbers, not text") as err:
        call()
    assert "\n" not in str(err.value)


def test_text_lr_names_the_fix():
    with pytest.raises(ValueError) as err:
        optlab.resolve_hparams("adam", lr="0.01")
    assert "(write lr=0.01, not lr='0.01')" in str(err.value)


@pytest.mark.parametrize("call", [
    lambda: optlab.get_rule("lbfgs"),
    lambda: optlab.trajectory("lbfgs", "rosenbrock", steps=3),
])
def test_lbfgs_where_an_elementwise_rule_is_expected_says_what_to_use(call):
    assert "lbfgs" in optlab.OPTIMIZERS
    with pytest.raises(ValueError) as err:
        call()
    msg = str(err.value)
    assert "unknown optimizer" not in msg
    assert "optlab.make_optimizer('lbfgs', params)" in msg and "optlab.minimize(" in msg


def test_a_trajectory_that_cannot_fit_in_memory_is_refused_at_once():
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError) as err:
            optlab.trajectory("adam", "rosenbrock", steps=10**12)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0 and peak < 10 * 2**20  # was: ~13 MB/s, for ever
    msg = str(err.value)
    assert "steps=1,000,000,000,000 with 1 path(s) would need" in msg and "GiB" in msg
    assert "give steps <=" in msg
    # the batched path says the same, with its own size
    with pytest.raises(ValueError, match="with 3 path"):
        optlab.trajectory("adam", "rosenbrock", [[0, 0], [1, 1], [2, 2]], steps=10**12)
    assert optlab.trajectory("adam", "rosenbrock", steps=10).path.shape == (11, 1, 2)


def test_minimize_started_at_a_saddle_says_so():
    r = optlab.minimize("saddle", [0.0, 0.0], "bfgs")
    assert r.converged and r.nit == 0  # a zero gradient is all the first-order test sees
    assert r.saddle is True
    assert "is a saddle" in r.message and "newton_damped" in r.message
    r = optlab.minimize("saddle", [0.0, 0.0], "lbfgs")
    assert r.saddle is True
    r = optlab.minimize("rosenbrock", [-1.2, 1.0], "bfgs")
    assert r.converged and r.saddle is False and r.message == "converged: gradient norm below tol"


def test_minimize_without_a_hessian_says_a_stationary_start_may_be_a_saddle():
    class NoHessian:
        def f(self, x):
            return float(x[0] ** 2 - x[1] ** 2)

        def grad(self, x):
            return np.array([2 * x[0], -2 * x[1]])

    r = optlab.minimize(NoHessian(), [0.0, 0.0], "bfgs")
    assert r.converged and r.saddle is None
    assert "stationary point (zero gradient), which may be a saddle" in r.message


def _doc_with_an_unfinished_seed() -> dict:
    def run(seed, status, acc):
        return {"phase": "final", "variant": None, "optimizer": "adam",
                "hparams": {"lr": 1e-3}, "seed": seed, "status": status,
                "epochs": [{"epoch": 1, "train_acc": acc, "test_acc": acc, "train_loss": 1.0,
                            "test_loss": 1.0, "seconds": 0.1}]}
    return {"provenance": {}, "config": {},
            "runs": [run(0, "ok", 0.5), run(1, "ok", 0.7), run(2, "running", 0.1)]}


def test_plots_label_unfinished_seeds_and_leave_them_out():
    res = plots.load_results(json.loads(json.dumps(_doc_with_an_unfinished_seed())))
    c = res.curve("adam")
    assert c.label == "adam (1/3 unfinished)"
    assert c.unfinished_seeds == [2] and sorted(c.seeds) == [0, 1]
    assert sorted(c.final("test_acc")) == [0.5, 0.7]


@pytest.mark.parametrize("call,fragment", [
    (lambda: optlab.conventions.hparams_for("nope"), "unknown optimizer 'nope'"),
    (lambda: optlab.conventions.hparams_for("adam", lr=float("nan")), "lr must be in"),
    (lambda: optlab.conventions.hparams_for("adam", lr="0.1"), "not text"),
    (lambda: optlab.conventions.hparams_for("adam", bogus=1), "unknown hyperparameter 'bogus'"),
    (lambda: optlab.resolve_hparams("sgd", lr=True), "lr must be a number"),
    (lambda: optlab.trajectory("sgd", "rosenbrock", [np.nan, 0.0], steps=5), "x0 must be finite"),
    (lambda: optlab.trajectory("sgd", "rosenbrock", np.zeros((0, 2)), steps=5), "N >= 1"),
    (lambda: optlab.trajectory("sgd", "rosenbrock", steps=float("nan")), "steps must be"),
    (lambda: optlab.schedules.parse_schedule("cosine:total=10,total=20", 0.1), "given twice"),
    (lambda: optlab.schedules.parse_schedule(None, 0.1), "give the schedule as text"),
    (lambda: optlab.stats.binomial_se(0.5, 10.5), "n must be an integer"),
    (lambda: optlab.stats.binomial_se(0.5, float("nan")), "n must be an integer"),
])
def test_bad_arguments_are_refused_in_one_line_not_accepted_or_crashing(call, fragment):
    """Each of these used to be accepted silently (conventions, a bool lr, a NaN start
    reported as a divergence, a repeated schedule key, a fractional count) or to fail deep
    inside numpy."""
    with pytest.raises((ValueError, TypeError)) as err:
        call()
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_conventions_still_give_the_keras_values():
    assert optlab.conventions.hparams_for("adam", "keras", lr=0.01) == {
        "eps": 1e-7, "eps_hat": True, "lr": 0.01}


@pytest.fixture(scope="module")
def small_mlp_batch():
    import torch

    from optlab import mlp

    g = torch.Generator().manual_seed(0)
    return mlp.init_flat(0), torch.rand(8, 784, generator=g), torch.randint(0, 10, (8,),
                                                                             generator=g)


@pytest.mark.parametrize("change,fragment", [
    (lambda f, x, y: (f[:10], x, y), "flat must have shape"),
    (lambda f, x, y: (f, x[:, :10], y), "x must have shape (batch, 784)"),
    (lambda f, x, y: (f, x, y[:3]), "one label per row"),
    (lambda f, x, y: (f, x, y * 0 + 10), "class labels in 0 .. 9"),
    (lambda f, x, y: (f, x[:0], y[:0]), "the batch is empty"),
    (lambda f, x, y: (f * float("nan"), x, y), "NaN or inf"),
    (lambda f, x, y: (f.double(), x, y), "same dtype"),
    (lambda f, x, y: (f.numpy(), x, y), "must be a torch.Tensor"),
])
def test_top_hessian_eigenvalue_checks_its_inputs_first(small_mlp_batch, change, fragment):
    """Used to end in torch's RuntimeError/IndexError from inside the HVP, or (empty batch)
    to return 0.0 as if it were an eigenvalue."""
    from optlab.curvature import top_hessian_eigenvalue

    with pytest.raises((ValueError, TypeError)) as err:
        top_hessian_eigenvalue(*change(*small_mlp_batch), max_iter=2)
    assert fragment in str(err.value), str(err.value)
    assert top_hessian_eigenvalue(*small_mlp_batch, max_iter=3).iterations >= 1  # valid: runs


def test_make_optimizer_refuses_a_rate_that_is_zero_in_the_parameters_dtype():
    """lr=1e-320 is positive as a Python float but 0 in float32: nothing would train (the CLI
    already refuses it; the API used to accept it and leave the weights unchanged)."""
    import torch

    p32 = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="is 0 in torch.float32"):
        optlab.make_optimizer("sgd", [p32], lr=1e-320)
    p64 = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = optlab.make_optimizer("sgd", [p64], lr=1e-320)  # representable in float64: allowed
    p64.grad = torch.full_like(p64, 2.0**60)
    opt.step()
    assert bool((p64.detach() < 0).all())  # it moved


@pytest.mark.parametrize("overrides, param", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"lr": {"*": -1.0}}, "lr"),
    ({"warmup_steps": -1}, "warmup_steps"),
])
def test_library_config_errors_name_the_parameter_not_a_flag(overrides, param):
    """The library speaks of make_config's parameters; only the CLI turns them into flags."""
    from optlab import compare

    with pytest.raises(compare.ConfigError) as err:
        compare.make_config("paper", dataset="synthetic", **overrides)
    msg = str(err.value)
    assert err.value.param == param and msg.startswith(param) and "--" not in msg, msg


def test_the_cli_words_a_library_error_with_flags():
    from optlab.__main__ import compare_parser, in_flags
    from optlab.compare import ConfigError

    err = ConfigError("x holds other runs; give another out=..., or add "
                                     "force=True to start over", param=None)
    assert in_flags(err, compare_parser()) == ("x holds other runs; give another --out ..., "
                                               "or add --force to start over")
    err = ConfigError("batch_size must be >= 1; got 0", param="batch_size")
    assert in_flags(err, compare_parser()) == "--batch-size must be >= 1; got 0"


@pytest.mark.parametrize("make, fragment", [
    (lambda s: s.linear_warmup(0.1, 10**30), "steps must be at most 2**53"),
    (lambda s: s.cosine(0.1, 10**30), "total must be at most 2**53"),
    (lambda s: s.step(0.1, 10**30), "every must be at most 2**53"),
    (lambda s: s.cosine(float("inf"), 10), "lr must be a finite number > 0; got inf"),
    (lambda s: s.cosine(0.1, float("inf")), "total must be a finite number > 0; got inf"),
    (lambda s: s.parse_schedule("step:every=1e400", 0.1), "every must be a finite number"),
])
def test_a_schedule_refuses_an_infinite_or_huge_count(make, fragment):
    """cosine(0.1, inf) used to be accepted (a rate that never decays) and a count past int64
    (warmup of 10**30 steps) built fine, then raised OverflowError inside the compiled step
    when evaluated at a tensor step."""
    import torch

    from optlab import schedules

    with pytest.raises(ValueError, match=re.escape(fragment)):
        make(schedules)
    largest = schedules.linear_warmup(0.1, schedules.MAX_STEPS)  # the bound itself works
    assert 0 < float(largest(torch.tensor(3))) < 1e-15
