"""What ``ftlit tune`` leaves when its study ends: the trials as a table (trials.md), Optuna's figures and the
best trial's whole config as a fresh run's (best.yaml)."""

import math
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from ftlit.errors import FtlitError
from ftlit.tools.tables import markdown_table


def trials_table(study: optuna.Study) -> list[dict]:
    metric = next((t.user_attrs["metric"] for t in study.trials if "metric" in t.user_attrs), "value")
    rows = []
    for trial in study.trials:
        if trial.user_attrs.get("not_needed"):  # (begun as other workers completed the study: it ran nothing)
            continue
        duration = trial.duration.total_seconds() if trial.duration else None
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                metric: trial.value,
                **trial.params,
                "time_s": duration and round(duration, 1),
            }
        )
    return rows


def best_config(trial: optuna.trial.FrozenTrial, base: dict) -> dict:
    """The best trial's whole config as ftlit saved it, made a fresh run's: its own output folders dropped."""
    saved = Path(trial.user_attrs["config"])
    if not saved.is_file():  # (another machine's worker ran it)
        raise FtlitError(f"No best.yaml: the best trial's config {saved} is not on this machine.")
    config = yaml.safe_load(saved.read_text())
    for key in ("output_dir", "overwrite", "tune"):
        config.pop(key, None)
    config["trainer"]["default_root_dir"] = (base.get("trainer") or {}).get("default_root_dir")
    return config


def write_plots(study: optuna.Study, output_dir: Path) -> list[Path]:
    """Optuna's matplotlib figures: the optimisation history and (two finished trials or more) the parameters'
    importances."""
    from optuna.visualization import matplotlib as plots

    written = []
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    drawings = {"history.png": plots.plot_optimization_history}
    if len(finished) >= 2 and any(len({t.params.get(k) for t in finished}) > 1 for k in finished[0].params):
        drawings["importances.png"] = plots.plot_param_importances
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, draw in drawings.items():
            axes = draw(study)
            axes.figure.savefig(output_dir / name, bbox_inches="tight")
            written.append(output_dir / name)
    return written


def report(study: optuna.Study, output_dir: Path, base: dict) -> None:
    """Print the trials and the best one; write trials.md, the figures and best.yaml into ``output_dir``."""
    rows = trials_table(study)
    table = markdown_table(rows, lambda v: f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v))
    print(table)
    (output_dir / "trials.md").write_text(table)
    written = [output_dir / "trials.md", *write_plots(study, output_dir)]
    if any(t.state == TrialState.COMPLETE for t in study.trials):
        best = study.best_trial
        path = output_dir / "best.yaml"
        path.write_text(yaml.safe_dump(best_config(best, base), sort_keys=False))
        written.append(path)
        print(f"Best: trial {best.number}, {best.user_attrs['metric']} {best.value:.4f}, {best.params}")
    print("Written: " + ", ".join(map(str, written)))
