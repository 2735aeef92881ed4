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

**CSS and search.** ``book/tools/assets/optlab.css`` (outputs and code wrap, images fit the
column) and ``optlab-search.js`` (search snippets show math as text, not TeX source).
"""

from __future__ import annotations

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


def setup(app: Sphinx) -> dict:
    # priority < 500: run before myst-nb and sphinx.ext.mathjax read these values
    app.connect("config-inited", _choose_assets, priority=100)
    app.connect("config-inited", _theme_options, priority=100)
    app.add_css_file("optlab.css", priority=900)  # after the themes' CSS
    app.add_js_file("optlab-search.js", priority=900)
    app.connect("html-page-context", _page_assets, priority=900)
    app.connect("doctree-resolved", _drop_thebe_config, priority=900)  # after sphinx-thebe's
    return {"parallel_read_safe": True, "parallel_write_safe": True}
