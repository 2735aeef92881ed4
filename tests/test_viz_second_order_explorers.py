import numpy as np
import pytest

from optlab.second_order import minimize
from optlab.viz.second_order_explorers import (
    _stack,
    memory_explorer,
    newton_damping_explorer,
    start_explorer,
    sweep_explorer,
)


def test_stack_pads_runs_of_different_lengths_with_nan():
    a = minimize("rosenbrock", [-1.2, 1.0], "newton")
    b = minimize("rosenbrock", [-1.2, 1.0], "bfgs")
    runs = _stack([a, b])
    assert runs.path.shape == (b.nit + 1, 2, 2) and runs.losses.shape == (b.nit + 1, 2)
    assert np.allclose(runs.path[: a.nit + 1, 0], a.path)
    assert np.isnan(runs.path[a.nit + 1 :, 0]).all()
    assert np.allclose(runs.losses[:, 1], b.f_path)
    assert not runs.diverged.any()


def test_book_build_environment_selects_the_frame_slider(monkeypatch):
    monkeypatch.setenv("OPTLAB_BOOK_BUILD", "1")
    out = newton_damping_explorer("himmelblau", (0.1, 2.8), min_eigs=(1e-3, 10.0), max_iter=50)
    assert out.data.count("data:image/png;base64") == 2
    assert out.results[0]["newton"].nit == out.results[1]["newton"].nit  # plain Newton: no δ


def test_book_mode_is_a_frame_slider_with_one_frame_per_value():
    out = sweep_explorer(
        "himmelblau",
        lambda d: {"newton_damped": minimize("himmelblau", [0.1, 2.8], "newton_damped",
                                             min_eig=d, max_iter=50)},
        [1e-3, 10.0], name="δ", labels=["newton_damped"], mode="book")
    html = out.data
    assert html.count("data:image/png;base64") == 2 and "<link" not in html  # no CDN link
    assert set(out.results) == {0, 1}
    assert out.results[1]["newton_damped"].nit > out.results[0]["newton_damped"].nit


def test_live_mode_is_an_ipywidgets_box_that_recomputes_on_slider_moves():
    pytest.importorskip("ipywidgets")
    box = sweep_explorer(
        "rosenbrock",
        lambda m: {"lbfgs": minimize("rosenbrock", [-1.2, 1.0], "lbfgs", m=m)},
        [1, 10], name="m", labels=["lbfgs"], mode="live", initial=0)
    slider, image = box.children
    assert image.value[:4] == b"\x89PNG" and set(box.results) == {0}
    slider.value = 1
    assert set(box.results) == {0, 1}
    assert box.results[0]["lbfgs"].nit > box.results[1]["lbfgs"].nit


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="values is empty"):
        sweep_explorer("rosenbrock", lambda v: {}, [], name="x", labels=["bfgs"])
    with pytest.raises(ValueError, match="mode"):
        sweep_explorer("rosenbrock", lambda v: {}, [1], name="x", labels=["bfgs"], mode="web")
    assert start_explorer is not None and memory_explorer is not None
