"""SquadDataModule: the layouts it reads, article-level splits, checks, and the windows it hands to decoding."""

import gzip
import json
import shutil

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from conftest import ANIMALS, nested_squad, squad_rows, write_jsonl
from ftlit.data.squad_files import flatten_articles, is_nested_squad, load_squad_file
from ftlit.errors import FtlitError
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.squad_format import (
    answer_problem,
    blank_answers,
    is_aligned,
    malformed_answers,
    mixed_offsets,
    nearest_occurrence,
    raw_answers,
    repair_answer_starts,
)

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


def test_answers_must_sit_at_their_offsets():
    assert is_aligned("the cat sat", {"text": ["cat"], "answer_start": [4]})
    assert not is_aligned("the cat sat", {"text": ["cat"], "answer_start": [3]})
    assert not is_aligned("the cat sat", {"text": ["cat"], "answer_start": [-7]})  # a negative index is no offset
    assert is_aligned("the cat sat", {"text": [], "answer_start": []})  # unanswerable


def test_repair_moves_an_offset_to_the_nearest_occurrence_of_its_text():
    context = "a cat, a dog, a cat"
    assert nearest_occurrence(context, "cat", 14) == 16 and nearest_occurrence(context, "cat", 3) == 2
    assert nearest_occurrence(context, "cow", 3) is None
    batch = {"context": [context] * 2, "answers": [{"text": ["cat"], "answer_start": [15]},
                                                   {"text": ["cow"], "answer_start": [4]}]}  # fmt: skip
    repaired = repair_answer_starts(batch)["answers"]
    assert repaired == [{"text": ["cat"], "answer_start": [16]}, {"text": ["cow"], "answer_start": [4]}]


def _datamodule(tiny_bert, **kwargs) -> SquadDataModule:
    return SquadDataModule(tiny_bert, dataset=None, max_length=64, doc_stride=16, max_query_length=16, **kwargs)


def _files(tmp_path, rows, dev_rows=None) -> dict[str, str]:
    train = str(write_jsonl(tmp_path / "train.jsonl", rows))
    dev = str(write_jsonl(tmp_path / "dev.jsonl", dev_rows)) if dev_rows else train
    return {"train_file": train, "validation_file": dev}


def test_misaligned_answers_above_the_tolerance_stop_the_run_naming_them(tiny_bert, tmp_path):
    rows = squad_rows(5, seed=2)
    rows[3]["answers"]["answer_start"] = [0]
    dm = _datamodule(tiny_bert, **_files(tmp_path, rows))
    with pytest.raises(
        FtlitError,
        match=r"train\.jsonl': 1 of 5 questions \(20\.00%\) have an answer that is not at "
        r"its answer_start in the context \(first ids: \['q2-3'\]\).*--data\.repair_answer_start true",
    ):
        dm.setup("fit")


def test_misaligned_answers_within_the_tolerance_are_dropped(tiny_bert, tmp_path, caplog):
    rows = squad_rows(10, seed=2)
    rows[3]["answers"]["answer_start"] = [0]
    dm = _datamodule(tiny_bert, max_misaligned_answers=0.1, **_files(tmp_path, rows, squad_rows(4, seed=3)))
    dm.setup("fit")
    assert "dropped 1 question(s) whose answer is not at its answer_start (ids ['q2-3'])" in caplog.text
    assert max(dm.train_features["start_positions"]) > 0  # the other nine still train


def test_repair_finds_shifted_answers(tiny_bert, tmp_path):
    rows = squad_rows(5, seed=2)
    for row in rows:
        row["answers"]["answer_start"] = [row["answers"]["answer_start"][0] + 3]  # all off by three characters
    dm = _datamodule(tiny_bert, repair_answer_start=True, **_files(tmp_path, rows, squad_rows(4, seed=3)))
    dm.setup("fit")
    (tmp_path / "aligned").mkdir()
    reference = _datamodule(tiny_bert, **_files(tmp_path / "aligned", squad_rows(5, seed=2), squad_rows(4, seed=3)))
    reference.setup("fit")
    assert dm.train_features["start_positions"] == reference.train_features["start_positions"]


