"""optlab.notebook.glue (myst_nb's glue + a visible "measured:" line outside the book build) and
book/tools/notebook_metadata.py (folded solution cells, references cell for notebook readers)."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from optlab.notebook import format_glued, measured_line

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "book" / "tools" / "notebook_metadata.py"


def _tool():
    spec = importlib.util.spec_from_file_location("notebook_metadata", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------- glue


def test_glued_values_read_as_numbers():
    import numpy as np

    assert format_glued(0.90512345) == "0.9051"
    assert format_glued(np.float32(3.5)) == "3.5"
    assert format_glued(np.int64(41)) == "41"
    assert format_glued(1234567) == "1,234,567"
    assert format_glued(12345.6) == "12,346"
    assert format_glued(2.5e-12) == "2.5e-12"
    assert format_glued("more than 200") == "more than 200"
    assert format_glued(np.bool_(True)) == "True"
    line = measured_line([("ch3_rate", 0.90512), ("gap", "x*$y")])
    assert line["text/plain"] == "measured: ch3_rate = 0.9051 · gap = x*$y"
    assert line["text/markdown"] == r"**measured:** `ch3_rate` = 0.9051 · `gap` = x\*\$y"


def _run(cells: list[str]) -> list[list[dict]]:
    """Execute ``cells`` in a fresh kernel (it inherits this process's environment)."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    return [cell.outputs for cell in nb.cells]


def _measured(outputs: list[dict]) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs
            if o.get("output_type") == "display_data" and "text/plain" in o.get("data", {})
            and o["data"]["text/plain"].startswith("measured:")]


def _records(outputs: list[dict]) -> list[dict]:
    return [dict(o["data"]) for o in outputs if "scrapbook" in o.get("metadata", {})]


CELLS = [
    "import os\nos.environ.pop('OPTLAB_BOOK_BUILD', None)\n"
    "import myst_nb\nfrom optlab.notebook import glue",
    "glue('rate', 0.90512, display=False)\nprint('ran')\nglue('steps', 41, display=False)",
    "x = 1",
    "myst_nb.glue('rate', 0.90512, display=False)\nmyst_nb.glue('steps', 41, display=False)",
    "glue('shown', 2.5)",
    "os.environ['OPTLAB_BOOK_BUILD'] = '1'  # as `make book` sets it",
    "glue('rate', 0.90512, display=False)\nglue('steps', 41, display=False)",
]


def test_glue_stores_what_myst_nb_stores_and_shows_one_line_per_cell(monkeypatch):
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"),
                                                      os.environ.get("PYTHONPATH", "")]))
    outputs = _run(CELLS)
    # the same records (mime bundles with myst_nb's prefix) as myst_nb.glue: roles and their
    # format specs resolve the same in the book
    assert _records(outputs[1]) == _records(outputs[3]) == _records(outputs[6])
    assert len(_records(outputs[1])) == 2
    assert _measured(outputs[1]) == ["measured: rate = 0.9051 · steps = 41"]
    assert _measured(outputs[2]) == [] and _measured(outputs[3]) == []
    assert _measured(outputs[4]) == []  # display=True: myst_nb shows the value itself
    assert any(o.get("data", {}).get("text/plain") == "2.5" for o in outputs[4])
    assert _measured(outputs[6]) == []  # the book shows the numbers in its prose


# ------------------------------------------------------------------- notebook_metadata.py


def _notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Heavy ball {cite}`polyak1964`, see "
                                      "{cite}`nesterov1983,polyak1964`.", id="md-1"),
        nbformat.v4.new_code_cell("answer = None", id="answer"),
        nbformat.v4.new_code_cell("solution = 1\ncheck(answer, solution)", id="solution",
                                  metadata={"tags": ["hide-input"], "other": 1}),
        nbformat.v4.new_code_cell("assert True", id="assert",
                                  metadata={"tags": ["remove-input"]}),
        nbformat.v4.new_markdown_cell("Adam {cite:p}`kingma2015`.", id="md-2"),
    ])
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _cli(*args) -> int:
    return _tool().main([str(a) for a in args])


