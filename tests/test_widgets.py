"""optlab.landscape and optlab.widgets without a kernel or a browser.

The live dashboard is built headless (ipywidgets works without a frontend), its controls are
moved from Python, and the figure's artists must follow; the book-build path must give a
self-contained frame slider; diverged runs must be marked.
"""

from __future__ import annotations

import base64
import re
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import optlab  # noqa: E402
from optlab import landscape, widgets  # noqa: E402
from optlab.surfaces import SURFACES  # noqa: E402
from optlab.trajectories import trajectories  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def live(monkeypatch):
    monkeypatch.delenv("OPTLAB_BOOK_BUILD", raising=False)
    return widgets.explore("rosenbrock", ("sgd", "momentum", "adam"), steps=100, lr=1e-3)


# --------------------------------------------------------------------------------------------
# landscape
# --------------------------------------------------------------------------------------------


def test_log_levels_are_log_spaced_above_the_minimum():
    Z = SURFACES["rosenbrock"].grid(100)[2]
    lev = landscape.log_levels(Z, 12)
    assert lev.shape == (12,) and np.all(np.diff(lev) > 0)
    h = lev - Z.min()
    assert np.allclose(np.diff(np.log(h)), np.log(h[1] / h[0]))  # a geometric sequence
    assert lev[-1] == pytest.approx(Z.max())


def test_exit_point_is_on_the_box_edge():
    xy = np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 1.0], [np.nan, np.nan]])
    p = landscape.exit_point(xy, 2, ((-1, 1), (-1, 1)))
    assert p[0] == pytest.approx(1.0) and p[1] == pytest.approx(0.2)
    assert np.array_equal(landscape.exit_point(xy, 1, ((-1, 1), (-1, 1))), xy[1])
    assert landscape.exit_point(xy + 5, 2, ((-1, 1), (-1, 1))) is None


def test_plot_displays_itself_without_pyplot():
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    runs = trajectories({"sgd": {"lr": 1e-3}, "adam": {"lr": 0.05}}, "rosenbrock", steps=50)
    fig = landscape.plot(runs, title="t")
    assert fig._repr_png_().startswith(PNG)
    assert set(plt.get_fignums()) == before  # never registered with pyplot: no double display
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["sgd", "adam"]


