"""Every registered task (``ftlit.registry``), as a user runs it on the task's example files: fit (3 steps of the
tiny model) writes its export and scores, the export validates to the same scores and predicts one record per
input; and each stage the task declares: the export answers through its ``transformers`` pipeline, its ONNX export
answers as PyTorch does, ``ftlit serve`` answers as ``ftlit predict`` does, and ``ftlit inspect`` checks every
split. A task registered from its own package is covered here with no edit to this file."""

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
from transformers import pipeline

from conftest import close, fit_example, task_arguments
from ftlit import registry
from ftlit.cli import built_cli, main
from ftlit.errors import FtlitError
from ftlit.registry import TaskEntry, register_task, tasks
from ftlit.tasks.classification import ClassificationDataModule, SequenceClassificationModule
from ftlit.tools.prediction import Predictor
from ftlit.tools.serve import answer, read_request

QUIET = ["--trainer.enable_progress_bar", "false"]
FP32 = ["--trainer.precision", "32-true"]


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def validate(task: TaskEntry, model: Path, validation: Path, folder: Path) -> dict:
    """``ftlit validate`` of ``model`` (an export) on ``validation``: its results.json."""
    main(["validate", *task_arguments(task), "--model.model_name_or_path", str(model), "--data.validation_file",
          str(validation), "--output_dir", str(folder), *FP32, *QUIET])  # fmt: skip
    return results(folder)


def predict(task: TaskEntry, model: Path, inputs: Path, folder: Path, *extra: str) -> list[dict]:
    """``ftlit predict`` (fp32) of ``model`` on the rows of ``inputs``: its records."""
    main(["predict", *task_arguments(task), "--model.model_name_or_path", str(model), "--data.predict_file",
          str(inputs), "--output_dir", str(folder), *FP32, *extra, *QUIET])  # fmt: skip
    return lines(folder / "predictions.jsonl")


def check_fit_validate_predict(task: TaskEntry, run: Path, files: dict[str, Path], folder: Path) -> None:
    """A fitted run holds its export and finite scores; the export validates to those scores and predicts one
    record (of the same fields) per input row."""
    fitted = results(run)
    assert (run / "export" / "config.json").is_file() and (run / "export" / "model.safetensors").is_file()
    assert fitted["metrics"] and all(math.isfinite(value) for value in fitted["metrics"].values())
    validated = validate(task, run / "export", files["validation"], folder / "validate")
    assert validated["metrics"] == pytest.approx(fitted["metrics"], abs=1e-4)
    records = predict(task, run / "export", files["predict"], folder / "predict")
    assert len(records) == len(files["predict"].read_text().splitlines()) > 0
    assert all(record.keys() == records[0].keys() for record in records)


def predicted_request(task: TaskEntry, run: Path, predictor: Predictor, folder: Path) -> dict:
    """``ftlit predict``'s record of the task's example request (as the predict row the request reads as)."""
    folder.mkdir()
    inputs = folder / "request.jsonl"
    inputs.write_text(json.dumps(predictor.request_row(task.example_request)) + "\n")
    (record,) = predict(task, run / "export", inputs, folder)
    return record


def agrees(ours: object, record: dict, tolerance: float = 1e-5) -> bool:
    """``ours`` (a served answer, or a pipeline's) says what ``record`` (``ftlit predict``'s) says: each of its
    fields as the record's (scores within ``tolerance``); a list (the entities found) as one of the record's
    fields."""
    if isinstance(ours, list):
        return any(close(ours, value, tolerance) for value in record.values())
    return (
        isinstance(ours, dict)
        and bool(ours)
        and all(key in record and close(ours[key], record[key], tolerance) for key in ours)
    )


def stage_of(name: str, stage: str) -> TaskEntry:
    task = tasks()[name]
    if stage not in task.stages:
        pytest.skip(f"{name} does not support {stage}")
    return task


@pytest.mark.parametrize("name", sorted(tasks()))
def test_fit_validate_and_predict(name, trained_runs, tmp_path):
    run, _ = trained_runs[name]
    check_fit_validate_predict(tasks()[name], run, tasks()[name].example_files(tmp_path), tmp_path)


@pytest.mark.parametrize("name", sorted(tasks()))
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_export_answers_through_its_pipeline_as_ftlit_predict_does(name, trained_runs, tmp_path):
    task = stage_of(name, "pipeline")
    run, _ = trained_runs[name]
    expected = predicted_request(task, run, Predictor.from_export(run, built_cli), tmp_path / "predict")
    answered = pipeline(task.pipeline, model=str(run / "export"))(task.example_request)
    assert answered and agrees(answered, expected, tolerance=1e-4), (answered, expected)


