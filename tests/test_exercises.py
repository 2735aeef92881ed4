import numpy as np
import pytest

from optlab.exercises import check


def test_unanswered_returns_false_but_still_tests_the_claim(capsys):
    assert check(None, 0.5, claim=lambda s: s < 1) is None
    assert "no answer yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="fails its own claim"):
        check(None, 2.0, claim=lambda s: s < 1)


def test_right_and_wrong_answers(capsys):
    check(0.1999, 0.2, rtol=1e-3)
    check(np.array([1.0, 2.0]), [1.0, 2.0])
    check("adam", "adam")
    assert capsys.readouterr().out.count("correct ✓") == 3
    with pytest.raises(AssertionError, match="not right"):
        check(0.3, 0.2)
    with pytest.raises(AssertionError, match="not right"):
        check("sgd", "adam")


def test_source_of_drops_the_docstring_but_keeps_the_code():
    from optlab.notebook import source_of
    from optlab.rules import adam_update

    src = source_of(adam_update)
    assert src.startswith("def adam_update(")
    assert "Kingma" not in src and "weight_decay * params" in src
    assert "Kingma" in source_of(adam_update, docstring=True)
