"""``ftlit compare RUN_DIR...``: finished runs side by side — model, parameters, metrics, train time, throughput,
latency — as a table (printed, Markdown and CSV) and their validation curves overlaid in one PNG.

A run directory is the ``--output_dir`` of an ``ftlit fit`` (by default its log folder): it holds ``results.json``,
whose validation history gives the curves, whatever the logger (for runs older than that history: the TensorBoard
scalars of the log folder it names).
"""

import argparse
import csv
import json
import math
from pathlib import Path

from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ftlit.errors import FtlitError
from ftlit.tools.tables import markdown_table
from ftlit.training.outputs import RESULTS_SCHEMA, check_writable

MAX_CURVES = 6
# Where the flat results.json of earlier ftlit versions (schema 1) kept what schema 2 puts in sections
_SCHEMA_1_SECTIONS = {
    "eval": ("num_examples", "num_features", "eval_time_s", "ms_per_example", "ms_per_question"),
    "train": ("train_time_s", "best_checkpoint", "train_throughput", "log_dir"),
    "model": ("total_params", "trainable_params", "calibration"),
}


def load_results(run_dir: Path) -> dict:
    """A run's results.json in sections (schema 2), whichever version of ftlit wrote it."""
    path = run_dir / "results.json"
    if not path.is_file():
        raise FtlitError(f"{run_dir} holds no results.json: give the --output_dir of a finished `ftlit fit`.")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FtlitError(f"{path} is not valid JSON ({err}).") from None
    except (OSError, UnicodeDecodeError) as err:
        raise FtlitError(f"{path} cannot be read ({err}).") from None
    check_results_layout(path, results)
    return results if "schema" in results else sections_of_flat_results(results)


