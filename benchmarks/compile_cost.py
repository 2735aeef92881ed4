"""What compiling the engine's step costs, and when it pays: the measurement behind
``optlab.engine.compile_mode_for``.

    python benchmarks/compile_cost.py [--ks 1 4 7] [--steps 400] [--threads 1] [--json OUT]

For each stack size K (the first K of sgd, rmsprop, adam, adagrad, momentum, nesterov, adamw:
one rule group per model, the worst case for graph size), in fresh processes, through
``engine.train_stack`` itself on ``--steps`` batches of 32 of data of MNIST's shape:

* **eager**: seconds per step (second epoch; the first warms up);
* **compiled, cold**: a fresh ``TORCHINDUCTOR_CACHE_DIR``: the first step's seconds (tracing +
  inductor + C++ build), then seconds per step;
* **compiled, warm**: the same cache directory again, in a new process (what a second
  ``python -m optlab compare`` sees);
* dynamo's counters: graphs captured, graph breaks, recompiles; inductor's FX-cache hits.

Then the break-even: compiling pays when the run's steps x (eager - compiled seconds per step)
exceed the compile seconds, i.e. at ``compile_s / (eager - compiled)`` steps of the stack; it
prints that in **model-steps** (steps x K), the unit ``compile_mode_for`` judges by. Prints
the load average with every figure: on a shared machine the absolute numbers are noisy (use
the ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ORDER = ("sgd", "rmsprop", "adam", "adagrad", "momentum", "nesterov", "adamw")
ROOT = Path(__file__).resolve().parents[1]


def _child(k: int, steps: int, compile: bool, threads: int) -> dict:
    import torch
    from torch._dynamo.utils import counters

    from optlab import engine
    from optlab.data import synthetic_dataset

    torch.set_num_threads(threads)
    ds = synthetic_dataset(steps * 32, 256, seed=0)
    data = engine.prepare_data(ds)
    specs = [engine.ModelSpec(o, {"lr": 1e-3}, 0) for o in ORDER[:k]]
    rs = engine.train_stack(specs, data, epochs=2, compile=compile)
    e2 = rs[0].epochs[1]
    return {
        "k": k, "compile": compile, "threads": threads, "steps": steps,
        "step_ms": 1000 * e2.seconds / steps,
        "eval_s": e2.eval_seconds,
        "first_step_s": rs[0].compile_seconds,
        "compiled": rs[0].info.get("compile"),
        "graphs": counters["stats"].get("unique_graphs", 0),
        "graph_breaks": sum(counters["graph_break"].values()),
        "recompiles": counters["recompiles"].get("recompiles", 0)
        + sum(v for key, v in counters["stats"].items() if "recompil" in key),
        "fx_cache_hit": counters["inductor"].get("fxgraph_cache_hit", 0),
        "fx_cache_miss": counters["inductor"].get("fxgraph_cache_miss", 0),
        "load": os.getloadavg()[0],
    }


def _run(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 4, 7])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(_child(int(a.child[0]), a.steps, a.child[1] == "compile", a.threads)))
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    rows = []
    print(f"{os.cpu_count()} cores, {a.threads} thread(s), {a.steps} steps per epoch")
    with tempfile.TemporaryDirectory(prefix="optlab-compile-cost-") as tmp:
        for k in a.ks:
            cache_env = {**env, "TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, f"k{k}")}
            common = ["--steps", str(a.steps), "--threads", str(a.threads)]
            eager = _run(["--child", str(k), "eager", *common], env)
            cold = _run(["--child", str(k), "compile", *common], cache_env)
            warm = _run(["--child", str(k), "compile", *common], cache_env)
            gain_ms = eager["step_ms"] - warm["step_ms"]
            row = {"k": k, "eager": eager, "cold": cold, "warm": warm}
            for name, c in (("cold", cold), ("warm", warm)):
                be = (c["first_step_s"] * 1000 / gain_ms * k) if gain_ms > 0 else float("inf")
                row[f"break_even_model_steps_{name}"] = be
            rows.append(row)
            print(f"K={k}: eager {eager['step_ms']:.2f} ms/step (load {eager['load']:.1f}); "
                  f"compiled {warm['step_ms']:.2f} ms/step "
                  f"(x{eager['step_ms'] / warm['step_ms']:.2f}); first step cold "
                  f"{cold['first_step_s']:.1f} s (load {cold['load']:.1f}), "
                  f"warm {warm['first_step_s']:.1f} s (load {warm['load']:.1f}); graphs "
                  f"{cold['graphs']}, breaks {cold['graph_breaks']}, recompiles "
                  f"{cold['recompiles']}; FX cache cold hit/miss {cold['fx_cache_hit']}/"
                  f"{cold['fx_cache_miss']}, warm {warm['fx_cache_hit']}/{warm['fx_cache_miss']}"
                  f"; break-even {row['break_even_model_steps_cold']:.0f} model-steps cold, "
                  f"{row['break_even_model_steps_warm']:.0f} warm; eval "
                  f"{eager['eval_s']:.3f} s", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
