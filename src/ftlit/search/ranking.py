"""Ranking passages by score, and the ranking metrics of the field (binary relevance, as MS MARCO and BEIR score):
recall@k, MRR@10 and nDCG@10, averaged over queries."""

from collections.abc import Sequence

import numpy as np

from ftlit.errors import FtlitError

#: The cut-offs ftlit reports: recall at each of these, MRR and nDCG at the last
RECALL_CUTOFFS: tuple[int, ...] = (1, 5, 20)
MRR_CUTOFF = 10
NDCG_CUTOFF = 10


def metric_names() -> tuple[str, ...]:
    """The names ``ranking_metrics`` reports, in its order."""
    return (*(f"recall_at_{k}" for k in RECALL_CUTOFFS), f"mrr_at_{MRR_CUTOFF}", f"ndcg_at_{NDCG_CUTOFF}")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's ``k`` highest scores, best first (``[queries, min(k, passages)]``); equal scores
    keep the lower index first, so a ranking never depends on the sort's whims."""
    order = np.argsort(-scores, axis=-1, kind="stable")
    return order[..., :k]


def ranking_metrics(ranked: np.ndarray, relevant: Sequence[set[int]]) -> dict[str, float]:
    """Recall@1/5/20, MRR@10 and nDCG@10 of rankings ``ranked`` (``[queries, depth]`` passage indices, best first;
    a depth below a cut-off scores what it holds) against each query's relevant passages, averaged over queries.

    recall@k: the share of a query's relevant passages among its first k. MRR@10: 1 / the rank of the first relevant
    passage within the first 10, else 0. nDCG@10: the discounted gain of the relevant passages within the first 10
    (1 / log2(rank + 1)), over the best possible.
    """
    if len(ranked) != len(relevant):
        raise FtlitError(f"{len(ranked)} rankings for {len(relevant)} queries.")
    if not len(relevant):
        raise FtlitError("No queries to score.")
    if any(not passages for passages in relevant):
        raise FtlitError("Every scored query needs at least one relevant passage.")
    discounts = 1.0 / np.log2(np.arange(2, NDCG_CUTOFF + 2))
    recall = {k: [] for k in RECALL_CUTOFFS}
    reciprocal_ranks, ndcg = [], []
    for ranking, passages in zip(ranked, relevant):
        listed = [passage for passage in ranking if passage >= 0]  # (-1: no passage at that rank)
        if len(set(listed)) < len(listed):
            raise FtlitError(f"A ranking lists a passage twice: {list(ranking)}.")
        hits = np.array([passage in passages for passage in ranking], dtype=bool)
        for k in RECALL_CUTOFFS:
            recall[k].append(hits[:k].sum() / len(passages))
        first = np.flatnonzero(hits[:MRR_CUTOFF])
        reciprocal_ranks.append(1.0 / (first[0] + 1) if len(first) else 0.0)
        gains = hits[:NDCG_CUTOFF]
        ideal = discounts[: min(len(passages), NDCG_CUTOFF)].sum()
        ndcg.append(float(discounts[: len(gains)][gains].sum() / ideal))
    values = [*(np.mean(recall[k]) for k in RECALL_CUTOFFS), np.mean(reciprocal_ranks), np.mean(ndcg)]
    return dict(zip(metric_names(), (float(value) for value in values)))
