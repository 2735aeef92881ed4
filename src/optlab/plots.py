"""Figures of a comparison's ``results.json``: the first paper's two plots.

* :func:`final_accuracy` — bar chart of the final test (and train) accuracy per optimizer, mean
  over seeds with the min-max spread as error bars.
* :func:`accuracy_curves` — train and test accuracy after every epoch, mean line and min-max band
  over seeds, one colour per optimizer.

:func:`load_results` turns the file (read and checked by :mod:`optlab.results`) into a tidy
structure (no pandas): a :class:`Results` with
one :class:`Curve` per (optimizer, variant, learning rate), holding ``(seeds, epochs)`` NumPy
arrays. Diverged runs are kept out of the means and bands and named in the legend
(``"sgd (1/3 diverged)"``), never drawn as garbage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .results import ResultsDoc
from .results import load_results as read_results

METRICS = ("train_loss", "train_acc", "train_acc_running", "val_loss", "val_acc", "test_loss",
           "test_acc", "seconds")


@dataclass
class Curve:
    """All seeds of one optimizer setting: ``values[metric]`` is a ``(n_ok_seeds, n_epochs)``
    float array (NaN-padded if some runs have fewer epochs); diverged seeds are listed apart."""

    optimizer: str
    lr: float | None
    variant: str | None
    epochs: np.ndarray
    values: dict[str, np.ndarray]
    seeds: list[int]
    diverged_seeds: list[int] = field(default_factory=list)
    unfinished_seeds: list[int] = field(default_factory=list)
    init: str | None = None  # the initial weights, in an ablation over them

    @property
    def label(self) -> str:
        name = (self.optimizer + (f" {self.variant}" if self.variant else "")
                + (f" {self.init} init" if self.init else ""))
        n_all = len(self.seeds) + len(self.diverged_seeds) + len(self.unfinished_seeds)
        notes = [f"{len(s)}/{n_all} {what}" for s, what in (
            (self.diverged_seeds, "diverged"), (self.unfinished_seeds, "unfinished")) if s]
        if notes:
            name += f" ({', '.join(notes)})"
        return name

    def mean(self, metric: str) -> np.ndarray:
        v = self.values.get(metric)
        if v is None or v.size == 0:
            return np.full(len(self.epochs), np.nan)
        with np.errstate(all="ignore"):
            return np.nanmean(v, axis=0) if np.isfinite(v).any() else np.full(v.shape[1], np.nan)

    def final(self, metric: str) -> np.ndarray:
        """The last epoch's value of each non-diverged seed."""
        v = self.values.get(metric)
        if v is None or v.size == 0:
            return np.array([])
        return v[:, -1][np.isfinite(v[:, -1])]


@dataclass
class Results:
    curves: list[Curve]
    provenance: dict[str, Any]
    config: dict[str, Any]
    selection: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None
    doc: ResultsDoc | None = None  # the typed file (optlab.results)

    def curve(self, optimizer: str, variant: str | None = None) -> Curve:
        for c in self.curves:
            if c.optimizer == optimizer and c.variant == variant:
                return c
        raise KeyError(optimizer)


def load_results(path: str | os.PathLike | dict[str, Any] | ResultsDoc,
                 phase: str = "final") -> Results:
    """Read ``results.json`` (or a directory holding it, a parsed dict, or a
    :class:`~optlab.results.ResultsDoc`) through :func:`optlab.results.load_results` (checked)
    into :class:`Results`; ``phase="selection"`` gives the grid-search runs of the ``tuned``
    preset instead. Seeds are sorted into finished, diverged and unfinished by
    :attr:`optlab.results.RunRecord.outcome`."""
    doc = read_results(path)
    runs = doc.runs_of(phase)
    curves = []
    for setting in dict.fromkeys(r.setting for r in runs):
        rs = [r for r in runs if r.setting == setting]
        ok = [r for r in rs if r.outcome == "finished"]
        n_ep = max((len(r.epochs) for r in rs), default=0)
        epochs = np.arange(1, n_ep + 1)
        if ok and ok[0].epochs and ok[0].epochs[0].value("epochs_of_gradients") is not None:
            epochs = np.array([e.value("epochs_of_gradients") for e in
                               max(ok, key=lambda r: len(r.epochs)).epochs])
            n_ep = len(epochs)
        values = {}
        for m in METRICS:
            arr = np.full((len(ok), n_ep), np.nan)
            for i, r in enumerate(ok):
                for j, e in enumerate(r.epochs[:n_ep]):
                    v = e.value(m)
                    arr[i, j] = np.nan if v is None else float(v)
            values[m] = arr
        # runs still "running" (an unfinished file) are neither results nor divergences: they
        # are left out of the values and counted in the label
        curves.append(Curve(setting.optimizer, setting.lr, setting.variant, epochs, values,
                            [r.seed for r in ok],
                            [r.seed for r in rs if r.outcome == "diverged"],
                            [r.seed for r in rs if r.outcome == "unfinished"], setting.init))
    return Results(curves, dict(doc.provenance), dict(doc.config),
                   dict(doc.selection) if doc.selection is not None else None,
                   dict(doc.raw), doc)


