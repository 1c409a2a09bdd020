"""Entity-level scores equal seqeval's (the reference implementation of conlleval's counting)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

from ftlit.tasks.token_classification.metrics import entity_scores

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def seqeval_scores(gold, predicted) -> dict:
    return {"precision": precision_score(gold, predicted), "recall": recall_score(gold, predicted),
            "f1": f1_score(gold, predicted), "accuracy": accuracy_score(gold, predicted)}  # fmt: skip


def test_crafted_edge_cases_score_as_seqeval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "B-PER", "O"], ["O", "I-LOC", "I-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"]]
    metrics, table = entity_scores(gold, predicted)
    assert {k: metrics[k] for k in ("precision", "recall", "f1", "accuracy")} == pytest.approx(
        seqeval_scores(gold, predicted)
    )
    assert metrics["precision"] == pytest.approx(2 / 3)  # PER 0-1 and LOC 1-2 found; PER 0-1 of sentence 2 wrong
    reference = classification_report(gold, predicted, output_dict=True)
    for kind in ("PER", "LOC"):
        assert table[kind]["f1"] == pytest.approx(reference[kind]["f1-score"], abs=1e-6)
        assert table[kind]["support"] == reference[kind]["support"]
        assert metrics[f"f1_{kind}"] == pytest.approx(reference[kind]["f1-score"])


def test_nothing_predicted_scores_zero():
    metrics, _ = entity_scores([["B-PER", "O"]], [["O", "O"]])
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.0, 0.0, 0.0)


def test_a_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="2 gold tags but 1"):
        entity_scores([["O", "O"]], [["O"]])


sentences = st.lists(st.integers(1, 8).flatmap(
    lambda n: st.tuples(st.lists(st.sampled_from(TAGS), min_size=n, max_size=n),
                        st.lists(st.sampled_from(TAGS), min_size=n, max_size=n))), min_size=1, max_size=6)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(sentences)
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_any_tag_sequences_score_as_seqeval(pairs):
    gold, predicted = [list(g) for g, _ in pairs], [list(p) for _, p in pairs]
    metrics, _ = entity_scores(gold, predicted)
    assert {k: metrics[k] for k in ("precision", "recall", "f1", "accuracy")} == pytest.approx(
        seqeval_scores(gold, predicted)
    )
