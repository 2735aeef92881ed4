"""The built book in a real headless browser, offline.

Serves ``_build/html`` on 127.0.0.1 from a thread, opens the landing page and every chapter in
Debian's chromium (``/usr/bin/chromium``, driven by Playwright; never ``playwright install``) and
checks, page by page:

* no request leaves the book (each one is recorded and aborted) and none fails (status >= 400);
* math is typeset by the vendored MathJax (``mjx-container``) wherever the page has math;
* every frame slider (matplotlib ``to_jshtml``, how ``optlab.widgets.explore`` renders in the
  book) shows an image, and moving it to the last frame changes the image;
* saved ipywidget state renders as widget views (sliders, dropdowns ...);
* no JavaScript error besides the two known harmless ones (JB1 emits the sphinx-thebe config
  twice; the widget manager calls MathJax 2's ``MathJax.Hub.Queue``, absent in MathJax 3).

Skipped, with the reason, when the book is not built (``make book``) or chromium is missing.
``OPTLAB_SHOTS=DIR`` also saves a full-page screenshot of each page into DIR;
``OPTLAB_SITE_DIR=PATH`` tests another built site instead of ``_build/html``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("OPTLAB_SITE_DIR", ROOT / "_build" / "html"))  # override: another build
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
KNOWN_PAGE_ERRORS = (
    "THEBE_JS_URL",  # JB1 writes sphinx-thebe's config <script> twice: "already been declared"
    "reading 'Queue'",  # @jupyter-widgets/html-manager calls MathJax.Hub.Queue (MathJax 2 API)
)


def _pages() -> list[str]:
    if not HTML.is_dir():
        return []
    pages = ["book/intro.html"] if (HTML / "book" / "intro.html").is_file() else []
    pages += sorted(p.relative_to(HTML).as_posix() for p in (HTML / "chapters").glob("*.html"))
    return pages


def _skip_reason() -> str | None:
    if not (HTML / "book" / "intro.html").is_file():
        return f"the book is not built ({HTML}/book/intro.html missing): run `make book`"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} missing: `apt-get install chromium` (never `playwright install`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (PyPI) is not installed"
    return None


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield b
        b.close()


def _visit(browser, site: str, page_path: str):
    """Open one page with all outside requests aborted; return the page and its logs."""
    origin = urlsplit(site).netloc
    log = {"outside": [], "failed": [], "errors": []}
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        url = r.request.url
        if urlsplit(url).netloc == origin:
            r.continue_()
        else:
            log["outside"].append(url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on(
        "requestfailed",
        lambda req: urlsplit(req.url).netloc == origin
        and log["failed"].append(f"{req.url} ({req.failure})"),
    )
    page.on(
        "response",
        lambda r: r.status >= 400 and log["failed"].append(f"{r.url} (HTTP {r.status})"),
    )
    page.goto(f"{site}/{page_path}", wait_until="load")
    return context, page, log


@pytest.mark.parametrize("page_path", _pages() or ["book/intro.html"])
def test_page_works_offline(browser, site, page_path):
    source = (HTML / page_path).read_text(encoding="utf-8")
    has_math = bool(re.search(r'class="math notranslate', source))
    n_views = source.count('type="application/vnd.jupyter.widget-view+json"')
    has_state = 'type="application/vnd.jupyter.widget-state+json"' in source
    context, page, log = _visit(browser, site, page_path)
    try:
        if has_math:
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
            )
            page.evaluate("() => MathJax.startup.promise")
            assert page.locator("mjx-container").count() > 0, "math on the page was not typeset"
            assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"

        if has_state and n_views:
            # embed-amd renders after 'load'; every view placeholder gets a .widget-subarea
            page.wait_for_function(
                "n => document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= n",
                arg=n_views,
                timeout=20000,
            )
            assert page.locator(".widget-subarea .jupyter-widgets").count() >= n_views

        sliders = page.locator("input[id^='_anim_slider']")
        for i in range(sliders.count()):
            slider = sliders.nth(i)
            anim_id = slider.get_attribute("id").removeprefix("_anim_slider")
            img = page.locator(f"img#_anim_img{anim_id}")
            slider.scroll_into_view_if_needed()
            assert img.evaluate("el => el.complete && el.naturalWidth > 0"), "no frame image"
            before = img.get_attribute("src")
            slider.evaluate(
                "el => { el.value = el.max; el.dispatchEvent(new Event('input')); }"
            )
            after = img.get_attribute("src")
            assert int(slider.get_attribute("max")) > 0, "a frame slider with one frame"
            assert after != before, f"moving frame slider {anim_id} did not change the image"

        if os.environ.get("OPTLAB_SHOTS"):
            shots = Path(os.environ["OPTLAB_SHOTS"])
            shots.mkdir(parents=True, exist_ok=True)
            shot = shots / (page_path.replace("/", "_") + ".png")
            page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()

    assert not log["outside"], f"requests outside the book: {log['outside']}"
    assert not log["failed"], f"failed requests: {log['failed']}"
    unexpected = [e for e in log["errors"] if not any(k in e for k in KNOWN_PAGE_ERRORS)]
    assert not unexpected, f"JavaScript errors: {unexpected}"

