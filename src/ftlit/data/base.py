"""TransformerDataModule: what every task's data module shares — where each split comes from (local files or the
Hub, a validation set held out of train when there is none), the tokenizer, seeded subsampling, dynamically padded
and resumable batches, and the contract it hands the model.

A task writes only how its rows are checked, turned into features and described to the model (the hooks below).
"""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset, is_caching_enabled
from lightning import LightningDataModule
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorWithPadding,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

from ftlit._lightning import batches_done_in_epoch, unrepeated
from ftlit.contract import DataContract, EvalSet
from ftlit.data.checks import EmptyTextPolicy, unknown_token_share
from ftlit.data.loading import expand_data_path, load_hub_dataset, load_local_file
from ftlit.data.sampler import (
    LengthGroupedSampler,
    ResumableDataLoader,
    ShuffledSampler,
    WeightedSampler,
    longest_first,
)
from ftlit.errors import FtlitError
from ftlit.machine import default_num_workers, default_pad_multiple
from ftlit.pretrained import load_pretrained, resolve_model_path
from ftlit.settings import check_range

#: Above this share of unknown tokens in the training text, the tokenizer cannot be the model's
MAX_UNKNOWN_SHARE = 0.5
#: Files a Hugging Face tokenizer is saved as (one of the vocabulary files, with or without tokenizer.json)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)

#: The splits each stage needs besides the validation sets
STAGE_SPLITS = {"fit": ["train"], "validate": [], "test": ["test"], "predict": ["predict"]}


