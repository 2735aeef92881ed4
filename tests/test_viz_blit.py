"""optlab.viz.blit: a figure that repaints only its moving artists, and pays for the static part
once per background key."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from optlab.viz.blit import BACKGROUNDS_KEPT, BlitFigure


class Dot(BlitFigure):
    """A static grid of lines and one moving dot; the y limits are the background key."""

    def __init__(self) -> None:
        super().__init__((3.0, 2.0), 60)
        self.ax = self.fig.add_subplot()
        for k in range(20):
            self.ax.plot([0, 1], [k / 20, 1 - k / 20], color="0.6")
        (self.dot,) = self.ax.plot([0.5], [0.5], "o", color="red", ms=12)
        self.shown = True

    def dynamic_artists(self):
        return [self.dot]

    def intended_visibility(self):
        return {self.dot: self.shown}

    def background_key(self):
        return self.ax.get_ylim()


def test_a_blitted_render_equals_a_full_draw_and_reuses_the_background():
    view = Dot()
    view.render()
    view.fig.set_layout_engine(None)  # keep the layout for the comparison below
    view.dot.set_data([0.2], [0.7])
    blitted = view.render().copy()
    assert view.full_draws == 1  # the static part drawn once
    view.canvas.draw()
    assert np.array_equal(blitted, np.asarray(view.canvas.buffer_rgba()))


def test_a_new_background_key_draws_the_static_part_again_and_the_cache_is_bounded():
    view = Dot()
    for k in range(BACKGROUNDS_KEPT + 3):
        view.ax.set_ylim(0, 1 + k)
        view.render()
    assert view.full_draws == BACKGROUNDS_KEPT + 3
    assert len(view._backgrounds) == BACKGROUNDS_KEPT
    view.ax.set_ylim(0, 1 + BACKGROUNDS_KEPT + 2)  # the newest: cached
    view.render()
    view.forget_backgrounds()
    view.render()
    assert view.full_draws == BACKGROUNDS_KEPT + 4


def test_visibility_comes_from_the_intended_state_not_from_the_artist():
    view = Dot()
    with_dot = view.render().copy()
    view.shown = False
    without = view.render().copy()
    assert not np.array_equal(with_dot, without)
    view.shown = True
    view.dot.set_visible(False)  # what an interrupted render could leave behind
    assert np.array_equal(view.render(), with_dot)


def test_png_and_the_frozen_savefig_are_the_rendered_picture():
    view = Dot()
    rgba = view.render().copy()
    png = np.asarray(Image.open(io.BytesIO(view.png())))
    assert np.array_equal(png, rgba)
    view.freeze()
    buf = io.BytesIO()
    view.fig.savefig(buf, format="png")
    frame = Image.open(io.BytesIO(buf.getvalue()))
    assert frame.mode == "P" and frame.size == (rgba.shape[1], rgba.shape[0])  # palette PNG
    assert view.full_draws == 1  # savefig blitted
