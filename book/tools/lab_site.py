"""A tiny static site with "Run live" labs, for the browser test and the benchmark.

The full book takes minutes to build; this writes, in a second or two, pages made of what a
chapter's ``optlab.widgets.explore(...)`` cell outputs in the book (the frame slider and the lab
placeholder), completed by the book's own extension functions (``optlab_assets.fill_labs``,
``write_package_bundle``), with the vendored Pyodide and the lab's script and CSS under
``_static/`` as in ``_build/html``::

    python book/tools/lab_site.py OUTDIR      # then serve OUTDIR and open chapters/lab-0.html

Raises ``FileNotFoundError`` (one line, with the fix) when Pyodide is not vendored.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import optlab_assets  # noqa: E402

#: The labs of the tiny site: ``explore`` keyword arguments, one page each (chapters 7 and 3).
PAGES: tuple[Mapping[str, Any], ...] = (
    {"surface": "rosenbrock", "optimizers": ("momentum", "rmsprop", "adam"), "sweep": "lr",
     "values": [0.003, 0.01, 0.03], "lr": 0.01, "steps": 300},
    {"surface": "quadratic", "optimizers": ("sgd", "momentum"), "sweep": "beta1",
     "values": [0.0, 0.5, 0.9], "lr": 0.015, "steps": 300},
)

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>optlab lab {index}</title>
<link rel="stylesheet" href="../_static/optlab-lab.css">
<style>body {{ font-family: sans-serif; margin: 0 auto; max-width: 720px; padding: 0 8px; }}
</style></head>
<body><h1>Lab {index}</h1>
<div class="cell_output">{body}</div>
<p><a href="lab-{other}.html">the other lab</a></p>
<script src="../_static/optlab-lab.js"></script>
</body></html>
"""


def build(outdir: str | Path, pages: Sequence[Mapping[str, Any]] = PAGES,
          pyodide: str | Path = ROOT / "_vendor" / "pyodide") -> list[Path]:
    """Write the site into ``outdir``; returns the pages' paths."""
    import optlab.widgets

    pyodide = Path(pyodide)
    missing = [f for f in optlab_assets.PYODIDE_FILES if not (pyodide / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{pyodide}/{missing[0]} missing: run `make vendor` "
                                f"(bash book/tools/vendor_assets.sh _vendor)")
    out = Path(outdir)
    static = out / "_static"
    (out / "chapters").mkdir(parents=True, exist_ok=True)
    static.mkdir(parents=True, exist_ok=True)
    if not (static / "pyodide").exists():
        shutil.copytree(pyodide, static / "pyodide")
    for name in ("optlab-lab.js", "optlab-lab-worker.js", "optlab-lab.css"):
        shutil.copy2(optlab_assets.ASSETS / name, static / name)
    optlab_assets.write_package_bundle(static)
    mb = optlab_assets.pyodide_megabytes(pyodide)
    paths = []
    for i, kwargs in enumerate(pages):
        cell = optlab.widgets.explore(mode="book", **kwargs).data
        body = optlab_assets.fill_labs(cell, static, "../_static/", mb)
        path = out / "chapters" / f"lab-{i}.html"
        path.write_text(PAGE.format(index=i, other=(i + 1) % len(pages), body=body),
                        encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build(sys.argv[1] if len(sys.argv) > 1 else "_build/lab-site"):
        print(p)
