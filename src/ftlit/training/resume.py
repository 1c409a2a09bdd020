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
from ftlit.training.interrupts import STOP_SIGNALS, keep, stop_if_received, stopped


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


def last_checkpointing(trainer: Trainer) -> ModelCheckpoint | None:
    """The callback that saves the run's ``last.ckpt`` (None when checkpointing is off)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return callback
    return None


def last_checkpoint_path(trainer: Trainer) -> Path | None:
    """Where the run keeps ``last.ckpt`` (None when checkpointing is off)."""
    callback = last_checkpointing(trainer)
    return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}" if callback else None


def save_last_checkpoint(trainer: Trainer) -> Path | None:
    """Save ``last.ckpt`` now, as its callback would: recorded as its own, so that the resumed run replaces it (its
    callback writes a ``last-v1.ckpt`` beside a last.ckpt it did not write). None when checkpointing is off."""
    path = last_checkpoint_path(trainer)
    if path is not None:
        last_checkpointing(trainer).last_model_path = str(path)
        trainer.save_checkpoint(path)
    return path


class ResumableTraining(Callback):
    """Makes an interrupted run resumable with the same result as an uninterrupted one.

    - SIGTERM (a scheduler's preemption) or SIGINT (Ctrl-C) lets the optimizer step in progress finish (all of its
      accumulated batches), saves ``last.ckpt`` and stops with exit code 128 + signal. A second Ctrl-C stops at once.
      A signal after the last step (in the last validation, say) stops the run once fit has saved ``last.ckpt``, which
      then holds the finished training: from then on, until the outputs are written, a stop keeps that
      (``finished_training``).
    - Checkpoints carry the random generators' states, restored when training resumes, so dropout draws the same
      masks. (The optimizer, scheduler, step counter and, through the data module, the data position are
      Lightning's and ftlit's checkpoint state already.)
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._handlers: dict = {}
        self._last: Path | None = None  # where last.ckpt is saved
        self._rng_to_restore: dict | None = None

    # ------------------------------------------------------------------------------------------------- signals
    def _note_signal(self, signum: int, frame) -> None:
        self.received = signum
        signal.signal(signal.SIGINT, self._stop_at_once)  # a second Ctrl-C

    def _stop_at_once(self, signum: int, frame) -> None:
        saved = (
            f"the checkpoint saved before, {self._last}, is intact: resume with the same command and --ckpt_path last"
            if self._last is not None and self._last.is_file()
            else "no checkpoint was saved yet: run the same command again"
        )
        raise stopped(signum, f"a second one stops at once, mid-step, saving nothing; {saved}")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        stop_if_received()  # (a stop while the model loaded may have been swallowed: not a reason to start training)
        # Installed after Lightning's own SIGTERM handler, which would stop after any batch, even mid-accumulation
        self._handlers = {signum: signal.signal(signum, self._note_signal) for signum in STOP_SIGNALS}
        self._last = last_checkpoint_path(trainer)
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def _restore_handlers(self) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # (last.ckpt is saved after this, by its callback's on_train_end: Lightning calls checkpoint callbacks last)
        keep(finished_training(self._last))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # the handlers are Lightning's to restore by now (before on_fit_end), as they were before training started
        self._handlers = {}
        if self.received is not None:  # noted after the last step
            raise stopped(self.received, finished_training(self._last))

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
        path = save_last_checkpoint(trainer)
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


def finished_training(last: Path | None) -> str:
    """What a stop after training keeps (``last``: where last.ckpt is saved, if the run keeps one), and how to go
    on."""
    if last is not None:
        return (
            f"training had finished and is saved in {last}; run the same command with --ckpt_path last: it only "
            "validates and exports"
        )
    return (
        "training had finished, but this run keeps no last.ckpt to go on from (--model.checkpoints best_weights, or "
        "checkpointing off); run the same command again"
    )
