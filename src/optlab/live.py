r"""The book's "Run live" labs: optimizer paths computed in the reader's browser.

The static book runs this module, with :mod:`optlab.rules` and :mod:`optlab.surfaces`, in
Pyodide (CPython compiled to WebAssembly, served from the book's own ``_static``; see
``book/tools/optlab_assets.py``). Only pure Python runs there (no numpy), so everything here
works on plain floats: a path is the rule applied to the two coordinates as two scalar
streams, exactly as :func:`optlab.trajectory` does for a single path, and both stop at the same
point when a run leaves the escape box. A test checks that the two agree to 1e-12.

The page's JavaScript (``book/tools/assets/optlab-lab.js``) calls :func:`run_json` with the
lab's controls and draws the paths it returns over a contour image rendered at build time.

**Your own rule.** A lab's editor holds a rule's source (as ``show_source`` prints it). The
reader's code runs in a copy of :mod:`optlab.rules`' namespace (:func:`compile_rule`): a
function it defines replaces the one of that name, and every rule function of the copy calls
the replaced one. So an edited ``adam_step`` changes ``adam_update`` too, and an edited
``adam_update`` may call the module's helpers (``_sqrt``, ``AdamState`` ...). Any error in the
reader's code becomes one line (:func:`error_line`), never a traceback on the page.
"""

from __future__ import annotations

import json
import math
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from . import rules as rules_module
from .surfaces import Surface, get_surface

Point = tuple[float, float]
#: The file name reader code is compiled under (it names the lines in error messages).
READER_FILE = "<your rule>"
#: The most steps a lab runs per rule (the reader's browser computes them).
MAX_LAB_STEPS = 20_000


class LiveRule(NamedTuple):
    """What a path needs of a rule: a name, its state's init, its update, its defaults."""

    name: str
    init_state: Callable[..., Any]
    update: Callable[..., Any]
    defaults: Mapping[str, Any]


def surface_of(spec: str | Mapping[str, Any] | Surface) -> Surface:
    """A surface from a name, a Surface, or ``{"name": ..., "params": {...}}`` (as a lab's
    JSON names it; the quadratic's matrix ``A`` is derived, so it is ignored)."""
    if isinstance(spec, (str, Surface)):
        return get_surface(spec)
    params = {k: v for k, v in dict(spec.get("params") or {}).items() if k != "A"}
    return get_surface(str(spec["name"]), **params)


def surface_spec(surface: str | Surface) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}``: what :func:`surface_of` rebuilds ``surface`` from."""
    surf = get_surface(surface)
    params = {k: float(v) for k, v in surf.params.items() if k != "A"}
    return {"name": surf.name, "params": params}


def package_rule(name: str) -> LiveRule:
    """The package's rule ``name`` (``ValueError`` listing the known names otherwise)."""
    rule = rules_module.get_rule(name)
    return LiveRule(rule.name, rule.init_state, rule.update, rule.defaults)


def compile_rule(source: str, base: str) -> LiveRule:
    """Rule ``base`` with the functions (and classes) that ``source`` defines swapped in.

    ``source`` runs in a copy of :mod:`optlab.rules`' namespace whose functions are rebound to
    that copy, so they call what ``source`` redefines. The rule's update and init are then
    looked up by their names in the copy: edit ``adam_update`` or ``adam_step`` (or define
    ``adam_init`` for a new state) and ``adam`` runs the edited code. Raises what compiling or
    running ``source`` raises (``SyntaxError``, ``NameError`` ...); see :func:`error_line`.
    """
    rule = rules_module.get_rule(base)
    namespace: dict[str, Any] = dict(vars(rules_module))
    namespace["__name__"] = "optlab.rules_edited"
    namespace["RULES"] = dict(rules_module.RULES)  # what the code registers stays in the copy
    for key, obj in list(namespace.items()):
        if isinstance(obj, types.FunctionType) and obj.__module__ == rules_module.__name__:
            copy = types.FunctionType(obj.__code__, namespace, obj.__name__, obj.__defaults__,
                                      obj.__closure__)
            copy.__kwdefaults__ = obj.__kwdefaults__
            namespace[key] = copy
    exec(compile(source, READER_FILE, "exec"), namespace)  # noqa: S102 - the reader's own code
    update: Callable[..., Any] = _function(namespace, rule.update.__name__)
    init: Callable[..., Any] = _function(namespace, rule.init.__name__)
    init_keys = tuple(getattr(rule, "init_keys", ()))

    def init_state(params: Any, **hparams: Any) -> Any:
        return init(params, **{k: hparams[k] for k in init_keys if k in hparams})

    return LiveRule(f"{base} (edited)", init_state, update, rule.defaults)


def _function(namespace: Mapping[str, Any], name: str) -> Callable[..., Any]:
    fn = namespace.get(name)
    if not callable(fn):
        raise TypeError(f"{name} must stay a function (your code replaced it)")
    return fn


def error_line(exc: BaseException) -> str:
    """One readable line for an error raised by reader code (or by a bad setting): its type,
    the line of the reader's code it came from (if any), and its message."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == READER_FILE:
        line, message = exc.lineno, exc.msg
    else:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == READER_FILE:
                line = tb.tb_lineno
            tb = tb.tb_next
    where = f" (your rule, line {line})" if line else ""
    return f"{type(exc).__name__}{where}: {message}".rstrip(": ")


def _hparams(rule: LiveRule, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's defaults overridden by ``hparams`` (lists as tuples, e.g. betas), with the
    package's validation for package rules."""
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
    if rule.name in rules_module.RULES:
        return dict(rules_module.resolve_hparams(rule.name, **given))
    unknown = sorted(set(given) - set(rule.defaults))
    if unknown:
        raise ValueError(f"unknown hyperparameter {unknown[0]!r}; the rule takes "
                         f"{', '.join(rule.defaults)}")
    return {**rule.defaults, **given}


