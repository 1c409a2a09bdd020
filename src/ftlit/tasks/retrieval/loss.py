"""The bi-encoder's loss: each query's positive passage against every other passage of the batch (in-batch
negatives, with the batch's hard negatives), a softmax over scaled similarities — sentence-transformers'
MultipleNegativesRankingLoss — with the passages a query shares with others masked out, never its negatives."""

import torch
import torch.nn.functional as F


def shared_passage_mask(query_keys: torch.Tensor, passage_keys: torch.Tensor) -> torch.Tensor:
    """``[queries, passages]``: True where a passage other than query i's own (passage i) is the same text as its
    positive — another row's copy of it, or a hard negative that is its positive — and so no negative of it."""
    same = query_keys[:, None] == passage_keys[None, :]
    own = torch.arange(len(query_keys), device=same.device)
    same[own, own] = False
    return same


def in_batch_negatives_loss(
    queries: torch.Tensor,
    passages: torch.Tensor,
    passage_keys: torch.Tensor,
    scale: float,
    symmetric: bool = False,
) -> torch.Tensor:
    """Cross-entropy of each query's positive among all the batch's passages.

    Args:
        queries: ``[batch, dim]`` query embeddings.
        passages: ``[batch × (1 + negatives), dim]``: the queries' positives in query order, then the hard
            negatives.
        passage_keys: ``[batch × (1 + negatives)]``: a number per passage text, equal for equal texts.
        scale: the similarities' multiplier (the softmax's inverse temperature; 20 for cosine similarities).
        symmetric: also each positive passage's query among the batch's queries, the two terms averaged.
    """
    batch = len(queries)
    targets = torch.arange(batch, device=queries.device)
    query_keys = passage_keys[:batch]
    scores = scale * queries @ passages.T
    loss = F.cross_entropy(scores.masked_fill(shared_passage_mask(query_keys, passage_keys), float("-inf")), targets)
    if not symmetric:
        return loss
    backward = scale * passages[:batch] @ queries.T  # positive i against every query of the batch
    backward = backward.masked_fill(shared_passage_mask(query_keys, query_keys), float("-inf"))
    return (loss + F.cross_entropy(backward, targets)) / 2
