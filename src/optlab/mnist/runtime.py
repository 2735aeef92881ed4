"""Where and how fast a run computes: the device, the CPU threads, the ``torch.compile``
mode and its on-disk cache, and the warnings a run gives once."""

from __future__ import annotations

import os
import warnings

import torch


class DeviceError(RuntimeError):
    """The requested device is not available (the CLI turns it into one line, exit status 2)."""


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then MPS, then the CPU; an unavailable explicit choice raises
    :class:`DeviceError`."""
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is available to this PyTorch "
                          f"({torch.__version__}); use --device cpu or auto")
    if name == "mps" and not mps_ok:
        raise DeviceError("--device mps: Apple's MPS backend is not available here; "
                          "use --device cpu or auto")
    if name not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"--device {name}: choose auto, cpu, cuda or mps")
    return torch.device(name)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def default_threads(n_models: int, compiled: bool, load: float | None = None) -> int:
    """One thread for a single or eager model (steadier and as fast), two for a compiled stack;
    never more than the cores that are idle. On a busy machine (1-minute load average above
    ``cores - 2``) a stack gets one thread too: a 2-thread OpenMP step whose second thread is
    preempted waits at every barrier (measured here: 79 ms/step on 2 threads against 3.8 ms on
    1 thread, for the same K=4 step at a load average of 7.5 on 2 cores). ``load``: the load
    average to judge by (default: now); a long run passes the one from its start, since its own
    earlier stacks raise the load average later on."""
    cores = _cores()
    want = 2 if (compiled and n_models > 1) else 1
    try:
        idle = cores - (os.getloadavg()[0] if load is None else load)
    except (AttributeError, OSError):  # pragma: no cover
        idle = cores
    if idle < want - 0.5:
        want = 1
    return max(1, min(want, cores))


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


def compile_mode_for(device: torch.device, compile: bool | None, work: int) -> str | None:
    """``None`` (eager) or the ``torch.compile`` mode. ``compile=None`` means automatic: on when
    the run is long enough to repay a cold compile (``work`` = models x steps >= 10,000) on the
    CPU, always on CUDA (CUDA graphs), off on MPS."""
    if compile is False:
        return None
    if device.type == "mps":
        return None if compile is None else "default"
    if device.type == "cuda":
        return "reduce-overhead"
    if compile is None and work < 10_000:
        return None
    return "default"