def test_diverged_runs_are_marked():
    surf = SURFACES["rosenbrock"]
    runs = trajectories({"sgd": {"lr": 0.1}, "adam": {"lr": 0.01}}, surf, steps=100)
    assert runs["sgd"].diverged[0] and not runs["adam"].diverged[0]
    view = landscape.LandscapeFigure(surf, ["sgd", "adam"])
    view.update(runs)
    labels = [t.get_text() for t in view.ax_loss.get_legend().get_texts()]
    assert labels == ["sgd (diverged)", "adam"]
    sgd, adam = view.artists["sgd"], view.artists["adam"]
    # an 'x' where the path was last seen inside the plotting box, and at its last finite loss
    (x,), (y,) = sgd.path_x.get_data()
    (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
    assert sgd.path_x.get_visible() and sgd.path_x.get_marker() == "x"
    assert x_lo - 1e-9 <= x <= x_hi + 1e-9 and y_lo - 1e-9 <= y <= y_hi + 1e-9
    t, _ = sgd.loss_x.get_data()
    assert list(t) == [runs["sgd"].diverged_at[0] - 1]
    assert not adam.path_x.get_visible() and len(adam.loss_x.get_data()[0]) == 0


def test_blitted_frame_equals_a_full_redraw():
    """The cached background never keeps an earlier frame's lines (no ghosts)."""
    surf = SURFACES["himmelblau"]
    view = landscape.LandscapeFigure(surf, ["sgd", "adam"])
    a = trajectories({"sgd": {"lr": 0.01}, "adam": {"lr": 0.1}}, surf, steps=80)
    b = trajectories({"sgd": {"lr": 0.02}, "adam": {"lr": 0.3}}, surf, steps=80)
    view.fit(a, [0])
    view.fit(b, [0])  # one loss axis for both: the second render() reuses the background
    view.update(a, title="a")
    view.render()
    view.fig.set_layout_engine(None)  # keep the layout for the comparison below
    view.update(b, title="b")
    draws = view.full_draws
    blitted = view.render().copy()
    assert view.full_draws == draws  # blitted, not redrawn
    view.fig.canvas.draw()  # everything drawn normally, no cache
    full = np.asarray(view.fig.canvas.buffer_rgba())
    assert np.array_equal(blitted, full)


# --------------------------------------------------------------------------------------------
# knobs -> hyperparameters
# --------------------------------------------------------------------------------------------


def test_knobs_map_to_each_rules_hyperparameters():
    knobs = {"lr": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}
    assert widgets.rule_hparams("sgd", knobs) == {"lr": 0.1}
    assert widgets.rule_hparams("momentum", knobs) == {"lr": 0.1, "momentum": 0.8}
    assert widgets.rule_hparams("adam", knobs) == {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}
    assert widgets.rule_hparams("rmsprop", knobs) == {"lr": 0.1, "eps": 1e-6}
    extra = {"weight_decay": 0.01, "momentum": 0.5}
    assert widgets.rule_hparams("momentum", knobs, extra)["momentum"] == 0.5  # explicit wins
    assert widgets.rule_hparams("adamw", knobs, extra)["weight_decay"] == 0.01
    assert "momentum" not in widgets.rule_hparams("adam", knobs, extra)
    with pytest.raises(ValueError, match="no optimizer takes 'lrr'"):
        widgets.split_hparams({"lrr": 1.0})


# --------------------------------------------------------------------------------------------
# the live dashboard
# --------------------------------------------------------------------------------------------


def test_dashboard_builds_without_a_kernel(live):
    import ipywidgets as w

    assert isinstance(live, widgets.Dashboard) and isinstance(live.widget, w.VBox)
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
    d = widgets.explore(quad, ("sgd",), steps=20, lr=0.05)
    assert d.controls["surface"].value is quad
    assert d.runs["sgd"].surface is quad


# --------------------------------------------------------------------------------------------
# the book build
# --------------------------------------------------------------------------------------------


def test_book_build_gives_an_offline_frame_slider(monkeypatch):
    monkeypatch.setenv("OPTLAB_BOOK_BUILD", "1")
    values = np.geomspace(1e-4, 0.5, 6)
    out = widgets.explore("rosenbrock", ("sgd", "adam"), sweep="lr", values=values, steps=80)
    html = out.data
    assert html.count("data:image/png;base64,") == len(values)
    assert re.search(r'<input[^>]*id="_anim_slider', html)
    assert "https://" not in html and "http://" not in html  # the Font Awesome CDN link is gone
    # every frame is the sweep value's run; large steps diverge and are labelled so
    assert out.sweep == "lr" and np.array_equal(out.values, values)
    assert out.runs["sgd"].n == len(values) and out.runs["sgd"].diverged[-1]
    last = [t.get_text() for t in out.figure.ax_loss.get_legend().get_texts()]
    assert "sgd (diverged)" in last
    assert out.figure.title.get_text() == "Rosenbrock: learning rate η = 0.5"
    # frames at 100 dpi: 900 px wide, scaled down by the page (max-width: 100%)
    first = re.search(r"data:image/png;base64,([A-Za-z0-9+/=\\\n]+)", html).group(1)
    png = base64.b64decode(first.replace("\\", "").replace("\n", ""))
    assert png.startswith(PNG) and int.from_bytes(png[16:20], "big") >= 900
    assert "max-width: 100%" in html


def test_the_frame_slider_is_labelled_with_its_name_value_and_ends():
    out = widgets.sweep_animation("quadratic", ("sgd",), sweep="lr", values=[0.01, 0.1, 0.3],
                                  steps=20)
    html = out.data
    uid = re.search(r'id="_anim_slider(\w+)"', html).group(1)
    label = re.search(r'<label class="optlab-slider-name" for="_anim_slider' + uid
                      + r'">(.*?)</label>', html).group(1)
    assert label.startswith("learning rate η = ") and ">0.01</output>" in label
    ends = re.findall(r'<span class="optlab-slider-end"[^>]*>([^<]*)</span>', html)
    assert ends == ["0.01", "0.3"]
    # the readout follows the frame (slider moves and the play buttons): labels per frame
    assert '["0.01", "0.1", "0.3"]' in html and "MutationObserver" in html
    assert "ravine, κ = 10: learning rate η = 0.3" == out.figure.title.get_text()


def test_sweep_of_a_knob_some_optimizers_do_not_take():
    out = widgets.sweep_animation("quadratic", ("sgd", "momentum"), sweep="beta1",
                                  values=[0.0, 0.5, 0.9], steps=40, lr=0.05)
    assert out.runs["sgd"].n == 1 and out.runs["momentum"].n == 3
    np.testing.assert_array_equal(out.runs["momentum"].hparams["momentum"], [0.0, 0.5, 0.9])
    assert out.data.count("data:image/png;base64,") == 3


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match="sweep must be one of"):
        widgets.explore(sweep="gamma", mode="live")
    with pytest.raises(ValueError, match="sweep must be one of"):
        widgets.sweep_animation(sweep="gamma")
    with pytest.raises(ValueError, match="unknown optimizer"):
        widgets.explore(optimizers=("sgdd",), mode="live")
    with pytest.raises(ValueError, match="mode must be"):
        widgets.explore(mode="static")


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizers": "sgd,adam"}, r"give a tuple instead: optimizers=\('sgd', 'adam'\)"),
    ({"optimizers": ()}, "optimizers is empty"),
    ({"optimizers": ("adam", "adam")}, "'adam' is given twice"),
    ({"optimizers": ("bfgs",)}, "second-order method.*widgets_second_order"),
    ({"optimizers": 3}, "optimizers must be a rule name"),
    ({"lr": "0.01"}, "lr must be a number; got '0.01'"),
    ({"lr": -0.1}, r"lr = -0.1 is outside \(0, inf\)"),
    ({"lr": float("nan")}, "lr = nan is outside"),
    ({"beta1": 1.5}, r"beta1 = 1.5 is outside \[0, 1\)"),
    ({"betas": (0.9, 1.0)}, r"beta2 = 1 is outside \[0, 1\)"),
    ({"eps": 0.0}, "eps = 0 is outside"),
    ({"noise": -1.0}, "noise = -1 is outside"),
    ({"steps": 0}, r"steps = 0 is outside \[1, 100000\]"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"x0": (5.0, 5.0)}, "x0 = \\(5, 5\\) is outside the Rosenbrock plotting box"),
    ({"x0": "origin"}, "x0 must be a point"),
    ({"seed": -1}, "seed must be a whole number >= 0"),
    ({"values": [0.1]}, "at least 2 values"),
    ({"values": "0.1, 0.2"}, "values must be a list of lr values"),
    ({"values": [0.1, -1.0]}, "lr = -1 is outside"),
    ({"optimizers": ("sgd",), "sweep": "beta1"}, "changes none of the optimizers sgd"),
])
@pytest.mark.parametrize("mode", ["live", "book"])
def test_explore_refuses_bad_input_in_one_line(kwargs, message, mode):
    kwargs = {"steps": 20, **kwargs}
    with pytest.raises(ValueError, match=message) as err:
        widgets.explore("rosenbrock", mode=mode, **kwargs)
    assert "\n" not in str(err.value)


