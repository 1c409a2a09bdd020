"""Ranking by score and the ranking metrics: crafted cases worked by hand, and the same rankings scored by
sentence-transformers' InformationRetrievalEvaluator, the reference implementation of the field's metrics."""

import math

import numpy as np
import pytest
from sentence_transformers.evaluation import InformationRetrievalEvaluator

from ftlit.errors import FtlitError
from ftlit.search.ranking import metric_names, ranking_metrics, top_k


def test_top_k_ranks_best_first_and_ties_keep_the_lower_index_first():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [1.0, 1.0, 1.0, 1.0]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]


def test_top_k_deeper_than_the_passages_returns_them_all():
    assert top_k(np.array([[0.2, 0.3]]), 5).tolist() == [[1, 0]]


def test_a_relevant_passage_first_scores_one_everywhere():
    metrics = ranking_metrics(np.array([[3, 1, 2]]), [{3}])
    assert list(metrics) == list(metric_names())
    assert all(value == 1.0 for value in metrics.values())


def test_a_relevant_passage_third_scores_by_its_rank():
    metrics = ranking_metrics(np.array([[0, 1, 7, 2, 3]]), [{7}])
    assert metrics["recall_at_1"] == 0.0
    assert metrics["recall_at_5"] == metrics["recall_at_20"] == 1.0
    assert metrics["mrr_at_10"] == pytest.approx(1 / 3)
    assert metrics["ndcg_at_10"] == pytest.approx(1 / math.log2(4))  # ideal: rank 1, discount 1


def test_several_relevant_passages_share_recall_and_ndcg_counts_each():
    # relevant 5 and 9 at ranks 2 and 4; relevant 8 never retrieved
    metrics = ranking_metrics(np.array([[0, 5, 1, 9, 2, 3]]), [{5, 8, 9}])
    assert metrics["recall_at_1"] == 0.0
    assert metrics["recall_at_5"] == pytest.approx(2 / 3)
    assert metrics["mrr_at_10"] == pytest.approx(1 / 2)  # the first relevant one only
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg_at_10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)


def test_a_ranking_shallower_than_a_cut_off_scores_what_it_holds():
    metrics = ranking_metrics(np.array([[4, 2]]), [{2, 6}])
    assert metrics["recall_at_5"] == metrics["recall_at_20"] == 0.5
    assert metrics["mrr_at_10"] == 0.5


def test_a_relevant_passage_past_the_cut_off_counts_for_recall_at_20_only():
    ranking = np.arange(30)[None]  # passage 12 at rank 13
    metrics = ranking_metrics(ranking, [{12}])
    assert metrics["recall_at_5"] == metrics["mrr_at_10"] == metrics["ndcg_at_10"] == 0.0
    assert metrics["recall_at_20"] == 1.0


def test_metrics_average_over_queries():
    metrics = ranking_metrics(np.array([[0, 1], [0, 1]]), [{0}, {1}])
    assert metrics["recall_at_1"] == 0.5
    assert metrics["mrr_at_10"] == pytest.approx((1 + 1 / 2) / 2)


def test_a_query_without_relevant_passages_is_refused():
    with pytest.raises(FtlitError, match="at least one relevant passage"):
        ranking_metrics(np.array([[0, 1], [1, 0]]), [{0}, set()])


def test_rankings_and_queries_must_match_in_number():
    with pytest.raises(FtlitError, match="2 rankings for 1 queries"):
        ranking_metrics(np.array([[0], [1]]), [{0}])
    with pytest.raises(FtlitError, match="No queries"):
        ranking_metrics(np.zeros((0, 3), dtype=int), [])


def reference_metrics(scores: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """The metrics sentence-transformers' evaluator computes from the same scores (its own ranking: best first,
    ties by ascending corpus id, here zero-padded so that the ids sort as the indices do)."""
    name = "{:04d}".format
    queries = {name(q): f"query {q}" for q in range(len(scores))}
    corpus = {name(p): f"passage {p}" for p in range(scores.shape[1])}
    relevant_docs = {name(q): {name(p) for p in passages} for q, passages in enumerate(relevant)}
    evaluator = InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant_docs,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 5, 20],
        map_at_k=[10],
    )
    results = [[{"corpus_id": name(p), "score": float(s)} for p, s in enumerate(row)] for row in scores]
    found = evaluator.compute_metrics(results)
    return {
        **{f"recall_at_{k}": found["recall@k"][k] for k in (1, 5, 20)},
        "mrr_at_10": found["mrr@k"][10],
        "ndcg_at_10": found["ndcg@k"][10],
    }


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_sentence_transformers_evaluator_on_random_rankings(seed):
    rng = np.random.default_rng(seed)
    queries, passages = 40, 60
    # scores rounded to one decimal: many ties, which both rank by the lower index first
    scores = rng.random((queries, passages)).round(1)
    relevant = [set(rng.choice(passages, size=rng.integers(1, 15), replace=False).tolist()) for _ in range(queries)]
    ours = ranking_metrics(top_k(scores, 20), relevant)
    reference = reference_metrics(scores, relevant)
    assert ours == pytest.approx(reference, abs=1e-12)


def test_a_ranking_listing_a_passage_twice_is_refused_rather_than_scored_above_one():
    with pytest.raises(FtlitError, match="lists a passage twice"):
        ranking_metrics(np.array([[3, 3, 3]]), [{3}])  # would give recall 3.0
    assert ranking_metrics(np.array([[3, -1, -1]]), [{3}])["recall_at_1"] == 1.0  # -1: no passage at that rank
