"""Multi-label classification, class weights and regression on one's own data, end to end through the ftlit
command: generated data whose labels are learnable from words, a tiny model, real Lightning and tokenizers."""

import csv
import gzip
import json

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value
from transformers import pipeline

from conftest import NEGATIVE, POSITIVE, SHARED_DATA, TOPICS, sentiment_rows, topic_rows, write_jsonl
from ftlit.cli import main
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.presets import GOEMOTIONS


def run(*args: str) -> None:
    main([*args, "--trainer.enable_progress_bar", "false"])


def common(model: str, out, *extra: str) -> list[str]:
    return ["--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
            "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.max_length", "32",
            "--trainer.default_root_dir", str(out), "--output_dir", str(out), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def topic_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topics")
    return {"train": write_jsonl(folder / "train.jsonl", topic_rows(600, 0)),
            "dev": write_jsonl(folder / "dev.jsonl", topic_rows(150, 1))}  # fmt: skip


def fit_topics(model: str, topic_files: dict, out, *extra: str) -> dict:
    """The results of a multi-label fit on the topic data, with per-label thresholds."""
    run("fit", *common(model, out, "--data.label_field", "labels", "--data.train_file", str(topic_files["train"]),
                       "--data.validation_file", str(topic_files["dev"]), "--data.batch_size", "16",
                       "--model.learning_rate", "2e-3", "--model.threshold", "per_label", *extra))  # fmt: skip
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def multi_label_run(tiny_bert, topic_files, tmp_path_factory):
    """A run of one epoch of 5 steps, validated at its end."""
    out = tmp_path_factory.mktemp("multi-label")
    fit_topics(tiny_bert, topic_files, out, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5")
    return out


@pytest.mark.slow
def test_a_multi_label_model_learns_the_labels(tiny_bert, topic_files, tmp_path):
    # (at lr 5e-3 some dropout draws stay at the label base rates; 2e-3 learns on every seed tried)
    metrics = fit_topics(tiny_bert, topic_files, tmp_path, "--trainer.max_epochs", "12")["metrics"]
    # chance: mean average precision ≈ each label's share (about 0.4); calling every label scores macro-F1 ≈ 0.55
    dev = topic_rows(150, 1)
    shares = [sum(topic in row["labels"] for row in dev) / len(dev) for topic in TOPICS]
    every_label = sum(2 * share / (1 + share) for share in shares) / len(shares)  # F1 = 2p / (1 + p) per label
    assert metrics["mean_average_precision"] > max(shares) + 0.3 and metrics["macro_f1"] > every_label + 0.2


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_lists_of_labels_train_a_multi_label_model_with_its_metrics_and_table(multi_label_run):
    results = json.loads((multi_label_run / "results.json").read_text())
    metrics = results["metrics"]
    assert set(metrics) == {"loss", "macro_f1", "micro_f1", "subset_accuracy", "hamming_loss",
                            "mean_average_precision"}  # fmt: skip
    assert results["eval"]["main_metric"] == "macro_f1"
    table = results["eval"]["per_label"]
    assert list(table) == sorted(TOPICS) and all(set(row) == {"precision", "recall", "f1", "support"}
                                                 for row in table.values())  # fmt: skip
    assert sum(row["support"] for row in table.values()) == sum(len(r["labels"]) for r in topic_rows(150, 1))
    tuned = results["model"]["thresholds"]
    assert tuned["mode"] == "per_label" and list(tuned["thresholds"]) == sorted(TOPICS)
    assert tuned["after"]["macro_f1"] >= tuned["before"]["macro_f1"] == pytest.approx(metrics["macro_f1"], abs=1e-6)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_export_is_a_multi_label_model_whose_pipeline_scores_equal_ftlit_predict(multi_label_run, topic_files):
    export = multi_label_run / "export"
    config = json.loads((export / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    thresholds = dict(zip(sorted(TOPICS), config["thresholds"]))
    out = multi_label_run / "predicted"
    run("predict", *common(str(export), out, "--data.predict_file", str(topic_files["dev"]),
                           "--trainer.precision", "32-true"))  # as the pipeline computes  # fmt: skip
    predicted = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in predicted]
    scores = pipeline("text-classification", model=str(export), top_k=None)(texts)
    for record, by_pipeline in zip(predicted, scores):
        assert {s["label"]: s["score"] for s in by_pipeline} == pytest.approx(record["probabilities"], abs=1e-5)
        # the labels ftlit predicts: those above their own (tuned) thresholds
        assert record["labels"] == [n for n, p in record["probabilities"].items() if p > thresholds[n]]
    # ftlit's own pipeline applies the export's thresholds as ftlit predict does
    by_ftlit_pipeline = pipeline("multi-label-classification", model=str(export))(texts)
    assert [result["labels"] for result in by_ftlit_pipeline] == [record["labels"] for record in predicted]
    assert by_ftlit_pipeline[0]["probabilities"] == pytest.approx(predicted[0]["probabilities"], abs=1e-5)


def test_the_export_is_evaluated_as_multi_label_whatever_the_labels_look_like(multi_label_run, topic_files, tmp_path):
    dev = [{"text": row["text"], "labels": "|".join(row["labels"])} for row in topic_rows(150, 1)]  # "food|music"
    run("validate", *common(str(multi_label_run / "export"), tmp_path, "--data.label_field", "labels",
                            "--data.label_delimiter", "|", "--data.validation_file",
                            str(write_jsonl(tmp_path / "dev.jsonl", dev))))  # fmt: skip
    fitted = json.loads((multi_label_run / "results.json").read_text())
    validated = json.loads((tmp_path / "results.json").read_text())
    assert validated["eval"]["main_metric"] == "macro_f1"  # a lone "sport" does not make it single-label
    # at the export's tuned thresholds, as the fit's "after"
    assert validated["metrics"]["macro_f1"] == pytest.approx(
        fitted["model"]["thresholds"]["after"]["macro_f1"], abs=0.01
    )


def test_per_label_scores_are_drawn_for_tensorboard(multi_label_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = multi_label_run.glob("lightning_logs/version_*/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 1})
    accumulator.Reload()
    assert "val/per_label" in accumulator.Tags()["images"]


# ------------------------------------------------------------------------------------------------- label layouts
def built(model: str, train, **options) -> ClassificationDataModule:
    dm = ClassificationDataModule(model, text_fields=["text"], max_length=32, train_file=str(train),
                                  validation_split=0.25, **options)  # fmt: skip
    dm.setup("fit")
    return dm


def test_ids_in_a_delimited_string_are_named_by_a_names_file(tiny_bert, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("anger\njoy\nlove\n")
    rows = [{"text": f"text {i}", "labels": ["0", "1,2", "2", "0, 2"][i % 4]} for i in range(40)]
    dm = built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), problem_type="multi_label",
               label_field="labels", label_names_file=str(names))  # fmt: skip
    assert dm.label_names == ["anger", "joy", "love"] and dm.problem_type == "multi_label"
    expected = {"0": [1, 0, 0], "1,2": [0, 1, 1], "2": [0, 0, 1], "0, 2": [1, 0, 1]}
    for row, labels in zip(dm.rows["train"], dm.train_features["labels"]):
        assert labels == expected[row["labels"]]


def test_one_zero_one_column_per_label_is_multi_label_data(tiny_bert, tmp_path):
    rows = [{"text": f"text {i}", "anger": i % 2, "joy": int(i % 2 == 0 or i % 3 == 0)} for i in range(40)]
    dm = built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), label_fields=["anger", "joy"])
    assert dm.label_names == ["anger", "joy"] and dm.problem_type == "multi_label"
    for row, labels in zip(dm.rows["train"], dm.train_features["labels"]):
        assert labels == [row["anger"], row["joy"]]


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        ([{"labels": "0,3"}], {"names": True}, r"row 1: '0,3'\).*among the names file"),
        ([{"labels": []}], {}, r"1 text\(s\) have no label \(row 1; .*--data.allow_empty_labels true"),
        ([{"anger": 2, "joy": 0}], {"label_fields": ["anger", "joy"]}, r"column 'anger'.*row 1: 2\).*0 or 1"),
    ],
)
def test_label_sets_that_cannot_be_right_are_refused_naming_file_row_and_fix(
    tiny_bert, tmp_path, rows, options, message
):
    good = [{"text": "text", "labels": ["0"], "anger": 1, "joy": 0}] * 20
    train = write_jsonl(tmp_path / "train.jsonl", [{**good[0], **rows[0], "text": "odd"}] + good)
    kwargs = {"label_fields": options["label_fields"]} if "label_fields" in options else {"label_field": "labels"}
    if options.get("names"):
        (tmp_path / "names.txt").write_text("anger\njoy\nlove\n")
        kwargs["label_names_file"] = str(tmp_path / "names.txt")
    with pytest.raises(Exception, match=message) as raised:
        built(tiny_bert, train, problem_type="multi_label", **kwargs)
    assert str(train) in str(raised.value)


