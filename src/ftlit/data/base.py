"""What every ftlit data module shares: the tokenizer, seeded subsampling and dynamically padded batches."""

from functools import cached_property

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoTokenizer, DataCollatorWithPadding, PreTrainedTokenizerBase

from ftlit.data.checks import EmptyTextPolicy
from ftlit.data.sampler import LengthGroupedSampler, ResumableDataLoader, ShuffledSampler, longest_first
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained


class TransformerDataModule(LightningDataModule):
    """Base for task data modules. ``model_name_or_path`` is linked by the CLI from ``--model.model_name_or_path``
    so that data is always tokenised by the model's own tokenizer.

    Args:
        max_length: tokens per sequence (window) after truncation.
        batch_size: the global training batch size, split evenly over the devices (so a config trains the same
            way on any number of devices; must divide by the device count).
        eval_batch_size: evaluation batch size per device (default: batch_size).
        max_train_samples / max_eval_samples: seeded random subsets, for quick runs.
        seed: seed of subsampling and held-out splits.
        num_workers: DataLoader worker processes (default: 4 with a GPU, else 0).
        pad_to_multiple_of: batch lengths are rounded up to this (8 suits tensor cores; 64 bounds recompiles
            under ``--model.compile true``).
        group_by_length: training batches of similar lengths (shuffled, seeded), so dynamic padding pads little.
        pad_to_max_length: pad every batch to max_length, as reference recipes do (for parity runs only).
        empty_text: rows whose text (or QA question/context) is empty or missing are dropped with a warning that
            counts them (``skip``), or stop the run naming them (``error``).
    """

    def __init__(
        self,
        model_name_or_path: str,
        max_length: int,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        seed: int = 42,
        num_workers: int | None = None,
        pad_to_multiple_of: int = 8,
        group_by_length: bool = True,
        pad_to_max_length: bool = False,
        empty_text: EmptyTextPolicy = "skip",
    ) -> None:
        super().__init__()
        if max_length < 8:
            raise FtlitError(f"--data.max_length must be at least 8 tokens, got {max_length}.")
        self.model_name_or_path = model_name_or_path
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.max_train_samples = max_train_samples
        self.max_eval_samples = max_eval_samples
        self.seed = seed
        self.num_workers = num_workers if num_workers is not None else (4 if torch.cuda.is_available() else 0)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.group_by_length = group_by_length
        self.pad_to_max_length = pad_to_max_length
        self.empty_text = empty_text
        self._built_stage: str | None = None
        self._resume_position: dict | None = None

    # ------------------------------------------------------------------------------------------------- stages
    def _build(self, stage: str) -> None:
        """Load, check and tokenise the splits that ``stage`` (fit, validate, test, predict) needs."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        # One process per machine loads (downloads) and tokenises; datasets caches the result for the others
        self._build_once("fit" if self.trainer is None else self.trainer.state.fn.value)

    def setup(self, stage: str) -> None:
        self._build_once(stage)

    def _build_once(self, stage: str) -> None:
        # The process that ran prepare_data already holds this stage's data; building it again would only repeat
        # the loading and the checks
        if stage != self._built_stage:
            self._build(stage)
            self._built_stage = stage

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.model_name_or_path, "tokenizer")
        if not tokenizer.is_fast:
            raise FtlitError(f"The tokenizer of '{self.model_name_or_path}' is not a fast (Rust) tokenizer.")
        model_limit = tokenizer.model_max_length
        if model_limit >= 1_000_000:  # a tokenizer saved without its limit: the model's position embeddings decide
            config = load_pretrained(AutoConfig.from_pretrained, self.model_name_or_path, "model config")
            model_limit = getattr(config, "max_position_embeddings", model_limit)
        if self.max_length > model_limit:
            raise FtlitError(
                f"--data.max_length {self.max_length} is above the model's limit of {model_limit} positions."
            )
        return tokenizer

    @cached_property
    def collate(self) -> DataCollatorWithPadding:
        if self.pad_to_max_length:
            return DataCollatorWithPadding(self.tokenizer, padding="max_length", max_length=self.max_length)
        # Pads each batch to its longest member, not to max_length
        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    def subsample(self, dataset: Dataset, limit: int | None) -> Dataset:
        """A seeded random subset of at most ``limit`` rows (all rows when ``limit`` is None)."""
        if limit is None or limit >= len(dataset):
            return dataset
        return dataset.shuffle(seed=self.seed).select(range(limit))

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
        part-way; evaluation: longest first, so batches pad little (results are matched to their rows by index,
        never by position)."""
        lengths = sequence_lengths(dataset)
        devices, rank = self._devices()
        skip_batches = 0
        if not train:
            sampler = longest_first(lengths)
            if devices > 1:
                # Each row on exactly one device. Lightning's DistributedSampler would repeat rows to even out the
                # devices, and metrics would count them twice; a DistributedSampler of our own is left as it is.
                sampler = UnrepeatedDistributedSamplerWrapper(sampler, num_replicas=devices, rank=rank, shuffle=False)
        else:
            if self.group_by_length:
                sampler = LengthGroupedSampler(lengths, self.batch_size, self.seed)  # one group per global batch
            else:
                sampler = ShuffledSampler(len(lengths), self.seed)
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
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            # worker seeds from a generator of the loader's own, not the global one that dropout draws from
            generator=torch.Generator().manual_seed(self.seed),
            skip_batches=skip_batches,
        )

    # ------------------------------------------------------------------------------------------------- resuming
    def state_dict(self) -> dict:
        """Saved in every checkpoint: where training stands in its epoch, so a resumed run goes on from that batch."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if done >= trainer.num_training_batches:  # the epoch is over: the next one starts from its beginning
            return {"train_position": {"epoch": trainer.current_epoch + 1, "batches": 0}}
        return {"train_position": {"epoch": trainer.current_epoch, "batches": done}}

    def load_state_dict(self, state_dict: dict) -> None:
        self._resume_position = state_dict.get("train_position")


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    """Tokens per row, read from the Arrow column without materialising the token ids."""
    if dataset._indices is not None:  # a selection: the Arrow table still holds every row
        dataset = dataset.flatten_indices()
    return pc.list_value_length(dataset.data.column("input_ids")).to_numpy()
