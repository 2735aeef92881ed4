"""The chapters' "Run live" labs in headless Chromium, offline (issue 14).

Two sites are tested:

* a tiny lab site written in a second by ``book/tools/lab_site.py`` from a chapter cell's book
  output (frame slider + lab placeholder) and the book extension's own functions: the whole
  scenario below, on a lab with three rules;
* the built book (``_build/html``, or ``OPTLAB_SITE_DIR``) when it has labs: every page with a
  lab boots, its paths equal the package's, and the lr control changes them.

The scenario: every request outside 127.0.0.1 is blocked and counted (none may happen); "Run
live" boots Pyodide; the paths the lab exposes (``window.optlabLab.lastPaths``) equal
:func:`optlab.trajectory` for the settings it sent (``lastRequest``) to 1e-12, up to the step
where trajectory marks a divergence; moving the lr slider changes the paths; a click on the
contour moves the start to the clicked point; an edited rule (the editor's code with
``lr = 0.5 * lr`` added) runs and equals trajectory at half the learning rate; a syntax error
shows one line and the page keeps working; a rule that never returns is stopped (Python runs
in a Web Worker) and the next change restarts it. No JavaScript error anywhere.

Skipped with one reason when Chromium or the vendored Pyodide (``make vendor``) is missing.
The pure parts of the lab's script are tested by Node's runner (``book/tests``), from here too.
"""

from __future__ import annotations

import ast
import functools
import http.server
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import chromium_missing

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "book" / "tools"
PYODIDE = ROOT / "_vendor" / "pyodide"
BOOK = Path(os.environ.get("OPTLAB_SITE_DIR", ROOT / "_build" / "html"))
BOOT_TIMEOUT_MS = 180_000  # Pyodide's first boot on a busy 2-core machine takes ~10 s
sys.path.insert(0, str(TOOLS))


def _skip_reason() -> str | None:
    if not (PYODIDE / "pyodide.asm.wasm").is_file():
        return f"{PYODIDE}/pyodide.asm.wasm missing: run `make vendor`"
    return chromium_missing()


SKIP = _skip_reason()
browser_only = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


# --------------------------------------------------------------------------------------------
# The reference: the package's trajectory for the settings the lab sent
# --------------------------------------------------------------------------------------------


def reference_path(surface: dict, rule: str, hparams: dict, start, steps: int) -> np.ndarray:
    from optlab.live import surface_of
    from optlab.trajectories import trajectory

    hp = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
    return trajectory(rule, surface_of(surface), np.array(start, dtype=float), steps,
                      **hp).path[:, 0]


def assert_matches_reference(path: list, ref: np.ndarray, what: str) -> None:
    """``path`` (the lab's) equals the finite head of ``ref`` to 1e-12; ``ref`` is NaN after."""
    got = np.array(path, dtype=float).reshape(-1, 2)
    n = len(got)
    assert n >= 1, f"{what}: empty path"
    assert np.all(np.isfinite(ref[:n])), f"{what}: the lab ran past trajectory's divergence"
    assert np.all(np.isnan(ref[n:])), f"{what}: the lab stopped at {n}, trajectory did not"
    err = float(np.max(np.abs(got - ref[:n])))
    assert err <= 1e-12, f"{what}: max |lab - trajectory| = {err:.3g}"


def assert_lab_equals_trajectory(request: dict, paths: list) -> None:
    assert len(paths) == len(request["rules"])
    for entry, path in zip(request["rules"], paths, strict=True):
        hp = dict(entry["hparams"])
        rule = entry["rule"]
        assert_matches_reference(path, reference_path(request["surface"], rule, hp,
                                                      request["start"], request["steps"]),
                                 f"{rule} {hp}")


def half_lr_source(source: str) -> str:
    """The editor's code with ``lr = 0.5 * lr`` as the update function's first statement."""
    fn = ast.parse(source).body[0]
    assert isinstance(fn, ast.FunctionDef), source[:80]
    first = fn.body[0]
    lines = source.splitlines(keepends=True)
    indent = " " * first.col_offset
    lines.insert(first.lineno - 1, f"{indent}lr = 0.5 * lr\n")
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# Serving a site, offline
# --------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    if SKIP:
        pytest.skip(SKIP)
    import lab_site

    out = tmp_path_factory.mktemp("lab-site")
    lab_site.build(out)
    yield out
    shutil.rmtree(out, ignore_errors=True)