def json_kind(value: object) -> str:
    """What a parsed JSON value is, for messages."""
    kinds = {list: "a list", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return kinds.get(type(value), "null" if value is None else "an object")


def check_results_layout(path: Path, results: object) -> None:
    """Refuse a results.json that is not what ftlit writes: an object, whose sections (``metrics``, ``eval``,
    ``train``, ``model``, ``config``) are objects and whose metrics are numbers."""
    if not isinstance(results, dict):
        raise FtlitError(f"{path} holds {json_kind(results)}, not the object ftlit writes: not a run's results.")
    for section in ("metrics", "eval", "train", "model", "config"):
        if section in results and results[section] is not None and not isinstance(results[section], dict):
            raise FtlitError(
                f"{path}: its {section!r} is {json_kind(results[section])}, not an object: not a run's "
                "results as ftlit writes them."
            )
    metrics = results.get("metrics") if "schema" in results else {}
    odd = [
        name for name, value in (metrics or {}).items() if not isinstance(value, int | float) or isinstance(value, bool)
    ]
    if odd:
        raise FtlitError(f"{path}: the metric(s) {odd[:5]} are not numbers: not a run's results as ftlit writes them.")


def sections_of_flat_results(flat: dict) -> dict:
    """A schema-1 results.json (one flat dict) in schema-2 sections: the numbers that are not known run facts
    are its metrics."""
    known = {key for keys in _SCHEMA_1_SECTIONS.values() for key in keys} | {"config"}
    sections = {name: {key: flat[key] for key in keys if key in flat} for name, keys in _SCHEMA_1_SECTIONS.items()}
    if "ms_per_question" in sections["eval"]:
        sections["eval"]["ms_per_example"] = sections["eval"].pop("ms_per_question")
    if "train_throughput" in sections["train"]:
        sections["train"]["throughput"] = sections["train"].pop("train_throughput")
    metrics = {key: value for key, value in flat.items() if key not in known}
    return {"schema": RESULTS_SCHEMA, "metrics": metrics, **sections, "config": flat.get("config", {})}


def model_name(results: dict) -> str:
    model = results.get("config", {}).get("model", {}).get("init_args", {})
    name = str(model.get("model_name_or_path", "?"))
    return name + (" + LoRA" if model.get("peft") else "")


def comparison_row(run: str, results: dict) -> dict:
    """One run's line of the table, from its results in sections."""
    model, train = results.get("model", {}), results.get("train", {})
    temperature = (model.get("calibration") or {}).get("temperature")
    return {
        "run": run,
        "model": model_name(results),
        "total_params": model.get("total_params"),
        "trainable_params": model.get("trainable_params"),
        **results.get("metrics", {}),
        **({"temperature": temperature} if temperature is not None else {}),
        "train_time_s": train.get("train_time_s"),
        "train_samples_per_s": (train.get("throughput") or {}).get("samples_per_sec"),
        "eval_ms_per_example": results.get("eval", {}).get("ms_per_example"),
    }


def curves_of_history(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """results.json's validation history (one entry of scores per evaluation) as a (step, value) curve per score."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for entry in history:
        for tag, value in entry.items():
            if tag.startswith("val/"):
                curves.setdefault(tag, []).append((entry["step"], value))
    return curves


def validation_curves(run_dir: Path, results: dict) -> dict[str, list[tuple[int, float]]]:
    """``val/*`` scores (step, value) in step order: from the validation history ftlit keeps in results.json
    (whatever the logger), or for runs older than that history, from the run's TensorBoard event files."""
    history = results.get("train", {}).get("history")
    if history:
        return curves_of_history(history)
    log_dir = results.get("train", {}).get("log_dir")
    folders = [run_dir] + ([Path(log_dir)] if log_dir else [])
    files = next((found for folder in folders if (found := sorted(folder.rglob("events.out.tfevents.*")))), [])
    curves: dict[str, list[tuple[int, float]]] = {}
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            if tag.startswith("val/"):
                curves.setdefault(tag, []).extend((event.step, event.value) for event in events.Scalars(tag))
    return {tag: sorted(points) for tag, points in curves.items()}


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def write_csv(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: Path) -> None:
    """One panel per validation metric the runs share (at most MAX_CURVES), a line per run."""
    shared = [tag for tag in next(iter(curves.values())) if all(tag in run for run in curves.values())]
    tags = sorted(shared, key=lambda tag: (tag != "val/loss", tag))[:MAX_CURVES] or ["(no validation scalars)"]
    columns = min(3, len(tags))
    figure = Figure(figsize=(4.5 * columns, 3.5 * math.ceil(len(tags) / columns)))
    for i, tag in enumerate(tags):
        axes = figure.add_subplot(math.ceil(len(tags) / columns), columns, i + 1)
        for run, run_curves in curves.items():
            if tag in run_curves:
                steps, values = zip(*run_curves[tag])
                axes.plot(steps, values, marker="o", markersize=3, label=run)
        axes.set(title=tag, xlabel="step")
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def run_names(run_dirs: list[Path]) -> list[str]:
    """Short distinct names: the folder names, or more of the path where those repeat (version_0 …)."""
    for depth in range(1, max(len(path.parts) for path in run_dirs) + 1):
        names = ["/".join(path.parts[-depth:]) for path in run_dirs]
        if len(set(names)) == len(names):
            return names
    return [str(path) for path in run_dirs]


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ftlit compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="output folders of finished `ftlit fit` runs")
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=Path("."),
        help="where comparison.md, comparison.csv and comparison.png go (default: here)",
    )
    options = parser.parse_args(args)
    check_writable(options.output_dir, "--output_dir")  # (before reading every run)
    run_dirs = [path.resolve() for path in options.run_dirs]
    results = {name: load_results(path) for name, path in zip(run_names(run_dirs), run_dirs)}
    rows = [comparison_row(name, run) for name, run in results.items()]
    table = markdown_table(rows, format_value)
    print(table)
    output = options.output_dir
    output.mkdir(parents=True, exist_ok=True)
    (output / "comparison.md").write_text(table)
    write_csv(rows, output / "comparison.csv")
    curves = {name: validation_curves(path, results[name]) for name, path in zip(results, run_dirs)}
    plot_curves(curves, output / "comparison.png")
    print(f"Written: {output / 'comparison.md'}, {output / 'comparison.csv'}, {output / 'comparison.png'}")
    return 0