def test_ids_as_integers_and_hub_class_label_sequences_become_float_targets(tiny_bert, tmp_path):
    rows = Dataset.from_dict(
        {"text": [f"text {i}" for i in range(40)], "labels": [[0, 2], [1], [2], [0]] * 10},
        features=Features({"text": Value("string"), "labels": List(ClassLabel(names=["anger", "joy", "love"]))}),
    )
    rows.to_parquet(tmp_path / "train.parquet")  # keeps the ClassLabel names, as a Hub dataset has them
    dm = built(tiny_bert, tmp_path / "train.parquet", label_field="labels")
    assert dm.label_names == ["anger", "joy", "love"] and dm.problem_type == "multi_label"
    assert dm.train_features.features["labels"] == List(Value("float32"))  # BCE's targets, not ClassLabel ints
    plain = write_jsonl(tmp_path / "ids.jsonl", [{"text": "text", "labels": [0, 2]}, {"text": "t", "labels": [1]}] * 20)
    assert built(tiny_bert, plain, label_field="labels").train_features.features["labels"] == List(Value("float32"))


def test_a_regression_keeps_its_negative_targets(tiny_bert, tmp_path):
    rows = [{"text": f"text {i}", "score": [-1, 0.5, 1][i % 3]} for i in range(30)]
    dm = built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), problem_type="regression", label_field="score")
    assert len(dm.rows["train"]) + len(dm.rows["validation"]) == 30 and -1.0 in dm.train_features["labels"]


