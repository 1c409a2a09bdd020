"""Two CPU processes (DDP over gloo) evaluate exactly like one, write one set of outputs, and can train."""

import importlib.util
import json
import os
import subprocess

import pytest
from transformers import pipeline

from conftest import TASKS, ner_rows, sentiment_rows, squad_rows, topic_rows, write_jsonl

pytestmark = pytest.mark.slow  # every test starts ftlit processes

TWO_PROCESSES = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def ftlit(*args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(["ftlit", *args, "--trainer.enable_progress_bar", "false"], capture_output=True,
                            text=True, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def arguments(task: str, model: str, out, *extra: str) -> list[str]:
    """A registered task's run of ``model`` on its example settings, evaluating in batches of 7."""
    return [*TASKS[task], "--model.model_name_or_path", model, "--data.eval_batch_size", "7", "--output_dir",
            str(out), "--trainer.default_root_dir", str(out), *extra]  # fmt: skip


def qa(model: str, out, *extra: str) -> list[str]:
    return arguments("question_answering", model, out, *extra)


def classifier(model: str, out, *extra: str) -> list[str]:
    return arguments("classification", model, out, *extra)


def tagger(model: str, out, *extra: str) -> list[str]:
    return arguments("token_classification", model, out, *extra)


def scores(directory) -> dict:
    """The metrics and evaluation facts of a run's results.json."""
    results = json.loads((directory / "results.json").read_text())
    return {**results["metrics"], **results["eval"]}


def outputs(directory) -> set[str]:
    return {path.name for path in directory.iterdir() if path.is_file()}


@pytest.fixture(scope="module")
def qa_model(tiny_bert, squad_files, tmp_path_factory) -> str:
    """Trained briefly: its answers are often right and sometimes wrong."""
    out = tmp_path_factory.mktemp("qa-model")
    ftlit("fit", *qa(tiny_bert, out, "--data.train_file", str(squad_files["train"]), "--data.validation_file",
                     str(squad_files["dev"]), "--model.learning_rate", "1e-3", "--data.batch_size", "16",
                     "--trainer.max_steps", "25"))  # fmt: skip
    return str(out / "export")


def test_qa_validation_on_two_processes_equals_one(qa_model, tmp_path):
    dev = write_jsonl(tmp_path / "dev.jsonl", squad_rows(101, seed=21))  # odd: the ranks get unequal shares
    for name, extra in (("one", []), ("two", TWO_PROCESSES)):
        ftlit("validate", *qa(qa_model, tmp_path / name, "--data.validation_file", str(dev), *extra))
    one, two = tmp_path / "one", tmp_path / "two"
    first, second = scores(one), scores(two)
    assert 20 < first["f1"] < 100  # a model that makes mistakes, so agreement means something
    assert (second["exact_match"], second["f1"]) == (first["exact_match"], first["f1"])
    assert json.loads((two / "predictions.json").read_text()) == json.loads((one / "predictions.json").read_text())
    assert second["num_examples"] == 101 and second["num_features"] == first["num_features"] > 101
    assert outputs(two) == outputs(one) == {"results.json", "predictions.json", "nbest_predictions.json"}


def test_classification_metrics_on_two_processes_equal_one(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(200, seed=5))
    dev = write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(121, seed=6))
    ftlit("fit", *classifier(tiny_bert, tmp_path / "model", "--data.train_file", str(train), "--data.validation_file",
                             str(dev), "--model.learning_rate", "1e-3", "--trainer.max_epochs", "1"))  # fmt: skip
    model = str(tmp_path / "model" / "export")
    # texts cut into windows of 8 text tokens: the windows of one text land on both devices
    windows = ["--data.long_text", "window", "--data.max_length", "10", "--data.doc_stride", "2"]
    for name, extra in (("one", []), ("two", TWO_PROCESSES)):
        ftlit("validate", *classifier(model, tmp_path / name, "--data.validation_file", str(dev), *extra))
        ftlit("validate", *classifier(model, tmp_path / f"{name}-windows", "--data.validation_file", str(dev),
                                      *windows, *extra))  # fmt: skip
    for suffix in ("", "-windows"):
        first, second = (scores(tmp_path / f"{d}{suffix}") for d in ("one", "two"))
        assert (second["accuracy"], second["f1"]) == (first["accuracy"], first["f1"])
        assert second["ece"] == pytest.approx(first["ece"], abs=1e-6)
        assert second["nll"] == pytest.approx(first["nll"], abs=1e-6)
        assert second["num_examples"] == 121 and second["num_features"] == first["num_features"]
    assert first["num_features"] > 121  # (the windowed run's)
    # and predict: one file, every row once, in input order
    for name, extra in (("predicted", []), ("predicted-windows", windows)):
        ftlit("predict", *classifier(model, tmp_path / name, "--data.predict_file", str(dev), *extra, *TWO_PROCESSES))
        records = [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()]
        assert [r["text"] for r in records] == [json.loads(line)["text"] for line in dev.read_text().splitlines()]


def test_multi_label_metrics_and_per_label_table_on_two_processes_equal_one(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", topic_rows(200, seed=5))
    dev = write_jsonl(tmp_path / "dev.jsonl", topic_rows(61, seed=6, filler_words=(3, 20)))
    ftlit("fit", *classifier(tiny_bert, tmp_path / "model", "--data.label_field", "labels", "--data.train_file",
                             str(train), "--data.validation_file", str(dev), "--model.learning_rate", "2e-3",
                             "--trainer.max_epochs", "3", "--model.threshold", "tune"))  # fmt: skip
    model = str(tmp_path / "model" / "export")
    # texts cut into windows of 8 text tokens: the windows of one text land on both devices
    windows = ["--data.long_text", "window", "--data.max_length", "10", "--data.doc_stride", "2"]
    for name, extra in (("one", []), ("two", TWO_PROCESSES)):
        ftlit("validate", *classifier(model, tmp_path / name, "--data.label_field", "labels",
                                      "--data.validation_file", str(dev), *windows, *extra))  # fmt: skip
    first, second = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two"))
    assert 0.2 < first["metrics"]["macro_f1"] < 1  # a model that makes mistakes, so agreement means something
    names = ("macro_f1", "micro_f1", "subset_accuracy", "hamming_loss", "mean_average_precision")
    assert {k: second["metrics"][k] for k in names} == pytest.approx({k: first["metrics"][k] for k in names}, abs=1e-6)
    assert second["eval"]["per_label"] == first["eval"]["per_label"]
    assert second["eval"]["num_examples"] == 61 and second["eval"]["num_features"] == first["eval"]["num_features"]
    assert first["eval"]["num_features"] > 61  # some texts were cut into several windows


def test_ner_scores_and_predictions_on_two_processes_equal_one(tiny_bert, ner_files, tmp_path):
    ftlit("fit", *tagger(tiny_bert, tmp_path / "model", "--data.train_file", str(ner_files["train"]),
                         "--data.validation_file", str(ner_files["dev"]), "--model.learning_rate", "3e-3",
                         "--data.batch_size", "16", "--trainer.max_steps", "20"))  # fmt: skip
    model = str(tmp_path / "model" / "export")
    # sentences of up to 30 words in windows of 14 tokens: a sentence's windows land on both devices
    dev = write_jsonl(tmp_path / "dev.jsonl", ner_rows(61, seed=9, words=(8, 30)))
    for name, extra in (("one", []), ("two", TWO_PROCESSES)):
        ftlit("validate", *tagger(model, tmp_path / name, "--data.validation_file", str(dev), *extra))
        ftlit("predict", *tagger(model, tmp_path / f"{name}-predicted", "--data.predict_file", str(dev), *extra))
    first, second = scores(tmp_path / "one"), scores(tmp_path / "two")
    assert 0.1 < first["f1"] < 0.95  # a model that makes mistakes, so agreement means something
    assert {k: second[k] for k in ("precision", "recall", "f1", "accuracy")} == {
        k: first[k] for k in ("precision", "recall", "f1", "accuracy")}  # fmt: skip
    assert second["num_examples"] == 61 and second["num_features"] == first["num_features"] > 61
    assert json.loads((tmp_path / "two" / "predictions.json").read_text()) == json.loads(
        (tmp_path / "one" / "predictions.json").read_text())  # fmt: skip
    predicted = [(tmp_path / f"{name}-predicted" / "predictions.jsonl").read_text() for name in ("one", "two")]
    assert predicted[0] == predicted[1] and len(predicted[0].splitlines()) == 61


def test_training_on_two_processes_exports_a_working_model(tiny_bert, sentiment_files, tmp_path):
    ftlit("fit", *classifier(tiny_bert, tmp_path, "--data.train_file", str(sentiment_files["train"]),
                             "--data.validation_file", str(sentiment_files["dev"]), "--data.batch_size", "16",
                             "--model.learning_rate", "3e-3", "--trainer.max_epochs", "4", *TWO_PROCESSES))  # fmt: skip
    assert scores(tmp_path)["accuracy"] > 0.9
    predictions = pipeline("text-classification", model=str(tmp_path / "export"))(["a superb film", "dreadful"])
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert outputs(tmp_path) == {"results.json"}


def test_global_batch_must_divide_over_the_devices(tiny_bert, sentiment_files, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(["ftlit", "fit", *classifier(tiny_bert, tmp_path, "--data.train_file",
                             str(sentiment_files["train"]), "--data.batch_size", "15", *TWO_PROCESSES)],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 2
    assert "--data.batch_size 15 is the global batch and must divide evenly over 2 devices" in result.stderr


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        pytest.param(
            "deepspeed",
            "you must have DeepSpeed installed",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed"
            ),
        ),
        ("fsdp", "The strategy `fsdp` requires a GPU accelerator"),
    ],
)
def test_strategies_that_cannot_run_here_say_why_in_one_line(tiny_bert, sentiment_files, tmp_path, strategy, message):
    arguments = classifier(
        tiny_bert,
        tmp_path,
        "--data.train_file",
        str(sentiment_files["train"]),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        strategy,
    )
    result = subprocess.run(["ftlit", "fit", *arguments], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ftlit: error: Trainer settings rejected:") and message in last_line
