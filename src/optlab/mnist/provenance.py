"""Where a comparison's numbers come from: the command, versions, git commit, device and
machine (:func:`provenance`, the ``"provenance"`` section of ``results.json``)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .presets import CompareConfig
from .runtime import _cores


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parents[1]  # the optlab package, as before the split
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device, dataset: Any, cfg: CompareConfig,
               busy_cores: float | None = None) -> dict[str, Any]:
    """What a results file records of how it was made. ``busy_cores``: how many of the cores
    other work kept busy as the command started (:func:`optlab.mnist.runtime.busy_cores`),
    which the thread rules read."""
    import numpy as np

    from .. import __version__

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":  # pragma: no cover
        name = "Apple MPS"
    else:
        name = _cpu_name()
    prog = "python -m optlab" if Path(sys.argv[0]).name in ("__main__.py", "-m") else sys.argv[0]
    return {
        # quoted as a shell would need it, so that the recorded command reruns as it ran
        "command": " ".join([prog, shlex.join(sys.argv[1:])]).strip()
        if sys.argv and sys.argv[0] else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "optlab": __version__,
        "platform": platform.platform(),
        "device": device.type,
        "device_name": name,
        "cpu_cores": _cores(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg") else None,
        "busy_cores_at_start": busy_cores,
        "threads": None,  # filled per run (each run records its own too)
        "eval_threads": None,
        "jobs": cfg.jobs,
        "compile": None,
        "compile_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "dataset": getattr(dataset, "name", cfg.dataset),
        "dataset_source": str(getattr(dataset, "source", None) or "") or None,
        "dataset_md5_ok": (True if getattr(dataset, "source", None) else None),
        "dtype": "float32",
    }
