"""Checkpoints of a stack between epochs: its identity, and reading, writing and restoring
its state (parameters, rule states, batch-order generator, metrics so far)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from .compiled_step import _order_by_group
from .records import EpochMetrics, ModelSpec, jsonable
from .runtime import _warn_once


def _stack_identity(ordered: Sequence[ModelSpec], epochs: int, batch_size: int,
                    n_train: int) -> str:
    models = [[s.optimizer, jsonable(s.resolved()), s.seed, s.init]
              + ([jsonable(s.controls())] if s.controls() else []) for s in ordered]
    return json.dumps({"models": models, "epochs": epochs, "batch_size": batch_size,
                       "n_train": n_train}, sort_keys=True)


def _read_checkpoint(path: str | os.PathLike, identity: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is one of this stack (tensors and plain data only:
    ``weights_only`` loading runs no pickled code), else ``None``."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file is not used
        _warn_once(f"checkpoint {path} is unreadable ({type(e).__name__}); starting the stack "
                   "from epoch 1")
        return None
    if not isinstance(saved, dict) or saved.get("identity") != identity:
        return None
    return saved


def checkpoint_epoch(path: str | os.PathLike, specs: Sequence[ModelSpec], *, epochs: int,
                     batch_size: int, n_train: int) -> int | None:
    """The last epoch saved in the checkpoint ``path`` of a :func:`train_stack` of ``specs``
    with these settings, or ``None`` when there is none (or it is another stack's)."""
    ordered = [specs[i] for i in _order_by_group(specs)]
    saved = _read_checkpoint(path, _stack_identity(ordered, epochs, batch_size, n_train))
    return None if saved is None else int(saved["epoch"])


def _write_checkpoint(path, identity, epoch, flat, states, g, results, alive) -> None:
    import io

    from ..atomic import write_bytes_atomically

    state = {
        "identity": identity,
        "epoch": epoch,
        "flat": flat.detach().cpu().clone(),
        "states": [[t.detach().cpu().clone() for t in st] for st in states],
        "generator": g.get_state(),
        "alive": list(alive),
        "results": [{"status": r.status, "compile_seconds": r.compile_seconds,
                     "info": jsonable(r.info),
                     "epochs": [dataclasses.asdict(m) for m in r.epochs]} for r in results],
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomically(path, buf.getvalue())


def _restore(saved, flat, states, g, results, alive) -> int:
    """Copy a checkpoint into the stack's tensors (in place: their addresses stay, as CUDA
    graphs need) and results; returns its epoch."""
    with torch.no_grad():
        flat.copy_(saved["flat"].to(flat.device))
        for st, tensors in zip(states, saved["states"], strict=True):
            for old, new in zip(st, tensors, strict=True):
                old.copy_(new.to(old.device))
    g.set_state(saved["generator"])
    alive[:] = saved["alive"]
    for r, rec in zip(results, saved["results"], strict=True):
        r.status = rec["status"]
        r.compile_seconds = rec["compile_seconds"]
        r.info.update(rec["info"])
        r.epochs = [EpochMetrics(**m) for m in rec["epochs"]]
    return int(saved["epoch"])
