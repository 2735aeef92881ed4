"""engine.train_stack's checkpoints: an interrupted stack continues after its last epoch to the
same numbers, bit for bit on the CPU; a checkpoint of other models is not used."""

from __future__ import annotations

import pytest
import torch

from optlab import engine
from optlab.data import synthetic_dataset
from optlab.engine import ModelSpec


@pytest.fixture(scope="module")
def data():
    engine.set_threads(1)  # one thread: steady on a busy machine
    return engine.prepare_data(synthetic_dataset(n_train=256, n_test=64, seed=5))


SPECS = [ModelSpec("adam", {"lr": 3e-3}, 4), ModelSpec("sgd", {"lr": 0.05}, 4),
         ModelSpec("nadamw", {}, 4), ModelSpec("momentum", {"lr": 1e4}, 4)]  # the last diverges


def _numbers(results):
    """Every metric of every epoch, as exact hex strings (NaN equals NaN here)."""
    return [(r.status, [(m.epoch, *(float(v).hex() for v in (
        m.train_loss, m.train_acc, m.test_loss, m.test_acc))) for m in r.epochs])
        for r in results]


class Stop(Exception):
    pass


def test_interrupted_stack_resumes_bit_for_bit(data, tmp_path):
    ref = engine.train_stack(SPECS, data, epochs=4, batch_size=16, compile=False)
    ck = tmp_path / "stack.pt"

    def stop_after_2(results, epoch):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        engine.train_stack(SPECS, data, epochs=4, batch_size=16, compile=False,
                           checkpoint=ck, on_epoch=stop_after_2)
    assert engine.checkpoint_epoch(ck, SPECS, epochs=4, batch_size=16, n_train=256) == 2
    seen = []
    out = engine.train_stack(SPECS, data, epochs=4, batch_size=16, compile=False,
                             checkpoint=ck, on_epoch=lambda r, e: seen.append(e))
    assert seen == [3, 4]  # only the epochs not done
    assert _numbers(out) == _numbers(ref)
    assert [r.status for r in out] == ["ok", "ok", "ok", "diverged"]
    saved = torch.load(ck, weights_only=True)  # plain tensors and data: no pickled code
    assert saved["epoch"] == 4


def test_a_checkpoint_of_other_models_is_not_used(data, tmp_path):
    ck = tmp_path / "stack.pt"
    engine.train_stack(SPECS[:2], data, epochs=2, batch_size=16, compile=False, checkpoint=ck)
    assert engine.checkpoint_epoch(ck, SPECS, epochs=2, batch_size=16, n_train=256) is None
    assert engine.checkpoint_epoch(ck, SPECS[:2], epochs=3, batch_size=16, n_train=256) is None
    seen = []
    engine.train_stack(SPECS, data, epochs=2, batch_size=16, compile=False, checkpoint=ck,
                       on_epoch=lambda r, e: seen.append(e))
    assert seen == [1, 2]
