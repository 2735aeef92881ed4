"""optlab.landscape: colours that stand out, names that say what a surface is, and pictures
that depend only on what they show (threads, interrupted renders and history included)."""

from __future__ import annotations

import itertools
import threading

import matplotlib as mpl
import numpy as np
from matplotlib.colors import to_rgb

from optlab import landscape
from optlab.rules import FIRST_ORDER
from optlab.surfaces import SURFACES, get_surface, quadratic, rosenbrock
from optlab.trajectories import trajectories
from optlab.widgets_second_order import METHOD_COLORS


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
    contours = _contour_colors(landscape.CONTOUR_CMAP, landscape.CONTOUR_ALPHA)
    colours = {**{n: landscape.COLORS[n] for n in FIRST_ORDER}, **METHOD_COLORS}
    for name, c in colours.items():
        closest = min(_delta_e(c, k) for k in contours)
        assert closest >= 45, f"{name} ({c}) is only ΔE {closest:.0f} from a contour colour"
        assert _contrast_on_white(c) >= 2.5, f"{name} ({c}) is too pale on white"
    for group in ({n: landscape.COLORS[n] for n in FIRST_ORDER}, METHOD_COLORS):
        for (a, ca), (b, cb) in itertools.combinations(group.items(), 2):
            assert _delta_e(ca, cb) >= 30, f"{a} and {b} look alike ({ca}, {cb})"
    # the measure catches the reported problem: RMSprop's old purple on viridis contours
    viridis = _contour_colors(mpl.colormaps["viridis"], 0.6)
    assert min(_delta_e("C4", k) for k in viridis) < 45


def test_contours_are_drawn_in_the_contour_colours_and_axes_named_w():
    view = landscape.LandscapeFigure("rosenbrock", ["sgd"])
    cs = view._surface_artists[0]
    assert cs.get_cmap() is landscape.CONTOUR_CMAP
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
    for a in view._dynamic():  # what the interrupted render left behind
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
