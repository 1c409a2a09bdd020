"""``ftlit tune --config X.yaml [--tune.n_trials 20] [--tune.storage URL] [--tune.study_name NAME]
[--tune.timeout SECONDS] [--tune.output_dir DIR] [--tune.metric NAME] [--tune.direction maximize|minimize]
[--tune.pruner median|none] [fit options…]``: hyperparameter search with Optuna over the config's ``tune:`` section.

Each trial is a full ``ftlit fit`` in ``<output_dir>/trial_<N>`` with its own results.json; Optuna's median pruner
stops a trial whose validation score falls behind (optuna-integration's Lightning callback). The study lives in an
Optuna storage — SQLite in the output folder by default, so that a killed study resumes with the same command;
several ``ftlit tune`` processes pointed at one database URL share the study (Optuna's distributed mode). At the end:
trials.md (every trial's parameters, score, state and time), best.yaml (a complete config: ``ftlit fit --config
best.yaml``), history.png and importances.png.
"""

import argparse
import contextlib
import io
import json
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import torch
import yaml
from lightning import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from ftlit.errors import FtlitError, TrainingInterrupted
from ftlit.tools.study_storage import NewPaths, check_storage, remove_empty_folders, sqlite_file
from ftlit.tools.trial_count import FINISHED, NotNeeded, TrialBudget, await_verdict
from ftlit.tools.tune_settings import TuneSettings, build_pruner, settings_from, split_tune_options
from ftlit.tools.tuning_report import report
from ftlit.training.interrupts import stop_if_received
from ftlit.training.locks import release_held
from ftlit.training.module import LOWER_IS_BETTER
from ftlit.training.outputs import check_writable

# runs an ftlit command line with extra Trainer callbacks (the CLI's build_cli: tools sit below the CLI)
FitRunner = Callable[[list[str], Sequence[Callback]], object]
# a killed worker's trial is marked failed once its heartbeat is this old (RDB storages), so it never blocks the study
HEARTBEAT_S, GRACE_S = 30, 90
MAX_FAILED_IN_A_ROW = 3  # a failing trial (a loss gone NaN at a high learning rate) is a result; three are a problem


