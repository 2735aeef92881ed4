"""Sphinx extension: the book's own assets and theme fixes.

**Offline assets.** Serve MathJax and the ipywidgets scripts from the book, or else from CDNs.

``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` at the copies that
``book/tools/vendor_assets.sh`` puts in ``_vendor/`` (on ``html_static_path``, so they end up in
``_build/html/_static/``): the pages then make no request outside the book. Where a copy is
missing (npm was unreachable; ``_vendor/VENDOR_STATUS`` says ``cdn-fallback``) this extension
swaps in the public CDN URL for that part, so the build still succeeds and the pages still work
with a network. It logs what it did at INFO level (a warning would fail ``-W`` builds; the
vendor script already printed one).

**Navigation on phones.** pydata-sphinx-theme 0.17 sets ``navbar_persistent`` to
``["search-button-field"]`` in Python whenever the *user's* ``html_theme_options`` lack the key,
overriding sphinx-book-theme's ``navbar_persistent =`` (empty) in its theme.conf. The theme then
renders pydata's own top header (``#pst-header``, hidden by sphinx-book-theme) with its own
``.primary-toggle`` / ``.secondary-toggle`` buttons *before* the book theme's buttons. Both
themes' scripts bind the toggles with ``document.querySelector(".primary-toggle")``, i.e. to the
hidden duplicate, so the visible buttons did nothing (no table of contents on a phone). Setting
``navbar_persistent: []`` removes that header; search stays in the sidebar and the article
header. The colour mode is set too (``html_context.default_mode``: when empty, the theme logs
"Got invalid theme mode" on every page).

**No Thebe.** Jupyter Book 1 always loads sphinx-thebe, whose inline config ``<script>const
THEBE_JS_URL = ...</script>`` Sphinx 7 writes twice (an inline script has no file name to
de-duplicate by): "Identifier 'THEBE_JS_URL' has already been declared" on every page. The book
has no live kernel (``launch_buttons.thebe: false``), so Thebe's scripts, CSS and per-page
config are dropped from every page, and inline scripts written twice are written once.

**Live labs.** ``optlab.widgets.explore`` puts a hidden placeholder
``<div class="optlab-lab" hidden data-lab="{json}">`` under each chapter's frame slider. On each
page that has one, this extension renders the surface's contour (matplotlib, at build time:
``optlab.landscape.contour_png``, exactly the plotting box) into ``_static/optlab-lab/``, adds its
URL and size to the JSON, and adds ``optlab-lab.js`` / ``optlab-lab.css`` to that page only. At
the end of the build it writes ``_static/optlab-lab/optlab-py.json``: the package's own source
files that ``optlab.live`` imports (found from their ``import`` statements; numpy-free), which
the page loads into Pyodide (``_vendor/pyodide``, from ``vendor_assets.sh``) when the reader
presses "Run live". Without a vendored Pyodide the placeholders are removed (pages keep their
frame sliders) and the build says so at INFO level; a CDN is never used for Pyodide.

**CSS and search.** ``book/tools/assets/optlab.css`` (outputs and code wrap, images fit the
column), ``optlab-search.js`` (search snippets show math as text, not TeX source) and
``optlab-figures.js`` (on a phone a figure of panels side by side keeps a readable width and
scrolls inside its box).
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-mml-chtml.js"
WIDGETS_CDN = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js": {
        "integrity": "sha256-Ae2Vz/4ePdIu6ZyI/5ZGsYnb+m0JlOmKPjt6XZ9JJkA=",
        "crossorigin": "anonymous",
    },
    "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed-amd.js": {
        "data-jupyter-widgets-cdn": "https://cdn.jsdelivr.net/npm/",
        "crossorigin": "anonymous",
    },
}


def _static_file(app: Sphinx, config: Config, rel: str) -> bool:
    """Whether ``rel`` (a path under ``_static/``) exists in one of the html_static_path dirs."""
    if "://" in rel:
        return True  # already a URL: nothing to check
    return any((Path(app.srcdir) / d / rel).is_file() for d in config.html_static_path)


def _choose_assets(app: Sphinx, config: Config) -> None:
    # Drop static dirs that do not exist (Sphinx would warn, and -W turns that into an error).
    config.html_static_path = [
        d for d in config.html_static_path if (Path(app.srcdir) / d).is_dir()
    ]
    if config.mathjax_path and not _static_file(app, config, config.mathjax_path):
        logger.info("optlab_assets: %s not vendored; MathJax from %s", config.mathjax_path,
                    MATHJAX_CDN)
        config.mathjax_path = MATHJAX_CDN
    widgets_js = dict(config.nb_ipywidgets_js or {})
    missing = [p for p in widgets_js if not _static_file(app, config, p)]
    if missing:
        logger.info("optlab_assets: %s not vendored; ipywidgets scripts from CDNs",
                    ", ".join(missing))
        config.nb_ipywidgets_js = WIDGETS_CDN


ASSETS = Path(__file__).resolve().parent / "assets"
THEME_OPTIONS = {"navbar_persistent": []}


def _theme_options(app: Sphinx, config: Config) -> None:
    """Fill in the theme options above unless _config.yml set them (see the module docstring)."""
    options = dict(config.html_theme_options or {})
    for key, value in THEME_OPTIONS.items():
        options.setdefault(key, value)
    config.html_theme_options = options
    config.html_static_path = [*config.html_static_path, str(ASSETS)]  # optlab.css, *.js
    # pydata-sphinx-theme reads the colour mode from the template context; empty, its script
    # logs "Got invalid theme mode" on every page. Light: the figures are drawn on white.
    config.html_context = {"default_mode": "light", **(config.html_context or {})}


def _is_thebe(asset: Any) -> bool:
    name = getattr(asset, "filename", None) or str(asset)
    body = (getattr(asset, "attributes", None) or {}).get("body", "")
    return "thebe" in (name or "") or "THEBE_JS_URL" in body


def _page_assets(app: Sphinx, pagename: str, templatename: str, context: dict,
                 doctree: Any) -> None:
    """Drop Thebe's scripts and CSS; write each inline script once (module docstring)."""
    seen_bodies: set[str] = set()
    scripts = []
    for js in context.get("script_files", []):
        body = (getattr(js, "attributes", None) or {}).get("body")
        if _is_thebe(js) or (body and body in seen_bodies):
            continue
        if body:
            seen_bodies.add(body)
        scripts.append(js)
    context["script_files"] = scripts
    context["css_files"] = [css for css in context.get("css_files", []) if not _is_thebe(css)]


