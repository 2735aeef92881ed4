"""``python -m optlab summary``: Markdown tables generated from results.json files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from optlab.__main__ import main
from optlab.summary import summarize

SMALL = ["--dataset", "synthetic", "--epochs", "2", "--quiet"]  # as in test_cli.py


def _run(args):
    try:
        return main(args)
    except SystemExit as e:  # the one-line errors
        return e.code


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory):
    """sgd diverges (lr 1e6); rmsprop and adam train normally, two seeds each."""
    out = tmp_path_factory.mktemp("summary") / "paper"
    rc = _run(["compare", *SMALL, "--optimizers", "sgd,rmsprop,adam", "--lr",
               "sgd=1e6,rmsprop=1e-3,adam=1e-3", "--seeds", "2", "--out", str(out)])
    assert rc == 0
    return out


def _rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The cells of the table rows whose first cell starts with ``first_cell``."""
    out = []
    for line in markdown.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            pair = " − " in cells[0] and " − " not in first_cell  # a paired-difference row
            if cells[0].startswith(first_cell) and not pair:
                out.append(cells)
    return out


def test_one_row_per_optimizer_with_the_mean_of_the_file(paper_dir):
    doc = json.loads((paper_dir / "results.json").read_text())
    md = summarize([paper_dir])
    assert "## paper" in md and doc["provenance"]["command"] in md
    assert doc["provenance"]["git_commit"] in md and "load average at start" in md
    for opt in ("rmsprop", "adam"):
        finals = [r["epochs"][-1]["test_acc"] for r in doc["runs"] if r["optimizer"] == opt]
        assert len(finals) == 2
        rows = _rows(md, opt)
        assert len(rows) == 1, rows
        mean = sum(finals) / len(finals)
        half = sps.t.ppf(0.975, 1) * np.std(finals, ddof=1) / np.sqrt(2)  # 2 seeds: 1 dof
        expected = f"{mean:.4f} [{mean - half:.4f}, {mean + half:.4f}]"
        assert rows[0][1] == "0.001" and rows[0][2] == expected, rows[0]
        assert rows[0][3] == f"[{min(finals):.4f}, {max(finals):.4f}]", rows[0]
    assert "s/epoch of the stack (median)" in md and "95 % t-interval" in md


def test_diverged_run_is_labelled_and_left_out(paper_dir):
    md = summarize([paper_dir / "results.json"])
    (row,) = _rows(md, "sgd")
    assert row[0] == "sgd (2/2 diverged)" and row[2] == "—", row
    assert "2 diverged" in md


def test_running_run_is_reported_as_unfinished(paper_dir, tmp_path):
    doc = json.loads((paper_dir / "results.json").read_text())
    adam_finals = [r["epochs"][-1]["test_acc"] for r in doc["runs"]
                   if r["optimizer"] == "adam" and r["seed"] == 0]
    for r in doc["runs"]:
        if r["optimizer"] == "adam" and r["seed"] == 1:
            r["status"] = "running"
            r["epochs"] = r["epochs"][:1]
    doc["provenance"].pop("finished", None)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    md = summarize([path])
    (row,) = _rows(md, "adam")
    assert row[0] == "adam (1/2 unfinished)", row
    assert row[2] == f"{adam_finals[0]:.4f} (1 seed)"  # the running seed is left out
    assert "**Unfinished**: 1 run(s) still running" in md
    assert "wall time not recorded" in md


def test_out_writes_the_file_atomically(paper_dir, tmp_path, capsys):
    out = tmp_path / "SUMMARY.md"
    assert _run(["summary", str(paper_dir), "--out", str(out)]) == 0
    assert out.read_text() == summarize([paper_dir])
    assert [p.name for p in tmp_path.iterdir()] == ["SUMMARY.md"]  # no temporary file left
    capsys.readouterr()
    assert _run(["summary", str(paper_dir)]) == 0  # without --out: printed
    assert capsys.readouterr().out == out.read_text()


@pytest.mark.parametrize("make_path,fragment", [
    (lambda d: d / "missing", "no such file or directory"),
    (lambda d: d, "no results.json in"),
    (lambda d: d / "bad.json", "not a results.json"),
    (lambda d: d / "v2.json", "it is schema version 2; this optlab reads version 1"),
])
def test_bad_path_exits_2_with_one_line(tmp_path, capsys, make_path, fragment):
    (tmp_path / "bad.json").write_text('{"a": 1}')
    (tmp_path / "v2.json").write_text('{"schema_version": 2, "runs": []}')
    rc = _run(["summary", str(make_path(tmp_path))])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err
    assert fragment in err, err


def test_tuned_and_lbfgs_sections(tmp_path):
    tuned, lbfgs = tmp_path / "t", tmp_path / "l"
    assert _run(["compare", "--preset", "tuned", "--dataset", "synthetic", "--optimizers",
                 "sgd,adam", "--epochs", "1", "--seeds", "1", "--quiet", "--out",
                 str(tuned)]) == 0
    assert _run(["compare", "--preset", "lbfgs", "--dataset", "synthetic", "--epochs", "1",
                 "--seeds", "1", "--quiet", "--out", str(lbfgs)]) == 0
    md = summarize([tuned, lbfgs])
    assert md.index("## tuned") < md.index("## lbfgs")
    tdoc = json.loads((tuned / "results.json").read_text())
    chosen = tdoc["selection"]["chosen_lr"]
    assert "chosen lr (val acc after" in md
    for opt, lr in chosen.items():
        assert f"{opt}={lr:g}" in md
        (grid_row,) = [r for r in _rows(md, opt) if len(r) == 2]  # the validation grid
        assert grid_row[1].count(":") == 5 and f"**{lr:g}: " in grid_row[1]
    ldoc = json.loads((lbfgs / "results.json").read_text())
    adam_rows = _rows(md, "adam (batch 32")
    assert len(adam_rows) == 1
    assert adam_rows[0][2] == f"{ldoc['budgets']['example_gradients'] // 32}"
    for variant in ("full-batch", "batch-6000"):
        rows = _rows(md, f"lbfgs {variant}")
        assert [r[1] for r in rows] == ["gradients", "time"]
        run = next(r for r in ldoc["runs"] if r.get("variant") == variant)
        at_time = next(e for e in run["epochs"] if "time" in e.get("budget", ""))
        assert rows[1][5].startswith(f"{at_time['test_acc']:.4f} ")


def test_paired_differences_and_their_verdicts(paper_dir):
    doc = json.loads((paper_dir / "results.json").read_text())
    final = {(r["optimizer"], r["seed"]): r["epochs"][-1]["test_acc"] for r in doc["runs"]}
    md = summarize([paper_dir])
    best = max(("rmsprop", "adam"), key=lambda o: final[o, 0] + final[o, 1])
    other = "adam" if best == "rmsprop" else "rmsprop"
    (row,) = _rows(md, f"{best} − {other}")
    d = [100 * (final[best, s] - final[other, s]) for s in (0, 1)]
    assert row[1].startswith(f"{np.mean(d):+.2f} ["), row
    assert row[2] == "0, 1" and row[3].startswith(("**resolved**", "**unresolved**"))
    assert not _rows(md, f"{best} − sgd")  # sgd diverged on every seed: no pair to make
    assert "binomial standard error" in md


def test_the_same_file_named_twice_is_one_section(paper_dir):
    """A folder and its results.json (or one path twice) are the same results: one section."""
    folder = paper_dir
    once = summarize([folder])
    twice = summarize([folder, folder / "results.json", str(folder)])
    assert twice == once
    assert once.count("## ") == 1
