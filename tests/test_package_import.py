"""`import optlab` stays light: neither torch nor matplotlib is imported until used."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys, numpy as np
import optlab
heavy = sorted(m for m in ("torch", "matplotlib") if m in sys.modules)
assert not heavy, f"import optlab imported {heavy}"
rule = optlab.get_rule("adam")
w, s = rule.update(np.ones(3), np.ones(3), rule.init(np.ones(3)))
assert "torch" not in sys.modules, "a NumPy update imported torch"
assert "lbfgs" in optlab.OPTIMIZERS
opt = optlab.make_optimizer
assert "torch" in sys.modules
"""


def test_import_optlab_imports_neither_torch_nor_matplotlib():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
