"""Make the chapters read well as notebooks (JupyterLab), not only in the book.

Two things the book does from tags and roles that JupyterLab does not:

1. **Folded cells.** The book folds cells tagged ``hide-input`` (exercise solutions, checks,
   bookkeeping) and drops the input of ``remove-input`` cells. JupyterLab folds a cell's input
   when its metadata says ``"jupyter": {"source_hidden": true}``; this tool sets that on every
   such cell (and ``hide-cell``), so a solution starts collapsed in JupyterLab too. A folded cell
   still shows its first line, so an exercise's solution cell (one that calls ``check(answer,``)
   gets a first comment line that gives nothing away (``SOLUTION_HEADER``).
2. **Citations.** The prose cites with ``{cite}`key` ``, which JupyterLab shows as the key. The
   tool (re)writes the chapter's last cell, a Markdown cell tagged ``remove-cell`` (so the book,
   which has its own bibliography, drops it), listing each cited key with its reference from
   ``book/references.bib``.

Idempotent: a second run changes nothing; cell ids, other metadata and outputs are kept; files
are written atomically and only when they change. ``--check`` changes nothing and exits 1 naming
every notebook that is not up to date (for a test).

    python book/tools/notebook_metadata.py chapters/*.ipynb          # update in place
    python book/tools/notebook_metadata.py --check chapters/*.ipynb  # exit 1 if any is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIB = ROOT / "book" / "references.bib"
FOLDED_TAGS = ("hide-input", "remove-input", "hide-cell")
REFERENCES_CELL_ID = "references-for-notebook-readers"
SOLUTION_HEADER = "# Solution: unfold this cell to compare it with yours\n"
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


class UnknownCitation(ValueError):
    """A {cite} role names a key that the bib file lacks."""


def fold_hidden_cells(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``nb`` where every cell tagged as folded in the book has
    ``metadata.jupyter.source_hidden = true``."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if any(tag in FOLDED_TAGS for tag in cell.get("metadata", {}).get("tags", [])):
            cell.setdefault("metadata", {}).setdefault("jupyter", {})["source_hidden"] = True
            if is_solution_cell(cell) and not _source(cell).startswith(SOLUTION_HEADER):
                cell["source"] = [SOLUTION_HEADER, *_lines(cell)]
    return nb


def is_solution_cell(cell: dict[str, Any]) -> bool:
    """A code cell that checks the reader's answer (``check(answer, ...)``)."""
    return cell["cell_type"] == "code" and bool(re.search(r"\bcheck\(\s*answer\b", _source(cell)))


def _lines(cell: dict[str, Any]) -> list[str]:
    src = cell.get("source", "")
    return list(src) if isinstance(src, list) else src.splitlines(keepends=True)


def cited_keys(nb: dict[str, Any]) -> list[str]:
    """The bibliography keys the notebook's Markdown cites, in order of first citation."""
    keys: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown" or cell.get("id") == REFERENCES_CELL_ID:
            continue
        for group in CITE_ROLE.findall(_source(cell)):
            for key in (k.strip() for k in group.split(",")):
                if key and key not in keys:
                    keys.append(key)
    return keys


def format_references(keys: list[str], bib_path: Path = BIB) -> dict[str, str]:
    """key -> one line of plain text (authors. title. venue, year.), from the bib file."""
    from pybtex.database import parse_file
    from pybtex.plugin import find_plugin

    bib = parse_file(str(bib_path))
    missing = [k for k in keys if k not in bib.entries]
    if missing:
        raise UnknownCitation(f"{bib_path}: no entry for {', '.join(missing)}; "
                              "add it there or fix the {cite} role")
    style = find_plugin("pybtex.style.formatting", "plain")()
    entries = style.format_entries(bib.entries[k] for k in keys)
    return {e.key: " ".join(e.text.render_as("text").split()) for e in entries}


def references_cell(keys: list[str], bib_path: Path = BIB) -> dict[str, Any]:
    """The Markdown cell that lists the cited references for notebook readers."""
    refs = format_references(keys, bib_path)
    lines = ["**References cited in this chapter** (the prose cites them by key; the book numbers "
             "them and links its bibliography):\n", "\n"]
    lines += [f"- `{key}`: {refs[key]}\n" for key in keys]
    lines[-1] = lines[-1].rstrip("\n")
    return {
        "cell_type": "markdown",
        "id": REFERENCES_CELL_ID,
        "metadata": {"tags": ["remove-cell"]},
        "source": lines,
    }


def with_references(nb: dict[str, Any], bib_path: Path = BIB) -> dict[str, Any]:
    """A copy of ``nb`` whose last cell is its up-to-date references cell (none if it cites
    nothing); an earlier references cell is dropped."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if c.get("id") != REFERENCES_CELL_ID]
    keys = cited_keys(nb)
    if keys:
        nb["cells"].append(references_cell(keys, bib_path))
    return nb


def updated(nb: dict[str, Any], bib_path: Path = BIB) -> dict[str, Any]:
    """``nb`` as this tool leaves it."""
    return with_references(fold_hidden_cells(nb), bib_path)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def notebook_text(nb: dict[str, Any]) -> str:
    """The notebook as nbformat writes it (indent 1, UTF-8, final newline)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook is not up to date")
    parser.add_argument("--bib", type=Path, default=BIB, help=f"default: {BIB}")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from optlab.atomic import write_text_atomically

    stale = []
    for path in args.notebooks:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read a notebook ({exc}); pass .ipynb files", file=sys.stderr)
            return 2
        try:
            new = updated(nb, args.bib)
        except UnknownCitation as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if new == nb:
            continue
        stale.append(path)
        if not args.check:
            write_text_atomically(path, notebook_text(new))
            print(f"updated {path}")
    if args.check and stale:
        print(f"not up to date: {', '.join(map(str, stale))}; run "
              f"python book/tools/notebook_metadata.py {' '.join(map(str, stale))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
