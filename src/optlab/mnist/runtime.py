"""Where and how fast a run computes: the device, the CPU threads, the ``torch.compile``
mode and its on-disk cache, and the warnings a run gives once."""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import NamedTuple

import torch


class DeviceError(RuntimeError):
    """The requested device is not available; the message starts with the parameter ``param``
    (``device``), which the CLI prints as its flag (one line, exit status 2)."""

    def __init__(self, message: str, param: str | None = "device"):
        super().__init__(message)
        self.param = param


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then MPS, then the CPU; an unavailable explicit choice raises
    :class:`DeviceError`."""
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device cuda: no CUDA GPU is available to this PyTorch "
                          f"({torch.__version__}); use device='cpu' or device='auto'")
    if name == "mps" and not mps_ok:
        raise DeviceError("device mps: Apple's MPS backend is not available here; "
                          "use device='cpu' or device='auto'")
    if name not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"device {name}: choose auto, cpu, cuda or mps")
    return torch.device(name)


def _cpu_quota() -> float | None:
    """The CPUs a container's cgroup allows (cgroup v2 ``cpu.max``, v1 ``cfs_quota_us``), or
    ``None`` without a quota: Docker's ``--cpus`` and Kubernetes' limits leave the affinity
    mask at every host CPU."""
    for quota_file, period_file in (("/sys/fs/cgroup/cpu.max", None),
                                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                                     "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(quota_file, encoding="ascii") as f:
                words = f.read().split()
            if period_file is not None:
                with open(period_file, encoding="ascii") as f:
                    words += f.read().split()
            if not words or words[0] in ("max", "-1"):
                return None
            return int(words[0]) / int(words[1])
        except (OSError, ValueError, IndexError):
            continue
    return None


def _cores() -> int:
    """The cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        n = os.cpu_count() or 1
    quota = _cpu_quota()
    return max(1, min(n, math.ceil(quota))) if quota else n


class CpuTimes(NamedTuple):
    """A reading of :func:`cpu_times`: the wall clock, the busy CPU seconds of each core this
    process may run on (every process's, and the hypervisor's steal time), and this
    process's own CPU seconds (all its threads)."""

    wall: float
    busy: dict[int, float]
    own: float


def parse_proc_stat(text: str, allowed: set[int], tick: float) -> dict[int, float] | None:
    """Busy seconds since boot of each CPU in ``allowed``, from the text of ``/proc/stat``:
    user + nice + system + irq + softirq + steal (guest time is already inside user and nice;
    idle and iowait are not busy). ``None`` when a CPU of ``allowed`` has no line (a
    virtualised ``/proc/stat`` that numbers CPUs otherwise) or a line does not parse."""
    busy: dict[int, float] = {}
    try:
        for line in text.splitlines():
            name, _, rest = line.partition(" ")
            if not name.startswith("cpu") or name == "cpu":
                continue
            cpu = int(name[3:])
            if cpu not in allowed:
                continue
            f = [int(v) for v in rest.split()]
            busy[cpu] = (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)) / tick
    except (ValueError, IndexError):
        return None
    return busy if set(busy) == set(allowed) else None


def cpu_times() -> CpuTimes | None:
    """Read ``/proc/stat`` now (Linux); ``None`` where it cannot be read or understood."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            text = f.read()
        allowed = set(os.sched_getaffinity(0))
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, AttributeError, ValueError):
        return None
    busy = parse_proc_stat(text, allowed, tick)
    if busy is None:
        return None
    t = os.times()
    return CpuTimes(time.monotonic(), busy, t.user + t.system)


def busy_cores(since: CpuTimes | None = None, *, min_window: float = 0.25) -> float | None:
    """How many of this process's cores **other** work kept busy between the reading
    ``since`` and now: other processes, and the hypervisor's steal time on a shared VM (this
    process's own CPU time is subtracted; only the CPUs in both readings count). With no
    reading, or one younger than ``min_window`` seconds, it waits out the window. ``None``
    where ``/proc/stat`` is missing or does not list this process's CPUs.

    This replaces the 1-minute load average of earlier versions: that average still counts a
    job that ended 30 s ago (in a benchmark, the previous variant made the next run take 1
    thread on an idle machine) and counts processes waiting for disk as busy. A reading over
    a fraction of a second says how busy the machine is now; it is no forecast, and a run
    measures again before each stack it trains."""
    start = since if since is not None else cpu_times()
    if start is None:
        return None
    wait = min_window - (time.monotonic() - start.wall)
    if wait > 0:
        time.sleep(wait)
    end = cpu_times()
    if end is None or end.wall <= start.wall:
        return None
    common = set(start.busy) & set(end.busy)
    if not common:
        return None
    spent = sum(end.busy[c] - start.busy[c] for c in common)
    other = spent - (end.own - start.own)
    return round(min(max(other / (end.wall - start.wall), 0.0), float(len(common))), 2)


def _busy_now(busy: float | None) -> float:
    if busy is not None:
        return busy
    measured = busy_cores()
    if measured is not None:
        return measured
    try:  # no /proc/stat (macOS): the load average is the best there is
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        return 0.0


def idle_cores(busy: float | None = None) -> int:
    """The cores left idle when ``busy`` of them do other work (default: measured now with
    :func:`busy_cores`), at least 1."""
    cores = _cores()
    return min(cores, max(1, math.floor(cores - _busy_now(busy) + 0.5)))


def _omp_cap() -> int:
    """``OMP_NUM_THREADS`` when the user set it to a positive integer (torch's own default
    honours it; so do these rules), else no cap."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return 1 << 30
    return n if n >= 1 else 1 << 30


