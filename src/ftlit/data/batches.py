"""Batches of a data module's built features: dynamically padded, length-grouped (or weighted) training batches in
a seeded order that a checkpoint can resume part-way, and longest-first evaluation batches, each feature evaluated
on exactly one device."""

import os
from functools import cached_property

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset
from lightning import LightningDataModule
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from ftlit._lightning import batches_done_in_epoch, unrepeated
from ftlit.data.sampler import (
    LengthGroupedSampler,
    ResumableDataLoader,
    ShuffledSampler,
    WeightedSampler,
    longest_first,
)
from ftlit.errors import FtlitError
from ftlit.machine import pins_memory


class BatchLoading(LightningDataModule):
    """The loaders of ``TransformerDataModule``: what it needs of the data module are its built features
    (``train_features``, ``eval_features``, ``validation_names``), its tokenizer and its batch settings."""

    tokenizer: PreTrainedTokenizerBase
    train_features: Dataset | None
    eval_features: dict[str, Dataset]
    validation_names: list[str]
    batch_size: int
    eval_batch_size: int
    max_length: int
    seed: int
    num_workers: int
    pad_to_multiple_of: int
    group_by_length: bool
    pad_to_max_length: bool
    _resume_position: dict | None

    # ------------------------------------------------------------------------------------------------- task hooks
    def sample_weights(self) -> np.ndarray | None:
        """Training examples drawn with these relative weights (with replacement) instead of each once per epoch;
        None: each once."""
        return None

    def feature_lengths(self, features: Dataset) -> np.ndarray:
        """Tokens per feature, by which batches are grouped and ordered; a task whose features hold more than one
        sequence (choices, two towers) says what its length is."""
        return sequence_lengths(features)

    @cached_property
    def collate(self) -> DataCollatorWithPadding:
        """Features → a padded batch of tensors; a task whose features hold more than one sequence pads each."""
        if self.pad_to_max_length:
            return DataCollatorWithPadding(self.tokenizer, padding="max_length", max_length=self.max_length)
        # Pads each batch to its longest member, not to max_length
        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    # ------------------------------------------------------------------------------------------------- loaders
    def _devices(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_batch_size(self) -> int:
        """Per-device share of the global ``batch_size``."""
        devices, _ = self._devices()
        if self.batch_size % devices:
            raise FtlitError(
                f"--data.batch_size {self.batch_size} is the global batch and must divide evenly over {devices} "
                f"devices; use a multiple of {devices} (or --trainer.accumulate_grad_batches for a larger batch)."
            )
        return self.batch_size // devices

    def loader(self, dataset: Dataset, train: bool = False) -> DataLoader:
        """Training: length-grouped (or plainly shuffled) batches in an order fixed by (seed, epoch), resumable
        part-way; evaluation: longest first, so batches pad little (outputs are matched to their features by
        ``feature_index``, never by position)."""
        lengths = self.feature_lengths(dataset)
        devices, rank = self._devices()
        skip_batches = 0
        if not train:
            sampler = longest_first(lengths)
            if devices > 1:  # each feature evaluated on exactly one device
                sampler = unrepeated(sampler, num_replicas=devices, rank=rank)
        else:
            weights = self.sample_weights()
            if weights is not None:  # (drawn without regard to length: batches pad more)
                sampler = WeightedSampler(weights, self.order_seed())
            elif self.group_by_length:
                sampler = LengthGroupedSampler(lengths, self.batch_size, self.order_seed())  # a group per global batch
            else:
                sampler = ShuffledSampler(len(lengths), self.order_seed())
            position, self._resume_position = self._resume_position, None
            if position:
                sampler.set_epoch(position["epoch"])  # before Lightning does: worker processes sample at once
                skip_batches = position["batches"]
        return ResumableDataLoader(
            dataset,
            batch_size=self.train_batch_size() if train else self.eval_batch_size,
            sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            pin_memory=pins_memory(),
            persistent_workers=self.num_workers > 0,
            # worker seeds from a generator of the loader's own, not the global one that dropout draws from
            generator=torch.Generator().manual_seed(self.order_seed()),
            skip_batches=skip_batches,
        )

    def order_seed(self) -> int:
        """The seed of the training order: the run's (``seed_everything``, which Lightning keeps in PL_GLOBAL_SEED,
        where its own distributed sampler reads it), so that runs of other seeds train on other batches; without
        one, ``seed``."""
        return int(os.environ.get("PL_GLOBAL_SEED", self.seed))

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_features, train=True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.loader(self.eval_features[split]) for split in self.validation_names]

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.eval_features["test"])

    def predict_dataloader(self) -> DataLoader:
        return self.loader(self.eval_features["predict"])

    # ------------------------------------------------------------------------------------------------- resuming
    def state_dict(self) -> dict:
        """Saved in every checkpoint: where training stands in its epoch, so a resumed run goes on from that batch."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        done = batches_done_in_epoch(trainer)
        if done >= trainer.num_training_batches:  # the epoch is over: the next one starts from its beginning
            return {"train_position": {"epoch": trainer.current_epoch + 1, "batches": 0}}
        return {"train_position": {"epoch": trainer.current_epoch, "batches": done}}

    def load_state_dict(self, state_dict: dict) -> None:
        self._resume_position = state_dict.get("train_position")


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    """Tokens per row, read from the Arrow column (in the dataset's row order) without materialising the ids."""
    return pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_numpy()