def test_duplicate_ids_are_refused(tiny_bert, tmp_path):
    rows = squad_rows(5, seed=2)
    rows[4]["id"] = rows[1]["id"]
    with pytest.raises(FtlitError, match=r"train\.jsonl': 1 question id\(s\) occur more than once \(first: \['q2-1'\]"):
        _datamodule(tiny_bert, **_files(tmp_path, rows)).setup("fit")


def test_empty_questions_and_contexts_are_named(tiny_bert, tmp_path):
    rows = squad_rows(5, seed=2)
    rows[1]["question"], rows[2]["context"] = " ", ""
    rows[2]["answers"] = {"text": [], "answer_start": []}
    dm = _datamodule(tiny_bert, empty_text="error", **_files(tmp_path, rows))
    with pytest.raises(FtlitError, match=r"empty or missing text in 'question' in row 2; 'context' in row 3"):
        dm.setup("fit")


def test_answers_that_truncation_loses_are_warned_about(tiny_bert, tmp_path, caplog):
    rows = squad_rows(6, seed=2)
    rows[0]["context"] = rows[0]["context"] + " " + " ".join(["marmot"] * 60)
    rows[0]["answers"] = {"text": [" ".join(["marmot"] * 60)], "answer_start": [len(rows[0]["context"]) - 419]}
    dm = _datamodule(tiny_bert, **_files(tmp_path, rows))
    dm.setup("fit")
    assert "1 of 6 answerable training questions (16.7 %) have an answer that no window holds whole" in caplog.text
    assert "['q2-0']" in caplog.text


def test_most_windows_on_cls_is_warned_about(tiny_bert, tmp_path, caplog):
    rows = [dict(row, context=row["context"] + " " + " ".join(["the film"] * 150)) for row in squad_rows(6, seed=2)]
    dm = _datamodule(tiny_bert, **_files(tmp_path, rows))
    dm.setup("fit")
    assert "of the training windows of answerable questions point at CLS" in caplog.text


def test_too_few_articles_to_hold_out_is_refused(tiny_bert, tmp_path):
    train = str(write_jsonl(tmp_path / "train.jsonl", squad_rows(5, seed=2)))  # one article
    with pytest.raises(FtlitError, match="1 article\\(s\\) \\(titles\\): too few to hold out"):
        _datamodule(tiny_bert, train_file=train).setup("fit")


def test_held_out_validation_takes_whole_articles_seeded(tiny_bert, squad_files):
    def split():
        dm = _datamodule(tiny_bert, train_file=str(squad_files["train"]), validation_split=0.2)
        rows = dm.raw_splits(["train", "validation"])
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
    assert dm.contract.eval_sets["validation"].ids == [r["qid"] for r in rows]
    with pytest.raises(FtlitError, match=r"Column\(s\) \['id', 'question', 'context'\] not found.*--data.columns"):
        _datamodule(tiny_bert, validation_file=str(path)).setup("validate")
    with pytest.raises(FtlitError, match="maps unknown field"):
        _datamodule(tiny_bert, columns={"query": "question"})


def test_eval_set_links_every_window_to_its_question(tiny_bert, squad_files):
    dm = _datamodule(tiny_bert, validation_file=str(squad_files["dev"]))
    dm.setup("validate")
    eval_set, features = dm.contract.eval_sets["validation"], dm.eval_features["validation"]
    windows = eval_set.windows
    assert len(eval_set.ids) == 100 and len(windows.example_index) == len(features) == eval_set.num_features > 100
    assert list(windows.example_index) == sorted(windows.example_index)
    assert set(windows.example_index) == set(range(100))
    assert features["feature_index"] == list(range(len(features)))
    (loader,) = dm.val_dataloader()
    batch = next(iter(loader))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "feature_index"}
    assert not dm.version_2  # no unanswerable question in this data


def test_pad_to_max_length_pads_every_training_and_evaluation_batch(tiny_bert, squad_files):
    dm = _datamodule(tiny_bert, train_file=str(squad_files["train"]), validation_file=str(squad_files["dev"]),
                     pad_to_max_length=True, group_by_length=False)  # fmt: skip
    dm.setup("fit")
    (val_loader,) = dm.val_dataloader()
    widths = {batch["input_ids"].shape[1] for loader in (dm.train_dataloader(), val_loader) for batch in loader}
    assert widths == {64}


