"""Corpus files and their index: what a corpus file may hold and what is refused, embeddings kept beside the corpus
and read back until the corpus or the model changes, and searches equal to brute force."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_jsonl
from ftlit.errors import FtlitError
from ftlit.search.corpus import FUSION_DEPTH, CorpusIndex, read_corpus
from ftlit.search.encoder import SentenceEncoder, write_sentence_transformers_files
from ftlit.search.fusion import reciprocal_rank_fusion
from ftlit.search.lexical import BM25Index

ROWS = [
    {"id": "p1", "title": "Paris", "text": "The Eiffel Tower is in Paris."},
    {"id": "p2", "title": "", "text": "Mount Fuji is the highest mountain in Japan."},
    {"id": "p3", "title": "Berlin", "text": "The Brandenburg Gate stands in Berlin."},
    {"id": "p4", "title": "Pisa", "text": "The leaning tower of Pisa is in Italy."},
    {"id": "p5", "title": "Hamlet", "text": "Hamlet is a tragedy by William Shakespeare."},
]
QUERIES = ["where is the eiffel tower", "highest mountain", "who wrote hamlet"]


class CountingEncoder(SentenceEncoder):
    """A sentence encoder that counts the passages it encodes."""

    encoded = 0

    def encode(self, texts, kind, batch_size=64, progress=False):
        self.encoded += len(texts) if kind == "passage" else 0
        return super().encode(texts, kind, batch_size, progress)


def sentence_model(tiny_bert: str, folder: Path, query_prefix: str = "") -> Path:
    shutil.copytree(tiny_bert, folder)
    write_sentence_transformers_files(folder, "mean", True, 32, query_prefix=query_prefix)
    return folder


@pytest.fixture
def encoder(tiny_bert, tmp_path) -> CountingEncoder:
    return CountingEncoder(sentence_model(tiny_bert, tmp_path / "model"))


def test_a_jsonl_corpus_keeps_its_ids_and_joins_titles_to_texts(tmp_path):
    corpus = read_corpus(write_jsonl(tmp_path / "corpus.jsonl", ROWS))
    assert corpus.ids == ["p1", "p2", "p3", "p4", "p5"]
    assert corpus.titles[:2] == ["Paris", ""]
    assert corpus.passages()[:2] == [
        "Paris The Eiffel Tower is in Paris.",
        "Mount Fuji is the highest mountain in Japan.",
    ]


def test_a_corpus_without_ids_or_titles_is_numbered_from_zero(tmp_path):
    path = tmp_path / "corpus.parquet"
    pd.DataFrame({"text": ["one passage", "another passage"]}).to_parquet(path)
    corpus = read_corpus(path)
    assert (corpus.ids, corpus.titles, corpus.passages()) == (["0", "1"], None, ["one passage", "another passage"])


def test_numeric_ids_are_read_as_text(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps([{"id": 7, "text": "seven"}, {"id": 12, "text": "twelve"}]))
    assert read_corpus(path).ids == ["7", "12"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"passage": "no text column"}], r"has no 'text' column \(its columns: passage\)"),
        ([{"text": "fine"}, {"text": "  "}, {"text": ""}], r"2 passage\(s\) have no text \(rows 2, 3\)"),
        ([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}], r"\['a'\], at rows 1, 3"),
        ([{"id": "a", "text": "x"}, {"id": None, "text": "y"}], r"1 passage\(s\) have no id \(row 2\)"),
        ([{"text": ["a", "list"]}], r"column 'text' must hold text"),
    ],
)
def test_a_malformed_corpus_is_refused_naming_the_file_and_rows(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "corpus.jsonl", rows)
    with pytest.raises(FtlitError, match=message) as refused:
        read_corpus(path)
    assert str(path) in str(refused.value)


def test_the_index_is_kept_beside_the_corpus_and_read_back_without_encoding(tmp_path, encoder):
    path = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    first = CorpusIndex(path, encoder, progress=False)
    assert (first.reused, encoder.encoded) == (False, 5)
    kept = sorted(p.name for p in (tmp_path / "corpus.jsonl.ftlit-index").iterdir())
    assert kept == [f"{first.fingerprint}.json", f"{first.fingerprint}.npy"]  # no temporary file left
    second = CorpusIndex(path, encoder, progress=False)
    assert (second.reused, encoder.encoded) == (True, 5)
    np.testing.assert_array_equal(second.embeddings, first.embeddings)


def test_a_changed_corpus_is_embedded_anew(tmp_path, encoder):
    path = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    CorpusIndex(path, encoder, progress=False)
    write_jsonl(path, [*ROWS[:4], {**ROWS[4], "text": "Hamlet is a play."}])
    changed = CorpusIndex(path, encoder, progress=False)
    assert (changed.reused, encoder.encoded) == (False, 10)
    np.testing.assert_array_equal(changed.embeddings, encoder.encode(changed.passages, "passage"))


def test_a_changed_model_or_prefix_is_embedded_anew(tmp_path, tiny_bert, encoder):
    path = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    CorpusIndex(path, encoder, progress=False)
    # the same weights rewritten (a new training run's export): the file's time changes
    weights = encoder.settings.model_folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert not CorpusIndex(path, encoder, progress=False).reused
    other = CountingEncoder(sentence_model(tiny_bert, tmp_path / "prompted", query_prefix="query: "))
    assert not CorpusIndex(path, other, progress=False).reused
    assert CorpusIndex(path, encoder, progress=False).reused  # each model's embeddings are kept


def test_dense_search_equals_brute_force(tmp_path, encoder):
    index = CorpusIndex(write_jsonl(tmp_path / "corpus.jsonl", ROWS), encoder, progress=False)
    queries = encoder.encode(QUERIES, "query")
    indices, scores = index.search(queries, 3)
    everything = queries @ encoder.encode(index.passages, "passage").T
    expected = np.argsort(-everything, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(everything, expected, axis=1), rtol=1e-6)
    assert index.search(queries, 50)[0].shape == (3, 5)  # no deeper than the corpus


def test_an_unnormalised_encoder_meant_for_cosine_is_searched_by_cosine(tmp_path, tiny_bert):
    folder = tmp_path / "unnormalised"
    shutil.copytree(tiny_bert, folder)
    write_sentence_transformers_files(folder, "cls", False, 32, similarity="cosine")
    encoder = SentenceEncoder(folder)
    index = CorpusIndex(write_jsonl(tmp_path / "corpus.jsonl", ROWS), encoder, progress=False)
    queries, passages = encoder.encode(QUERIES, "query"), encoder.encode(index.passages, "passage")
    cosine = (queries @ passages.T) / np.outer(np.linalg.norm(queries, axis=1), np.linalg.norm(passages, axis=1))
    indices, scores = index.search(queries, 5)
    np.testing.assert_array_equal(indices, np.argsort(-cosine, axis=1, kind="stable"))
    np.testing.assert_allclose(scores, np.sort(cosine, axis=1)[:, ::-1], rtol=1e-5)


def test_text_searches_by_bm25_dense_or_both_fused(tmp_path, encoder):
    index = CorpusIndex(write_jsonl(tmp_path / "corpus.jsonl", ROWS), encoder, progress=False)
    bm25 = index.search_texts(QUERIES, 2, fusion="bm25")
    assert bm25[:, 0].tolist() == [0, 1, 4]  # the passages holding the queries' words
    np.testing.assert_array_equal(bm25, BM25Index(index.passages).search(QUERIES, 2))
    dense = index.search_texts(QUERIES, 2, fusion="dense")
    np.testing.assert_array_equal(dense, index.search(encoder.encode(QUERIES, "query"), 2)[0])
    both = [index.search(encoder.encode(QUERIES, "query"), FUSION_DEPTH)[0], index.bm25.search(QUERIES, FUSION_DEPTH)]
    np.testing.assert_array_equal(index.search_texts(QUERIES, 2, fusion="rrf"), reciprocal_rank_fusion(both, depth=2))
    with pytest.raises(FtlitError, match="Unknown search 'sparse'"):
        index.search_texts(QUERIES, 2, fusion="sparse")
