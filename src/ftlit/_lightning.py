"""The few Lightning internals ftlit relies on, in one place: each has a test (tests/test_lightning_internals.py)
that fails when a Lightning release moves it, and ``pyproject.toml`` pins the range they were checked against."""

import logging
import warnings

from lightning import Trainer
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch.utils.data import Sampler


def batches_done_in_epoch(trainer: Trainer) -> int:
    """Training batches processed so far in the current epoch (what a resumed run must skip)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def is_last_batch(trainer: Trainer) -> bool:
    """Whether the training batch being processed is the last of its epoch."""
    return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


def unrepeated(sampler: Sampler, num_replicas: int, rank: int) -> Sampler:
    """``rank``'s share of ``sampler``'s indices, each index on exactly one device. (Lightning's own
    DistributedSampler repeats indices to even out the devices, and evaluation would count them twice.)"""
    return UnrepeatedDistributedSamplerWrapper(sampler, num_replicas=num_replicas, rank=rank, shuffle=False)


#: The logger behind Lightning's ``rank_zero_info`` (lightning.pytorch.utilities.rank_zero points
#: lightning_utilities' messages at it)
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


#: Lightning's info lines that say nothing a user of ftlit can act on: its tips to install litlogger / litmodels,
#: which it prints on every run with no switch; that the model's own checkpoint callbacks replace the Trainer's
#: default (ftlit's design: the best checkpoint by the task's metric); that it reads the training loader to count
#: the steps of the learning-rate schedule
QUIET_INFO = (
    "💡",
    "The following callbacks returned in `LightningModule.configure_callbacks` will override",
    "Loading `train_dataloader` to estimate number of stepping batches",
)

#: Lightning warnings that ftlit's own design raises on every run, each benign: ftlit hands LightningCLI its
#: arguments (sys.argv less --debug); the model counts each training batch's tokens on the host
#: (on_before_batch_transfer); predict_step keeps its records in the module (after_predict writes them); Lightning
#: 2.6 calls a torch pytree API that torch 2.13 deprecates
BENIGN_WARNINGS = (
    "LightningCLI's args parameter is intended to run from within Python",
    "You have overridden `on_before_batch_transfer` in `LightningModule`",
    "predict returned None if it was on purpose",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


class _QuietInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_INFO)


def silence_known_noise() -> None:
    """Drop Lightning's QUIET_INFO lines and BENIGN_WARNINGS, by their text; its other messages are kept."""
    logger = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(existing, _QuietInfo) for existing in logger.filters):
        logger.addFilter(_QuietInfo())
    for message in BENIGN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
