"""The bi-encoder's loss: sentence-transformers' MultipleNegativesRankingLoss where no passage repeats, and a
passage that several queries share never counted as a negative of them."""

import pytest
import torch
import torch.nn.functional as F

from ftlit.tasks.retrieval.loss import in_batch_negatives_loss, shared_passage_mask


def embeddings(rows: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def sentence_transformers_loss(queries, positives, negatives, **settings) -> torch.Tensor:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss(model=torch.nn.Identity(), scale=20.0, **settings)
    return loss.compute_loss_from_embeddings([queries, positives, *negatives], labels=None)


def test_without_shared_passages_it_is_multiple_negatives_ranking_loss_with_hard_negatives():
    queries, positives = embeddings(4, seed=1), embeddings(4, seed=2)
    negatives = [embeddings(4, seed=3), embeddings(4, seed=4)]  # two hard negatives per query, by column
    # ftlit lays a batch's hard negatives out row by row: a softmax over a set, so the order is no matter
    rows = torch.stack(negatives, dim=1).reshape(8, -1)
    ours = in_batch_negatives_loss(queries, torch.cat([positives, rows]), torch.arange(12), scale=20.0)
    torch.testing.assert_close(ours, sentence_transformers_loss(queries, positives, negatives))


def test_the_symmetric_term_is_sentence_transformers_doc_to_query_direction():
    queries, positives = embeddings(5, seed=5), embeddings(5, seed=6)
    ours = in_batch_negatives_loss(queries, positives, torch.arange(5), scale=20.0, symmetric=True)
    theirs = sentence_transformers_loss(
        queries, positives, [], directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    torch.testing.assert_close(ours, theirs)


def test_a_passage_two_queries_share_is_neither_query_s_negative():
    # queries 0 and 2 share passage key 7; query 1's hard negative (passage 4) is query 0's positive as well
    keys = torch.tensor([7, 8, 7, 9, 7])
    mask = shared_passage_mask(keys[:3], keys)
    assert mask.tolist() == [
        [False, False, True, False, True],
        [False, False, False, False, False],
        [True, False, False, False, True],
    ]
    queries, passages = embeddings(3, seed=7), embeddings(5, seed=8)
    loss = in_batch_negatives_loss(queries, passages, keys, scale=20.0)
    scores = 20.0 * queries @ passages.T
    expected = torch.stack([
        -torch.log_softmax(scores[0, [0, 1, 3]], 0)[0],
        -torch.log_softmax(scores[1], 0)[1],
        -torch.log_softmax(scores[2, [1, 2, 3]], 0)[1],
    ]).mean()  # fmt: skip
    torch.testing.assert_close(loss, expected)


def test_duplicated_pairs_cost_what_one_pair_costs_when_the_other_passages_are_far():
    # a batch holding the same (query, passage) twice: unmasked, each copy would be the other's hard negative
    query, far = F.normalize(torch.tensor([[1.0, 0.0]]), dim=-1), torch.tensor([[0.0, 1.0]])
    queries, passages = torch.cat([query, query]), torch.cat([query, query, far])
    loss = in_batch_negatives_loss(queries, passages, torch.tensor([0, 0, 1]), scale=20.0)
    assert loss < 1e-6
