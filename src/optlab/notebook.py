"""Small helpers for the chapters: show the package's own code next to its equation."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any


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
