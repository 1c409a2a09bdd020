"""The few Lightning internals ftlit relies on, in one place: each has a test (tests/test_lightning_internals.py)
that fails when a Lightning release moves it, and ``pyproject.toml`` pins the range they were checked against."""

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