@pytest.mark.parametrize("name", sorted(tasks()))
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_served_answers_are_ftlit_predicts(name, trained_runs, tmp_path):
    task = stage_of(name, "serve")
    run, _ = trained_runs[name]
    predictor = Predictor.from_export(run, built_cli)
    expected = predicted_request(task, run, predictor, tmp_path / "predict")
    # as a worker answers a batch: one request of one input, one of a list
    batch = [read_request(task.example_request, predictor), read_request([task.example_request] * 2, predictor)]
    answer(batch, predictor)
    assert [request.error for request in batch] == [None, None]
    served = batch[0].answers + batch[1].answers
    assert len(served) == 3 and all(agrees(one, expected) for one in served), (served, expected)


@pytest.mark.parametrize("name", sorted(tasks()))
@pytest.mark.slow  # an ONNX export: 10-15 s on 2 cores
def test_the_onnx_export_answers_as_pytorch_does(name, trained_runs, tmp_path):
    task = stage_of(name, "onnx")
    run, inputs = trained_runs[name]
    main(["export", str(run), "--format", "onnx", "--output", str(tmp_path / "built"), *QUIET])
    report = json.loads((tmp_path / "built" / "export_report.json").read_text())
    assert report["largest_difference"] <= 1e-4 and report["checked_features"] > 0
    torch_metrics, onnx_metrics = report["metrics"]["torch"], report["metrics"]["onnxruntime"]
    assert torch_metrics and onnx_metrics == pytest.approx(torch_metrics, abs=1e-3)  # validation scored by both
    # the ONNX folder alone (its report carries the run's settings), moved away from its run
    onnx = tmp_path / "elsewhere"
    shutil.move(tmp_path / "built", onnx)
    theirs = predict(task, run / "export", inputs, tmp_path / "torch")
    ours = predict(task, onnx, inputs, tmp_path / "onnxruntime", "--model.engine", "onnxruntime")
    assert len(ours) == len(theirs) > 0
    assert all(close(mine, reference, 1e-4) for mine, reference in zip(ours, theirs))
    if "serve" in task.stages:
        predictor = Predictor.from_export(onnx, built_cli)
        assert predictor.engine == "onnxruntime"
        expected = Predictor.from_export(run, built_cli).predict([predictor.request_row(task.example_request)])
        served = read_request(task.example_request, predictor)
        answer([served], predictor)
        assert close(served.answers, expected, 1e-4), (served.answers, expected)


@pytest.mark.parametrize("name", sorted(tasks()))
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_inspect_reports_and_checks_every_split(name, tiny_bert, tmp_path, capsys):
    task = stage_of(name, "inspect")
    files = task.example_files(tmp_path)
    main(["inspect", *task_arguments(task), "--model.model_name_or_path", tiny_bert, "--data.train_file",
          str(files["train"]), "--data.validation_file", str(files["validation"])])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    table = [line.strip("| ").split(" | ") for line in out if line.startswith(("| train |", "| validation |"))]
    examples = {cells[0]: int(cells[1]) for cells in table}
    assert examples["validation"] == len(files["validation"].read_text().splitlines()) and examples["train"] > 0
    assert any(line.startswith("ok: CLS first and SEP last") for line in out)


class DummyModule(SequenceClassificationModule):
    """A fourth task: classification under another name, from a package of its own."""


class DummyDataModule(ClassificationDataModule):
    pass


@pytest.mark.slow  # fits a task of its own
def test_a_task_registered_from_its_own_package_is_covered_by_the_registry_wide_checks(
    tiny_bert, tmp_path, monkeypatch
):
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))  # registered for this test only
    classification = tasks()["classification"]
    register_task(
        TaskEntry(
            "dummy",
            DummyModule,
            DummyDataModule,
            classification.example_files,
            classification.example_settings,
            classification.example_request,
            classification.pipeline,
        )
    )
    assert "dummy" in tasks() and task_arguments(tasks()["dummy"])[:4] == [
        "--model", f"{__name__}.DummyModule", "--data", f"{__name__}.DummyDataModule"]  # fmt: skip
    run, files = fit_example(tasks()["dummy"], tiny_bert, tmp_path / "fit")
    assert results(run)["config"]["model"]["class_path"] == f"{__name__}.DummyModule"
    check_fit_validate_predict(tasks()["dummy"], run, files, tmp_path)


def test_the_registry_refuses_a_second_task_of_a_name_and_a_stage_it_does_not_know(monkeypatch):
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    classification = tasks()["classification"]
    with pytest.raises(FtlitError, match="'classification' is registered already"):
        register_task(dataclasses.replace(classification, model=DummyModule))
    with pytest.raises(FtlitError, match=r"unknown stage\(s\) \['deploy'\]"):
        dataclasses.replace(classification, name="other", stages=("onnx", "deploy"))
    assert tasks()["classification"].model is SequenceClassificationModule