def test_texts_without_labels_are_kept_when_allowed(tiny_bert, tmp_path):
    rows = [{"text": f"text {i}", "labels": [] if i % 4 == 0 else ["a"]} for i in range(40)]
    dm = built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), label_field="labels",
               allow_empty_labels=True)  # fmt: skip
    assert len(dm.rows["train"]) + len(dm.rows["validation"]) == 40 and [0.0] in dm.train_features["labels"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.calibrate", "temperature"], "calibrates the softmax of single-label classification"),
        (["--data.problem_type", "regression", "--model.class_weights", "balanced"], "a regression"),
        (["--data.problem_type", "single_label"], "holds lists of labels (rows 1, 2, 3, 4, 5 and 595 more)"),
        (["--model.threshold", "tune", "--trainer.limit_val_batches", "0"], "validation cannot be off"),
        (["--model.class_weights", "{sport: 2, chess: 1}"], "unknown label(s) ['chess']"),
        (["--model.main_metric", "pearson"], "--model.main_metric pearson: not a metric of this task on this "
                                             "data, which reports macro_f1, micro_f1, subset_accuracy, hamming_loss, "
                                             "mean_average_precision, loss"),
    ],
)  # fmt: skip
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_settings_that_do_not_fit_the_problem_are_refused_before_training(
    tiny_bert, topic_files, tmp_path, capsys, extra, message
):
    with pytest.raises(SystemExit):
        run("fit", *common(tiny_bert, tmp_path, "--data.label_field", "labels", "--data.train_file",
                           str(topic_files["train"]), *extra))  # fmt: skip
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("**/*.ckpt"))


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_threshold_on_a_single_label_task_is_refused(tiny_bert, sentiment_files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run("fit", *common(tiny_bert, tmp_path, "--data.train_file", str(sentiment_files["train"]),
                           "--model.threshold", "tune"))  # fmt: skip
    assert "--model.threshold applies to multi-label classification" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- imbalance
def minority_recall(model: str, train, dev, out, *extra: str) -> float:
    run("fit", *common(model, out, "--data.train_file", str(train), "--data.validation_file", str(dev),
                       "--data.batch_size", "16", "--model.learning_rate", "1e-3", "--trainer.max_epochs", "2",
                       "--trainer.enable_checkpointing", "false", *extra))  # fmt: skip
    return json.loads((out / "results.json").read_text())["eval"]["per_label"]["negative"]["recall"]


@pytest.mark.slow  # two runs of 2 epochs that must learn
def test_balanced_class_weights_raise_the_recall_of_a_rare_class(tiny_bert, tmp_path):
    rows = sentiment_rows(1200, seed=5)
    rare = [r for r in rows if r["label"] == "negative"][:30]
    train = write_jsonl(tmp_path / "train.jsonl", [r for r in rows if r["label"] == "positive"][:570] + rare)
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(200, seed=6))
    plain = minority_recall(tiny_bert, train, dev, tmp_path / "plain")
    weighted = minority_recall(tiny_bert, train, dev, tmp_path / "weighted", "--model.class_weights", "balanced")
    assert weighted > plain + 0.2


def test_balanced_sampling_draws_the_rare_class_as_often_as_the_common_one(tiny_bert, tmp_path):
    rows = [{"text": " ".join([POSITIVE[0]] * 3), "label": "positive"}] * 95 + [
        {"text": " ".join([NEGATIVE[0]] * 3), "label": "negative"}] * 5  # fmt: skip
    dm = built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), sampling="balanced", batch_size=10)
    dm.trainer = None
    labels = [label for batch in dm.train_dataloader() for label in batch["labels"].tolist()]
    assert len(labels) == len(dm.train_features) and 0.3 < sum(labels) / len(labels) < 0.7


