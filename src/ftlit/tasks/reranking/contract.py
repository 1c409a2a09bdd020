"""What a reranking data module hands its model: for each evaluated split, which query and which of its candidates
each feature (a (query, candidate) pair) is, and which candidates are relevant."""

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from ftlit.contract import DataContract, EvalSet


@dataclass(frozen=True)
class CandidatesEvalSet(EvalSet):
    """An evaluated split: one feature per (query, candidate) pair. ``num_examples`` counts queries."""

    query_index: np.ndarray  # (num_features,) the feature's query (row of the split)
    position: np.ndarray  # (num_features,) the feature's candidate, by its position in the query's candidates
    candidate_counts: np.ndarray  # (num_examples,) candidates per query
    relevant: list[set[int]] | None  # per query, the positions of its relevant candidates; None for predict
    retriever_order: bool  # the candidates are a retriever's ranked list, best first: its ranking is scored too
    rows: Dataset | None = None  # the input rows (predict only): each record repeats its row


@dataclass(frozen=True)
class RerankingContract(DataContract):
    """The evaluated splits; whether their candidates hold a retriever's order decides whether its metrics
    (``retriever_*``) are reported beside the reranker's."""

    @property
    def scores_retriever(self) -> bool:
        """Some scored split's candidates are a retriever's ranked list."""
        return any(one.retriever_order for one in self.eval_sets.values() if one.relevant is not None)
