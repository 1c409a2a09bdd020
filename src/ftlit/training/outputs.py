"""Writing run outputs (results, predictions) so that a crash never leaves a half-written file behind."""

import json
import os
import shutil
from pathlib import Path


def write_json(path: Path, content: object, lines: bool = False) -> None:
    """Write ``content`` as JSON (or JSON lines, one per item, when ``lines``) atomically: temp file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".partial")
    with open(staging, "w", encoding="utf-8") as f:
        if lines:
            f.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in content)
        else:
            json.dump(content, f, indent=2, ensure_ascii=False, default=str)
    os.replace(staging, path)


def replace_directory(staging: Path, directory: Path) -> None:
    """Move the finished ``staging`` folder to ``directory``. An existing ``directory`` is moved aside first and
    deleted last, so that at every moment one complete version exists."""
    retired = directory.with_name(directory.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)


#: Version of results.json's layout: 2 = sections (1, unmarked, was one flat dict)
RESULTS_SCHEMA = 2


def results_document(metrics: dict, evaluation: dict, train: dict, model: dict, config: dict) -> dict:
    """results.json: the metrics of the evaluation, its size and timing, the training run (after fit), the model
    and the config, each in its own section."""
    return {"schema": RESULTS_SCHEMA, "metrics": metrics, "eval": evaluation, "train": train, "model": model,
            "config": config}  # fmt: skip
