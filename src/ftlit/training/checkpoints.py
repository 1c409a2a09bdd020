"""Checkpoint files: written atomically, verified before loading, and found again for ``--ckpt_path last``."""

import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from ftlit.errors import FtlitError


def verify_checkpoint(path: str | Path) -> None:
    """Refuse a missing, truncated or corrupted checkpoint with a clear message.

    ``torch.save`` writes a zip archive with a CRC per entry, but ``torch.load`` does not check them: a flipped
    byte loads as silently wrong weights. Reading every entry against its CRC catches that, and a truncated file
    has no zip directory at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FtlitError(f"Checkpoint not found: '{path}'.")
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
