"""``python -m optlab compare`` end to end on synthetic data: files, schema, resume, errors."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import pytest

from optlab.__main__ import main

SMALL = ["--dataset", "synthetic", "--epochs", "2", "--quiet"]


def _run(args, capsys=None):
    try:
        return main(args)
    except SystemExit as e:  # the one-line errors
        return e.code


def test_compare_writes_results_json_and_csv(tmp_path):
    out = tmp_path / "r"
    rc = _run(["compare", *SMALL, "--seeds", "2", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    prov = doc["provenance"]
    for key in ("command", "date", "git_commit", "python", "torch", "numpy", "device",
                "device_name", "threads", "compile", "platform", "optlab", "dataset",
                "dataset_md5_ok"):
        assert key in prov, key
    assert prov["device"] == "cpu" and prov["dataset"] == "synthetic"
    assert doc["config"]["optimizers"] == ["sgd", "rmsprop", "adam", "adagrad"]
    assert doc["config"]["lr"] == {"*": 0.001} and doc["config"]["batch_size"] == 32
    runs = doc["runs"]
    assert len(runs) == 8 and {r["seed"] for r in runs} == {0, 1}
    for r in runs:
        assert r["status"] == "ok" and r["hparams"]["lr"] == 0.001
        assert [e["epoch"] for e in r["epochs"]] == [1, 2]
        for e in r["epochs"]:
            for k in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds"):
                assert math.isfinite(e[k]), k
    adam = [r for r in runs if r["optimizer"] == "adam"]
    assert adam[0]["epochs"][-1]["test_acc"] > 0.2  # it learns something in 2 short epochs
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16
    assert {"optimizer", "lr", "seed", "status", "epoch", "train_acc", "test_acc",
            "seconds"} <= set(rows[0])


def test_resume_after_interrupt_skips_finished_runs(tmp_path, monkeypatch):
    out = tmp_path / "r"
    args = ["compare", *SMALL, "--optimizers", "adam,sgd", "--seeds", "2", "--out", str(out)]
    monkeypatch.setenv("OPTLAB_INTERRUPT_AFTER_UNITS", "1")
    assert _run(args) == 130
    doc = json.loads((out / "results.json").read_text())
    assert {(r["seed"], r["status"]) for r in doc["runs"]} == {(0, "ok")}
    first = {r["optimizer"]: r["epochs"] for r in doc["runs"]}
    monkeypatch.delenv("OPTLAB_INTERRUPT_AFTER_UNITS")
    assert _run(args + ["--resume"]) == 0
    doc2 = json.loads((out / "results.json").read_text())
    assert sorted((r["seed"], r["optimizer"]) for r in doc2["runs"]) == [
        (0, "adam"), (0, "sgd"), (1, "adam"), (1, "sgd")]
    for r in doc2["runs"]:  # seed 0 kept verbatim (its seconds would differ if rerun)
        if r["seed"] == 0:
            assert r["epochs"] == first[r["optimizer"]]
    assert doc2["provenance"]["resumed_from"] == doc["provenance"]["date"]
    # a different configuration is refused, not mixed in
    rc = _run(["compare", *SMALL[:-3], "--epochs", "3", "--quiet", "--optimizers", "adam,sgd",
               "--seeds", "2", "--out", str(out), "--resume"])
    assert rc == 2


def test_diverged_run_is_labelled_and_not_plotted(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from optlab import plots

    out = tmp_path / "r"
    rc = _run(["compare", *SMALL, "--optimizers", "sgd,adam", "--lr", "sgd=1e6,adam=1e-3",
               "--seeds", "1", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    status = {r["optimizer"]: r["status"] for r in doc["runs"]}
    assert status == {"sgd": "diverged", "adam": "ok"}
    res = plots.load_results(out)
    sgd = res.curve("sgd")
    assert "diverged" in sgd.label and sgd.final("test_acc").size == 0
    ax = plots.final_accuracy(res)
    assert all(math.isfinite(p.get_height()) for p in ax.patches)
    axes = plots.accuracy_curves(res)
    for line in axes[0].lines:
        assert all(math.isfinite(v) for v in line.get_ydata())


def test_tuned_preset_records_the_selection(tmp_path):
    out = tmp_path / "t"
    rc = _run(["compare", "--preset", "tuned", "--dataset", "synthetic", "--optimizers",
               "sgd,adam", "--epochs", "1", "--seeds", "1", "--quiet", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    sel = doc["selection"]
    assert sel["train_size"] + sel["val_size"] == 2048
    assert len(sel["runs"]) == 30  # 2 optimizers x 5 learning rates x 3 selection seeds
    assert sel["seeds"] == [0, 1, 2] and sel["epochs"] == 1  # the full horizon: --epochs
    assert all("val_acc" in r["epochs"][-1] for r in sel["runs"])
    chosen = sel["chosen_lr"]
    for r in doc["runs"]:
        assert r["hparams"]["lr"] == chosen[r["optimizer"]]
        assert "val_acc" not in r["epochs"][-1]  # the final runs use the full training set


@pytest.mark.parametrize("args,fragment", [
    (["--optimizers", "adam,adamax"], "unknown optimizer 'adamax'"),
    (["--lr", "-0.1"], "--lr must be > 0"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr", "adam=fast"], "malformed --lr"),
    (["--lr", "lbfgs=1"], "--lr lbfgs=...: lbfgs is not among the optimizers"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--seeds", "x"], "argument --seeds: 'x': expected a count (3) or a comma list"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--preset", "fast"], "invalid choice: 'fast'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment, capsys):
    rc = _run(["compare", "--dataset", "synthetic", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "\n" not in err and "Traceback" not in err
    assert fragment in err, err


def test_cuda_without_gpu_exits_2(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    rc = _run(["compare", "--dataset", "synthetic", "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "no CUDA GPU" in err


def test_missing_data_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rc = _run(["compare", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"),
               "--epochs", "1", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err and err


def test_help_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "optlab", "compare", "--help"],
                         capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0
    for flag in ("--optimizers", "--lr", "--epochs", "--seeds", "--batch-size", "--dataset",
                 "--data-dir", "--device", "--out", "--resume", "--preset", "--threads",
                 "--no-compile", "--quiet"):
        assert flag in out.stdout, flag
    top = subprocess.run([sys.executable, "-m", "optlab", "--help"], capture_output=True,
                         text=True)
    assert top.returncode == 0 and "compare" in top.stdout and "data" in top.stdout


def test_console_script_exits_like_the_module(tmp_path):
    """The ``optlab`` script (pyproject's entry point) runs the same exit path as ``python -m
    optlab``: the status of the command, its output flushed, its files written."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    entry = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]["optlab"]
    module, func = entry.split(":")
    code = (f"import sys; sys.argv = ['optlab'] + sys.argv[1:]; "
            f"from {module} import {func}; {func}()")
    out = tmp_path / "out"
    ok = subprocess.run([sys.executable, "-c", code, "compare", "--dataset", "synthetic",
                         "--optimizers", "sgd", "--epochs", "1", "--seeds", "0,",
                         "--out", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stdout and (out / "results.json").exists()
    bad = subprocess.run([sys.executable, "-c", code, "compare", "--epochs", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    # a reader that stops early (`| head -1`): silence and status 0, not a traceback
    proc = subprocess.Popen([sys.executable, "-m", "optlab", "summary", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr is not None and proc.stderr.read() == b""


def test_unfinished_runs_are_not_counted_as_diverged(tmp_path):
    from optlab import plots

    out = tmp_path / "r"
    assert _run(["compare", *SMALL, "--optimizers", "adam", "--seeds", "1", "--out",
                 str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    running = json.loads(json.dumps(doc["runs"][0]))
    running.update(seed=7, status="running")
    doc["runs"].append(running)
    curve = plots.load_results(doc).curve("adam")
    assert curve.diverged_seeds == [] and "diverged" not in curve.label


def test_keras_conventions_are_applied_and_recorded(tmp_path):
    """--conventions keras: Keras 3's hyperparameters reach the rules, Glorot weights start the
    network, and both are recorded; --init overrides the initialization alone."""
    import torch

    from optlab import engine, mlp
    from optlab.data import synthetic_dataset

    runs = {}
    for conv, init in (("pytorch", None), ("keras", None), ("keras", "pytorch")):
        out = tmp_path / f"{conv}-{init}"
        args = ["compare", *SMALL, "--seeds", "1", "--no-compile", "--optimizers",
                "adagrad,adam", "--conventions", conv, "--out", str(out)]
        assert _run(args + (["--init", init] if init else [])) == 0
        doc = json.loads((out / "results.json").read_text())
        assert doc["config"]["conventions"] == conv
        assert doc["config"]["init"] == init or (init is None and doc["config"]["init"] == (
            "glorot" if conv == "keras" else "pytorch"))
        runs[conv, init] = {r["optimizer"]: r for r in doc["runs"]}
    keras = runs["keras", None]
    assert keras["adagrad"]["hparams"]["initial_accumulator_value"] == 0.1
    assert keras["adagrad"]["hparams"]["eps_inside_sqrt"] is True
    assert keras["adam"]["hparams"]["eps_hat"] is True and keras["adam"]["hparams"]["eps"] == 1e-7
    assert runs["pytorch", None]["adam"]["hparams"]["eps_hat"] is False

    def final_loss(r):
        return r["epochs"][-1]["train_loss"]

    # the same conventions from another init give other numbers; the init is the stack's
    assert final_loss(keras["adam"]) != final_loss(runs["keras", "pytorch"]["adam"])
    data = engine.prepare_data(synthetic_dataset(256, 64, seed=0))
    spec = engine.ModelSpec("sgd", {"lr": 1e-3}, 0, "glorot")
    with pytest.raises(ValueError, match="one init"):
        engine.train_stack([spec, engine.ModelSpec("sgd", {"lr": 1e-3}, 0)], data, epochs=1)
    assert torch.equal(mlp.init_flat(0, init="glorot"), mlp.init_flat(0, init="glorot"))


def test_paper_preset_without_conventions_runs_both(tmp_path, capsys):
    """--preset paper names no framework, so one call runs PyTorch's reading into OUT and
    Keras 3's into OUT-keras; a results file in the second that would be refused is refused
    before the first one trains, and a rerun refuses without losing either file."""
    out = tmp_path / "paper"
    args = ["compare", "--preset", "paper", "--dataset", "synthetic", "--quiet", "--epochs", "1",
            "--seeds", "1", "--no-compile", "--optimizers", "adagrad", "--out", str(out)]
    keras_json = tmp_path / "paper-keras" / "results.json"
    keras_json.parent.mkdir()
    keras_json.write_text("{not json")  # not a results file: refused, kept
    assert _run(args) == 2
    assert "paper-keras" in capsys.readouterr().err
    assert not (out / "results.json").exists()  # refused before the PyTorch half trained
    assert keras_json.read_text() == "{not json"
    keras_json.unlink()
    assert _run(args) == 0
    docs = {name: json.loads((path / "results.json").read_text())
            for name, path in (("pytorch", out), ("keras", keras_json.parent))}
    assert {n: d["config"]["conventions"] for n, d in docs.items()} == {
        "pytorch": "pytorch", "keras": "keras"}
    assert docs["keras"]["config"]["init"] == "glorot"
    assert docs["keras"]["runs"][0]["hparams"]["initial_accumulator_value"] == 0.1
    assert docs["pytorch"]["runs"][0]["hparams"]["initial_accumulator_value"] == 0.0
    before = {p: p.read_bytes() for p in (out / "results.json", keras_json)}
    assert _run(args) == 2  # finished results: a rerun needs --resume or --force
    assert "resume" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert _run(args + ["--resume"]) == 0  # nothing left to train; both files kept
    for path, doc in ((out, docs["pytorch"]), (keras_json.parent, docs["keras"])):
        assert json.loads((path / "results.json").read_text())["runs"] == doc["runs"]
    one = tmp_path / "one"  # --conventions names one reading: one directory
    assert _run([*args[:-1], str(one), "--conventions", "keras"]) == 0
    assert json.loads((one / "results.json").read_text())["config"]["conventions"] == "keras"
    assert not (tmp_path / "one-keras").exists()


def test_a_refused_run_moves_and_removes_nothing(tmp_path, capsys):
    """--force backs up OUT's file and clears its checkpoints only once the run is sure to start:
    not when the Keras half's directory, or the data, then refuses the command."""
    from optlab import compare

    out = tmp_path / "p"
    args = ["compare", "--preset", "paper", "--dataset", "synthetic", "--quiet", "--epochs", "1",
            "--seeds", "1", "--no-compile", "--optimizers", "adagrad", "--out", str(out)]
    assert _run(args) == 0
    keras = tmp_path / "p-keras"
    before = (out / "results.json").read_bytes()
    (out / ".checkpoint-final-seed7.pt").write_bytes(b"kept")  # stands for an unfinished stack
    for name in os.listdir(keras):
        (keras / name).unlink()
    keras.rmdir()
    keras.write_text("not a directory")
    assert _run(args + ["--force"]) == 2
    err = capsys.readouterr().err
    assert "p-keras (where the run under Keras 3's conventions goes, beside --out" in err
    assert (out / "results.json").read_bytes() == before
    assert (out / ".checkpoint-final-seed7.pt").exists() and not list(out.glob("*.bak*"))
    keras.unlink()
    mnist = [*args[:3], "--data-dir", str(tmp_path / "nowhere"), *args[5:], "--force"]
    assert _run(mnist) == 2
    assert "not found" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before and not list(out.glob("*.bak*"))
    with pytest.raises(compare.ConfigError, match="at least one"):
        compare.run_comparisons([])
    with pytest.raises(compare.ConfigError, match="give one of the two"):
        compare.run_all_conventions("paper", out, resume=True, force=True)


@pytest.mark.parametrize("args, fragment", [
    (["--conventions", "tf"], "invalid choice"),
    (["--init", "xavier"], "invalid choice"),
])
def test_bad_conventions_exit_2(args, fragment, capsys):
    assert _run(["compare", *SMALL, *args]) == 2
    assert fragment in capsys.readouterr().err


def test_generalization_preset_gives_each_rule_its_own_conventions(tmp_path):
    """--preset generalization: Lion's rate 10x below AdamW's and its decay 10x above (the same
    lr x weight_decay), recorded in every run's hparams; a subset of the rules keeps the preset's
    settings for the rules chosen."""
    out = tmp_path / "g"
    args = ["compare", "--preset", "generalization", "--dataset", "synthetic", "--epochs", "1",
            "--seeds", "1", "--no-compile", "--quiet", "--out", str(out)]
    assert _run(args) == 0
    doc = json.loads((out / "results.json").read_text())
    hp = {r["optimizer"]: r["hparams"] for r in doc["runs"]}
    assert list(hp) == ["momentum", "adam", "adamw", "amsgrad", "lion"]
    assert hp["lion"]["lr"] * 10 == pytest.approx(hp["adamw"]["lr"])
    assert hp["lion"]["weight_decay"] == pytest.approx(10 * hp["adamw"]["weight_decay"])
    assert hp["adam"]["weight_decay"] == 0.0 and hp["momentum"]["momentum"] == 0.9
    assert doc["config"]["hparams"] == {"adamw": {"weight_decay": 0.1},
                                        "lion": {"weight_decay": 1.0}}
    sub = tmp_path / "s"
    assert _run([*args[:-1], str(sub), "--optimizers", "adam,lion"]) == 0
    doc = json.loads((sub / "results.json").read_text())
    assert {r["optimizer"]: r["hparams"]["weight_decay"] for r in doc["runs"]} == {
        "adam": 0.0, "lion": 1.0}
    assert doc["config"]["lr"] == {"adam": 1e-3, "lion": 1e-4}


def test_results_of_presets_without_own_hparams_still_resume(tmp_path):
    from optlab import compare

    cfg = compare.make_config("paper", dataset="synthetic")
    assert "hparams" not in cfg.experiment()  # the config of files written before it existed


def test_init_preset_runs_every_seed_from_each_init(tmp_path):
    out = tmp_path / "i"
    rc = _run(["compare", "--preset", "init", "--dataset", "synthetic", "--epochs", "1",
               "--seeds", "0,1", "--quiet", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["inits"] == ["pytorch", "glorot", "he"]
    got = sorted((r["optimizer"], r["init"], r["seed"]) for r in doc["runs"])
    assert got == sorted((o, i, s) for o in ("sgd", "adam") for i in ("pytorch", "glorot", "he")
                         for s in (0, 1))
    assert all(r["hparams"]["lr"] == 1e-3 for r in doc["runs"])
    # the init changes the numbers: same optimizer and seed, three different first epochs
    sgd0 = {r["init"]: r["epochs"][0]["train_loss"] for r in doc["runs"]
            if r["optimizer"] == "sgd" and r["seed"] == 0}
    assert len(set(sgd0.values())) == 3
    assert not list(out.glob(".checkpoint-*"))
    # resume knows the runs apart by their init: nothing is retrained
    rc = _run(["compare", "--preset", "init", "--dataset", "synthetic", "--epochs", "1",
               "--seeds", "0,1", "--out", str(out), "--resume"])
    assert rc == 0
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 12


def test_tuned_selection_averages_seeds_at_the_full_horizon_and_records_the_short_pick(
        tmp_path):
    from optlab import compare

    cfg = compare.make_config("tuned", dataset="synthetic", optimizers=["sgd", "adam"],
                              epochs=2, seeds=[5], select_seeds=[0, 1], short_epochs=1)
    assert cfg.selection_epochs == 2
    doc = compare.run_comparison(cfg, tmp_path / "t", quiet=True)
    sel = doc["selection"]
    assert sel["seeds"] == [0, 1] and sel["epochs"] == 2
    assert sorted({r["seed"] for r in sel["runs"]}) == [0, 1]
    assert all(len(r["epochs"]) == 2 for r in sel["runs"] if r["status"] == "ok")
    for o, lr in sel["chosen_lr"].items():  # the pick is the best mean over the two seeds
        best = max(compare.mean_val_acc(sel["runs"], o, x, [0, 1], 2) or -1
                   for x in sel["grid"][o])
        assert compare.mean_val_acc(sel["runs"], o, lr, [0, 1], 2) == best
    short = sel["short_horizon"]
    assert short["epochs"] == 1
    assert short["chosen_lr"] == compare.pick_learning_rates(sel["runs"], sel["grid"], [0, 1], 1)
    assert short["chosen_lr_first_seed"] == compare.pick_learning_rates(
        sel["runs"], sel["grid"], [0], 1)
    assert {r["seed"] for r in doc["runs"]} == {5}
    assert all(r["hparams"]["lr"] == sel["chosen_lr"][r["optimizer"]] for r in doc["runs"])


def test_pick_learning_rates_disqualifies_a_rate_that_diverged_on_one_seed():
    from optlab.compare import pick_learning_rates

    def run(lr, seed, acc):
        return {"optimizer": "sgd", "seed": seed, "hparams": {"lr": lr},
                "epochs": [{"epoch": 1, "val_acc": acc}]}

    runs = [run(0.1, 0, 0.9), run(0.1, 1, 0.95), run(0.3, 0, 0.99), run(0.01, 0, 0.5),
            run(0.01, 1, 0.6)]  # 0.3 has no seed 1 (diverged)
    assert pick_learning_rates(runs, {"sgd": [0.01, 0.1, 0.3]}, [0, 1], 1) == {"sgd": 0.1}
    assert pick_learning_rates(runs, {"sgd": [0.01, 0.1, 0.3]}, [0], 1) == {"sgd": 0.3}


def test_schedule_warmup_and_clipping_are_applied_recorded_and_summarized(tmp_path):
    from optlab.summary import summarize

    args = ["compare", *SMALL, "--seeds", "0,", "--no-compile", "--optimizers", "sgd,adam"]
    plain, controlled = tmp_path / "plain", tmp_path / "controlled"
    assert _run([*args, "--out", str(plain)]) == 0
    assert _run([*args, "--out", str(controlled), "--schedule", "cosine:lr_min=1e-5",
                 "--warmup-steps", "20", "--clip-norm", "0.5"]) == 0
    doc = json.loads((controlled / "results.json").read_text())
    cfg = doc["config"]
    assert (cfg["schedule"], cfg["warmup_steps"], cfg["clip_norm"]) == (
        "cosine:lr_min=1e-5", 20, 0.5)
    steps = 2 * (2048 // 32)  # epochs x batches: the default total of a cosine
    by_name = {r["optimizer"]: r for r in doc["runs"]}
    for name, r in by_name.items():
        assert r["clip_norm"] == 0.5
        assert r["schedule"] == {"name": "linear_warmup", "steps": 20, "schedule": {
            "name": "cosine", "lr": r["hparams"]["lr"], "total": steps, "lr_min": 1e-5}}, name
    old = {r["optimizer"]: r for r in json.loads((plain / "results.json").read_text())["runs"]}
    for name in ("sgd", "adam"):
        assert "schedule" not in old[name] and "clip_norm" not in old[name]
        assert old[name]["epochs"][-1]["train_loss"] != by_name[name]["epochs"][-1]["train_loss"]
    text = summarize([str(controlled)])
    assert ("**Training controls**: learning-rate schedule: cosine (total 128, lr_min 1e-05) "
            "after a linear warmup of 20 updates") in text
    assert "gradients clipped to global norm 0.5 per model" in text
    assert "Training controls" not in summarize([str(plain)])


def _accuracies(doc):
    return [(r["optimizer"], r["seed"], [(e["train_loss"], e["train_acc"], e["test_acc"])
                                         for e in r["epochs"]]) for r in doc["runs"]]


def test_jobs_2_gives_the_runs_of_jobs_1_and_an_interrupt_keeps_finished_stacks(
        tmp_path, monkeypatch):
    """Seed stacks in parallel processes: the same numbers as one process (each seed's stack is
    deterministic), records in seed order, jobs in the provenance; a Ctrl-C after the first
    finished stack keeps it, and --resume completes the file to the same numbers."""
    common = ["compare", *SMALL, "--optimizers", "sgd,adam", "--seeds", "2", "--threads", "1",
              "--no-compile"]
    assert _run([*common, "--out", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    par = tmp_path / "par"
    monkeypatch.setenv("OPTLAB_INTERRUPT_AFTER_UNITS", "1")
    assert _run([*common, "--jobs", "2", "--out", str(par)]) == 130
    monkeypatch.delenv("OPTLAB_INTERRUPT_AFTER_UNITS")
    kept = json.loads((par / "results.json").read_text())
    assert len([r for r in kept["runs"] if r["status"] == "ok"]) >= 2  # a whole stack
    assert _run([*common, "--jobs", "2", "--resume", "--out", str(par)]) == 0
    assert _run([*common, "--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    for path in (par, tmp_path / "two"):
        doc = json.loads((path / "results.json").read_text())
        assert _accuracies(doc) == _accuracies(one)
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["provenance"]["jobs"] == 2 and one["provenance"]["jobs"] == 1
    assert "jobs" not in two["config"]  # how fast, not what: a resume may change it
    assert not list(par.glob(".checkpoint-*"))


def test_jobs_must_be_positive(tmp_path, capsys):
    assert _run(["compare", *SMALL, "--jobs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--jobs must be an integer >= 1" in capsys.readouterr().err
