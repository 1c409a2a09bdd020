"""Checkpoint files: written atomically, verified before loading (and so are an export's weights), and found again
for ``--ckpt_path last``."""

import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from ftlit.errors import FtlitError


def verify_checkpoint(path: str | Path) -> None:
    """Refuse, in one line saying why, a checkpoint that cannot be loaded safely and whole: a missing path, a folder,
    a file that is no checkpoint, an unreadable, truncated or corrupted one, and one holding code.

    ``torch.save`` writes a zip archive with a CRC per entry, but ``torch.load`` does not check them: a flipped
    byte loads as silently wrong weights. Reading every entry against its CRC catches that, and a truncated file
    has no zip directory at all. Then its contents are read as ``torch.load(weights_only=True)`` reads them (the
    tensors mapped, not read): a pickle that would run code is refused here, never run.
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(str(p) for p in path.rglob("*.ckpt"))[:3]
        hint = f" It holds {', '.join(inside)}." if inside else ""
        raise FtlitError(f"Checkpoint '{path}' is a folder: give a checkpoint file (.ckpt) or last.{hint}")
    if not path.is_file():
        raise FtlitError(f"Checkpoint not found: '{path}'.")
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as err:
        raise FtlitError(f"Checkpoint '{path}' cannot be read ({err.strerror or err}).") from None
    if magic and magic != b"PK\x03\x04":  # (a truncated checkpoint still starts as a zip archive)
        raise FtlitError(
            f"'{path}' is not a checkpoint: a PyTorch checkpoint (.ckpt, as ftlit fit writes them) is a zip "
            "archive, and this file is not one."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        damaged = f"not a complete checkpoint archive ({err})"
    if damaged:
        others = sorted(str(p) for p in path.parent.glob("*.ckpt") if p != path)
        hint = f" Other checkpoints in its folder: {others}." if others else ""
        raise FtlitError(
            f"Checkpoint '{path}' is corrupt or incomplete (damaged: {damaged}); it was probably cut off while being "
            f"written or copied. Resume from another checkpoint with --ckpt_path.{hint}"
        )
    check_safe_contents(path)


def check_safe_contents(path: Path) -> None:
    """Refuse a checkpoint (a complete zip archive) whose pickle would run code or build objects other than
    tensors, numbers, strings and containers, or that is no PyTorch checkpoint of a model (no ``state_dict``)."""
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        called = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"it would call {called.group(1)}" if called else "objects other than weights and settings"
        raise FtlitError(
            f"Checkpoint '{path}' is refused: loading it would run code ({what}), and ftlit loads weights and "
            "settings only, whatever a file's source. Give a checkpoint written by ftlit fit."
        ) from None
    except (RuntimeError, ValueError, EOFError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FtlitError(f"'{path}' is a zip archive but not a PyTorch checkpoint ({reason}).") from None
    if not isinstance(contents, dict) or "state_dict" not in contents:
        raise FtlitError(
            f"'{path}' is a PyTorch file but not a checkpoint of a model (it has no state_dict): give a checkpoint "
            "written by ftlit fit."
        )


def verify_weights(folder: Path) -> None:
    """Refuse a model folder (an export) whose weights files are truncated or damaged (``verify_weights_file``)."""
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        verify_weights_file(path)


def verify_weights_file(path: Path) -> None:
    """Refuse a truncated or damaged ``.safetensors`` file (an export's weights) in one line naming it: its header
    must parse and describe exactly the bytes the file holds (safetensors keeps no checksum; a file cut off while
    being written or copied is shorter than its header says)."""
    size = path.stat().st_size
    try:
        with path.open("rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if size < 8 or length > size - 8:
                raise ValueError(f"{size:,} bytes, fewer than its header needs")
            header = json.loads(file.read(length))
        end = max((entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        why = str(err) if isinstance(err, ValueError) and "bytes" in str(err) else "its header cannot be read"
    else:
        if 8 + length + end == size:
            return
        why = f"{size:,} bytes where its header describes {8 + length + end:,}"
    raise FtlitError(
        f"The weights file '{path}' is corrupt or incomplete ({why}); it was probably cut off while being written or "
        "copied. Copy it again, or export the run again."
    )


def live_weights_were_scored(last_validation_step: int | None, final_step: int, best_step: int | None) -> bool:
    """Whether fit's last validation scored the weights fit exports, so that evaluating them again is redundant:
    it ran at the final step, and those weights are the best checkpoint's (``best_step`` is the step the best
    checkpoint was saved at; -1 where there is no best checkpoint and the final weights are exported)."""
    return last_validation_step == final_step and best_step in (final_step, -1)


def last_checkpoints(root: str | Path) -> list[Path]:
    """The ``last.ckpt`` files under ``root`` (the runs' log folder), most recently written first."""
    candidates = [p for p in Path(root).glob("**/last.ckpt") if p.is_file()]
    return sorted(candidates, key=lambda p: p.stat().st_mtime_ns, reverse=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file in the target folder and renames it into place, so that a run killed mid-write
    leaves the previous checkpoint intact (never half a file). (Checkpoints a user names are verified by the CLI
    before the run, once: verifying again at every load would read each file twice.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if "://" in str(path):  # remote storage: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.partial")
        try:
            with open(staging, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        os.replace(staging, path)


#: Settings a resumed run may change: how it loads batches and evaluates, how often it saves, when it stops early,
#: which CPU kernels it trains with (runs saved before that setting have none)
RESUMABLE_CHANGES = {
    "data.init_args.num_workers",
    "data.init_args.eval_batch_size",
    "model.init_args.checkpoint_every_n_steps",
    "model.init_args.early_stopping_patience",
    "model.init_args.cpu_kernels",
}


def flat_settings(config: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as ``{"data.init_args.train_file": ...}``."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        flat.update(flat_settings(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def config_differences(saved: dict, current: dict) -> list[str]:
    """The model and data settings in which a run's saved config and the current one differ (``name: saved →
    current``), leaving out those a resumed run may change."""
    before = flat_settings({section: saved.get(section) or {} for section in ("model", "data")})
    after = flat_settings({section: current.get(section) or {} for section in ("model", "data")})
    return [
        f"{name}: {before.get(name)!r} → {after.get(name)!r}"
        for name in sorted(before.keys() | after.keys())
        if name not in RESUMABLE_CHANGES and before.get(name) != after.get(name)
    ]