def _as_results(results: Any) -> Results:
    return results if isinstance(results, Results) else load_results(results)


def _axes(ax: Any, ncols: int = 1, figsize=(7, 4)):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(1, ncols, figsize=figsize)
    return fig, ax


def final_accuracy(results: Any, ax: Any = None, *, train: bool = True,
                   title: str | None = None) -> Any:
    """Bar chart of the final test accuracy (and train accuracy, hatched) per optimizer: mean
    over seeds, error bars from the smallest to the largest seed. Returns the ``Axes``."""
    res = _as_results(results)
    fig, ax = _axes(ax)
    curves = res.curves
    x = np.arange(len(curves))
    width = 0.38 if train else 0.6
    for i, c in enumerate(curves):
        bars: list[tuple[str, float, str | None]] = [
            ("test_acc", width / 2 if train else 0.0, None)
        ]
        if train:
            bars.insert(0, ("train_acc", -width / 2, "//"))
        for metric, off, hatch in bars:
            v = c.final(metric)
            color = f"C{i % 10}"
            if v.size == 0:
                ax.text(x[i] + off, 0.02, "diverged", rotation=90, ha="center", va="bottom",
                        fontsize=8)
                continue
            mean = float(v.mean())
            err = np.array([[mean - v.min()], [v.max() - mean]])
            ax.bar(x[i] + off, mean, width, yerr=err, capsize=3, color=color,
                   alpha=0.55 if hatch else 0.95, hatch=hatch, edgecolor="black", linewidth=0.5)
            # the value above the error bar's top, so that the bar does not cross it
            ax.text(x[i] + off, float(v.max()), f"{mean:.3f}", ha="center", va="bottom",
                    fontsize=7, rotation=90 if train else 0)
    ax.set_xticks(x)
    ax.set_xticklabels([c.label for c in curves], rotation=20, ha="right")
    ax.set_ylabel("accuracy after the last epoch")
    ax.set_ylim(0, 1.05)
    if train:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(facecolor="grey", alpha=0.55, hatch="//", label="train"),
                           Patch(facecolor="grey", label="test")], loc="lower right")
    n_seeds = max((len(c.seeds) + len(c.diverged_seeds) for c in curves), default=0)
    ax.set_title(title or f"Final accuracy (mean of {n_seeds} seeds, bars: min-max)")
    return ax


def accuracy_curves(results: Any, axes: Any = None, *, metrics: tuple[str, ...] = (
        "train_acc", "test_acc"), ylim: tuple[float, float] | None = None) -> Any:
    """Train and test accuracy after every epoch: one panel per metric, the mean over seeds
    as a line and the min-max band. Returns the array of ``Axes``."""
    import matplotlib.pyplot as plt

    res = _as_results(results)
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), sharey=True,
                               squeeze=False)
        axes = axes[0]
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=False):
        for i, c in enumerate(res.curves):
            v = c.values.get(metric)
            if v is None or v.size == 0 or not np.isfinite(v).any():
                ax.plot([], [], color=f"C{i % 10}", label=c.label + " (no data)")
                continue
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
            ax.plot(c.epochs, c.mean(metric), marker="o", ms=3, color=f"C{i % 10}",
                    label=c.label)
            if v.shape[0] > 1:
                ax.fill_between(c.epochs, lo, hi, color=f"C{i % 10}", alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_title(metric.replace("_acc", " accuracy").replace("_loss", " loss"))
        ax.grid(alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    np.atleast_1d(axes)[0].set_ylabel("accuracy" if metrics[0].endswith("acc") else "loss")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    return axes