def default_threads(n_models: int, compiled: bool, jobs: int = 1,
                    busy: float | None = None) -> int:
    """Threads for one stack's training steps, by what was measured on a 2-core VM
    (``benchmarks/`` and the performance notes):

    * an **eager** step, or a single model, is as fast or faster on 1 thread and far steadier
      (2-thread eager epochs showed 4-6x outliers whenever a vCPU was preempted);
    * a **compiled stack of 4 or more** models gains from a second thread on an idle machine
      (K=4: 2.17 s against 3.25 s per epoch; K=7: 3.72 s against 5.02 s; K=8: 3.69 s against
      7.32 s);
    * on a **busy** machine a second thread is a disaster: compiled K=4, interleaved, load
      average 10-12 on 2 cores (``benchmarks/compile_cost.py --child 4 compile --threads T``):
      5.4 / 7.3 / 6.5 ms per step on 1 thread against 107 / 104 / 132 ms on 2 (every OpenMP
      barrier waits for the preempted thread).

    So: 1 thread, unless the stack is compiled and K >= 4; then the cores left idle
    (:func:`idle_cores`; ``busy``: the cores other work keeps busy, default: measured now),
    shared by ``jobs`` parallel stacks, at most one per 2 models and at most 8 (batch-32 GEMMs
    are too small to split further; beyond 2 threads this is not measured here), and at most
    ``OMP_NUM_THREADS`` when it is set."""
    if not compiled or n_models < 4:
        return 1
    return max(1, min(idle_cores(busy) // max(1, jobs), n_models // 2, 8, _omp_cap()))


def eval_threads(jobs: int = 1, busy: float | None = None) -> int:
    """Threads for the per-epoch evaluation: the idle cores (:func:`idle_cores`), shared by
    ``jobs`` parallel stacks, at most 8. Its matrix products are large (2,048 rows at a time),
    so unlike the batch-32 steps they split well: K = 4, the 70,000 images, 0.72 s on 1 thread
    against 0.38 s on 2 on an idle 2-core VM (``python benchmarks/mnist_epoch.py``,
    ``benchmarks/measured/epoch_1thread_eval.txt``; one round in three stalled at 0.92 s, an
    OpenMP barrier waiting for a preempted vCPU). More than 2 threads were not measured here;
    the cap of 8 is a guess, not a measurement. ``OMP_NUM_THREADS``, when set, caps it too."""
    return max(1, min(idle_cores(busy) // max(1, jobs), 8, _omp_cap()))


def set_threads(n: int) -> int:
    """``torch.set_num_threads(n)`` capped at the available cores; returns the value set."""
    n = max(1, min(int(n), _cores()))
    torch.set_num_threads(n)
    return n


def enable_compile_cache() -> str:
    """Point inductor's on-disk cache at ``$XDG_CACHE_HOME/optlab/inductor`` (unless
    ``TORCHINDUCTOR_CACHE_DIR`` is already set), so a rerun compiles from a warm cache."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "optlab", "inductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover
        torch.mps.synchronize()


# Break-even of compiling, in model-steps (models x steps), measured with
# `python benchmarks/compile_cost.py --ks 1 4 7 --steps 300` (one thread, batches of 32, the
# first K of sgd, rmsprop, adam, adagrad, momentum, nesterov, adamw: one rule group per model)
# on a quiet 2-core VM (load average 1.4-3.1, benchmarks/measured/compile_cost_quiet.txt);
# each row is (eager ms/step, compiled ms/step, first compiled step cold s / warm s) ->
# break-even cold / warm = first-step seconds / per-step gain x K:
#   K=1: 0.63, 0.32 (2.0x), 14.4 / 1.7 s  ->  45,000 / 5,200
#   K=4: 3.50, 1.38 (2.5x), 17.2 / 2.0 s  ->  32,000 / 3,700
#   K=7: 6.23, 3.56 (1.8x), 17.0 / 2.2 s  ->  44,000 / 5,800
# Every K compiled to one graph (no graph breaks, no recompiles); a cold compile's time is the
# C++ compiler on inductor's kernels, a warm one's is dynamo's tracing plus loading the cached
# module. The same script at load 9-17 (compile_cost_k1_k7.txt) gave 52,000 / 3,600 for K=4
# but 160,000 / 20,000 for K=1: a loaded machine slows the compiler more than the steps. One
# MNIST epoch of K=4 is 7,500 model-steps: a cold compile of the paper's stack pays from about
# 4-5 epochs, a warm one within the first (a whole 2-epoch run: 18.2 s eager against 17.4 s
# compiled from a warm cache, the compiled run also paying about 2 s of first calls).
COMPILE_BREAK_EVEN: dict[int, tuple[int, int]] = {  # smallest K of the row: (cold, warm)
    1: (45_000, 5_200),
    4: (32_000, 3_700),
    7: (44_000, 5_800),
}


def compile_break_even(n_models: int, warm: bool = False) -> int:
    """The measured break-even (model-steps) of the row of the largest measured K <= n_models."""
    row = COMPILE_BREAK_EVEN[max(k for k in COMPILE_BREAK_EVEN if k <= max(1, n_models))]
    return row[1] if warm else row[0]


def compile_mode_for(device: torch.device, compile: bool | None, work: int,
                     warm: bool = False, n_models: int = 1) -> str | None:
    """``None`` (eager) or the ``torch.compile`` mode. ``compile=None`` means automatic: on the
    CPU, compile when the run's ``work`` (models x steps) reaches the measured break-even for a
    stack of ``n_models`` (:func:`compile_break_even`; ``warm``: this step's graph is already
    in the inductor cache); always on CUDA (CUDA graphs); off on MPS."""
    if compile is False:
        return None
    if device.type == "mps":
        return None if compile is None else "default"
    if device.type == "cuda":
        return "reduce-overhead"
    if compile is None and work < compile_break_even(n_models, warm):
        return None
    return "default"
