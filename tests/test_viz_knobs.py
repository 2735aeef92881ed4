"""optlab.viz.knobs: what the explorer's knobs set in each rule."""

from __future__ import annotations

import pytest

from optlab.viz import knobs


def test_knobs_map_to_each_rules_hyperparameters():
    values = {"lr": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}
    assert knobs.rule_hparams("sgd", values) == {"lr": 0.1}
    assert knobs.rule_hparams("momentum", values) == {"lr": 0.1, "momentum": 0.8}
    assert knobs.rule_hparams("adam", values) == {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}
    assert knobs.rule_hparams("rmsprop", values) == {"lr": 0.1, "eps": 1e-6}
    extra = {"weight_decay": 0.01, "momentum": 0.5}
    assert knobs.rule_hparams("momentum", values, extra)["momentum"] == 0.5  # explicit wins
    assert knobs.rule_hparams("adamw", values, extra)["weight_decay"] == 0.01
    assert "momentum" not in knobs.rule_hparams("adam", values, extra)
    with pytest.raises(ValueError, match="no optimizer takes 'lrr'"):
        knobs.split_hparams({"lrr": 1.0})
