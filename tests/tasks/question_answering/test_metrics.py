"""SQuAD EM/F1 on predictions whose scores are worked out by hand, v1.1 and v2.0 rules."""

import pytest

from ftlit.tasks.question_answering.metrics import (
    best_threshold,
    exact_match,
    f1_score,
    normalize_answer,
    squad_evaluate,
)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The  Cat, sat!", "cat sat"),
        ("an apple a day", "apple day"),
        ("Theatre and Anaconda", "theatre and anaconda"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("  tabs\tand\nnewlines ", "tabs and newlines"),
        ("the", ""),
        ("Café «naïve»", "café «naïve»"),  # only ASCII punctuation is removed, as in the official script
    ],
)
def test_normalisation_follows_the_official_rules(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_after_normalisation():
    assert exact_match("the Eiffel Tower", "Eiffel tower.") == 1
    assert exact_match("Eiffel", "Eiffel Tower") == 0


def test_f1_counts_overlapping_tokens_with_multiplicity():
    # pred tokens [in, big, red, house], gold [red, house]: P = 2/4, R = 2/2
    assert f1_score("in the big red house", "the red house") == pytest.approx(2 / 3)
    # pred [red, red], gold [red]: overlap 1, P = 1/2, R = 1
    assert f1_score("red red", "red") == pytest.approx(2 / 3)
    assert f1_score("blue", "red") == 0.0


def test_empty_answers_agree_under_v2_but_not_v1():
    assert f1_score("", "the", empty_agrees=True) == 1.0
    assert f1_score("", "the", empty_agrees=False) == 0.0
    assert f1_score("", "Paris") == 0.0


REFERENCES = {
    "q1": ["Denver Broncos", "The Denver Broncos"],
    "q2": ["the red house"],
    "q3": ["1990"],
    "q4": ["Saint Bernadette Soubirous"],
}
PREDICTIONS = {"q1": "Denver Broncos", "q2": "in the big red house", "q3": "in 1991", "q4": "Bernadette"}


def test_v1_scores_are_the_best_over_golds_averaged_over_questions():
    results = squad_evaluate(PREDICTIONS, REFERENCES)
    # EM: q1 only. F1: q1 1, q2 2/3, q3 0, q4 P=1 R=1/3 -> 1/2
    assert results["exact_match"] == pytest.approx(100 * 1 / 4)
    assert results["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 1 / 2) / 4)
    assert results["total"] == 4


def test_a_missing_prediction_scores_zero():
    results = squad_evaluate({"q1": "Denver Broncos"}, REFERENCES)
    assert results["exact_match"] == pytest.approx(25.0) and results["f1"] == pytest.approx(25.0)


V2_REFERENCES = {**REFERENCES, "q5": [], "q6": []}
V2_PREDICTIONS = {**PREDICTIONS, "q5": "", "q6": "a guess"}


def test_v2_splits_answerable_and_unanswerable_questions():
    results = squad_evaluate(V2_PREDICTIONS, V2_REFERENCES, version_2=True)
    assert results["HasAns_exact"] == pytest.approx(25.0)
    assert results["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 1 / 2) / 4)
    assert results["NoAns_exact"] == results["NoAns_f1"] == pytest.approx(50.0)  # q5 right, q6 wrong
    assert results["exact_match"] == pytest.approx(100 * 2 / 6)
    assert (results["HasAns_total"], results["NoAns_total"], results["total"]) == (4, 2, 6)


def test_best_threshold_answers_the_questions_whose_null_score_is_low():
    spans = {"a": "x", "b": "y", "c": "z"}
    scores = {"a": 1.0, "b": 0.0, "c": 0.0}  # a answered right, b answered wrong, c unanswerable
    has_answer = {"a": True, "b": True, "c": False}
    # Answer nothing: 1/3 (c). Answer a (diff -2): 2/3. Then c (diff 0) costs 1, b adds 0: stay at 2/3.
    assert best_threshold(spans, scores, {"a": -2.0, "c": 0.0, "b": 3.0}, has_answer) == (pytest.approx(200 / 3), -2.0)
    # The threshold is reported by squad_evaluate for v2 data
    results = squad_evaluate(
        {"a": "x", "b": "", "c": ""}, {"a": ["x"], "b": ["q"], "c": []}, version_2=True,
        null_diffs={"a": -2.0, "c": 0.0, "b": 3.0}, span_predictions=spans,
    )  # fmt: skip
    assert results["best_exact"] == pytest.approx(200 / 3) and results["best_exact_thresh"] == -2.0
    assert results["best_f1_thresh"] == -2.0
