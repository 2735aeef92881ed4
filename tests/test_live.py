"""optlab.live, the labs' in-browser driver, in CPython: the same paths as optlab.trajectory,
numpy-free (the files the book ships to the browser import and run with numpy blocked), the
reader's edited rules, and errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import optlab
from optlab import live
from optlab.notebook import source_of
from optlab.rules import FIRST_ORDER
from optlab.surfaces import SURFACES
from optlab.trajectories import trajectory
from optlab.widgets import lab_config, lab_markup, lr_range

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "tools"))


def _assert_same(path: list, traj_path: np.ndarray, what: str) -> None:
    got = np.array(path, dtype=float).reshape(-1, 2)
    n = len(got)
    assert np.all(np.isnan(traj_path[n:])), f"{what}: live stopped at {n}, trajectory did not"
    assert np.all(np.isfinite(traj_path[:n])), f"{what}: live ran past the divergence"
    assert np.max(np.abs(got - traj_path[:n])) <= 1e-12, what


@pytest.mark.parametrize("surface", sorted(SURFACES))
@pytest.mark.parametrize("rule", FIRST_ORDER)
def test_run_paths_equals_trajectory(rule, surface):
    """Every rule on every surface, at a learning rate low, middle and high in the lab's η
    range (the high one makes some rules diverge: both stop at the same step)."""
    lo, hi = lr_range(surface)
    start = SURFACES[surface].start
    for lr in (lo * 10, (lo * hi) ** 0.5, hi):
        path = live.run_paths(surface, [(rule, {"lr": lr})], start, 150)[0]
        ref = trajectory(rule, surface, start, 150, lr=lr).path[:, 0]
        _assert_same(path, ref, f"{rule} on {surface}, lr={lr:g}")


def test_run_paths_diverges_where_trajectory_does():
    ref = trajectory("sgd", "rosenbrock", None, 100, lr=0.05)
    assert ref.diverged[0]
    path = live.run_paths("rosenbrock", [("sgd", {"lr": 0.05})], SURFACES["rosenbrock"].start,
                          100)[0]
    assert len(path) == ref.diverged_at[0]
    _assert_same(path, ref.path[:, 0], "sgd, diverging")


def test_surface_spec_round_trip_for_a_custom_quadratic():
    surf = optlab.surfaces.quadratic(condition=50, angle=np.pi / 4)
    spec = live.surface_spec(surf)
    assert json.loads(json.dumps(spec)) == spec
    again = live.surface_of(spec)
    assert again.gxy(0.3, -0.7) == surf.gxy(0.3, -0.7)
    path = live.run_paths(spec, [("adagrad", {"lr": 0.1})], (1.0, 1.5), 50)[0]
    _assert_same(path, trajectory("adagrad", surf, (1.0, 1.5), 50, lr=0.1).path[:, 0],
                 "adagrad on a rotated ravine")


def test_run_json_answers_paths_and_one_line_errors():
    req = {"surface": {"name": "himmelblau", "params": {}}, "start": [-0.3, -0.9], "steps": 40,
           "rules": [{"rule": "adam", "hparams": {"lr": 0.05, "betas": [0.8, 0.99]}},
                     {"rule": "adam", "hparams": {"lr": -1}},
                     {"rule": "nope"}]}
    answer = json.loads(live.run_json(json.dumps(req)))
    ref = trajectory("adam", "himmelblau", (-0.3, -0.9), 40, lr=0.05, betas=(0.8, 0.99))
    _assert_same(answer["paths"][0], ref.path[:, 0], "adam from JSON")
    assert answer["errors"][0] is None
    assert answer["paths"][1:] == [[], []]
    assert answer["errors"][1] == "ValueError: adam: lr must be in (0, inf); got -1"
    assert answer["errors"][2].startswith("ValueError: unknown optimizer 'nope'")
    bad = json.loads(live.run_json('{"surface": "rosenbrock"'))
    assert bad["paths"] == [] and len(bad["errors"]) == 1 and "\n" not in bad["errors"][0]
    too_long = json.loads(live.run_json(json.dumps({**req, "steps": 10**9})))
    assert too_long["errors"][0].startswith("ValueError: steps must be a whole number")


def test_edited_helper_changes_the_rule_that_calls_it():
    """The editor holds adam_step without bias correction: adam (which calls it) changes, and
    equals the package's own bias_correction=False."""
    src = source_of(optlab.rules.adam_step).replace(
        "if bias_correction:", "if False:")
    assert src != source_of(optlab.rules.adam_step)
    rule = live.compile_rule(src, "adam")
    start = SURFACES["rosenbrock"].start
    path = live.run_path(rule, SURFACES["rosenbrock"], start, 80, {"lr": 0.01})
    ref = trajectory("adam", "rosenbrock", start, 80, lr=0.01, bias_correction=False)
    _assert_same(path, ref.path[:, 0], "adam without bias correction, edited")
    # the package's own rule is untouched
    again = live.run_paths("rosenbrock", [("adam", {"lr": 0.01})], start, 80)[0]
    _assert_same(again, trajectory("adam", "rosenbrock", start, 80, lr=0.01).path[:, 0],
                 "adam after an edit")


