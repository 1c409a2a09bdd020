"""ftlit compare: finished runs side by side, from their results.json (and TensorBoard scalars for older runs)."""

import csv
import json

import matplotlib.image
import pytest

from ftlit.cli import main as ftlit
from ftlit.tools.comparison import run_names


def fit(tiny_bert, files, root, *options):
    ftlit([
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
        "--data", "ftlit.ClassificationDataModule", "--data.train_file", str(files["train"]),
        "--data.validation_file", str(files["dev"]), "--data.text_fields", "[text]", "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "2", "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false", *options,
    ])  # fmt: skip


@pytest.fixture(scope="module")
def two_runs(tiny_bert, sentiment_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    fit(tiny_bert, sentiment_files, root / "full", "--model.learning_rate", "1e-3")  # results in its log folder
    lora = root / "lora-output"  # results apart from the logs
    fit(tiny_bert, sentiment_files, root / "lora", "--output_dir", str(lora), "--model.learning_rate", "1e-2",
        "--model.peft", '{"r": 4, "target_modules": ["query", "value"]}')  # fmt: skip
    return [root / "full" / "lightning_logs" / "version_0", lora]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_compare_writes_one_row_per_run_with_its_values(two_runs, tmp_path, capsys):
    ftlit(["compare", *map(str, two_runs), "--output_dir", str(tmp_path)])
    printed = capsys.readouterr().out
    results = [json.loads((run / "results.json").read_text()) for run in two_runs]
    with (tmp_path / "comparison.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["run"] for row in rows] == ["version_0", "lora-output"]
    assert [row["model"].endswith(" + LoRA") for row in rows] == [False, True]
    for row, result in zip(rows, results):
        assert int(row["total_params"]) == result["model"]["total_params"]
        assert int(row["trainable_params"]) == result["model"]["trainable_params"]
        for metric in ("accuracy", "f1", "macro_f1", "loss", "ece", "brier", "nll"):
            assert float(row[metric]) == pytest.approx(result["metrics"][metric])
        assert float(row["train_time_s"]) == pytest.approx(result["train"]["train_time_s"])
        assert float(row["train_samples_per_s"]) == pytest.approx(result["train"]["throughput"]["samples_per_sec"])
        assert float(row["eval_ms_per_example"]) == pytest.approx(result["eval"]["ms_per_example"])
    assert set(rows[0]) == {
        "run",
        "model",
        "total_params",
        "trainable_params",
        "accuracy",
        "f1",
        "macro_f1",
        "loss",
        "ece",
        "brier",
        "nll",
        "train_time_s",
        "train_samples_per_s",
        "eval_ms_per_example",
    }
    assert int(rows[1]["trainable_params"]) < int(rows[0]["trainable_params"])
    markdown = (tmp_path / "comparison.md").read_text()
    assert markdown in printed
    assert markdown.splitlines()[2].startswith("| version_0 | ")
    assert f"| {results[0]['metrics']['accuracy']:.4f} |" in markdown.splitlines()[2]


def test_compare_overlays_the_validation_curves_in_a_png(two_runs, tmp_path):
    ftlit(["compare", *map(str, two_runs), "--output_dir", str(tmp_path)])
    image = matplotlib.image.imread(tmp_path / "comparison.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400


def test_validation_curves_come_from_the_validation_history_in_results(two_runs):
    from ftlit.tools.comparison import load_results, validation_curves

    for run in two_runs:
        results = load_results(run)
        curves = validation_curves(run, results)
        steps = [step for step, _ in curves["val/accuracy"]]
        assert len(steps) >= 2 and steps == sorted(steps)
        assert {"val/loss", "val/f1", "val/ece"} <= set(curves)
        assert [value for _, value in curves["val/f1"]] == [entry["val/f1"] for entry in results["train"]["history"]]


def test_runs_without_a_history_give_their_curves_from_tensorboard_scalars(two_runs):
    from ftlit.tools.comparison import load_results, validation_curves

    for run in two_runs:  # the second run's logs are not under its output folder: results.json names them
        results = load_results(run)
        history = results["train"].pop("history")  # as ftlit wrote results.json before it kept one
        curves = validation_curves(run, results)
        assert [value for _, value in curves["val/f1"]] == pytest.approx([entry["val/f1"] for entry in history])


def test_a_folder_without_results_is_refused(two_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        ftlit(["compare", str(two_runs[0]), str(tmp_path)])
    assert stopped.value.code == 2
    assert f"{tmp_path} holds no results.json" in capsys.readouterr().err


def test_run_names_are_the_shortest_distinct_path_ends(tmp_path):
    a, b = tmp_path / "a" / "logs" / "version_0", tmp_path / "b" / "logs" / "version_0"
    assert run_names([a, b]) == ["a/logs/version_0", "b/logs/version_0"]
    assert run_names([tmp_path / "x", tmp_path / "y"]) == ["x", "y"]


def test_a_flat_results_file_of_an_earlier_ftlit_compares_beside_a_new_one(two_runs, tmp_path):
    """results.json before schema 2 was one flat dict: its metrics are the numbers that are not known run facts."""
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({
        "exact_match": 70.5, "f1": 80.25, "train_time_s": 12.5, "best_checkpoint": "b.ckpt",
        "train_throughput": {"samples_per_sec": 99.0}, "total_params": 1000, "trainable_params": 10,
        "num_examples": 50, "num_features": 60, "eval_time_s": 1.0, "ms_per_question": 20.0,
        "config": {"model": {"init_args": {"model_name_or_path": "old-model"}}},
    }))  # fmt: skip
    ftlit(["compare", str(two_runs[0]), str(old), "--output_dir", str(tmp_path)])
    with (tmp_path / "comparison.csv").open() as file:
        rows = {row["run"]: row for row in csv.DictReader(file)}
    row = rows["old-run"]
    assert (row["model"], row["exact_match"], row["f1"]) == ("old-model", "70.5", "80.25")
    assert (row["total_params"], row["train_time_s"], row["train_samples_per_s"]) == ("1000", "12.5", "99.0")
    assert row["eval_ms_per_example"] == "20.0"
    assert row["accuracy"] == "" and rows["version_0"]["f1"] != ""  # each run's own metrics
    for fact in ("num_examples", "eval_time_s", "best_checkpoint", "ms_per_question"):
        assert fact not in row  # run facts are not metrics


@pytest.mark.parametrize(
    ("content", "said"),
    [("[1, 2]", "holds a list, not the object ftlit writes"), ('"done"', "holds a string, not the object"),
     ('{"schema": 2, "metrics": [0.5]}', "its 'metrics' is a list, not an object"),
     ('{"schema": 2, "train": "fast"}', "its 'train' is a string, not an object"),
     ('{"schema": 2, "metrics": {"accuracy": "high"}}', "the metric(s) ['accuracy'] are not numbers")],
)  # fmt: skip
def test_a_results_file_that_is_not_a_runs_results_is_refused_naming_it(content, said, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(content)
    with pytest.raises(SystemExit) as stopped:
        ftlit(["compare", str(tmp_path / "run"), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"ftlit: error: {tmp_path / 'run' / 'results.json'}") and said in line
    assert not (tmp_path / "out").exists()  # refused before writing anything
