"""Seconds per model-epoch: the loop a reader would write against optlab's engine, one process.

    python benchmarks/mnist_epoch.py [--steps 300] [--rounds 3] [--threads 1] [--json OUT]

Measured, side by side and interleaved (round-robin, ``--rounds`` times; the median is kept):

(a)  ``DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)`` + ``nn.Sequential`` +
     ``torch.optim.Adam`` + ``F.cross_entropy`` + ``backward()``: the reader's loop, one model;
(b1) optlab's engine, one model (Adam, the core's rule, compiled step);
(b4) optlab's engine, the paper's four optimizers (SGD, RMSprop, Adam, AdaGrad) in one stack;
(g)  the GEMM-only bound: just the step's matrix products, batched as the engine batches
     them (K = 1 and K = 4), nothing else;
(e)  apart, one epoch's evaluation of the four models (training and test set): the broadcast
     form the engine used before, and :func:`optlab.mlp.evaluate` on ``--threads`` threads and
     on the idle cores (:func:`optlab.engine.eval_threads`), as a run evaluates.

Each measurement runs ``--steps`` steps of batch 32 after a warm-up (which absorbs compilation;
the compile time is reported apart) and is **extrapolated** to a full epoch (1875 steps). The
engine's figure includes its per-epoch shuffle of the steps' share of the data. Uses MNIST if
it is found (``optlab.data.load_dataset``), else random data of MNIST's shape (timing does not
depend on the pixels). Prints the load average: on a shared machine the numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from optlab import engine, mlp
from optlab.engine import ModelSpec

STEPS_PER_EPOCH = 60_000 // 32


def load_images():
    try:
        from optlab.data import DataError, load_dataset

        ds = load_dataset("mnist")
        return ds, "MNIST"
    except (ImportError, DataError):
        from optlab.data import synthetic_dataset

        return synthetic_dataset(60_000, 10_000), "random data of MNIST's shape"


def reader_loop(x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """(a): what the tutorials write. Returns seconds for ``steps`` steps (after warm-up)."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

    def run(n):
        it = iter(loader)
        for _ in range(n):
            xb, yb = next(it)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()

    run(30)
    t0 = time.perf_counter()
    run(steps)
    return time.perf_counter() - t0


def engine_steps(ds, specs, steps: int) -> tuple[float, float | None]:
    """(b): optlab's train_stack on ``steps`` batches (one short epoch); returns the training
    seconds (first step excluded: it holds the compilation, returned apart)."""
    n = (steps + 1) * 32

    class Sub:
        pass

    sub = Sub()
    sub.train_images, sub.train_labels = ds.train_images[:n], ds.train_labels[:n]
    sub.test_images, sub.test_labels = ds.test_images[:64], ds.test_labels[:64]
    data = engine.prepare_data(sub)
    res = engine.train_stack(specs, data, epochs=1, compile=True)
    return res[0].epochs[0].seconds, res[0].compile_seconds


