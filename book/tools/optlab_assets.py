"""Sphinx extension: serve MathJax and the ipywidgets scripts from the book, or else from CDNs.

``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` at the copies that
``book/tools/vendor_assets.sh`` puts in ``_vendor/`` (on ``html_static_path``, so they end up in
``_build/html/_static/``): the pages then make no request outside the book. Where a copy is
missing (npm was unreachable; ``_vendor/VENDOR_STATUS`` says ``cdn-fallback``) this extension
swaps in the public CDN URL for that part, so the build still succeeds and the pages still work
with a network. It logs what it did at INFO level (a warning would fail ``-W`` builds; the
vendor script already printed one).
"""

from __future__ import annotations

from pathlib import Path

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


def setup(app: Sphinx) -> dict:
    # priority < 500: run before myst-nb and sphinx.ext.mathjax read these values
    app.connect("config-inited", _choose_assets, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
