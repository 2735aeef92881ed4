"""The command line: ``python -m optlab compare ...``, ``data ...`` and ``summary ...``.

Bad arguments exit with status 2 and one line on stderr (no traceback). Ctrl-C (SIGINT) and
SIGTERM stop a command at any moment, imports included, with one line and status 130 (143 for
SIGTERM), after ``compare`` has saved what it finished. A closed stdout (``... | head -1``) stops
the printing, not the work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds (and saves) as on Ctrl-C."""


#: The signals received (SIGINT, SIGTERM). A library may swallow the KeyboardInterrupt they
#: raise, or turn it into another error (numpy's import does, when interrupted); this list
#: remembers them.
_SIGNALLED: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
    _SIGNALLED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_if_signalled() -> None:
    """Raise again a signal that arrived during the imports and was swallowed there."""
    if _SIGNALLED:
        raise Terminated() if _SIGNALLED[-1] == signal.SIGTERM else KeyboardInterrupt()

USAGE = """\
usage: python -m optlab COMMAND [options]

commands:
  compare   train the paper's MLP on MNIST with several optimizers and write results.json/.csv
            (python -m optlab compare --help for its options)
  curvature the top Hessian eigenvalue of the MLP's loss at init and along training
            (python -m optlab curvature --help)
  data      find, verify or download MNIST / Fashion-MNIST (python -m optlab data --help)
  summary   Markdown tables of results.json files, e.g. python -m optlab summary results/paper
            results/tuned results/lbfgs --out results/SUMMARY.md (python -m optlab summary --help)
"""


class _StoreOnce(argparse._StoreAction):
    """``store``, but an option given twice with different values is an error (argparse would
    keep the last one and drop the other without a word: ``--preset paper --preset tuned``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        seen = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in seen and seen[self.dest] != values:
            parser.error(f"{option_string} given twice ({seen[self.dest]} and {values}); "
                         "give it once")
        seen[self.dest] = values
        setattr(namespace, self.dest, values)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (``prog: error: message``) and exit status 2, and an
    option given twice with different values is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def parse_args(self, *args: Any, **kwargs: Any) -> argparse.Namespace:  # type: ignore[override]
        ns = super().parse_args(*args, **kwargs)
        ns.__dict__.pop("_given_once", None)
        return ns

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: error: {message}")


def _fail(msg: str) -> NoReturn:
    print(msg, file=sys.stderr)
    raise SystemExit(2)


def in_flags(error: Exception, parser: argparse.ArgumentParser) -> str:
    """A library error's one line in the CLI's words: the library names parameters
    (``epochs must be >= 1``, ``add force=True``, ``give another out=...``); the CLI names their
    flags (``--epochs must be >= 1``, ``add --force``, ``give another --out ...``). The
    parameter to blame (the error's ``param``) leads the line; the parser's own table maps each
    parameter (an argparse ``dest``) to its flag."""
    flags = {a.dest: a.option_strings[-1] for a in parser._actions  # noqa: SLF001
             if a.option_strings and a.dest != "help"}
    flags.setdefault("compile", "--no-compile")
    text = str(error)
    param = getattr(error, "param", None)
    if param in flags and re.match(rf"{re.escape(param)}\b(?!=)", text):
        text = flags[param] + text[len(param):]

    def flag(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if value == "True":
            return flags[name]
        return f"{flags[name]} {value.strip(chr(39))}"

    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    return re.sub(rf"(?<![\w.:-])({names})=(True\b|'[^']*'|\.\.\.)", flag, text)


def _parse_lr(text: str) -> dict[str, float]:
    """``0.001`` -> {"*": 0.001}; ``adam=1e-3,sgd=0.1`` -> per optimizer."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        key = name.strip() if sep else "*"
        if sep and not key:
            raise argparse.ArgumentTypeError(f"malformed --lr {text!r}: expected NAME=VALUE")
        if key in out:
            raise argparse.ArgumentTypeError(
                f"--lr {text!r} sets {'the rate' if key == '*' else key} twice; give it once")
        try:
            out[key] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"malformed --lr {text!r}: expected a number (0.001) or NAME=VALUE pairs "
                "(adam=1e-3,sgd=0.1)") from None
    if not out:
        raise argparse.ArgumentTypeError("--lr: empty")
    return out


def _merge_lr(given: list[dict[str, float]]) -> dict[str, float]:
    """The ``--lr`` options given, merged; a rate set twice is refused (no silent winner)."""
    out: dict[str, float] = {}
    for part in given:
        for key, v in part.items():
            if key in out and out[key] != v:
                what = "the rate for all" if key == "*" else f"the rate of {key}"
                _fail(f"python -m optlab compare: error: --lr sets {what} twice ({out[key]:g} "
                      f"and {v:g}); give it once")
            out[key] = v
    return out