def _serve(directory: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class OfflinePage:
    """A page whose requests outside 127.0.0.1 are blocked and counted, and whose JavaScript
    errors are collected."""

    def __init__(self, browser, viewport=(1280, 900)):
        self.context = browser.new_context(viewport={"width": viewport[0],
                                                     "height": viewport[1]})
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []

        def route(r):
            if urlsplit(r.request.url).hostname == "127.0.0.1":
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}")
                     if r.status >= 400 else None)

    def state(self) -> tuple[dict, list]:
        return self.page.evaluate(
            "[window.optlabLab.lastRequest, window.optlabLab.lastPaths]")

    def wait(self, js: str, arg=None, timeout: int = 30_000) -> None:
        self.page.wait_for_function(js, arg=arg, timeout=timeout)

    def boot(self, lab: int = 0) -> None:
        self.page.locator("div.optlab-lab").nth(lab).locator("button.optlab-lab-run").click()
        self.wait("window.optlabLab.lastPaths !== null || "
                  "[...document.querySelectorAll('.optlab-lab-error')].some(e => e.textContent)",
                  timeout=BOOT_TIMEOUT_MS)
        error = self.page.locator(".optlab-lab-error").nth(lab).text_content()
        assert not error, f"the lab did not boot: {error}"

    def set_range(self, selector: str, position: int) -> None:
        self.page.locator(selector).first.evaluate(
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', "
            "{bubbles: true})); }", position)

    def check_clean(self) -> None:
        assert not self.outside, f"requests outside 127.0.0.1: {self.outside[:5]}"
        assert not self.failed, f"failed requests: {self.failed[:5]}"
        assert not self.errors, f"JavaScript errors: {self.errors[:5]}"


# --------------------------------------------------------------------------------------------
# Browser-free checks
# --------------------------------------------------------------------------------------------


