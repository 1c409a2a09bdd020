"""ClassificationDataModule: labels, splits, subsampling and dynamically padded batches."""

import shutil

import pytest
from transformers import AutoTokenizer

from conftest import sentiment_rows, write_jsonl
from ftlit.errors import FtlitError
from ftlit.machine import default_pad_multiple
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.labels import check_learnt_labels, label_id, label_names_from_values


def test_integer_labels_sort_as_numbers_and_names_sort_alphabetically():
    assert label_names_from_values([10, 2, 2, 1]) == ["1", "2", "10"]
    assert label_names_from_values(["pos", "neg", "-", None]) == ["neg", "pos"]  # unlabeled markers ignored


def test_labels_encode_by_name_first_then_as_index():
    names = ["negative", "positive"]
    assert [label_id("positive", names), label_id(0, names), label_id("1", names)] == [1, 0, 1]
    numeric = ["1", "2", "10"]  # integer-named labels map by name, not position
    assert [label_id(1, numeric), label_id(10, numeric), label_id("2", numeric)] == [0, 2, 1]
    assert label_id("neutral", names) is None and label_id(2, names) is None and label_id(-1, names) is None


def _datamodule(tiny_bert, files, **kwargs) -> ClassificationDataModule:
    options = {"text_fields": ["text"], "max_length": 64, "batch_size": 16} | kwargs
    return ClassificationDataModule(tiny_bert, train_file=str(files["train"]), **options)


@pytest.mark.parametrize("multiple", [None, 8])
def test_batches_are_padded_to_their_longest_member_rounded_up_to_the_multiple(tiny_bert, sentiment_files, multiple):
    dm = _datamodule(
        tiny_bert, sentiment_files, validation_file=str(sentiment_files["dev"]), pad_to_multiple_of=multiple
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    lengths = batch["attention_mask"].sum(1)
    width = batch["input_ids"].shape[1]
    rounding = multiple or default_pad_multiple()
    assert width % rounding == 0 and width - rounding < lengths.max() <= width < 64
    assert dm.label_names == ["negative", "positive"]
    assert set(batch["labels"].tolist()) <= {0, 1}


def test_validation_is_carved_from_train_seeded_and_disjoint(tiny_bert, sentiment_files):
    splits = []
    for _ in range(2):
        dm = _datamodule(tiny_bert, sentiment_files, validation_split=0.25)
        dm.setup("fit")
        splits.append([dm.features(name)["input_ids"] for name in ("train", "validation")])
    (train, validation), (train_again, validation_again) = splits
    assert len(validation) == 120 and len(train) == 360
    assert validation == validation_again and train == train_again
    # disjoint up to duplicate generated sentences
    assert len({tuple(ids) for ids in train} & {tuple(ids) for ids in validation}) < 10


def test_subsampling_is_seeded(tiny_bert, sentiment_files):
    picks = []
    for seed in (1, 1, 2):
        dm = _datamodule(tiny_bert, sentiment_files, max_train_samples=50, max_eval_samples=20, seed=seed)
        dm.setup("fit")
        assert (len(dm.features("train")), len(dm.features("validation"))) == (50, 20)
        picks.append(dm.features("train")["input_ids"])
    assert picks[0] == picks[1] != picks[2]


@pytest.mark.parametrize(
    ("labels", "unlabeled"),
    [(["negative", "positive"], "-"), ([0, 1], -1)],  # SNLI's original files, and the Hub's SNLI
)
def test_rows_without_gold_label_are_dropped(tiny_bert, tmp_path, labels, unlabeled):
    rows = [{"text": row["text"], "label": labels[row["label"] == "positive"]} for row in sentiment_rows(20, seed=3)]
    rows += [{"text": "no gold", "label": unlabeled}, {"text": "nor here", "label": unlabeled}]
    files = {"train": write_jsonl(tmp_path / "train.jsonl", rows)}
    dm = _datamodule(tiny_bert, files, validation_split=0.5)
    dm.setup("fit")
    assert len(dm.features("train")) + len(dm.features("validation")) == 20
    assert len(dm.label_names) == 2


def test_sentence_pairs_are_tokenised_as_pairs(tiny_bert, tmp_path):
    rows = [{"premise": "a dog runs", "hypothesis": "an animal moves", "label": label} for label in ["entailment"] * 3]
    rows.append({"premise": "a dog runs", "hypothesis": "a cat sleeps", "label": "neutral"})
    files = {"train": write_jsonl(tmp_path / "pairs.jsonl", rows)}
    dm = ClassificationDataModule(tiny_bert, task="snli", train_file=str(files["train"]), validation_split=0.5)
    dm.setup("fit")
    first = dm.features("train")[0]
    assert first["token_type_ids"].count(1) == len(dm.tokenizer("an animal moves")["input_ids"]) - 1
    assert first["labels"] == 0


def test_missing_text_column_lists_the_columns_that_exist(tiny_bert, sentiment_files):
    dm = _datamodule(tiny_bert, sentiment_files, text_fields=["review"])
    expected = r"Column\(s\) \['review'\] not found in .*train.jsonl'. It has: \['text', 'label'\]"
    with pytest.raises(FtlitError, match=expected):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "sentiment"}, "Unknown task 'sentiment'"),
        ({"text_fields": ["a", "b", "c"]}, "one or two columns"),
        ({"validation_split": 1.5}, "between 0 and 1"),
    ],
)
def test_impossible_settings_are_refused_at_construction(tiny_bert, sentiment_files, kwargs, message):
    with pytest.raises(FtlitError, match=message):
        _datamodule(tiny_bert, sentiment_files, **kwargs)


