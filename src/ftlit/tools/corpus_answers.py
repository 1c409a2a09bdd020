"""What answers ``ftlit serve``'s requests over a corpus: :class:`CorpusSearch` the passages for a query
(``/search``), :class:`CorpusAnswers` a question (``/answer``): its passages retrieved, reranked by a cross-encoder
when there is one, the best read by a question-answering export, whose best span is the answer. Both read requests
and answer rows as :class:`~ftlit.tools.prediction.Predictor` does, so the server batches them alike."""

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from ftlit.search.corpus import CorpusIndex
from ftlit.search.encoder import SentenceEncoder
from ftlit.tools.corpus_requests import passage_record, query_row, ranked_results
from ftlit.tools.prediction import Predictor
from ftlit.tools.reranker import Reranker

#: A hit: a passage's position in the corpus and its score
Hit = tuple[int, float]


class CorpusSearch:
    """A retriever over a corpus embedded once (reloaded from its index on disk when it is there already)."""

    def __init__(self, index: CorpusIndex, fusion: str, default_k: int) -> None:
        self.index, self.fusion, self.default_k = index, fusion, default_k
        self.corpus = index.corpus
        if fusion != "dense":
            self.index.bm25  # built now, while the service loads, not by the first request  # noqa: B018

    @classmethod
    def load(
        cls,
        retriever: Path,
        corpus: Path,
        fusion: str,
        default_k: int,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> "CorpusSearch":
        """``retriever``'s encoder over the passages of ``corpus``, on ``device`` (by default the encoder's:
        ``inference_device()``'s; ``progress``: a bar while they are embedded)."""
        return cls(CorpusIndex(corpus, SentenceEncoder(retriever, device), progress=progress), fusion, default_k)

    def request_row(self, request: Mapping) -> dict:
        return query_row(request, "query", self.default_k)

    def hits(self, rows: list[dict]) -> list[list[Hit]]:
        """Each row's ``k`` best passages, best first, all rows searched together as deep as the deepest. The score
        is the retriever's similarity of query and passage, also where the order is fused with BM25's (a fused
        score says nothing but the order)."""
        queries, deepest = [row["query"] for row in rows], max(row["k"] for row in rows)
        embedded = self.index.encoder.encode(queries, "query")
        if self.fusion == "dense":
            positions, scores = self.index.search(embedded, deepest)
        else:  # (search_texts embeds the queries again: a batch of queries costs little beside the corpus)
            positions = self.index.search_texts(queries, deepest, fusion=self.fusion)
            comparable = self.index.encoder.comparable(embedded)
            scores = np.einsum("qkd,qd->qk", self.index.searched[positions], comparable)
        # (-1: no passage, where a fused ranking found fewer than k)
        return [
            [(position, score) for position, score in zip(found.tolist(), scored.tolist()) if position >= 0][: row["k"]]
            for row, found, scored in zip(rows, positions, scores)
        ]

    def predict(self, rows: list[dict]) -> list[dict]:
        return [{"results": ranked_results(self.corpus, found)} for found in self.hits(rows)]


class CorpusAnswers:
    """Questions answered from a corpus: ``k`` passages retrieved, reranked (with a reranker), the best ``read`` of
    them read by the reader; the answer is the reader's best span over them (a span, when any passage holds one)."""

    def __init__(self, search: CorpusSearch, reader: Predictor, reranker: Reranker | None, read: int) -> None:
        self.search, self.reader, self.reranker, self.read = search, reader, reranker, read

    @classmethod
    def load(
        cls,
        search: Callable[[str | torch.device], CorpusSearch],
        reader: Path,
        build: Callable[[list[str]], object],
        reranker: Path | None,
        read: int,
        device: str | torch.device = "cpu",
    ) -> "CorpusAnswers":
        """``search(device)`` loads the retriever; ``reader`` is a question-answering run or export (``build``: the
        CLI on arguments, not run), ``reranker`` a cross-encoder's folder."""
        return cls(
            search(device),
            Predictor.from_export(reader, build, device=device),
            None if reranker is None else Reranker(reranker, device),
            read,
        )

    def request_row(self, request: Mapping) -> dict:
        return query_row(request, "question", self.search.default_k)

    def predict(self, rows: list[dict]) -> list[dict]:
        texts = self.search.corpus.texts
        chosen = [self.best_passages(row["query"], found) for row, found in zip(rows, self.search.hits(rows))]
        # every (question, passage) pair of the batch read in one go
        pairs = [(row, position) for row, positions in zip(rows, chosen) for position in positions]
        spans = self.reader.predict(
            [self.reader.request_row({"question": row["query"], "context": texts[position]}) for row, position in pairs]
        )
        spans, answers = iter(spans), []
        for positions in chosen:
            read = [(next(spans), position) for position in positions]
            # a span before an empty answer (a SQuAD v2 reader's "none here"), then the higher score; on a tie the
            # passage ranked first
            span, position = max(read, key=lambda candidate: (bool(candidate[0]["answer"]), candidate[0]["score"]))
            answers.append(
                {
                    "answer": span["answer"],
                    "score": span["score"],
                    "passage": passage_record(self.search.corpus, position),
                    "start": span["start"],
                    "end": span["end"],
                }
            )
        return answers

    def best_passages(self, question: str, found: list[Hit]) -> list[int]:
        """The positions of the ``read`` passages the reader reads: the retriever's best, or the reranker's best of
        what the retriever found (each read with its title, as the retriever read it; the reader reads the text
        alone, whose character offsets its answer gives)."""
        positions = [position for position, _ in found]
        if self.reranker is not None:
            # the reranker reads each passage as the retriever did: its title and text
            searched = self.search.index.passages
            scores = self.reranker.scores(question, [searched[position] for position in positions])
            positions = [positions[i] for i in sorted(range(len(positions)), key=lambda i: -scores[i])]
        return positions[: self.read]
