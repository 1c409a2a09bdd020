"""ftlit tune checks before it works: exact trial counts over workers, its storage and metric before the first
trial, and a refusal that leaves nothing behind."""

import datetime
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.tools.study_storage import NewPaths, check_storage, sqlite_file
from ftlit.tools.trial_count import verdict

RUNNING, COMPLETE, PRUNED, FAIL = TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL


def trials(*states: TrialState) -> list[optuna.trial.FrozenTrial]:
    """Frozen trials numbered in order, in ``states``."""
    made = []
    for number, state in enumerate(states):
        trial = create_trial(
            state=state,
            value=0.5 if state == COMPLETE else None,
            params={"x": 0.1},
            distributions={"x": FloatDistribution(0, 1)},
        )
        trial.number = number
        if state == RUNNING:
            trial.datetime_complete = None
            trial.datetime_start = datetime.datetime.now()
        made.append(trial)
    return made


@pytest.mark.parametrize(
    ("states", "n_trials", "number", "expected"),
    [
        ((), 2, None, "run"),
        ((COMPLETE, PRUNED), 2, None, "done"),  # pruned trials count as finished
        ((COMPLETE, FAIL, FAIL), 2, None, "run"),  # failed ones do not
        ((COMPLETE, RUNNING), 2, None, "wait"),  # another worker's trial may finish the study
        ((COMPLETE, RUNNING), 3, None, "run"),
        ((RUNNING,), 1, 0, "run"),  # the trial begun is not counted against itself
        ((RUNNING, RUNNING), 1, 1, "wait"),  # two workers began at once: the later one waits for the earlier
        ((RUNNING, RUNNING), 1, 0, "run"),  # … which runs
        ((COMPLETE, RUNNING), 1, 1, "done"),  # begun as the study was completed: not needed
        ((RUNNING, RUNNING, RUNNING), 2, 1, "run"),  # a trial begun later does not count ahead of it
        ((COMPLETE, COMPLETE, COMPLETE), 2, None, "done"),
    ],
)
def test_a_trial_runs_only_while_the_finished_and_running_ones_ahead_are_fewer_than_n_trials(
    states, n_trials, number, expected
):
    assert verdict(trials(*states), n_trials, number) == expected


def test_the_sqlite_file_of_a_storage_url():
    assert sqlite_file("sqlite:////data/tune/study.db") == Path("/data/tune/study.db")
    assert sqlite_file("sqlite:///study.db") == Path("study.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgresql://user@host/db") is None


def test_a_storage_whose_folder_cannot_be_made_or_is_a_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FtlitError, match=r"--tune.storage's folder .* is an existing file"):
        check_storage(f"sqlite:///{tmp_path / 'file/below/study.db'}")
    with pytest.raises(FtlitError, match="is a folder, not a database file"):
        check_storage(f"sqlite:///{tmp_path}")
    check_storage(f"sqlite:///{tmp_path / 'new/deeper/study.db'}")
    assert not (tmp_path / "new").exists()  # checked, not made


def test_only_the_paths_a_refused_command_made_are_removed(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    new = NewPaths([kept, tmp_path / "new", tmp_path / "new/study.db", tmp_path / "other"])
    (tmp_path / "new").mkdir()
    (tmp_path / "new/study.db").write_text("db")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/someone_elses.txt").write_text("x")  # put there meanwhile: kept
    new.remove()
    assert kept.is_dir() and not (tmp_path / "new").exists() and (tmp_path / "other/someone_elses.txt").exists()


@pytest.fixture
def tune_config(tiny_bert, sentiment_files, tmp_path) -> Path:
    config = {
        "trainer": {"max_epochs": 1, "limit_train_batches": 2, "enable_progress_bar": False},
        "model": {"class_path": "ftlit.SequenceClassificationModule", "init_args": {"model_name_or_path": tiny_bert}},
        "data": {"class_path": "ftlit.ClassificationDataModule",
                 "init_args": {"train_file": str(sentiment_files["train"]), "text_fields": ["text"], "max_length": 32,
                               "validation_file": str(sentiment_files["dev"]), "batch_size": 16}},
        "tune": {"space": {"model.learning_rate": [1.0e-4, 3.0e-3]}, "output_dir": str(tmp_path / "study")},
    }  # fmt: skip
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_storage_folder_that_cannot_be_made_is_refused_leaving_nothing(tune_config, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit) as stopped:
        main(["tune", "--config", str(tune_config), "--tune.storage", f"sqlite:///{tmp_path / 'a_file/x/study.db'}"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("ftlit: error: --tune.storage's folder") and "Traceback" not in error
    assert not (tmp_path / "study").exists()


@pytest.mark.slow  # the first trial loads its data
def test_a_metric_the_task_does_not_report_is_refused_before_the_first_step_leaving_nothing(
    tune_config, tmp_path, capsys
):
    with pytest.raises(SystemExit) as stopped:
        main(["tune", "--config", str(tune_config), "--tune.metric", "bleu"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "ftlit: error: --tune.metric bleu: not a metric of this task on this data, which reports accuracy" in error
    assert "Traceback" not in error
    assert not (tmp_path / "study").exists()  # no output folder, no database, no trial folder


@pytest.mark.slow  # a whole CLI run: the parser checks the trials' options
def test_a_refusal_after_the_fit_options_are_parsed_leaves_no_folder(tune_config, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["tune", "--config", str(tune_config), "--trainer.devices", "2", "--trainer.accelerator", "cpu"])
    assert stopped.value.code == 2
    assert "runs each trial on one device" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