def test_max_length_above_the_model_limit_is_refused(tiny_bert, sentiment_files):
    dm = _datamodule(tiny_bert, sentiment_files, max_length=1024)
    with pytest.raises(FtlitError, match="max_length 1024 is above the model's limit of 512"):
        dm.setup("fit")


def test_without_a_tokenizer_limit_the_position_embeddings_decide(tiny_bert, sentiment_files, tmp_path):
    unlimited = tmp_path / "model"
    shutil.copytree(tiny_bert, unlimited)
    tokenizer = AutoTokenizer.from_pretrained(unlimited, model_max_length=int(1e30))
    tokenizer.save_pretrained(unlimited)
    dm = _datamodule(str(unlimited), sentiment_files, max_length=600)
    with pytest.raises(FtlitError, match="max_length 600 is above the model's limit of 512"):
        dm.setup("fit")


def test_pad_to_max_length_is_there_for_parity_runs(tiny_bert, sentiment_files):
    dm = _datamodule(tiny_bert, sentiment_files, validation_file=str(sentiment_files["dev"]), pad_to_max_length=True)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["input_ids"].shape[1] == 64


def test_training_batches_are_length_grouped_and_evaluation_runs_longest_first(tiny_bert, sentiment_files):
    from ftlit.data.sampler import LengthGroupedSampler

    dm = _datamodule(tiny_bert, sentiment_files, validation_file=str(sentiment_files["dev"]))
    dm.setup("fit")
    assert isinstance(dm.train_dataloader().sampler, LengthGroupedSampler)
    widths = [batch["attention_mask"].sum(1).tolist() for batch in dm.val_dataloader()[0]]
    assert [max(w) for w in widths] == sorted((max(w) for w in widths), reverse=True)
    plain = _datamodule(tiny_bert, sentiment_files, validation_file=str(sentiment_files["dev"]), group_by_length=False)
    plain.setup("fit")
    assert not isinstance(plain.train_dataloader().sampler, LengthGroupedSampler)


def _rows_file(tmp_path, name, rows):
    return str(write_jsonl(tmp_path / name, rows))


def test_a_label_outside_the_tasks_labels_is_named_with_its_file_and_row(tiny_bert, tmp_path):
    rows = [{"sentence": "fine", "label": 1}, {"sentence": "bad", "label": 0}, {"sentence": "odd", "label": 2}]
    dm = ClassificationDataModule(tiny_bert, task="sst2", train_file=_rows_file(tmp_path, "t.jsonl", rows))
    with pytest.raises(
        FtlitError,
        match=r"t\.jsonl'.* 1 label\(s\) in column 'label' are not valid \(row 3: 2\)\. "
        r"Expected one of the sst2 labels \['negative', 'positive'\] or their ids 0-1",
    ):
        dm.setup("fit")