@dataclass
class SplitStats:
    """What ``ftlit inspect`` reports of a split: its examples' untruncated token lengths, its label counts (and
    more lines on its labels, e.g. multi-label co-occurrence), and for tasks whose answers can fall outside every
    window, how many did (lost, of how many); and any check of the task's own that failed."""

    examples: int
    lengths: np.ndarray
    labels: dict[str, int]
    lost_answers: tuple[int, int] | None = None
    label_lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class TransformerDataModule(LightningDataModule):
    """Base for task data modules. ``model_name_or_path`` is linked by the CLI from ``--model.model_name_or_path``
    so that data is always tokenised by the model's own tokenizer.

    Args:
        max_length: tokens per sequence (window) after truncation (≥ 8).
        batch_size: the global training batch size, split evenly over the devices (so a config trains the same
            way on any number of devices; must divide by the device count) (≥ 1).
        eval_batch_size: evaluation batch size per device (≥ 1, or null: batch_size).
        max_train_samples: train on at most this many rows (a seeded random subset), for quick runs (≥ 1, or
            null: all).
        max_eval_samples: evaluate or predict at most this many rows of each split (a seeded random subset) (≥ 1,
            or null: all).
        seed: seed of subsampling and held-out splits, which runs of any ``seed_everything`` then share (so they are
            scored on the same rows); the training order follows ``seed_everything`` (this seed without one).
        num_workers: DataLoader worker processes (≥ 0, or null: 4 with a GPU, else 0).
        pad_to_multiple_of: batch lengths are rounded up to this (64 bounds recompiles under
            ``--model.compile true``) (≥ 1, or null: 8 with a GPU, whose tensor cores want it, else 1: on a CPU the
            rounding is only padding).
        group_by_length: training batches of similar lengths (shuffled, seeded), so dynamic padding pads little.
        pad_to_max_length: pad every batch to max_length, as reference recipes do (for parity runs only).
        empty_text: rows whose text (or QA question/context) is empty or missing are dropped with a warning that
            counts them (``skip``), or stop the run naming them (``error``).
        validation_split: fraction of the training data held out (seeded) when there is no validation set
            (strictly between 0 and 1).
    """

    #: Where each split's rows come from: a local file per split (set by the task's __init__) …
    local_files: dict[str, str | None]
    #: … or a Hub dataset ``(path, configuration)``, used only when no local file is given
    hub: tuple[str, str | None] | None = None
    #: The Hub dataset's validation splits (none: one is held out of train)
    hub_validation_splits: tuple[str, ...] = ("validation",)

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
        pad_to_multiple_of: int | None = None,
        group_by_length: bool = True,
        pad_to_max_length: bool = False,
        empty_text: EmptyTextPolicy = "skip",
        validation_split: float = 0.1,
    ) -> None:
        super().__init__()
        check_range("--data.max_length", max_length, minimum=8)
        check_range("--data.batch_size", batch_size, minimum=1)
        check_range("--data.eval_batch_size", eval_batch_size, minimum=1, allow_none=True)
        check_range("--data.max_train_samples", max_train_samples, minimum=1, allow_none=True)
        check_range("--data.max_eval_samples", max_eval_samples, minimum=1, allow_none=True)
        check_range("--data.num_workers", num_workers, minimum=0, allow_none=True)
        check_range("--data.pad_to_multiple_of", pad_to_multiple_of, minimum=1, allow_none=True)
        check_range(
            "--data.validation_split",
            validation_split,
            minimum=0,
            maximum=1,
            include_minimum=False,
            include_maximum=False,
        )
        self.model_name_or_path = model_name_or_path
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.max_train_samples = max_train_samples
        self.max_eval_samples = max_eval_samples
        self.seed = seed
        self.num_workers = num_workers if num_workers is not None else default_num_workers()
        self.pad_to_multiple_of = pad_to_multiple_of if pad_to_multiple_of is not None else default_pad_multiple()
        self.group_by_length = group_by_length
        self.pad_to_max_length = pad_to_max_length
        self.empty_text = empty_text
        self.validation_split = validation_split
        self.rows: dict[str, Dataset] = {}  # each split's rows as featurised (after checks and subsampling)
        self.train_features: Dataset | None = None
        self.eval_features: dict[str, Dataset] = {}  # model inputs + feature_index, per evaluated split
        self.contract: DataContract | None = None
        self._built_stage: str | None = None
        self._resume_position: dict | None = None

    def set_local_files(self, files: dict[str, str | None]) -> None:
        """The local file of each split (``${FTLIT_DATA}`` and ``~`` expanded); any file means nothing is fetched."""
        self.local_files = {split: expand_data_path(path) if path else None for split, path in files.items()}

    # ------------------------------------------------------------------------------------------------- task hooks
    def check_settings(self) -> None:
        """Refuse settings that cannot work with this tokenizer, before any data is read."""

    def read_file(self, path: str) -> Dataset:
        """One local file's rows."""
        return load_local_file(path)

    def required_columns(self, split: str) -> list[str]:
        """The columns a split must have."""
        raise NotImplementedError

    #: How to point ftlit at other column names, said when a required column is missing
    column_hint = ""

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Check the splits' rows as loaded (so that errors name the file's rows); may drop rows with a warning."""
        return raw

    def hold_out(self, rows: Dataset) -> tuple[Dataset, Dataset]:
        """Split training rows into (train, validation): a seeded random fraction ``validation_split``."""
        parts = rows.train_test_split(test_size=self.validation_split, seed=self.seed)
        return parts["train"], parts["test"]

    def usable_rows(self, split: str, rows: Dataset) -> Dataset:
        """The rows a split can use (e.g. labelled ones); refuse a split left without any."""
        return rows

    def training_features(self, rows: Dataset) -> Dataset:
        """Model inputs (with their targets) for training."""
        raise NotImplementedError

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, EvalSet]:
        """Model inputs for evaluation or prediction (labels where known), and what the model needs to score or
        decode its outputs on them (features are numbered in this order: ``feature_index``)."""
        raise NotImplementedError

    def build_contract(self, eval_sets: dict[str, EvalSet]) -> DataContract:
        """The task's contract for the model, with the evaluation sets of the stage just built."""
        raise NotImplementedError

    def request_row(self, request: Mapping) -> dict:
        """One prediction request (a JSON object, ``ftlit serve``) as a predict row in the task's own columns (as
        ``adapt_columns`` leaves them); a problem with it raises RequestError naming its field."""
        raise NotImplementedError

    def example_request(self) -> dict:
        """A request this task answers (the server's warm-up, and the example it shows)."""
        raise NotImplementedError

    def split_stats(self, split: str) -> SplitStats:
        """What ``ftlit inspect`` reports of a built split."""
        raise NotImplementedError

    def sample_weights(self) -> np.ndarray | None:
        """Training examples drawn with these relative weights (with replacement) instead of each once per epoch;
        None: each once."""
        return None

    # ------------------------------------------------------------------------------------------------- splits
    @property
    def uses_local_files(self) -> bool:
        return any(self.local_files.values())

    @property
    def _local_validation_names(self) -> list[str]:
        return [split for split, path in self.local_files.items() if split.startswith("validation") and path]

    def carves_validation(self) -> bool:
        """No validation set given or on the Hub: one is held out of train."""
        if self._local_validation_names:
            return False
        return self.uses_local_files or not self.hub or not self.hub_validation_splits

    @property
    def validation_names(self) -> list[str]:
        """Names of the validation sets, in dataloader order."""
        if self._local_validation_names:
            return self._local_validation_names
        return ["validation"] if self.carves_validation() else list(self.hub_validation_splits)

    def splits_for(self, stage: str) -> list[str]:
        """The splits a stage (fit, validate, test, predict) evaluates or trains on."""
        validation = self.validation_names if stage in ("fit", "validate") else []
        return STAGE_SPLITS[stage] + validation

    def source(self, split: str) -> str:
        """How messages name a split: its file, or the Hub dataset and split."""
        if self.local_files.get(split):
            return f"'{self.local_files[split]}'"
        if split == "validation" and self.carves_validation():
            return f"the part of {self.source('train')} held out for validation"
        return f"{self.hub[0]} ({split} split)" if self.hub else f"the {split} data"

    def check_hub_split(self, split: str) -> None:
        """Refuse a Hub split that cannot serve (e.g. one whose labels are hidden)."""

    def load_split(self, split: str) -> Dataset:
        """A split's rows from its local file, else from the Hub dataset, with the columns it needs."""
        if self.local_files.get(split):
            rows = self.read_file(self.local_files[split])
        elif self.uses_local_files or not self.hub:
            flag = "validation_file" if split.startswith("validation") else f"{split}_file"
            raise FtlitError(f"No {split} data: give --data.{flag} (or a Hub dataset with that split).")
        else:
            self.check_hub_split(split)
            rows = load_hub_dataset(self.hub[0], self.hub[1], split)
        rows = self.adapt_columns(rows)
        missing = [column for column in self.required_columns(split) if column not in rows.column_names]
        if missing:
            raise FtlitError(
                f"Column(s) {missing} not found in {self.source(split)}. It has: {rows.column_names}. "
                f"{self.column_hint}"
            )
        return rows

    def adapt_columns(self, rows: Dataset) -> Dataset:
        """The rows with the task's column names (e.g. after a user's column mapping)."""
        return rows

    def raw_splits(self, splits: list[str]) -> dict[str, Dataset]:
        """Raw rows of the wanted splits, checked; a missing validation set is held out (seeded) of train.

        Every check runs on the rows as loaded, so that the rows it names are the file's rows.
        """
        wanted = set(splits)
        carve = self.carves_validation() and "validation" in wanted
        if carve:
            wanted = (wanted - {"validation"}) | {"train"}
        raw = self.check_rows({split: self.load_split(split) for split in sorted(wanted)})
        if carve:
            raw["train"], raw["validation"] = self.hold_out(raw["train"])
        return {split: raw[split] for split in splits}

    def subsample(self, dataset: Dataset, limit: int | None) -> Dataset:
        """A seeded random subset of at most ``limit`` rows (all rows when ``limit`` is None)."""
        if limit is None or limit >= len(dataset):
            return dataset
        return dataset.shuffle(seed=self.seed).select(range(limit))

    # ------------------------------------------------------------------------------------------------- stages
    def _build(self, stage: str) -> None:
        """Load, check and featurise the splits that ``stage`` needs, and write the contract for the model."""
        self.check_settings()
        eval_sets = {}
        for split, rows in self.raw_splits(self.splits_for(stage)).items():
            rows = self.usable_rows(split, rows)
            rows = self.subsample(rows, self.max_train_samples if split == "train" else self.max_eval_samples)
            self.rows[split] = rows
            if split == "train":
                self.train_features = self.training_features(rows)
                self._check_known_words(self.train_features)
            else:
                eval_sets[split] = self._evaluation_split(split, rows)
        self.contract = self.build_contract(eval_sets)

    def _evaluation_split(self, split: str, rows: Dataset) -> EvalSet:
        features, eval_set = self.evaluation_features(split, rows)
        self.eval_features[split] = features.add_column("feature_index", np.arange(len(features)))
        return eval_set

    def predict_rows(self, rows: list[dict]) -> DataContract:
        """Rows given in memory (``request_row``'s) as the predict split, checked and featurised as a predict
        file's rows are; returns the contract for the model. For ``ftlit serve``, request by request."""
        checked = self.check_rows({"predict": Dataset.from_list(rows)})["predict"]
        self.rows["predict"] = self.usable_rows("predict", checked)
        self.contract = self.build_contract({"predict": self._evaluation_split("predict", self.rows["predict"])})
        return self.contract

    def _check_known_words(self, features: Dataset) -> None:
        """Refuse to train when the tokenizer knows almost none of the text (a wrong or broken tokenizer)."""
        sample = features.select(range(min(len(features), 2000)))["input_ids"]
        share = unknown_token_share(sample, self.tokenizer)
        if share > MAX_UNKNOWN_SHARE:
            raise FtlitError(
                f"{share:.0%} of the training text's tokens are the unknown token {self.tokenizer.unk_token!r}: the "
                f"tokenizer of '{self.model_name_or_path}' does not fit this text (or its files are broken: "
                f"{tokenizer_files(self.model_name_or_path)}). Use the tokenizer the model was trained with."
            )

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

    def features(self, split: str) -> Dataset:
        """The model inputs of a built split."""
        return self.train_features if split == "train" else self.eval_features[split]

    @cached_property
    def model_config(self) -> PretrainedConfig:
        """The model's config (its vocabulary size, position limit and, for a fine-tuned model, its labels)."""
        return load_pretrained(AutoConfig.from_pretrained, self.model_name_or_path, "model config")

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.model_name_or_path, "tokenizer")
        if not tokenizer.is_fast:
            raise FtlitError(f"The tokenizer of '{self.model_name_or_path}' is not a fast (Rust) tokenizer.")
        config = self.model_config
        vocab_size = getattr(config, "vocab_size", None)
        if vocab_size and len(tokenizer) < vocab_size / 2:
            # A folder with weights but no tokenizer files still gives a (near-empty) tokenizer: every word → [UNK]
            raise FtlitError(
                f"The tokenizer of '{self.model_name_or_path}' has {len(tokenizer)} tokens, but the model embeds "
                f"{vocab_size}: its tokenizer files are missing or wrong ({tokenizer_files(self.model_name_or_path)}"
                "). Copy the tokenizer of the model it was trained from into the folder."
            )
        model_limit = tokenizer.model_max_length
        if model_limit >= 1_000_000:  # a tokenizer saved without its limit: the model's position embeddings decide
            model_limit = getattr(config, "max_position_embeddings", model_limit)
        if self.max_length > model_limit:
            raise FtlitError(
                f"--data.max_length {self.max_length} is above the model's limit of {model_limit} positions."
            )
        return tokenizer

    # ------------------------------------------------------------------------------------------------- batches
    @cached_property
    def collate(self) -> DataCollatorWithPadding:
        if self.pad_to_max_length:
            return DataCollatorWithPadding(self.tokenizer, padding="max_length", max_length=self.max_length)
        # Pads each batch to its longest member, not to max_length
        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

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
        lengths = sequence_lengths(dataset)
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
            pin_memory=torch.cuda.is_available(),
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


def tokenizer_files(model_name_or_path: str) -> str:
    """Which tokenizer files a local model folder has, for messages."""
    folder = Path(resolve_model_path(model_name_or_path))
    if not folder.is_dir():
        return "a Hub model"
    present = sorted(name for name in TOKENIZER_FILES if (folder / name).is_file())
    return f"the folder holds {', '.join(present) if present else 'none of ' + ', '.join(TOKENIZER_FILES)}"


def map_rows(rows: Dataset, function, **kwargs) -> Dataset:
    """``rows.map(function, **kwargs)``. With datasets' cache off (as under ``ftlit serve``), the result's fingerprint
    is random instead of hashed from the function: the hash only names cache files, and hashing the tokenizer that a
    featuriser uses (its whole vocabulary) takes longer than the model takes to answer a request."""
    if not is_caching_enabled():
        kwargs.setdefault("new_fingerprint", secrets.token_hex(16))
    return rows.map(function, **kwargs)


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    """Tokens per row, read from the Arrow column (in the dataset's row order) without materialising the ids."""
    return pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_numpy()
