r"""Optimizer paths on the 2-D toy surfaces: :func:`trajectory` and :func:`trajectories`.

The updates are the course's rules from :mod:`optlab.rules` (never a second copy), applied to
the analytic gradients of :mod:`optlab.surfaces`::

    t = optlab.trajectory("adam", "rosenbrock", steps=300, lr=0.05)
    t.path            # (301, 1, 2): the start point and one point per step
    t.losses          # (301, 1)

Everything is vectorized over rows: several start points (``x0`` of shape ``(N, 2)``) and/or a
sweep over any hyperparameter (a 1-D array of length ``N``, e.g.
``lr=np.geomspace(1e-4, 1e-1, 20)``) run as one batch of ``N`` independent paths, because the
rules are elementwise and a hyperparameter of shape ``(N, 1)`` broadcasts against parameters of
shape ``(N, 2)``.

**Divergence** never raises. A row diverges at the first step where its point is not finite,
its loss is not finite, or it has left the *escape box*: the plotting box widened on every side
by ``escape_factor`` times its width. From that step on its path and losses are NaN (so a plot
simply stops), ``diverged`` is True and ``diverged_at`` holds the step (-1 for rows that did
not diverge): ``path[:diverged_at]`` is finite and ``path[diverged_at:]`` is NaN.

**Noise** (``noise=sigma``) adds :math:`\sigma\,\xi_t`, :math:`\xi_t \sim \mathcal N(0, I)`, to
every gradient, a model of minibatch noise (see :meth:`optlab.surfaces.Surface.noisy_grad`). The
noise of a call is drawn up front from ``numpy.random.default_rng(seed)`` with shape
``(steps, N, 2)``: the same seed gives the same path, rows get independent noise.

**Speed.** NumPy costs about a microsecond per call whatever the array size, which dominates on
two-element arrays. A single path with scalar hyperparameters therefore runs the rule on the two
coordinates as two scalar streams, with the surface's formulas evaluated on Python floats; a
batch runs on ``(N, 2)`` arrays. The rules are elementwise, so both do the same arithmetic and
agree bit for bit (on Rastrigin, NumPy's and :mod:`math`'s ``cos`` may differ in the last
bit). On a single path the float form is about three times faster;
``benchmarks/trajectory_speed.py`` measures both against ``torch.optim``.

**Schedules and clipping.** ``lr`` may be a schedule (:mod:`optlab.schedules`): update ``t``
(counted from 0, the rule's ``state.step``) uses ``lr(t)``, as ``torch.optim.lr_scheduler`` does
when stepped after every update. ``clip_norm=C`` scales each row's gradient (noise included) by
:math:`\min(1, C/\lVert g\rVert)` (:mod:`optlab.clipping`, as
``torch.nn.utils.clip_grad_norm_``), the norm over the row's two coordinates.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .clipping import check_clip_norm, clip_coefficient
from .rules import Rule, get_rule, resolve_hparams
from .schedules import Schedule, lr_at, split_schedule
from .surfaces import Surface, get_surface

_FMAX = sys.float_info.max


@dataclass(frozen=True, eq=False)
class Trajectory:
    """The paths of one optimizer from ``N`` starts (or ``N`` hyperparameter settings).

    Attributes
    ----------
    path : np.ndarray
        Shape ``(steps + 1, N, 2)``; ``path[0]`` is the start. NaN from ``diverged_at`` on.
    losses : np.ndarray
        Shape ``(steps + 1, N)``: the loss at each point of ``path`` (NaN where it is).
    diverged : np.ndarray
        Shape ``(N,)``, bool.
    diverged_at : np.ndarray
        Shape ``(N,)``, int: the first step whose point is NaN, -1 if the row did not diverge.
    final : np.ndarray
        Shape ``(N, 2)``: ``path[-1]`` (NaN for diverged rows).
    name : str
        The rule's name.
    hparams : dict
        The rule's resolved hyperparameters; a swept one is a 1-D array of length ``N``.
    surface : Surface
    noise : float or np.ndarray
        The gradient-noise level (a 1-D array when swept).
    seed : int
    clip_norm : float or None
        The gradient-norm threshold (``None``: no clipping).
    """

    path: np.ndarray
    losses: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    final: np.ndarray
    name: str
    hparams: dict[str, Any]
    surface: Surface
    noise: Any = 0.0
    seed: int = 0
    clip_norm: float | None = None

    @property
    def n(self) -> int:
        """The number of rows ``N``."""
        return self.path.shape[1]

    @property
    def steps(self) -> int:
        return self.path.shape[0] - 1

    @property
    def final_loss(self) -> np.ndarray:
        """The last loss of each row, shape ``(N,)`` (NaN for diverged rows)."""
        return self.losses[-1]

    def __repr__(self) -> str:
        return (
            f"Trajectory({self.name!r} on {self.surface.name}, steps={self.steps}, n={self.n}, "
            f"diverged={int(self.diverged.sum())})"
        )


# --------------------------------------------------------------------------------------------
# Hyperparameters: scalars and sweeps
# --------------------------------------------------------------------------------------------


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # torch tensor
        return value.detach().cpu().numpy()
    return value


def _as_sweep(key: str, value: Any) -> Any:
    """A Python float, or a 1-D float array for a sweep; other values pass through."""
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        return value
    value = _to_numpy(value)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return value  # resolve_hparams reports it
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{key}: a swept hyperparameter must be a non-empty 1-D array (one value per row); "
            f"got shape {np.shape(value)}"
        )
    return arr


def _split_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in hparams.items():
        if key == "betas" and not isinstance(value, str):
            value = _to_numpy(value)
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == 2:
                value = (value[:, 0], value[:, 1])  # rows of (beta1, beta2)
            try:
                pair = list(value)
            except TypeError:
                pair = None
            if pair is not None and len(pair) == 2:
                out[key] = (_as_sweep("beta1", pair[0]), _as_sweep("beta2", pair[1]))
                continue
        out[key] = _as_sweep(key, value)
    return out


def _sweep_lengths(values: Mapping[str, Any]) -> dict[str, int]:
    lengths = {}
    for key, value in values.items():
        items = value if key == "betas" and isinstance(value, tuple) else (value,)
        for v in items:
            if isinstance(v, np.ndarray):
                lengths[key] = len(v)
    return lengths


def _column(value: Any) -> Any:
    """A sweep as a column ``(N, 1)``, so that it broadcasts against params ``(N, 2)``."""
    if isinstance(value, np.ndarray):
        return value.reshape(-1, 1)
    if isinstance(value, tuple):
        return tuple(_column(v) for v in value)
    return value


# --------------------------------------------------------------------------------------------
# The two runners
# --------------------------------------------------------------------------------------------


def _run_scalar(
    rule: Rule, kw: dict[str, Any], surface: Surface, start: np.ndarray, steps: int,
    noise: np.ndarray | None, box: tuple[float, float, float, float],
    schedule: Schedule | None = None, clip_norm: float | None = None,
) -> np.ndarray:
    """One path, the two coordinates as scalar streams; stops at the first escape."""
    update, gxy = rule.update, surface.gxy
    x, y = float(start[0]), float(start[1])
    sx, sy = rule.init_state(x, **kw), rule.init_state(y, **kw)
    xs, ys = [x], [y]
    xlo, xhi, ylo, yhi = box
    run = steps if (xlo <= x <= xhi and ylo <= y <= yhi) else 0
    nx: list[float] | None = None
    ny: list[float] = []
    if noise is not None:
        nx, ny = noise[:, 0, 0].tolist(), noise[:, 0, 1].tolist()
    for t in range(run):
        gx, gy = gxy(x, y)
        if nx is not None:
            gx += nx[t]
            gy += ny[t]
        if clip_norm is not None:
            c = clip_coefficient(math.sqrt(gx * gx + gy * gy), clip_norm)
            gx, gy = gx * c, gy * c
        if schedule is not None:
            kw = {**kw, "lr": lr_at(schedule, t)}
        x, sx = update(x, gx, sx, **kw)
        y, sy = update(y, gy, sy, **kw)
        xs.append(x)
        ys.append(y)
        if not (xlo <= x <= xhi and ylo <= y <= yhi):  # also False for NaN
            break
    path = np.full((steps + 1, 1, 2), np.nan)
    n = len(xs)
    path[:n, 0, 0] = xs
    path[:n, 0, 1] = ys
    return path


def _run_batch(
    rule: Rule, kw: dict[str, Any], surface: Surface, start: np.ndarray, steps: int,
    noise: np.ndarray | None, box: tuple[float, float, float, float],
    schedule: Schedule | None = None, clip_norm: float | None = None,
) -> np.ndarray:
    """``N`` paths as one ``(N, 2)`` array; stops early once every row has escaped."""
    update, gxy = rule.update, surface.gxy
    path = np.full((steps + 1, *start.shape), np.nan)
    path[0] = x = start.copy()
    state = rule.init_state(x, **kw)
    lo = np.array([box[0], box[2]])
    hi = np.array([box[1], box[3]])
    for t in range(steps):
        gx, gy = gxy(x[:, 0], x[:, 1])
        g = np.empty_like(x)
        g[:, 0] = gx
        g[:, 1] = gy
        if noise is not None:
            g += noise[t]
        if clip_norm is not None:
            g *= clip_coefficient(np.sqrt((g * g).sum(axis=1, keepdims=True)), clip_norm)
        if schedule is not None:
            kw = {**kw, "lr": lr_at(schedule, t)}
        x, state = update(x, g, state, **kw)
        path[t + 1] = x
        if t % 32 == 31 and not np.any(np.all((x >= lo) & (x <= hi), axis=1)):
            break
    return path


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _check_memory(steps: int, n: int, noisy: bool) -> None:
    """Refuse at once a run whose arrays (path, losses, noise: float64) would not fit in half
    the machine's memory, instead of growing towards it step by step."""
    need = (steps + 1) * n * 8 * (2 + 1 + 2) + (steps * n * 2 * 8 if noisy else 0)
    if n == 1:  # the scalar runner's two lists of Python floats, before the arrays
        need += (steps + 1) * 2 * (8 + 24)
    have = _memory_bytes()
    limit = have // 2 if have else 2**40
    if need > limit:
        per_step = need / max(steps, 1)
        raise ValueError(f"steps={steps:,} with {n} path(s) would need {need / 2**30:,.1f} GiB "
                         f"(about {per_step:,.0f} bytes a step); at most {limit / 2**30:,.1f} "
                         f"GiB may be used here: give steps <= {int(limit // per_step):,}")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def trajectory(
    name: str,
    surface: str | Surface = "rosenbrock",
    x0: Any = None,
    steps: int = 200,
    *,
    noise: Any = 0.0,
    seed: int = 0,
    escape_factor: float = 10.0,
    clip_norm: float | None = None,
    **hparams: Any,
) -> Trajectory:
    """Run the first-order rule ``name`` for ``steps`` steps on ``surface``.

    Parameters
    ----------
    name : str
        One of :data:`optlab.rules.FIRST_ORDER` (``"sgd"``, ``"momentum"``, ... ``"nadamw"``).
    surface : str or Surface
        A :class:`~optlab.surfaces.Surface` or the name of one with default parameters.
    x0 : array-like, shape ``(2,)`` or ``(N, 2)``, optional
        The start point(s); ``surface.start`` by default.
    steps : int
        The number of updates; the path has ``steps + 1`` points.
    noise : float or 1-D array
        Standard deviation of the Gaussian noise added to every gradient (0: exact gradients).
    seed : int
        Seed of the noise.
    escape_factor : float
        A row diverges once it is farther than ``escape_factor`` times the plotting box's width
        outside the box (``np.inf``: only non-finite values count).
    clip_norm : float, optional
        Clip each row's gradient to this norm (global-norm clipping); ``None``: no clipping.
    **hparams
        The rule's hyperparameters (``torch.optim``'s names). Any of them, ``betas``' two
        entries included, may be a 1-D array of length ``N``: a sweep, one value per row.
        ``lr`` may also be a schedule (:mod:`optlab.schedules`), evaluated at each step.

    Returns
    -------
    Trajectory
        See :class:`Trajectory`. Raises ``ValueError`` for an unknown rule, surface or
        hyperparameter, an out-of-range value, or inconsistent shapes; never for divergence.
    """
    rule = get_rule(name)
    surf = get_surface(surface)
    if (isinstance(steps, bool) or not isinstance(steps, (int, float, np.integer, np.floating))
            or not np.isfinite(steps) or int(steps) != steps or steps < 0):
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    steps = int(steps)
    if not (escape_factor > 0):
        raise ValueError(f"escape_factor must be > 0; got {escape_factor!r}")

    start = np.asarray(surf.start if x0 is None else _to_numpy(x0), dtype=float)
    if start.ndim == 1:
        start = start[None]
    if start.ndim != 2 or start.shape[1] != 2 or start.shape[0] == 0:
        raise ValueError(f"x0 must have shape (2,) or (N, 2) with N >= 1; got {np.shape(x0)}")
    if not np.all(np.isfinite(start)):
        raise ValueError(f"x0 must be finite (a start, not a diverged point); got "
                         f"{start[~np.isfinite(start).all(axis=1)][0].tolist()}")

    clip = check_clip_norm(clip_norm)
    numeric, schedule = split_schedule(hparams)
    values = _split_hparams(numeric)
    noise_v = _as_sweep("noise", noise)
    if not isinstance(noise_v, (float, np.ndarray)):
        raise ValueError(f"noise must be a number or a 1-D array; got {noise!r}")
    if np.any(~(np.asarray(noise_v) >= 0)):
        raise ValueError(f"noise must be >= 0; got {noise!r}")
    resolved = resolve_hparams(name, **values)  # ValueError for bad ones

    lengths = _sweep_lengths(values)
    if isinstance(noise_v, np.ndarray):
        lengths["noise"] = len(noise_v)
    if start.shape[0] > 1:
        lengths["x0"] = start.shape[0]
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"sweeps and starts must have the same length N; got {detail}")
    n = next(iter(lengths.values()), 1)
    _check_memory(steps, n, bool(np.any(np.asarray(noise_v) > 0)))
    start = np.broadcast_to(start, (n, 2)).copy()

    (x_lo, x_hi), (y_lo, y_hi) = surf.bounds
    wx, wy = (x_hi - x_lo) * escape_factor, (y_hi - y_lo) * escape_factor
    box = (
        max(x_lo - wx, -_FMAX), min(x_hi + wx, _FMAX), max(y_lo - wy, -_FMAX), min(y_hi + wy, _FMAX)
    )

    noise_arr = None
    if np.any(np.asarray(noise_v) > 0):
        sigma = _column(noise_v)
        noise_arr = sigma * np.random.default_rng(seed).standard_normal((steps, n, 2))

    kw = {k: _column(v) for k, v in resolved.items()}
    with np.errstate(all="ignore"):
        path = None
        if n == 1 and not lengths.keys() - {"x0"}:
            try:
                path = _run_scalar(rule, kw, surf, start[0], steps, noise_arr, box, schedule,
                                   clip)
            except (ArithmeticError, ValueError):  # a float op that NumPy would let through
                path = None
        if path is None:
            path = _run_batch(rule, kw, surf, start, steps, noise_arr, box, schedule, clip)
        losses = surf.f(path)
        xs, ys = path[..., 0], path[..., 1]
        ok = (xs >= box[0]) & (xs <= box[1]) & (ys >= box[2]) & (ys <= box[3])
        ok &= np.isfinite(losses)
    bad = ~ok
    diverged: np.ndarray = np.asarray(bad.any(axis=0))
    diverged_at = np.where(diverged, bad.argmax(axis=0), -1)
    if diverged.any():
        dead = diverged & (np.arange(steps + 1)[:, None] >= diverged_at)
        path[dead] = np.nan
        losses[dead] = np.nan

    return Trajectory(
        path=path,
        losses=losses,
        diverged=diverged,
        diverged_at=diverged_at,
        final=path[-1].copy(),
        name=name,
        hparams={**resolved, "lr": schedule} if schedule is not None else dict(resolved),
        surface=surf,
        noise=noise_v,
        seed=seed,
        clip_norm=clip,
    )