def test_lab_script_pure_parts_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the lab script's unit tests need Node >= 18")
    script = ROOT / "book" / "tools" / "assets" / "optlab-lab.js"
    check = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    tests = sorted(str(p) for p in (ROOT / "book" / "tests").glob("*.test.mjs"))
    assert tests, "no Node tests in book/tests"
    run = subprocess.run([node, "--test", *tests], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_half_lr_source_inserts_one_statement():
    src = "def f(\n    a,\n    lr=1,\n) -> int:\n    x = a  # c\n    return x * lr\n"
    out = half_lr_source(src)
    assert out.splitlines()[4] == "    lr = 0.5 * lr"
    ns: dict = {}
    exec(out, ns)
    assert ns["f"](2, lr=4) == 4


# --------------------------------------------------------------------------------------------
# The tiny site: the whole scenario
# --------------------------------------------------------------------------------------------


@browser_only
def test_lab_scenario(browser, tiny_site):
    server, base = _serve(tiny_site)
    p = OfflinePage(browser)
    try:
        page = p.page
        page.goto(base + "chapters/lab-0.html", wait_until="load")
        assert page.locator(".optlab-frames input.anim-slider").count() == 1  # frame slider
        lab = page.locator("div.optlab-lab").first
        assert lab.is_visible()
        assert page.evaluate("window.optlabLab.lastPaths") is None  # nothing computed yet
        assert not any("pyodide" in e for e in p.errors)

        p.boot()
        request, paths = p.state()
        assert [r["rule"] for r in request["rules"]] == ["momentum", "rmsprop", "adam"]
        assert_lab_equals_trajectory(request, paths)
        assert page.locator("svg.optlab-lab-svg polyline").count() == 3

        # the learning rate: a new slider position -> a new lr -> new paths
        lr0 = request["rules"][0]["hparams"]["lr"]
        p.set_range(".optlab-lab-lr input[type=range]", 60)
        p.wait("r => window.optlabLab.lastRequest.rules[0].hparams.lr !== r", lr0)
        request2, paths2 = p.state()
        assert request2["rules"][2]["hparams"]["lr"] != lr0
        assert paths2[2] != paths[2]
        assert_lab_equals_trajectory(request2, paths2)

        # a click on the contour moves the start there
        svg = page.locator("svg.optlab-lab-svg").first
        box = svg.bounding_box()
        page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"])
        p.wait("s => window.optlabLab.lastRequest.start[0] !== s", request2["start"][0])
        request3, paths3 = p.state()
        xmin, xmax, ymin, ymax = page.evaluate("window.optlabLab.labs[0].cfg.extent")
        want = (xmin + 0.25 * (xmax - xmin), ymax - 0.75 * (ymax - ymin))
        got = request3["start"]
        assert math.dist(got, want) < 0.01 * (xmax - xmin), (got, want)
        assert paths3[0][0] == got
        assert_lab_equals_trajectory(request3, paths3)

        # your own rule: the editor's code, with the learning rate halved
        page.locator("details.optlab-lab-editor > summary").first.click()
        textarea = page.locator("details.optlab-lab-editor textarea").first
        source = textarea.input_value()
        edit = page.evaluate("window.optlabLab.labs[0].cfg.edit")
        assert source == edit["source"] and source.startswith(f"def {edit['rule']}_update(")
        textarea.fill(half_lr_source(source))
        page.locator("button.optlab-lab-mine").first.click()
        p.wait("() => window.optlabLab.lastRequest.rules.length === 4")
        request4, paths4 = p.state()
        mine = request4["rules"][3]
        assert mine["rule"] == edit["rule"] and "lr = 0.5 * lr" in mine["source"]
        ref = reference_path(request4["surface"], mine["rule"],
                             {**mine["hparams"], "lr": 0.5 * mine["hparams"]["lr"]},
                             request4["start"], request4["steps"])
        assert_matches_reference(paths4[3], ref, "the edited rule (lr halved)")
        assert page.locator("svg.optlab-lab-svg polyline").count() == 4
        assert "your " + edit["rule"] in page.locator(".optlab-lab-legend").first.inner_text()

        # a syntax error: one line in the lab, the other rules still drawn, the page still works
        textarea.fill("def adam_update(params, grad, state, *, lr=1e-3:\n    return params\n")
        page.locator("button.optlab-lab-mine").first.click()
        p.wait("() => document.querySelector('.optlab-lab-error').textContent !== ''")
        error = page.locator(".optlab-lab-error").first.text_content()
        assert error.startswith("SyntaxError (your rule, line 1)"), error
        assert "\n" not in error and len(error) < 200
        assert page.locator("svg.optlab-lab-svg polyline").count() == 3
        status = page.locator(".optlab-lab-status").first.text_content()
        assert status.startswith("3 rule(s)") and "1 failed" in status, status  # ran: 3, not 4
        lr5 = p.state()[0]["rules"][0]["hparams"]["lr"]
        p.set_range(".optlab-lab-lr input[type=range]", 120)
        p.wait("r => window.optlabLab.lastRequest.rules[0].hparams.lr !== r", lr5)
        request6, paths6 = p.state()
        assert_lab_equals_trajectory({**request6, "rules": request6["rules"][:3]}, paths6[:3])
        page.locator("text=Hide my rule").first.click()
        p.wait("() => window.optlabLab.lastRequest.rules.length === 3")
        assert page.locator(".optlab-lab-error").first.text_content() == ""

        # the frame slider above still works
        before = page.locator(".optlab-frames img").first.get_attribute("src")
        p.set_range(".optlab-frames input.anim-slider", 2)
        assert page.locator(".optlab-frames img").first.get_attribute("src") != before
        p.check_clean()
    finally:
        p.context.close()
        server.shutdown()


@browser_only
def test_lab_stops_a_rule_that_never_returns(browser, tiny_site):
    """Python runs in a Web Worker: a reader's endless loop is stopped after runTimeoutMs,
    said in one line, and the next change restarts Python with the package's rules."""
    server, base = _serve(tiny_site)
    p = OfflinePage(browser)
    try:
        page = p.page
        page.goto(base + "chapters/lab-1.html", wait_until="load")
        p.boot()
        page.evaluate("window.optlabLab.runTimeoutMs = 3000")
        page.locator("details.optlab-lab-editor > summary").first.click()
        page.locator("details.optlab-lab-editor textarea").first.fill(
            "def momentum_update(*args, **kwargs):\n    while True:\n        pass\n")
        page.locator("button.optlab-lab-mine").first.click()
        p.wait("() => /ran for more than/.test("
               "document.querySelector('.optlab-lab-error').textContent)", timeout=60_000)
        error = page.locator(".optlab-lab-error").first.text_content()
        assert error.startswith("the rules ran for more than 3 s") and "\n" not in error
        lr0 = p.state()[0]["rules"][0]["hparams"]["lr"]
        p.set_range(".optlab-lab-lr input[type=range]", 30)  # restarts Python
        p.wait("r => window.optlabLab.lastRequest.rules[0].hparams.lr !== r", lr0,
               timeout=BOOT_TIMEOUT_MS)
        request, paths = p.state()
        assert [r["rule"] for r in request["rules"]] == ["sgd", "momentum"]  # yours is hidden
        assert_lab_equals_trajectory(request, paths)
        assert page.locator(".optlab-lab-error").first.text_content() == ""
        p.check_clean()
    finally:
        p.context.close()
        server.shutdown()


@browser_only
def test_lab_without_javascript_keeps_the_frame_slider(browser, tiny_site):
    server, base = _serve(tiny_site)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(base + "chapters/lab-0.html")
        # as today (matplotlib's frame slider draws its frames with JavaScript): the slider's
        # markup is there, and the lab adds nothing visible (its placeholder is hidden)
        assert page.locator(".optlab-frames input.anim-slider").count() == 1
        assert page.locator("div.optlab-lab").count() == 1
        assert not page.locator("div.optlab-lab").first.is_visible()
        assert page.locator("div.optlab-lab").first.inner_html() == ""
    finally:
        context.close()
        server.shutdown()


@browser_only
def test_lab_without_webassembly_says_so_in_one_line(browser, tiny_site):
    server, base = _serve(tiny_site)
    p = OfflinePage(browser)
    try:
        p.context.add_init_script("delete window.WebAssembly;")
        p.page.goto(base + "chapters/lab-1.html")
        p.page.locator("button.optlab-lab-run").first.click()
        p.wait("() => document.querySelector('.optlab-lab-error').textContent !== ''")
        error = p.page.locator(".optlab-lab-error").first.text_content()
        assert "WebAssembly" in error and "\n" not in error
        before = p.page.locator(".optlab-frames img").first.get_attribute("src")
        p.set_range(".optlab-frames input.anim-slider", 2)  # the frame slider still works
        assert p.page.locator(".optlab-frames img").first.get_attribute("src") != before
        p.check_clean()
    finally:
        p.context.close()
        server.shutdown()


# --------------------------------------------------------------------------------------------
# The built book: every page with a lab
# --------------------------------------------------------------------------------------------


def _book_lab_pages() -> list[str]:
    if not (BOOK / "_static" / "optlab-lab" / "optlab-py.json").is_file():
        return []
    return sorted(p.relative_to(BOOK).as_posix() for p in (BOOK / "chapters").glob("*.html")
                  if 'class="optlab-lab"' in p.read_text(encoding="utf-8"))


BOOK_PAGES = _book_lab_pages()


@browser_only
@pytest.mark.skipif(not BOOK_PAGES, reason=f"no built book with labs in {BOOK}: run `make book`")
def test_book_labs(browser):
    server, base = _serve(BOOK)
    p = OfflinePage(browser)
    try:
        for rel in BOOK_PAGES:
            p.page.goto(base + rel, wait_until="load")
            p.boot()
            request, paths = p.state()
            assert_lab_equals_trajectory(request, paths)
            lr0 = request["rules"][0]["hparams"]["lr"]
            p.set_range(".optlab-lab-lr input[type=range]", 20)
            p.wait("r => window.optlabLab.lastRequest.rules[0].hparams.lr !== r", lr0)
            request2, paths2 = p.state()
            assert paths2 != paths, rel
            assert_lab_equals_trajectory(request2, paths2)
        p.check_clean()
    finally:
        p.context.close()
        server.shutdown()


def test_book_lab_json_is_valid_where_built():
    """Each built lab placeholder carries the image, size and the editor's rule source."""
    import html
    import re

    script = re.compile(r'<script src="[^"]*_static/optlab-lab\.js')
    if BOOK_PAGES:  # the lab's script is on the pages with a lab only
        assert not script.search((BOOK / "book" / "intro.html").read_text(encoding="utf-8"))
    for rel in BOOK_PAGES:
        text = (BOOK / rel).read_text(encoding="utf-8")
        assert script.search(text), rel
        for raw in re.findall(r'class="optlab-lab" hidden data-lab="([^"]*)"', text):
            cfg = json.loads(html.unescape(raw))
            assert (BOOK / Path(rel).parent / cfg["image"]).resolve().is_file(), rel
            assert cfg["edit"]["source"].startswith("def "), rel
