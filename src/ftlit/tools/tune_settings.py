"""The settings of ``ftlit tune``: the config's ``tune:`` section and the ``--tune.*`` options, checked before
anything is written."""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import optuna
import yaml

from ftlit.errors import FtlitError
from ftlit.tools.search_space import Parameter, parse_space


@dataclass(frozen=True)
class TuneSettings:
    """The study's settings: the config's ``tune:`` section, then ``--tune.*`` options over it."""

    space: list[Parameter]
    study_name: str
    output_dir: Path
    storage: str
    n_trials: int = 20
    timeout: float | None = None
    metric: str | None = None  # default: the run's main validation metric (--model.main_metric, or the task's)
    direction: str | None = None  # default: minimize for a metric where lower is better, else maximize
    pruner: dict | None = None  # MedianPruner's arguments; None: no pruning
    seed: int | None = None  # the sampler's (one worker: a reproducible study)
    enqueue: tuple[dict, ...] = ()  # trials to run first (e.g. the config's defaults)


def split_tune_options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``--tune.KEY VALUE`` / ``--tune.KEY=VALUE`` apart from the options every trial's ``fit`` gets."""
    options, fit_options = {}, []
    words = list(words)
    while words:
        word = words.pop(0)
        if not word.startswith("--tune."):
            fit_options.append(word)
            continue
        key, equals, value = word.removeprefix("--tune.").partition("=")
        if not equals:
            if not words or words[0].startswith("--"):
                raise FtlitError(f"--tune.{key} needs a value.")
            value = words.pop(0)
        options[key] = value
    return options, fit_options


def settings_from(section: dict, options: dict[str, str], config_path: Path) -> TuneSettings:
    """Merge the ``tune:`` section and the command line's ``--tune.*`` options (these win), checked."""
    known = {setting.name for setting in fields(TuneSettings)}
    unknown = (set(section) | set(options)) - known
    if unknown:
        raise FtlitError(f"Unknown tune setting(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))}).")
    merged = {**section, **{key: read_value(key, value) for key, value in options.items()}}
    study_name = str(merged.get("study_name") or config_path.stem)
    output_dir = Path(merged.get("output_dir") or Path("lightning_logs/tune") / study_name)
    storage = merged.get("storage") or f"sqlite:///{(output_dir / 'study.db').resolve()}"
    n_trials, timeout = merged.get("n_trials", 20), merged.get("timeout")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise FtlitError(f"tune.n_trials must be a whole number of at least 1, not {n_trials!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise FtlitError(f"tune.timeout must be a number of seconds above 0, not {timeout!r}.")
    direction, pruner = merged.get("direction"), merged.get("pruner", "median")
    if direction not in ("maximize", "minimize", None):
        raise FtlitError(f"tune.direction must be maximize or minimize, not {direction!r}.")
    if pruner not in ("median", "none") and not isinstance(pruner, dict):
        raise FtlitError(f"tune.pruner must be median, none or MedianPruner's arguments, not {pruner!r}.")
    seed, enqueue = merged.get("seed"), merged.get("enqueue") or []
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FtlitError(f"tune.seed must be a whole number, not {seed!r}.")
    space = parse_space(merged.get("space"))
    keys = {parameter.key for parameter in space}
    if not isinstance(enqueue, list) or not all(isinstance(t, dict) and set(t) <= keys for t in enqueue):
        raise FtlitError(f"tune.enqueue must be a list of trials, each giving values of {', '.join(sorted(keys))}.")
    metric = merged.get("metric")
    pruner_arguments = {} if pruner == "median" else None if pruner == "none" else pruner
    build_pruner(pruner_arguments)  # (its arguments refused before anything is written)
    return TuneSettings(
        space,
        study_name,
        output_dir,
        str(storage),
        n_trials,
        timeout,
        metric and str(metric).removeprefix("val/"),
        direction,
        pruner_arguments,
        seed,
        tuple(enqueue),
    )


def read_value(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise FtlitError(f"--tune.{key}: {text!r} is not valid YAML ({str(err).splitlines()[0]}).") from None


def build_pruner(arguments: dict | None) -> optuna.pruners.BasePruner:
    """Optuna's median pruner with ``arguments`` (None: no pruning)."""
    if arguments is None:
        return optuna.pruners.NopPruner()
    try:
        return optuna.pruners.MedianPruner(**arguments)
    except (TypeError, ValueError) as err:
        raise FtlitError(f"tune.pruner: {err}") from err
