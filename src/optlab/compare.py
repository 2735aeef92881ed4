"""``python -m optlab compare`` under its short public name: ``from optlab import compare`` then
``compare.make_config``, ``compare.run_comparison``, ``compare.PRESETS``...

The code lives by job in :mod:`optlab.mnist` (presets, provenance, output, console, run); this
module re-exports its names so that the CLI, chapters and tests keep one stable path. Patch a
private name (``load_data``) where it is used, in :mod:`optlab.mnist.run`, not here.
"""

from __future__ import annotations

from .mnist.console import _Log, silence_stream  # noqa: F401
from .mnist.output import OutputDir, ResultsFile, _free_backup_name  # noqa: F401
from .mnist.presets import (  # noqa: F401
    FLOAT32_MAX,
    FLOAT32_TINY,
    GENERALIZATION_HPARAMS,
    LBFGS_DEFAULT_VARIANT,
    LBFGS_VARIANTS,
    MAX_SEED,
    PAPER_OPTIMIZERS,
    PRESETS,
    CompareConfig,
    ConfigError,
    _check_controls,
    make_config,
    training_size,
)
from .mnist.provenance import _cpu_name, _git_commit, provenance  # noqa: F401
from .mnist.records import ModelSpec, RunResult  # noqa: F401
from .mnist.run import (  # noqa: F401
    _Interrupt,
    _pending,
    _run,
    _run_lbfgs,
    _select,
    _spec,
    _specs_for,
    _to_train,
    _train_group,
    convention_jobs,
    convention_outputs,
    load_data,
    mean_val_acc,
    pick_learning_rates,
    run_all_conventions,
    run_comparison,
    run_comparisons,
)

__all__ = [
    "PAPER_OPTIMIZERS",
    "LBFGS_VARIANTS",
    "LBFGS_DEFAULT_VARIANT",
    "PRESETS",
    "GENERALIZATION_HPARAMS",
    "MAX_SEED",
    "ConfigError",
    "CompareConfig",
    "make_config",
    "training_size",
    "provenance",
    "OutputDir",
    "ResultsFile",
    "load_data",
    "silence_stream",
    "run_comparison",
    "run_comparisons",
    "run_all_conventions",
    "convention_outputs",
    "convention_jobs",
    "mean_val_acc",
    "pick_learning_rates",
]
