#!/bin/sh
# Chapter 14's MNIST schedules: the `schedules` preset (plain SGD, lr 0.1, batch 32, 3 epochs,
# seeds 0 and 1) with a constant rate and three decays, one `optlab compare` run per folder.
# Run from the repository root with MNIST in $OPTLAB_DATA_DIR:  sh results/schedules/run.sh
set -e
PY=${PYTHON:-python}
$PY -m optlab compare --preset schedules --quiet --out results/schedules/constant "$@"
$PY -m optlab compare --preset schedules --schedule step:every=1875,gamma=0.3 --quiet \
  --out results/schedules/step "$@"
$PY -m optlab compare --preset schedules --schedule cosine --quiet \
  --out results/schedules/cosine "$@"
$PY -m optlab compare --preset schedules --schedule inverse_time:decay=0.0016 --quiet \
  --out results/schedules/inverse_time "$@"
