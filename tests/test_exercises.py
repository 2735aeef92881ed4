import numpy as np
import pytest

from optlab.exercises import check


def test_unanswered_prints_how_to_answer_and_still_tests_the_claim(capsys, monkeypatch):
    monkeypatch.delenv("OPTLAB_BOOK_BUILD", raising=False)
    assert check(None, 0.5, claim=lambda s: s < 1, name="Exercise 1.1") is None
    assert "Exercise 1.1: fill in your answer" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="fails its own claim"):
        check(None, 2.0, claim=lambda s: s < 1)


def test_unanswered_in_the_static_book_asks_to_run_nothing(capsys, monkeypatch):
    monkeypatch.setenv("OPTLAB_BOOK_BUILD", "1")
    check(None, 0.5, name="Exercise 1.1")
    out = capsys.readouterr().out
    assert "unfold the solution" in out and "run both cells" not in out


def test_right_answers(capsys):
    check(0.1999, 0.2, rtol=1e-3)
    check(np.array([1.0, 2.0]), [1.0, 2.0])
    check("adam", "adam")
    check(7, 7.2, rtol=0, atol=0.5)
    assert capsys.readouterr().out.count("correct ✓") == 4


@pytest.mark.parametrize(
    ("answer", "solution", "kw", "expected"),
    [
        (0.3, 0.004999999999999999, {}, "too high"),
        (0.001, 0.004999999999999999, {"rtol": 1e-2}, "too low"),
        (float("nan"), 0.25, {}, "not a finite number"),
        ("fast", 0.25, {}, "expected a number"),
        ([1.0, 5.0, 9.0], [1.0, 2.0, 3.0], {}, "2 of 3 values are off"),
        ("sgd", "adam", {}, "not the expected answer"),
    ],
)
def test_a_wrong_answer_is_not_yet_with_a_hint_never_the_solution(
    capsys, answer, solution, kw, expected
):
    check(answer, solution, name="Exercise 3.1", hint="think of the steady state", **kw)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one line"
    assert out.startswith("Exercise 3.1: not yet — ") and expected in out
    assert "Hint: think of the steady state" in out
    for revealing in (repr(solution), str(solution), "0.005", "0.0049", "adam", "2.0, 3.0"):
        assert revealing not in out


def test_tolerance_is_stated_in_the_hint(capsys):
    check(1.5, 1.0, rtol=1e-2, name="E")
    check(1.5, 1.0, rtol=0, atol=0.25, name="E")
    check(2, 1, rtol=0, name="E")
    out = capsys.readouterr().out.splitlines()
    assert "within 1% of the solution" in out[0]
    assert "within ±0.25 of the solution" in out[1]
    assert "exactly the solution" in out[2]


def test_source_of_drops_the_docstring_but_keeps_the_code():
    from optlab.notebook import source_of
    from optlab.rules import adam_update

    src = source_of(adam_update)
    assert src.startswith("def adam_update(")
    assert "Kingma" not in src and "weight_decay * params" in src
    assert "Kingma" in source_of(adam_update, docstring=True)
