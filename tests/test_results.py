"""optlab.results: the schema, its one writer and one reader, and what "finished", "diverged" and
"the mean over seeds" mean."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from optlab import results as R
from optlab.engine import EpochMetrics, ModelSpec, RunResult
from optlab.stats import binomial_se

REPO = Path(__file__).resolve().parents[1]


def _epoch(epoch: int, acc: float, loss: float = 0.3) -> EpochMetrics:
    return EpochMetrics(epoch=epoch, train_loss=loss, train_acc=acc, test_loss=loss,
                        test_acc=acc, seconds=0.5)


def _result(opt: str, seed: int, accs: list[float], status: str = "ok", lr: float = 1e-3
            ) -> RunResult:
    return RunResult(ModelSpec(opt, {"lr": lr}, seed), status,
                     [_epoch(i + 1, a) for i, a in enumerate(accs)])


def _doc(final: dict[tuple[str, int], float], **config) -> dict:
    """A document as compare builds it: one run per (optimizer, seed), two epochs each."""
    doc = R.new_doc({"preset": "paper", "dataset": "mnist", **config})
    for (opt, seed), acc in final.items():
        doc["runs"].append(R.run_record(_result(opt, seed, [acc / 2, acc]), "final", 1))
    return doc


def _diverge(doc: dict, opt: str, seed: int, how: str = "status") -> dict:
    for r in doc["runs"]:
        if r["optimizer"] == opt and r["seed"] == seed:
            if how == "status":
                r["status"] = "diverged"
            elif how == "nan":
                r["epochs"][-1]["train_loss"] = None  # a NaN, as the engine writes it
            elif how == "inf":
                r["epochs"][-1]["test_loss"] = 1e308
            elif how == "running":
                r["status"] = "running"
    return doc


# --------------------------------------------------------------------------------------------
# The writer and the reader
# --------------------------------------------------------------------------------------------


def test_round_trip_writer_to_typed_reader(tmp_path):
    doc = _doc({("adam", 0): 0.97, ("adam", 1): 0.96, ("sgd", 0): 0.8, ("sgd", 1): 0.82},
               schedule={"name": "cosine", "total": 3000}, clip_norm=1.0)
    doc["runs"][0]["schedule"] = {"name": "cosine"}  # a key a later writer adds to a run
    path = R.write_results(doc, tmp_path)
    text = path.read_text()
    assert json.loads(text)["schema_version"] == R.SCHEMA_VERSION
    assert text.index('"schema_version"') < text.index('"runs"')
    res = R.load_results(tmp_path)  # the directory, as compare's --out
    assert res.schema_version == R.SCHEMA_VERSION and res.source == str(path)
    assert res.config["schedule"] == {"name": "cosine", "total": 3000}  # unknown keys kept
    assert res.config["clip_norm"] == 1.0
    assert [(r.optimizer, r.seed, r.lr, r.status, r.phase, r.outcome) for r in res.runs] == [
        ("adam", 0, 1e-3, "ok", "final", "finished"), ("adam", 1, 1e-3, "ok", "final", "finished"),
        ("sgd", 0, 1e-3, "ok", "final", "finished"), ("sgd", 1, 1e-3, "ok", "final", "finished")]
    assert [e.test_acc for e in res.runs[1].epochs] == [0.48, 0.96]
    assert res.runs[0].final("test_acc") == 0.97 and res.runs[0].epochs[-1].epoch == 2
    assert res.runs[0].extra["schedule"] == {"name": "cosine"} and res.runs[0].extra["threads"] == 1
    assert res.runs[0].key == R.run_key(doc["runs"][0])
    assert R.load_results(path) == res  # the file and its directory read the same
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 8 and rows[1]["test_acc"] == "0.97" and rows[1]["optimizer"] == "adam"


def test_the_dict_reader_and_the_typed_reader_agree(tmp_path):
    doc = _doc({("adam", 0): 0.9})
    R.write_results(doc, tmp_path)
    checked = R.read_results_doc(tmp_path / "results.json")
    assert R.parse_results(checked).runs == R.load_results(tmp_path).runs
    assert list(R.finished_runs(checked)) == [R.run_key(doc["runs"][0])]


@pytest.mark.parametrize("preset", ["paper", "paper-keras", "tuned", "lbfgs", "tuned-full",
                                    "init"])
def test_every_committed_file_reads_as_version_1(preset):
    path = REPO / "results" / preset / "results.json"
    raw = json.loads(path.read_text())
    assert raw.get("schema_version", 1) == 1  # a file written before the field existed is 1
    res = R.load_results(path)
    assert res.schema_version == 1 and res.finished
    assert len(res.runs) == len(raw["runs"]) and all(r.outcome == "finished" for r in res.runs)
    assert len(res.selection_runs) == len((raw.get("selection") or {}).get("runs", []))


@pytest.mark.parametrize("text,fragment", [
    ("[]", "holds list, not an object"),
    ("null", "holds null, not an object"),
    ("", "is empty"),
    ('{"config": {}}', "no list of 'runs'"),
    ('{"runs": [{"optimizer": "adam", "hparams": {}, "status": "ok", "epochs": []}]}',
     "runs[0] has no integer 'seed'"),
    ('{"runs": [{"seed": 0, "hparams": {}, "status": "ok", "epochs": []}]}',
     "runs[0] has no str 'optimizer'"),
    ('{"runs": [{"optimizer": "a", "seed": 0, "hparams": {}, "status": "ok", "epochs": [],'
     ' "variant": 3}]}', "'variant' that is neither a string nor null"),
    ('{"schema_version": 2, "runs": []}', "it is schema version 2; this optlab reads version 1"),
    ('{"schema_version": "1", "runs": []}', "'schema_version' is '1', not an integer"),
    ('{"runs": [{"optimizer": "adam", "hparams": {"lr": 0.1}, "seed": 0, "status": "ok", '
     '"epochs": [{"epoch": 1, "test_acc": NaN}]}]}', "holds NaN"),
    ('{"runs": [], "provenance": [1]}', "'provenance' is not an object"),
])
def test_a_malformed_file_is_one_line_naming_the_file_and_the_problem(tmp_path, text,
                                                                       fragment):
    path = tmp_path / "results.json"
    path.write_text(text)
    for read in (R.load_results, R.read_results_doc):
        with pytest.raises(R.ResultsFormatError) as err:
            read(path)
        msg = str(err.value)
        assert fragment in msg and str(path) in msg and "\n" not in msg, msg


def test_a_missing_path_or_directory_without_a_file_is_one_line(tmp_path):
    with pytest.raises(R.ResultsFormatError, match="no results.json in"):
        R.load_results(tmp_path)
    with pytest.raises(R.ResultsFormatError, match="no such file or directory"):
        R.load_results(tmp_path / "nope.json")


def test_a_parsed_document_is_checked_too():
    with pytest.raises(R.ResultsFormatError, match="no list of 'runs'"):
        R.load_results({"config": {}})


def test_compare_writes_the_schema_version(tmp_path):
    from optlab.__main__ import main

    out = tmp_path / "c"
    assert main(["compare", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1",
                 "--optimizers", "adam", "--quiet", "--out", str(out)]) == 0
    raw = json.loads((out / "results.json").read_text())
    assert raw["schema_version"] == R.SCHEMA_VERSION
    res = R.load_results(out)
    assert [(r.optimizer, r.seed, r.outcome) for r in res.runs] == [("adam", 0, "finished")]
    assert res.finished and res.config["dataset"] == "synthetic"
    assert R.images_measured(res) == res.config["synthetic_size"][1]


# --------------------------------------------------------------------------------------------
# finished, diverged, unfinished
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how,outcome", [
    ("status", "diverged"),   # the engine marked it
    ("nan", "diverged"),      # ok, but a NaN loss at the end (written as null)
    ("inf", "diverged"),      # ok, but an infinite loss at the end (written as 1e308)
    ("running", "unfinished"),
])
def test_one_definition_of_diverged_and_unfinished(how, outcome):
    res = R.parse_results(_diverge(_doc({("adam", 0): 0.9, ("adam", 1): 0.91}), "adam", 1, how))
    run = res.runs[1]
    assert run.outcome == outcome and res.runs[0].outcome == "finished"
    assert run.diverged is (outcome == "diverged") and R.is_diverged(run) is run.diverged
    assert run.finished is (outcome == "diverged")


def test_a_metric_not_measured_is_none_not_a_divergence():
    res = R.parse_results(_doc({("adam", 0): 0.9}))
    e = res.runs[0].epochs[-1]
    assert e.val_acc is None and e.finite and res.runs[0].outcome == "finished"


# --------------------------------------------------------------------------------------------
# The mean over seeds and comparisons
# --------------------------------------------------------------------------------------------


def test_mean_over_seeds_reports_a_diverged_seed_and_never_averages_nan():
    doc = _diverge(_doc({("sgd", 0): 0.80, ("sgd", 1): 0.99, ("sgd", 2): 0.84}), "sgd", 1)
    m = R.mean_over_seeds(doc, "sgd")
    assert m.values == {0: 0.80, 2: 0.84} and m.diverged_seeds == (1,)
    assert m.mean == pytest.approx(0.82) and math.isfinite(m.interval.low)
    assert m.n_seeds == 3 and "1 of 3 seeds diverged (seed 1), left out" in str(m)
    with pytest.raises(R.DivergedSeedsError, match="sgd diverged on seed 1 of 3"):
        R.mean_over_seeds(doc, "sgd", diverged="raise")
    with pytest.raises(ValueError, match="diverged must be"):
        R.mean_over_seeds(doc, "sgd", diverged="drop")


def test_mean_over_seeds_is_the_t_interval_of_the_finished_seeds():
    vals = {0: 0.971, 1: 0.975, 2: 0.969}
    m = R.mean_over_seeds(_doc({("adam", s): v for s, v in vals.items()}), "adam")
    half = 4.302652729911275 * np.std(list(vals.values()), ddof=1) / math.sqrt(3)
    assert (m.interval.low, m.interval.high) == pytest.approx(
        (np.mean(list(vals.values())) - half, np.mean(list(vals.values())) + half))
    assert "95 % t-interval, n = 3" in str(m) and m.note() == ""


def test_an_all_diverged_setting_has_no_mean_but_says_why():
    doc = _doc({("sgd", 0): 0.8, ("sgd", 1): 0.8})
    for s in (0, 1):
        _diverge(doc, "sgd", s)
    m = R.mean_over_seeds(doc, "sgd")
    assert m.interval is None and math.isnan(m.mean)
    assert str(m).startswith("sgd test_acc: no finished seed; 2 of 2 seeds diverged")


def test_a_name_that_matches_several_settings_lists_the_choices():
    doc = _doc({("adam", 0): 0.9})
    doc["runs"].append(R.run_record(_result("adam", 0, [0.5, 0.95], lr=1e-2), "final", 1))
    with pytest.raises(KeyError, match=r"2 settings named 'adam'; choose one of .*lr 0.01"):
        R.mean_over_seeds(doc, "adam")
    assert R.mean_over_seeds(doc, R.Setting("adam", None, 1e-2)).values == {0: 0.95}
    with pytest.raises(KeyError, match="no setting named 'lion'"):
        R.mean_over_seeds(doc, "lion")


def test_compare_final_is_paired_per_seed_and_leaves_a_diverged_seed_out():
    a = {0: 0.975, 1: 0.972, 2: 0.50, 3: 0.978}
    b = {0: 0.905, 1: 0.900, 2: 0.90, 3: 0.910}
    doc = _doc({**{("adam", s): v for s, v in a.items()}, **{("adagrad", s): v
                                                             for s, v in b.items()}})
    _diverge(doc, "adam", 2)
    c = R.compare_final(doc, "adam", "adagrad")
    diffs = [a[s] - b[s] for s in (0, 1, 3)]
    assert c.seeds == (0, 1, 3) and c.left_out == (2,)
    assert c.diff.mean == pytest.approx(np.mean(diffs)) and c.diff.n == 3
    assert c.verdict == "resolved" and c.n_images == 10_000
    p = (sum(a[s] for s in (0, 1, 3)) + sum(b[s] for s in (0, 1, 3))) / 6
    assert c.binomial_se == pytest.approx(binomial_se(p, 10_000))
    assert "t-interval" in str(c) and "seeds 2 left out" in str(c)


def test_a_consistent_difference_inside_the_noise_of_one_test_set_is_unresolved():
    # every seed 0.05 points apart: the paired interval excludes 0, yet 2 binomial SEs of one
    # accuracy on 10,000 images (~0.3 points) are far larger
    a = {0: 0.9700, 1: 0.9720, 2: 0.9690}
    doc = _doc({**{("adam", s): v for s, v in a.items()},
                **{("rmsprop", s): v - 0.0005 + 1e-5 * s for s, v in a.items()}})
    c = R.compare_final(doc, "adam", "rmsprop")
    assert c.diff.excludes(0.0)
    assert c.verdict == "unresolved" and "within 2 binomial standard errors" in c.reason


def test_an_interval_that_contains_zero_is_unresolved():
    doc = _doc({("adam", 0): 0.97, ("adam", 1): 0.96, ("adam", 2): 0.98,
                ("rmsprop", 0): 0.975, ("rmsprop", 1): 0.955, ("rmsprop", 2): 0.97})
    c = R.compare_final(doc, "adam", "rmsprop")
    assert c.verdict == "unresolved" and c.reason == "the interval contains 0"


def test_settings_without_a_shared_finished_seed_cannot_be_compared():
    doc = _diverge(_doc({("adam", 0): 0.97, ("sgd", 0): 0.9}), "sgd", 0)
    with pytest.raises(ValueError, match="share no finished, non-diverged seed"):
        R.compare_final(doc, "adam", "sgd")


def test_training_seconds_of_a_stack_run_and_of_an_lbfgs_run():
    res = R.load_results(REPO / "results" / "lbfgs")
    adam = next(r for r in res.runs if r.optimizer == "adam")
    lbfgs = next(r for r in res.runs if r.optimizer == "lbfgs")
    assert adam.train_seconds == pytest.approx(sum(e.seconds for e in adam.epochs))
    # L-BFGS records cumulative seconds: its time is the recorded total, not their sum
    assert lbfgs.train_seconds == lbfgs.extra["train_seconds"]
    assert lbfgs.train_seconds == pytest.approx(lbfgs.epochs[-1].seconds, abs=1e-2)
    assert lbfgs.train_seconds < sum(e.seconds for e in lbfgs.epochs) / 2


def test_compare_means_takes_values_other_than_the_last_epoch():
    # e.g. each run's accuracy where it crossed a budget (chapter 11)
    a = R.SeedMean(R.Setting("adam"), "test_acc", {0: 0.977, 1: 0.976, 2: 0.978})
    b = R.SeedMean(R.Setting("lbfgs", "batch-6000"), "test_acc", {0: 0.92, 1: 0.90, 2: 0.94})
    c = R.compare_means(a, b, n_images=10_000)
    assert c.seeds == (0, 1, 2) and c.diff.mean == pytest.approx(0.977 - 0.92)
    assert c.verdict == "resolved"
    text = c.brief()
    assert text.startswith("+5.70 points (95 % t-interval +") and text.endswith(": resolved")
    assert "over 3 paired seeds" in text
    one = R.compare_means(R.SeedMean(R.Setting("a"), "test_acc", {0: 0.9}),
                          R.SeedMean(R.Setting("b"), "test_acc", {0: 0.5}), 10_000)
    assert one.verdict == "unresolved" and "one paired seed, no interval" in one.brief()


def test_the_committed_summary_is_generated_from_the_committed_files(monkeypatch):
    from optlab.summary import summarize

    names = ["results/paper", "results/paper-keras", "results/tuned", "results/lbfgs",
             "results/init", "results/tuned-full"]
    committed = (REPO / "results" / "SUMMARY.md").read_text()
    if not all((REPO / n / "results.json").is_file() for n in names):
        pytest.skip("a committed results file is missing")
    monkeypatch.chdir(REPO)  # SUMMARY.md names the files by their paths from the repository root
    generated = summarize(names)
    assert generated == committed, (
        "results/SUMMARY.md is out of date: regenerate it with python -m optlab summary "
        + " ".join(names) + " --out results/SUMMARY.md")
