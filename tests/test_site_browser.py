"""The built book in headless Chromium, offline, at desktop (1280 px) and phone (390 px) width.

Serves ``_build/html`` on 127.0.0.1 from a thread, opens the landing page and every chapter in
Debian's chromium (``/usr/bin/chromium``, driven by Playwright; never ``playwright install``) and
checks, page by page and at both widths:

* no request leaves the book (each one is recorded and aborted) and none fails (status >= 400);
* no JavaScript error and no console error (thrown, or logged with ``console.error``);
* math is typeset by the vendored MathJax (``mjx-container``) wherever the page has math;
* every frame slider (matplotlib ``to_jshtml``, how ``optlab.widgets.explore`` renders in the
  book) shows an image, and moving it to the last frame changes the image;
* saved ipywidget state renders as widget views (sliders, dropdowns ...);
* at 1280 px no equation (``.math``), code block (``div.highlight pre``) or cell output scrolls
  sideways or is cut off (``scrollWidth <= clientWidth + 1``; for math the typeset ``mjx-math``
  against its box, since MathJax's hidden assistive MathML inflates ``scrollWidth``; folded cells
  are unfolded first); at 390 px the page itself does not scroll sideways (equations, code and
  outputs may scroll inside their own boxes there, so that code keeps its indentation).

And once per width: the table of contents opens with the visible toggle button (on a phone it
is the only way to reach it), the page's own contents open on a phone, and search result
snippets show math as text, not TeX source.

Skipped, with the reason, when the book is not built (``make book``) or chromium is missing.
``OPTLAB_SHOTS=DIR`` also saves a full-page screenshot of each page at each width into DIR;
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
from conftest import chromium_missing

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("OPTLAB_SITE_DIR", ROOT / "_build" / "html"))  # override: another build
#: name -> viewport; the test ids read "desktop" / "phone".
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
#: What may overflow sideways, by kind (checked at desktop width; folded cells unfolded first).
OVERFLOW_SELECTORS = {
    "math": "div.math, span.math",
    "code": "div.highlight pre",
    "output": "div.cell_output > .output, div.cell_output pre",
}
#: TeX source in a search snippet: a math delimiter \( \[ or a common TeX command.
TEX_SOURCE = re.compile(
    r"\\[(\[]|\\(?:frac|sqrt|hat|text|mathbb|mathrm|left|right|cdot|odot|sum|nabla|alpha"
    r"|beta|eta|epsilon|theta|lambda|kappa|quad|begin|end)(?![A-Za-z])"
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
    return chromium_missing()


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


def _visit(browser, site: str, page_path: str, width: str = "desktop"):
    """Open one page with all outside requests aborted; return the context, page and logs."""
    origin = urlsplit(site).netloc
    log = {"outside": [], "failed": [], "errors": []}
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})

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
        "console",
        lambda m: m.type == "error" and log["errors"].append(f"console: {m.text} {m.location}"),
    )
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


def _typeset(page) -> None:
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
    )
    page.evaluate("() => MathJax.startup.promise")


def _overflowing(page) -> list[str]:
    """Blocks wider than their box, as 'kind +Npx: text...' (after unfolding folded cells)."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    found = page.evaluate(
        """selectors => {
          const out = [];
          const seen = new Set();
          for (const [kind, sel] of Object.entries(selectors)) {
            for (const el of document.querySelectorAll(sel)) {
              if (seen.has(el) || el.offsetParent === null) continue;  // hidden
              if (getComputedStyle(el).display === 'inline') continue;  // no box to scroll
              seen.add(el);
              // Math: MathJax's hidden assistive MathML inflates scrollWidth, so compare what a
              // reader sees (mjx-math) with the box that clips or scrolls it: the theme's
              // scrolling mjx-container for display math, the span for inline math.
              const shown = kind === 'math' ? el.querySelector('mjx-math') : null;
              const box = shown && el.matches('div.math')
                ? (el.querySelector('mjx-container') || el) : el;
              const over = shown
                ? Math.round(shown.getBoundingClientRect().width) - box.clientWidth
                : el.scrollWidth - el.clientWidth;
              if (over > 1) {
                const text = el.textContent.replace(/\\s+/g, ' ').trim().slice(0, 60);
                out.push(`${kind} +${over}px: ${text}`);
              }
            }
          }
          return out;
        }""",
        OVERFLOW_SELECTORS,
    )
    return list(found)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("page_path", _pages() or ["book/intro.html"])