def test_reader_turns_adam_into_amsgrad():
    """The issue's example: in Adam's editor, a reader adds the running maximum of v (a new
    state and init): the edited "adam" runs, and equals the package's own amsgrad."""
    src = textwrap.dedent('''
        class AMS(NamedTuple):
            step: Any
            m: Any
            v: Any
            v_max: Any

        def adam_init(params):
            return AMS(0, xp.zeros_like(params), xp.zeros_like(params), xp.zeros_like(params))

        def adam_update(params, grad, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.0, **unused):
            beta1, beta2 = betas
            t = state.step + 1
            g = grad + weight_decay * params
            m = beta1 * state.m + (1 - beta1) * g
            v = beta2 * state.v + (1 - beta2) * g * g
            v_max = xp.maximum(state.v_max, v)
            denom = xp.sqrt(v_max) / (1 - beta2**t) ** 0.5 + eps
            step_size = lr / (1 - beta1**t)
            return params - step_size * m / denom, AMS(t, m, v, v_max)
    ''')
    rule = live.compile_rule(src, "adam")
    path = live.run_path(rule, SURFACES["beale"], (1.0, 1.5), 200, {"lr": 0.02})
    _assert_same(path, trajectory("amsgrad", "beale", (1.0, 1.5), 200, lr=0.02).path[:, 0],
                 "the reader's AMSGrad")
    plain = live.run_paths("beale", [("adam", {"lr": 0.02})], (1.0, 1.5), 200)[0]
    assert path != plain  # the maximum keeps v from shrinking: another path than Adam's


@pytest.mark.parametrize("source, expected", [
    ("def adam_update(:\n    pass\n", "SyntaxError (your rule, line 1): "),
    ("x = 1\n\ndef adam_step(*a, **k):\n    return undefined_name\n",
     "NameError (your rule, line 4): name 'undefined_name' is not defined"),
    ("adam_update = 3\n", "TypeError: adam_update must stay a function"),
    ("1 / 0\n", "ZeroDivisionError (your rule, line 1): division by zero"),
])
def test_reader_errors_are_one_line(source, expected):
    req = {"surface": {"name": "rosenbrock"}, "start": [-1.2, 1.0], "steps": 5,
           "rules": [{"rule": "sgd", "hparams": {"lr": 1e-3}},
                     {"rule": "adam", "hparams": {"lr": 0.01}, "source": source}]}
    answer = json.loads(live.run_json(json.dumps(req)))
    assert len(answer["paths"][0]) == 6 and answer["errors"][0] is None  # the others still run
    error = answer["errors"][1]
    assert error.startswith(expected), error
    assert "\n" not in error and "Traceback" not in error


