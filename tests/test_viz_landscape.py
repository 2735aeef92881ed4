"""optlab.viz.landscape and optlab.viz.style: colours that stand out, names that say what a
surface is, contours, exit points, diverged runs marked, and pictures that depend only on what
they show (threads, interrupted renders, blitting and history included)."""

from __future__ import annotations

import itertools
import threading

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from optlab.rules import FIRST_ORDER
from optlab.surfaces import SURFACES, get_surface, quadratic, rosenbrock
from optlab.trajectories import trajectories
from optlab.viz import landscape, style
from optlab.viz.style import METHOD_COLORS

PNG = b"\x89PNG\r\n\x1a\n"


def _lab(color) -> np.ndarray:
    """CIELAB (D65) of a matplotlib colour."""
    rgb = np.array(to_rgb(color))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _delta_e(a, b) -> float:
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def _contour_colors(cmap, alpha: float) -> list:
    """The contour lines' colours as seen: the colormap at alpha over the white axes."""
    return [tuple(alpha * np.array(cmap(x)[:3]) + (1 - alpha)) for x in np.linspace(0, 1, 24)]


def _contrast_on_white(color) -> float:
    rgb = np.array(to_rgb(color))
    lum = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4) @ [
        0.2126, 0.7152, 0.0722]
    return 1.05 / (lum + 0.05)


def test_every_path_colour_stands_out_on_the_contours():
    contours = _contour_colors(style.CONTOUR_CMAP, style.CONTOUR_ALPHA)
    colours = {**{n: style.COLORS[n] for n in FIRST_ORDER}, **METHOD_COLORS}
    for name, c in colours.items():
        closest = min(_delta_e(c, k) for k in contours)
        assert closest >= 45, f"{name} ({c}) is only ΔE {closest:.0f} from a contour colour"
        assert _contrast_on_white(c) >= 2.5, f"{name} ({c}) is too pale on white"
    for group in ({n: style.COLORS[n] for n in FIRST_ORDER}, METHOD_COLORS):
        for (a, ca), (b, cb) in itertools.combinations(group.items(), 2):
            assert _delta_e(ca, cb) >= 30, f"{a} and {b} look alike ({ca}, {cb})"
    # the measure catches the reported problem: RMSprop's old purple on viridis contours
    viridis = _contour_colors(mpl.colormaps["viridis"], 0.6)
    assert min(_delta_e("C4", k) for k in viridis) < 45


def test_contours_are_drawn_in_the_contour_colours_and_axes_named_w():
    view = landscape.LandscapeFigure("rosenbrock", ["sgd"])
    cs = view._surface_artists[0]
    assert cs.get_cmap() is style.CONTOUR_CMAP
    assert view.ax_map.get_xlabel() == "$w_1$" and view.ax_map.get_ylabel() == "$w_2$"
    assert "w_t" in view.ax_loss.get_ylabel() and "θ" not in view.ax_loss.get_ylabel()


def test_surfaces_are_named_for_what_they_are():
    assert quadratic(condition=100, angle=0.5).label == "ravine, κ = 100"
    assert quadratic(condition=1).label == "round bowl"
    assert get_surface("rosenbrock").label == "Rosenbrock"
    assert rosenbrock(b=50).label == "Rosenbrock (b = 50)"
    for surf in SURFACES.values():
        assert "Surface(" not in surf.label and surf.label


def _state(view, runs, title):
    view.update(runs, title=title)
    return view.render().copy()


def _runs(lrs, surf="himmelblau", steps=60):
    return trajectories({"sgd": {"lr": lrs[0]}, "adam": {"lr": lrs[1]}}, surf, steps=steps)


def test_a_picture_depends_only_on_its_state_not_on_history():
    a, b = _runs((0.01, 0.1)), _runs((0.02, 0.3))
    fresh = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    want = _state(fresh, {"adam": b["adam"]}, "b")
    view = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    _state(view, a, "a")  # both shown first, other loss limits
    view.set_surface("rosenbrock")
    view.set_surface(SURFACES["himmelblau"])
    got = _state(view, {"adam": b["adam"]}, "b")
    assert np.array_equal(got, want)
    assert not view.artists["sgd"].path.get_visible()


def test_an_interrupted_render_leaves_nothing_hidden():
    """A render that stopped between hiding the dynamic artists and restoring them (as an
    interleaved one did under ipykernel 7) must not hide the minima, start or title later."""
    runs = _runs((0.01, 0.1))
    fresh = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    want = _state(fresh, runs, "t")
    view = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    view.update(runs, title="t")
    for a in view.dynamic_artists():  # what the interrupted render left behind
        a.set_visible(False)
    view._backgrounds.clear()
    assert np.array_equal(view.render(), want)


def test_updates_and_renders_from_two_threads_end_with_the_last_state():
    states = [_runs((lr, 10 * lr)) for lr in (0.002, 0.005, 0.01, 0.02)]
    view = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    barrier = threading.Barrier(2)
    last = {}

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(10):
            with view.lock:  # update + render as one step, as the dashboard does
                runs = states[(i + k) % 4] if i % 3 else {"sgd": states[i % 4]["sgd"]}
                view.update(runs, title=f"{k}-{i}")
                view.render()
                last["runs"], last["title"] = runs, f"{k}-{i}"

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = landscape.LandscapeFigure("himmelblau", ["sgd", "adam"])
    assert np.array_equal(view.render(), _state(fresh, last["runs"], last["title"]))


def test_diverging_loss_is_capped_above_the_start():
    runs = trajectories({"sgd": {"lr": 0.1}}, "rosenbrock", steps=100)
    view = landscape.LandscapeFigure("rosenbrock", ["sgd"])
    view.update(runs)
    y = view.artists["sgd"].loss.get_ydata()
    start = y[0]
    assert np.nanmax(y) <= landscape.LOSS_HEADROOM * start * (1 + 1e-12)
    assert view.ax_loss.get_ylim()[1] <= 10 * landscape.LOSS_HEADROOM * start


def test_the_fixed_layout_keeps_every_label_inside_and_apart():
    """The layout computed once per surface holds the widest loss ticks: no label is cut off
    at the figure's edge or drawn over the tick labels, after a surface switch too."""
    view = landscape.LandscapeFigure(quadratic(condition=100, angle=0.5), ["sgd", "momentum"])
    view.set_surface("himmelblau")
    view.set_surface("rosenbrock")
    runs = trajectories({"sgd": {"lr": 1e-4}, "momentum": {"lr": 1e-3}}, "rosenbrock",
                        steps=3000)
    view.update(runs, title="Rosenbrock: learning rate η = 0.001")
    view.ax_loss.set_ylim(1e-16, 1e5)  # the widest tick labels it can show
    view.fig.canvas.draw()
    renderer = view.fig.canvas.get_renderer()
    fig_box = view.fig.bbox
    for ax in (view.ax_map, view.ax_loss):
        box = ax.get_tightbbox(renderer)
        assert box.x0 >= fig_box.x0 - 1 and box.y0 >= fig_box.y0 - 1
        assert box.x1 <= fig_box.x1 + 1 and box.y1 <= fig_box.y1 + 1
        label = ax.yaxis.label.get_window_extent(renderer)
        ticks = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()]
        assert all(label.x1 <= t.x0 + 1 for t in ticks), "y label over the tick labels"


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
