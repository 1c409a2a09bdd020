"""A new task head is announced once, for what becomes of it: trained by fit, restored by a checkpoint (nothing
said), or refused by an evaluation (never used untrained). transformers' own load report, a table of "MISSING"
weights, is not printed."""

import logging
import warnings

import pytest

from conftest import TASKS, Collected
from ftlit.cli import main
from ftlit.registry import tasks

CLASSIFICATION = tasks()["classification"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return CLASSIFICATION.example_files(tmp_path_factory.mktemp("data"))


def run(command: str, model: str, files: dict, folder, *extra: str) -> None:
    main([command, *TASKS["classification"], "--model.model_name_or_path", model, "--data.train_file",
          str(files["train"]), "--data.validation_file", str(files["validation"]), "--trainer.max_steps", "2",
          "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(folder), "--output_dir",
          str(folder / command), "--trainer.enable_progress_bar", "false", *extra])  # fmt: skip


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_fit_announces_the_new_head_it_trains_without_transformers_load_report(tiny_bert, files, tmp_path, capfd):
    lightning, collected = logging.getLogger("lightning.pytorch"), Collected()  # (Lightning's messages stop there)
    lightning.addHandler(collected)
    try:
        run("fit", tiny_bert, files, tmp_path)
    finally:
        lightning.removeHandler(collected)
    announced = "New weights, initialised randomly, that this run trains: classifier.bias, classifier.weight"
    assert collected.messages.count(announced) == 1
    printed = "".join(capfd.readouterr())
    assert "LOAD REPORT" not in printed and "MISSING" not in printed


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_an_evaluation_restored_from_a_checkpoint_says_nothing_of_new_weights(tiny_bert, files, tmp_path, capfd):
    run("fit", tiny_bert, files, tmp_path)
    checkpoint = next((tmp_path / "lightning_logs").rglob("last.ckpt"))
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        run("validate", tiny_bert, files, tmp_path, "--ckpt_path", str(checkpoint))
    said = "".join(capfd.readouterr())
    assert "untrained head" not in said and not [w for w in warned if "untrained head" in str(w.message)]
    assert "LOAD REPORT" not in said


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_an_evaluation_of_a_model_without_the_head_is_refused_as_untrained(tiny_bert, files, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        run("validate", tiny_bert, files, tmp_path)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and "lacks classifier.bias, classifier.weight: " in line and "untrained head" in line
    assert not (tmp_path / "validate" / "results.json").exists()
