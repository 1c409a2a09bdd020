"""BM25 over passages: its scores are rank_bm25's own (on crafted passages and on real SQuAD paragraphs), its words
ignore case and punctuation, and its rankings put the best passage first."""

import gzip
import json
import sys

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from conftest import SHARED_DATA, needs_shared_data
from ftlit.errors import FtlitError
from ftlit.search.lexical import BM25Index, words

PASSAGES = [
    "The Eiffel Tower is in Paris, France.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "Mount Fuji is the highest mountain in Japan.",
    "The tower of Pisa leans. The tower is in Italy.",
    "Berlin, Germany: the Brandenburg Gate.",
]


def rank_bm25_scores(passages: list[str], query: str) -> np.ndarray:
    return BM25Okapi([words(passage) for passage in passages]).get_scores(words(query))


def test_words_are_lowercased_word_runs_without_punctuation():
    assert words("Paris, FRANCE's capital (1889)!") == ["paris", "france", "s", "capital", "1889"]
    assert words("Zürich—São Paulo") == ["zürich", "são", "paulo"]


@pytest.mark.parametrize("query", ["Where is the tower?", "capital of France", "tower tower Paris", "unknown words"])
def test_scores_equal_rank_bm25(query):
    assert BM25Index(PASSAGES).scores(query).tolist() == rank_bm25_scores(PASSAGES, query).tolist()


def test_scores_are_zero_where_no_word_is_shared():
    scores = BM25Index(PASSAGES).scores("Fuji")
    assert scores[2] > 0
    assert scores[[0, 1, 3, 4]].tolist() == [0, 0, 0, 0]


def test_search_ranks_the_matching_passage_first_for_each_query():
    ranked = BM25Index(PASSAGES).search(["Brandenburg gate", "highest mountain in Japan", "leaning tower of Pisa"], 2)
    assert ranked.shape == (3, 2)
    assert ranked[:, 0].tolist() == [4, 2, 3]


def test_passages_sharing_no_word_with_the_query_are_not_found():
    ranked = BM25Index(PASSAGES).search(["nothing matches", "Fuji"], 10)
    assert ranked.tolist() == [[-1] * 5, [2, -1, -1, -1, -1]]


def test_a_word_in_most_passages_still_ranks_its_passages_before_the_others():
    # "a" is in 3 of 4 passages, and so many words are this common that its idf is negative: so are the scores
    passages = ["a b e", "a b e", "a b e c", "d"]
    assert (BM25Index(passages).scores("a")[:3] < 0).all()
    assert BM25Index(passages).search(["a"], 4).tolist() == [[2, 0, 1, -1]]


def test_no_passages_is_refused():
    with pytest.raises(FtlitError, match="at least one passage"):
        BM25Index([])


def test_without_rank_bm25_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rank_bm25", None)  # import rank_bm25 now raises ImportError
    with pytest.raises(FtlitError, match=r"pip install 'ftlit\[retrieval\]'"):
        BM25Index(PASSAGES)


@needs_shared_data
@pytest.mark.slow  # reads real data or loads a reader: seconds
def test_scores_equal_rank_bm25_on_squad_paragraphs():
    with gzip.open(SHARED_DATA / "squad" / "train-v1.1.reconstructed.json.gz", "rt") as file:
        articles = json.load(file)["data"][:40]
    paragraphs = [paragraph for article in articles for paragraph in article["paragraphs"]]
    passages = [paragraph["context"] for paragraph in paragraphs]
    questions = [paragraph["qas"][0]["question"] for paragraph in paragraphs[::100]]
    index, reference = BM25Index(passages), BM25Okapi([words(passage) for passage in passages])
    for question in questions:
        np.testing.assert_array_equal(index.scores(question), reference.get_scores(words(question)))
