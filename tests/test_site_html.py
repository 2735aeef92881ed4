"""The built book's HTML, without a browser (the browser test needs Chromium; this does not).

What book/tools/optlab_assets.py promises, page by page:

* one sidebar toggle of each kind: the themes' scripts bind ``document.querySelector(
  ".primary-toggle")``, so a hidden duplicate before the visible button leaves the table of
  contents unreachable on a phone (pydata-sphinx-theme 0.17 + sphinx-book-theme 1.3);
* no Thebe (``THEBE_JS_URL`` was written twice: a JavaScript error on every page) and no inline
  script written twice;
* the book's CSS and search script are linked, and a favicon (no ``/favicon.ico`` 404).

Skipped, with the reason, when the book is not built (``make book``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("OPTLAB_SITE_DIR", ROOT / "_build" / "html"))
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _pages() -> list[Path]:
    pages = [HTML / "book" / "intro.html", *sorted((HTML / "chapters").glob("*.html"))]
    return [p for p in pages if p.is_file()]


pytestmark = pytest.mark.skipif(
    not (HTML / "book" / "intro.html").is_file(),
    reason=f"the book is not built ({HTML}/book/intro.html missing): run `make book`",
)


@pytest.mark.parametrize("page", _pages() or [HTML / "book" / "intro.html"], ids=lambda p: p.stem)
def test_page_html(page):
    html = page.read_text(encoding="utf-8")
    for toggle in ("primary-toggle", "secondary-toggle"):
        n = len(re.findall(rf'<button class="[^"]*\b{toggle}\b', html))
        assert n <= 1, f"{page.name}: {n} buttons with class {toggle} (a hidden duplicate)"
    assert 'class="sidebar-toggle primary-toggle' in html, f"{page.name}: no sidebar toggle"
    assert "THEBE_JS_URL" not in html and "sphinx-thebe" not in html, f"{page.name}: Thebe"
    twice = [b[:60] for b, n in Counter(INLINE_SCRIPT.findall(html)).items() if n > 1]
    assert not twice, f"{page.name}: inline scripts written twice: {twice}"
    for asset in ("_static/optlab.css", "_static/optlab-search.js", "_static/favicon.svg"):
        assert asset in html, f"{page.name}: {asset} not linked"
        assert (HTML / asset).is_file(), f"{asset} missing from the build"


def test_mnist_chapter_shows_real_mnist_or_one_line():
    """Chapter 12's live cell: with MNIST where the package finds it (as `make book` does), it
    trains on MNIST and says from where; without it, one line and no accuracies from noise."""
    page = HTML / "chapters" / "12-mnist.html"
    if not page.is_file():
        pytest.skip(f"{page} not built")
    html = page.read_text(encoding="utf-8")
    assert "synthetic" not in html.lower(), "chapter 12 shows numbers from synthetic data"
    trained = bool(re.search(r"MNIST from /\S+", html))
    missing = bool(re.search(r"nothing is trained here: [A-Za-z]", html))
    assert trained != missing, "the live cell must either train on MNIST or say in one line why not"
    from optlab.data import DataError, find_dataset_dir

    try:
        find_dataset_dir("mnist")
    except DataError:
        return  # no MNIST here; the book may have been built where it was
    assert trained, "MNIST is available, but the book's live cell did not train on it"
