"""optlab.viz.explore: the one call a chapter makes: the book build's offline frame slider,
one-line refusals of bad input in both modes, and the chapters' short names (optlab.widgets,
optlab.landscape, optlab.widgets_second_order) re-exporting optlab.viz."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from optlab.viz import explore  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# the book build
# --------------------------------------------------------------------------------------------


def test_book_build_gives_an_offline_frame_slider(monkeypatch):
    monkeypatch.setenv("OPTLAB_BOOK_BUILD", "1")
    values = np.geomspace(1e-4, 0.5, 6)
    out = explore.explore("rosenbrock", ("sgd", "adam"), sweep="lr", values=values, steps=80)
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
    out = explore.sweep_animation("quadratic", ("sgd",), sweep="lr", values=[0.01, 0.1, 0.3],
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
    out = explore.sweep_animation("quadratic", ("sgd", "momentum"), sweep="beta1",
                                  values=[0.0, 0.5, 0.9], steps=40, lr=0.05)
    assert out.runs["sgd"].n == 1 and out.runs["momentum"].n == 3
    np.testing.assert_array_equal(out.runs["momentum"].hparams["momentum"], [0.0, 0.5, 0.9])
    assert out.data.count("data:image/png;base64,") == 3


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match="sweep must be one of"):
        explore.explore(sweep="gamma", mode="live")
    with pytest.raises(ValueError, match="sweep must be one of"):
        explore.sweep_animation(sweep="gamma")
    with pytest.raises(ValueError, match="unknown optimizer"):
        explore.explore(optimizers=("sgdd",), mode="live")
    with pytest.raises(ValueError, match="mode must be"):
        explore.explore(mode="static")


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
        explore.explore("rosenbrock", mode=mode, **kwargs)
    assert "\n" not in str(err.value)


def test_explore_takes_one_name_and_keeps_every_valid_value(monkeypatch):
    """A single string is one optimizer; valid values outside the sliders' usual ranges widen
    the sliders instead of being clamped."""
    d = explore.explore("rosenbrock", "adam", steps=5, lr=3.0, eps=1e-14, beta1=0.9999,
                        mode="live")
    assert list(d.runs) == ["adam"] and d.controls["optimizers"].value == ("adam",)
    assert d.controls["lr"].value == pytest.approx(3.0)
    assert d.controls["eps"].value == pytest.approx(1e-14)
    assert d.controls["beta1"].value == 0.9999 and d.controls["steps"].value == 5
    assert d.runs["adam"].hparams["lr"] == pytest.approx(3.0) and d.runs["adam"].steps == 5
    book = explore.explore("rosenbrock", "adam", sweep="lr", values=[0.01, 0.1], steps=10,
                           mode="book")
    assert list(book.runs) == ["adam"]


def test_the_frame_slider_reads_out_its_value_in_a_browser_at_desktop_and_phone_width(
        tmp_path, browser):
    """The labelled slider in Chromium (offline): the readout follows the slider and the
    play buttons, and nothing is wider than a 390 px phone."""
    out = explore.sweep_animation("rosenbrock", ("adagrad", "rmsprop"), sweep="lr",
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


def test_the_chapters_short_names_are_the_viz_objects():
    from optlab import landscape, widgets, widgets_second_order
    from optlab.viz import dashboard, knobs, second_order_explorers, style
    from optlab.viz import landscape as viz_landscape

    assert widgets.explore is explore.explore and widgets.Dashboard is dashboard.Dashboard
    assert widgets.rule_hparams is knobs.rule_hparams
    assert landscape.LandscapeFigure is viz_landscape.LandscapeFigure
    assert landscape.COLORS is style.COLORS
    assert widgets_second_order.start_explorer is second_order_explorers.start_explorer
    for module in (landscape, widgets, widgets_second_order):
        assert all(hasattr(module, name) for name in module.__all__)
