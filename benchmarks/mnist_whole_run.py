"""The whole run a user feels: process start to results written, four ways, side by side.

    python benchmarks/mnist_whole_run.py [--epochs 2 10] [--rounds 1] [--threads N] [--json OUT]

Each variant trains the first paper's experiment — the MLP 784-128-64-32-10 (ReLU), SGD, RMSprop,
Adam and AdaGrad at lr 0.001, batches of 32, one seed — records train and test accuracy after
every epoch and writes a results file, **in a process of its own** (the parent times it from
spawn to exit and reads its peak RSS from ``wait4``):

(a) ``DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)`` + ``nn.Sequential`` + one
    ``torch.optim`` optimizer, the four models one after the other: what tutorials write;
(b) a hand-written loop: the data as two tensors, one ``randperm`` per epoch, slices, the same
    models and optimizers;
(c) the ``torch.func`` ensemble, the standard way to train many models at once: the four models'
    parameters stacked each step (``torch.stack``, as ``stack_module_state`` does) and run by
    ``vmap`` of ``functional_call``, one backward for all, then one ``torch.optim`` per model;
(d) ``python -m optlab compare --optimizers sgd,rmsprop,adam,adagrad --seeds 1``, with the
    inductor cache cold (a fresh ``TORCHINDUCTOR_CACHE_DIR``) and then warm (the same one again,
    primed first, untimed, by one compiled epoch of the same stack, so that a cold run too
    short to compile still leaves the warm one a graph).

The variants run interleaved (round-robin, rotated each round). Every child uses ``--threads``
torch threads (default: all cores). MNIST is read with ``optlab.data`` (``$OPTLAB_DATA_DIR``).
Ratios are (a)'s wall time over each other's; the load average is printed, since on a shared
machine the numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER = ("sgd", "rmsprop", "adam", "adagrad")
TORCH_OPT = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adagrad": "Adagrad"}
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Children: one variant each, run as `python mnist_whole_run.py --child VARIANT ...`
# ---------------------------------------------------------------------------------------------


def _data():
    import torch

    from optlab.data import load_dataset

    ds = load_dataset("mnist")
    x = torch.as_tensor(ds.train_images).reshape(-1, 784).float() / 255
    xt = torch.as_tensor(ds.test_images).reshape(-1, 784).float() / 255
    return x, torch.as_tensor(ds.train_labels).long(), xt, torch.as_tensor(ds.test_labels).long()


def _model(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _child(variant: str, epochs: int, out: str) -> None:
    import torch

    x, y, xt, yt = _data()
    f = torch.nn.functional
    history: dict[str, list[tuple[float, float]]] = {name: [] for name in PAPER}
    if variant in ("a", "b"):
        for name in PAPER:
            model = _model(0)
            opt = getattr(torch.optim, TORCH_OPT[name])(model.parameters(), lr=1e-3)
            g = torch.Generator().manual_seed(0)
            if variant == "a":
                from torch.utils.data import DataLoader, TensorDataset

                loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)
            for _ in range(epochs):
                if variant == "a":
                    batches = iter(loader)
                else:
                    perm = torch.randperm(x.shape[0], generator=g)
                    batches = ((x[perm[i:i + 32]], y[perm[i:i + 32]])
                               for i in range(0, x.shape[0] - 31, 32))
                for xb, yb in batches:
                    opt.zero_grad()
                    f.cross_entropy(model(xb), yb).backward()
                    opt.step()
                history[name].append((_accuracy(model, x, y), _accuracy(model, xt, yt)))
    elif variant == "c":
        from torch.func import functional_call

        models = [_model(0) for _ in PAPER]
        opts = [getattr(torch.optim, TORCH_OPT[n])(m.parameters(), lr=1e-3)
                for n, m in zip(PAPER, models, strict=True)]
        base = models[0]
        names = [n for n, _ in base.named_parameters()]

        def one(params, xb):
            return functional_call(base, params, (xb,))

        ensemble = torch.vmap(one, in_dims=(0, None))
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0], generator=g)
            for i in range(0, x.shape[0] - 31, 32):
                xb, yb = x[perm[i:i + 32]], y[perm[i:i + 32]]
                stacked = {n: torch.stack([dict(m.named_parameters())[n] for m in models])
                           for n in names}
                logits = ensemble(stacked, xb)  # (K, B, 10)
                loss = f.cross_entropy(logits.reshape(-1, 10), yb.repeat(len(models)),
                                       reduction="sum") / xb.shape[0]
                for o in opts:
                    o.zero_grad()
                loss.backward()
                for o in opts:
                    o.step()
            for name, m in zip(PAPER, models, strict=True):
                history[name].append((_accuracy(m, x, y), _accuracy(m, xt, yt)))
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    Path(out).write_text(json.dumps({"variant": variant, "epochs": epochs,
                                     "history": history}), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Parent: spawn, time, read peak RSS
# ---------------------------------------------------------------------------------------------


def _spawn(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit status of one child process."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = proc.returncode = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            print(f"    failed ({code}): {lines[-1] if lines else ''}", flush=True)
    return wall, usage.ru_maxrss / 1024, code


def _prime(cache: Path, env: dict[str, str], threads: int | None) -> None:
    """Untimed: compile the paper's stack once into ``cache`` (one epoch of MNIST, compile
    forced: the same shapes as the timed run), so that the "warm" row finds a compiled graph
    and the cache's marker even when the cold row was too short to compile."""
    code = ("import sys, tempfile; from optlab import compare; "
            "cfg = compare.make_config(optimizers=list(sys.argv[1].split(',')), epochs=1, "
            "seeds=[0], compile=True, "
            "threads=int(sys.argv[2]) if sys.argv[2] else None); "
            "compare.run_comparison(cfg, tempfile.mkdtemp(), quiet=True)")
    subprocess.run([sys.executable, "-c", code, ",".join(PAPER), str(threads or "")],
                   env={**env, "TORCHINDUCTOR_CACHE_DIR": str(cache)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _breakdown(out: Path, wall: float) -> dict | None:
    """Where (d)'s wall time went, from the results file it wrote: training steps, evaluation,
    the first compiled call (compile), and the rest (process start, imports, data, writing,
    exit); with the threads it chose."""
    try:
        doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
        run = doc["runs"][0]
        train = sum(e["seconds"] for e in run["epochs"])
        evals = sum(e.get("eval_seconds") or 0.0 for e in run["epochs"])
        comp = run.get("compile_seconds") or 0.0
        prov = doc["provenance"]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return {"train_s": train, "eval_s": evals, "compile_s": comp,
            "other_s": wall - train - evals - comp, "threads": prov.get("threads"),
            "eval_threads": prov.get("eval_threads"), "compile": prov.get("compile"),
            "busy_cores_at_start": prov.get("busy_cores_at_start")}


def _describe(p: dict) -> str:
    return (f"train {p['train_s']:.1f} s on {p['threads']} thr + eval {p['eval_s']:.1f} s on "
            f"{p['eval_threads']} thr + compile {p['compile_s']:.1f} s "
            f"({p['compile'] or 'eager'}) + start, data, writing, exit {p['other_s']:.1f} s; "
            f"busy cores at start {p['busy_cores_at_start']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[2, 10])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median kept)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of every variant (default: each its own default: "
                         "torch's (all cores) for a-c, optlab's rule for d)")
    ap.add_argument("--variants", default="a,b,c,d", help="subset of a,b,c,d")
    ap.add_argument("--json", default=None, help="also write every measurement to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        _child(args.child, args.epochs[0], args.out)
        return 0

    variants = [v for v in args.variants.split(",") if v]
    work = Path(tempfile.mkdtemp(prefix="optlab-whole-run-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    thread_args = ["--threads", str(args.threads)] if args.threads else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    load0 = os.getloadavg()
    print(f"{os.cpu_count()} cores, {args.threads or 'default'} threads per run; load average "
          f"{load0[0]:.2f}; epochs {args.epochs}; rounds {args.rounds}", flush=True)
    rows: list[dict] = []
    for epochs in args.epochs:
        for r in range(args.rounds):
            cache = work / f"inductor-{epochs}-{r}"
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                kinds = ["cold", "warm"] if v == "d" else [""]
                for kind in kinds:
                    out = work / f"{v}{kind}-{epochs}-{r}"
                    if v == "d" and kind == "warm":  # the cold run may have run eagerly
                        _prime(cache, env, args.threads)  # (short runs): leave a graph
                    if v == "d":
                        cmd = [sys.executable, "-m", "optlab", "compare", "--optimizers",
                               ",".join(PAPER), "--epochs", str(epochs), "--seeds", "1",
                               *thread_args, "--quiet", "--out", str(out)]
                        env_v = {**env, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
                    else:
                        cmd = [sys.executable, __file__, "--child", v, "--epochs", str(epochs),
                               *thread_args, "--out", str(out)]
                        env_v = env
                    wall, rss, rc = _spawn(cmd, env_v)
                    label = v + (f" ({kind} cache)" if kind else "")
                    parts = _breakdown(out, wall) if v == "d" and rc == 0 else None
                    print(f"  {epochs:>2} epochs, round {r + 1}: {label:<16} {wall:7.1f} s "
                          f"{rss:7.0f} MiB  (load average {os.getloadavg()[0]:.1f})"
                          + (f"\n      {_describe(parts)}" if parts else ""), flush=True)
                    rows.append({"epochs": epochs, "round": r, "variant": v, "cache": kind,
                                 "seconds": wall, "peak_rss_mib": rss, "status": rc,
                                 "load": os.getloadavg()[0], "breakdown": parts})
    shutil.rmtree(work, ignore_errors=True)
    labels = {"a": "(a) DataLoader + torch.optim, 4 models in turn",
              "b": "(b) hand-written loop, one randperm per epoch",
              "c": "(c) torch.func ensemble (vmap of functional_call)",
              "d": "(d) python -m optlab compare"}
    print(f"\n{'variant':<52} {'epochs':>6} {'wall s':>8} {'peak MiB':>9} {'(a)/this':>9}")
    for epochs in args.epochs:
        def median(v, kind, _e=epochs):
            xs = sorted(x["seconds"] for x in rows
                        if x["epochs"] == _e and x["variant"] == v and x["cache"] == kind)
            return xs[len(xs) // 2] if xs else float("nan")

        base = median("a", "")
        for v in variants:
            for kind in (["cold", "warm"] if v == "d" else [""]):
                s = median(v, kind)
                rss = max(x["peak_rss_mib"] for x in rows
                          if x["epochs"] == epochs and x["variant"] == v and x["cache"] == kind)
                name = labels[v] + (f", {kind} cache" if kind else "")
                print(f"{name:<52} {epochs:>6} {s:8.1f} {rss:9.0f} {base / s:8.2f}x")
    load1 = os.getloadavg()
    print(f"load average at end {load1[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows,
                                               "load": [load0, load1]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
