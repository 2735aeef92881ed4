"""``python -m optlab compare``: presets, the run loop, and writing ``results.json`` / ``.csv``.

:func:`run_comparison` takes a :class:`CompareConfig` and writes ``OUT/results.json`` (provenance,
config, one record per run with its per-epoch metrics) and a tidy ``OUT/results.csv`` beside it
(one row per run and epoch), in the format that :mod:`optlab.results` owns (its schema, writer
and reader; this module keeps the lock, the resume rules and the run loop). Both are rewritten
atomically (temporary file + ``os.replace``)
after every epoch, and each stack's state (parameters, rule states, batch-order generator, epoch)
is checkpointed atomically beside them (``OUT/.checkpoint-<phase>-seed<S>.pt``, removed when the
stack finishes), so an interruption loses at most the epoch under way: ``resume=True`` keeps the
runs already finished (same optimizer, hyperparameters, seed and configuration) and continues an
unfinished stack from its checkpoint, to the same numbers as an uninterrupted run (bit for bit
on the CPU).

Nothing finished is ever lost: the directory is locked while a run writes into it (``OUT/.lock``
holds the PID), a file is never rewritten with fewer finished runs than it had, and a run into
a directory that holds results refuses unless it resumes them (same configuration) or is
forced (``force=True``; the old file is kept as ``results.json.bak``, or ``.bak2``,
``.bak3``... when an earlier one is there).

Presets (explicit settings override them):

* ``paper`` — the first paper: SGD, RMSprop, Adam, AdaGrad; lr 0.001 for all; batch 32;
  10 epochs; 3 seeds.
  The paper does not say which framework it used, so without ``conventions`` the CLI runs it
  under both (:func:`run_all_conventions`): ``--preset paper --out results/paper`` writes
  PyTorch's reading into ``results/paper`` and Keras 3's into ``results/paper-keras``;
  ``--conventions keras`` (or ``pytorch``) runs one.
* ``init`` — the initialization ablation: SGD and Adam at the paper's lr 0.001, batch 32,
  10 epochs, seeds 0-2, each from PyTorch's ``nn.Linear`` weights, Glorot-uniform and
  He-uniform (one stack per seed and init; every run records its ``init``).
* ``tuned`` — every first-order rule of the core, each at the learning rate of a 5-point log
  grid that gives the best validation accuracy, **averaged over the selection seeds 0-2**, at
  the **full horizon** (validation = the last 10,000 training images, ``select_epochs`` =
  ``epochs`` = 10), then **5 fresh seeds** (3-7) x 10 epochs at that rate on the full training
  set. The grid search is stored in the ``"selection"`` section, with the pick that a short
  horizon would have made from the same runs (``short_epochs`` = 3: the mean over the
  selection seeds, and seed 0 alone, as an earlier version of this preset did), so the
  short-horizon bias is on record.
* ``lbfgs`` — L-BFGS (full batch, and large batches) against Adam (batch 32, lr 0.001) at equal
  budgets of example-gradients and of training time (both recorded in ``"budgets"``).
* ``generalization`` — held-out accuracy of SGD with momentum against the adaptive rules
  (Adam, AdamW, AMSGrad, Lion), each with its own conventions (:data:`GENERALIZATION_HPARAMS`);
  batch 32; 10 epochs; 3 seeds. Run once per data set (``--dataset mnist`` and
  ``--dataset fashion-mnist``).
* ``batch-size`` — plain SGD, lr 0.02 at batch 32, 10 epochs, 2 seeds: the base of chapter 14's
  sweep, which reruns it with ``--batch-size B --lr sgd=...`` (the rate scaled with ``B``).
* ``schedules`` — plain SGD, lr 0.1, batch 32, 3 epochs, 2 seeds: chapter 14 runs it with each
  ``--schedule`` (none, step, cosine, inverse_time).
* ``warmup`` — Adam at lr 0.03 with a cosine decay, batch 32, 3 epochs, 3 seeds: chapter 14 runs
  it with and without ``--warmup-steps``.

Any preset takes a learning-rate ``schedule`` (text such as ``"cosine"`` or
``"step:every=1875,gamma=0.5"``, :func:`optlab.schedules.parse_schedule`, applied to each rule's
own rate), ``warmup_steps`` (a linear warmup, over a constant rate when there is no schedule)
and ``clip_norm`` (global gradient-norm clipping per model). They apply to the first-order rules
(L-BFGS keeps its line search). A schedule's ``total`` defaults to the phase's number of updates
(epochs x batches per epoch: the whole run, or the whole grid-search run). The configuration
records the three as given; each run records its schedule's ``describe()`` and ``clip_norm``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..results import run_record as _run_record
from ..rules import resolve_hparams
from .checkpoint import checkpoint_epoch
from .console import _Log
from .device_data import PreparedData, prepare_data
from .lbfgs_runner import train_lbfgs
from .output import OutputDir, ResultsFile
from .presets import LBFGS_DEFAULT_VARIANT, CompareConfig, ConfigError, make_config
from .provenance import provenance
from .records import ModelSpec, RunResult, jsonable
from .runtime import (
    _cores,
    busy_cores,
    cpu_times,
    default_threads,
    enable_compile_cache,
    eval_threads,
    pick_device,
    set_threads,
)
from .stack import plan_compile, train_stack


class _Interrupt:
    """Test hooks: ``OPTLAB_INTERRUPT_AFTER_UNITS=N`` raises ``KeyboardInterrupt`` after N
    finished units (stacks or L-BFGS runs), ``OPTLAB_INTERRUPT_AFTER_EPOCHS=N`` after N saved
    epochs of stacks, as if the user pressed Ctrl-C."""

    def __init__(self) -> None:
        v = os.environ.get("OPTLAB_INTERRUPT_AFTER_UNITS")
        self.left = int(v) if v else None
        v = os.environ.get("OPTLAB_INTERRUPT_AFTER_EPOCHS")
        self.epochs_left = int(v) if v else None

    def unit_done(self) -> None:
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                raise KeyboardInterrupt("OPTLAB_INTERRUPT_AFTER_UNITS")

    def epoch_done(self) -> None:
        if self.epochs_left is not None:
            self.epochs_left -= 1
            if self.epochs_left <= 0:
                raise KeyboardInterrupt("OPTLAB_INTERRUPT_AFTER_EPOCHS")


def load_data(cfg: CompareConfig) -> Any:
    from .. import data as _data

    if cfg.dataset == "synthetic":
        return _data.synthetic_dataset(*cfg.synthetic_size, seed=0)
    return _data.load_dataset(cfg.dataset, data_dir=cfg.data_dir)


def _train_group(cfg, specs, data, res, log, phase, section, interrupt, device_desc
                 ) -> list[dict[str, Any]]:
    """Train one stack (specs share a seed), saving after every epoch."""
    seed = specs[0].seed
    epochs = cfg.selection_epochs if phase == "selection" else cfg.epochs
    busy = _busy_for_stack(res.doc["provenance"])
    threads, ev_threads = _stack_threads(cfg, specs, data, epochs, 1, busy)
    names = ",".join(dict.fromkeys(s.optimizer for s in specs))
    bar = log.bar(epochs * (data.n_train // cfg.batch_size),
                  f"{phase} seed {seed} [{len(specs)} models]")
    records: list[dict[str, Any]] = []

    def on_epoch(results: list[RunResult], epoch: int) -> None:
        nonlocal records
        records = [_run_record(r, phase, threads) for r in results]
        for rec in records:
            res.put(rec, section)
        res.save()
        e0 = results[0].epochs[-1] if results[0].epochs else None
        secs = (f"{e0.seconds:.1f} s" + (f" + eval {e0.eval_seconds:.1f} s"
                                         if e0.eval_seconds is not None else "")) if e0 else ""
        if len(results) <= 8:
            accs = "  ".join(
                f"{r.spec.optimizer}"
                + (f"@{r.spec.hparams.get('lr'):g}" if phase == "selection" else "")
                + (f" {r.epochs[-1].train_acc:.4f}/{r.epochs[-1].test_acc:.4f}"
                   if r.epochs and r.epochs[-1].epoch == epoch else f" {r.status}")
                for r in results)
        else:
            ok = [r for r in results if r.epochs and r.epochs[-1].epoch == epoch]
            best = max(ok, key=lambda r: r.epochs[-1].val_acc or r.epochs[-1].test_acc,
                       default=None)
            accs = (f"best {best.spec.optimizer}@{best.spec.hparams.get('lr'):g} "
                    f"{(best.epochs[-1].val_acc or best.epochs[-1].test_acc):.4f}"
                    if best else "all diverged")
        log.line(f"{phase} seed {seed} epoch {epoch}/{epochs} {secs} "
                 f"({len(results)} models, {threads} thr"
                 + (f", eval {ev_threads} thr" if ev_threads != threads else "")
                 + f") train/test acc: {accs}")
        interrupt.epoch_done()

    t0 = time.perf_counter()
    checkpoint = res.checkpoint(phase, seed, specs[0].init)
    results = train_stack(specs, data, epochs=epochs, batch_size=cfg.batch_size,
                          compile=cfg.compile, on_epoch=on_epoch, progress=bar,
                          checkpoint=checkpoint, eval_threads=ev_threads)
    if bar is not None:
        bar.close()
    for rec in (_run_record(r, phase, threads) for r in results):
        res.put(rec, section)
    res.save()  # the finished records first, then the checkpoint goes
    checkpoint.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    comp = results[0].compile_seconds
    log.line(f"{phase} seed {seed} ({specs[0].init} init): {names} done in {wall:.1f} s"
             + (f" (compile {comp:.1f} s)" if comp else " (eager)"))
    res.doc["provenance"]["threads"] = threads
    res.doc["provenance"]["eval_threads"] = ev_threads
    res.doc["provenance"]["compile"] = results[0].info.get("compile_mode")
    interrupt.unit_done()
    return [_run_record(r, phase, threads) for r in results]


_LAST_BUSY: list[tuple[float, float | None]] = []  # (when, value) of the latest measurement


def _remember_busy(value: float | None) -> float | None:
    _LAST_BUSY[:] = [(time.monotonic(), value)]
    return value


def _busy_for_stack(prov: dict[str, Any]) -> float | None:
    """The cores other work keeps busy, for the thread rules of the next stack: the latest
    measurement while it is fresh (under 5 s old: the command's own, for its first stack),
    else measured again now (0.25 s), so that a long run follows a machine that got busy or
    idle; where nothing can be measured, the load average as the command started (its own
    stacks raise the later ones)."""
    if not _LAST_BUSY or time.monotonic() - _LAST_BUSY[0][0] >= 5.0:
        _remember_busy(busy_cores())
    busy = _LAST_BUSY[0][1]
    return busy if busy is not None else (prov.get("load_average_at_start") or [None])[0]


def _stack_threads(cfg: CompareConfig, specs: list[ModelSpec], data: PreparedData,
                   epochs: int, jobs: int, busy: float | None) -> tuple[int, int]:
    """Sets the torch threads of one stack's training and returns them with its evaluation's:
    ``--threads`` for both, else the measured rules of :func:`optlab.default_threads` (for
    this stack's compile plan, judged with the threads a compiled run would get: inductor
    caches per thread count) and :func:`optlab.mnist.runtime.eval_threads`, for ``jobs``
    parallel stacks and ``busy`` cores kept busy by other work as the command started (its
    own stacks would count later)."""
    def rule(compiled: bool) -> int:
        return cfg.threads or default_threads(len(specs), compiled, jobs, busy)

    mode = plan_compile(specs, epochs=epochs, batch_size=cfg.batch_size,
                        n_train=data.n_train, compile=cfg.compile,
                        device=data.x_train.device, threads=rule(True))
    train = set_threads(rule(mode is not None))
    if data.x_train.device.type != "cpu":
        return train, train
    return train, min(_cores(), cfg.threads or eval_threads(jobs, busy))


def _ignore_sigint() -> None:
    """In a job process: Ctrl-C is the parent's to handle (it saves, then ends the jobs)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stack_job(cfg: CompareConfig, specs: list[ModelSpec], jobs: int, checkpoint: str,
               busy: float | None) -> dict[str, Any]:
    """One seed's stack in a process of its own (``--jobs``): loads the data, trains with a
    checkpoint after every epoch (so an interrupted job resumes), returns the run records."""
    enable_compile_cache()
    device = pick_device(cfg.device)
    data = prepare_data(load_data(cfg), device=device)
    threads, ev_threads = _stack_threads(cfg, specs, data, cfg.epochs, jobs, busy)
    t0 = time.perf_counter()
    results = train_stack(specs, data, epochs=cfg.epochs, batch_size=cfg.batch_size,
                          compile=cfg.compile, checkpoint=checkpoint, eval_threads=ev_threads)
    return {"records": [_run_record(r, "final", threads) for r in results],
            "threads": threads, "eval_threads": ev_threads, "wall": time.perf_counter() - t0,
            "compile_seconds": results[0].compile_seconds,
            "compile_mode": results[0].info.get("compile_mode")}


