"""Writing run outputs (results, predictions, the export) so that a crash never leaves a half-written file behind."""

import json
import os
import shutil
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ftlit.errors import FtlitError
from ftlit.training.interrupts import deferred


def write_json(path: Path, content: object, lines: bool = False) -> None:
    """Write ``content`` as JSON (or JSON lines, one per item, when ``lines``) atomically: temp file + rename (a
    failure or a stop part-way removes the temp file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".partial")
    try:
        with open(staging, "w", encoding="utf-8") as f:
            if lines:
                f.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in content)
            else:
                json.dump(content, f, indent=2, ensure_ascii=False, default=str)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, path)


def replace_directory(staging: Path, directory: Path) -> None:
    """Move the finished ``staging`` folder to ``directory``. An existing ``directory`` is moved aside first and
    deleted last, so that at every moment one complete version exists (a stop waits until the new one is in place
    and the old one gone)."""
    retired = directory.with_name(directory.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    with deferred():
        if directory.exists():
            directory.rename(retired)
        staging.rename(directory)
        shutil.rmtree(retired, ignore_errors=True)


def write_export(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """``model`` and ``tokenizer`` in Hugging Face format in ``directory``: written to a temporary folder first and
    then moved into place, so that a crash (a full disk, say) never leaves half an export."""
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_directory(staging, directory)


#: Version of results.json's layout: 2 = sections (1, unmarked, was one flat dict)
RESULTS_SCHEMA = 2


def results_document(metrics: dict, evaluation: dict, train: dict, model: dict, config: dict) -> dict:
    """results.json: the metrics of the evaluation, its size and timing, the training run (after fit), the model
    and the config, each in its own section."""
    return {
        "schema": RESULTS_SCHEMA,
        "metrics": metrics,
        "eval": evaluation,
        "train": train,
        "model": model,
        "config": config,
    }


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else the closest folder above it that does."""
    return next(candidate for candidate in (path, *path.parents) if candidate.exists())


def check_writable(directory: Path, what: str) -> None:
    """``directory`` can be made (if need be) and written: a probe file is written and removed in it, or in the
    nearest folder above it that exists — nothing is left behind. Permissions alone do not tell (a read-only mount;
    root, whom chmod does not stop)."""
    existing = nearest_existing(directory)
    if not existing.is_dir():
        where = "" if existing == directory else f" ({existing} is)"
        raise FtlitError(f"{what} {directory} is an existing file{where}, not a folder: give another one.")
    probe = existing / f".ftlit-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"ftlit")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise FtlitError(
            f"{what} {directory} cannot be written ({reason}): give a folder this run can write to."
        ) from err


def check_free_space(needs: dict[Path, int]) -> None:
    """Refuse to start when a folder's file system has less room than the run will write there (bytes by folder;
    folders on one file system add up)."""
    by_device: dict[int, tuple[int, list[Path]]] = {}
    for folder, needed in needs.items():
        device = os.stat(nearest_existing(folder)).st_dev  # (the folder may be created later)
        total, folders = by_device.get(device, (0, []))
        by_device[device] = (total + needed, [*folders, folder])
    for needed, folders in by_device.values():
        free = shutil.disk_usage(nearest_existing(folders[0])).free
        if free < needed:
            raise FtlitError(
                f"Not enough disk space: {', '.join(map(str, folders))} will need about {in_units(needed)} "
                f"(checkpoints and the export) and {in_units(free)} are free. Free some space or give another "
                "--output_dir / --trainer.default_root_dir."
            )


def in_units(size: int) -> str:
    """Bytes as MiB or GiB, for messages."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def check_outputs_free(output_dir: Path, subcommand: str, overwrite: bool) -> None:
    """Refuse, before any work, to replace the outputs of an earlier run unless ``--overwrite`` is given."""
    produces = {
        "fit": ["export", "results.json"],
        "validate": ["results.json"],
        "test": ["results.json"],
        "predict": ["predictions.jsonl"],
    }.get(subcommand, [])
    existing = [name for name in produces if (output_dir / name).exists()]
    if existing and not overwrite:
        raise FtlitError(
            f"{output_dir} already holds {', '.join(existing)} of an earlier run. Give another --output_dir, or "
            "--overwrite true to replace them."
        )
