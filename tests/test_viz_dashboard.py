"""optlab.viz.dashboard without a kernel or a browser: the live dashboard is built headless
(ipywidgets works without a frontend), its controls are moved from Python, and the figure's
artists must follow, from several threads and in bursts too."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import optlab  # noqa: E402
from optlab.surfaces import SURFACES  # noqa: E402
from optlab.viz import dashboard, explore, knobs  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def live(monkeypatch):
    monkeypatch.delenv("OPTLAB_BOOK_BUILD", raising=False)
    return explore.explore("rosenbrock", ("sgd", "momentum", "adam"), steps=100, lr=1e-3)


def test_dashboard_builds_without_a_kernel(live):
    import ipywidgets as w

    assert isinstance(live, dashboard.Dashboard) and isinstance(live.widget, w.VBox)
    assert set(live.controls) >= {"surface", "optimizers", "lr", "beta1", "beta2", "eps", "x",
                                  "y", "steps"}
    assert bytes(live.image.value).startswith(PNG)
    assert list(live.runs) == ["sgd", "momentum", "adam"]
    bundle = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    for ctl in live.controls.values():  # plain-text labels: no LaTeX for the widget manager
        assert "$" not in ctl.description and "\\" not in ctl.description


def test_moving_the_lr_slider_moves_the_paths(live):
    art = live.view.artists["adam"]
    before = art.path.get_xydata().copy()
    png_before = live.image.value
    live.controls["lr"].value = 0.05
    after = art.path.get_xydata()
    expected = optlab.trajectory("adam", "rosenbrock", steps=100, lr=live.controls["lr"].value,
                                 betas=(0.9, 0.999), eps=1e-8).path[:, 0]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected)
    assert live.image.value != png_before
    assert live.last_update_ms > 0


def test_start_point_steps_and_selection_controls(live):
    live.controls["x"].value = -1.0
    live.controls["y"].value = 2.0
    assert list(live.view.start.get_xydata()[0]) == [-1.0, 2.0]
    assert np.allclose(live.view.artists["sgd"].path.get_xydata()[0], [-1.0, 2.0])
    live.controls["steps"].value = 50
    assert len(live.view.artists["adam"].path.get_xdata()) == 51
    live.controls["optimizers"].value = ("adam",)
    assert not live.view.artists["sgd"].path.get_visible()
    assert live.view.artists["adam"].path.get_visible()
    live.controls["beta1"].value = 0.5
    assert live.runs["adam"].hparams["betas"][0] == 0.5


def test_switching_surface_resets_the_start_and_box(live):
    himmel = SURFACES["himmelblau"]
    live.controls["surface"].value = himmel
    (x_lo, x_hi), _ = himmel.bounds
    assert (live.controls["x"].min, live.controls["x"].max) == (x_lo, x_hi)
    assert live.controls["x"].value == pytest.approx(himmel.start[0], abs=0.03)
    assert live.view.ax_map.get_xlim() == (x_lo, x_hi)
    assert live.runs["adam"].surface is himmel


def test_a_custom_surface_is_offered_first(monkeypatch):
    monkeypatch.delenv("OPTLAB_BOOK_BUILD", raising=False)
    quad = optlab.surfaces.quadratic(condition=20, angle=0.3)
    d = explore.explore(quad, ("sgd",), steps=20, lr=0.05)
    assert d.controls["surface"].value is quad
    assert d.runs["sgd"].surface is quad


# --------------------------------------------------------------------------------------------
# item 11: fast input, several threads, a usable η slider
# --------------------------------------------------------------------------------------------


def _pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_a_burst_of_changes_from_two_threads_ends_with_the_last_state(live):
    c = live.controls
    barrier = threading.Barrier(2)
    errors = []

    def lr_moves() -> None:
        barrier.wait()
        for v in np.geomspace(3e-4, 3e-2, 10):
            c["lr"].value = float(v)

    def selection_moves() -> None:
        barrier.wait()
        picks = [("sgd", "adam"), ("rmsprop",), ("momentum", "nadamw", "adagrad"), ("adam",),
                 ("sgd", "momentum")]
        for i in range(10):
            if i % 2:
                c["optimizers"].value = picks[i // 2]
            else:
                c["steps"].value = 40 + 10 * i

    def run(f):
        def wrapped():
            try:
                f()
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)
        return wrapped

    threads = [threading.Thread(target=run(f)) for f in (lr_moves, selection_moves)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: interleave the redraws
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    last = live.current_state()
    assert last.optimizers == ("sgd", "momentum") and last.steps == 120
    assert live.state == last  # the picture on display is that of the last state ...
    fresh = dashboard.Dashboard(last.surface, last.optimizers, last.steps, last.x0, **last.knobs)
    assert fresh.state == last
    # ... pixel for pixel: deselected lines gone, minima, start and title still there
    assert np.array_equal(_pixels(live.image.value), _pixels(fresh.image.value))
    assert np.array_equal(live.view.render(), fresh.view.render())
    view = live.view
    assert [lab for lab, a in view.artists.items() if a.path.get_visible()] == ["sgd", "momentum"]
    assert view.start.get_visible() and view.title.get_text() == "Rosenbrock"
    assert all(a.get_visible() for a in view._surface_artists[1:])  # the minima stars


def test_refreshes_are_coalesced_while_one_runs(live):
    """A request that arrives during a redraw does not start a second one in parallel: the
    running one redraws once more, from the latest controls."""
    started, release = threading.Event(), threading.Event()
    draw = live.draw
    calls = []

    def slow_draw(state):
        calls.append(state)
        if len(calls) == 1:
            started.set()
            release.wait(10)
        draw(state)

    live.draw = slow_draw
    t = threading.Thread(target=live.refresh)
    t.start()
    assert started.wait(10)
    for v in (0.002, 0.003, 0.004):  # three changes during the first redraw: no redraw now
        live.controls["lr"].value = v
    assert len(calls) == 1
    release.set()
    t.join(10)
    assert len(calls) == 2 and calls[-1].knobs["lr"] == 0.004  # one more, of the last state
    assert live.state.knobs["lr"] == 0.004


def test_the_lr_slider_is_logarithmic_fine_and_fits_the_surface(live):
    import ipywidgets as w

    lr = live.controls["lr"]
    assert isinstance(lr, w.FloatLogSlider) and lr.base == 10
    assert 2.5 <= lr.max - lr.min <= 4.5  # about 3 decades
    assert lr.step <= 0.01  # one step changes η by 2.3 % at most: no jump from 0.016 to 10
    rb = SURFACES["rosenbrock"]
    curvature = np.abs(np.linalg.eigvalsh(rb.hessian(rb.minima[0]))).max()
    stable = 2 / curvature  # gradient descent diverges above this
    assert 10 ** lr.min < stable / 5 and 10 ** lr.max > 0.1  # SGD's range and Adam's
    assert 10 ** lr.max < 10  # no decades where every rule diverges
    live.controls["surface"].value = SURFACES["quadratic"]  # κ = 10: larger steps work
    lo, hi = knobs.lr_range("quadratic")
    assert (lr.min, lr.max) == pytest.approx((np.log10(lo), np.log10(hi)))
    assert lo > 10 ** -2.6 and hi >= 2 / 10


def test_dashboard_refresh_is_fast_enough_for_a_slider(live):
    times = []
    for v in np.geomspace(1e-3, 1e-2, 6):
        live.controls["lr"].value = float(v)
        times.append(live.last_update_ms)
    assert np.median(times) < 1000  # ms, on a loaded CI machine; ~30-60 ms on a quiet one
