"""The chapters as a student meets them: in JupyterLab, driven through a real browser, offline.

Starts JupyterLab (the project's venv, ``127.0.0.1``, a free port, a random token,
``--allow-root`` only as root) on a temporary copy of one first-order chapter (momentum) and one
second-order chapter (BFGS), opens each in Debian's chromium (``/usr/bin/chromium`` driven by
Playwright; never ``playwright install``), and checks what a reader sees:

* Run All (the *Run* menu) runs every cell without an error;
* every number the prose quotes with ``{glue:text}`name` `` is visible as a number under the cell
  that measured it (``measured: name = 0.905``, :func:`optlab.notebook.glue`);
* solution cells start folded (``jupyter.source_hidden``, book/tools/notebook_metadata.py);
* moving a dashboard slider changes the picture.

The copies get what the lead applies to every chapter after the merge: the glue import switched to
``optlab.notebook`` (the same ``sed``) and ``notebook_metadata.py`` run over them, so this test
passes before and after. The server and its kernels are stopped at the end. Skipped, with the
reason, only where chromium, Playwright or JupyterLab is missing. ``OPTLAB_SHOTS=DIR`` saves a
screenshot of each notebook after Run All.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import chromium_missing

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("03-momentum.ipynb", "10-bfgs.ipynb")  # one first-order, one second-order chapter
NEAR_CELLS = 3  # how far below its paragraph a quoted number may first be shown
GLUE_IMPORT = ("from myst_nb import glue", "from optlab.notebook import glue")  # the lead's sed
GLUE_ROLE = re.compile(r"\{glue(?::text)?\}`([A-Za-z0-9_]+)")
RENDERED_ROLE = re.compile(r"\{glue(?::text)?\}\s*([A-Za-z0-9_]+)")  # as JupyterLab shows one
NUMBER = re.compile(r"-?[\d,]*\.?\d+(e[+-]?\d+)?")
RUN_ALL_TIMEOUT_S = 240


def _skip_reason() -> str | None:
    if chromium_missing():
        return chromium_missing()
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab (PyPI) is not installed: `pip install -r requirements.txt`"
    return None


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_copies(folder: Path) -> None:
    """The chapters as they are after the lead's merge steps (glue import switched, Jupyter
    metadata written), in ``folder``."""
    for name in CHAPTERS:
        text = (ROOT / "chapters" / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace(*GLUE_IMPORT), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "book" / "tools" / "notebook_metadata.py"),
                    *(str(folder / n) for n in CHAPTERS)], check=True, capture_output=True)


def _lab_settings(folder: Path) -> None:
    """User settings: every cell rendered (no windowing, so the page holds all outputs) and no
    news prompt (offline)."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for rel, value in settings.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving the prepared copies; yields (url, token)."""
    home = tmp_path_factory.mktemp("jupyterlab")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    _prepare_copies(notebooks)
    _lab_settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "OPTLAB_BOOK_BUILD"}
    env.update({
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p),
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
        "MPLCONFIGDIR": str(home / "mpl"),
    })
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
           f"--LabApp.user_settings_dir={home / 'settings'}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", "--ServerApp.port_retries=0",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: the cells' run state
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (home / "server.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (home / "server.log").read_text())
                time.sleep(0.5)
        yield url, token, notebooks
    finally:
        _stop(server, url, token)
        log.close()


def _shut_kernels_down(url: str, token: str) -> None:
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as r:
            for kernel in json.load(r):
                req = urllib.request.Request(f"{url}/api/kernels/{kernel['id']}?token={token}",
                                             method="DELETE")
                urllib.request.urlopen(req, timeout=10).close()
    except OSError:
        pass


def _stop(server: subprocess.Popen, url: str, token: str) -> None:
    """Shut the kernels down through the API, then the server; kill what is left."""
    _shut_kernels_down(url, token)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


# The open notebook's code cells, from JupyterLab's own model: [execution count, error text].
CODE_CELLS_JS = """(path) => {
    const panel = [...window.jupyterapp.shell.widgets('main')]
        .find(w => w.context && w.context.path === path);
    const cells = [...panel.content.widgets].filter(c => c.model.type === 'code');
    return cells.map(c => {
        const outs = c.model.outputs.toJSON();
        const err = outs.find(o => o.output_type === 'error');
        return [c.model.executionCount, err ? err.ename + ': ' + err.evalue : null];
    });
}"""


def _run_all(page, chapter: str) -> None:
    """Run → Run All Cells, as a reader does, then wait until every code cell has run (or one
    failed: Run All stops there)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = f"""(path) => ({CODE_CELLS_JS})(path).some(c => c[0] !== null)"""
    for _attempt in range(3):  # a click on a menu that is still building can be lost: retry
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            page.wait_for_function(started, arg=chapter, timeout=30_000, polling=500)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail("Run → Run All Cells started no cell in 3 tries")

    try:
        page.wait_for_function(
            f"""(path) => {{
                const cells = ({CODE_CELLS_JS})(path);
                return cells.every(c => c[0] !== null) || cells.some(c => c[1] !== null);
            }}""",
            arg=chapter, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
    except PlaywrightTimeout:
        states = page.evaluate(CODE_CELLS_JS, chapter)
        waiting = [i for i, c in enumerate(states) if c[0] is None]
        pytest.fail(f"Run All did not finish in {RUN_ALL_TIMEOUT_S} s: code cells {waiting} of "
                    f"{len(states)} never ran")
    failed = [(i, c[1]) for i, c in enumerate(page.evaluate(CODE_CELLS_JS, chapter)) if c[1]]
    assert not failed, f"Run All: code cell {failed[0][0]} failed: {failed[0][1]}"


def _glued_names(notebook: Path) -> list[str]:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    names: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for name in GLUE_ROLE.findall("".join(cell["source"])):
                if name not in names:
                    names.append(name)
    return names


def _count_folded(notebook: Path) -> int:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code"
               and c["metadata"].get("jupyter", {}).get("source_hidden"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_in_jupyterlab(lab, browser, chapter):
    url, token, notebooks = lab
    glued = _glued_names(notebooks / chapter)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{url}/lab/tree/{chapter}?reset&token={token}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        # solution (and other book-folded) cells start folded
        page.wait_for_selector(".jp-CodeCell .jp-InputPlaceholder", timeout=30_000)
        folded = page.locator(".jp-CodeCell .jp-InputPlaceholder").count()
        assert folded == _count_folded(notebooks / chapter) > 0

        t0 = time.monotonic()
        _run_all(page, chapter)
        ran_s = time.monotonic() - t0

        # every number the prose quotes is visible as a number, next to its name, in an output
        # near the first paragraph that quotes it
        cells = page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                              ".map(c => [c.classList.contains('jp-MarkdownCell'), c.innerText])")
        shown_at: dict[str, tuple[int, str]] = {}
        quoted_at: dict[str, int] = {}
        for i, (is_markdown, text) in enumerate(cells):
            if is_markdown:
                for name in RENDERED_ROLE.findall(text):
                    quoted_at.setdefault(name, i)
            for line in (t for t in text.splitlines() if t.startswith("measured:")):
                for name, value in re.findall(r"([A-Za-z0-9_]+) = ([^·]+)", line):
                    shown_at.setdefault(name, (i, value.strip()))
        assert sorted(quoted_at) == sorted(glued), "the rendered prose shows other roles"
        missing = [n for n in glued if n not in shown_at]
        assert glued and not missing, f"glued names not shown after Run All: {missing}"
        not_numbers = {n: shown_at[n][1] for n in glued if not NUMBER.fullmatch(shown_at[n][1])}
        assert not not_numbers, f"shown, but not as numbers: {not_numbers}"
        # above the paragraph, or right below it: a claim's folded check cell (which computes
        # and glues its numbers) follows the claim, after at most a label cell
        late = [n for n in glued if shown_at[n][0] > quoted_at[n] + NEAR_CELLS]
        assert not late, f"shown only far below the prose that quotes them: {late}"

        if os.environ.get("OPTLAB_SHOTS"):
            page.screenshot(path=str(Path(os.environ["OPTLAB_SHOTS"]) / f"lab-{chapter}.png"),
                            full_page=True)

        # a dashboard slider moves the picture
        slider = page.locator(".widget-hslider .noUi-handle").first
        slider.scroll_into_view_if_needed()
        image = page.locator(".jupyter-widgets img, .widget-image").first
        before = image.get_attribute("src")
        slider.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([sel, src]) => { const i = document.querySelector(sel);"
            " return i && i.getAttribute('src') && i.getAttribute('src') !== src; }",
            arg=[".jupyter-widgets img, .widget-image", before], timeout=60_000)
        print(f"{chapter}: Run All {ran_s:.1f} s, {len(glued)} glued numbers shown")
        assert not errors, errors
    finally:
        page.close()
        _shut_kernels_down(url, token)  # the next chapter gets the CPU
