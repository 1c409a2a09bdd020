"""Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): several rankings of the same passages merged
into one by rank alone, so that scores on different scales (BM25's, a dot product's) never need calibrating."""

from collections.abc import Sequence

import numpy as np

from ftlit.errors import FtlitError
from ftlit.search.ranking import top_k
from ftlit.settings import check_range


def reciprocal_rank_fusion(rankings: Sequence[np.ndarray], k: int = 60, *, depth: int) -> np.ndarray:
    """The fused ranking of each query (``[queries, min(depth, the deepest ranking's depth)]`` passage indices, best
    first) of ``rankings`` (each ``[queries, its depth]``, best first; -1 where a position holds no passage, as
    BM25 leaves those its query shares no word with): a passage scores the sum over rankings of 1 / (``k`` + its
    rank there, from 1), nothing where a ranking leaves it out; equal scores keep the lower passage index first. A
    row keeps its width where the rankings found fewer passages: it ends in -1s, as theirs do.

    ``k`` (≥ 0; the paper's 60) damps the lead of the very first ranks; ``depth`` ≥ 1."""
    check_range("k", k, minimum=0)
    check_range("depth", depth, minimum=1)
    if not rankings:
        raise FtlitError("Reciprocal rank fusion needs at least one ranking.")
    if len({len(ranking) for ranking in rankings}) > 1:
        raise FtlitError(f"Rankings of different numbers of queries: {[len(ranking) for ranking in rankings]}.")
    # each row of every ranking holds distinct passages, so the union of a query's rows fills the deepest one
    # unless some of it is -1
    width = min(depth, max(ranking.shape[1] for ranking in rankings))
    contributions = np.concatenate([1.0 / (k + np.arange(1, ranking.shape[1] + 1)) for ranking in rankings])
    fused = np.full((len(rankings[0]), width), -1, dtype=np.int64)
    for row, passages in enumerate(np.concatenate(rankings, axis=1)):
        found = passages >= 0
        # np.unique sorts the passages ascending, so top_k's ties by the lower position are by the lower index
        unique, where = np.unique(passages[found], return_inverse=True)
        scores = np.bincount(where, weights=contributions[found], minlength=len(unique))
        best = unique[top_k(scores, width)]
        fused[row, : len(best)] = best
    return fused