def test_page_works_offline(browser, site, page_path, width):
    source = (HTML / page_path).read_text(encoding="utf-8")
    has_math = bool(re.search(r'class="math notranslate', source))
    n_views = source.count('type="application/vnd.jupyter.widget-view+json"')
    has_state = 'type="application/vnd.jupyter.widget-state+json"' in source
    context, page, log = _visit(browser, site, page_path, width)
    try:
        if has_math:
            _typeset(page)
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

        if width == "desktop":
            wide = _overflowing(page)
        else:  # a phone: equations, code and outputs scroll in their own boxes (a line of
            # Python keeps its indentation); the page itself does not scroll
            wide = []
            page_width = page.evaluate("() => document.documentElement.scrollWidth")
            wide += [f"page +{page_width - 390}px"] if page_width > 390 + 1 else []

        if os.environ.get("OPTLAB_SHOTS"):
            shots = Path(os.environ["OPTLAB_SHOTS"])
            shots.mkdir(parents=True, exist_ok=True)
            shot = shots / f"{page_path.replace('/', '_')}-{WIDTHS[width][0]}.png"
            page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()

    assert not log["outside"], f"requests outside the book: {log['outside']}"
    assert not log["failed"], f"failed requests: {log['failed']}"
    assert not log["errors"], f"JavaScript errors: {log['errors']}"
    assert not wide, f"{page_path} at {width} width scrolls sideways: {wide}"