class TrialPruning(PyTorchLightningPruningCallback):
    """Optuna's Lightning pruning callback, on the task's own validation metric unless one is named."""

    def __init__(self, trial: optuna.Trial, monitor: str | None) -> None:
        super().__init__(trial, monitor or "")

    def on_fit_start(self, trainer, pl_module) -> None:
        # before the first step, once the data has told the task which metrics it reports
        named = self.monitor.removeprefix("val/")
        if named and named not in pl_module.metric_names:
            raise SettingRefused(
                f"--tune.metric {named}: not a metric of this task on this data, which reports "
                f"{', '.join(pl_module.metric_names)}."
            )
        self.monitor = self.monitor or f"val/{pl_module.monitor}"
        super().on_fit_start(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # not the best checkpoint's evaluation after training
            super().on_validation_end(trainer, pl_module)


class SettingRefused(FtlitError):
    """A tune setting refused once the first trial has loaded its data (a metric the task does not report): the
    study stops before the trial's first step, and nothing of it is kept."""


class TrialFailed(Exception):
    """A trial's run failed for a reason of its own values (a loss gone NaN, out of memory): Optuna records it as
    failed and the study goes on. Anything else stops the study."""


class StopAfterFailures:
    """Optuna callback: stop this worker once ``limit`` of its trials in a row have failed, keeping the reason."""

    def __init__(self, limit: int) -> None:
        self.limit, self.failed, self.reason = limit, 0, ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get("not_needed"):
            return
        self.failed = self.failed + 1 if trial.state == TrialState.FAIL else 0
        self.reason = trial.user_attrs.get("failure", "") if self.failed else ""
        if self.failed:
            print(f"Trial {trial.number} failed: {self.reason}")
        if self.failed >= self.limit:
            study.stop()


def value_arguments(values: dict[str, Any]) -> list[str]:
    """A trial's values as ``fit`` options (JSON: numbers, strings, lists alike)."""
    return [part for key, value in values.items() for part in (f"--{key}", json.dumps(value))]


def parsed_fit_config(arguments: list[str], run_fit: FitRunner) -> dict:
    """A trial's ``fit`` arguments parsed without running anything (LightningCLI's ``--print_config``): an unknown
    setting or a value of the wrong type is refused before the first trial, by ftlit's own parser."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            run_fit([*arguments, "--print_config"], [])
    except SystemExit as done:  # (how --print_config ends)
        if done.code:
            raise FtlitError("The fit options of the trials were refused (see above).") from None
    return yaml.safe_load(printed.getvalue())


def default_direction(metric: str | None, fit_config: dict) -> str:
    """Minimize the tuned metric where lower is better (``mse``, ``loss`` …), else maximize. Without ``tune.metric``
    the trials are scored by the run's main metric: ``--model.main_metric``, or the task's (higher is better)."""
    metric = metric or (fit_config.get("model") or {}).get("init_args", {}).get("main_metric")
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def one_device(trainer: dict) -> list[str]:
    """Trials run on one device each: Lightning starts a multi-device run's other processes by running the same
    command again, which for ``ftlit tune`` would be new workers asking for trials of their own. The options that
    keep ``devices: auto`` on one device; a refusal for more."""
    devices, nodes = trainer.get("devices", "auto"), trainer.get("num_nodes", 1)
    single = devices in (1, "1") or (isinstance(devices, list) and len(devices) == 1)
    if nodes != 1 or not (single or devices == "auto"):
        raise FtlitError(
            f"ftlit tune runs each trial on one device (trainer.devices is {devices!r}, num_nodes {nodes!r}). To use "
            "several GPUs, start one `ftlit tune` per GPU (CUDA_VISIBLE_DEVICES=N) against the same storage."
        )
    return [] if single else ["--trainer.devices", "1"]


def search_fingerprint(settings: TuneSettings, config: dict, fit_options: list[str]) -> str:
    """What makes two runs of a study comparable: the space, the objective, the config and the fit options."""
    return json.dumps(
        {
            "space": [vars(parameter) for parameter in settings.space],
            "metric": settings.metric,
            "config": {k: v for k, v in config.items() if k != "tune"},
            "fit": fit_options,
        },
        sort_keys=True,
        default=str,
    )


def rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage, which several workers may create at once: the first to write the schema wins and the
    others fail on a table or row that now exists; they retry and find the schema in place."""
    for attempt in range(1, attempts):
        with contextlib.suppress(sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        time.sleep(0.2 * attempt)
    return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)


def open_study(settings: TuneSettings) -> optuna.Study:
    database = sqlite_file(settings.storage)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = rdb_storage(settings.storage)
        study = optuna.create_study(
            storage=storage,
            study_name=settings.study_name,
            direction=settings.direction,
            pruner=build_pruner(settings.pruner),
            load_if_exists=True,
        )
    except ValueError as err:  # e.g. the study exists with the other direction
        raise FtlitError(f"Study {settings.study_name!r} in {settings.storage}: {err}") from err
    except Exception as err:  # SQLAlchemy's errors: a storage that cannot be opened
        raise FtlitError(f"Cannot open the study storage {settings.storage}: {err}") from err
    if settings.seed is not None:  # offset by the trials already there: a resumed study does not replay its first
        study.sampler = optuna.samplers.TPESampler(seed=settings.seed + len(study.trials))
    return study


def run_trial(trial: optuna.Trial, settings: TuneSettings, fit_arguments: list[str], run_fit: FitRunner) -> float:
    """One trial: a full ``ftlit fit`` in its own folder; its score from its results.json."""
    try:
        TrialBudget(settings.n_trials).claim(trial.study, trial)
    except NotNeeded:
        trial.set_user_attr("not_needed", True)
        raise
    values = {parameter.key: parameter.suggest(trial) for parameter in settings.space}
    folder = settings.output_dir / f"trial_{trial.number}"
    pruning = TrialPruning(trial, settings.metric and f"val/{settings.metric}")
    try:
        run_fit(
            [
                *fit_arguments,
                *value_arguments(values),
                "--output_dir",
                str(folder),
                "--trainer.default_root_dir",
                str(folder),
            ],
            [pruning],
        )
    except (SettingRefused, TrainingInterrupted):  # the study stops
        raise
    except SIGTERMException as err:  # Lightning's own stop on SIGTERM, a SystemExit (exit 0): not a finished trial
        raise TrainingInterrupted("Interrupted by SIGTERM.", signal.SIGTERM) from err
    except (FtlitError, torch.OutOfMemoryError) as err:
        trial.set_user_attr("failure", str(err))
        raise TrialFailed(str(err)) from err
    finally:
        release_held()
    results = json.loads((folder / "results.json").read_text())
    metric = settings.metric or results["eval"]["main_metric"]
    trial.set_user_attr("run", str(folder.resolve()))
    trial.set_user_attr("metric", metric)
    trial.set_user_attr("config", str((Path(results["train"]["log_dir"]) / "config.yaml").resolve()))
    return results["metrics"][metric]


def main(args: list[str], run_fit: FitRunner) -> int:
    parser = argparse.ArgumentParser(prog="ftlit tune", description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--config", type=Path, required=True, help="a fit config with a tune: section")
    known, rest = parser.parse_known_args(args)
    options, fit_options = split_tune_options(rest)
    if not known.config.is_file():
        raise FtlitError(f"--config {known.config}: no such file.")
    try:
        config = yaml.safe_load(known.config.read_text())
    except yaml.YAMLError as err:
        raise FtlitError(f"--config {known.config} is not valid YAML: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("tune"), dict):
        raise FtlitError(f"{known.config} has no tune: section (the search space); see README, `ftlit tune`.")
    settings = settings_from(config["tune"], options, known.config)
    return tune(settings, config, known.config, fit_options, run_fit)


def tune(settings: TuneSettings, config: dict, config_path: Path, fit_options: list[str], run_fit: FitRunner) -> int:
    """Check everything a trial needs, then run the study; a refusal leaves nothing behind."""
    check_writable(settings.output_dir, "--tune.output_dir")
    check_storage(settings.storage)
    fit_arguments = ["fit", "--config", str(config_path), *fit_options]  # (fit passes the tune: section over)
    example = value_arguments({parameter.key: parameter.example() for parameter in settings.space})
    fit_config = parsed_fit_config([*fit_arguments, *example], run_fit)
    fit_arguments += one_device(fit_config["trainer"])
    if settings.direction is None:
        settings = replace(settings, direction=default_direction(settings.metric, fit_config))
    database = sqlite_file(settings.storage)
    made = NewPaths([settings.output_dir, *([database, database.parent] if database else [])])
    try:
        study = open_study(settings)
        fingerprint, started_with = search_fingerprint(settings, config, fit_options), study.user_attrs.get("search")
        if started_with is not None and started_with != fingerprint:
            raise FtlitError(
                f"Study {settings.study_name!r} in {settings.storage} was started with another search space, config "
                "or fit options: its trials would not compare. Give another --tune.study_name, or the same settings."
            )
    except FtlitError:
        made.remove()
        raise
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    if started_with is None:
        study.set_user_attr("search", fingerprint)
    try:
        return run_study(study, settings, config, fit_arguments, run_fit)
    except SettingRefused:
        if started_with is None:  # this command's study: nothing of it is kept
            optuna.delete_study(study_name=settings.study_name, storage=settings.storage)
            made.remove()
        raise


def run_study(study: optuna.Study, settings: TuneSettings, config: dict, fit_arguments: list[str], run_fit) -> int:
    """Run trials until ``n_trials`` are finished over all workers; report what the study holds however it ends
    (but not a study refused before its first step)."""
    for values in settings.enqueue:  # (once per study, however many workers start)
        study.enqueue_trial(values, skip_if_exists=True)
    done = sum(t.state in FINISHED for t in study.trials)
    print(f"Study {settings.study_name!r} in {settings.storage}: {done} of {settings.n_trials} trials finished.")
    failures, current = StopAfterFailures(MAX_FAILED_IN_A_ROW), []

    def objective(trial: optuna.Trial) -> float:
        current[:] = [trial.number]
        value = run_trial(trial, settings, fit_arguments, run_fit)
        stop_if_received()  # (a stop the trial swallowed, though it ran on)
        return value

    refused = False
    try:
        if await_verdict(study, settings.n_trials) != "done":
            # Optuna logs a failed trial with its traceback: ftlit says it in one line (StopAfterFailures), and a
            # study that stops says why as the command ends
            optuna.logging.set_verbosity(optuna.logging.ERROR)
            study.optimize(
                objective,
                timeout=settings.timeout,
                callbacks=[TrialBudget(settings.n_trials), failures],
                catch=(TrialFailed, NotNeeded),
                gc_after_trial=True,
            )
    except SettingRefused:
        refused = True
        remove_empty_folders(settings.output_dir / f"trial_{current[0]}")  # (it stopped before its first step)
        raise
    except (TrainingInterrupted, KeyboardInterrupt) as err:
        signum = err.exit_code - 128 if isinstance(err, TrainingInterrupted) else signal.SIGINT
        raise TrainingInterrupted(interrupted(study, settings, signum, current), signum) from err
    finally:
        if not refused:
            report(study, settings.output_dir, config)
    if failures.failed >= MAX_FAILED_IN_A_ROW:
        raise FtlitError(
            f"The study stopped: {failures.failed} trials in a row failed, the last one with: {failures.reason}"
        )
    return 0


def interrupted(study: optuna.Study, settings: TuneSettings, signum: int, current: list[int]) -> str:
    """What an interrupted study kept, and how to go on."""
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    failed = [t.number for t in trials if t.number in current and t.state == TrialState.FAIL]
    trial = f"; trial {failed[0]}, interrupted, is marked failed and does not count" if failed else ""
    return (
        f"Interrupted by {signal.Signals(signum).name}: the study stopped{trial}. {finished} of {settings.n_trials} "
        f"trials are finished, kept in {settings.storage} (their runs in {settings.output_dir}). Run the same "
        "command to go on."
    )
