"""How to serialize an animation for the static book: a self-contained HTML frame slider.

:func:`frame_slider` turns a figure and a per-frame drawing function into HTML that needs no
kernel and no network (matplotlib's ``to_jshtml`` without its CDN link, plus a labelled slider);
:func:`html_output` wraps it as a cell result that carries what it shows, for checks in a
chapter.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

_CDN_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^\"']*[\"'][^>]*>", re.IGNORECASE)

_FRAME_SLIDER_STYLE = """<style>
.optlab-frames .animation { display: block; max-width: 100%; text-align: center; }
.optlab-frames .animation img { display: block; max-width: 100%; height: auto;
  margin: 0 auto; }
.optlab-frames .optlab-slider { display: flex; flex-wrap: wrap; align-items: center;
  justify-content: center; gap: 0.2em 0.8em; margin: 0.3em auto; max-width: 720px; }
.optlab-frames .optlab-slider-name { white-space: nowrap; }
.optlab-frames .optlab-slider-name output { font-weight: 600;
  font-variant-numeric: tabular-nums; }
.optlab-frames .optlab-slider-range { display: flex; align-items: center; gap: 0.5em;
  flex: 1 1 240px; min-width: 0; }
.optlab-frames .optlab-slider-range input[type=range].anim-slider { flex: 1 1 auto;
  width: auto; min-width: 80px; margin: 0; }
.optlab-frames .optlab-slider-end { font-size: 0.85em; opacity: 0.75; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.optlab-frames .anim-buttons { display: flex; flex-wrap: wrap; justify-content: center; }
</style>"""

_FRAME_SLIDER_SCRIPT = """<script>
(function () {
  var labels = %(labels)s;
  var slider = document.getElementById("_anim_slider%(uid)s");
  var img = document.getElementById("_anim_img%(uid)s");
  var out = document.getElementById("optlab-value-%(uid)s");
  if (!slider || !img || !out) { return; }
  function show() {
    var k = parseInt(slider.value, 10) || 0;
    var text = labels[Math.max(0, Math.min(labels.length - 1, k))];
    out.textContent = text;
    slider.setAttribute("aria-valuetext", %(name)s + " = " + text);
  }
  slider.addEventListener("input", show);
  /* the animation's buttons change the frame without an input event: follow the image */
  new MutationObserver(show).observe(img, {attributes: true, attributeFilter: ["src"]});
  show();
})();
</script>"""


def frame_slider(fig: Any, draw_frame: Callable[[int], Any], value_labels: Sequence[str], *,
                 name: str, fps: int = 2) -> str:
    """A self-contained HTML frame slider of ``fig``: frame ``k`` is the figure after
    ``draw_frame(k)``, for the ``k``-th of ``value_labels`` of the parameter ``name``.

    ``FuncAnimation.to_jshtml`` without its Font Awesome CDN ``<link>`` (the book theme draws
    the icons; the page makes no outside request), plus what a reader needs to read it: a label
    ``name = value`` next to the slider that follows the frame (a small inline script; without
    JavaScript it shows the first value), the first and last values at the slider's ends, and
    styles that scale the frames down to the page's width (``max-width: 100%``).
    """
    from matplotlib.animation import FuncAnimation

    labels = [str(v) for v in value_labels]
    anim = FuncAnimation(fig, draw_frame, frames=len(labels), interval=1000.0 / fps,
                         repeat=False)
    html = _CDN_LINK.sub("", anim.to_jshtml(fps=fps, default_mode="once"))
    found = re.search(r'<input id="_anim_slider(\w+)"[^>]*>', html)
    if found is None:  # pragma: no cover - a matplotlib whose template changed
        return html
    uid, slider = found.group(1), found.group(0)
    esc = html_lib.escape
    labelled = (
        f'<div class="optlab-slider">'
        f'<label class="optlab-slider-name" for="_anim_slider{uid}">{esc(name)} = '
        f'<output id="optlab-value-{uid}" for="_anim_slider{uid}">{esc(labels[0])}</output>'
        f'</label><span class="optlab-slider-range">'
        f'<span class="optlab-slider-end" title="first value">{esc(labels[0])}</span>'
        f'{slider[:-1]} aria-label="{esc(name)}">'
        f'<span class="optlab-slider-end" title="last value">{esc(labels[-1])}</span>'
        f"</span></div>"
    )
    script = _FRAME_SLIDER_SCRIPT % {"labels": json.dumps(labels), "uid": uid,
                                     "name": json.dumps(name)}
    return (f'<div class="optlab-frames" id="optlab-frames-{uid}">{_FRAME_SLIDER_STYLE}'
            f"{html.replace(slider, labelled, 1)}{script}</div>")


def html_output(html: str, **shown: Any) -> Any:
    """An ``IPython.display.HTML`` of ``html`` (a cell displays it) carrying ``shown`` as
    attributes (``out.runs``, ``out.values`` ...), for checks in a chapter."""
    from IPython.display import HTML

    out = HTML(html)
    vars(out).update(shown)
    return out


__all__ = ["frame_slider", "html_output"]
