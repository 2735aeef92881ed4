"""How fast is ``optlab.trajectory``? 300 steps of each first-order rule on
Rosenbrock from ``surface.start``, against the same steps taken by ``torch.optim`` on a
2-element tensor with autograd.

    .venv/bin/python benchmarks/trajectory_speed.py [--steps 300] [--repeats 21] [--check]

Prints the median time per rule and in total (target: < 30 ms for all of them), the torch.optim
baseline and their ratio, plus the batched runner (a sweep of 64 learning rates per rule).
``--check`` exits with status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

import optlab
from optlab.rules import FIRST_ORDER, RULES, get_rule, resolve_hparams
from optlab.surfaces import get_surface
from optlab.trajectories import _run_batch

TARGET_MS = 30.0

#: Learning rates that make sensible Rosenbrock paths from (-1.2, 1) in 300 steps.
LRS = {name: rule.demo_lr for name, rule in RULES.items()}


def _times_ms(fn, repeats: int, clock=time.perf_counter) -> list[float]:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(1e3 * (clock() - t0))
    return times


def _median_ms(fn, repeats: int) -> float:
    return statistics.median(_times_ms(fn, repeats))


def _torch_run(name: str, start: np.ndarray, steps: int) -> np.ndarray:
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = RULES[name].torch_twin([w], **resolve_hparams(name, lr=LRS[name]))
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        x, y = w[0], w[1]
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        loss.backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = ap.parse_args(argv)
    surface = get_surface("rosenbrock")
    start, steps = surface.start, args.steps

    print(f"{len(FIRST_ORDER)} rules x {steps} steps on rosenbrock from {tuple(start.tolist())}; "
          f"median of {args.repeats} repeats; numpy {np.__version__}, torch {torch.__version__}")
    print(f"{'rule':>9} {'lr':>7} {'optlab ms':>10} {'torch ms':>9} {'ratio':>6} "
          f"{'final loss':>11} {'|optlab - torch|':>17}")
    ours_total = theirs_total = 0.0
    for name in FIRST_ORDER:
        lr = LRS[name]
        ours = _median_ms(lambda n=name, lr=lr: optlab.trajectory(n, surface, start, steps, lr=lr),
                          args.repeats)
        t = optlab.trajectory(name, surface, start, steps, lr=lr)
        if RULES[name].torch_twin is None:  # no torch.optim twin to time against
            theirs = diff = float("nan")
        else:
            theirs = _median_ms(lambda n=name: _torch_run(n, start, steps),
                                max(3, args.repeats // 4))
            diff = np.nanmax(np.abs(t.path[:, 0] - _torch_run(name, start, steps)))
        flag = " DIVERGED" if t.diverged[0] else ""
        print(f"{name:>9} {lr:>7g} {ours:>10.2f} {theirs:>9.2f} {theirs / ours:>6.1f} "
              f"{t.final_loss[0]:>11.3g} {diff:>17.2e}{flag}")
        if theirs == theirs:  # the ratio compares the rules that have a twin
            ours_total += ours
            theirs_total += theirs

    # The same steps timed as one loop over the rules (what the widgets call).
    def all_rules() -> None:
        for n in FIRST_ORDER:
            optlab.trajectory(n, surface, start, steps, lr=LRS[n])

    times = _times_ms(all_rules, args.repeats)
    together = statistics.median(times)
    cpu = statistics.median(_times_ms(all_rules, args.repeats, clock=time.process_time))
    print(f"{'total':>9} {'':>7} {ours_total:>10.2f} {theirs_total:>9.2f} "
          f"{theirs_total / ours_total:>6.1f}")
    print(f"\nall {len(FIRST_ORDER)} in one loop: {together:.2f} ms "
          f"(target < {TARGET_MS:g} ms: "
          f"{'met' if together < TARGET_MS else 'MISSED'}); torch.optim + autograd: "
          f"{theirs_total:.1f} ms, {theirs_total / together:.1f}x slower")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  fastest repeat {min(times):.2f} ms; median CPU time {cpu:.2f} ms "
          f"({os.cpu_count()} CPUs, load average {load:.1f}: wall-clock medians on a busy "
          "machine run long)")

    # The batched runner: the (N, 2) array path, for N = 1 and for a sweep of 64 lrs.
    one = 0.0
    box = (-1e300, 1e300, -1e300, 1e300)
    for name in FIRST_ORDER:
        rule, kw = get_rule(name), resolve_hparams(name, lr=LRS[name])
        one += _median_ms(lambda r=rule, k=kw: _run_batch(r, k, surface, start[None], steps,
                                                          None, box), max(3, args.repeats // 4))
    sweep = _median_ms(lambda: [optlab.trajectory(n, surface, start, steps,
                                                  lr=LRS[n] * np.geomspace(0.1, 2, 64))
                                for n in FIRST_ORDER], max(3, args.repeats // 4))
    print(f"array runner, N = 1: {one:.1f} ms for all {len(FIRST_ORDER)} (the scalar path "
          f"above is {one / together:.1f}x faster); a sweep of 64 lrs per rule: {sweep:.1f} ms")
    return 0 if (together < TARGET_MS or not args.check) else 1


if __name__ == "__main__":
    sys.exit(main())
