"""Where a compiled stack's training step spends its time: matrix products against the rest.

    python benchmarks/profile_stack.py [--steps 600] [--threads 1] [--optimizers sgd,rmsprop,...]

Trains the paper's four optimizers (default) as one compiled stack on the first ``--steps`` x 32
MNIST images (random images of MNIST's shape if MNIST is missing) under ``torch.profiler`` and
splits the step's CPU time into the matrix products (``aten::bmm``/``mm``/``addmm``, the
GEMM-only bound of ``mnist_epoch.py``) and the compiled graph's own fused kernels (biases, ReLU
masks, softmax and the update rules over every parameter), per step. A warm-up stack of the
same shapes compiles first, so compilation is outside the profile's steps (the second stack may
still retrace: the data size is part of the graph; that time is reported apart). The profiler
adds its own overhead to every operator call, so read the shares, not the milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from optlab import engine
from optlab.engine import ModelSpec

GEMM = ("aten::bmm", "aten::mm", "aten::addmm", "aten::matmul")


def _subset(ds, n: int):
    class Sub:
        pass

    sub = Sub()
    sub.train_images, sub.train_labels = ds.train_images[:n], ds.train_labels[:n]
    sub.test_images, sub.test_labels = ds.test_images[:64], ds.test_labels[:64]
    return engine.prepare_data(sub)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600, help="profiled steps (batches of 32)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--optimizers", default="sgd,rmsprop,adam,adagrad")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        from optlab.data import load_dataset

        ds = load_dataset("mnist")
    except Exception:  # noqa: BLE001 - timing does not depend on the pixels
        from optlab.data import synthetic_dataset

        ds = synthetic_dataset(60_000, 10_000)
    specs = [ModelSpec(n, {"lr": 1e-3}, 0) for n in args.optimizers.split(",")]
    data = _subset(ds, (args.steps + 1) * 32)
    engine.train_stack(specs, data, epochs=1, compile=True)  # compile these shapes first
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        res = engine.train_stack(specs, data, epochs=1, compile=True)
    events = prof.key_averages()
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM) / 1e3
    graph = sum(e.self_cpu_time_total for e in events
                if e.key.startswith("## Call CompiledFxGraph")) / 1e3
    compiling = sum(e.self_cpu_time_total for e in events if "dynamo_timed" in e.key) / 1e3
    total = sum(e.self_cpu_time_total for e in events) / 1e3 - compiling
    steps = args.steps
    print(f"{len(specs)} models ({args.optimizers}), {steps} steps, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}; epoch timer {res[0].epochs[0].seconds:.2f} s")
    print(f"  matrix products       {gemm / steps:6.3f} ms/step  ({100 * gemm / total:4.1f} %)")
    print(f"  compiled fused kernels {graph / steps:5.3f} ms/step  ({100 * graph / total:4.1f} %)")
    rest = total - gemm - graph
    print(f"  everything else       {rest / steps:6.3f} ms/step  ({100 * rest / total:4.1f} %)")
    print(f"  (compilation in the profile, left out above: {compiling / 1e3:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