def broadcast_evaluate(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's evaluation before 30 November 2026, kept as the baseline of (e): the
    shared input broadcast against each model's first layer (``torch.matmul`` of ``(B, 784)``
    with ``(K, 784, 128)``), all rows in one chunk for K = 4."""
    k = flat.shape[0]
    logits = mlp.forward(flat, x)
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, y.view(1, -1, 1).expand(k, -1, 1)).squeeze(-1)
    return nll.mean(dim=1).double(), (logits.argmax(dim=-1) == y).double().mean(dim=1)


def evaluation(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor,
               how: str, threads: int) -> float:
    """(e): one epoch's evaluation of the paper's four models (the training and the test set),
    ``how`` = ``broadcast`` (the old form) or ``engine`` (:func:`optlab.mlp.evaluate`), on
    ``threads`` threads. Seconds, the best of 2 after a warm-up."""
    flat = torch.stack([mlp.init_flat(s) for s in range(4)])
    fn = broadcast_evaluate if how == "broadcast" else mlp.evaluate
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fn(flat, xt, yt)
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            fn(flat, x, y)
            fn(flat, xt, yt)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return best


def gemm_bound(k: int, steps: int) -> float:
    """(g): only the matrix products of ``steps`` training steps, batched as the engine does."""
    b = 32
    flat = mlp.init_flat(0).unsqueeze(0).repeat(k, 1)
    ps = mlp.unflatten(flat)
    x = torch.rand(b, 784)
    acts = [torch.rand(k, b, n) for n in (128, 64, 32)]
    gzs = [torch.rand(k, b, n) for n in (128, 64, 32, 10)]

    def one():
        h = torch.matmul(x, ps[0])
        for j in (1, 2, 3):
            h = torch.matmul(acts[j - 1], ps[2 * j])
        torch.matmul(x.t(), gzs[0])
        for j in (1, 2, 3):
            torch.matmul(acts[j - 1].transpose(1, 2), gzs[j])
            torch.matmul(gzs[j], ps[2 * j].transpose(1, 2))
        return h

    for _ in range(30):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="timed steps per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for every variant")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    engine.enable_compile_cache()
    torch.set_num_threads(args.threads)
    ds, what = load_images()
    x = ds.train_images.reshape(-1, 784).float() / 255
    y = ds.train_labels
    paper = [ModelSpec(o, {"lr": 1e-3}, 0) for o in ("sgd", "rmsprop", "adam", "adagrad")]
    single = [ModelSpec("adam", {"lr": 1e-3}, 0)]
    load0 = os.getloadavg()
    print(f"data: {what}; torch {torch.__version__}; threads {args.threads}; "
          f"{args.steps} steps per measurement, extrapolated to {STEPS_PER_EPOCH} steps/epoch; "
          f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)

    # before the warm-up: its compile workers would count as other work
    ev_threads = engine.eval_threads()  # what a run on this machine would take now
    # warm-up of the engine: compilation (cold or from the inductor cache), reported apart
    compile_s = {}
    for name, specs in (("b1", single), ("b4", paper)):
        t0 = time.perf_counter()
        _, c = engine_steps(ds, specs, 20)
        compile_s[name] = c if c is not None else time.perf_counter() - t0
    print(f"compile (first step, cache at {os.environ.get('TORCHINDUCTOR_CACHE_DIR')}): "
          f"one model {compile_s['b1']:.1f} s, four models {compile_s['b4']:.1f} s", flush=True)

    xt = ds.test_images.reshape(-1, 784).float() / 255
    yt = ds.test_labels
    samples: dict[str, list[float]] = {k: [] for k in ("a", "b1", "b4", "g1", "g4")}
    evals: dict[str, list[float]] = {"e_broadcast": [], "e_engine": [], "e_engine_idle": []}
    for r in range(args.rounds):
        samples["a"].append(reader_loop(x, y, args.steps))
        samples["b1"].append(engine_steps(ds, single, args.steps)[0])
        samples["b4"].append(engine_steps(ds, paper, args.steps)[0])
        samples["g1"].append(gemm_bound(1, args.steps))
        samples["g4"].append(gemm_bound(4, args.steps))
        evals["e_broadcast"].append(evaluation(x, y, xt, yt, "broadcast", args.threads))
        evals["e_engine"].append(evaluation(x, y, xt, yt, "engine", args.threads))
        evals["e_engine_idle"].append(evaluation(x, y, xt, yt, "engine", ev_threads))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s"
                                             for k, v in {**samples, **evals}.items()),
              flush=True)
    per_epoch = {k: statistics.median(v) / args.steps * STEPS_PER_EPOCH
                 for k, v in samples.items()}
    eval_epoch = {k: statistics.median(v) for k, v in evals.items()}
    k_of = {"a": 1, "b1": 1, "b4": 4, "g1": 1, "g4": 4}
    per_model = {k: v / k_of[k] for k, v in per_epoch.items()}
    load1 = os.getloadavg()
    labels = {
        "a": "(a) DataLoader(TensorDataset) + nn.Sequential + torch.optim.Adam, 1 model",
        "b1": "(b) optlab engine, 1 model (Adam, compiled step)",
        "b4": "(b) optlab engine, paper's 4 optimizers in one stack",
        "g1": "GEMM-only bound, K=1",
        "g4": "GEMM-only bound, K=4",
    }
    print(f"\n{'variant':<76} {'s/epoch':>8} {'s/model-epoch':>14}")
    for k in samples:
        print(f"{labels[k]:<76} {per_epoch[k]:8.2f} {per_model[k]:14.3f}")
    four_reader = 4 * per_epoch["a"]
    print(f"\nspeed-up, one model: (a)/(b1) = {per_epoch['a'] / per_epoch['b1']:.2f}x")
    print(f"speed-up, paper's four optimizers: 4 x (a) / (b4) = "
          f"{four_reader / per_epoch['b4']:.2f}x  (target >= 5x)")
    print(f"engine vs GEMM-only bound: K=1 {per_epoch['b1'] / per_epoch['g1']:.2f}x, "
          f"K=4 {per_epoch['b4'] / per_epoch['g4']:.2f}x")
    print(f"\nevaluation per epoch, the four models on the 60,000 training and 10,000 test "
          f"images (not in the rows above):\n"
          f"  broadcast form (before), {args.threads} thr: {eval_epoch['e_broadcast']:.2f} s\n"
          f"  optlab.mlp.evaluate, {args.threads} thr:      {eval_epoch['e_engine']:.2f} s "
          f"({eval_epoch['e_broadcast'] / eval_epoch['e_engine']:.2f}x)\n"
          f"  optlab.mlp.evaluate, {ev_threads} thr (the idle cores, what a run takes): "
          f"{eval_epoch['e_engine_idle']:.2f} s "
          f"({eval_epoch['e_broadcast'] / eval_epoch['e_engine_idle']:.2f}x)")
    print(f"load average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"threads": args.threads, "steps": args.steps, "rounds": args.rounds,
                       "data": what, "samples_s": samples, "s_per_epoch": per_epoch,
                       "s_per_model_epoch": per_model, "compile_s": compile_s,
                       "eval_s": evals, "eval_s_per_epoch": eval_epoch,
                       "eval_threads": ev_threads,
                       "load_start": load0, "load_end": load1, "torch": torch.__version__},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
