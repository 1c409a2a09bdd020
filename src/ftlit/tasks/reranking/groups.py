"""The pure parts of reranking: a query's training group (its positive, then its hardest negatives), its
evaluation candidates and which of them are relevant, the losses over groups of scores, and rankings of scored
candidates."""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ftlit.search.ranking import top_k

Loss = Literal["listwise", "pointwise"]

#: The relevant "candidate" of a query whose positive is not among its candidates: an index no ranking holds, so
#: the query counts as a miss at every cut-off (as it does for a reranker that only reorders what it was given)
NOT_RANKED = -1


def training_group(positive: str, negatives: Sequence[str], limit: int | None) -> list[str]:
    """The passages a query trains on: its positive first, then its first ``limit`` negatives (all: None), which
    are the hardest where they were mined (ranked best first by a retriever)."""
    return [positive, *(negatives if limit is None else negatives[:limit])]


def evaluation_candidates(
    positive: str, negatives: Sequence[str] | None, candidates: Sequence[str] | None
) -> tuple[list[str], set[int]]:
    """A query's candidates and the positions of the relevant ones: the retriever's ranked list when the row has
    one (relevant: the candidates equal to the positive, none when the retriever missed it), else its negatives
    then its positive (last: a model that scores every candidate alike ranks it last, never first by luck)."""
    if candidates is not None:
        relevant = {i for i, candidate in enumerate(candidates) if candidate == positive}
        return list(candidates), relevant or {NOT_RANKED}
    passages = [*(negatives or []), positive]
    return passages, {len(passages) - 1}


def group_matrix(scores: torch.Tensor, group_sizes: torch.Tensor) -> torch.Tensor:
    """Flat scores of consecutive groups → ``[groups, largest group]``, padded with -inf."""
    groups = torch.repeat_interleave(torch.arange(len(group_sizes), device=scores.device), group_sizes)
    starts = torch.cumsum(group_sizes, 0) - group_sizes
    positions = torch.arange(len(scores), device=scores.device) - starts[groups]
    matrix = scores.new_full((len(group_sizes), int(group_sizes.max())), float("-inf"))
    matrix[groups, positions] = scores
    return matrix


def group_loss(scores: torch.Tensor, group_sizes: torch.Tensor, loss: Loss) -> torch.Tensor:
    """The training loss of flat ``scores`` of groups whose first passage is the positive. ``listwise``: the
    cross-entropy of the positive among its group's scores (a softmax over the group), averaged over groups;
    ``pointwise``: binary cross-entropy of every (query, passage) score against 1 for the positive and 0 for a
    negative, averaged over pairs."""
    if loss == "listwise":
        matrix = group_matrix(scores, group_sizes)
        return F.cross_entropy(matrix, torch.zeros(len(matrix), dtype=torch.long, device=scores.device))
    starts = torch.cumsum(group_sizes, 0) - group_sizes
    targets = torch.zeros_like(scores)
    targets[starts] = 1.0
    return F.binary_cross_entropy_with_logits(scores, targets)


def rankings(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Each query's candidates (by position), best first, as one ``[queries, most candidates]`` array: a query
    with fewer candidates is padded with positions it does not have, which no relevant set holds. Equal scores
    keep the earlier candidate first."""
    depth = max(len(row) for row in scores)
    padded = np.full((len(scores), depth), -np.inf)
    for i, row in enumerate(scores):
        padded[i, : len(row)] = row
    return top_k(padded, depth)  # (-inf padding sorts last, behind every real score)
