"""Every rule runs on tensors the way the compiled MNIST engine runs it on a GPU, checked here on
the CPU:

* under ``torch.compile(fullgraph=True)`` (one graph, the eager numbers, tensors out);
* on tensors of the ``meta`` device, which, like CUDA tensors, have no NumPy view: a NumPy call
  in a rule (``np.sign(p)`` written the natural way) raises here. On CPU tensors NumPy 2 hands
  a tensor back and dynamo translates NumPy calls, so neither of those would notice.
"""

from __future__ import annotations

import pytest
import torch

from optlab.rules import FIRST_ORDER, get_rule, resolve_hparams


def _tensor_state(state):
    """The state with its step counter (and NAdamW's running product) as 0-d tensors, as the
    compiled engine passes them, so that the graph does not depend on Python numbers."""
    return state._replace(**{k: torch.as_tensor(v, dtype=torch.float64)
                             for k, v in state._asdict().items()
                             if not isinstance(v, torch.Tensor)})


def _three_steps(update, hp, p, grads, state):
    for g in grads:
        p, state = update(p, g, state, **hp)
    return p, state


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_rule_compiles_to_one_graph_and_equals_eager(name):
    torch._dynamo.reset()
    rule = get_rule(name)
    hp = resolve_hparams(name, lr=0.01)
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    state = _tensor_state(rule.init_state(p, **hp))

    compiled = torch.compile(lambda p, gs, s: _three_steps(rule.update, hp, p, gs, s),
                             backend="eager", fullgraph=True)
    got, got_state = compiled(p, grads, state)
    want, want_state = _three_steps(rule.update, hp, p, grads, state)

    assert isinstance(got, torch.Tensor), f"{name} returned {type(got).__name__}"
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    for key, value in got_state._asdict().items():
        assert isinstance(value, torch.Tensor), f"{name}: state.{key} is {type(value).__name__}"
        torch.testing.assert_close(value, getattr(want_state, key), rtol=1e-12, atol=1e-14)
    assert not torch.equal(got, p)


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_rule_makes_no_numpy_call_on_tensors(name):
    """On ``meta`` tensors (no data, no NumPy view) any ``np.*`` call raises a TypeError."""
    rule = get_rule(name)
    hp = resolve_hparams(name, lr=0.01)
    p = torch.zeros(4, 3, dtype=torch.float64, device="meta")
    state = rule.init_state(p, **hp)
    for _ in range(2):
        p, state = rule.update(p, p, state, **hp)
    assert p.device.type == "meta" and p.shape == (4, 3)
    for key, value in state._asdict().items():
        if isinstance(value, torch.Tensor) and value.ndim:
            assert value.device.type == "meta", f"{name}: state.{key} left the device"
