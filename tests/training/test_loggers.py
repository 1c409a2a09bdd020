"""Any Lightning logger, or several: ftlit's run folder, checkpoints, results.json, figures, resuming and
`ftlit compare` keep working with each (TensorBoard stays the default)."""

import csv
import json

import pytest
import torch

from ftlit.cli import main

CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"


def fit_args(tiny_bert, files, root, *extra: str, epochs: int = 2) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
        "--data", "ftlit.ClassificationDataModule", "--data.train_file", str(files["train"]),
        "--data.validation_file", str(files["dev"]), "--data.text_fields", "[text]", "--data.max_length", "32",
        "--data.batch_size", "16", "--trainer.max_epochs", str(epochs), "--trainer.limit_train_batches", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root), *extra,
    ]  # fmt: skip


def scored_epochs(run_dir) -> list[int]:
    return [entry["epoch"] for entry in json.loads((run_dir / "results.json").read_text())["train"]["history"]]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_csv_logged_run_keeps_every_output_in_its_version_folder_and_resumes_there(
    tiny_bert, sentiment_files, tmp_path
):
    logger = ["--trainer.logger", CSV_LOGGER, "--trainer.logger.save_dir", str(tmp_path)]
    main(fit_args(tiny_bert, sentiment_files, tmp_path, *logger))
    run = tmp_path / "lightning_logs/version_0"
    results = json.loads((run / "results.json").read_text())
    assert results["train"]["log_dir"] == str(run)
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.ckpt"}
    assert (run / "export/config.json").is_file()
    # no images in a CSV file: the figures are PNG files, one per evaluation during fit
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert figures == ["val_confusion_matrix-step2.png", "val_confusion_matrix-step4.png",
                       "val_reliability-step2.png", "val_reliability-step4.png"]  # fmt: skip
    with (run / "metrics.csv").open() as file:
        assert any(row.get("val/accuracy") for row in csv.DictReader(file))
    # the validation history (what compare draws) holds each evaluation's scores, equal to what was logged
    assert [entry["step"] for entry in results["train"]["history"]] == [2, 4]
    assert set(results["train"]["history"][-1]) >= {"val/accuracy", "val/loss", "epoch", "step"}

    # one epoch more, resumed from last.ckpt: the same folder, the history continued
    main(fit_args(tiny_bert, sentiment_files, tmp_path, *logger, "--ckpt_path", "last", "--overwrite", "true",
                  epochs=3))  # fmt: skip
    assert not (tmp_path / "lightning_logs/version_1").exists()
    assert scored_epochs(run) == [0, 1, 2]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_several_loggers_at_once_each_get_the_run(tiny_bert, sentiment_files, tmp_path):
    loggers = json.dumps([
        {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": str(tmp_path)}},
        {"class_path": CSV_LOGGER, "init_args": {"save_dir": str(tmp_path / "csv")}},
    ])  # fmt: skip
    main(fit_args(tiny_bert, sentiment_files, tmp_path, "--trainer.logger", loggers))
    run = tmp_path / "lightning_logs/version_0"  # the first logger's folder is the run's
    assert (run / "results.json").is_file() and list(run.glob("events.out.tfevents.*"))
    assert (tmp_path / "csv/lightning_logs/version_0/metrics.csv").is_file()
    assert list((run / "figures").glob("val_reliability-step*.png"))  # CSV takes no images: files once, here


@pytest.mark.slow  # MLflow sets up its tracking store (10-20 s under load)
@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_an_mlflow_run_keeps_its_outputs_beside_its_checkpoints_and_its_figures_as_artifacts(
    tiny_bert, sentiment_files, tmp_path, monkeypatch, store
):
    mlflow = pytest.importorskip("mlflow")
    if store == "sqlite":  # a real tracking database, no server; runs under <default_root_dir>/<experiment>/<run>
        database, runs = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path
    else:  # MLflow 3 keeps its file store only on request; runs under mlruns/<experiment>/<run>
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        database, runs = f"file:{tmp_path / 'mlruns'}", tmp_path / "mlruns"
    logger = ["--trainer.logger", "lightning.pytorch.loggers.MLFlowLogger", "--trainer.logger.tracking_uri", database,
              "--trainer.logger.experiment_name", "sentiment",
              "--trainer.logger.artifact_location", str(tmp_path / "artifacts")]  # fmt: skip
    main(fit_args(tiny_bert, sentiment_files, tmp_path, *logger))
    (results_file,) = runs.glob("*/*/results.json")
    run = results_file.parent  # as Lightning places the checkpoints
    assert (run / "checkpoints/last.ckpt").is_file() and (run / "export/config.json").is_file()
    client = mlflow.MlflowClient(database)
    assert len(client.get_metric_history(run.name, "val/accuracy")) == 2  # one per epoch
    figures = {artifact.path for artifact in client.list_artifacts(run.name, "figures")}
    assert {"figures/val_reliability-step4.png", "figures/val_confusion_matrix-step4.png"} <= figures

    # resumed from the newest last.ckpt under the same root: a new MLflow run, the old run's weights and history
    main(fit_args(tiny_bert, sentiment_files, tmp_path, *logger, "--ckpt_path", "last", epochs=3))
    resumed = max(runs.glob("*/*/results.json"), key=lambda p: p.stat().st_mtime).parent
    assert resumed != run and scored_epochs(resumed) == [0, 1, 2]
    assert torch.load(resumed / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 3  # epochs done


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_compare_draws_the_curves_of_a_tensorboard_run_and_a_csv_run(tiny_bert, sentiment_files, tmp_path):
    from ftlit.tools.comparison import load_results, validation_curves

    main(fit_args(tiny_bert, sentiment_files, tmp_path / "tb"))
    main(fit_args(tiny_bert, sentiment_files, tmp_path / "csv", "--trainer.logger", CSV_LOGGER,
                  "--trainer.logger.save_dir", str(tmp_path / "csv")))  # fmt: skip
    runs = [tmp_path / name / "lightning_logs/version_0" for name in ("tb", "csv")]
    main(["compare", *map(str, runs), "--output_dir", str(tmp_path / "comparison")])
    assert (tmp_path / "comparison/comparison.png").is_file()
    for run in runs:
        assert len(validation_curves(run, load_results(run))["val/accuracy"]) == 2


@pytest.mark.slow  # wandb starts its own service process
def test_a_wandb_offline_run_gets_its_metrics_and_figures(tiny_bert, sentiment_files, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = ["--trainer.logger", "lightning.pytorch.loggers.WandbLogger", "--trainer.logger.offline", "true",
              "--trainer.logger.save_dir", str(tmp_path), "--trainer.logger.project", "sentiment"]  # fmt: skip
    main(fit_args(tiny_bert, sentiment_files, tmp_path, *logger))
    (results_file,) = tmp_path.glob("sentiment/*/results.json")  # save_dir/project/run id
    assert (results_file.parent / "checkpoints/last.ckpt").is_file()
    (offline_run,) = tmp_path.glob("wandb/offline-run-*")
    (synced_later,) = offline_run.glob("*.wandb")  # what `wandb sync` uploads: metrics and images
    images = list(offline_run.glob("files/media/images/val/*.png"))
    assert synced_later.stat().st_size > 0 and any("reliability" in image.name for image in images)
