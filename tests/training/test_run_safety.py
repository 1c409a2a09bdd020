"""What is known at a run's start is checked at its start, and two runs never mix: unwritable or full output
locations, one run per output folder, resuming only a run with the same settings, and a failed export that keeps
the training."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import tmpfs
from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.training.locks import LOCK_NAME, FolderLock
from ftlit.training.outputs import check_free_space


def fit_args(model: str, files: dict, root: Path, *extra: str) -> list[str]:
    return ["fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
            "--model.learning_rate", "1e-3", "--data", "ftlit.ClassificationDataModule", "--data.text_fields",
            "[text]", "--data.max_length", "32", "--data.train_file", str(files["train"]), "--data.validation_file",
            str(files["dev"]), "--trainer.default_root_dir", str(root), "--trainer.max_steps", "3",
            "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip


def refused(args: list[str], capsys) -> str:
    """The one ``ftlit: error:`` line of a run that must stop with exit code 2."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_an_output_dir_that_is_a_file_is_refused_before_any_work(tiny_bert, sentiment_files, tmp_path, capsys):
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    line = refused(fit_args(tiny_bert, sentiment_files, tmp_path / "logs", "--output_dir", str(taken)), capsys)
    assert line == f"ftlit: error: --output_dir {taken} is an existing file, not a folder: give another one."
    assert files_under(tmp_path) == [taken] and not (tmp_path / "logs").exists()


def test_a_read_only_output_location_is_refused_before_any_work(tiny_bert, sentiment_files, tmp_path, capsys):
    with tmpfs(tmp_path / "read-only", "ro,size=1m") as read_only:
        line = refused(fit_args(tiny_bert, sentiment_files, tmp_path, "--output_dir", str(read_only / "out")), capsys)
    assert line == (f"ftlit: error: --output_dir {read_only / 'out'} cannot be written (Read-only file system): give "
                    "a folder this run can write to.")  # fmt: skip
    assert not (tmp_path / "lightning_logs").exists()  # nothing trained, nothing left


def test_a_full_disk_is_refused_before_the_first_step(tiny_bert, sentiment_files, tmp_path, capsys):
    with tmpfs(tmp_path / "small", "size=1m") as small:  # the tiny model's weights alone take 4 MB
        line = refused(fit_args(tiny_bert, sentiment_files, tmp_path, "--output_dir", str(small)), capsys)
    assert line.startswith(f"ftlit: error: Not enough disk space: {small} will need about 3.9 MiB (checkpoints and "
                           "the export) and 1.0 MiB are free.")  # fmt: skip
    assert not list(tmp_path.rglob("*.ckpt"))  # no step trained


def test_a_disk_too_small_for_the_checkpoints_and_export_is_refused(tmp_path):
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    check_free_space({tmp_path: free // 2, tmp_path / "not-yet": 1})  # folders made later count on their disk
    with pytest.raises(FtlitError, match=r"Not enough disk space: .* will need about .* GiB .* are free"):
        check_free_space({tmp_path: free // 2, tmp_path / "checkpoints": free // 2 + 2**30})  # one disk: they add up


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_failed_export_keeps_the_checkpoint_and_says_how_to_export(tiny_bert, sentiment_files, tmp_path, capsys):
    # room for the weights (what the up-front check counts), not for the tokenizer files beside them: a disk that
    # fills up during training fails the same way
    with tmpfs(tmp_path / "out", "size=4100k") as out:
        line = refused(fit_args(tiny_bert, sentiment_files, tmp_path, "--output_dir", str(out)), capsys)
        assert line.startswith(f"ftlit: error: Could not write the export to {out / 'export'}: ")
        checkpoint = line.split("Training is saved in ")[1].split(". Make room")[0]
        assert Path(checkpoint).is_file() and "--ckpt_path last" in line
        assert list(out.iterdir()) == []  # no half export, no results
        subprocess.run(["mount", "-o", "remount,size=20m", str(out)], check=True)  # room made
        main([*fit_args(tiny_bert, sentiment_files, tmp_path, "--output_dir", str(out)), "--ckpt_path", "last"])
        assert (out / "export" / "config.json").is_file() and (out / "results.json").is_file()


def test_a_run_on_an_output_dir_another_run_holds_is_refused_before_any_work(tiny_bert, sentiment_files, tmp_path,
                                                                              capsys):  # fmt: skip
    out = tmp_path / "shared-output"
    out.mkdir()
    holder = subprocess.Popen(["sleep", "300"])  # a live process, named in the lock as a running fit names itself
    try:
        (out / LOCK_NAME).write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid, "started": "now"}))
        line = refused(fit_args(tiny_bert, sentiment_files, tmp_path / "b", "--output_dir", str(out)), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert line.startswith(f"ftlit: error: {out} is in use by another ftlit run (pid {holder.pid} on ")
    assert not (tmp_path / "b").exists()  # refused before any work
    assert [path.name for path in out.iterdir()] == [LOCK_NAME]  # and the holder's lock is left alone


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_lock_left_by_a_dead_run_is_taken_over(tiny_bert, sentiment_files, tmp_path, capsys):
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names no running process now
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "started": "earlier"}))
    main(fit_args(tiny_bert, sentiment_files, tmp_path, "--output_dir", str(out)))
    assert (out / "results.json").is_file() and not (out / LOCK_NAME).exists()


