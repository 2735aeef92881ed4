"""book/tools/claims.py: a chapter's claims re-executed per seed, failures located to the line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("claims", ROOT / "book" / "tools" / "claims.py")
claims = importlib.util.module_from_spec(spec)
sys.modules["claims"] = claims  # dataclasses and the worker processes look it up by name
spec.loader.exec_module(claims)


def _notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = make(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_parameters_cell_must_be_the_first_code_cell(tmp_path):
    tagged = nbformat.read(_notebook(tmp_path / "a.ipynb", [
        ("markdown", "# t", []), ("code", "SEED = 0", ["parameters"]), ("code", "x = 1", [])]), 4)
    late = nbformat.read(_notebook(tmp_path / "b.ipynb", [
        ("code", "import math", []), ("code", "SEED = 0", ["parameters"])]), 4)
    assert claims.parameters_cell_index(tagged) == 1
    assert claims.parameters_cell_index(late) is None


def test_failing_line_is_the_marked_line_of_the_cell():
    source = "a = 1\nassert a == 2, 'no'\nb = 3"
    tb = ["\x1b[0;31mAssertionError\x1b[0m  Traceback",
          "Cell \x1b[0;32mIn[3], line 2\x1b[0m",
          "\x1b[1;32m      1\x1b[0m a = 1",
          "\x1b[0;32m----> 2\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m a == 2, 'no'",
          "AssertionError: no"]
    # ANSI codes split tokens in real tracebacks; the plain line is recovered from the cell source
    assert claims.failing_line(["----> 2 assert a == 2, 'no'"], source) == "assert a == 2, 'no'"
    assert "assert" in claims.failing_line(tb, source)


def test_seed_dependent_claim_fails_only_on_the_seeds_that_break_it(tmp_path, capsys):
    nb = _notebook(tmp_path / "ch.ipynb", [
        ("markdown", "# A chapter", []),
        ("code", "SEED = 0", ["parameters"]),
        ("code", "import random\nrng = random.Random(SEED)", []),
        ("code", "value = SEED % 2\nassert value == 0, 'odd seed'", []),
    ])
    rc = claims.main(["--seeds", "0", "1", "2", "--jobs", "1", str(nb)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ch.ipynb seed 1: cell 3: assert value == 0, 'odd seed'" in out
    assert "ch.ipynb seed 0: ok" in out and "ch.ipynb seed 2: ok" in out
    assert "1 of 3 runs FAILED" in out