def _nav_on_screen(page) -> bool:
    """The book's table of contents is visible and inside the viewport."""
    nav = page.locator("nav.bd-docs-nav").first
    if not nav.is_visible():
        return False
    box = nav.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] < page.viewport_size["width"]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_table_of_contents_opens(browser, site, width):
    page_path = next((p for p in _pages() if p.startswith("chapters/")), "book/intro.html")
    context, page, log = _visit(browser, site, page_path, width)
    try:
        # One primary toggle in the page, the visible one: the themes' scripts bind the first.
        assert page.locator(".primary-toggle").count() == 1, "a hidden duplicate toggle button"
        toggle = page.locator(".primary-toggle")
        assert toggle.is_visible(), "the table-of-contents button is not visible"
        if width == "phone":
            assert not _nav_on_screen(page), "the table of contents is open before any click"
            toggle.click()
            page.wait_for_function(
                "() => document.querySelector('#pst-primary-sidebar-modal').open", timeout=5000
            )
            assert _nav_on_screen(page), "the toggle did not show the table of contents"
            # ... and it works: a link to another chapter in it navigates.
            hrefs = page.locator("#pst-primary-sidebar-modal nav.bd-docs-nav a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
            here = page_path.rsplit("/", 1)[-1]
            target = next(h for h in hrefs if re.fullmatch(r"\d\d-[\w-]+\.html", h) and h != here)
            page.locator(f"#pst-primary-sidebar-modal nav.bd-docs-nav a[href='{target}']").click()
            page.wait_for_load_state("load")
            assert page.url.endswith(f"chapters/{target}"), page.url
            # The page's own contents (right sidebar) open from their button too.
            secondary = page.locator(".secondary-toggle")
            assert secondary.count() == 1, "a hidden duplicate page-contents button"
            secondary.click()
            page.wait_for_function(
                "() => document.querySelector('#pst-secondary-sidebar-modal').open", timeout=5000
            )
            assert page.locator("#pst-secondary-sidebar-modal nav").first.is_visible()
        else:
            assert _nav_on_screen(page), "the table of contents is not shown on a desktop"
            toggle.click()
            page.wait_for_timeout(400)  # the sidebar slides out
            assert not _nav_on_screen(page), "the toggle did not hide the table of contents"
            toggle.click()
            page.wait_for_timeout(400)
            assert _nav_on_screen(page), "the toggle did not bring the table of contents back"
    finally:
        context.close()
    assert not log["outside"], f"requests outside the book: {log['outside']}"
    assert not log["errors"], f"JavaScript errors: {log['errors']}"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_two_panel_figures_stay_readable_on_a_phone(browser, site, width):
    """A wide figure (chapter 12's two-panel ones) keeps 1.8 columns of width on a phone,
    scrolling inside a box of its own with a visible hint under it, while the page does not
    scroll sideways; on a desktop it fits the column and the hint is hidden."""
    page_path = "chapters/12-mnist.html"
    if not (HTML / page_path).exists():
        pytest.skip(f"{page_path} is not built")
    context, page, log = _visit(browser, site, page_path, width)
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('div.cell_output img')]"
            ".every(i => i.complete)", timeout=20000)
        page.wait_for_timeout(200)
        figs = page.evaluate(
            """() => [...document.querySelectorAll('div.cell_output img')].map(img => {
                 const box = img.parentElement, hint = box.nextElementSibling;
                 return {ratio: img.naturalWidth / img.naturalHeight,
                   wide: img.classList.contains('optlab-wide'),
                   boxed: box.classList.contains('optlab-wide-box'),
                   shown: img.getBoundingClientRect().width, box: box.clientWidth,
                   scrolls: box.scrollWidth > box.clientWidth + 1,
                   hint: !!hint && hint.classList.contains('optlab-scroll-hint')
                         && hint.offsetParent !== null};
               })""")
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        glued = page.evaluate(
            """() => [...document.querySelectorAll('span.pasted-text')].map(s => [
                 s.textContent.length, parseInt(getComputedStyle(s).fontWeight)])""")
    finally:
        context.close()
    assert not log["errors"], f"JavaScript errors: {log['errors']}"
    # a glued number stays bold; a glued sentence does not make a wall of bold
    assert any(n <= 60 and w >= 600 for n, w in glued)
    assert all(w < 600 for n, w in glued if n > 60) and any(n > 60 for n, _ in glued)
    wide = [f for f in figs if f["ratio"] > 1.8]
    assert len(wide) >= 4, f"too few wide figures on {page_path}: {figs}"
    assert all(f["wide"] and f["boxed"] for f in wide)
    assert not any(f["wide"] for f in figs if f["ratio"] < 1.8)
    for f in wide:
        if width == "phone":
            assert f["shown"] >= 1.7 * f["box"] and f["scrolls"] and f["hint"], f
        else:
            assert f["shown"] <= f["box"] + 1 and not f["scrolls"] and not f["hint"], f
    assert page_width <= WIDTHS[width][0] + 1, f"the page scrolls sideways: {page_width}"


@pytest.mark.parametrize("query", ["momentum", "learning rate"])
def test_search_snippets_show_no_tex(browser, site, query):
    context, page, log = _visit(browser, site, f"search.html?q={query}")
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results li p.context').length >= 3",
            timeout=30000,
        )
        page.wait_for_timeout(500)  # let the remaining snippets arrive
        snippets = page.locator("#search-results li p.context").all_inner_texts()
        plain = page.evaluate("() => optlabTexToText('\\\\(w_{t+1} = \\\\frac{a}{\\\\eta}\\\\)')")
    finally:
        context.close()
    assert plain == "w_t+1 = (a)/(η)", plain
    with_tex = [s for s in snippets if TEX_SOURCE.search(s)]
    assert not with_tex, f"search snippets with TeX source: {with_tex[:3]}"
    assert not log["outside"], f"requests outside the book: {log['outside']}"
    assert not log["errors"], f"JavaScript errors: {log['errors']}"
