"""Small helpers for the chapters: show the package's own code next to its equation."""

from __future__ import annotations

import inspect
import math
import os
import textwrap
from typing import Any


def build_mode() -> bool:
    """True while the book is being built (``OPTLAB_BOOK_BUILD`` set and not ``0``): the
    chapters' kernels then draw frame sliders instead of live widgets and glue their numbers."""
    return os.environ.get("OPTLAB_BOOK_BUILD", "").strip() not in ("", "0")


def source_of(obj: Any, *, docstring: bool = False) -> str:
    """The source code of a function or class, optionally without its docstring."""
    src = textwrap.dedent(inspect.getsource(obj))
    if docstring:
        return src
    doc = inspect.getdoc(obj)
    if doc:
        # drop the first triple-quoted block (the docstring) and the line it leaves empty
        for quote in ('r"""', '"""', "r'''", "'''"):
            start = src.find(quote)
            if start != -1:
                end = src.find(quote[-3:], start + len(quote))
                line_end = src.find("\n", end + 3)
                src = src[:start].rstrip(" ") + src[line_end + 1:].lstrip("\n")
                break
    return src


def show_source(obj: Any, *, docstring: bool = False) -> Any:
    """Display ``obj``'s source as a highlighted code block (Markdown), in a notebook and in the
    static book alike. This is how a chapter shows "the code that is the equation" without
    copying it: the page always shows the code the package runs."""
    from IPython.display import Markdown

    return Markdown(f"```python\n{source_of(obj, docstring=docstring).rstrip()}\n```")


# --------------------------------------------------------------------------------------------
# glue: myst_nb's glue, plus the glued numbers made visible where MyST roles are not rendered
# --------------------------------------------------------------------------------------------
#
# The book quotes measured numbers in its prose with ``{glue:text}`name:.3f` ``; Jupyter Book
# replaces the role by the number, JupyterLab shows the role's source. So, outside the book build,
# every cell that glues values ends with one line that names them with their values
# ("measured: ch3_rate = 0.9051 · ch3_steps = 41"): the numbers the prose below quotes, next to
# it. The line is shown once per cell, after the cell's own output (IPython's post_run_cell).

_pending: list[tuple[str, Any]] = []  # (name, value) glued by the cell that is running
_hooked_shells: set[int] = set()  # id() of the IPython shells whose cell events are hooked


def glue(name: str, variable: Any, display: bool = True) -> None:
    """``myst_nb.glue`` with the same signature and the same stored output (so every
    ``{glue}``/``{glue:text}`` role and its format spec works as before), and, when not
    building the book, a readable "measured: name = value" line under the cell for values glued
    with ``display=False`` (with ``display=True`` myst_nb already shows the value)."""
    from myst_nb import glue as myst_glue

    myst_glue(name, variable, display)
    if display or build_mode():
        return
    shell = _ipython_shell()
    if shell is None:
        return
    if id(shell) not in _hooked_shells:
        shell.events.register("pre_run_cell", _forget_pending)
        shell.events.register("post_run_cell", _show_pending)
        _hooked_shells.add(id(shell))
    _pending.append((name, variable))


def format_glued(value: Any) -> str:
    """A glued value as a reader should see it: numbers with 4 significant digits (thousands
    separated when large), strings as they are, anything else as its short repr."""
    import numbers

    if isinstance(value, bool) or type(value).__name__ in ("bool", "bool_"):  # and numpy's
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):  # nan, inf, -inf
            return str(v)
        if v != 0 and 1e4 <= abs(v) < 1e15:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def measured_line(pairs: list[tuple[str, Any]]) -> dict[str, str]:
    """The display bundle of one cell's glued values: plain text and Markdown."""
    plain = " · ".join(f"{name} = {format_glued(value)}" for name, value in pairs)
    md = " · ".join(f"`{name}` = {_escape_markdown(format_glued(value))}" for name, value in pairs)
    return {"text/plain": f"measured: {plain}", "text/markdown": f"**measured:** {md}"}


def _escape_markdown(text: str) -> str:
    return "".join("\\" + ch if ch in "\\`*_[]<>|$#~" else ch for ch in text)


def _ipython_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def _forget_pending(*_: Any) -> None:
    _pending.clear()


def _show_pending(*_: Any) -> None:
    if not _pending:
        return
    from IPython.display import display

    bundle = measured_line(list(_pending))
    _pending.clear()
    display(bundle, raw=True)
