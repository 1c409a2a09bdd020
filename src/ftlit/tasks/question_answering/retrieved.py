"""Reading from retrieved paragraphs: each question's context replaced by the paragraphs a retriever finds for it
among all of its file's paragraphs, so that an evaluation scores retrieval and reading together (open-book QA
over a corpus), beside the reader's score with the gold paragraph."""

import logging
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from ftlit.data.checks import column
from ftlit.search.encoder import SentenceEncoder
from ftlit.search.ranking import top_k

log = logging.getLogger(__name__)

#: What separates retrieved paragraphs read as one context
SEPARATOR = "\n\n"


def retrieved_contexts(
    questions: Sequence[str], passages: Sequence[str], encoder: SentenceEncoder, depth: int
) -> np.ndarray:
    """The ``depth`` best passages of each question (indices, best first), by the encoder's own similarity."""
    queries = encoder.encode(list(questions), kind="query")
    corpus = encoder.encode(list(passages), kind="passage", progress=True)
    return top_k(encoder.comparable(queries) @ encoder.comparable(corpus).T, depth)


def read_from_retrieved(split: str, rows: Dataset, passages: list[str], retriever: str, depth: int) -> Dataset:
    """``rows`` with each context replaced by its question's ``depth`` best paragraphs among ``passages`` (joined
    best first); logs how often the gold paragraph was among them (recall@depth)."""
    contexts = column(rows, "context")
    ranked = retrieved_contexts(column(rows, "question"), passages, SentenceEncoder(retriever), depth)
    number = {text: i for i, text in enumerate(passages)}
    found = sum(number[gold] in row for gold, row in zip(contexts, ranked))
    log.info(
        "%s: the retriever found the gold paragraph among its %d best of %d for %d of %d questions (%.1f %%).",
        split,
        depth,
        len(passages),
        found,
        len(rows),
        100 * found / max(len(rows), 1),
    )
    joined = [SEPARATOR.join(passages[i] for i in row) for row in ranked]
    return rows.remove_columns("context").add_column("context", joined)