def test_unanswerable_questions_switch_on_v2_rules(tiny_bert, tmp_path):
    path = write_jsonl(tmp_path / "v2.jsonl", squad_rows(30, seed=4, unanswerable=0.5))
    dm = _datamodule(tiny_bert, validation_file=str(path))
    dm.setup("validate")
    assert dm.version_2
    assert not _datamodule(tiny_bert, validation_file=str(path), version_2_with_negative=False).version_2


def test_impossible_stride_is_refused_before_any_work(tiny_bert, squad_files):
    dm = SquadDataModule(tiny_bert, dataset=None, train_file=str(squad_files["train"]), max_length=384,
                         doc_stride=384)  # fmt: skip
    with pytest.raises(FtlitError, match="doc_stride 384 must be between 0 and"):
        dm.setup("fit")


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_cached_windows_follow_the_window_settings_and_the_tokenizer(tiny_bert, tmp_path):
    long_rows = [dict(row, context=row["context"] + " the end" * 40) for row in squad_rows(20, seed=2)]
    files = _files(tmp_path, long_rows)

    def windows(model: str = tiny_bert, **settings) -> list[list[int]]:
        dm = SquadDataModule(model, dataset=None, max_query_length=16, **({"max_length": 64, "doc_stride": 16}
                             | settings), **files)  # fmt: skip
        dm.setup("fit")
        return dm.train_features["input_ids"]

    base = windows()
    assert windows() == base
    assert len(windows(doc_stride=32)) > len(base)
    assert max(map(len, windows(max_length=48))) == 48 < max(map(len, base))
    retrained = tmp_path / "tokenizer_with_animal_words"
    shutil.copytree(tiny_bert, retrained)
    tokenizer = AutoTokenizer.from_pretrained(retrained)
    tokenizer.add_tokens(ANIMALS)
    tokenizer.save_pretrained(retrained)
    assert windows(str(retrained)) != base


def test_answers_of_another_shape_are_named_by_their_rows():
    # a list of {text, answer_start} records instead of SQuAD's two lists: not the Arrow struct of well-formed answers
    rows = Dataset.from_list([{"answers": [{"text": "a", "answer_start": 0}]}, {"answers": []}])
    assert malformed_answers(rows) == [0, 1]
    well_formed = Dataset.from_list([{"answers": {"text": ["a"], "answer_start": [0]}}, {"answers": None}])
    assert malformed_answers(well_formed) == [1]


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"text": ["a"], "answer_start": [0]}, None),
        ({"text": [], "answer_start": []}, None),
        ([{"text": "a"}], "answers is list [{'text': 'a'}], not an object"),
        ({"text": "a", "answer_start": [0]}, "answers.text is str 'a', not a list"),
        ({"text": ["a", "b"], "answer_start": [0]}, "2 answer text(s) but 1 answer_start(s)"),
        ({"text": [7], "answer_start": [0]}, "answers.text holds int 7, not a string"),
        ({"text": ["a"], "answer_start": ["12"]}, "answers.answer_start holds str '12', not an integer offset"),
        ({"text": ["a"], "answer_start": [1.0]}, "answers.answer_start holds float 1.0, not an integer offset"),
        ({"text": ["a"], "answer_start": [True]}, "answers.answer_start holds bool True, not an integer offset"),
    ],
)
def test_what_is_wrong_with_answers_is_said(answers, problem):
    found = answer_problem(answers)
    assert found == problem or found.startswith(problem)


def test_offsets_of_mixed_types_are_found_in_the_raw_file(tmp_path):
    rows = [{"id": f"q{i}", "answers": {"text": ["a"], "answer_start": ["3" if i == 2 else 3]}} for i in range(4)]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    loaded = load_squad_file(str(path))  # the reader keeps them as JSON text and reads "3" back as 3
    assert mixed_offsets(loaded) and malformed_answers(loaded) == []
    assert [i for i, (_, answers) in enumerate(raw_answers(str(path))) if answer_problem(answers)] == [2]
    assert not mixed_offsets(load_squad_file(str(write_jsonl(tmp_path / "plain.jsonl", rows[:2]))))


def test_blank_answer_texts_are_found():
    rows = Dataset.from_list([{"answers": {"text": t, "answer_start": [0] * len(t)}} for t in (["a"], ["a", " "], [])])
    assert blank_answers(rows) == [1]
