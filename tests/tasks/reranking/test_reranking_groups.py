"""The pure parts of reranking: training groups, evaluation candidates, the losses over groups, and rankings."""

import math

import numpy as np
import pytest
import torch

from ftlit.search.ranking import ranking_metrics
from ftlit.tasks.reranking.groups import (
    NOT_RANKED,
    evaluation_candidates,
    group_loss,
    group_matrix,
    rankings,
    training_group,
)


def test_a_training_group_is_the_positive_then_the_first_negatives():
    assert training_group("p", ["n1", "n2", "n3"], limit=2) == ["p", "n1", "n2"]
    assert training_group("p", ["n1", "n2", "n3"], limit=None) == ["p", "n1", "n2", "n3"]
    assert training_group("p", ["n1"], limit=5) == ["p", "n1"]


def test_evaluation_candidates_are_the_retrievers_list_or_the_negatives_then_the_positive():
    assert evaluation_candidates("p", ["n1", "n2"], None) == (["n1", "n2", "p"], {2})
    assert evaluation_candidates("p", ["n1"], ["n2", "p", "n1"]) == (["n2", "p", "n1"], {1})
    # the retriever missed the positive: no candidate is relevant, and the query counts as a miss
    passages, relevant = evaluation_candidates("p", [], ["n1", "n2"])
    assert relevant == {NOT_RANKED}
    assert ranking_metrics(rankings([np.array([2.0, 1.0])]), [relevant])["mrr_at_10"] == 0.0


def test_groups_of_different_sizes_become_rows_padded_with_minus_infinity():
    matrix = group_matrix(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), torch.tensor([3, 1, 2]))
    inf = -math.inf
    assert matrix.tolist() == [[1.0, 2.0, 3.0], [4.0, inf, inf], [5.0, 6.0, inf]]


def test_the_listwise_loss_is_the_cross_entropy_of_each_positive_within_its_group():
    scores, sizes = torch.tensor([2.0, 0.0, 1.0, 3.0, 3.0]), torch.tensor([3, 2])
    first = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(1)))
    second = math.log(2)  # the positive ties with its negative
    assert group_loss(scores, sizes, "listwise").item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_the_pointwise_loss_is_the_binary_cross_entropy_of_each_pair_against_its_label():
    scores, sizes = torch.tensor([2.0, 0.0, 1.0, -3.0]), torch.tensor([3, 1])

    def bce(score: float, label: float) -> float:
        p = 1 / (1 + math.exp(-score))
        return -(label * math.log(p) + (1 - label) * math.log(1 - p))

    expected = (bce(2, 1) + bce(0, 0) + bce(1, 0) + bce(-3, 1)) / 4
    assert group_loss(scores, sizes, "pointwise").item() == pytest.approx(expected, abs=1e-6)


def test_rankings_put_the_best_first_keep_ties_in_order_and_pad_shorter_lists_behind():
    ranked = rankings([np.array([0.1, 0.9, 0.5]), np.array([1.0, 1.0])])
    assert ranked[0].tolist() == [1, 2, 0]
    assert ranked[1].tolist()[:2] == [0, 1] and ranked[1][2] == 2  # position 2 does not exist for this query
    assert ranking_metrics(ranked, [{2}, {1}])["mrr_at_10"] == pytest.approx((1 / 2 + 1 / 2) / 2)
