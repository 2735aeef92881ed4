"""``python -m optlab compare`` under interruption, concurrency and bad input (issue 10):
nothing finished is lost, nothing is silently wrong, every bad input is one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optlab import compare
from optlab.__main__ import main

SMALL = ["--dataset", "synthetic", "--no-compile", "--quiet"]
SRC = str(Path(__file__).resolve().parents[1] / "src")
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc")


def _run(args):
    try:
        return main(args)
    except SystemExit as e:
        return e.code


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(extra)
    return env


def _spawn(args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "optlab", *args], env=_env(),
                            stdout=popen.pop("stdout", subprocess.PIPE),
                            stderr=subprocess.PIPE, text=True, **popen)


def _doc(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _numbers(doc: dict, finished_only: bool = True) -> dict[str, list]:
    """{run key: per-epoch metrics} (times left out: they differ between runs)."""
    from optlab.results import FINISHED, run_key

    return {run_key(r): [{k: e.get(k) for k in METRICS} for e in r["epochs"]]
            for r in doc["runs"] if not finished_only or r["status"] in FINISHED}


# --------------------------------------------------------------------------------------------
# 1. A finished run is never removed from disk by a later command
# --------------------------------------------------------------------------------------------


def test_sigterm_during_resume_keeps_the_finished_runs(tmp_path):
    """The issue's reproduction: seed 0 finished, then a --resume stopped early (here: during
    its imports and data loading) used to leave a file with 0 runs."""
    out = tmp_path / "r"
    args = ["compare", *SMALL, "--optimizers", "adam,sgd", "--epochs", "2", "--seeds", "3",
            "--out", str(out)]
    os.environ["OPTLAB_INTERRUPT_AFTER_UNITS"] = "1"
    try:
        assert _run(args) == 130
    finally:
        del os.environ["OPTLAB_INTERRUPT_AFTER_UNITS"]
    before = _numbers(_doc(out))
    assert len(before) == 2
    for moment in ("import", "run"):  # while importing torch, then (likely) while training
        p = _spawn([*args, "--resume"])
        if moment == "import":
            _wait_until_mapped(p.pid, "libtorch")
        else:
            p.stdout.readline()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode in (143, 0), err  # 0: it finished first
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
        after = _numbers(_doc(out))
        assert {k: after[k] for k in before} == before


def test_rerun_into_a_directory_with_results_refuses_unless_forced(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["compare", *SMALL, "--optimizers", "adam", "--epochs", "1", "--seeds", "1",
            "--out", str(out)]
    assert _run(base) == 0
    first = (out / "results.json").read_text()
    capsys.readouterr()
    assert _run(base) == 2  # same configuration, no --resume
    assert "already holds 1 finished run" in _one_line_error(capsys)
    assert _run([*base[:-2], "--lr", "0.01", "--out", str(out)]) == 2  # another configuration
    err = _one_line_error(capsys)
    assert "another configuration (differs in: lr)" in err and "--force" in err
    assert (out / "results.json").read_text() == first
    assert _run([*base[:-2], "--lr", "0.01", "--out", str(out), "--force"]) == 0
    assert (out / "results.json.bak").read_text() == first
    assert (out / "results.csv.bak").exists()  # the old table went with its file
    assert _doc(out)["runs"][0]["hparams"]["lr"] == 0.01
    assert _run([*base, "--resume", "--force"]) == 2
    assert "give one of the two" in _one_line_error(capsys)


def test_a_second_force_keeps_the_first_backup(tmp_path, capsys):
    """Each --force keeps the file it replaces: a second one used to overwrite
    results.json.bak, losing the runs the first one had kept."""
    out = tmp_path / "r"
    base = ["compare", *SMALL, "--optimizers", "adam", "--epochs", "1", "--seeds", "1",
            "--out", str(out)]
    texts = []
    for lr in ("0.001", "0.01", "0.1"):
        assert _run([*base, "--lr", lr, "--force"]) == 0
        texts.append((out / "results.json").read_text())
    assert (out / "results.json.bak").read_text() == texts[0]
    assert (out / "results.json.bak2").read_text() == texts[1]
    assert _doc(out)["runs"][0]["hparams"]["lr"] == 0.1


def test_the_results_file_refuses_to_drop_a_finished_run(tmp_path):
    """The guard under every save: whatever the run loop does, a write that would lose a
    finished run of the file on disk is refused and the file is left as it was."""
    out = tmp_path / "r"
    args = ["compare", *SMALL, "--optimizers", "adam,sgd", "--epochs", "1", "--seeds", "1",
            "--out", str(out)]
    assert _run(args) == 0
    before = (out / "results.json").read_text()
    cfg = compare.make_config(None, optimizers=["adam", "sgd"], epochs=1, seeds=[0],
                              dataset="synthetic", compile=False)
    d = compare.OutputDir(out)
    try:
        res = compare.ResultsFile(d, cfg, resume=True)
        assert len(res.doc["runs"]) == 2
        res.doc["runs"].pop()
        with pytest.raises(RuntimeError, match="1 finished run"):
            res.save()
    finally:
        d.release()
    assert (out / "results.json").read_text() == before


# --------------------------------------------------------------------------------------------
# 2. One writer per --out
# --------------------------------------------------------------------------------------------


_HOLDER = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.truncate(0); f.write(f"{os.getpid()}\\n"); f.flush()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_run_names_the_holder_and_a_dead_holder_does_not_block(tmp_path, capsys):
    """Another process holds OUT/.lock as a running compare does (flock + its PID): the run
    fails in one line naming that PID; once the holder is dead (killed: no cleanup), the
    lock file it left does not block."""
    pytest.importorskip("fcntl")
    out = tmp_path / "r"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["compare", *SMALL, "--optimizers", "adam", "--epochs", "1", "--seeds", "1",
                "--out", str(out)]
        assert _run(args) == 2
        assert f"in use by another compare run (PID {holder.pid})" in _one_line_error(capsys)
        assert not (out / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".lock").read_text().strip() == str(holder.pid)  # stale, left behind
    assert _run(args) == 0
    assert (out / ".lock").read_text().strip() == str(os.getpid())


# --------------------------------------------------------------------------------------------
# 3. Checkpoints: --resume continues a stack after its last epoch, to the same numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("controls", [
    [],  # and a schedule whose rate changes inside epochs, a warmup and clipping:
    ["--schedule", "step:every=50,gamma=0.5", "--warmup-steps", "30", "--clip-norm", "0.5"],
])
def test_resume_continues_a_stack_from_its_checkpoint_bit_for_bit(tmp_path, monkeypatch,
                                                                   capsys, controls):
    common = [*SMALL[:-1], "--optimizers", "adam,sgd,rmsprop", "--lr", "sgd=1e4",
              "--epochs", "3", "--seeds", "0,1", *controls]
    ref = tmp_path / "ref"
    assert _run(["compare", *common, "--quiet", "--out", str(ref)]) == 0
    out = tmp_path / "r"
    monkeypatch.setenv("OPTLAB_INTERRUPT_AFTER_EPOCHS", "5")  # seed 1 after its 2nd epoch
    assert _run(["compare", *common, "--quiet", "--out", str(out)]) == 130
    assert (out / ".checkpoint-final-seed1.pt").exists()
    assert not (out / ".checkpoint-final-seed0.pt").exists()  # removed when seed 0 finished
    doc = _doc(out)
    running = [r for r in doc["runs"] if r["seed"] == 1 and r["status"] == "running"]
    assert running and all(len(r["epochs"]) == 2 for r in running)
    monkeypatch.delenv("OPTLAB_INTERRUPT_AFTER_EPOCHS")
    capsys.readouterr()
    assert _run(["compare", *common, "--out", str(out), "--resume"]) == 0
    log = capsys.readouterr().out
    assert "final seed 1 continues after epoch 2" in log
    assert "seed 1 epoch 1/3" not in log and "seed 1 epoch 3/3" in log
    assert _numbers(_doc(out)) == _numbers(_doc(ref))
    statuses = sorted((r["optimizer"], r["status"]) for r in _doc(out)["runs"])
    if not controls:  # sgd at 1e4 diverged, kept as diverged (clipped, it stays finite)
        assert statuses.count(("sgd", "diverged")) == 2
    assert not list(out.glob(".checkpoint-*"))


# --------------------------------------------------------------------------------------------
# 4, 6, 7. Options applied or refused in one line, before any expensive work
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,fragment", [
    (["--preset", "tuned", "--lr", "0.5"], "the tuned preset picks every learning rate"),
    (["--lr", "0.1", "--lr", "0.2"], "--lr sets the rate for all twice (0.1 and 0.2)"),
    (["--lr", "adam=1e-3,adam=1e-2"], "sets adam twice"),
    (["--seeds", "1,1"], "seed 1 given twice"),
    (["--lr", "1e-320"], "is 0 in float32"),
    (["--lr", "adam=1e39", "--optimizers", "adam"], "is inf in float32"),
    (["--optimizers", "lbfgs", "--batch-size", "100000"], "exceeds the 2,048 training images"),
    (["--batch-size", "5000"], "--batch-size 5000 exceeds the 2,048 training images"),
    (["--preset", "tuned", "--batch-size", "2000"], "less the validation split"),
    (["--seeds", "99999999999999999999,"], "seed 99999999999999999999 is out of range"),
    (["--seeds", "99999999999999999999"], "at most 10000 seeds"),
    (["--seeds", "0"], "argument --seeds: a count of seeds must be >= 1; got 0; for the seed 0 "
                       "alone give the list 0,"),
    (["--select-seeds", "0"], "argument --select-seeds: a count of seeds"),
    (["--seeds=-1,"], "seed -1 is out of range"),
    (["--out", ""], "--out is empty"),
    (["--schedule", "cosine:total=-1"], "schedule 'cosine:total=-1': cosine: total must be a "
                                        "finite number > 0; got -1 (or leave total out"),
    (["--schedule", "nope"], "unknown schedule 'nope'; choose one of constant, step, cosine"),
    (["--schedule", "step"], "schedule step needs every (e.g. step:every=...)"),
    (["--schedule", "cosine:warm=3"], "expected key=value with key in lr_min, total"),
    (["--schedule", " "], "schedule is empty"),
    (["--clip-norm", "0"], "--clip-norm: must be a finite number > 0"),
    (["--clip-norm", "nan"], "--clip-norm: must be a finite number > 0"),
    (["--clip-norm", "big"], "--clip-norm: expected a number"),
    (["--warmup-steps=-1"], "--warmup-steps: must be >= 0"),
    # used to end in an OverflowError traceback from the compiled step's rate table
    (["--epochs", "99999999999999999999"], "past the 2**53 a step counter holds"),  # ran on
    (["--warmup-steps=999999999999999999999"], "--warmup-steps must be at most 2**53"),
    (["--schedule", "step:every=1e400"], "every must be a finite number > 0; got inf"),
    # used to be accepted, recorded in the results' config and never applied
    (["--select-epochs", "2"], "--select-epochs sets the grid search of --preset tuned"),
    (["--preset", "schedules", "--select-seeds", "2"], "--select-seeds sets the grid search"),
    (["--optimizers", "lbfgs", "--clip-norm", "1"], "--clip-norm applies to the first-order"),
    (["--optimizers", "lbfgs", "--schedule", "cosine"], "--schedule applies to the first-order"),
    (["--preset", "lbfgs", "--optimizers", "lbfgs", "--warmup-steps", "5"],
     "--warmup-steps applies to the first-order rules only"),
])
def test_unused_or_invalid_options_are_refused_before_work(args, fragment, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("optlab.mnist.run.load_data", lambda cfg: pytest.fail("data loaded"))
    epochs = [] if "--epochs" in args else ["--epochs", "1"]
    rc = _run(["compare", *SMALL, *epochs, *args] + (
        [] if "--out" in args else ["--out", str(tmp_path / "o")]))
    assert rc == 2
    assert fragment in _one_line_error(capsys)
    assert not list(tmp_path.rglob("results.json"))


def test_options_that_used_to_be_dropped_now_apply():
    cfg = compare.make_config("lbfgs", lr={"adam": 1e-3, "lbfgs": 0.5}, dataset="synthetic")
    assert [v["hparams"]["lr"] for v in cfg.lbfgs_variants] == [0.5, 0.5]
    assert cfg.experiment()["lbfgs_variants"][0]["hparams"]["lr"] == 0.5  # recorded as used
    cfg = compare.make_config("paper", optimizers=["adam", "lbfgs"], dataset="synthetic")
    assert cfg.experiment()["lbfgs_variants"][0]["hparams"]["lr"] == 1.0  # "*" is not L-BFGS's
    cfg = compare.make_config("lbfgs", optimizers=["adam"], dataset="synthetic")
    assert cfg.lbfgs_variants is None  # no L-BFGS: no L-BFGS settings recorded


def test_repeated_lr_for_different_optimizers_merges(tmp_path):
    out = tmp_path / "r"
    assert _run(["compare", *SMALL, "--optimizers", "adam,sgd", "--lr", "adam=0.002",
                 "--lr", "sgd=0.05", "--epochs", "1", "--seeds", "1", "--out", str(out)]) == 0
    lrs = {r["optimizer"]: r["hparams"]["lr"] for r in _doc(out)["runs"]}
    assert lrs == {"adam": 0.002, "sgd": 0.05}
    assert _doc(out)["config"]["lr"] == {"*": 0.001, "adam": 0.002, "sgd": 0.05}


def test_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for out, fragment in ((f, "is a file, not a directory"),
                          (f / "sub", f"--out {f / 'sub'}: cannot use it")):
        rc = _run(["compare", *SMALL, "--epochs", "1", "--out", str(out)])
        assert rc == 2 and fragment in _one_line_error(capsys)


def test_out_that_is_a_dangling_or_looping_link_names_the_link(tmp_path, capsys):
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for name in ("dangling", "loop"):
        assert _run(["compare", *SMALL, "--epochs", "1", "--out", str(tmp_path / name)]) == 2
        err = _one_line_error(capsys)
        assert "is a link to" in err and "File exists" not in err, err
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("argv,fragment", [
    (["compare", "--preset", "paper", "--preset", "tuned"], "--preset given twice"),
    (["compare", "--epochs", "1", "--epochs", "2"], "--epochs given twice (1 and 2)"),
    (["compare", "--out", "a", "--out", "b"], "--out given twice"),
    (["data", "download", "--dataset", "mnist", "--dataset", "fashion-mnist"],
     "--dataset given twice"),
])
def test_an_option_given_twice_with_different_values_is_refused(argv, fragment, tmp_path,
                                                                 monkeypatch, capsys):
    """argparse keeps the last value and drops the other without a word (as --lr did)."""
    monkeypatch.chdir(tmp_path)
    assert _run(argv) == 2
    assert fragment in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_an_option_repeated_with_the_same_value_is_fine(tmp_path):
    out = tmp_path / "r"
    assert _run(["compare", *SMALL, "--optimizers", "adam", "--seeds", "1", "--epochs", "1",
                 "--epochs=1", "--out", str(out)]) == 0
    assert _doc(out)["config"]["epochs"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_read_only_is_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    rc = _run(["compare", *SMALL, "--epochs", "1", "--out", str(ro / "x")])
    assert rc == 2 and "give a writable directory" in _one_line_error(capsys)


def test_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from optlab import results

    monkeypatch.setattr(results, "write_text_atomically", full)  # the one writer of the files
    rc = _run(["compare", *SMALL, "--optimizers", "adam", "--epochs", "1", "--seeds", "1",
               "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "No space left on device" in _one_line_error(capsys)


def test_out_with_a_tilde_is_expanded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert _run(["compare", *SMALL[:-1], "--optimizers", "adam", "--epochs", "1", "--seeds",
                 "1", "--out=~/x"]) == 0
    assert (tmp_path / "home" / "x" / "results.json").exists()
    assert not (tmp_path / "~").exists()
    assert f"wrote {tmp_path / 'home' / 'x' / 'results.json'}" in capsys.readouterr().out


@pytest.mark.parametrize("content,fragment", [
    ("", "is empty"),
    ('{"config": {}, "runs": [', "is not valid JSON"),
    ("[]", "holds list, not an object"),
    ("null", "holds null, not an object"),
    ('{"config": {}}', "no list of 'runs'"),
    ('{"config": [], "runs": []}', "'config' is not an object"),
    ('{"config": {}, "runs": [{"optimizer": "adam"}]}', "runs[0] has no dict 'hparams'"),
    ('{"config": {}, "runs": [3]}', "runs[0] is int"),
])
def test_damaged_results_file_is_one_line_for_resume_and_summary(content, fragment, tmp_path,
                                                                  capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.json").write_text(content)
    rc = _run(["compare", *SMALL, "--epochs", "1", "--out", str(out), "--resume"])
    assert rc == 2
    err = _one_line_error(capsys)
    assert fragment in err and "interrupted or foreign run" in err, err
    assert (out / "results.json").read_text() == content  # left as it was
    assert _run(["summary", str(out)]) == 2
    err = _one_line_error(capsys)
    assert fragment in err, err


def _good_doc(tmp_path_factory=None) -> dict:
    """A well-formed results document, as compare writes it (one finished run)."""
    return {"provenance": {"command": "python -m optlab compare", "load_average_at_start": [1.0]},
            "config": {"preset": "paper"},
            "runs": [{"phase": "final", "variant": None, "optimizer": "adam",
                      "hparams": {"lr": 0.001}, "seed": 0, "status": "ok",
                      "epochs": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5,
                                  "test_loss": 1.1, "test_acc": 0.4, "seconds": 0.1}]}]}


def _edit(doc: dict, path: str, value) -> str:
    """``doc`` as JSON text with the value at ``path`` (keys and indices split on '/')
    replaced."""
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split("/")
    node = doc
    for k in parents:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[int(last) if isinstance(node, list) else last] = value
    return json.dumps(doc)


@pytest.mark.parametrize("text,fragment", [
    (_edit(_good_doc(), "runs/0/epochs/0/test_acc", float("nan")), "holds NaN"),
    (_edit(_good_doc(), "runs/0/epochs/0/test_acc", "high"), "'test_acc' that is not a number"),
    (_edit(_good_doc(), "runs/0/status", "weird"), "status 'weird'"),
    (_edit(_good_doc(), "runs/0/hparams/lr", "fast"), "'lr' that is not a number"),
    (_edit(_good_doc(), "provenance/load_average_at_start", "x"), "'load_average_at_start'"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    (_edit(_good_doc(), "selection", {"grid": {"adam": ["x"]}, "chosen_lr": {"adam": "y"},
                                      "runs": []}), "a value summary cannot use"),
])
def test_a_hand_edited_or_foreign_results_file_is_one_line_not_a_traceback(text, fragment,
                                                                            tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.json").write_text(text)
    assert _run(["summary", str(out)]) == 2
    err = _one_line_error(capsys)
    assert fragment in err and str(out / "results.json") in err, err
    if fragment != "a value summary cannot use":  # the reader's checks: compare refuses too
        assert _run(["compare", *SMALL, "--epochs", "1", "--out", str(out), "--resume"]) == 2
        assert fragment in _one_line_error(capsys)
        assert (out / "results.json").read_text() == text  # left as it was


def test_the_reader_accepts_what_compare_writes():
    from optlab.results import check_results_doc

    doc = json.loads(json.dumps(_good_doc()))
    assert check_results_doc(doc) is doc


def test_summary_out_empty_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(_good_doc()))
    assert _run(["summary", str(out), "--out", ""]) == 2
    assert "--out is empty" in _one_line_error(capsys)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_one_line_and_compare_keeps_training(tmp_path):
    """``> /dev/full``: summary, data and the usage say so in one line (status 2); compare's
    progress lines are not its product, so it trains and writes its results regardless, and
    says in one line that the lines were lost. Neither replaces /dev/full by a file."""
    out = tmp_path / "r"
    with open("/dev/full", "w") as full:
        p = _spawn(["compare", "--dataset", "synthetic", "--no-compile", "--optimizers", "adam",
                    "--epochs", "1", "--seeds", "1", "--out", str(out)], stdout=full)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
        assert "results are complete" in err
        assert [r["status"] for r in _doc(out)["runs"]] == ["ok"]
        p = _spawn(["summary", str(out), "--out", "/dev/full"], stdout=subprocess.DEVNULL)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 2 and "not a regular file" in err, err
        assert Path("/dev/full").is_char_device()  # still the device
        for args in (["summary", str(out)], ["--help"]):
            p = _spawn(args, stdout=full)
            _, err = p.communicate(timeout=60)
            assert p.returncode == 2, err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert "No space left on device" in err, err


def test_closed_stderr_still_trains(tmp_path):
    """``2>&-``: Python starts with ``sys.stderr = None``; compare still does its work."""
    out = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "optlab", "compare", *SMALL, "--optimizers",
                          "adam", "--epochs", "1", "--seeds", "1", "--out", str(out)],
                         env=_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, close_fds=True,
                         preexec_fn=lambda: os.close(2))
    assert p.wait(timeout=120) == 0
    assert [r["status"] for r in _doc(out)["runs"]] == ["ok"]


def test_the_recorded_command_is_quoted_so_that_it_reruns(tmp_path, monkeypatch):
    out = tmp_path / "a dir ✓"
    argv = ["__main__.py", "compare", *SMALL, "--optimizers", "adam", "--epochs", "1",
            "--seeds", "1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert _run(argv[1:]) == 0
    import shlex

    command = _doc(out)["provenance"]["command"]
    assert shlex.split(command)[3:] == argv[1:], command


# --------------------------------------------------------------------------------------------
# 6. Signals and a closed stdout
# --------------------------------------------------------------------------------------------


def _wait_until_mapped(pid: int, library: str, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` has loaded a shared library whose path contains
    ``library`` (Linux: /proc/PID/maps), i.e. is in the middle of importing it."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if library in maps.read_text():
                return
        except OSError:
            return  # it has ended: the assertions below say how
        time.sleep(0.005)


def test_ctrl_c_during_the_imports_is_one_line(tmp_path):
    p = _spawn(["compare", *SMALL, "--epochs", "1", "--out", str(tmp_path / "never")])
    _wait_until_mapped(p.pid, "libtorch")  # torch is being imported
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_closed_stdout_keeps_training(tmp_path):
    out = tmp_path / "r"
    p = _spawn(["compare", "--dataset", "synthetic", "--no-compile", "--optimizers", "adam",
                "--epochs", "2", "--seeds", "2", "--out", str(out)])
    first = p.stdout.readline()
    p.stdout.close()  # `| head -1`
    err = p.stderr.read()
    p.wait(timeout=60)
    assert first.startswith("optlab compare")
    assert p.returncode == 0 and "Traceback" not in err and "Broken" not in err, err
    doc = _doc(out)
    assert sorted((r["seed"], r["status"], len(r["epochs"])) for r in doc["runs"]) == [
        (0, "ok", 2), (1, "ok", 2)]


# --------------------------------------------------------------------------------------------
# Fault injection: a real `python -m optlab compare` killed at random moments
# --------------------------------------------------------------------------------------------


def test_random_kills_lose_nothing_and_resume_reaches_the_uninterrupted_numbers(tmp_path):
    """10 kills (4 SIGINT, 3 SIGTERM, 3 SIGKILL, in random order) of a real subprocess, each at
    a random moment: 3 during its start-up, the others after a random delay once it reports
    it is training. After each: results.json parses and is a results document, every
    run finished before is still there with the same numbers, and every finished run has the
    numbers of an uninterrupted run; at the end --resume completes to those numbers.
    ``OPTLAB_FAULT_SEED`` picks other moments."""
    import random

    from optlab.results import read_results_doc

    rng = random.Random(int(os.environ.get("OPTLAB_FAULT_SEED", "0")))
    args = ["compare", "--dataset", "synthetic", "--no-compile", "--optimizers", "adam,sgd",
            "--epochs", "3", "--seeds", "3"]
    ref = tmp_path / "ref"
    assert _run([*args, "--quiet", "--out", str(ref)]) == 0
    expected = _numbers(_doc(ref))
    assert len(expected) == 6

    sigs = [signal.SIGINT] * 4 + [signal.SIGTERM] * 3 + [signal.SIGKILL] * 3
    rng.shuffle(sigs)
    out, n_dir, seen, mid_stack = tmp_path / "r0", 0, {}, 0
    moments = []
    for i, sig in enumerate(sigs):
        p = _spawn([*args, "--out", str(out), "--resume"])
        if i % 4 == 0:
            time.sleep(rng.uniform(0.1, 2.0))
            moments.append("start-up")
        else:
            p.stdout.readline()  # "optlab compare: ..." once the data are ready
            time.sleep(rng.uniform(0.0, 1.5))
            moments.append("training")
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        wanted = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig]
        # 0: it finished first; -sig: the signal came before Python ran any of optlab's code
        assert p.returncode in (wanted, 0, -sig), (sig, p.returncode, err)
        if sig != signal.SIGKILL:
            assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
        if not (out / "results.json").exists():
            assert not seen
            continue
        doc = read_results_doc(out / "results.json")  # parses, and has the right shape
        now = _numbers(doc)
        assert {k: now.get(k) for k in seen} == seen, f"kill {i} ({sig!r}) lost a run"
        assert {k: expected[k] for k in now} == now  # finished = the uninterrupted numbers
        seen = now
        mid_stack += bool(list(out.glob(".checkpoint-*.pt")))
        if len(now) == len(expected):  # all done: the next kills go to a fresh directory
            n_dir += 1
            out, seen = tmp_path / f"r{n_dir}", {}
    assert moments.count("training") == 7
    assert mid_stack >= 1  # some kills hit a stack between its epochs (a checkpoint was left)
    assert _run([*args, "--quiet", "--out", str(out), "--resume"]) == 0
    assert _numbers(_doc(out)) == expected
    assert not list(out.glob(".checkpoint-*")) and not list(out.glob(".*.tmp"))


def test_a_different_schedule_or_clip_is_another_configuration(tmp_path, capsys):
    """--resume keeps runs only of the same configuration: the schedule, the warmup and the
    clipping are part of it (and a file without them still resumes as a plain run)."""
    out = tmp_path / "o"
    base = ["compare", *SMALL, "--epochs", "1", "--seeds", "0,", "--optimizers", "sgd",
            "--out", str(out)]
    assert _run([*base, "--schedule", "cosine", "--clip-norm", "1"]) == 0
    capsys.readouterr()
    for other, fields in ((["--schedule", "step:every=5", "--clip-norm", "1"], "schedule"),
                          (["--schedule", "cosine", "--clip-norm", "2"], "clip_norm"),
                          (["--schedule", "cosine", "--clip-norm", "1", "--warmup-steps", "3"],
                           "warmup_steps"),
                          ([], "clip_norm, schedule")):
        assert _run([*base, *other, "--resume"]) == 2
        assert f"another configuration (differs in: {fields})" in _one_line_error(capsys)
    assert _run([*base, "--schedule", "cosine", "--clip-norm", "1", "--resume"]) == 0
    plain = tmp_path / "plain"
    assert _run([*base[:-1], str(plain)]) == 0
    assert "schedule" not in _doc(plain)["config"]  # unused controls are not recorded
    assert _run([*base[:-1], str(plain), "--resume"]) == 0


# --------------------------------------------------------------------------------------------
# curvature: each bad option named in its own line, before any work
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    # these used to share one line "need --lr > 0, --epochs >= 1 and every --at in 0 .. --epochs"
    (["--at", "0,5", "--epochs", "2"], "--at 5 is outside 0 .. --epochs 2"),
    (["--lr", "-1"], "--lr must be a finite number > 0; got -1"),
    # used to be accepted: inf ended in a ValueError traceback, a repeat measured twice,
    # --threads 0 silently became 1
    (["--lr", "inf"], "--lr must be a finite number > 0; got inf"),
    (["--optimizers", "sgd,sgd"], "--optimizers: each name once"),
    (["--inits", "he,he"], "--inits: each name once"),
    (["--threads", "0"], "--threads must be >= 1; got 0"),
    (["--tol", "nan"], "--tol must be a finite number >= 0"),
    (["--epochs", "0"], "--epochs must be >= 1; got 0"),
    (["--out", "FILE"], "is a file, not a directory"),  # was "File exists"
])
def test_curvature_bad_options_are_one_line_each(args, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("optlab.curvature.curvature_along_training",
                        lambda *a, **k: pytest.fail("measured"))
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "c")]
    rc = _run(["curvature", "--dataset", "synthetic", *out, *args])
    assert rc == 2
    assert fragment in _one_line_error(capsys)
    assert not (tmp_path / "c" / "curvature.json").exists()


def test_curvature_default_epochs_to_measure_fit_a_short_run(tmp_path, capsys, monkeypatch):
    """--epochs 1 alone used to be refused: the default --at 0,1,2,5,10 lay past the run."""
    seen = []

    def fake(data, **kw):
        seen.append(kw["at"])
        return [], []

    monkeypatch.setattr("optlab.curvature.curvature_along_training", fake)
    rc = _run(["curvature", "--dataset", "synthetic", "--epochs", "1", "--inits", "he",
               "--out", str(tmp_path / "c")])
    assert rc == 0, capsys.readouterr().err
    assert seen == [[0, 1]]
    assert json.loads((tmp_path / "c" / "curvature.json").read_text())["config"]["at"] == [0, 1]


def test_curvature_interrupted_keeps_finished_pairs_and_resume_measures_the_rest(
        tmp_path, capsys, monkeypatch):
    """An interrupted curvature run used to leave no way on: a rerun was refused without
    --force, and --force measured everything again and replaced the file without a backup."""
    calls = []

    def fake(data, *, seed, init, **kw):
        calls.append((seed, init))
        if len(calls) == 2 and interrupt:
            raise KeyboardInterrupt
        run = {"seed": seed, "init": init, "optimizer": "sgd"}
        return [{**run, "epoch": 0, "lr": 1e-3, "top_eigenvalue": 1.0}], [run]

    monkeypatch.setattr("optlab.curvature.curvature_along_training", fake)
    out = tmp_path / "c"
    argv = ["curvature", "--dataset", "synthetic", "--epochs", "1", "--inits", "pytorch,he",
            "--out", str(out)]
    interrupt = True
    assert _run(argv) == 130
    assert "1 finished seed/init pair(s) are saved" in capsys.readouterr().err
    first = json.loads((out / "curvature.json").read_text())
    assert [(r["seed"], r["init"]) for r in first["runs"]] == [(0, "pytorch")]

    interrupt = False
    assert _run(argv) == 2  # neither --resume nor --force: refused, file untouched
    assert "add --resume to continue it" in _one_line_error(capsys)
    assert _run([*argv, "--lr", "0.5", "--resume"]) == 2
    assert "another configuration (lr differ)" in _one_line_error(capsys)
    calls.clear()
    assert _run([*argv, "--resume"]) == 0
    assert calls == [(0, "he")]  # only the missing pair
    done = json.loads((out / "curvature.json").read_text())
    assert [(r["seed"], r["init"]) for r in done["runs"]] == [(0, "pytorch"), (0, "he")]

    assert _run([*argv, "--force"]) == 0  # starting over keeps the finished file
    assert json.loads((out / "curvature.json.bak").read_text())["runs"] == done["runs"]


@pytest.mark.parametrize("content", ["", "[]", '{"provenance": {}, "config": {}, "points": [], '
                                                '"runs": [1, 2]}'])
def test_curvature_resume_from_a_damaged_file_is_one_line(content, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setattr("optlab.curvature.curvature_along_training",
                        lambda *a, **k: pytest.fail("measured"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "curvature.json").write_text(content)
    rc = _run(["curvature", "--dataset", "synthetic", "--epochs", "1", "--resume",
               "--out", str(tmp_path / "c")])
    assert rc == 2
    assert "cannot resume: " in _one_line_error(capsys)
    assert (tmp_path / "c" / "curvature.json").read_text() == content  # left as it was


def test_an_atomic_write_goes_through_a_link_and_never_replaces_a_device_or_fifo(tmp_path):
    from optlab.atomic import NotARegularFileError, write_text_atomically

    target = tmp_path / "target.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_text_atomically(link, "new")
    assert link.is_symlink() and target.read_text() == "new"  # the link stays, its file changed
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="not a regular file"):
        write_text_atomically(fifo, "x")
    assert fifo.is_fifo()
    with pytest.raises(NotARegularFileError):
        write_text_atomically(tmp_path, "x")  # a directory
    assert not list(tmp_path.glob(".*.tmp"))
