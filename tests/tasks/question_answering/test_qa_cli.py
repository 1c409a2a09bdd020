"""ftlit on extractive QA end to end: fit raises dev F1, writes official outputs, and the export answers alike."""

import json

import pytest
from transformers import BertForQuestionAnswering, pipeline

import ftlit  # noqa: F401  (registers the extractive-question-answering pipeline)
from conftest import squad_rows, with_trained_head, write_jsonl
from ftlit.cli import main


def run(*args: str) -> None:
    main([*args, "--trainer.enable_progress_bar", "false"])


def qa_args(model: str, output_dir, *extra: str) -> list[str]:
    return [
        "--model", "ftlit.QuestionAnsweringModule", "--model.model_name_or_path", model,
        "--data", "ftlit.SquadDataModule", "--data.dataset", "null", "--data.max_length", "64",
        "--data.doc_stride", "16", "--data.max_query_length", "16",
        "--trainer.precision", "32-true",  # as the pipelines compute: their answers are compared exactly
        "--trainer.default_root_dir", str(output_dir), "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


def results(directory) -> dict:
    """A run's metrics, evaluation facts and model facts (results.json's sections, merged)."""
    sections = json.loads((directory / "results.json").read_text())
    return {**sections["metrics"], **sections["eval"], **sections["model"]}


@pytest.fixture(scope="module")
def untrained_f1(tiny_bert, squad_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa-before")
    model = with_trained_head(tiny_bert, out / "model", head=BertForQuestionAnswering)  # its head as initialised
    run("validate", *qa_args(model, out, "--data.validation_file", str(squad_files["dev"])))
    return results(out)["f1"]


def fit(model: str, squad_files: dict, output_dir, *extra: str) -> dict:
    """The results of a fit on the generated questions."""
    run("fit", *qa_args(
        model, output_dir, "--data.train_file", str(squad_files["train"]), "--data.validation_file",
        str(squad_files["dev"]), "--data.batch_size", "16", "--model.learning_rate", "1e-3", *extra,
    ))  # fmt: skip
    return results(output_dir)


@pytest.fixture(scope="module")
def fitted(tiny_bert, squad_files, tmp_path_factory):
    """A run of 5 steps, validated once it ends."""
    out = tmp_path_factory.mktemp("qa-fit")
    fit(tiny_bert, squad_files, out, "--trainer.max_steps", "5")
    return out


@pytest.mark.slow
def test_fit_raises_dev_f1_well_above_its_start(tiny_bert, squad_files, untrained_f1, tmp_path):
    after = fit(tiny_bert, squad_files, tmp_path, "--trainer.max_epochs", "3")
    assert untrained_f1 < 20
    assert after["f1"] > 90 and after["exact_match"] > 85


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_results_record_sizes_timing_and_parameters(fitted):
    after = results(fitted)
    assert after["num_examples"] == 100 and after["num_features"] > 100  # long contexts take two windows
    # eval_time_s is rounded to the millisecond: per question that is at most 0.005 ms off
    assert after["eval_time_s"] > 0
    assert after["ms_per_example"] == pytest.approx(1000 * after["eval_time_s"] / 100, abs=0.006)
    assert after["total_params"] == after["trainable_params"] > 900_000


def test_predictions_are_in_the_official_format_with_an_nbest_file(fitted, squad_files):
    predictions = json.loads((fitted / "predictions.json").read_text())
    dev = [json.loads(line) for line in squad_files["dev"].read_text().splitlines()]
    assert set(predictions) == {row["id"] for row in dev}
    assert all(isinstance(answer, str) for answer in predictions.values())
    nbest = json.loads((fitted / "nbest_predictions.json").read_text())
    for row in dev:
        entries = nbest[row["id"]]
        assert 0 < len(entries) <= 20 and entries[0]["text"] == predictions[row["id"]]
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)
        assert all(row["context"][e["start"] : e["end"]] == e["text"] for e in entries)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_export_answers_in_a_transformers_pipeline_as_ftlit_does(fitted, squad_files):
    # with the windows the run had (64/16/16, not the pipeline's defaults 384/128/64): recorded in the export
    config = json.loads((fitted / "export" / "config.json").read_text())
    assert config["ftlit_inference"] == {"max_length": 64, "doc_stride": 16, "max_query_length": 16, "n_best": 20,
                                         "max_answer_length": 30, "version_2_with_negative": False,
                                         "null_score_diff_threshold": 0.0}  # fmt: skip
    qa = pipeline("extractive-question-answering", model=str(fitted / "export"))
    predictions = json.loads((fitted / "predictions.json").read_text())
    dev = [json.loads(line) for line in squad_files["dev"].read_text().splitlines()]
    for row in dev:
        answer = qa(question=row["question"], context=row["context"])
        assert answer["answer"] == predictions[row["id"]]
        assert row["context"][answer["start"] : answer["end"]] == answer["answer"]


def test_predict_writes_answer_offsets_and_score(fitted, tmp_path):
    rows = [{"id": r["id"], "question": r["question"], "context": r["context"]} for r in squad_rows(5, seed=9)]
    source = write_jsonl(tmp_path / "questions.jsonl", rows)
    run("predict", *qa_args(str(fitted / "export"), tmp_path, "--data.predict_file", str(source)))
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [r["id"] for r in rows]
    qa = pipeline("extractive-question-answering", model=str(fitted / "export"))
    for record, row in zip(records, rows):
        assert row["context"][record["start"] : record["end"]] == record["answer"]
        assert record["answer"] == qa(question=row["question"], context=row["context"])["answer"]
        assert isinstance(record["score"], float)


def test_v2_data_reports_has_and_no_answer_scores_and_the_best_threshold(fitted, tmp_path):
    dev = write_jsonl(tmp_path / "dev_v2.jsonl", squad_rows(60, seed=11, unanswerable=0.4))
    run("validate", *qa_args(str(fitted / "export"), tmp_path, "--data.validation_file", str(dev)))
    scores = results(tmp_path)
    for key in ("HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1", "best_f1_thresh"):
        assert key in scores
    assert scores["best_f1"] >= scores["f1"]  # the threshold search can only do better than the default
    assert (tmp_path / "null_odds.json").is_file()
    nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())
    assert all(any(entry["text"] == "" for entry in entries) for entries in nbest.values())


