"""optlab.viz.frames: the book's self-contained HTML frame slider."""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from optlab.viz.frames import frame_slider, html_output


def test_frame_slider_is_offline_labelled_and_has_one_frame_per_value():
    fig = Figure(figsize=(2, 1.5), dpi=40)
    ax = fig.add_subplot()
    (line,) = ax.plot([0, 1], [0, 0])
    drawn = []

    def draw(k: int) -> None:
        drawn.append(k)
        line.set_ydata([0, k])

    html = frame_slider(fig, draw, ["a<b", "2", "3"], name="step & size")
    assert html.count("data:image/png;base64,") == 3 and sorted(set(drawn)) == [0, 1, 2]
    assert "https://" not in html and "http://" not in html
    uid = re.search(r'id="_anim_slider(\w+)"', html).group(1)
    label = re.search(r'<label class="optlab-slider-name" for="_anim_slider' + uid
                      + r'">(.*?)</label>', html).group(1)
    assert label.startswith("step &amp; size = ") and ">a&lt;b</output>" in label  # escaped
    ends = re.findall(r'<span class="optlab-slider-end"[^>]*>([^<]*)</span>', html)
    assert ends == ["a&lt;b", "3"]
    assert '["a<b", "2", "3"]' in html  # the readout's labels, as JSON for the script


def test_html_output_carries_what_it_shows():
    out = html_output("<p>x</p>", runs={"sgd": 1}, values=[1, 2])
    assert out.data == "<p>x</p>" and out.runs == {"sgd": 1} and out.values == [1, 2]
    assert out._repr_html_() == "<p>x</p>"
