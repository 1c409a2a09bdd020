"""What a retrieval data module hands its model: each evaluated split's queries and its corpus (the split's
distinct passages), which passages are relevant to which query, and how queries and passages are tokenised."""

from dataclasses import dataclass

from ftlit.contract import DataContract, EvalSet


@dataclass(frozen=True)
class RetrievalEvalSet(EvalSet):
    """An evaluated split. Its features are its queries (the first ``num_examples``), then its passages.

    Attributes:
        queries: the queries' texts, in row order.
        passages: the corpus: every distinct passage of the split, in order of first appearance.
        relevant: each query's relevant passages (indices into ``passages``); None for predict.
    """

    queries: list[str]
    passages: list[str]
    relevant: list[set[int]] | None


@dataclass(frozen=True)
class RetrievalContract(DataContract):
    max_query_length: int  # tokens per query (``max_length`` is the passages')
    query_prefix: str  # prepended to every query before tokenising (e.g. ``query: `` for E5 models)
    passage_prefix: str