def test_explore_takes_one_name_and_keeps_every_valid_value(monkeypatch):
    """A single string is one optimizer; valid values outside the sliders' usual ranges widen
    the sliders instead of being clamped."""
    d = widgets.explore("rosenbrock", "adam", steps=5, lr=3.0, eps=1e-14, beta1=0.9999,
                        mode="live")
    assert list(d.runs) == ["adam"] and d.controls["optimizers"].value == ("adam",)
    assert d.controls["lr"].value == pytest.approx(3.0)
    assert d.controls["eps"].value == pytest.approx(1e-14)
    assert d.controls["beta1"].value == 0.9999 and d.controls["steps"].value == 5
    assert d.runs["adam"].hparams["lr"] == pytest.approx(3.0) and d.runs["adam"].steps == 5
    book = widgets.explore("rosenbrock", "adam", sweep="lr", values=[0.01, 0.1], steps=10,
                           mode="book")
    assert list(book.runs) == ["adam"]


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
    fresh = widgets.Dashboard(last.surface, last.optimizers, last.steps, last.x0, **last.knobs)
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
    lo, hi = widgets.lr_range("quadratic")
    assert (lr.min, lr.max) == pytest.approx((np.log10(lo), np.log10(hi)))
    assert lo > 10 ** -2.6 and hi >= 2 / 10


def test_dashboard_refresh_is_fast_enough_for_a_slider(live):
    times = []
    for v in np.geomspace(1e-3, 1e-2, 6):
        live.controls["lr"].value = float(v)
        times.append(live.last_update_ms)
    assert np.median(times) < 1000  # ms, on a loaded CI machine; ~30-60 ms on a quiet one


def test_the_frame_slider_reads_out_its_value_in_a_browser_at_desktop_and_phone_width(
        tmp_path, browser):
    """The labelled slider in Chromium (offline): the readout follows the slider and the
    play buttons, and nothing is wider than a 390 px phone."""
    out = widgets.sweep_animation("rosenbrock", ("adagrad", "rmsprop"), sweep="lr",
                                  values=[1e-3, 0.01, 0.1], steps=50)
    page_file = tmp_path / "slider.html"
    page_file.write_text('<!doctype html><meta charset="utf-8"><meta name="viewport" '
                         'content="width=device-width, initial-scale=1"><body '
                         f'style="margin: 0 16px">{out.data}</body>', encoding="utf-8")
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e, seen=errors: seen.append(str(e)))
        page.goto(page_file.as_uri())
        page.wait_for_function("() => !!document.querySelector('output').textContent")
        readout = page.locator(".optlab-frames output")
        assert readout.text_content() == "0.001"
        page.locator("input.anim-slider").evaluate(
            "el => { el.value = 2; el.dispatchEvent(new Event('input')); }")
        assert readout.text_content() == "0.1"
        page.locator("button[title='Previous frame']").click()  # no input event
        page.wait_for_function(
            "() => document.querySelector('.optlab-frames output').textContent"
            " === '0.01'")
        label = page.locator(".optlab-slider-name").text_content()
        assert label == "learning rate η = 0.01"
        widths = page.evaluate("""() => ({
            doc: document.documentElement.scrollWidth, win: window.innerWidth,
            img: document.querySelector('.optlab-frames img').getBoundingClientRect().width,
            slider: document.querySelector('input.anim-slider')
                    .getBoundingClientRect().right})""")
        assert widths["doc"] <= widths["win"], f"the page scrolls sideways at {width} px"
        assert widths["img"] <= width - 32 and widths["slider"] <= width
        assert not errors
        page.close()