def _drop_thebe_config(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Remove the inert ``<script type="text/x-thebe-config">`` sphinx-thebe adds to each page."""
    for node in list(doctree.findall(nodes.raw)):
        if "text/x-thebe-config" in node.astext():
            node.parent.remove(node)


# --- live labs ----------------------------------------------------------------------------------

PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json")
LAB_MARKER = re.compile(r'<div class="optlab-lab" hidden data-lab="([^"]*)"></div>')
LAB_DIR = "optlab-lab"
#: The browser's ``optlab/__init__.py``: the package's own imports numpy-backed modules.
BROWSER_INIT = '"""optlab in the reader\'s browser: the modules optlab.live imports."""\n'


def _pyodide_dir(app: Sphinx) -> Path | None:
    """The vendored Pyodide core (``<static dir>/pyodide``), or None if a file is missing."""
    for d in app.config.html_static_path:
        folder = Path(app.srcdir) / d / "pyodide"
        if all((folder / f).is_file() for f in PYODIDE_FILES):
            return folder
    return None


def package_files(entry: str = "live") -> dict[str, str]:
    """``{"optlab/<module>.py": source}``: module ``optlab.<entry>`` and every optlab module it
    imports at module level, transitively (what the browser needs to import it), plus
    :data:`BROWSER_INIT`. Read from the optlab package this build imports."""
    import optlab

    root = Path(optlab.__file__).resolve().parent
    todo, seen = [entry], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.parse((root / f"{name}.py").read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                mods = [node.module] if node.module else [a.name for a in node.names]
                heads = [m.split(".")[0] for m in mods]
                todo += [h for h in heads if (root / f"{h}.py").is_file()]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optlab."):
                todo.append(node.module.split(".")[1])
    files = {f"optlab/{n}.py": (root / f"{n}.py").read_text(encoding="utf-8")
             for n in sorted(seen)}
    return {"optlab/__init__.py": BROWSER_INIT, **files}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


_CONTOURS: dict[tuple[str, str], tuple[int, int]] = {}  # (static dir, file) -> (w, h)


def write_contour(surface: dict, static_dir: Path) -> tuple[str, int, int]:
    """``(file name, width, height)`` of the surface's contour image, written once per surface
    into ``static_dir/optlab-lab/`` (the file name is a hash of the surface's spec)."""
    from optlab.landscape import contour_png
    from optlab.live import surface_of

    key = hashlib.sha1(json.dumps(surface, sort_keys=True).encode()).hexdigest()[:12]
    name = f"contour-{key}.png"
    path = Path(static_dir) / LAB_DIR / name
    if (str(static_dir), name) not in _CONTOURS or not path.is_file():
        png, width, height = contour_png(surface_of(surface))
        _write_atomic(path, png)
        _CONTOURS[(str(static_dir), name)] = (width, height)
    width, height = _CONTOURS[(str(static_dir), name)]
    return name, width, height


def fill_labs(body: str, static_dir: Path, static_url: str, download_mb: float) -> str:
    """``body`` with each lab placeholder completed: the contour image (written into
    ``static_dir``, linked as ``static_url + "optlab-lab/..."``), its size, the download size."""

    def fill(match: re.Match) -> str:
        config = json.loads(html.unescape(match.group(1)))
        name, width, height = write_contour(config["surface"], static_dir)
        config.update(image=f"{static_url}{LAB_DIR}/{name}", width=width, height=height,
                      downloadMB=f"{download_mb:.0f}")
        return (f'<div class="optlab-lab" hidden data-lab="{html.escape(json.dumps(config))}">'
                f"</div>")

    return LAB_MARKER.sub(fill, body)


def pyodide_megabytes(pyodide: Path) -> float:
    """What a reader downloads for Pyodide's core, in MB."""
    return sum((pyodide / f).stat().st_size for f in PYODIDE_FILES) / 1e6


def write_package_bundle(static_dir: Path) -> Path:
    """``static_dir/optlab-lab/optlab-py.json``: the package files the labs load into Pyodide."""
    path = Path(static_dir) / LAB_DIR / "optlab-py.json"
    _write_atomic(path, json.dumps({"files": package_files("live")}).encode())
    return path


def _labs(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Fill in (or, without Pyodide, remove) the lab placeholders of a page."""
    body = context.get("body") or ""
    if "optlab-lab" not in body or not LAB_MARKER.search(body):
        return
    pyodide = _pyodide_dir(app)
    if pyodide is None:
        logger.info("optlab_assets: %s: no vendored Pyodide (_vendor/pyodide); the live lab "
                    "is left out, the frame slider stays (fix: make vendor)", pagename)
        context["body"] = LAB_MARKER.sub("", body)
        return
    static_url = context["pathto"]("_static/", 1)
    context["body"] = fill_labs(body, Path(app.outdir) / "_static", static_url,
                                pyodide_megabytes(pyodide))
    app.add_js_file("optlab-lab.js", priority=900)  # this page only (called in its context)
    app.add_css_file("optlab-lab.css", priority=900)


def _write_package_bundle(app: Sphinx, exception: Exception | None) -> None:
    """``_static/optlab-lab/optlab-py.json``: the package files the labs load into Pyodide."""
    if exception is not None or app.builder.format != "html" or _pyodide_dir(app) is None:
        return
    write_package_bundle(Path(app.outdir) / "_static")


def setup(app: Sphinx) -> dict:
    # priority < 500: run before myst-nb and sphinx.ext.mathjax read these values
    app.connect("config-inited", _choose_assets, priority=100)
    app.connect("config-inited", _theme_options, priority=100)
    app.add_css_file("optlab.css", priority=900)  # after the themes' CSS
    app.add_js_file("optlab-search.js", priority=900)
    app.add_js_file("optlab-figures.js", priority=900)  # wide figures scroll on a phone
    app.connect("html-page-context", _labs, priority=800)  # before _page_assets reads scripts
    app.connect("html-page-context", _page_assets, priority=900)
    app.connect("build-finished", _write_package_bundle)
    app.connect("doctree-resolved", _drop_thebe_config, priority=900)  # after sphinx-thebe's
    return {"parallel_read_safe": True, "parallel_write_safe": True}