def _parse_seeds(text: str) -> list[int]:
    """``3`` -> [0, 1, 2]; ``0,5`` -> [0, 5]; ``7,`` -> [7]. Its errors follow argparse's
    "argument --seeds: " (or --select-seeds), so they do not name the flag again."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a count (3) or a comma list (0,5)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"a count of seeds must be >= 1; got {n}" + (
                f"; for the seed {n} alone give the list {n}," if n == 0 else ""))
    if n > 10_000:
        raise argparse.ArgumentTypeError(f"{n} seeds: at most 10000 seeds; for the one seed "
                                         f"{n} give a list ({n},)")
    return list(range(n))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None


def _warmup_steps(text: str) -> int:
    n = _int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: no warmup); got {n}")
    return n


def _clip_norm(text: str) -> float:
    try:
        c = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, the largest gradient norm allowed (e.g. --clip-norm 1.0); "
            f"got {text!r}") from None
    if not (0 < c < float("inf")):  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0 (the largest gradient norm allowed, e.g. "
            f"1.0); got {text}; leave --clip-norm out for no clipping")
    return c


def compare_parser() -> argparse.ArgumentParser:
    from .rules import FIRST_ORDER, OPTIMIZERS, describe_rules

    p = _OneLineParser(
        prog="python -m optlab compare",
        description=(
            "Train the first paper's MLP (784-128-64-32-10, ReLU, cross-entropy, pixels in "
            "[0, 1]) with several optimizers and record train and test loss/accuracy after "
            "every epoch. Models with the same seed train together in one stacked, compiled "
            "step that applies the core's update rules (optlab.rules). Writes "
            "OUT/results.json and OUT/results.csv after every epoch."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "presets:\n"
            "  paper  sgd, rmsprop, adam, adagrad; lr 0.001; batch 32; 10 epochs; 3 seeds "
            "(the default);\n"
            "         --preset paper without --conventions runs both: PyTorch's into OUT,\n"
            "         Keras 3's into OUT-keras (results/paper, results/paper-keras); with no\n"
            "         --preset at all, one (PyTorch's, or --conventions)\n"
            "  init   sgd and adam at lr 0.001 from pytorch, glorot and he initial weights;\n"
            "         batch 32; 10 epochs; 3 seeds\n"
            f"  tuned  all {len(FIRST_ORDER)} first-order rules; lr picked from each rule's log "
            "grid by the mean\n"
            "         validation accuracy (last 10,000 training images) over seeds 0-2 after\n"
            "         the full 10 epochs (the 3-epoch pick is recorded beside it), then 5 fresh\n"
            "         seeds (3-7) x 10 epochs\n"
            "  lbfgs  L-BFGS (full batch, and batches of 6000) against Adam at equal budgets of\n"
            "         example-gradients and of training time\n"
            "  generalization  momentum, adam, adamw (decay 0.1), amsgrad, lion (lr 1e-4, decay\n"
            "         1.0): held-out accuracy, each rule with its own conventions; batch 32;\n"
            "         10 epochs; 3 seeds; run it with --dataset mnist and --dataset fashion-mnist\n"
            "  batch-size  sgd at lr 0.02; batch 32; 10 epochs; 2 seeds; rerun with\n"
            "         --batch-size B and --lr scaled from 0.02 (linearly or by sqrt(B/32))\n"
            "  schedules  sgd at lr 0.1; batch 32; 3 epochs; 2 seeds; rerun with --schedule\n"
            "         step:every=N / cosine / inverse_time:decay=D\n"
            "  warmup  adam at lr 0.03 with --schedule cosine; batch 32; 3 epochs; 3 seeds; rerun\n"
            "         with --warmup-steps N\n"
            "examples:\n"
            "  python -m optlab compare --preset paper --out results/paper\n"
            "  python -m optlab compare --optimizers adam,sgd --lr adam=1e-3,sgd=0.1 "
            "--epochs 3 --seeds 1\n"
            "  python -m optlab compare --optimizers sgd,adam --schedule cosine "
            "--warmup-steps 500 --clip-norm 1\n"
            "optimizers (--optimizers):\n"
            + "".join(f"  {line}\n" for line in describe_rules().splitlines())
            + "  lbfgs     L-BFGS (quasi-Newton; a closure-based optimizer)\n"),
    )
    p.add_argument("--preset", default=None,
                   choices=("paper", "init", "tuned", "lbfgs", "generalization", "batch-size",
                            "schedules", "warmup"),
                   help="start from a preset (default: paper); the flags below override it")
    p.add_argument("--optimizers", default=None, metavar="A,B,...",
                   help=f"comma-separated names from: {', '.join(OPTIMIZERS)}")
    p.add_argument("--lr", type=_parse_lr, action="append", default=None,
                   metavar="LR|NAME=LR,...",
                   help="learning rate: one value for all first-order rules (0.001), or per "
                        "optimizer (adam=1e-3,sgd=0.1; the others keep the preset's); "
                        "lbfgs=LR sets L-BFGS's step (default 1.0); not with --preset tuned")
    p.add_argument("--epochs", type=_int, default=None, help="epochs per run (paper: 10)")
    p.add_argument("--seeds", type=_parse_seeds, default=None, metavar="N|S1,S2",
                   help="a count N (seeds 0..N-1) or a comma list; a seed fixes the initial "
                        "weights and the batch order (paper: 3)")
    p.add_argument("--batch-size", type=_int, default=None,
                   help="minibatch size (paper: 32); a last partial batch is dropped")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "synthetic"), default=None,
                   help="mnist (default), fashion-mnist, or synthetic (small random data "
                        "of MNIST's shape, for quick checks)")
    p.add_argument("--data-dir", default=None,
                   help="where the IDX files are (default: $OPTLAB_DATA_DIR, then the "
                        "usual places; see python -m optlab data verify)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="auto prefers cuda, then mps, then cpu")
    p.add_argument("--out", default="runs/compare", metavar="DIR",
                   help="output directory for results.json and results.csv "
                        "(default: runs/compare)")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of DIR/results.json (same configuration), "
                        "continue unfinished ones from their last epoch, run the others")
    p.add_argument("--force", action="store_true",
                   help="start over in a DIR that holds results (they are kept as "
                        "DIR/results.json.bak, or .bak2, ... when that is taken); without it "
                        "such a DIR is refused")
    p.add_argument("--threads", type=_int, default=None,
                   help="CPU threads per stack (default: 1 for an eager run or fewer than 4 "
                        "models, else the cores per job, at most 8; never more than the cores)")
    p.add_argument("--jobs", type=_int, default=None, metavar="N",
                   help="train up to N seeds' stacks at once, in parallel processes; the "
                        "results are merged into the one results file (default: 1)")
    p.add_argument("--conventions", choices=("pytorch", "keras"), default=None,
                   help="whose defaults fill the hyperparameters and the initialization: "
                        "pytorch (torch.optim, nn.Linear; the default) or keras (Keras 3: "
                        "RMSprop rho 0.9 and AdaGrad with eps 1e-7 inside the root, AdaGrad's "
                        "accumulator from 0.1, Adam's eps-hat, Glorot-uniform weights); --preset "
                        "paper without it runs both, into OUT and OUT-keras")
    p.add_argument("--init", choices=("pytorch", "glorot", "he"), default=None,
                   help="initial weights (default: the conventions' own); for ablations")
    p.add_argument("--select-epochs", type=_int, default=None,
                   help="tuned: epochs of each grid run (default: --epochs, the full horizon)")
    p.add_argument("--select-seeds", type=_parse_seeds, default=None, metavar="N|S1,S2",
                   help="tuned: the seeds whose mean validation accuracy picks each lr "
                        "(default: 0,1,2; the final runs use --seeds, 3-7)")
    p.add_argument("--schedule", default=None, metavar="NAME[:k=v,...]",
                   help="learning-rate schedule applied to each rule's own rate: constant, "
                        "step:every=N[,gamma=G], cosine[:total=N,lr_min=X] or "
                        "inverse_time:decay=D; a cosine's total defaults to the run's total "
                        "number of updates (epochs x batches per epoch; in the tuned preset's "
                        "grid search, that phase's), so --schedule cosine decays over the whole "
                        "run (default: a constant rate; first-order rules only)")
    p.add_argument("--warmup-steps", type=_warmup_steps, default=None, metavar="N",
                   help="linear warmup over the first N updates (rate x (t+1)/N), on top of "
                        "--schedule or of a constant rate (default: 0, none)")
    p.add_argument("--clip-norm", type=_clip_norm, default=None, metavar="C",
                   help="clip each model's gradient to global norm C (g x min(1, C/|g|), the "
                        "norm over all its parameters, as torch.nn.utils.clip_grad_norm_; "
                        "default: no clipping)")
    p.add_argument("--no-compile", action="store_true",
                   help="run eagerly (default: torch.compile when the run is long enough to "
                        "repay it; CUDA graphs on CUDA)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    return p


def main_compare(argv: list[str]) -> int:
    parser = compare_parser()
    args = parser.parse_args(argv)
    if args.resume and args.force:
        _fail("python -m optlab compare: error: --resume keeps the results in --out and "
              "--force replaces them; give one of the two")
    if args.lr is not None:
        args.lr = _merge_lr(args.lr)
    from . import compare, engine

    _raise_if_signalled()

    overrides: dict[str, Any] = {
        "optimizers": [s.strip() for s in args.optimizers.split(",") if s.strip()]
        if args.optimizers is not None else None,
        "lr": args.lr, "epochs": args.epochs, "seeds": args.seeds,
        "batch_size": args.batch_size, "dataset": args.dataset, "data_dir": args.data_dir,
        "device": args.device, "threads": args.threads, "jobs": args.jobs,
        "compile": False if args.no_compile else None,
        "conventions": args.conventions, "init": args.init,
        "select_epochs": args.select_epochs, "select_seeds": args.select_seeds,
        "schedule": args.schedule, "warmup_steps": args.warmup_steps,
        "clip_norm": args.clip_norm,
    }
    if args.lr is not None and "*" not in args.lr:  # per-optimizer lrs extend the preset's
        base = compare.PRESETS[args.preset or "paper"].get("lr") or {}
        if overrides["optimizers"] is not None:  # the preset's rates of the rules chosen
            base = {k: v for k, v in base.items()
                    if k == "*" or k in overrides["optimizers"]}
        overrides["lr"] = {**base, **args.lr}
    both = args.preset == "paper" and args.conventions is None  # the paper names no framework
    try:
        if both:
            jobs, names = compare.convention_jobs(args.preset, args.out, **overrides)
        else:  # the out as given: OutputDir checks it
            jobs, names = [(compare.make_config(args.preset, **overrides), args.out)], None
        engine.pick_device(jobs[0][0].device)  # fail fast, before loading data
    except (compare.ConfigError, engine.DeviceError) as e:
        _fail(f"python -m optlab compare: error: {in_flags(e, parser)}")
    from .data import DataError

    jsons = [Path(out).expanduser() / "results.json" for _, out in jobs]
    if both and not args.quiet:
        _print(f"--preset paper without --conventions: both readings, PyTorch's into {jsons[0]} "
               f"and Keras 3's into {jsons[1]}")
    try:
        docs = compare.run_comparisons(jobs, resume=args.resume, quiet=args.quiet,
                                       force=args.force, names=names)
    except (compare.ConfigError, engine.DeviceError, DataError) as e:
        _fail(f"python -m optlab compare: error: {in_flags(e, parser)}")
    except KeyboardInterrupt as e:
        _say_interrupted(e, jsons)
        return 143 if isinstance(e, Terminated) else 130
    except OSError as e:  # a full disk, a directory made read-only while running
        where = " or ".join(str(j.parent) for j in jsons)
        _fail(f"python -m optlab compare: error: cannot write in {where}: "
              f"{e.strerror or e}; free space or fix the permissions, then rerun with --resume")
    if not args.quiet:
        from .results import parse_results

        for results_json, doc in zip(jsons, docs, strict=True):
            outcomes = [r.outcome for r in parse_results(doc).runs]
            n, bad = len(outcomes), outcomes.count("diverged")
            _print(f"wrote {results_json} and results.csv: {n} runs"
                   + (f", {bad} diverged" if bad else ""))
    from .mnist.console import OUTPUT_FAILURES

    if OUTPUT_FAILURES:  # the progress lines are not compare's product: say, don't fail
        failure = OUTPUT_FAILURES[0]
        print(f"python -m optlab compare: note: the progress lines could not be written "
              f"({getattr(failure, 'strerror', None) or failure}); the results are complete in "
              f"{' and '.join(str(j) for j in jsons)}", file=sys.stderr)
    return 0


def _say_interrupted(e: KeyboardInterrupt, results_jsons: list[Path]) -> None:
    """The one line after an interrupted compare: what is on disk in each results file (both,
    for the paper preset's two readings), and how to go on."""
    from .results import ResultsFormatError, finished_runs, read_results_doc

    what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
    saved = []
    for results_json in results_jsons:
        try:
            saved.append((len(finished_runs(read_results_doc(results_json))), results_json))
        except ResultsFormatError:
            pass
    if not saved:
        msg = f"{what}: nothing was written to {' or '.join(map(str, results_jsons))}"
    else:
        msg = (f"{what}: " + ", ".join(f"{n} finished run(s) saved in {path}"
                                       for n, path in saved)
               + "; rerun with --resume to complete the rest (an unfinished stack continues "
               "from its last finished epoch)")
    print(f"\n{msg}", file=sys.stderr)


def _print(text: str) -> None:
    """``print`` that stops (quietly) when stdout's reader has gone away; a full disk is
    noted and reported at the end (:func:`optlab.mnist.console.print_line`)."""
    from .mnist.console import print_line

    print_line(text, sys.stdout)


def summary_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="python -m optlab summary",
        description=(
            "Render the summary tables of one or more comparison runs as Markdown: per file a "
            "heading, the provenance (command, date, git commit, device, threads, torch, load "
            "average, wall time) and the final accuracies per optimizer (mean [min, max] over "
            "seeds); the tuned preset's learning-rate choice and the lbfgs preset's budgets "
            "too. Diverged and unfinished runs are counted and labelled."),
        epilog="example:\n  python -m optlab summary results/paper results/tuned "
               "results/lbfgs --out results/SUMMARY.md\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a results.json, or the directory holding one (compare's --out)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the Markdown to FILE (atomically) instead of printing it")
    return p


