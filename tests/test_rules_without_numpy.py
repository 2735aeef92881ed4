"""``optlab.rules`` and ``optlab.surfaces`` import and run with neither NumPy, torch nor
matplotlib installed (the browser's Pyodide has none by default), on plain Python floats, and
give the NumPy-array numbers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from optlab.rules import RULES, resolve_hparams
from optlab.surfaces import SURFACES

STEPS = 50
SRC = str(Path(__file__).resolve().parents[1] / "src")

#: The child process: blocks the three imports, then runs every rule on every surface.
CHILD = r"""
import json, sys

BLOCKED = {"numpy", "torch", "matplotlib"}


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, Block())
assert not BLOCKED & set(sys.modules), sorted(BLOCKED & set(sys.modules))

from optlab.rules import RULES, resolve_hparams
from optlab.surfaces import SURFACES

steps = int(sys.argv[1])
paths = {}
for name, rule in RULES.items():
    hp = resolve_hparams(name, lr=rule.demo_lr)
    for sname, surface in SURFACES.items():
        x, y = surface.start_point
        sx, sy = rule.init_state(x, **hp), rule.init_state(y, **hp)
        path = [(x, y, surface.fxy(x, y))]
        for _ in range(steps):
            gx, gy = surface.gxy(x, y)
            x, sx = rule.update(x, gx, sx, **hp)
            y, sy = rule.update(y, gy, sy, **hp)
            path.append((x, y, surface.fxy(x, y)))
        paths[f"{name}/{sname}"] = path
try:
    resolve_hparams("adam", lr=-1.0)
except ValueError as e:
    paths["error"] = str(e)
paths["modules"] = sorted(BLOCKED & {m.split(".")[0] for m in sys.modules})
print(json.dumps(paths))
"""


def _numpy_paths() -> dict[str, np.ndarray]:
    """The same runs on NumPy arrays of shape (2,), in this process."""
    out = {}
    for name, rule in RULES.items():
        hp = resolve_hparams(name, lr=rule.demo_lr)
        for sname, surface in SURFACES.items():
            w = np.array(surface.start_point)
            state = rule.init_state(w, **hp)
            rows = [(*w, surface.f(w))]
            with np.errstate(all="ignore"):
                for _ in range(STEPS):
                    w, state = rule.update(w, surface.grad(w), state, **hp)
                    rows.append((*w, surface.f(w)))
            out[f"{name}/{sname}"] = np.array(rows, dtype=float)
    return out


def test_rules_and_surfaces_run_on_floats_without_numpy_torch_or_matplotlib():
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", CHILD, str(STEPS)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    floats = json.loads(done.stdout)
    assert floats.pop("modules") == []
    assert floats.pop("error") == "adam: lr must be in (0, inf); got -1"
    reference = _numpy_paths()
    assert set(floats) == set(reference) and len(reference) == len(RULES) * len(SURFACES)
    for key, want in reference.items():
        got = np.array(floats[key], dtype=float)
        assert got.shape == (STEPS + 1, 3)
        assert np.isfinite(want[:, :2]).all() or key.endswith("/saddle"), key
        moved = np.abs(want[-1, :2] - want[0, :2]).max()
        assert moved > 0 or math.isnan(moved), f"{key}: the run did not move"
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=key)
