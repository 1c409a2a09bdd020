"""ftlit export --format onnx and --model.engine onnxruntime: int8 graphs load and predict, and bad requests are
refused with the fix. That each task's ONNX graph answers as its PyTorch model does is tests/test_tasks.py's."""

import json
import shutil

import pytest

from conftest import TASKS, tmpfs
from ftlit.cli import main

QUIET = ["--trainer.enable_progress_bar", "false"]


def ftlit(*args: str) -> None:
    main([*args, *QUIET])


def records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.slow  # an int8 export and its quantisation
def test_an_int8_export_is_smaller_loads_and_reports_its_metrics(trained_runs, tmp_path):
    run, predict = trained_runs["classification"]
    main(["export", str(run), "--format", "onnx", "--quantize", "int8", "--output", str(tmp_path / "int8")])
    report = json.loads((tmp_path / "int8" / "export_report.json").read_text())
    assert report["quantize"] == "int8" and set(report["metrics"]) == {"torch", "onnxruntime"}
    assert 0 <= report["metrics"]["onnxruntime"]["accuracy"] <= 1
    ftlit("predict", *TASKS["classification"], "--model.model_name_or_path", str(tmp_path / "int8"),
          "--model.engine", "onnxruntime", "--data.predict_file", str(predict),
          "--output_dir", str(tmp_path / "p"))  # fmt: skip
    assert len(records(tmp_path / "p")) == len(predict.read_text().splitlines())


def refused(args: list[str], capsys) -> str:
    """The one-line message of a command that must stop with exit code 2."""
    with pytest.raises(SystemExit) as stop:
        main([*args, *QUIET])
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_onnxruntime_needs_an_onnx_export_and_cannot_train(trained_runs, tmp_path, capsys):
    run, predict = trained_runs["classification"]
    classify = [*TASKS["classification"], "--model.model_name_or_path", str(run / "export"), "--model.engine",
                "onnxruntime", "--output_dir", str(tmp_path)]  # fmt: skip
    message = refused(["predict", *classify, "--data.predict_file", str(predict)], capsys)
    assert "has no model.onnx. Make one with `ftlit export" in message
    message = refused(["fit", *classify, "--data.train_file", str(predict), "--data.validation_file", str(predict),
                       "--trainer.default_root_dir", str(tmp_path / "fit"), "--output_dir", str(tmp_path / "fit")],
                      capsys)  # fmt: skip
    assert "fit trains with torch" in message
    assert not (tmp_path / "fit").exists() or not any((tmp_path / "fit").rglob("*.*"))  # refused before any writing


def test_export_refuses_a_folder_that_is_no_export_and_an_output_it_would_destroy(trained_runs, tmp_path, capsys):
    assert "holds no Hugging Face export" in refused(["export", str(tmp_path)], capsys)
    run, _ = trained_runs["classification"]
    for output in (run, run.parent):  # replacing either would delete the run
        assert "holds the export" in refused(["export", str(run), "--output", str(output)], capsys)
    (tmp_path / "notes.txt").write_text("mine")
    assert "not an ONNX export of ftlit" in refused(["export", str(run), "--output", str(tmp_path)], capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (run / "export" / "config.json").is_file()


def test_export_refuses_truncated_weights_and_an_unwritable_output_before_any_work(trained_runs, tmp_path, capsys):
    run, _ = trained_runs["classification"]
    copy = tmp_path / "run"
    shutil.copytree(run / "export", copy / "export")
    shutil.copy(run / "results.json", copy / "results.json")
    weights = copy / "export" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut off while being copied
    line = refused(["export", str(copy)], capsys)
    assert line.startswith(f"ftlit: error: The weights file '{weights}' is corrupt or incomplete (1,000 bytes")
    with tmpfs(tmp_path / "read-only", "ro,size=1m") as read_only:
        line = refused(["export", str(run), "--output", str(read_only / "onnx")], capsys)
    assert line == (f"ftlit: error: --output {read_only / 'onnx'}: its folder {read_only} cannot be written (Read-only "
                    "file system): give a folder this run can write to.")  # fmt: skip
    assert sorted(path.name for path in copy.iterdir()) == ["export", "results.json"]  # nothing left behind
