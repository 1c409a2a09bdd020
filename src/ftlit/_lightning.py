"""The few Lightning internals ftlit relies on, in one place: each has a test (tests/test_lightning_internals.py)
that fails when a Lightning release moves it, and ``pyproject.toml`` pins the range they were checked against."""

import logging

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


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡")


def silence_tips() -> None:
    """Drop the "💡 Tip: … install litlogger / litmodels …" lines Lightning prints on every run (it has no switch
    for them); its other messages are kept."""
    logger = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(existing, _NoTips) for existing in logger.filters):
        logger.addFilter(_NoTips())
