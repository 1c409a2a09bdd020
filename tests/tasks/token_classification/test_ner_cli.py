"""Named-entity recognition end to end through the ftlit command: generated sentences whose entities are
recognisable by their words, a tiny model, real Lightning and tokenizers; the export in transformers' pipelines."""

import json

import pytest
from transformers import pipeline

import ftlit  # noqa: F401  (registers the entity-recognition pipeline)
from conftest import FILLER, ner_rows, write_jsonl
from ftlit.cli import built_cli, main
from ftlit.tools.prediction import Predictor

FP32 = ["--trainer.precision", "32-true"]  # as the pipelines run: scores compared exactly


def run(*args: str) -> None:
    main([*args, "--trainer.enable_progress_bar", "false"])


def common(model: str, out, *extra: str) -> list[str]:
    return ["--model", "ftlit.TokenClassificationModule", "--model.model_name_or_path", model,
            "--data", "ftlit.TokenClassificationDataModule", "--data.dataset", "null", "--data.max_length", "32",
            "--data.doc_stride", "8", "--trainer.default_root_dir", str(out), "--output_dir", str(out),
            *extra]  # fmt: skip


def fit(model: str, ner_files: dict, out, *extra: str) -> dict:
    """The results of a fit on the generated sentences."""
    run("fit", *common(model, out, "--data.train_file", str(ner_files["train"]), "--data.validation_file",
                       str(ner_files["dev"]), "--data.batch_size", "16", "--model.learning_rate", "3e-3",
                       *extra))  # fmt: skip
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def ner_run(tiny_bert, ner_files, tmp_path_factory):
    """A run of 5 steps, validated once it ends."""
    out = tmp_path_factory.mktemp("ner")
    fit(tiny_bert, ner_files, out, "--trainer.max_steps", "5")
    return out


@pytest.fixture(scope="module")
def learned_run(tiny_bert, ner_files, tmp_path_factory):
    """A run of 3 epochs, validated every 3 steps: it finds the entities."""
    out = tmp_path_factory.mktemp("ner-learned")
    fit(tiny_bert, ner_files, out, "--trainer.max_epochs", "3", "--trainer.val_check_interval", "3")
    return out


@pytest.mark.slow
def test_training_learns_the_entities(learned_run):
    results = json.loads((learned_run / "results.json").read_text())
    assert results["train"]["history"][0]["val/f1"] < 0.8 < results["metrics"]["f1"]  # far above where it started
    predictions = json.loads((learned_run / "predictions.json").read_text())
    assert predictions[0]["tags"] == ner_rows(100, seed=1)[0]["ner_tags"]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_validation_reports_conll_scores_and_the_tags_of_every_word(ner_run):
    results = json.loads((ner_run / "results.json").read_text())
    metrics = results["metrics"]
    assert {"precision", "recall", "f1", "accuracy", "f1_PER", "f1_LOC", "f1_ORG", "loss"} <= set(metrics)
    assert results["eval"]["main_metric"] == "f1"
    table = results["eval"]["per_type"]
    gold = ner_rows(100, seed=1)
    assert table["LOC"]["support"] == sum(tags.count("B-LOC") for tags in (r["ner_tags"] for r in gold))
    predictions = json.loads((ner_run / "predictions.json").read_text())
    assert [len(p["tags"]) for p in predictions] == [len(r["ner_tags"]) for r in gold]


@pytest.mark.slow  # needs a model that finds entities
def test_the_export_finds_the_entities_ftlit_predict_finds(learned_run, tmp_path):
    rows = [{"tokens": row["tokens"]} for row in ner_rows(30, seed=7)]
    predict = write_jsonl(tmp_path / "predict.jsonl", rows)
    export = str(learned_run / "export")
    run("predict", *common(export, tmp_path, "--data.predict_file", str(predict), *FP32))
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["words"] for r in records] == [r["tokens"] for r in rows]
    assert all(len(r["tags"]) == len(r["words"]) for r in records)
    assert sum(len(r["entities"]) for r in records) > 30
    hf = pipeline("token-classification", model=export, aggregation_strategy="simple")
    ours = pipeline("entity-recognition", model=export)  # the windows of the run: recorded in the export
    for record in records:
        found = [(e["text"], e["type"], e["start"], e["end"]) for e in record["entities"]]
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
        theirs = hf(record["text"])
        assert [(e["word"], e["entity_group"], e["start"], e["end"]) for e in theirs] == found
        assert [(e["text"], e["type"], e["start"], e["end"]) for e in ours(record["text"])] == found


@pytest.mark.slow  # needs a model that finds entities
def test_a_sentence_three_windows_long_gets_one_tag_per_word_and_the_pipeline_agrees(learned_run, tmp_path):
    words = [FILLER[i % len(FILLER)] for i in range(90)]
    words[30:32], words[60] = ["mary", "smith"], "paris"
    export = str(learned_run / "export")
    records = {}
    for kind, row in (("words", {"tokens": words}), ("text", {"text": " ".join(words)})):
        predict = write_jsonl(tmp_path / f"{kind}.jsonl", [row])
        run("predict", *common(export, tmp_path / kind, "--data.predict_file", str(predict), *FP32))
        (records[kind],) = [json.loads(line) for line in (tmp_path / kind / "predictions.jsonl").open()]
    assert len(records["words"]["tags"]) == 90 and records["words"]["tags"] == records["text"]["tags"]
    assert ("mary smith", "PER") in [(e["text"], e["type"]) for e in records["words"]["entities"]]
    ours = pipeline("entity-recognition", model=export)  # the windows of the run (32/8): recorded in the export
    assert ours(words=words) == records["words"]["entities"] == records["text"]["entities"]
    assert ours(words=words, max_length=128) != ours(words=words)  # (or the recorded windows would not be tested)
    assert ours("") == ours("  ") == ours(words=[]) == []


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_validation_of_the_export_scores_as_the_fit_did(ner_run, ner_files, tmp_path):
    run("validate", *common(str(ner_run / "export"), tmp_path, "--data.validation_file", str(ner_files["dev"])))
    fit = json.loads((ner_run / "results.json").read_text())["metrics"]
    validated = json.loads((tmp_path / "results.json").read_text())["metrics"]
    assert validated["f1"] == pytest.approx(fit["f1"], abs=1e-6)


def test_a_main_metric_the_task_does_not_report_is_refused_naming_those_it_does(ner_run, ner_files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run("validate", *common(str(ner_run / "export"), tmp_path, "--data.validation_file", str(ner_files["dev"]),
                                "--model.main_metric", "exact_match"))  # fmt: skip
    assert ("--model.main_metric exact_match: not a metric of this task on this data, which reports f1, precision, "
            "recall, accuracy, loss") in capsys.readouterr().err  # fmt: skip


def test_a_sentence_is_served_alike_as_a_text_and_as_its_words(trained_runs):
    run, inputs = trained_runs["token_classification"]
    sentences = [json.loads(line)["tokens"] for line in inputs.read_text().splitlines()[:10]]
    predictor = Predictor.from_export(run, built_cli)
    as_words = predictor.predict([predictor.request_row({"words": words}) for words in sentences])
    as_text = predictor.predict([predictor.request_row({"text": " ".join(words)}) for words in sentences])
    def read(answers: list[dict]) -> list[list]:
        return [[answer[key] for key in ("tags", "scores", "entities")] for answer in answers]

    assert read(as_words) == read(as_text)
    assert [len(answer["tags"]) for answer in as_words] == [len(words) for words in sentences]