def escape_box(surface: Surface, escape_factor: float = 10.0) -> tuple[float, ...]:
    """``(x_lo, x_hi, y_lo, y_hi)``: the plotting box widened by ``escape_factor`` widths on
    every side; a path that leaves it has diverged (as in :func:`optlab.trajectory`)."""
    (x_lo, x_hi), (y_lo, y_hi) = surface.bounds
    wx, wy = (x_hi - x_lo) * escape_factor, (y_hi - y_lo) * escape_factor
    big = sys.float_info.max
    return (max(x_lo - wx, -big), min(x_hi + wx, big), max(y_lo - wy, -big),
            min(y_hi + wy, big))


def _fine(surface: Surface, box: Sequence[float], x: float, y: float) -> bool:
    """Whether ``(x, y)`` is inside the escape box with a finite loss."""
    if not (box[0] <= x <= box[1] and box[2] <= y <= box[3]):  # also False for NaN
        return False
    try:
        return math.isfinite(surface.fxy(x, y))
    except (ArithmeticError, ValueError):
        return False


def run_path(rule: LiveRule, surface: Surface, start: Sequence[float], steps: int,
             hparams: Mapping[str, Any] | None = None, escape_factor: float = 10.0
             ) -> list[Point]:
    """The path of ``rule`` from ``start`` for ``steps`` updates: ``[(w1, w2), ...]``.

    The start and one point per update, up to the first point that leaves the escape box or
    has a non-finite loss (excluded): :func:`optlab.trajectory`'s finite ``path[:, 0]``.
    """
    kw = _hparams(rule, hparams or {})
    box = escape_box(surface, escape_factor)
    update, gxy = rule.update, surface.gxy
    x, y = float(start[0]), float(start[1])
    if not _fine(surface, box, x, y):
        return []
    sx, sy = rule.init_state(x, **kw), rule.init_state(y, **kw)
    path = [(x, y)]
    for _ in range(steps):
        try:
            gx, gy = gxy(x, y)
            x, sx = update(x, gx, sx, **kw)
            y, sy = update(y, gy, sy, **kw)
            x, y = float(x), float(y)
        except (ArithmeticError, ValueError):  # a float op that overflowed: NumPy's inf
            break
        if not _fine(surface, box, x, y):
            break
        path.append((x, y))
    return path


class RuleSetting(NamedTuple):
    """One rule of a lab: a package rule name, its hyperparameters, optionally edited code."""

    rule: str
    hparams: Mapping[str, Any] = {}
    source: str | None = None


def _setting(entry: Any) -> RuleSetting:
    if isinstance(entry, str):
        return RuleSetting(entry)
    if isinstance(entry, Mapping):
        return RuleSetting(str(entry["rule"]), dict(entry.get("hparams") or {}),
                           entry.get("source"))
    name, hparams = entry
    return RuleSetting(str(name), dict(hparams or {}))


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_LAB_STEPS:
        raise ValueError(f"steps must be a whole number in [0, {MAX_LAB_STEPS}]; got {steps!r}")
    return steps


def run_paths(surface: str | Mapping[str, Any] | Surface, rules_settings: Sequence[Any],
              start: Sequence[float], steps: int) -> list[list[Point]]:
    """One path per rule setting (``"adam"``, ``("adam", {"lr": 0.05})`` or
    ``{"rule": "adam", "hparams": {...}, "source": "..."}``), all from ``start``.

    Equal to :func:`optlab.trajectory` (``path[:, 0]`` up to divergence) for package rules.
    Raises what a bad setting or the reader's code raises; :func:`run_json` catches it.
    """
    surf = surface_of(surface)
    n = _check_steps(steps)
    out = []
    for entry in rules_settings:
        s = _setting(entry)
        rule = compile_rule(s.source, s.rule) if s.source is not None else package_rule(s.rule)
        out.append(run_path(rule, surf, start, n, s.hparams))
    return out


def run_json(request: str) -> str:
    """The browser's entry point: a JSON request in, a JSON answer out, never an exception.

    Request: ``{"surface": {"name", "params"}, "rules": [{"rule", "hparams", "source"?}],
    "start": [w1, w2], "steps": n}``. Answer: ``{"paths": [[[w1, w2], ...] per rule],
    "errors": [null or one line per rule]}``: a rule whose settings or code fail gets an empty
    path and its error line; the others still run.
    """
    try:
        req = json.loads(request)
        surf = surface_of(req["surface"])
        start = [float(v) for v in req["start"]]
        steps = _check_steps(req["steps"])
        entries = list(req["rules"])
    except Exception as exc:  # noqa: BLE001 - the page shows one line, whatever went wrong
        return json.dumps({"paths": [], "errors": [error_line(exc)]})
    paths: list[list[Point]] = []
    errors: list[str | None] = []
    for entry in entries:
        try:
            paths.append(run_paths(surf, [entry], start, steps)[0])
            errors.append(None)
        except Exception as exc:  # noqa: BLE001 - the reader's code may raise anything
            paths.append([])
            errors.append(error_line(exc))
    return json.dumps({"paths": paths, "errors": errors})


__all__ = [
    "LiveRule",
    "MAX_LAB_STEPS",
    "RuleSetting",
    "compile_rule",
    "error_line",
    "escape_box",
    "package_rule",
    "run_json",
    "run_path",
    "run_paths",
    "surface_of",
    "surface_spec",
]
