"""The MNIST comparison, by job (``optlab.engine`` and ``optlab.compare`` re-export the public
names under their short, stable paths):

* :mod:`.runtime` — the device, CPU threads, the ``torch.compile`` mode and its cache;
* :mod:`.device_data` — a dataset scaled once and moved to the device, the batch-order generator;
* :mod:`.records` — a model's spec and its measured epochs (:class:`ModelSpec`, :class:`RunResult`);
* :mod:`.compiled_step` — the stacked step (forward, backward, the core's rules) and its compiler;
* :mod:`.stack` — :func:`train_stack`, many models in one pass;
* :mod:`.checkpoint` — a stack's state between epochs, written, read and restored;
* :mod:`.lbfgs_runner` — :func:`train_lbfgs`, L-BFGS as one model on large or full batches;
* :mod:`.presets` — the presets, :class:`CompareConfig` and :func:`make_config` with its checks;
* :mod:`.provenance` — where the numbers come from (command, versions, commit, machine);
* :mod:`.output` — the locked output directory and its results files;
* :mod:`.console` — progress lines and bars;
* :mod:`.run` — :func:`run_comparison`: the grid search, the stacks, the L-BFGS runs.

Nothing is imported here: ``import optlab.mnist`` stays light.
"""