def _train_seeds_parallel(cfg: CompareConfig, stacks: list[list[ModelSpec]], res: ResultsFile,
                          log: _Log, interrupt: _Interrupt) -> None:
    """Train the seed stacks ``stacks`` in ``cfg.jobs`` spawned processes; this process alone
    writes the results file, once per finished stack. A job that fails is reported and the
    others go on (their runs are saved; the error is raised at the end); on Ctrl-C the jobs are
    ended and what finished is saved (unfinished stacks keep their checkpoints: ``--resume``)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    jobs = min(cfg.jobs, len(stacks))
    log.line(f"final: {len(stacks)} seed stacks in {jobs} parallel processes (--jobs)")
    errors: list[str] = []
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_ignore_sigint)
    clean = False
    try:
        busy = _busy_for_stack(res.doc["provenance"])
        futures = {pool.submit(_stack_job, cfg, specs, jobs,
                               str(res.checkpoint("final", specs[0].seed, specs[0].init)),
                               busy): specs[0] for specs in stacks}
        for fut in as_completed(futures):
            first = futures[fut]
            seed = first.seed
            try:
                out = fut.result()
            except Exception as e:  # noqa: BLE001 - one job's failure must not lose the others
                errors.append(f"seed {seed}: {type(e).__name__}: {e}")
                log.line(f"final seed {seed}: failed ({type(e).__name__}: {e})")
                continue
            for rec in out["records"]:
                res.put(rec, "runs")
            res.save()
            res.checkpoint("final", seed, first.init).unlink(missing_ok=True)
            comp = out["compile_seconds"]
            log.line(f"final seed {seed}: {len(out['records'])} models done in "
                     f"{out['wall']:.1f} s, {out['threads']} thr"
                     + (f" (compile {comp:.1f} s)" if comp else " (eager)"))
            res.doc["provenance"]["threads"] = out["threads"]
            res.doc["provenance"]["eval_threads"] = out["eval_threads"]
            res.doc["provenance"]["compile"] = out["compile_mode"]
            interrupt.unit_done()
        clean = True
    finally:
        if not clean:  # Ctrl-C or an error here: end the jobs now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(wait=clean, cancel_futures=True)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(stacks)} seed stacks failed ("
                           f"{'; '.join(errors)}); the finished runs are saved, rerun with "
                           "--resume to complete the others")


def _spec(cfg: CompareConfig, name: str, lr: float | None, seed: int,
          total_steps: int, init: str | None = None) -> ModelSpec:
    """The model ``name`` at rate ``lr`` (None: the conventions' default) with the config's
    schedule (over ``total_steps`` updates by default) and clipping, from ``init`` (default:
    the config's)."""
    hp = cfg.hparams_for(name, lr)
    base_lr = resolve_hparams(name, **hp)["lr"]
    return ModelSpec(name, hp, seed, init or cfg.init or "pytorch",
                     schedule=cfg.schedule_for(base_lr, total_steps), clip_norm=cfg.clip_norm)


def _specs_for(cfg: CompareConfig, seed: int, lrs: dict[str, float | None],
               n_train: int, init: str | None = None) -> list[ModelSpec]:
    total = cfg.total_steps(n_train, cfg.epochs)
    return [_spec(cfg, o, lrs.get(o), seed, total, init) for o in cfg.optimizers
            if o != "lbfgs"]


def _to_train(specs, res, phase, log, cfg, data) -> list[ModelSpec]:
    """The specs of one seed's stack still to train: all of them when the stack has a
    checkpoint to continue from (a diverged run of it included: the stack goes on as one), else
    those without a finished run."""
    pending = _pending(specs, res, phase, log)
    checkpoint = res.checkpoint(phase, specs[0].seed, specs[0].init) if specs else None
    if checkpoint is None or not checkpoint.exists():
        return pending
    epochs = cfg.selection_epochs if phase == "selection" else cfg.epochs
    done = checkpoint_epoch(checkpoint, specs, epochs=epochs,
                            batch_size=cfg.batch_size, n_train=data.n_train)
    if pending and done is not None:
        log.line(f"resume: {phase} seed {specs[0].seed} continues after epoch {done} "
                 f"from {checkpoint.name}")
        return list(specs)
    checkpoint.unlink(missing_ok=True)  # finished, or written for other runs
    return pending


def _pending(specs, res, phase, log) -> list[ModelSpec]:
    out = []
    for s in specs:
        probe = {"phase": phase, "variant": None, "optimizer": s.optimizer,
                 "hparams": jsonable(s.resolved()), "seed": s.seed, "init": s.init,
                 **jsonable(s.controls())}
        prev = res.finished(probe)
        if prev is not None:
            res.put(prev, "selection" if phase == "selection" else "runs")
        else:
            out.append(s)
    skipped = len(specs) - len(out)
    if skipped:
        log.line(f"resume: {skipped} finished {phase} run(s) of seed {specs[0].seed} kept")
    return out


def run_comparison(cfg: CompareConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                   quiet: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the comparison ``cfg`` and write ``out_dir/results.json`` and ``results.csv``;
    returns the results document.

    The output directory is checked and locked, and a results file already there is checked
    (:class:`ResultsFile`), before the data are loaded. On any interruption (``KeyboardInterrupt``,
    which the CLI also raises for SIGTERM) the runs recorded so far are saved before the
    exception goes on."""
    return run_comparisons([(cfg, out_dir)], resume=resume, quiet=quiet, force=force)[0]


def run_comparisons(jobs: Sequence[tuple[CompareConfig, str | os.PathLike]], *,
                    resume: bool = False, quiet: bool = False, force: bool = False,
                    names: Sequence[str | None] | None = None) -> list[dict[str, Any]]:
    """Run several comparisons one after the other, each into its own directory; returns their
    results documents in order.

    Every directory is checked and locked, and every results file checked (``resume`` and
    ``force`` apply to each), **before the first one trains**, so a refusal of the last comes
    before, not after, the first one's minutes of training; nothing in any of them is moved
    or removed until that one's data has loaded. ``names``: how error messages name each
    directory (default ``out PATH``)."""
    enable_compile_cache()
    if not jobs:
        raise ConfigError("give at least one (config, out_dir) to run")
    if resume and force:
        raise ConfigError("resume=True keeps the results in out and force=True replaces them; "
                          "give one of the two")
    pick_device(jobs[0][0].device)  # fail fast, before any directory is touched
    log = _Log(quiet)
    outs: list[OutputDir] = []
    files: list[ResultsFile] = []
    try:
        for i, (cfg, out_dir) in enumerate(jobs):
            outs.append(OutputDir(out_dir, names[i] if names else None))
            files.append(ResultsFile(outs[-1], cfg, resume=resume, force=force))
        docs = []
        for (cfg, _), res in zip(jobs, files, strict=True):
            if len(jobs) > 1:
                log.line(f"{cfg.preset}, {cfg.conventions} conventions: {res.json_path}")
            try:
                docs.append(_run(cfg, res, pick_device(cfg.device), log))
            except BaseException:
                if res._dirty:  # save what is recorded before the error or interrupt goes on
                    try:
                        res.save()
                    except OSError:
                        pass
                raise
        return docs
    finally:
        for out in outs:
            out.release()


def convention_outputs(out_dir: str | os.PathLike) -> dict[str, Path]:
    """Where a run under every convention writes each one: the default (``pytorch``) into
    ``OUT`` itself, every other into the sibling ``OUT-<name>``; ``results/paper`` gives
    ``results/paper`` and ``results/paper-keras``."""
    from ..conventions import CONVENTIONS

    text = os.fspath(out_dir)
    if not text.strip():
        raise ConfigError("out is empty; give a directory, e.g. out='results/paper'",
                          param="out")
    base = Path(text).expanduser()
    if base.name in ("", ".", ".."):  # '.', '..', '/': name the sibling after the real folder
        base = base.resolve()
    if not base.name:
        raise ConfigError(f"out {text!r} has no name to put '-keras' after; give a directory "
                          "such as results/paper", param="out")
    return {name: base if name == "pytorch" else base.with_name(f"{base.name}-{name}")
            for name in CONVENTIONS}


def convention_jobs(preset: str, out_dir: str | os.PathLike, **overrides: Any
                    ) -> tuple[list[tuple[CompareConfig, Path]], list[str | None]]:
    """``preset`` under every framework convention: the ``(config, directory)`` jobs for
    :func:`run_comparisons` (into :func:`convention_outputs` of ``out_dir``) and how error
    messages name each directory: ``out`` for the first; each sibling as what it is, since the
    user typed only ``out``."""
    if overrides.get("conventions") is not None:
        raise ConfigError("conventions: a run under every convention sets each itself; call "
                          "run_comparison for one", param="conventions")
    outs = list(convention_outputs(out_dir).items())
    jobs = [(make_config(preset, **{**overrides, "conventions": name}), path)
            for name, path in outs]
    title = {"keras": "Keras 3's"}
    names = [None] + [f"{path} (where the run under {title.get(name, name)} conventions goes, "
                      f"beside out='{outs[0][1]}')" for name, path in outs[1:]]
    return jobs, names


def run_all_conventions(preset: str, out_dir: str | os.PathLike, *, resume: bool = False,
                        quiet: bool = False, force: bool = False, **overrides: Any
                        ) -> dict[str, dict[str, Any]]:
    """The comparison ``preset`` under every framework convention (PyTorch's, then Keras 3's),
    one after the other, into :func:`convention_outputs` of ``out_dir``; returns the results
    document per convention. This is what ``--preset paper`` without ``--conventions`` runs:
    the paper names no framework, so both readings are the experiment."""
    jobs, names = convention_jobs(preset, out_dir, **overrides)
    docs = run_comparisons(jobs, resume=resume, quiet=quiet, force=force, names=names)
    return {cfg.conventions: doc for (cfg, _), doc in zip(jobs, docs, strict=True)}


def _run(cfg: CompareConfig, res: ResultsFile, device: torch.device, log: _Log
         ) -> dict[str, Any]:
    cpu_start = cpu_times()  # what other work keeps the cores busy: measured while data load
    dataset = load_data(cfg)  # a missing data set refuses the run before anything is touched
    res.begin()
    if res.backup is not None:
        log.line(f"--force: the previous results are kept in {res.backup}")
    prov = provenance(device, dataset, cfg, _remember_busy(busy_cores(cpu_start)))
    if res.resumed_from is not None:
        prov["resumed_from"] = res.resumed_from
    res.doc["provenance"] = prov
    interrupt = _Interrupt()
    full = prepare_data(dataset, device=device)
    log.line(f"optlab compare: preset {cfg.preset}, {cfg.dataset} "
             f"({full.n_train} train), device {device.type} ({prov['device_name']})")

    lrs: dict[str, float | None] = {o: cfg.lr_for(o) for o in cfg.optimizers}
    if cfg.preset == "tuned" or cfg.grid:
        lrs.update(_select(cfg, dataset, device, res, log, interrupt))

    adam_seconds: dict[int, float] = {}
    parallel = cfg.jobs > 1 and len(cfg.seeds) * len(cfg.init_list()) > 1
    if parallel:
        stacks = [s for s in (_to_train(_specs_for(cfg, seed, lrs, full.n_train, init), res,
                                        "final", log, cfg, full)
                              for seed in cfg.seeds for init in cfg.init_list()) if s]
        if len(stacks) > 1:
            _train_seeds_parallel(cfg, stacks, res, log, interrupt)
        elif stacks:
            _train_group(cfg, stacks[0], full, res, log, "final", "runs", interrupt, device)
    for seed in cfg.seeds:
        for init in ([] if parallel else cfg.init_list()):
            specs = _to_train(_specs_for(cfg, seed, lrs, full.n_train, init), res, "final",
                              log, cfg, full)
            if specs:
                _train_group(cfg, specs, full, res, log, "final", "runs", interrupt, device)
        for r in res.doc["runs"]:
            if r["seed"] == seed and r["optimizer"] == "adam" and r["phase"] == "final":
                adam_seconds[seed] = sum(e["seconds"] for e in r["epochs"])
        if "lbfgs" in cfg.optimizers:
            _run_lbfgs(cfg, seed, full, res, log, interrupt, adam_seconds.get(seed))
    if parallel:  # the records in seed order, as a sequential run writes them
        order = {seed: i for i, seed in enumerate(cfg.seeds)}
        res.doc["runs"].sort(key=lambda r: order.get(r["seed"], len(order)))
    res.doc["provenance"]["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")
    res.save()
    return res.doc


def mean_val_acc(runs: list[dict[str, Any]], optimizer: str, lr: float, seeds: list[int],
                 epoch: int) -> float | None:
    """Mean over ``seeds`` of the validation accuracy of ``optimizer`` at ``lr`` after ``epoch``
    (selection runs); ``None`` unless every seed has a finite value there (a diverged or
    unfinished seed disqualifies the rate)."""
    vals = []
    for seed in seeds:
        rec = next((r for r in runs if r["optimizer"] == optimizer and r["seed"] == seed
                    and r["hparams"].get("lr") == lr), None)
        e = (next((e for e in rec["epochs"] if e.get("epoch") == epoch), None)
             if rec is not None else None)
        v = e.get("val_acc") if e is not None else None
        if v is None or not math.isfinite(v):
            return None
        vals.append(float(v))
    return sum(vals) / len(vals)


def pick_learning_rates(runs: list[dict[str, Any]], grid: dict[str, list[float]],
                        seeds: list[int], epoch: int) -> dict[str, float]:
    """The rate of each optimizer's grid with the best mean validation accuracy over ``seeds``
    after ``epoch`` (ties: the smaller rate; no valid rate: the smallest of the grid)."""
    chosen: dict[str, float] = {}
    for o, lrs in grid.items():
        scored = [(v, -lr) for lr in lrs
                  if (v := mean_val_acc(runs, o, lr, seeds, epoch)) is not None]
        chosen[o] = -max(scored)[1] if scored else min(lrs)
    return chosen


def _select(cfg, dataset, device, res, log, interrupt) -> dict[str, float]:
    """The grid search of the ``tuned`` preset, on a validation split of the training set: one
    stack per selection seed, the pick by the mean validation accuracy over those seeds after
    ``selection_epochs``; with ``short_epochs`` also the picks a shorter horizon would make."""
    val_size = cfg.val_size or 10_000
    split = prepare_data(dataset, device=device, val_size=val_size)
    seeds = cfg.selection_seeds
    grid = cfg.grid or {}
    epochs = cfg.selection_epochs
    total = cfg.total_steps(split.n_train, epochs)
    sel = res.doc.setdefault("selection", {})
    sel.update({"val_size": val_size, "train_size": split.n_train, "epochs": epochs,
                "seeds": seeds, "grid": grid,
                "criterion": "mean val_acc over the selection seeds after the last epoch"})
    if len(seeds) == 1:
        sel["seed"] = seeds[0]
    sel.setdefault("runs", [])
    for seed in seeds:
        specs = [_spec(cfg, o, lr, seed, total) for o in cfg.optimizers if o in grid
                 for lr in grid[o]]
        pending = _to_train(specs, res, "selection", log, cfg, split)
        if pending:
            _train_group(cfg, pending, split, res, log, "selection", "selection", interrupt,
                         device)
    chosen = pick_learning_rates(sel["runs"], grid, seeds, epochs)
    sel["chosen_lr"] = chosen
    if cfg.short_epochs is not None and cfg.short_epochs < epochs and cfg.schedule is None:
        # (a schedule over the phase would make the state after short_epochs another run's)
        short = cfg.short_epochs
        sel["short_horizon"] = {
            "epochs": short,
            "chosen_lr": pick_learning_rates(sel["runs"], grid, seeds, short),
            "chosen_lr_first_seed": pick_learning_rates(sel["runs"], grid, seeds[:1], short),
            "note": f"the picks after {short} epochs of the same selection runs (constant "
                    f"rates: a run's state after {short} epochs is that of a {short}-epoch "
                    "run), by the mean over the selection seeds and by the first seed alone",
        }
    res.save()
    log.line("selection: chosen lr " + ", ".join(f"{o}={v:g}" for o, v in chosen.items()))
    return chosen


def _run_lbfgs(cfg, seed, data, res, log, interrupt, adam_seconds) -> None:
    variants = cfg.lbfgs_variants or [LBFGS_DEFAULT_VARIANT]
    budget_examples = cfg.epochs * (data.n_train // cfg.batch_size) * cfg.batch_size
    budgets = res.doc.setdefault("budgets", {
        "example_gradients": budget_examples,
        "epochs_of_gradients": cfg.epochs,
        "seconds_by_seed": {},
        "note": "Adam's budget at batch size --batch-size: example-gradients = epochs x "
                "training images, seconds = its training time (evaluation and compilation "
                "excluded). Each L-BFGS run goes on until it has spent both budgets; the "
                "records where it crossed each are marked 'budget'.",
    })
    if adam_seconds is not None:
        budgets["seconds_by_seed"][str(seed)] = round(adam_seconds, 3)
    threads = set_threads(cfg.threads or 1)
    for v in variants:
        bs = v["batch_size"] or data.n_train
        spec = ModelSpec("lbfgs", dict(v["hparams"]), seed, cfg.init or "pytorch")
        probe = {"phase": "final", "variant": v["label"], "optimizer": "lbfgs",
                 "hparams": jsonable(spec.hparams), "seed": seed, "init": spec.init}
        prev = res.finished(probe)
        if prev is not None:
            res.put(prev)
            log.line(f"resume: lbfgs {v['label']} seed {seed} kept")
            continue
        t0 = time.perf_counter()

        def on_eval(r: RunResult, v=v) -> None:
            res.put(_run_record(r, "final", threads, v["label"]))
            res.save()

        r = train_lbfgs(spec, data, batch_size=bs, max_examples=budget_examples,
                        max_seconds=adam_seconds, on_eval=on_eval)
        res.put(_run_record(r, "final", threads, v["label"]))
        res.save()
        last = r.epochs[-1]
        log.line(f"lbfgs {v['label']} seed {seed}: {r.info['grad_evals']} gradient evaluations, "
                 f"{last.extra['epochs_of_gradients']:.1f} epochs of gradients, "
                 f"{r.info['train_seconds']:.1f} s; test acc {last.test_acc:.4f} "
                 f"({time.perf_counter() - t0:.1f} s with evaluation)")
        interrupt.unit_done()
