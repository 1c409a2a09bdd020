"""The requests of ``ftlit serve`` over a corpus: a query (or question) and how many passages, each problem named by
its field; and the passages answered with their score and rank."""

import pytest

from ftlit.errors import RequestError
from ftlit.search.corpus import Corpus
from ftlit.tools.corpus_requests import MAX_K, query_row, ranked_results


def test_a_query_is_read_with_its_k_or_the_default():
    assert query_row({"query": "where is paris?"}, "query", default_k=10) == {"query": "where is paris?", "k": 10}
    assert query_row({"question": "who?", "k": 3}, "question", default_k=10) == {"query": "who?", "k": 3}
    assert query_row({"query": "who?", "k": None}, "query", default_k=7)["k"] == 7


@pytest.mark.parametrize(
    ("request_", "field", "detail"),
    [
        ({}, "query", "missing: give it as a string."),
        ({"query": "  "}, "query", "is empty."),
        ({"query": 3}, "query", "must be a string, not int."),
        ({"query": "who?", "k": 0}, "k", f"must be from 1 to {MAX_K}, not 0."),
        ({"query": "who?", "k": MAX_K + 1}, "k", f"must be from 1 to {MAX_K}, not {MAX_K + 1}."),
        ({"query": "who?", "k": 2.5}, "k", "must be a whole number, not float."),
        ({"query": "who?", "k": "5"}, "k", "must be a whole number, not str."),
        ({"query": "who?", "k": True}, "k", "must be a whole number, not bool."),
        ({"query": "who?", "top": 5}, "top", "unknown field; this model reads 'query' and 'k'."),
        (["who?"], "request", "must be a JSON object with 'query' and 'k', not list."),
    ],
)
def test_a_bad_query_is_refused_naming_its_field(request_, field, detail):
    with pytest.raises(RequestError) as refused:
        query_row(request_, "query", default_k=10)
    assert (refused.value.field, refused.value.detail) == (field, detail)


def test_results_are_the_passages_best_first_with_score_and_rank_and_a_title_only_when_there_is_one():
    corpus = Corpus(["a", "b", "c"], ["Paris is in France.", "Rome.", "Oslo."], ["Paris", "", "Norway"])
    untitled = Corpus(["a", "b", "c"], corpus.texts, None)
    assert ranked_results(corpus, [(2, 0.75), (0, 0.5)]) == [
        {"id": "c", "text": "Oslo.", "title": "Norway", "score": 0.75, "rank": 1},
        {"id": "a", "text": "Paris is in France.", "title": "Paris", "score": 0.5, "rank": 2},
    ]
    assert ranked_results(corpus, [(1, 1.0)]) == [{"id": "b", "text": "Rome.", "score": 1.0, "rank": 1}]
    assert ranked_results(untitled, [(0, 0.5)]) == [{"id": "a", "text": "Paris is in France.", "score": 0.5, "rank": 1}]