def test_browser_files_run_with_numpy_blocked(tmp_path):
    """What the book ships to the browser (optlab_assets.package_files: the modules optlab.live
    imports, with a one-line __init__) imports and runs in a Python that cannot import numpy,
    and answers exactly what this process answers."""
    import optlab_assets

    files = optlab_assets.package_files("live")
    assert {"optlab/live.py", "optlab/rules.py", "optlab/surfaces.py"} <= set(files)
    assert not {"optlab/trajectories.py", "optlab/widgets.py"} & set(files)
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    req = json.dumps({"surface": {"name": "rastrigin", "params": {"A": 10.0}},
                      "start": [-2.3, 3.6], "steps": 200,
                      "rules": [{"rule": name, "hparams": {"lr": 0.01}}
                                for name in FIRST_ORDER]})
    script = textwrap.dedent(f"""
        import sys
        sys.modules["numpy"] = None  # import numpy -> ImportError
        sys.modules["torch"] = None
        sys.path.insert(0, {str(tmp_path)!r})
        from optlab.live import run_json
        import optlab
        assert optlab.__file__.startswith({str(tmp_path)!r}), optlab.__file__
        print(run_json(sys.stdin.read()))
        assert "numpy" not in [m for m in sys.modules if sys.modules[m] is not None]
    """)
    run = subprocess.run([sys.executable, "-I", "-c", script], input=req, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout)
    assert answer["errors"] == [None] * len(FIRST_ORDER)
    here = json.loads(live.run_json(req))
    assert answer["paths"] == here["paths"]


def test_lab_config_of_every_chapter_lab():
    """The labs' JSON: rules with controls, the η slider around the chapter's η, the start in
    the box, the editor holding the rule's update as show_source prints it."""
    cfg = lab_config("himmelblau", ("adam", "adamw", "nadamw"), {"lr": 0.02},
                     {"weight_decay": 1e-2}, steps=500, edit="adamw")
    assert [r["name"] for r in cfg["rules"]] == ["adam", "adamw", "nadamw"]
    adam = {h["key"]: h for h in cfg["rules"][0]["hparams"]}
    assert adam["betas.0"]["value"] == 0.9 and adam["betas.1"]["kind"] == "beta"
    assert adam["weight_decay"]["value"] == 1e-2 and adam["eps"]["kind"] == "log"
    assert adam["bias_correction"] == {"key": "bias_correction", "label": "bias_correction",
                                       "kind": "bool", "value": True}
    assert 10 ** cfg["lr"]["lo"] <= 0.02 <= 10 ** cfg["lr"]["hi"]
    assert cfg["edit"]["source"] == source_of(optlab.rules.adamw_update).rstrip() + "\n"
    assert cfg["edit"]["init"] == "adam_init"
    nesterov = lab_config("rosenbrock", ("nesterov",), {"lr": 1e-3})["rules"][0]
    assert "dampening" not in {h["key"] for h in nesterov["hparams"]}
    markup = lab_markup(cfg)
    assert markup.startswith('<div class="optlab-lab" hidden data-lab="') and len(markup) < 8000
    with pytest.raises(ValueError, match="edit must be one of"):
        lab_config("rosenbrock", ("sgd",), {}, edit="newton")


def test_explore_book_mode_puts_the_lab_under_the_frame_slider():
    out = optlab.widgets.explore("rosenbrock", ("sgd", "adam"), sweep="lr",
                                 values=[1e-3, 1e-2], steps=20, lr=1e-2, mode="book")
    assert out.data.index("optlab-frames") < out.data.index('class="optlab-lab"')
    off = optlab.widgets.explore("rosenbrock", ("sgd",), sweep="lr", values=[1e-3, 1e-2],
                                 steps=20, mode="book", lab=False)
    assert "optlab-lab" not in off.data