def test_test_scores_a_labelled_test_file(fitted, squad_files, tmp_path):
    run("test", *qa_args(str(fitted / "export"), tmp_path, "--data.test_file", str(squad_files["dev"])))
    scores = results(tmp_path)
    assert scores["f1"] == pytest.approx(results(fitted)["f1"], abs=1e-6)  # same data, same model
    assert json.loads((tmp_path / "predictions.json").read_text()) == json.loads(
        (fitted / "predictions.json").read_text()
    )


def test_any_squad_score_can_be_the_main_metric(fitted, squad_files, tmp_path):
    run("validate", *qa_args(str(fitted / "export"), tmp_path, "--data.validation_file", str(squad_files["dev"]),
                             "--model.main_metric", "exact_match"))  # fmt: skip
    assert results(tmp_path)["main_metric"] == "exact_match"


def test_padding_every_window_to_max_length_changes_no_answer(fitted, squad_files, tmp_path):
    # what the SQuAD padding-parity benchmark relies on: padding is masked, so only speed may move with it
    run("validate", *qa_args(str(fitted / "export"), tmp_path, "--data.validation_file", str(squad_files["dev"]),
                             "--data.pad_to_max_length", "true"))  # fmt: skip
    assert json.loads((tmp_path / "predictions.json").read_text()) == json.loads(
        (fitted / "predictions.json").read_text()
    )
    padded, dynamic = results(tmp_path), results(fitted)
    assert padded["f1"] == dynamic["f1"] and padded["exact_match"] == dynamic["exact_match"]


def test_a_v2_score_the_validation_data_cannot_give_is_refused_before_training(
    squad_files, tiny_bert, tmp_path, capsys
):
    # v2.0 training data, but every validation question has an answer: there is no NoAns_f1 to pick checkpoints by
    train = write_jsonl(tmp_path / "train_v2.jsonl", squad_rows(40, seed=12, unanswerable=0.4))
    with pytest.raises(SystemExit):
        run("fit", *qa_args(tiny_bert, tmp_path / "run", "--data.train_file", str(train), "--data.validation_file",
                            str(squad_files["dev"]), "--model.main_metric", "NoAns_f1"))  # fmt: skip
    assert ("--model.main_metric NoAns_f1: not a metric of this task on this data, which reports exact_match, f1, "
            "HasAns_exact, HasAns_f1, best_exact, best_f1") in capsys.readouterr().err  # fmt: skip
    assert not list((tmp_path / "run").rglob("*.ckpt")) and not (tmp_path / "run" / "results.json").exists()


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_v2_score_the_validation_data_gives_can_be_the_main_metric(fitted, tmp_path):
    dev = write_jsonl(tmp_path / "dev_v2.jsonl", squad_rows(60, seed=11, unanswerable=0.4))
    run("validate", *qa_args(str(fitted / "export"), tmp_path, "--data.validation_file", str(dev),
                             "--model.main_metric", "NoAns_f1"))  # fmt: skip
    scores = results(tmp_path)
    assert scores["main_metric"] == "NoAns_f1" and "NoAns_f1" in scores


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_v2_training_data_keeps_v2_rules_through_the_last_validation_and_the_export(squad_files, tiny_bert, tmp_path):
    # fit's closing validation of the best checkpoint reads the (all-answerable) validation split alone; the last
    # epoch is not validated, so that closing validation runs
    train = write_jsonl(tmp_path / "train_v2.jsonl", squad_rows(40, seed=12, unanswerable=0.4))
    out = tmp_path / "run"
    run("fit", *qa_args(tiny_bert, out, "--data.train_file", str(train), "--data.validation_file",
                        str(squad_files["dev"]), "--model.main_metric", "best_f1", "--trainer.max_epochs", "3",
                        "--trainer.check_val_every_n_epoch", "2", "--trainer.limit_train_batches", "1",
                        "--data.batch_size", "16"))  # fmt: skip
    scores = results(out)
    assert scores["main_metric"] == "best_f1" and {"HasAns_f1", "best_f1"} <= set(scores)
    assert "NoAns_f1" not in scores  # no unanswerable question to score
    config = json.loads((out / "export" / "config.json").read_text())
    assert config["ftlit_inference"]["version_2_with_negative"] is True


def test_a_saved_v2_main_metric_does_not_stop_predict(fitted, tmp_path):
    rows = [{"id": r["id"], "question": r["question"], "context": r["context"]} for r in squad_rows(3, seed=9)]
    source = write_jsonl(tmp_path / "questions.jsonl", rows)
    run("predict", *qa_args(str(fitted / "export"), tmp_path, "--data.predict_file", str(source),
                            "--model.main_metric", "NoAns_f1"))  # fmt: skip
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 3