# ------------------------------------------------------------------------------------------------- regression
@pytest.mark.slow  # a run of 5 epochs that must learn
def test_any_numeric_column_trains_a_regression_in_its_own_units(tiny_bert, tmp_path):
    def scored(n: int, seed: int) -> list[dict]:
        return [{"text": r["text"], "score": 4.0 if r["label"] == "positive" else 1.0} for r in sentiment_rows(n, seed)]

    out, dev = tmp_path / "run", write_jsonl(tmp_path / "dev.jsonl", scored(100, 1))
    run("fit", *common(tiny_bert, out, "--data.problem_type", "regression", "--data.label_field", "score",
                       "--data.train_file", str(write_jsonl(tmp_path / "train.jsonl", scored(400, 0))),
                       "--data.validation_file", str(dev), "--model.standardize_targets", "true",
                       "--model.learning_rate", "3e-3", "--trainer.max_epochs", "5"))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == {"loss", "pearson", "spearman", "mse", "mae"}
    assert results["metrics"]["pearson"] > 0.8 and results["eval"]["main_metric"] == "pearson"
    assert results["metrics"]["mae"] < 0.75  # in the targets' units (1 or 4), not standardised ones
    # the export's own output layer gives scores in the targets' units, as ftlit predict does
    run("predict", *common(str(out / "export"), tmp_path / "predicted", "--data.problem_type", "regression",
                           "--data.predict_file", str(dev), "--trainer.precision", "32-true"))  # fmt: skip
    predicted = [json.loads(line)["score"] for line in (tmp_path / "predicted" / "predictions.jsonl").open()]
    by_pipeline = pipeline("text-classification", model=str(out / "export"), function_to_apply="none")
    scores = [result["score"] for result in by_pipeline([row["text"] for row in scored(100, 1)])]
    assert scores == pytest.approx(predicted, abs=1e-4) and 1.5 < sum(scores) / len(scores) < 3.5


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_regression_can_keep_the_checkpoint_of_lowest_error_instead_of_highest_pearson(tiny_bert, tmp_path):
    def scored(n: int, seed: int) -> list[dict]:
        return [{"text": r["text"], "score": 4.0 if r["label"] == "positive" else 1.0} for r in sentiment_rows(n, seed)]

    out = tmp_path / "run"
    run("fit", *common(tiny_bert, out, "--data.problem_type", "regression", "--data.label_field", "score",
                       "--data.train_file", str(write_jsonl(tmp_path / "train.jsonl", scored(300, 0))),
                       "--data.validation_file", str(write_jsonl(tmp_path / "dev.jsonl", scored(100, 1))),
                       "--model.main_metric", "mse", "--model.learning_rate", "3e-3",
                       "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "1"))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    errors = {entry["step"]: entry["val/mse"] for entry in results["train"]["history"]}
    assert len(set(errors.values())) == 3  # three evaluations, one of them the least wrong
    lowest = min(errors, key=errors.get)
    assert results["eval"]["main_metric"] == "mse"
    assert f"-step{lowest}.ckpt" in results["train"]["best_checkpoint"]
    assert results["metrics"]["mse"] == pytest.approx(errors[lowest], rel=1e-4)


def test_a_regression_target_that_is_not_a_number_names_its_row(tiny_bert, tmp_path):
    rows = [{"text": "fine", "score": 2.5}] * 10 + [{"text": "odd", "score": "high"}]
    with pytest.raises(Exception, match=r"row 11: 'high'\).*a number"):
        built(tiny_bert, write_jsonl(tmp_path / "train.jsonl", rows), problem_type="regression", label_field="score")


# ------------------------------------------------------------------------------------------------- GoEmotions
GOEMOTIONS_TRAIN = SHARED_DATA / "goemotions" / "train.tsv.gz"


@pytest.mark.slow  # reads the 43,410 rows of the real training file
@pytest.mark.skipif(not GOEMOTIONS_TRAIN.exists(), reason="needs ../shared/data/goemotions")
def test_the_goemotions_files_are_read_as_the_csv_module_reads_them(tiny_bert):
    dm = ClassificationDataModule(tiny_bert, task="goemotions", train_file=str(GOEMOTIONS_TRAIN), max_length=32,
                                  max_train_samples=200)  # fmt: skip
    rows = dm.load_split("train")
    with gzip.open(GOEMOTIONS_TRAIN, "rt", encoding="utf-8", newline="") as file:
        official = list(csv.reader(file, delimiter="\t"))
    assert len(rows) == len(official) == 43_410
    assert rows["text"] == [row[0] for row in official]  # CSV-quoted texts unquoted
    assert rows["labels"] == [row[1] for row in official]
    dm.setup("fit")
    assert dm.label_names == GOEMOTIONS and dm.problem_type == "multi_label"
    hot = dm.train_features["labels"]
    assert all(len(labels) == 28 and sum(labels) >= 1 for labels in hot)
