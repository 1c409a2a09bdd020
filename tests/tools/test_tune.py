"""ftlit tune: Optuna studies of full ftlit runs over a config's search space, in a real SQLite storage."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.tools.search_space import Parameter, parse_space
from ftlit.tools.tune_settings import split_tune_options
from ftlit.tools.tuning import default_direction, rdb_storage


# ------------------------------------------------------------------------------------------------- the space
def test_ranges_and_choices_are_read_with_their_types():
    space = parse_space({
        "model.learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
        "trainer.max_epochs": {"low": 1, "high": 4},
        "model.warmup_ratio": {"low": 0, "high": 0.2, "step": 0.05},
        "data.batch_size": [16, 32],
        "model.dropout": {"low": 0, "high": 1, "type": "float"},
    })  # fmt: skip
    assert space == [
        Parameter("model.learning_rate", "float", low=1e-5, high=1e-3, log=True),
        Parameter("trainer.max_epochs", "int", low=1, high=4),
        Parameter("model.warmup_ratio", "float", low=0, high=0.2, step=0.05),
        Parameter("data.batch_size", "categorical", choices=(16, 32)),
        Parameter("model.dropout", "float", low=0, high=1),
    ]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    values = {parameter.key: parameter.suggest(trial) for parameter in space}
    assert isinstance(values["trainer.max_epochs"], int) and 1 <= values["trainer.max_epochs"] <= 4
    assert 1e-5 <= values["model.learning_rate"] <= 1e-3 and values["data.batch_size"] in (16, 32)
    assert round(values["model.warmup_ratio"] / 0.05, 6).is_integer()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "tune.space must map settings"),
        ({"learning_rate": [1]}, "model.NAME, data.NAME or trainer.NAME"),
        ({"model.learning_rate": {"low": 1e-3, "high": 1e-3}}, "the range is empty"),
        ({"model.learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}, "must start above 0"),
        ({"model.learning_rate": {"low": 1e-5}}, "needs both low and high"),
        ({"model.learning_rate": {"low": "small", "high": 1e-3}}, "low must be a number"),
        ({"model.learning_rate": {"low": 1e-5, "high": 1e-3, "scale": "log"}}, "unknown field(s) scale"),
        ({"data.batch_size": []}, "choices must be a non-empty list"),
        ({"trainer.max_epochs": {"low": 1, "high": 3, "step": 5}}, "step 5 must be above 0"),
        ({"trainer.max_epochs": "1-3"}, "give a range"),
        ({"trainer.max_epochs": {"low": 1, "high": 4, "step": 0.5}}, "step must be a whole number"),
    ],
)
def test_unusable_spaces_are_refused_with_the_setting_named(space, message):
    with pytest.raises(FtlitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_space(space)


@pytest.mark.parametrize(
    ("metric", "main_metric", "direction"),
    [(None, None, "maximize"), (None, "mse", "minimize"), ("loss", None, "minimize"), ("pearson", "mse", "maximize"),
     ("hamming_loss", None, "minimize"), ("f1", None, "maximize")],
)  # fmt: skip
def test_a_study_minimises_a_metric_where_lower_is_better_unless_told(metric, main_metric, direction):
    fit_config = {"model": {"class_path": "ftlit.SequenceClassificationModule",
                            "init_args": {"main_metric": main_metric}}}  # fmt: skip
    assert default_direction(metric, fit_config) == direction


def test_tune_options_come_apart_from_the_fit_options():
    words = ["--tune.n_trials", "3", "--data.batch_size", "8", "--tune.seed=1", "--trainer.max_epochs", "2"]
    assert split_tune_options(words) == ({"n_trials": "3", "seed": "1"},
                                         ["--data.batch_size", "8", "--trainer.max_epochs", "2"])  # fmt: skip
    for words in (["--tune.storage"], ["--tune.study_name", "--trainer.max_epochs", "1"]):
        with pytest.raises(FtlitError, match=r"--tune\.\w+ needs a value"):
            split_tune_options(words)


# ------------------------------------------------------------------------------------------------- studies
@pytest.fixture
def tune_config(tiny_bert, sentiment_files, tmp_path) -> Path:
    """A classification config on the generated sentiment data: 1e-8 learns nothing, 3e-3 learns."""
    config = {
        "seed_everything": 42,
        "trainer": {"max_epochs": 3, "enable_progress_bar": False},
        "model": {"class_path": "ftlit.SequenceClassificationModule", "init_args": {"model_name_or_path": tiny_bert}},
        "data": {"class_path": "ftlit.ClassificationDataModule",
                 "init_args": {"train_file": str(sentiment_files["train"]), "text_fields": ["text"], "max_length": 32,
                               "validation_file": str(sentiment_files["dev"]), "batch_size": 16}},
        "tune": {"space": {"model.learning_rate": [1.0e-8, 3.0e-3]}, "output_dir": str(tmp_path / "study"),
                 "seed": 0},
    }  # fmt: skip
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


SHORT_TRIALS = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]  # trials of 2 steps


def study_of(folder: Path, name: str = "tune") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}")


@pytest.mark.slow  # four runs of 3 epochs
def test_a_study_finds_the_learning_rate_that_learns_and_its_best_yaml_reproduces_it(tune_config, tmp_path, capsys):
    main(["tune", "--config", str(tune_config), "--tune.n_trials", "3", "--tune.enqueue",
          "[{model.learning_rate: 1.0e-8}, {model.learning_rate: 3.0e-3}]"])  # fmt: skip
    folder = tmp_path / "study"
    trials = study_of(folder).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    scores = {t.params["model.learning_rate"]: t.value for t in trials}
    assert scores[3.0e-3] > scores[1.0e-8] + 0.1  # (accuracy, the task's main metric)
    best = max(trials, key=lambda t: t.value)
    assert best.params == {"model.learning_rate": 3.0e-3}
    for trial in trials:  # each trial a full run in its own folder, its score reported after each epoch
        results = json.loads((folder / f"trial_{trial.number}/results.json").read_text())
        assert results["metrics"]["accuracy"] == pytest.approx(trial.value)
        assert sorted(trial.intermediate_values) == [0, 1, 2]
    printed = capsys.readouterr().out
    assert "| trial | state | accuracy | model.learning_rate | time_s |" in printed
    assert (folder / "trials.md").is_file() and (folder / "history.png").is_file()
    assert (folder / "importances.png").is_file()

    best_yaml = yaml.safe_load((folder / "best.yaml").read_text())
    assert best_yaml["model"]["init_args"]["learning_rate"] == 3.0e-3 and "tune" not in best_yaml
    main(["fit", "--config", str(folder / "best.yaml"), "--output_dir", str(tmp_path / "again")])
    again = json.loads((tmp_path / "again/results.json").read_text())
    assert again["metrics"]["accuracy"] == pytest.approx(best.value, abs=1e-6)


@pytest.mark.slow  # needs the first trial to learn in its first epoch
def test_a_trial_falling_behind_is_pruned_and_reported_so(tune_config, tmp_path, capsys):
    main(["tune", "--config", str(tune_config), "--tune.n_trials", "2", "--tune.pruner",
          "{n_startup_trials: 1, n_warmup_steps: 0}", "--tune.enqueue",
          "[{model.learning_rate: 3.0e-3}, {model.learning_rate: 1.0e-8}]"])  # fmt: skip
    states = [t.state for t in study_of(tmp_path / "study").trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert "| 1 | pruned |" in capsys.readouterr().out


@pytest.mark.slow  # ftlit processes, runs of 3 epochs
def test_a_killed_study_resumes_with_the_same_command_without_repeating_a_trial(tune_config, tmp_path):
    command = [sys.executable, "-m", "ftlit", "tune", "--config", str(tune_config), "--tune.n_trials", "3"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, second = tmp_path / "study/trial_0/results.json", tmp_path / "study/trial_1"
    deadline = time.monotonic() + 240
    while not second.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)  # the second trial has begun
    worker.wait()
    assert first.exists()
    finished_before = [t.number for t in study_of(tmp_path / "study").trials if t.state.is_finished()]
    assert finished_before == [0]
    written = first.stat().st_mtime_ns

    subprocess.run(command, env=env, check=True, capture_output=True)
    trials = study_of(tmp_path / "study").trials
    complete = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3 and complete[0] == 0
    assert first.stat().st_mtime_ns == written  # trial 0 was not run again
    # the killed one counted while it might still finish, until its heartbeat went stale and it was marked failed
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert len(trials) == 4


@pytest.mark.slow  # ftlit processes, runs of 3 epochs
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_study_stops_at_once_and_the_same_command_continues_it(tune_config, tmp_path, signum):
    command = [sys.executable, "-m", "ftlit", "tune", "--config", str(tune_config), "--tune.n_trials", "2"]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (tmp_path / "study/trial_0").exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.send_signal(signum)  # inside the first trial
    _, error = worker.communicate(timeout=300)
    assert worker.returncode == 128 + signum
    assert "Traceback" not in error
    assert error.strip().splitlines()[-1] == (
        f"ftlit: stopped: Interrupted by {signum.name}: the study stopped; trial 0, interrupted, is marked failed and "
        f"does not count. 0 of 2 trials are finished, kept in sqlite:///{tmp_path / 'study/study.db'} (their runs in "
        f"{tmp_path / 'study'}). Run the same command to go on."
    )
    assert [t.state for t in study_of(tmp_path / "study").trials] == [optuna.trial.TrialState.FAIL]

    subprocess.run(command, check=True, capture_output=True)
    states = [t.state for t in study_of(tmp_path / "study").trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tune.space", "{model.no_such_setting: [1, 2]}"], "no_such_setting"),
        (["--tune.space", "{model.learning_rate: {low: 1.0, high: 0.1}}"], "the range is empty"),
        (["--tune.storage", "postgresql://nobody@127.0.0.1:1/none"], "Cannot open the study storage"),
        (["--tune.n_trials", "0"], "tune.n_trials must be a whole number of at least 1"),
        (["--tune.colour", "blue"], "Unknown tune setting(s): colour"),
        (["--tune.space", "{model.learning_rate: [1"], "is not valid YAML"),
        (["--trainer.devices", "2", "--trainer.accelerator", "cpu"], "runs each trial on one device"),
    ],
)
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_bad_studies_are_refused_before_any_trial(tune_config, tmp_path, options, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["tune", "--config", str(tune_config), *options])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "study").glob("trial_*"))


def test_a_config_without_a_search_space_is_refused(tiny_bert, tmp_path, capsys):
    config = tmp_path / "plain.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": {"model_name_or_path": tiny_bert}}}))
    with pytest.raises(SystemExit):
        main(["tune", "--config", str(config)])
    assert "has no tune: section" in capsys.readouterr().err


@pytest.mark.slow  # two ftlit processes
@pytest.mark.parametrize("n_trials", [1, 3])
def test_two_workers_on_one_storage_share_the_study_and_run_exactly_n_trials(tune_config, tmp_path, n_trials):
    command = [sys.executable, "-m", "ftlit", "tune", "--config", str(tune_config), "--tune.n_trials", str(n_trials),
               *SHORT_TRIALS]  # fmt: skip
    workers = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr.read().decode()[-2000:]
    trials = study_of(tmp_path / "study").trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == n_trials
    # a trial begun at the very moment the other worker completed the study ran nothing
    assert all(t.user_attrs.get("not_needed") for t in trials if t not in complete)
    assert all((tmp_path / f"study/trial_{t.number}/results.json").is_file() for t in complete)


def _open_storage(url: str) -> None:
    rdb_storage(url)


@pytest.mark.slow  # 30 processes
def test_workers_starting_together_on_a_new_database_all_open_it(tmp_path):
    # without retrying, about a third of these rounds lost a worker to the schema-creation race
    context = multiprocessing.get_context("fork")
    for round_ in range(10):
        url = f"sqlite:///{tmp_path / f'study_{round_}.db'}"
        workers = [context.Process(target=_open_storage, args=(url,)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0, 0, 0], f"round {round_}"


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_study_is_not_continued_with_another_search_space(tune_config, capsys):
    main(["tune", "--config", str(tune_config), "--tune.n_trials", "1", *SHORT_TRIALS])
    with pytest.raises(SystemExit):
        main(["tune", "--config", str(tune_config), "--tune.n_trials", "2", "--tune.space",
              "{model.learning_rate: [1.0e-3, 3.0e-3]}"])  # fmt: skip
    assert "was started with another search space" in capsys.readouterr().err


@pytest.mark.slow  # four trials, three of them failing
def test_a_failed_trial_is_recorded_and_the_study_goes_on_until_three_fail_in_a_row(tune_config, tmp_path, capsys):
    # batch size 0 passes the parser but not ftlit's own check when the trial's run starts
    space = ["--tune.space", "{data.batch_size: [16, 0, -8, -16]}"]
    main(["tune", "--config", str(tune_config), "--tune.n_trials", "1", *space, *SHORT_TRIALS, "--tune.enqueue",
          "[{data.batch_size: 0}, {data.batch_size: 16}]"])  # fmt: skip
    states = [t.state for t in study_of(tmp_path / "study").trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]

    with pytest.raises(SystemExit) as stopped:
        main(["tune", "--config", str(tune_config), "--tune.n_trials", "5", *space, "--tune.study_name", "failing",
              "--tune.enqueue", "[{data.batch_size: 0}, {data.batch_size: -8}, {data.batch_size: -16}]"])  # fmt: skip
    assert stopped.value.code == 2
    assert "3 trials in a row failed, the last one with: --data.batch_size" in capsys.readouterr().err
    failing = study_of(tmp_path / "study", "failing").trials
    assert [t.state for t in failing] == [optuna.trial.TrialState.FAIL] * 3
    assert (tmp_path / "study/trials.md").is_file()  # the report, also for a stopped study
