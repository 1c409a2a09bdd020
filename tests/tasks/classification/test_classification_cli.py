"""The ftlit command end to end: fit → checkpoint, export, results; validate/test/predict; clear errors."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from transformers import pipeline

from ftlit.cli import main
from ftlit.contract import metric_suffix
from ftlit.tasks.classification.data import ClassificationDataModule


def run(*args: str) -> None:
    main([*args, "--trainer.enable_progress_bar", "false"])


def classification_args(model: str, files: dict, output_dir, *extra: str) -> list[str]:
    return [
        "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
        "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.max_length", "32",
        "--trainer.precision", "32-true",  # as the pipelines compute: their labels are compared exactly
        "--trainer.default_root_dir", str(output_dir), "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip


def fit(model: str, files: dict, output_dir, *extra: str) -> dict:
    """results.json of a fit on the sentiment data."""
    run("fit", *classification_args(
        model, files, output_dir, "--data.train_file", str(files["train"]), "--data.validation_file",
        str(files["dev"]), "--data.batch_size", "16", "--model.learning_rate", "3e-3", *extra,
    ))  # fmt: skip
    return json.loads((output_dir / "results.json").read_text())


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pipeline_accuracy(export, rows: list[dict]) -> float:
    """The accuracy of the export's labels in a transformers pipeline."""
    predicted = [p["label"] for p in pipeline("text-classification", model=str(export))([r["text"] for r in rows])]
    return sum(p == row["label"] for p, row in zip(predicted, rows)) / len(rows)


@pytest.fixture(scope="module")
def fitted(tiny_bert, sentiment_files, tmp_path_factory):
    """A run of 5 steps, validated at the end of its one (shortened) epoch."""
    out = tmp_path_factory.mktemp("fit")
    fit(tiny_bert, sentiment_files, out, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5",
        "--trainer.log_every_n_steps", "2")  # fmt: skip
    return out


@pytest.mark.slow
def test_fit_learns_the_task(tiny_bert, sentiment_files, tmp_path):
    assert fit(tiny_bert, sentiment_files, tmp_path, "--trainer.max_epochs", "4")["metrics"]["accuracy"] > 0.9  # vs 0.5


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_fit_records_results(fitted):
    results = json.loads((fitted / "results.json").read_text())
    assert results["schema"] == 2
    assert set(results) == {"schema", "metrics", "eval", "train", "model", "config"}
    metrics, train, model = results["metrics"], results["train"], results["model"]
    assert {"accuracy", "f1", "macro_f1", "loss", "ece", "brier", "nll"} == set(metrics)  # the scores, nothing else
    assert results["eval"]["split"] == "validation" and results["eval"]["num_examples"] == 120
    assert train["train_time_s"] > 0 and train["throughput"]["samples_per_sec"] > 0
    assert model["trainable_params"] == model["total_params"] > 900_000
    assert results["config"]["model"]["init_args"]["learning_rate"] == 3e-3
    assert train["best_checkpoint"].endswith(".ckpt")
    with open(train["best_checkpoint"], "rb") as checkpoint:
        assert checkpoint.read(2) == b"PK"  # a torch zip archive


