"""A chapter opened outside the repository (the book's "Download .ipynb") finds the committed
results through the package, or says in one line what it needs.

The locating function is tested directly; the chapters that read results are then executed in a
temporary folder up to the cell that loads them (the whole chapters take minutes), once with the
results found and once with ``$OPTLAB_RESULTS_DIR`` pointing at an empty folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optlab.paths as paths
from optlab.paths import ENV_VAR, ResultsNotFound, results_file

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("paper", "tuned", "lbfgs")
# chapters that read results/, and the call that marks their loading cell
READERS = ("11-lbfgs.ipynb", "12-mnist.ipynb", "13-choosing.ipynb", "14-schedules.ipynb",
           "15-adam-fails.ipynb")
MARK = "results_file("


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Current directory outside any repository, no $OPTLAB_RESULTS_DIR."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def _write_preset(root: Path, preset: str) -> Path:
    path = root / preset / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"runs": []}', encoding="utf-8")
    return path


@pytest.mark.parametrize("preset", PRESETS)
def test_finds_the_repository_results_from_any_directory(elsewhere, preset):
    found = results_file(preset)
    assert found == REPO / "results" / preset / "results.json"
    assert json.loads(found.read_text(encoding="utf-8"))["runs"]


def test_environment_variable_wins_and_is_the_only_place_searched(elsewhere, monkeypatch):
    mine = elsewhere / "my-results"
    path = _write_preset(mine, "lbfgs")
    monkeypatch.setenv(ENV_VAR, str(mine))
    assert results_file("lbfgs") == path
    # "paper" exists in the repository, but an explicit folder is never silently replaced
    with pytest.raises(ResultsNotFound) as err:
        results_file("paper")
    assert str(mine) in str(err.value) and str(REPO) not in str(err.value)


def test_missing_results_say_in_one_line_what_to_do(elsewhere, monkeypatch):
    monkeypatch.setattr(paths, "_PACKAGE_REPO", elsewhere / "site-packages-like")
    with pytest.raises(ResultsNotFound) as err:
        results_file("tuned")
    message = str(err.value)
    assert "\n" not in message
    assert "tuned/results.json" in message and ENV_VAR in message
    assert "python -m optlab compare --preset tuned" in message


def test_a_clone_found_from_the_current_directory(tmp_path, monkeypatch):
    # the package installed elsewhere, the notebook opened inside a clone's chapters/
    clone = tmp_path / "clone"
    (clone / "chapters").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("", encoding="utf-8")
    path = _write_preset(clone / "results", "paper")
    monkeypatch.setattr(paths, "_PACKAGE_REPO", tmp_path / "site-packages-like")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(clone / "chapters")
    assert results_file("paper") == path


def _loading_cells(chapter: str):
    """The chapter's parameters and import cells and the cell that loads the results."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(REPO / "chapters" / chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    loading = next(c for c in code if MARK in c.source)
    nb.cells = [c for c in code[:2] if c is not loading] + [loading]
    return nb


def _cell_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@pytest.mark.parametrize("chapter", READERS)
def test_downloaded_chapter_loads_results_or_says_what_it_needs(chapter, tmp_path, monkeypatch):
    """One kernel per chapter, in a folder outside the repository: the loading cell finds the
    results; then, with $OPTLAB_RESULTS_DIR pointing at an empty folder, it says in one line
    per file what it needs, without an exception."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    (tmp_path / chapter).write_bytes((REPO / "chapters" / chapter).read_bytes())
    empty = tmp_path / "no-results"
    empty.mkdir()
    nb = _loading_cells(chapter)
    loading = nb.cells[-1]
    nb.cells += [nbformat.v4.new_code_cell(f"import os\nos.environ[{ENV_VAR!r}] = {str(empty)!r}"),
                 nbformat.v4.new_code_cell(loading.source)]
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))  # the kernel inherits the environment
    monkeypatch.delenv(ENV_VAR, raising=False)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    found, missing = _cell_text(nb.cells[-3]), _cell_text(nb.cells[-1])
    assert "not found" not in found and "skipped" not in found, found
    lines = [line for line in missing.splitlines() if "not found" in line]
    assert lines and all(ENV_VAR in line for line in lines), missing