def _configs(spec: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``[(label, rule name, kwargs)]`` from the forms :func:`trajectories` accepts."""
    if isinstance(spec, str):
        spec = [spec]
    items: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(spec, Mapping):
        for label, cfg in spec.items():
            cfg = dict(cfg or {})
            items.append((str(label), cfg.pop("name", label), cfg))
    elif isinstance(spec, Iterable):
        for entry in spec:
            if isinstance(entry, str):
                items.append((entry, entry, {}))
            elif isinstance(entry, Mapping):
                cfg = dict(entry)
                if "name" not in cfg:
                    raise ValueError(f"trajectories: a config dict needs a 'name'; got {entry!r}")
                rule = cfg.pop("name")
                items.append((str(cfg.pop("label", rule)), rule, cfg))
            elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
                cfg = dict(entry[1] or {})
                items.append((str(cfg.pop("label", entry[0])), entry[0], cfg))
            else:
                raise ValueError(
                    "trajectories: each entry must be a name, (name, hparams) or a dict with "
                    f"'name'; got {entry!r}"
                )
    else:
        raise ValueError(f"trajectories: cannot read optimizer configs from {spec!r}")
    labels = [label for label, _, _ in items]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise ValueError(
            f"trajectories: label {dupes[0]!r} appears twice; give the configs a 'label'"
        )
    return items


def trajectories(
    names_or_configs: Any,
    surface: str | Surface = "rosenbrock",
    x0: Any = None,
    steps: int = 200,
    *,
    noise: Any = 0.0,
    seed: int = 0,
    escape_factor: float = 10.0,
    clip_norm: float | None = None,
) -> dict[str, Trajectory]:
    """Several optimizers from the same start(s): ``{label: Trajectory}``, in the given order.

    ``names_or_configs`` is any of::

        ["sgd", "adam"]                                     # default hyperparameters
        {"sgd": {"lr": 1e-3}, "adam": {"lr": 0.05}}         # label -> hyperparameters
        {"adam, lr=0.1": {"name": "adam", "lr": 0.1}}       # a label that is not a rule name
        [("sgd", {"lr": 1e-3}), {"name": "adam", "lr": 0.05, "label": "Adam"}]

    A config may also set ``noise``, ``seed``, ``escape_factor`` or ``clip_norm`` for itself,
    and its ``lr`` may be a schedule (:mod:`optlab.schedules`).
    """
    out: dict[str, Trajectory] = {}
    for label, rule, cfg in _configs(names_or_configs):
        kwargs = {"noise": noise, "seed": seed, "escape_factor": escape_factor,
                  "clip_norm": clip_norm, **cfg}
        out[label] = trajectory(rule, surface, x0, steps, **kwargs)
    return out


__all__ = ["Trajectory", "trajectories", "trajectory"]