def main_summary(argv: list[str]) -> int:
    args = summary_parser().parse_args(argv)
    from .atomic import write_text_atomically
    from .summary import SummaryError, summarize

    try:
        text = summarize(args.paths)
    except SummaryError as e:
        _fail(f"python -m optlab summary: error: {e}")
    if args.out is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        return 0
    if not args.out.strip():
        _fail("python -m optlab summary: error: --out is empty; give a file, e.g. "
              "--out results/SUMMARY.md, or leave --out out to print the tables")
    args.out = os.path.expanduser(args.out)  # --out=~/x (no shell expansion), as compare does
    try:
        write_text_atomically(args.out, text)
    except OSError as e:
        _fail(f"python -m optlab summary: error: cannot write --out {args.out}: "
              f"{e.strerror or e}; give a file in an existing, writable directory")
    print(f"wrote {args.out}")
    return 0


def curvature_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="python -m optlab curvature",
        description=(
            "Measure the top eigenvalue of the Hessian of the paper's MLP's loss (power "
            "iteration on Hessian-vector products; the mean cross-entropy on the first N "
            "training images) at initialization and after chosen epochs of training, for each "
            "init and optimizer; for Adam also its effective learning rates lr/(sqrt(v_hat)+eps) "
            "and the top eigenvalue of the preconditioned Hessian. Writes OUT/curvature.json "
            "(atomically, with provenance) after every seed and init."),
        epilog="example:\n  python -m optlab curvature --out results/curvature\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--inits", default="pytorch,glorot", metavar="A,B",
                   help="initializations (pytorch, glorot, he; default: pytorch,glorot)")
    p.add_argument("--optimizers", default="sgd,adam", metavar="A,B",
                   help="optimizers trained side by side from each init (default: sgd,adam)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of all (0.001)")
    p.add_argument("--epochs", type=_int, default=10, help="epochs of training (10)")
    p.add_argument("--at", default=None, metavar="E1,E2",
                   help="epochs after which to measure; 0 is the initial network (default: "
                        "those of 0,1,2,5,10 that are <= --epochs)")
    p.add_argument("--seeds", type=_parse_seeds, default=[0], metavar="N|S1,S2",
                   help="seeds (initial weights and batch order; default: 0)")
    p.add_argument("--images", type=_int, default=10_000,
                   help="the Hessian is that of the loss on the first N training images "
                        "(default 10,000)")
    p.add_argument("--max-iter", type=_int, default=60,
                   help="Hessian-vector products per power iteration at most (60)")
    p.add_argument("--tol", type=float, default=3e-4,
                   help="relative change of the estimate that ends a power iteration (3e-4)")
    p.add_argument("--threads", type=_int, default=None, help="CPU threads (default 1)")
    p.add_argument("--data-dir", default=None, help="where the MNIST IDX files are")
    p.add_argument("--dataset", choices=("mnist", "synthetic"), default="mnist",
                   help="mnist (default) or synthetic (random images, for quick checks)")
    p.add_argument("--out", default="runs/curvature", metavar="DIR",
                   help="output directory for curvature.json (default: runs/curvature)")
    p.add_argument("--force", action="store_true",
                   help="start over in a DIR that holds curvature.json (it is kept as "
                        "curvature.json.bak, or .bak2, ... when that is taken)")
    p.add_argument("--resume", action="store_true",
                   help="keep the seeds and inits OUT/curvature.json already holds (same "
                        "configuration) and measure the others")
    p.add_argument("--no-compile", action="store_true", help="train eagerly")
    return p


