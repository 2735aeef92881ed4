"""How fast is a chapter's "Run live" lab, and what does a reader download? (issue 14)

    .venv/bin/python benchmarks/live_lab.py [--site DIR] [--redraws 21] [--check]

Serves a site on 127.0.0.1 (default: the tiny lab site of ``book/tools/lab_site.py``, written
to a temporary folder; ``--site _build/html`` measures the built book's first two lab pages)
and drives Debian's Chromium (headless) through it, offline, measuring:

* the bytes of the first lab page before "Run live" (what every reader loads, as today);
* **boot**: from the click on "Run live" to the first paths drawn, and the bytes it downloads
  (Pyodide's core and the package's source), on the first lab page;
* the same on the next lab page (the browser's cache is warm);
* **redraw**: from a change of the lr slider to the new paths drawn and painted, for 300 steps
  of 3 rules (median and max over ``--redraws`` positions), with the lab's own split into
  Python (``computeMs``) and SVG (``drawMs``).

Bytes are the response bodies the server sent (a cache hit or a ``304 Not Modified`` sends
none); the browser has a persistent profile, so its HTTP cache is on disk as a reader's is.
Targets: boot < 5 s, redraw < 100 ms; ``--check`` exits with status 1 when one is missed.
The load average and the CPU seconds the browser used are printed: on a shared machine the
wait for a CPU, not the work, dominates the boot time.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

BOOT_TARGET_S = 5.0
REDRAW_TARGET_MS = 100.0


class Meter:
    """Bytes the server sent (response bodies: a cache hit or a 304 costs none), by phase, and
    the browser's requests outside 127.0.0.1 (the page's and its worker's)."""

    def __init__(self):
        self.total = 0
        self.lock = threading.Lock()
        self.outside: list[str] = []

    def watch(self, context) -> None:
        context.on("request", lambda r: self.outside.append(r.url) if not r.url.startswith(
            ("http://127.0.0.1", "data:", "blob:")) else None)

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n

    def take(self) -> int:
        """Bytes since the last call."""
        with self.lock:
            n, self.total = self.total, 0
        return n


def _handler(meter: Meter):
    class Counting(http.server.SimpleHTTPRequestHandler):
        def copyfile(self, source, outputfile):
            data = source.read()
            meter.add(len(data))
            outputfile.write(data)

        def log_message(self, *args):
            pass

    return Counting


def _lab_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in (site / "chapters").glob("*.html")
                  if 'class="optlab-lab"' in p.read_text(encoding="utf-8"))


