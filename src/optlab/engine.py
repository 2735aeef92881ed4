"""The MNIST engine under its short public name: ``from optlab import engine`` then
``engine.train_stack``, ``engine.prepare_data``, ``engine.ModelSpec``...

The code lives by job in :mod:`optlab.mnist` (runtime, device_data, records, compiled_step,
stack, checkpoint, lbfgs_runner); this module re-exports its names so that chapters, tests and
benchmarks keep one stable path. Patch a private name (``_epoch_metrics``) where it is used,
in :mod:`optlab.mnist.stack`, not here.
"""

from __future__ import annotations

from .mnist.checkpoint import (  # noqa: F401
    _read_checkpoint,
    _restore,
    _stack_identity,
    _write_checkpoint,
    checkpoint_epoch,
)
from .mnist.compiled_step import (  # noqa: F401
    _Group,
    _group_key,
    _make_step,
    _order_by_group,
    _scalar_views,
    _state_tensors,
    _Stepper,
    _tensorize_state,
)
from .mnist.device_data import PreparedData, _to_float, data_generator, prepare_data  # noqa: F401
from .mnist.lbfgs_runner import train_lbfgs
from .mnist.records import EpochMetrics, ModelSpec, RunResult, jsonable
from .mnist.runtime import (  # noqa: F401
    _WARNED,
    DeviceError,
    _cores,
    _sync,
    _warn_once,
    busy_cores,
    compile_mode_for,
    default_threads,
    enable_compile_cache,
    eval_threads,
    pick_device,
    set_threads,
)
from .mnist.stack import (  # noqa: F401
    _epoch_metrics,
    _finite,
    _lr_table,
    _params_in_spec_order,
    train_stack,
)

__all__ = [
    "ModelSpec",
    "PreparedData",
    "EpochMetrics",
    "RunResult",
    "prepare_data",
    "train_stack",
    "train_lbfgs",
    "pick_device",
    "set_threads",
    "default_threads",
    "eval_threads",
    "busy_cores",
    "enable_compile_cache",
    "checkpoint_epoch",
    "DeviceError",
    "compile_mode_for",
    "compile_break_even",
    "plan_compile",
    "compile_cache_warm",
    "data_generator",
    "jsonable",
]
from .mnist.runtime import COMPILE_BREAK_EVEN, compile_break_even  # noqa: E402, F401
from .mnist.stack import (  # noqa: E402, F401
    _graph_key,
    _remember_compiled,
    compile_cache_warm,
    plan_compile,
)
