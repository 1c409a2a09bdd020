"""SquadDataModule: the layouts it reads, article-level splits, checks, and the windows it hands to decoding."""

import gzip
import json

import pytest
from datasets import Dataset

from conftest import nested_squad, squad_rows, write_jsonl
from ftlit.data.squad import SquadDataModule, flatten_articles, is_nested_squad, load_squad_file, misaligned_answers
from ftlit.errors import FtlitError

FLAT_COLUMNS = ["id", "title", "question", "context", "answers"]


def test_official_nested_json_and_flat_jsonl_give_the_same_rows(tmp_path):
    rows = squad_rows(12, seed=5, unanswerable=0.3)
    with gzip.open(tmp_path / "nested.json.gz", "wt") as f:
        json.dump(nested_squad(rows), f)
    write_jsonl(tmp_path / "flat.jsonl", rows)
    assert is_nested_squad(str(tmp_path / "nested.json.gz")) and not is_nested_squad(str(tmp_path / "flat.jsonl"))
    nested = load_squad_file(str(tmp_path / "nested.json.gz")).select_columns(FLAT_COLUMNS).to_list()
    flat = load_squad_file(str(tmp_path / "flat.jsonl")).select_columns(FLAT_COLUMNS).to_list()
    assert nested == flat
    assert [row["id"] for row in nested] == [row["id"] for row in rows]


def test_flattening_keeps_every_answer_of_a_question():
    two_answers = [{"text": "ab", "answer_start": 0}, {"text": "cd", "answer_start": 3}]
    articles = {"title": ["t"], "paragraphs": [[{"context": "ab cd", "qas": [
        {"id": "1", "question": "q?", "answers": two_answers},
        {"id": "2", "question": "r?", "answers": [], "is_impossible": True},
    ]}]]}  # fmt: skip
    flat = flatten_articles(articles)
    assert flat["answers"] == [{"text": ["ab", "cd"], "answer_start": [0, 3]}, {"text": [], "answer_start": []}]
    assert flat["id"] == ["1", "2"] and flat["context"] == ["ab cd", "ab cd"]


def test_misaligned_answer_offsets_are_found():
    rows = Dataset.from_list(
        [
            {"id": "ok", "context": "the cat sat", "answers": {"text": ["cat"], "answer_start": [4]}},
            {"id": "off", "context": "the cat sat", "answers": {"text": ["cat"], "answer_start": [3]}},
        ]
    )
    assert misaligned_answers(rows) == ["off"]


def _datamodule(tiny_bert, **kwargs) -> SquadDataModule:
    return SquadDataModule(tiny_bert, dataset=None, max_length=64, doc_stride=16, max_query_length=16, **kwargs)


def test_misaligned_answers_stop_the_run_naming_them(tiny_bert, tmp_path):
    rows = squad_rows(5, seed=2)
    rows[3]["answers"]["answer_start"] = [0]
    train = str(write_jsonl(tmp_path / "train.jsonl", rows))
    dm = _datamodule(tiny_bert, train_file=train, validation_file=train)
    with pytest.raises(FtlitError, match=r"1 answer\(s\) in the train data do not occur.*'q2-3'"):
        dm.setup("fit")


def test_too_few_articles_to_hold_out_is_refused(tiny_bert, tmp_path):
    train = str(write_jsonl(tmp_path / "train.jsonl", squad_rows(5, seed=2)))  # one article
    with pytest.raises(FtlitError, match="1 article\\(s\\) \\(titles\\): too few to hold out"):
        _datamodule(tiny_bert, train_file=train).setup("fit")


def test_held_out_validation_takes_whole_articles_seeded(tiny_bert, squad_files):
    def split():
        dm = _datamodule(tiny_bert, train_file=str(squad_files["train"]), validation_split=0.2)
        rows = dm._raw_splits(["train", "validation"])
        return {name: set(rows[name]["title"]) for name in rows}, {name: len(rows[name]) for name in rows}

    (titles, sizes), (titles_again, _) = split(), split()
    assert titles == titles_again and not titles["train"] & titles["validation"]
    assert len(titles["validation"]) == 24  # 20 % of 120 articles
    assert sizes == {"train": 480, "validation": 120}


def test_columns_can_be_mapped_from_other_names(tiny_bert, tmp_path):
    rows = [{"qid": r["id"], "query": r["question"], "passage": r["context"], "answers": r["answers"]}
            for r in squad_rows(6, seed=3)]  # fmt: skip
    path = write_jsonl(tmp_path / "renamed.jsonl", rows)
    dm = _datamodule(tiny_bert, validation_file=str(path), columns={"id": "qid", "question": "query",
                                                                    "context": "passage"})  # fmt: skip
    dm.setup("validate")
    assert dm.eval_sets["validation"].ids == [r["qid"] for r in rows]
    with pytest.raises(FtlitError, match=r"Column\(s\) \['id', 'question', 'context'\] not found.*--data.columns"):
        _datamodule(tiny_bert, validation_file=str(path)).setup("validate")
    with pytest.raises(FtlitError, match="maps unknown field"):
        _datamodule(tiny_bert, columns={"query": "question"})


def test_eval_set_links_every_window_to_its_question(tiny_bert, squad_files):
    dm = _datamodule(tiny_bert, validation_file=str(squad_files["dev"]))
    dm.setup("validate")
    eval_set = dm.eval_sets["validation"]
    windows = eval_set.windows
    assert len(eval_set.ids) == 100 and len(windows.example_index) == len(eval_set.features) > 100
    assert list(windows.example_index) == sorted(windows.example_index)
    assert set(windows.example_index) == set(range(100))
    assert eval_set.features["feature_index"] == list(range(len(eval_set.features)))
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "feature_index"}
    assert not dm.version_2  # no unanswerable question in this data


def test_unanswerable_questions_switch_on_v2_rules(tiny_bert, tmp_path):
    path = write_jsonl(tmp_path / "v2.jsonl", squad_rows(30, seed=4, unanswerable=0.5))
    dm = _datamodule(tiny_bert, validation_file=str(path))
    dm.setup("validate")
    assert dm.version_2
    assert not _datamodule(tiny_bert, validation_file=str(path), version_2_with_negative=False).version_2


def test_impossible_stride_is_refused_before_any_work(tiny_bert, squad_files):
    dm = SquadDataModule(tiny_bert, dataset=None, train_file=str(squad_files["train"]), max_length=384,
                         doc_stride=384)  # fmt: skip
    with pytest.raises(FtlitError, match="doc_stride 384 must be below the context room"):
        dm.setup("fit")