def test_a_validation_label_never_seen_in_training_is_refused(tiny_bert, tmp_path):
    train = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}]
    dev = [{"text": "c", "label": "pos"}, {"text": "d", "label": "neutral"}, {"text": "e", "label": "neutral"}]
    dm = ClassificationDataModule(tiny_bert, text_fields=["text"], train_file=_rows_file(tmp_path, "t.jsonl", train),
                                  validation_file=_rows_file(tmp_path, "dev.jsonl", dev))  # fmt: skip
    with pytest.raises(
        FtlitError,
        match=r"dev\.jsonl'.*\(rows 2, 3: 'neutral'\)\. Expected a label of the training "
        r"data: \['neg', 'pos'\]",
    ):
        dm.setup("fit")


def test_a_regression_label_must_be_a_number(tiny_bert, tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "label": "3.5"}, {"sentence1": "a", "sentence2": "b", "label": "n/a"}]
    dm = ClassificationDataModule(tiny_bert, task="stsb", train_file=_rows_file(tmp_path, "s.jsonl", rows),
                                  validation_file=_rows_file(tmp_path, "s2.jsonl", rows[:1]))  # fmt: skip
    with pytest.raises(FtlitError, match=r"s\.jsonl'.*\(row 2: 'n/a'\)\. Expected a number"):
        dm.setup("fit")


def _with_blank_texts(tmp_path):
    rows = sentiment_rows(20, seed=5)
    rows[3]["text"], rows[7]["text"] = "", None
    rows[11]["text"] = "   "
    return _rows_file(tmp_path, "blank.jsonl", rows)


def test_empty_texts_are_skipped_with_a_count(tiny_bert, tmp_path, caplog):
    dm = ClassificationDataModule(tiny_bert, text_fields=["text"], train_file=_with_blank_texts(tmp_path),
                                  validation_split=0.25)  # fmt: skip
    dm.setup("fit")
    assert len(dm.features("train")) + len(dm.features("validation")) == 17
    assert "skipped 3 of 20 rows with an empty or missing text ('text' in rows 4, 8, 12)" in caplog.text


def test_empty_texts_are_an_error_when_asked(tiny_bert, tmp_path):
    dm = ClassificationDataModule(tiny_bert, text_fields=["text"], train_file=_with_blank_texts(tmp_path),
                                  empty_text="error")  # fmt: skip
    with pytest.raises(
        FtlitError,
        match=r"blank\.jsonl': empty or missing text in 'text' in rows 4, 8, 12\. Fix the "
        "rows, or skip them with --data.empty_text skip",
    ):
        dm.setup("fit")


def test_a_split_left_empty_by_skipping_is_an_error(tiny_bert, tmp_path):
    path = _rows_file(tmp_path, "empty.jsonl", [{"text": "", "label": "a"}, {"text": " ", "label": "b"}])
    dm = ClassificationDataModule(tiny_bert, text_fields=["text"], train_file=path)
    with pytest.raises(FtlitError, match="every row has an empty or missing text"):
        dm.setup("fit")


def test_learnt_labels_refuse_numbers_mixed_with_names_and_warn_about_odd_ones(caplog):
    with pytest.raises(FtlitError, match=r"'t.csv': column 'label' mixes numbers and names as labels \(2 numbers, 4 "
                                         r"names; the numbers are in rows 2, 5: 1, '0'\)"):  # fmt: skip
        check_learnt_labels(["pos", 1, "neg", "pos", "0", "neg"], "'t.csv'", "label")
    check_learnt_labels(["pos", "neg"] * 60 + ["postive"], "'t.csv'", "label")  # a typo becomes a class
    assert "1 label(s) occur only once in column 'label' (row 121: 'postive')" in caplog.text
    check_learnt_labels([f"id-{i}" for i in range(30)], "'t.csv'", "label")  # a column of ids, not labels
    assert "30 distinct labels for 30 rows in column 'label': is it the label column?" in caplog.text
    check_learnt_labels([3, 1, 2, 10, None, -1], "'t.csv'", "label")  # integer labels, unlabelled rows: fine