def test_tensorboard_gets_losses_learning_rate_metrics_and_a_confusion_matrix(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {"scalars": set(), "images": set()}
    for events in fitted.glob("lightning_logs/version_*/events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 1})
        accumulator.Reload()
        for kind in tags:
            tags[kind] |= set(accumulator.Tags()[kind])
    assert {"train/loss", "train/grad_norm", "lr-AdamW/pg1", "val/accuracy", "val/f1", "val/loss"} <= tags["scalars"]
    assert "val/confusion_matrix" in tags["images"]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_export_loads_in_a_transformers_pipeline_with_label_names(fitted, sentiment_files):
    classifier = pipeline("text-classification", model=str(fitted / "export"))
    assert classifier.model.config.id2label == {0: "negative", 1: "positive"}
    accuracy = pipeline_accuracy(fitted / "export", read_jsonl(sentiment_files["dev"]))
    assert accuracy == pytest.approx(json.loads((fitted / "results.json").read_text())["metrics"]["accuracy"], abs=1e-6)


def test_validate_the_export_folder_reproduces_the_best_metrics(fitted, sentiment_files, tmp_path):
    run("validate", *classification_args(
        str(fitted / "export"), sentiment_files, tmp_path, "--data.validation_file", str(sentiment_files["dev"]),
    ))  # fmt: skip
    after_fit = json.loads((fitted / "results.json").read_text())
    validated = json.loads((tmp_path / "results.json").read_text())
    assert validated["metrics"] == after_fit["metrics"]
    assert validated["train"] == {}  # validate trains nothing


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_test_from_the_best_checkpoint(fitted, tiny_bert, sentiment_files, tmp_path):
    checkpoint = json.loads((fitted / "results.json").read_text())["train"]["best_checkpoint"]
    files = sentiment_files
    run("test", *classification_args(
        tiny_bert, files, tmp_path, "--data.train_file", str(files["train"]), "--data.test_file", str(files["test"]),
        "--ckpt_path", checkpoint,
    ))  # fmt: skip
    accuracy = json.loads((tmp_path / "results.json").read_text())["metrics"]["accuracy"]
    # the best checkpoint is the last step's: the export holds its weights
    assert accuracy == pytest.approx(pipeline_accuracy(fitted / "export", read_jsonl(files["test"])), abs=1e-6)


def test_predict_writes_each_row_with_label_and_probabilities(fitted, sentiment_files, tmp_path):
    texts = [{"text": "a wonderful film"}, {"text": "the plot is dreadful"}, {"text": "superb acting"}]
    source = tmp_path / "to_predict.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in texts))
    run("predict", *classification_args(str(fitted / "export"), sentiment_files, tmp_path,
                                        "--data.predict_file", str(source)))  # fmt: skip
    predictions = read_jsonl(tmp_path / "predictions.jsonl")
    assert [p["text"] for p in predictions] == [t["text"] for t in texts]
    by_pipeline = pipeline("text-classification", model=str(fitted / "export"))([t["text"] for t in texts])
    assert [p["label"] for p in predictions] == [p["label"] for p in by_pipeline]
    for p in predictions:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)
        assert p["score"] == max(p["probabilities"].values())


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_every_validation_set_is_reported_under_its_own_name(fitted, sentiment_files, tmp_path):
    # MNLI's matched + mismatched mechanism, with two custom validation files
    dev, test = str(sentiment_files["dev"]), str(sentiment_files["test"])
    run("validate", *classification_args(str(fitted / "export"), sentiment_files, tmp_path,
                                         "--data.validation_file", f"[{dev}, {test}]"))  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())["metrics"]
    for key, split in (("accuracy", "dev"), ("accuracy_1", "test")):
        expected = pipeline_accuracy(fitted / "export", read_jsonl(sentiment_files[split]))
        assert results[key] == pytest.approx(expected, abs=1e-6)


def test_mnli_reports_matched_and_mismatched(tiny_bert):
    dm = ClassificationDataModule(tiny_bert, task="mnli", validation_file=["dev_matched.tsv", "dev_mismatched.tsv"])
    assert dm.validation_names == ["validation_matched", "validation_mismatched"]
    names = [metric_suffix("val", split, i) for i, split in enumerate(dm.validation_names)]
    assert names == ["", "_mismatched"]  # val/accuracy and val/accuracy_mismatched
    assert ClassificationDataModule(tiny_bert, task="mnli").validation_names == dm.validation_names  # the Hub's


def test_command_line_overrides_reach_the_config(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "configs/glue_mrpc_bert.yaml", "--model.learning_rate", "2e-5",
              "--trainer.max_epochs", "1", "--data.max_train_samples", "2000", "--print_config"])  # fmt: skip
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["init_args"]["learning_rate"] == 2e-5
    assert config["trainer"]["max_epochs"] == 1
    assert config["data"]["init_args"]["max_train_samples"] == 2000


@pytest.mark.slow  # starts an ftlit process
def test_help_lists_the_subcommands():
    help_text = subprocess.run(["ftlit", "--help"], capture_output=True, text=True, check=True).stdout
    for subcommand in ("fit", "validate", "test", "predict"):
        assert subcommand in help_text


@pytest.mark.slow  # starts ftlit processes
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.model_name_or_path", "distilbert-base-uncased"],
         "Could not find the model config 'distilbert-base-uncased': it is not a local folder"),
        (["--data.task", "sst2", "--data.train_file", "null"],
         "Could not load dataset 'nyu-mll/glue/sst2' (split 'train') from the Hugging Face Hub"),
        (["--data.task", "sentiment"], "Unknown task 'sentiment'. Known tasks: cola"),
        (["--data.train_file", "missing.csv"], "Data file not found: 'missing.csv'"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_clear_line(args, message, tiny_bert, sentiment_files, tmp_path):
    command = ["ftlit", "fit", *classification_args(tiny_bert, {}, tmp_path), "--data.train_file",
               str(sentiment_files["train"]), *args]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"ftlit: error: {message}" or message in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ftlit: error: ")
    assert not (tmp_path / "export").exists()


@pytest.mark.slow  # starts an ftlit process
def test_module_runs_as_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "ftlit", "fit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--model.help" in result.stdout
