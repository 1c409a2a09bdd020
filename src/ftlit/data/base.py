"""TransformerDataModule: what every task's data module shares — where each split comes from (local files or the
Hub, a validation set held out of train when there is none), the tokenizer, seeded subsampling, dynamically padded
and resumable batches, and the contract it hands the model.

A task writes only how its rows are checked, turned into features and described to the model (the hooks below,
and ``BatchLoading``'s for features that hold more than one sequence).
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from datasets import Dataset, is_caching_enabled
from transformers import AutoConfig, PretrainedConfig, PreTrainedTokenizerBase

from ftlit.contract import DataContract, EvalSet
from ftlit.data.batches import BatchLoading
from ftlit.data.checks import EmptyTextPolicy
from ftlit.data.loading import expand_data_path, load_hub_dataset, load_local_file
from ftlit.data.tokenizer import check_known_words, checked_tokenizer, featurising_fingerprint
from ftlit.errors import FtlitError
from ftlit.machine import default_num_workers, default_pad_multiple
from ftlit.pretrained import load_pretrained
from ftlit.settings import check_range

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


class TransformerDataModule(BatchLoading):
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
    #: Settings that apply to a run's own data files only: evaluating its export anew (``ftlit serve``, the checks
    #: of ``ftlit export``) leaves them out
    file_only_settings: tuple[str, ...] = ()

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

    def token_sequences(self, features: Dataset) -> list[list[int]]:
        """Every token sequence the features hold, special tokens included, one list each (what the checks of the
        tokenizer and ``ftlit inspect`` read); a feature holding several sequences gives each."""
        return features["input_ids"]

    def padded_sequences(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The ids and attention masks of a collated batch as (sequences, positions), in ``token_sequences``'s
        order (``ftlit inspect`` checks the padding on them)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        return ids.reshape(-1, ids.shape[-1]), mask.reshape(-1, mask.shape[-1])

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
                sample = self.train_features.select(range(min(len(self.train_features), 2000)))
                check_known_words(self.token_sequences(sample), self.tokenizer, self.model_name_or_path)
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
        return checked_tokenizer(self.model_name_or_path, self.model_config, self.max_length)


def map_rows(rows: Dataset, function, **kwargs) -> Dataset:
    """``rows.map(function, **kwargs)``. The result's fingerprint (which names its cache files) hashes a tokenizer
    handed over in ``fn_kwargs`` by what decides its encoding (``featurising_fingerprint``), not by pickling it; with
    datasets' cache off (as under ``ftlit serve``) it is random: it names no file then."""
    if not is_caching_enabled():
        kwargs.setdefault("new_fingerprint", secrets.token_hex(16))
    elif "new_fingerprint" not in kwargs and (fingerprint := featurising_fingerprint(rows, function, kwargs)):
        kwargs["new_fingerprint"] = fingerprint
    return rows.map(function, **kwargs)