def test_metadata_tool_folds_solutions_lists_references_and_is_idempotent(tmp_path):
    tool = _tool()
    path = _notebook(tmp_path)
    before = json.loads(path.read_text())
    assert subprocess.run([sys.executable, str(TOOL), "--check", str(path)],
                          capture_output=True, timeout=120).returncode == 1  # the command line
    assert json.loads(path.read_text()) == before  # --check writes nothing

    assert _cli(path) == 0
    after = json.loads(path.read_text())
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
    cells = {c["id"]: c for c in after["cells"]}
    assert [c["id"] for c in after["cells"]] == [c["id"] for c in before["cells"]] + [
        "references-for-notebook-readers"]
    assert cells["solution"]["metadata"] == {"tags": ["hide-input"], "other": 1,
                                             "jupyter": {"source_hidden": True}}
    assert cells["assert"]["metadata"]["jupyter"] == {"source_hidden": True}
    assert "jupyter" not in cells["answer"]["metadata"]
    # the folded solution's visible first line gives nothing away; the code is unchanged
    assert cells["solution"]["source"] == [tool.SOLUTION_HEADER, "solution = 1\n",
                                           "check(answer, solution)"]
    assert cells["assert"]["source"] == "assert True"
    refs = "".join(after["cells"][-1]["source"])
    assert after["cells"][-1]["metadata"]["tags"] == ["remove-cell"]  # the book drops it
    # every cited key once, in order of first citation, with a readable reference
    assert [line.split("`")[1] for line in refs.splitlines() if line.startswith("- ")] == [
        "polyak1964", "nesterov1983", "kingma2015"]
    assert "Polyak" in refs and "Kingma" in refs and "1964" in refs

    text = path.read_text()
    assert _cli("--check", path) == 0
    assert _cli(path) == 0 and path.read_text() == text  # idempotent


def test_metadata_tool_refreshes_references_when_the_prose_changes(tmp_path):
    tool = _tool()
    nb = json.loads(_notebook(tmp_path).read_text())
    done = tool.updated(nb)
    done["cells"][0]["source"] = "No citation here any more."
    done["cells"][4]["source"] = "Only {cite}`duchi2011`."
    again = tool.updated(done)
    assert "duchi2011" in "".join(again["cells"][-1]["source"])
    assert "polyak1964" not in "".join(again["cells"][-1]["source"])
    again["cells"][4]["source"] = "Nothing cited."
    assert tool.updated(again)["cells"][-1]["id"] == "md-2"  # no references cell left


def test_metadata_tool_names_an_unknown_key(tmp_path, capsys):
    path = _notebook(tmp_path)
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = "{cite}`nobody2030`"
    path.write_text(json.dumps(nb))
    assert _cli(path) == 2
    assert "nobody2030" in capsys.readouterr().err


def test_metadata_tool_on_a_copy_of_the_chapters(tmp_path):
    for chapter in sorted((ROOT / "chapters").glob("*.ipynb")):
        shutil.copy(chapter, tmp_path)
    copies = sorted(tmp_path.glob("*.ipynb"))
    assert _cli(*copies) == 0
    assert _cli("--check", *copies) == 0
    tool = _tool()
    for path in copies:
        nb = json.loads(path.read_text())
        original = json.loads((ROOT / "chapters" / path.name).read_text())
        def ids(cells):
            return [c.get("id") for c in cells if c.get("id") != tool.REFERENCES_CELL_ID]

        assert ids(nb["cells"]) == ids(original["cells"])
        for cell in nb["cells"]:
            if "hide-input" in cell["metadata"].get("tags", []):
                assert cell["metadata"]["jupyter"]["source_hidden"] is True
        solutions = [c for c in nb["cells"] if tool.is_solution_cell(c)]
        assert all("".join(c["source"]).startswith(tool.SOLUTION_HEADER) for c in solutions)
        assert solutions, f"{path.name}: no exercise found"


def test_committed_chapters_are_up_to_date():
    """The chapters as committed: folded cells collapsed in JupyterLab, references cell current
    (rerun `python book/tools/notebook_metadata.py chapters/*.ipynb` after editing tags or
    citations)."""
    assert _cli("--check", *sorted((ROOT / "chapters").glob("*.ipynb"))) == 0
