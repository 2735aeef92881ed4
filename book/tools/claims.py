"""Check that every chapter's claims hold over seeds: `make claims SEEDS="1 2 3 4 5"`.

Each chapter's first code cell is its parameters cell (tagged ``parameters``), holding ``SEED = 0``;
every random draw in the chapter derives from ``SEED``. For each chapter and each seed this script
executes a copy of the notebook (in memory, with the chapter's own folder as working directory, so
relative paths behave as in the book) with that cell replaced by ``SEED = k``, stops at the first
failing cell and prints a table chapter x seed -> ``ok`` / the failing cell and its assert line.
It exits 1 if any run failed (or a chapter has no parameters cell), 0 otherwise.

    python book/tools/claims.py --seeds 1 2 3 chapters/*.ipynb
    python book/tools/claims.py --seeds 0 --threads 1 chapters/04-nesterov.ipynb
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# IPython marks the failing line of a cell: "----> 3 assert ..."
ARROW = re.compile(r"^\s*-*>\s*(\d+)\s?(.*)$")
PARAMETERS_TAG = "parameters"


@dataclass(frozen=True)
class Outcome:
    chapter: str
    seed: int
    ok: bool
    summary: str  # "ok" or "cell 12: assert a < b"
    detail: str = ""
    seconds: float = 0.0


def parameters_cell_index(nb) -> int | None:
    """Index of the chapter's parameters cell: the first code cell, which must carry the tag."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            return i if PARAMETERS_TAG in tags else None
    return None


def failing_line(traceback_lines: list[str], cell_source: str) -> str:
    """The source line IPython marked with an arrow in the cell's own frame (else the last one)."""
    text = ANSI.sub("", "\n".join(traceback_lines))
    marked = [m for m in (ARROW.match(line) for line in text.splitlines()) if m]
    lines = cell_source.splitlines()
    for m in marked:  # the frame of the cell itself comes first in an IPython traceback
        n = int(m.group(1))
        if 1 <= n <= len(lines) and lines[n - 1].strip() == m.group(2).strip():
            return lines[n - 1].strip()
    return marked[-1].group(2).strip() if marked else ""


def run_one(path: str, seed: int, timeout: int, threads: int | None) -> Outcome:
    import nbformat
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    class CurrentEnvSpecs(KernelSpecManager):  # the kernel runs this interpreter, as nbval's does
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"], display_name="optlab", language="python")

    name = Path(path).name
    start = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    idx = parameters_cell_index(nb)
    if idx is None:
        return Outcome(name, seed, False,
                       "no parameters cell: tag the first code cell 'parameters' (SEED = 0)")
    nb.cells[idx].source = f"SEED = {seed}"
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
        nb.cells[idx].source += f"\nimport torch\ntorch.set_num_threads({threads})"
    km = KernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvSpecs())
    client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent.resolve())}})
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, i)
                except CellExecutionError as err:
                    tb = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                    lines = tb[0].get("traceback", []) if tb else []
                    line = failing_line(lines, cell.source)
                    ename = tb[0].get("ename", "error") if tb else "error"
                    evalue = tb[0].get("evalue", "") if tb else str(err)
                    what = line or f"{ename}: {evalue}"
                    detail = f"{ename}: {evalue}".strip()
                    return Outcome(name, seed, False, f"cell {i}: {what}", detail,
                                   time.perf_counter() - start)
    except Exception as err:  # kernel died, timeout, ...
        return Outcome(name, seed, False, f"{type(err).__name__}: {err}".splitlines()[0], "",
                       time.perf_counter() - start)
    return Outcome(name, seed, True, "ok", "", time.perf_counter() - start)


def table(outcomes: list[Outcome], chapters: list[str], seeds: list[int]) -> str:
    by = {(o.chapter, o.seed): o for o in outcomes}
    width = max(len(c) for c in chapters)
    head = f"{'chapter':<{width}}  " + "  ".join(f"seed {s}" for s in seeds)
    rows = [head, "-" * len(head)]
    for c in chapters:
        cells = []
        for s in seeds:
            o = by[(c, s)]
            cells.append(f"{'ok' if o.ok else 'FAIL':<{len(f'seed {s}')}}")
        rows.append(f"{c:<{width}}  " + "  ".join(cells))
    failures = [o for o in outcomes if not o.ok]
    if failures:
        rows += ["", "failures:"]
        for o in failures:
            rows.append(f"  {o.chapter} seed {o.seed}: {o.summary}")
            if o.detail and o.detail not in o.summary:
                rows.append(f"      {o.detail[:300]}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebooks (default: chapters/*.ipynb)")
    parser.add_argument("--seeds", nargs="+", default=["1", "2", "3", "4", "5"],
                        help="seeds (space- or comma-separated; notebooks may follow)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/BLAS threads inside each kernel (a perturbation check)")
    args = parser.parse_args(argv)
    tokens = [t for item in args.seeds for t in item.replace(",", " ").split()]
    args.seeds = [int(t) for t in tokens if t.lstrip("-").isdigit()]
    args.chapters += [t for t in tokens if not t.lstrip("-").isdigit()]  # `--seeds 1 2 ch.ipynb`
    if not args.seeds:
        print("claims: no seeds given; e.g. --seeds 1 2 3", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2]
    paths = args.chapters or sorted(str(p) for p in (root / "chapters").glob("*.ipynb"))
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        print(f"claims: no such notebook: {missing[0]}", file=sys.stderr)
        return 2
    jobs = [(p, s) for p in paths for s in args.seeds]
    print(f"claims: {len(paths)} chapters x seeds {args.seeds} ({len(jobs)} runs, "
          f"{args.jobs} at a time)", flush=True)
    outcomes: list[Outcome] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, p, s, args.timeout, args.threads) for p, s in jobs]
        for fut in futures:
            o = fut.result()
            outcomes.append(o)
            print(f"  {o.chapter} seed {o.seed}: {o.summary} ({o.seconds:.1f} s)", flush=True)
    chapters = [Path(p).name for p in paths]
    print()
    print(table(outcomes, chapters, args.seeds))
    bad = sum(not o.ok for o in outcomes)
    took = f"{time.perf_counter() - t0:.0f} s"
    if bad:
        print(f"\nclaims: {bad} of {len(outcomes)} runs FAILED ({took})")
    else:
        print(f"\nclaims: all {len(outcomes)} runs hold ({took})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
