"""Runs survive interruption and nothing is lost: signals, resume, broken checkpoints, NaN losses, output safety."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import datasets
import pytest
import torch

from conftest import sentiment_rows, write_jsonl
from ftlit.cli import main
from ftlit.errors import FtlitError, TrainingInterrupted
from ftlit.training.checkpoints import AtomicCheckpointIO, verify_checkpoint
from ftlit.training.interrupts import stop_on_interrupt

OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def fit_args(model: str, train: Path, dev: Path, root: Path, *extra: str) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
        "--model.learning_rate", "1e-3", "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]",
        "--data.max_length", "32", "--data.batch_size", "8", "--data.train_file", str(train),
        "--data.validation_file", str(dev), "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


def final_state(root: Path) -> dict:
    (last,) = root.glob("lightning_logs/version_*/checkpoints/last.ckpt")
    return torch.load(last, weights_only=True)


@pytest.mark.slow  # ftlit processes, 240 steps each
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_resumes_to_the_same_weights(stop, tiny_bert, sentiment_files, tmp_path):
    train, dev = sentiment_files["train"], sentiment_files["dev"]
    # dropout is on (the tiny BERT has the default 0.1), so resuming must also restore the random generators
    args = fit_args(tiny_bert, train, dev, tmp_path / "killed", "--trainer.max_epochs", "4",
                    "--model.checkpoint_every_n_steps", "5")  # fmt: skip
    run = subprocess.Popen(["ftlit", *args], stderr=subprocess.PIPE, text=True, env=OFFLINE)
    checkpoints = tmp_path / "killed/lightning_logs/version_0/checkpoints"
    while not (checkpoints / "last.ckpt").exists() and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 128 + stop, stderr[-2000:]
    assert f"ftlit: stopped: Interrupted by {stop.name} at step" in stderr
    assert f"saved a resumable checkpoint to {checkpoints / 'last.ckpt'}" in stderr
    interrupted_at = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert 0 < interrupted_at["global_step"] < 4 * 60  # mid-run (60 steps an epoch)
    assert not list(checkpoints.glob("*.partial"))

    resumed = subprocess.run(["ftlit", *args, "--ckpt_path", "last"], capture_output=True, text=True, env=OFFLINE)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming from {checkpoints / 'last.ckpt'}" in resumed.stdout
    assert not (tmp_path / "killed/lightning_logs/version_1").exists()  # the same run folder goes on

    main(fit_args(tiny_bert, train, dev, tmp_path / "whole", "--trainer.max_epochs", "4"))
    expected, got = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert got["global_step"] == expected["global_step"] == 4 * 60
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    for name, weights in expected["state_dict"].items():
        assert torch.equal(weights, got["state_dict"][name]), name  # bitwise
    killed, whole = (json.loads((tmp_path / f"{run}/lightning_logs/version_0/results.json").read_text())
                     for run in ("killed", "whole"))  # fmt: skip
    assert killed["metrics"] == whole["metrics"]
    # the totals cover the whole run, not only its resumed part
    assert killed["train"]["train_time_s"] > interrupted_at["callbacks"]["TrainingThroughput"]["train_time_s"] > 0
    counted = [state["callbacks"]["TrainingThroughput"]["total"]["samples"] for state in (got, expected)]
    assert 0.8 * counted[1] < counted[0] <= counted[1]  # (each part leaves its first steps out, as warm-up)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_resuming_without_an_earlier_run_starts_a_new_one(tiny_bert, sentiment_files, tmp_path, capsys):
    main(fit_args(tiny_bert, sentiment_files["dev"], sentiment_files["dev"], tmp_path, "--trainer.max_steps", "2",
                  "--ckpt_path", "last"))  # fmt: skip
    assert "no last.ckpt of this run under" in capsys.readouterr().out
    assert final_state(tmp_path)["global_step"] == 2


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_loss_becoming_infinite_stops_the_run_naming_the_step_and_the_last_good_checkpoint(
    tiny_bert, tmp_path, capsys
):
    rows = [{"sentence1": r["text"], "sentence2": "x", "label": i % 5} for i, r in enumerate(sentiment_rows(64, 3))]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    args = fit_args(tiny_bert, train, train, tmp_path, "--data.task", "stsb", "--data.text_fields", "null",
                    "--model.checkpoint_every_n_steps", "1", "--output_dir", str(tmp_path / "out"),
                    "--trainer.callbacks+=conftest.CorruptScore")  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("ftlit: error: The training loss became inf at step ")
    step = int(message.split("at step ")[1].split()[0])
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    assert f"The last good checkpoint is {last}" in message
    assert torch.load(last, weights_only=True)["global_step"] == step - 1  # saved before the broken step
    assert not (tmp_path / "out").exists()


def _damaged_copies(source: Path, folder: Path) -> dict[str, Path]:
    data = source.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    middle = len(data) // 2
    flipped[middle : middle + 64] = bytes(b ^ 0xFF for b in flipped[middle : middle + 64])
    (folder / "flipped.ckpt").write_bytes(bytes(flipped))
    return {"truncated": folder / "truncated.ckpt", "flipped": folder / "flipped.ckpt"}


def test_a_damaged_checkpoint_is_refused_before_loading(tmp_path):
    torch.save({"state_dict": {"w": torch.randn(256, 64)}}, tmp_path / "good.ckpt")
    verify_checkpoint(tmp_path / "good.ckpt")
    for damaged in _damaged_copies(tmp_path / "good.ckpt", tmp_path).values():
        # torch.load itself would load the flipped file, with silently wrong weights
        with pytest.raises(FtlitError, match=rf"Checkpoint '.*{damaged.name}' is corrupt or incomplete.*good\.ckpt"):
            verify_checkpoint(damaged)
    with pytest.raises(FtlitError, match="Checkpoint not found"):
        verify_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.slow  # starts an ftlit process
def test_the_cli_refuses_a_damaged_checkpoint_with_one_line(tiny_bert, sentiment_files, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"state_dict": {}}, folder / "good.ckpt")
    damaged = _damaged_copies(folder / "good.ckpt", folder)["truncated"]
    args = fit_args(tiny_bert, sentiment_files["train"], sentiment_files["dev"], tmp_path)
    result = subprocess.run(["ftlit", "validate", *args[1:], "--ckpt_path", str(damaged)], capture_output=True,
                            text=True, env=OFFLINE)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"ftlit: error: Checkpoint '{damaged}' is corrupt")


def test_checkpoints_are_replaced_atomically(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)
    with pytest.raises(Exception, match="pickle"):
        io.save_checkpoint({"step": 2, "unsaveable": lambda: None}, path)  # fails part-way through writing
    assert io.load_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_outputs_of_an_earlier_run_are_kept_unless_overwrite(tiny_bert, sentiment_files, tmp_path, capsys):
    out = tmp_path / "out"
    args = fit_args(tiny_bert, sentiment_files["dev"], sentiment_files["dev"], tmp_path, "--trainer.max_steps", "2",
                    "--output_dir", str(out))  # fmt: skip
    main(args)
    before = (out / "export/model.safetensors").read_bytes()
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    assert f"{out} already holds export, results.json of an earlier run" in capsys.readouterr().err
    assert (out / "export/model.safetensors").read_bytes() == before
    main([*args, "--overwrite", "true", "--model.learning_rate", "1e-1"])
    assert (out / "export/model.safetensors").read_bytes() != before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("export")) == ["export"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is refused on CPU only")
def test_fp16_on_cpu_is_refused(tiny_bert, sentiment_files, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        main(fit_args(tiny_bert, sentiment_files["dev"], sentiment_files["dev"], tmp_path, "--trainer.precision",
                      "16-mixed", "--trainer.max_steps", "1"))  # fmt: skip
    assert refused.value.code == 2
    assert "--trainer.precision 16-mixed (float16) needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("linked", ["as its cause", "as its context"])
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_ctrl_c_while_datasets_parses_a_file_stops_the_run_instead_of_blaming_the_file(
    tiny_bert, sentiment_files, tmp_path, monkeypatch, capsys, linked
):
    def interrupted_while_parsing(*args, **kwargs):  # datasets wraps what its generator raised, as it does
        try:
            stop_on_interrupt(signal.SIGINT, None)
        except TrainingInterrupted as err:
            wrapped = datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset")
            if linked == "as its cause":
                raise wrapped from err
            raise wrapped  # noqa: B904 (the interrupt is linked as __context__ only)

    monkeypatch.setattr(datasets, "load_dataset", interrupted_while_parsing)
    with pytest.raises(SystemExit) as stopped:
        main(fit_args(tiny_bert, sentiment_files["train"], sentiment_files["dev"], tmp_path / "runs"))
    assert stopped.value.code == 130  # not 2, the exit of a file that could not be read
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ftlit: stopped: Interrupted by SIGINT: this command wrote nothing; run the same command again."
    )


@pytest.mark.slow  # an ftlit process reading 60,000 rows
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_data_loads_exits_128_plus_the_signal_and_leaves_nothing(stop, tiny_bert, tmp_path):
    # seconds of loading and tokenising: rows of a seed never used before, so no cache of an earlier run helps
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(60_000, seed=time.time_ns()))
    args = fit_args(tiny_bert, train, train, tmp_path / "runs", "--trainer.max_epochs", "1")
    run = subprocess.Popen(["ftlit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           env=OFFLINE)  # fmt: skip
    version = tmp_path / "runs/lightning_logs/version_0"
    while not version.exists() and run.poll() is None:  # made (and locked) once the run is set up; data comes next
        time.sleep(0.01)
    time.sleep(0.5)
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 128 + stop, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (
        f"ftlit: stopped: Interrupted by {stop.name}: this command wrote nothing; run the same command again."
    )
    assert "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()  # no empty log folders left behind
