"""Stopping cleanly on SIGTERM/SIGINT and resuming exactly: the callback that makes a run survive interruption."""

import random
import signal
from pathlib import Path

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from ftlit._lightning import is_last_batch
from ftlit.errors import TrainingInterrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def rng_states() -> dict:
    """Every random generator that training draws from (dropout: torch, on the GPU too), in plain types and
    tensors only, so that checkpoints still load with ``torch.load(weights_only=True)``."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, cached_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def last_checkpoint_path(trainer: Trainer) -> Path | None:
    """Where the run keeps ``last.ckpt`` (None when checkpointing is off)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    return None


class ResumableTraining(Callback):
    """Makes an interrupted run resumable with the same result as an uninterrupted one.

    - SIGTERM (a scheduler's preemption) or SIGINT (Ctrl-C) lets the optimizer step in progress finish (all of its
      accumulated batches), saves ``last.ckpt`` and stops with exit code 128 + signal. A second Ctrl-C stops at once.
    - Checkpoints carry the random generators' states, restored when training resumes, so dropout draws the same
      masks. (The optimizer, scheduler, step counter and, through the data module, the data position are
      Lightning's and ftlit's checkpoint state already.)
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._handlers: dict = {}
        self._rng_to_restore: dict | None = None

    # ------------------------------------------------------------------------------------------------- signals
    def _note_signal(self, signum: int, frame) -> None:
        self.received = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Installed after Lightning's own SIGTERM handler, which would stop after any batch, even mid-accumulation
        self._handlers = {signum: signal.signal(signum, self._note_signal) for signum in STOP_SIGNALS}
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def _restore_handlers(self) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        accumulated = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        if not (accumulated or is_last_batch(trainer)):  # mid-step: not yet
            return
        stop = self.received is not None
        if trainer.world_size > 1:  # every device stops at the same step, whichever got the signal
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        signum = self.received or signal.SIGTERM
        path = last_checkpoint_path(trainer)
        if path is not None:
            trainer.save_checkpoint(path)
        saved = (
            f"saved a resumable checkpoint to {path}. Resume with the same command and --ckpt_path last"
            if path
            else "checkpointing is off, so nothing was saved"
        )
        raise TrainingInterrupted(
            f"Interrupted by {signal.Signals(signum).name} at step {trainer.global_step}: {saved}.", signum
        )

    # ------------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"rng_states": rng_states()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng_to_restore = state_dict.get("rng_states")


def stop_on_interrupt(signum: int, frame) -> None:
    """The SIGINT handler outside training steps (loading data, evaluating, exporting): stop with the shell's exit
    code for the signal, 130, rather than Lightning's 1. (Within training, ResumableTraining's handler saves a
    checkpoint first.)"""
    raise TrainingInterrupted(
        f"Interrupted by {signal.Signals(signum).name} outside training: this command wrote nothing more.", signum
    )