def _browser_cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process's children (the Playwright driver
    and Chromium's processes); NaN without psutil."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _boot(page, meter: Meter) -> tuple[float, float, int, float]:
    """(wall seconds from the click to the first paths, the lab's own bootMs, bytes, CPU
    seconds the browser used meanwhile)."""
    meter.take()
    cpu0 = _browser_cpu_seconds()
    t0 = time.perf_counter()
    page.locator("button.optlab-lab-run").first.click()
    page.wait_for_function("window.optlabLab.lastPaths !== null", timeout=300_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")  # painted
    wall = time.perf_counter() - t0
    cpu = _browser_cpu_seconds() - cpu0
    return wall, page.evaluate("window.optlabLab.bootMs"), meter.take(), cpu


REDRAW_JS = """async (pos) => {
  const input = document.querySelector('.optlab-lab-lr input[type=range]');
  const before = window.optlabLab.lastRequest;
  const t0 = performance.now();
  input.value = String(pos);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  while (window.optlabLab.lastRequest === before) {
    await new Promise(r => requestAnimationFrame(() => r()));
  }
  await new Promise(r => requestAnimationFrame(() => r()));  // the frame that paints it
  const s = window.optlabLab;
  return [performance.now() - t0, s.computeMs, s.drawMs, s.lastRequest.rules.length,
          s.lastRequest.steps];
}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=None, help="a built site (default: tiny site)")
    ap.add_argument("--pages", nargs=2, default=None, metavar="PAGE",
                    help="the first and next lab page, relative to the site (default: the "
                         "first two with a lab)")
    ap.add_argument("--redraws", type=int, default=21)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    from conftest import CHROMIUM, LAUNCH_ARGS, chromium_missing

    reason = chromium_missing()
    if reason:
        print(f"live_lab: cannot run: {reason}")
        return 2
    tmp = None
    site = args.site
    if site is None:
        import lab_site

        tmp = tempfile.TemporaryDirectory(prefix="lab-site-")
        site = Path(tmp.name)
        lab_site.build(site)
    pages = list(args.pages) if args.pages else _lab_pages(site)
    if len(pages) < 2:
        print(f"live_lab: {site} has fewer than two pages with a lab")
        return 2
    meter = Meter()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_handler(meter), directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    from playwright.sync_api import sync_playwright

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with sync_playwright() as pw:
        # a persistent profile, as a reader's browser has: an on-disk HTTP cache (a fresh
        # context's in-memory cache does not keep the 9.6 MB pyodide.asm.wasm)
        profile = tempfile.TemporaryDirectory(prefix="lab-profile-")
        context = pw.chromium.launch_persistent_context(
            profile.name, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True,
            viewport={"width": 1280, "height": 900})
        meter.watch(context)
        page = context.pages[0] if context.pages else context.new_page()

        page.goto(base + pages[0], wait_until="load")
        page_bytes = meter.take()
        boot1 = _boot(page, meter)

        page.evaluate("""() => {  // the redraw is timed at 300 steps
          const s = document.querySelector('.optlab-lab input[aria-label=steps]');
          s.value = '300'; s.dispatchEvent(new Event('input', {bubbles: true})); }""")
        page.wait_for_function("window.optlabLab.lastRequest.steps === 300")
        times, computes, draws = [], [], []
        for i in range(args.redraws):
            pos = 40 + (i * 7) % 120
            total, compute, draw, n_rules, steps = page.evaluate(REDRAW_JS, pos)
            times.append(total)
            computes.append(compute)
            draws.append(draw)

        page.goto(base + pages[1], wait_until="load")
        page2_bytes = meter.take()
        boot2 = _boot(page, meter)
        outside = list(meter.outside)
        context.close()
        profile.cleanup()
    server.shutdown()
    if tmp is not None:
        tmp.cleanup()

    mb = 1e6
    print(f"site: {site if args.site else 'tiny lab site (book/tools/lab_site.py)'}; "
          f"pages {pages[0]} then {pages[1]}; load average {load:.1f} on "
          f"{os.cpu_count()} cores")
    lab_assets = sum((ROOT / "book" / "tools" / "assets" / f).stat().st_size
                     for f in ("optlab-lab.js", "optlab-lab.css"))
    print(f"first lab page, before Run live: {page_bytes / mb:.2f} MB (the lab's share: its "
          f"script and CSS, {lab_assets / 1e3:.0f} kB)")
    print(f"boot, first page: {boot1[0]:.2f} s to the first paths (Pyodide ready after "
          f"{boot1[1] / 1000:.2f} s; the browser used {boot1[3]:.2f} CPU-s), "
          f"{boot1[2] / mb:.2f} MB downloaded")
    print(f"next page: {page2_bytes / mb:.2f} MB before Run live; boot {boot2[0]:.2f} s "
          f"(Pyodide {boot2[1] / 1000:.2f} s; {boot2[3]:.2f} CPU-s), "
          f"{boot2[2] / mb:.3f} MB downloaded (from the cache otherwise)")
    print(f"redraw, {steps} steps x {n_rules} rules, lr slider -> painted: median "
          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms (Python "
          f"{statistics.median(computes):.1f} ms, SVG {statistics.median(draws):.1f} ms; "
          f"{len(times)} changes)")
    print(f"requests outside 127.0.0.1: {len(outside)}")
    missed = []
    if boot1[0] > BOOT_TARGET_S:
        missed.append(f"boot {boot1[0]:.2f} s > {BOOT_TARGET_S} s")
    if statistics.median(times) > REDRAW_TARGET_MS:
        missed.append(f"redraw {statistics.median(times):.1f} ms > {REDRAW_TARGET_MS} ms")
    if outside:
        missed.append(f"{len(outside)} requests outside 127.0.0.1")
    print("targets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
