"""RerankingDataModule: groups for training, candidates for evaluation, and the rows it refuses."""

import json

import pytest

from conftest import nested_squad, squad_rows, write_jsonl
from ftlit.errors import FtlitError
from ftlit.tasks.reranking.data import RerankingDataModule
from ftlit.tasks.reranking.examples import reranking_rows


def datamodule(tiny_bert, train, validation=None, **kwargs) -> RerankingDataModule:
    return RerankingDataModule(
        tiny_bert,
        train_file=str(train),
        validation_file=str(validation or train),
        max_length=32,
        batch_size=4,
        **kwargs,
    )


def test_a_training_batch_holds_each_groups_pairs_and_their_sizes(tiny_bert, tmp_path):
    rows = [
        {"query": "tiger", "positive": "the big tiger", "negatives": ["a river", "an apple", "a castle"]},
        {"query": "guitar", "positive": "a guitar", "negatives": ["a violin"]},
    ]
    dm = datamodule(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), negatives_per_query=2)
    dm.setup("fit")
    batch = dm.collate([dm.train_features[i] for i in range(2)])
    assert batch["group_sizes"].tolist() == [3, 2]
    assert batch["input_ids"].shape[0] == 5 == batch["attention_mask"].shape[0]
    # the first pair of each group is (query, positive): [CLS] query [SEP] positive [SEP]
    decoded = dm.tokenizer.decode(batch["input_ids"][3], skip_special_tokens=True)
    assert decoded == "guitar a guitar"
    assert dm.tokenizer.decode(batch["input_ids"][2], skip_special_tokens=True) == "tiger an apple"  # not the third
    assert dm.feature_lengths(dm.train_features).tolist() == [7, 6]  # each group's longest pair


def test_evaluation_scores_the_candidates_of_every_query_one_pair_each(tiny_bert, tmp_path):
    rows = reranking_rows(6, seed=0, ranked=True)
    dm = datamodule(tiny_bert, write_jsonl(tmp_path / "rows.jsonl", rows))
    dm.setup("fit")
    eval_set = dm.contract.eval_sets["validation"]
    counts = [len(row["candidates"]) for row in dm.rows["validation"]]
    assert eval_set.candidate_counts.tolist() == counts and eval_set.num_features == sum(counts)
    assert eval_set.retriever_order and dm.contract.scores_retriever
    first = dm.rows["validation"][0]
    assert eval_set.relevant[0] == {first["candidates"].index(first["positive"])}


def test_a_squad_file_is_refused_for_training_with_the_way_to_mine_negatives(tiny_bert, tmp_path):
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(nested_squad(squad_rows(6, seed=0))))
    with pytest.raises(FtlitError, match="no query has negatives.*ftlit mine RETRIEVER"):
        datamodule(tiny_bert, squad).setup("fit")


def test_queries_without_negatives_are_skipped_and_blank_passages_refused(tiny_bert, tmp_path, caplog):
    rows = reranking_rows(4, seed=0)
    rows[1]["negatives"] = []
    dm = datamodule(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows))
    dm.setup("fit")
    assert len(dm.rows["train"]) == 3 and "skipped 1 of 4 queries without negatives (row 2)" in caplog.text
    rows[1]["negatives"] = ["fine", " "]
    with pytest.raises(FtlitError, match=r"empty or missing passages \('negatives' in row 2\)"):
        datamodule(tiny_bert, write_jsonl(tmp_path / "bad.jsonl", rows)).setup("fit")
    rows[1]["negatives"], rows[2]["candidates"] = ["fine"], ["a", ""]
    with pytest.raises(FtlitError, match="'candidates' must hold lists of passages, none of them empty, but row 3"):
        datamodule(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows[:2]), write_jsonl(tmp_path / "dev.jsonl",
                   rows)).setup("fit")  # fmt: skip