def main_curvature(argv: list[str]) -> int:
    parser = curvature_parser()
    args = parser.parse_args(argv)
    from . import compare, engine
    from .atomic import write_text_atomically
    from .data import DataError
    from .mlp import INITS
    from .rules import FIRST_ORDER

    where = "python -m optlab curvature: error:"
    inits = [s.strip() for s in args.inits.split(",") if s.strip()]
    optimizers = [s.strip() for s in args.optimizers.split(",") if s.strip()]
    for flag, names, known in (("--inits", inits, INITS), ("--optimizers", optimizers,
                                                            FIRST_ORDER)):
        for name in names:
            if name not in known:
                _fail(f"{where} {flag}: {name!r} is not one of {', '.join(known)}")
        if len(set(names)) < len(names):
            _fail(f"{where} {flag}: each name once (a repeat would measure the same runs "
                  f"twice); got {','.join(names)}")
    if args.epochs < 1:
        _fail(f"{where} --epochs must be >= 1; got {args.epochs}")
    if args.at is None:
        at = [e for e in (0, 1, 2, 5, 10) if e <= args.epochs]
    else:
        try:
            at = sorted({int(e) for e in args.at.split(",") if e.strip()})
        except ValueError:
            _fail(f"{where} --at {args.at!r}: give epochs as a comma list, e.g. 0,1,2,5,10")
    if not inits or not optimizers or not at:
        _fail(f"{where} give at least one init, optimizer and epoch (--inits, --optimizers, "
              "--at)")
    outside = [e for e in at if not 0 <= e <= args.epochs]
    if outside:
        _fail(f"{where} --at {outside[0]} is outside 0 .. --epochs {args.epochs}; measure "
              f"within the run, or raise --epochs")
    if not 0 < args.lr < math.inf:
        _fail(f"{where} --lr must be a finite number > 0; got {args.lr}")
    for flag, value in (("--images", args.images), ("--max-iter", args.max_iter),
                        ("--threads", 1 if args.threads is None else args.threads)):
        if value < 1:
            _fail(f"{where} {flag} must be >= 1; got {value}")
    if not 0 <= args.tol < math.inf:
        _fail(f"{where} --tol must be a finite number >= 0 (0: always --max-iter products); "
              f"got {args.tol}")
    out = Path(args.out).expanduser()
    target = out / "curvature.json"
    if args.force and args.resume:
        _fail(f"{where} --force starts over and --resume continues; give one of them")
    if target.exists() and not (args.force or args.resume):
        _fail(f"{where} {target} exists; add --resume to continue it, --force to start over "
              f"(it is kept as a .bak), or give another --out")
    earlier: dict[str, Any] | None = None
    if args.resume and target.exists():
        from .curvature import read_curvature

        try:
            earlier = read_curvature(target)
            runs = earlier.get("runs")
            if not isinstance(runs, list) or not all(
                    isinstance(r, dict) and "seed" in r and "init" in r for r in runs):
                raise ValueError(f"{target}: its runs are not a list of runs with a seed and "
                                 "an init")
        except ValueError as e:
            _fail(f"{where} cannot resume: {e}; or use --force to start over (the file is "
                  "kept as a .bak)")
    if out.exists() and not out.is_dir():
        _fail(f"{where} --out {out} is a file, not a directory; give a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _fail(f"{where} cannot use --out {out}: {e.strerror or e}; give a writable directory")
    engine.set_threads(args.threads or 1)
    engine.enable_compile_cache()
    try:
        cfg = compare.make_config("paper", dataset=args.dataset, data_dir=args.data_dir,
                                  synthetic_size=(2048, 512))
        dataset = compare.load_data(cfg)
    except (compare.ConfigError, DataError) as e:
        _fail(f"{where} {in_flags(e, parser)}")
    device = engine.pick_device("cpu")
    data = engine.prepare_data(dataset, device=device)
    images = min(args.images, data.n_train)
    prov = compare.provenance(device, dataset, cfg)
    prov["threads"] = args.threads or 1
    doc: dict[str, Any] = {
        "provenance": prov,
        "config": {"inits": inits, "optimizers": optimizers, "lr": args.lr,
                   "epochs": args.epochs, "at": at, "seeds": args.seeds, "batch_size": 32,
                   "hessian_of": f"mean cross-entropy on the first {images} training images",
                   "n_images": images, "max_iter": args.max_iter, "tol": args.tol,
                   "dataset": args.dataset, "conventions": "pytorch"},
        "points": [], "runs": [],
    }
    done: set[tuple[int, str]] = set()
    if earlier is not None:
        if earlier["config"] != doc["config"]:
            changed = sorted(k for k in doc["config"].keys() | earlier["config"].keys()
                             if doc["config"].get(k) != earlier["config"].get(k))
            _fail(f"{where} --resume: {target} was measured with another configuration "
                  f"({', '.join(changed)} differ); give the same options, or --force")
        doc["points"] = list(earlier.get("points", []))
        doc["runs"] = list(earlier.get("runs", []))
        done = {(r["seed"], r["init"]) for r in doc["runs"]}
        _print(f"resuming {target}: {len(done)} seed/init pair(s) already measured")
    elif target.exists():  # --force: keep what was there, as compare --force does
        from .mnist.output import _free_backup_name

        backup = _free_backup_name(target)
        os.replace(target, backup)
        _print(f"kept the earlier {target.name} as {backup}")
    t_start = time.perf_counter()
    try:
        _measure_curvature(args, doc, done, data, target, t_start)
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        pairs = len({(r["seed"], r["init"]) for r in doc["runs"]})
        print(f"\npython -m optlab curvature: {what}: {pairs} finished seed/init pair(s) are "
              f"saved in {target}; rerun with --resume to measure the others", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    doc["provenance"]["finished"] = _now()
    write_text_atomically(target, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    _print(f"wrote {target}: {len(doc['points'])} measurements")
    return 0


def _measure_curvature(args: argparse.Namespace, doc: dict[str, Any],
                       done: set[tuple[int, str]], data: Any, target: Path,
                       t_start: float) -> None:
    """Measure every (seed, init) pair not in ``done``, writing ``target`` after each."""
    from .atomic import write_text_atomically
    from .curvature import curvature_along_training

    cfg = doc["config"]
    inits, optimizers, at, images = cfg["inits"], cfg["optimizers"], cfg["at"], cfg["n_images"]
    for seed in args.seeds:
        for init in inits:
            if (seed, init) in done:
                continue
            t0 = time.perf_counter()
            points, runs = curvature_along_training(
                data, seed=seed, init=init, optimizers=optimizers, lr=args.lr,
                epochs=args.epochs, at=at, n_images=images, max_iter=args.max_iter,
                tol=args.tol, compile=False if args.no_compile else None, log=_print)
            doc["points"] += points
            doc["runs"] += runs
            doc["provenance"]["wall_seconds"] = round(time.perf_counter() - t_start, 1)
            write_text_atomically(target, json.dumps(doc, indent=1, allow_nan=False) + "\n")
            _print(f"seed {seed} {init}: done in {time.perf_counter() - t0:.0f} s")


def main_data(argv: list[str]) -> int:
    """``python -m optlab data verify [--dataset NAME] [--data-dir DIR]`` and
    ``python -m optlab data download [--dataset NAME] [--data-dir DIR] [--mirror URL ...]``.

    ``argv`` is what follows ``data`` (a leading ``"data"`` is accepted too). Returns 0 on
    success and 2 when ``verify`` finds a problem; :class:`DataError` (download failure, unknown
    data set) propagates to the caller, which prints its one line.
    """
    argv = list(argv)
    if argv[:1] == ["data"]:
        argv = argv[1:]
    from .data import (
        DATASETS,
        DataError,
        _mirror_url,
        _spec,
        check_data_dir,
        download_dataset,
        verify_report,
    )

    parser = _OneLineParser(prog="python -m optlab data",
                            description="Check or fetch the MNIST data sets.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_verify = sub.add_parser("verify", help="say where each data set is and check its files")
    p_verify.add_argument("--dataset", choices=DATASETS, default=None,
                          help="one data set (default: all; only mnist is required)")
    p_verify.add_argument("--data-dir", default=None, help="look only here (or DIR/<dataset>)")
    p_down = sub.add_parser("download", help="fetch a data set from the public mirrors")
    p_down.add_argument("--dataset", choices=DATASETS, default="mnist")
    p_down.add_argument("--data-dir", default=None,
                        help="download into DIR/<dataset> (default: the user cache)")
    p_down.add_argument("--mirror", action="append", default=None, metavar="URL",
                        help="base URL to try instead of the built-in mirrors (repeatable): "
                             "http(s)://..., file:///dir/, or a local directory")
    p_down.add_argument("--deadline", type=float, default=600.0, metavar="SECONDS",
                        help="give up on a mirror after this long for one file, or when it "
                             "sends less than 4 KiB/s after 20 s (default: 600)")
    args = parser.parse_args(argv)
    check_data_dir(args.data_dir)
    if args.command == "verify":
        ok, lines = verify_report(args.dataset, args.data_dir)
        print("\n".join(lines))
        return 0 if ok else 2
    dest = Path(args.data_dir).expanduser() / args.dataset if args.data_dir else None
    mirrors = [_mirror_url(m) for m in args.mirror] if args.mirror else None
    if not args.deadline > 0:
        raise DataError(f"--deadline must be > 0 seconds; got {args.deadline:g}")
    where = download_dataset(args.dataset, dest=dest, mirrors=mirrors,
                             log=lambda msg: print(msg, flush=True), deadline=args.deadline,
                             timeout=min(60.0, args.deadline), progress=sys.stderr.isatty())
    print(f"{_spec(args.dataset).title} is in {where}")
    return 0


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover
        pass


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "compare":
        return main_compare(rest)
    if cmd == "summary":
        return main_summary(rest)
    if cmd == "curvature":
        return main_curvature(rest)
    if cmd == "data":
        from .data import DataError

        try:
            return main_data(rest)
        except DataError as e:
            _fail(f"python -m optlab data: error: {e}")
    _fail(f"python -m optlab: error: unknown command {cmd!r} (choose compare, curvature, data or "
          "summary)")


def main(argv: list[str] | None = None) -> int:
    """Run a command; also turns Ctrl-C/SIGTERM anywhere (imports, downloads) into one line
    and status 130/143, and a closed stdout into silence."""
    argv = list(sys.argv[1:] if argv is None else argv)
    previous: dict[int, Any] = {}
    _SIGNALLED.clear()
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL):
                previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread (e.g. called from a worker): keep the defaults
        pass
    for name in ("stdout", "stderr"):  # closed (`2>&-`): Python sets None; write nowhere
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as e:  # printing to a full disk (`> /dev/full`): what compare cannot blame
        _silence_stdout()  # on its --out (it has said so itself)
        print(f"python -m optlab {' '.join(argv[:1])}: error: cannot write the output: "
              f"{e.strerror or e}; free space where stdout goes, or use --out", file=sys.stderr)
        return 2
    except Exception:
        if not _SIGNALLED:
            raise
        return _say_stopped(argv, _SIGNALLED[-1] == signal.SIGTERM)  # an import gave up
    except KeyboardInterrupt as e:
        return _say_stopped(argv, isinstance(e, Terminated))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _say_stopped(argv: list[str], terminated: bool) -> int:
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    print(f"\npython -m optlab {' '.join(argv[:1])}: {what}", file=sys.stderr)
    return 143 if terminated else 130


def _exit(code: int) -> None:
    """End the process with ``code`` once the command has returned and its files are written.

    The exit handlers (``atexit``: torch's, multiprocessing's, logging's) run, the streams are
    flushed, then the process ends at once (``os._exit``) instead of letting Python free every
    module and tensor one by one: that teardown took about 1.3 s after a compiled run and
    0.5 s after an eager one (one-off timings of ``python -m optlab compare`` from its last
    line of output to its exit). A closed stdout (``| head``) at the final flush is silence,
    as everywhere in the CLI; a full disk there is one line and status 2.

    After an interruption (status 130 or 143) it ends at once, without the handlers, as it
    always did: so that Python does not turn a KeyboardInterrupt that went through an
    extension's import into a death by SIGINT, and a second Ctrl-C cannot interrupt them."""
    if code not in (130, 143):
        import atexit

        # the work is done and written: a late Ctrl-C or SIGTERM must not turn that into a
        # traceback or a death by signal while the handlers run
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except ValueError:  # pragma: no cover - not the main thread
                pass
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            if stream is sys.stdout:
                _silence_stdout()
        except (OSError, ValueError) as e:
            if stream is sys.stdout and code == 0:
                code = 2
                try:
                    print(f"python -m optlab: error: cannot write the output: "
                          f"{getattr(e, 'strerror', None) or e}; free space where stdout "
                          "goes", file=sys.stderr, flush=True)
                except (OSError, ValueError):
                    pass
    os._exit(code)


def cli() -> None:
    """The ``optlab`` console script, and ``python -m optlab``: :func:`main`, then
    :func:`_exit`, also when the command ended by ``SystemExit`` (argparse's ``--help`` and
    usage errors) or by an interrupt that came too late for :func:`main` to catch."""
    try:
        code = main()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt as e:
        code = _say_stopped(sys.argv[1:], isinstance(e, Terminated))
    _exit(code)


if __name__ == "__main__":
    cli()