def test_a_lock_held_by_a_live_process_refuses_and_a_folder_it_made_is_removed(tmp_path):
    holder = FolderLock(tmp_path / "runs" / "out")
    holder.acquire()
    with pytest.raises(FtlitError, match=rf"{tmp_path / 'runs' / 'out'} is in use by another ftlit run \(pid "
                                         rf"{os.getpid()} on "):  # fmt: skip
        FolderLock(tmp_path / "runs" / "out").acquire()
    holder.release()
    assert not (tmp_path / "runs").exists()  # both folders were made for the lock, and nothing else is in them


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_resuming_last_picks_this_runs_checkpoint_not_a_newer_different_run(tiny_bert, sentiment_files, tmp_path,
                                                                            capsys):  # fmt: skip
    mine = fit_args(tiny_bert, sentiment_files, tmp_path)
    main(mine)  # version_0: this run
    main([*fit_args(tiny_bert, sentiment_files, tmp_path), "--model.learning_rate", "5e-3"])  # version_1, newer
    capsys.readouterr()
    main([*mine, "--trainer.max_steps", "5", "--ckpt_path", "last", "--overwrite", "true"])  # two steps more
    printed = capsys.readouterr().out
    assert "not resuming" in printed and "version_1" in printed and "learning_rate: 0.005 → 0.001" in printed
    assert f"Resuming from {tmp_path / 'lightning_logs/version_0/checkpoints/last.ckpt'}" in printed
    assert not (tmp_path / "lightning_logs" / "version_2").exists()
    results = json.loads((tmp_path / "lightning_logs/version_0/results.json").read_text())
    assert results["config"]["trainer"]["max_steps"] == 5
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 5


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_resuming_a_checkpoint_of_a_run_with_other_settings_is_refused_with_the_differences(
    tiny_bert, sentiment_files, tmp_path, capsys
):
    main(fit_args(tiny_bert, sentiment_files, tmp_path))
    checkpoint = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    line = refused([*fit_args(tiny_bert, sentiment_files, tmp_path), "--data.max_length", "16", "--ckpt_path",
                    str(checkpoint)], capsys)  # fmt: skip
    assert line == (f"ftlit: error: --ckpt_path {checkpoint} belongs to a run with other settings "
                    "(data.init_args.max_length: 32 → 16). Resume it with its own settings (its config.yaml), or "
                    "start a new run without --ckpt_path.")  # fmt: skip
    assert sorted(path.name for path in (tmp_path / "lightning_logs").iterdir()) == ["version_0"]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_checkpoint_of_another_task_is_refused_naming_both(tiny_bert, sentiment_files, squad_files, tmp_path, capsys):
    main(["fit", "--model", "ftlit.QuestionAnsweringModule", "--model.model_name_or_path", tiny_bert, "--data",
          "ftlit.SquadDataModule", "--data.dataset", "null", "--data.train_file", str(squad_files["train"]),
          "--data.max_length", "64", "--data.doc_stride", "16", "--data.max_query_length", "16",
          "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", "--trainer.default_root_dir",
          str(tmp_path / "qa"), "--trainer.enable_progress_bar", "false"])  # fmt: skip
    (checkpoint,) = (tmp_path / "qa").glob("lightning_logs/version_0/checkpoints/last.ckpt")
    validate = ["validate", *fit_args(tiny_bert, sentiment_files, tmp_path / "classify")[1:], "--ckpt_path",
                str(checkpoint)]  # fmt: skip
    line = refused(validate, capsys)
    assert line == (f"ftlit: error: --ckpt_path {checkpoint} is a checkpoint of QuestionAnsweringModule, but the "
                    "config trains SequenceClassificationModule: give a checkpoint of this task, or the config it "
                    "was trained with.")  # fmt: skip
    assert not (tmp_path / "classify").exists()
