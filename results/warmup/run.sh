#!/bin/sh
# Chapter 14's MNIST warmup: the `warmup` preset (Adam, lr 0.03, cosine decay over the run,
# batch 32, 3 epochs, seeds 0-2) without and with a linear warmup of 1000 updates.
# Run from the repository root with MNIST in $OPTLAB_DATA_DIR:  sh results/warmup/run.sh
set -e
PY=${PYTHON:-python}
$PY -m optlab compare --preset warmup --quiet --out results/warmup/none "$@"
$PY -m optlab compare --preset warmup --warmup-steps 1000 --quiet \
  --out results/warmup/linear-1000 "$@"
