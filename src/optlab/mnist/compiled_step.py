"""The stacked step: forward, backward and the core's rules, per group of rows, as one
function of tensors, compiled with ``torch.compile`` when it pays (:class:`_Stepper`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import mlp
from ..clipping import clip_coefficient
from ..rules import get_rule
from .records import ModelSpec, jsonable
from .runtime import _sync, _warn_once


@dataclass(frozen=True)
class _Group:
    rule: str
    start: int
    stop: int
    hparams: tuple[tuple[str, Any], ...]  # constant hyperparameters except lr
    clip_norm: float | None = None


def _group_key(spec: ModelSpec) -> tuple[str, str]:
    hp = {k: v for k, v in spec.resolved().items() if k != "lr"}
    hp["__clip_norm"] = spec.clip_norm
    return spec.optimizer, json.dumps(jsonable(hp), sort_keys=True)


def _order_by_group(specs: Sequence[ModelSpec]) -> list[int]:
    """Indices of ``specs`` sorted so that each group (rule + hyperparameters but lr) is one
    contiguous block, groups in order of first appearance."""
    first: dict[tuple[str, str], int] = {}
    for i, s in enumerate(specs):
        first.setdefault(_group_key(s), i)
    return sorted(range(len(specs)), key=lambda i: (first[_group_key(specs[i])], i))


def _tensorize_state(state: Any, like: torch.Tensor, step_dtype: torch.dtype) -> Any:
    """Rule states with every scalar (the step counter, NAdam's ``mu_product``) stored as a
    one-element tensor of shape ``(1,)`` on the device, so the compiled step sees the same types
    at every call. The step hands the rules a 0-d view of it (``_scalar_views``).

    Why ``(1,)`` and not 0-d: with torch 2.13 on the CPU, ``torch.compile`` drops in-place
    writes to a 0-d float64 input (``s.copy_(s + 1)`` leaves ``s`` unchanged; float32 and
    1-element tensors are fine), which froze Adam's step counter at 0 in compiled runs. The
    compiled-vs-readable test catches that."""
    fields, seen = {}, set()
    for name, v in state._asdict().items():
        if isinstance(v, torch.Tensor):  # un-alias (RMSprop's init shares one zero buffer)
            fields[name] = v.clone() if id(v) in seen else v
            seen.add(id(v))
        else:
            fields[name] = torch.tensor([float(v)], dtype=step_dtype, device=like.device)
    return type(state)(**fields)


def _scalar_views(state: Any) -> Any:
    """The state as the rules expect it: each ``(1,)`` scalar buffer as a 0-d tensor (a 0-d
    float64 tensor does not promote the float32 parameters it multiplies)."""
    return type(state)(*(v[0] if v.dim() == 1 else v for v in state))


def _state_tensors(state: Any) -> list[torch.Tensor]:
    seen, out = set(), []
    for v in state:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _make_step(groups: tuple[_Group, ...], batch_size: int) -> Callable[..., None]:
    """The whole training step as one function of tensors (what ``torch.compile`` sees).

    ``flat`` (K, P), the rule states, ``pos`` (the batch index, a 0-d int64 tensor) and
    ``correct`` (the epoch's correct counts per model, ``(K,)`` int64) are updated in place:
    the rules are pure, so their results are written back with ``copy_``,
    one write per tensor."""
    rules = [get_rule(g.rule) for g in groups]

    def step(flat, states, lrs, xs, ys, pos, arange, correct):
        idx = pos * batch_size + arange
        x = xs.index_select(0, idx)
        y = ys.index_select(0, idx)
        _, grad = mlp.loss_and_grad(flat, x, y, with_loss=False, correct_out=correct)
        pieces = []
        for g, rule, state, lr in zip(groups, rules, states, lrs, strict=False):
            view = _scalar_views(state)
            g_rows = grad[g.start : g.stop]
            if g.clip_norm is not None:  # each model's norm over all its parameters
                norm = torch.linalg.vector_norm(g_rows, dim=1, keepdim=True)
                g_rows = g_rows * clip_coefficient(norm, g.clip_norm)
            new_p, new_state = rule.update(
                flat[g.start : g.stop], g_rows, view, lr=lr, **dict(g.hparams)
            )
            pieces.append(new_p)
            for old, cur, new in zip(state, view, new_state, strict=False):
                if new is not cur:  # fields a rule passes through unchanged are not rewritten
                    old.copy_(new.reshape(old.shape))
        flat.copy_(torch.cat(pieces) if len(pieces) > 1 else pieces[0])
        pos.add_(1)

    return step


class _Stepper:
    """Runs the step compiled, falling back to eager (with one warning) if compilation fails;
    the first call's time (compilation included) is recorded apart."""

    _cache: dict[Any, Callable[..., None]] = {}

    def __init__(self, groups, batch_size, compile_mode: str | None, key):
        self.eager = _make_step(groups, batch_size)
        self.fn = self.eager
        self.compiled = False
        self.compile_seconds: float | None = None
        self._first = True
        if compile_mode is not None:
            try:
                from torch import _dynamo  # noqa: F401

                ck = (key, compile_mode)
                if ck not in self._cache:
                    kw: dict[str, Any] = {"dynamic": False, "fullgraph": False}
                    if compile_mode != "default":
                        kw["mode"] = compile_mode
                    self._cache[ck] = torch.compile(self.eager, **kw)
                self.fn = self._cache[ck]
                self.compiled = True
            except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
                _warn_once(f"torch.compile unavailable ({type(e).__name__}: {e}); running eagerly")

    def __call__(self, *args) -> None:
        if not self._first:
            self.fn(*args)
            return
        self._first = False
        t0 = time.perf_counter()
        if self.compiled:
            try:
                self.fn(*args)
            except Exception as e:  # noqa: BLE001
                _warn_once(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); "
                           "running eagerly")
                self.fn, self.compiled = self.eager, False
                self.fn(*args)
        else:
            self.fn(*args)
        _sync(args[0].device)
        if self.compiled:
            self.compile_seconds = time.perf_counter() - t0
