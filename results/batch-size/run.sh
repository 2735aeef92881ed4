#!/bin/sh
# Chapter 14's batch-size sweep: the `batch-size` preset (plain SGD, 10 epochs, seeds 0 and 1)
# at batch sizes 32 .. 4096, the learning rate scaled from 0.02 at B = 32 linearly (0.02 B/32)
# or by the square root (0.02 sqrt(B/32)); one `optlab compare` run per folder.
# Run from the repository root with MNIST in $OPTLAB_DATA_DIR:  sh results/batch-size/run.sh
set -e
PY=${PYTHON:-python}
for B in 32 64 128 256 512 1024 2048 4096; do
  for scaling in linear sqrt; do
    if [ "$B" = 32 ] && [ "$scaling" = sqrt ]; then continue; fi  # B = 32: both are 0.02
    lr=$($PY -c "import math; k = $B / 32; print(round(0.02 * (k if '$scaling' == 'linear' else math.sqrt(k)), 6))")
    $PY -m optlab compare --preset batch-size --batch-size "$B" --lr "sgd=$lr" --quiet \
      --out "results/batch-size/$scaling-B$B" "$@"
  done
done
