"""ClassificationDataModule: GLUE, IMDb, SNLI or local files → tokenised, dynamically padded batches."""

import logging
import math
from typing import Literal

from datasets import Dataset
from transformers import AutoConfig

from ftlit.data.base import TransformerDataModule
from ftlit.data.checks import check_labels, drop_blank_texts
from ftlit.data.loading import load_hub_dataset, load_local_file
from ftlit.data.tasks import TaskSpec, get_task
from ftlit.data.windows import check_stride, token_windows
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained

log = logging.getLogger(__name__)

# How datasets mark a row without a gold label (SNLI: -1 on the Hub, "-" in the original files)
_UNLABELED = (None, -1, "-1", "", "-")


def label_names_from_values(values: list) -> list[str]:
    """Sorted distinct labels as names; integer labels sort as numbers (so 2 comes before 10)."""
    distinct = set(values) - set(_UNLABELED)
    if all(isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit()) for v in distinct):
        return [str(v) for v in sorted(distinct, key=int)]
    return sorted(str(v) for v in distinct)


def label_id(value: object, label_names: list[str]) -> int | None:
    """A raw label's id: by name first ("positive", or "3" for integer-named labels), else as an index; None when
    it is neither."""
    if str(value) in label_names:
        return label_names.index(str(value))
    is_index = isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    if is_index and 0 <= int(value) < len(label_names):
        return int(value)
    return None


def is_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class ClassificationDataModule(TransformerDataModule):
    """Sentence and sentence-pair classification (or regression) data.

    Args:
        task: a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli), imdb, snli, or custom.
        dataset_name: a Hub dataset to load instead of the task's own (e.g. ``scikit-learn/imdb``).
        dataset_config: the Hub dataset's configuration name, if it has several.
        train_file: local csv/tsv/json/jsonl/parquet file (gz allowed); when local files are given nothing is fetched.
        validation_file: one file, or a list (MNLI: matched then mismatched); each is evaluated and reported.
        test_file: local file for ``ftlit test``.
        predict_file: local file for ``ftlit predict`` (labels not needed).
        text_fields: one column (single sentence) or two (pair); default: the task's.
        label_field: the label column.
        validation_split: fraction of train held out (seeded) when there is no validation set (IMDb, a lone file).
        max_length: tokens per example (per window with ``long_text: window``).
        long_text: what happens to a text longer than max_length: ``truncate`` keeps its beginning; ``window`` cuts
            it into overlapping windows that train as examples of their own (each with the text's label), and the
            model's logits over a text's windows are aggregated into one prediction per text (see
            ``SequenceClassificationModule.window_aggregation``). Single-text tasks only.
        doc_stride: tokens that consecutive windows share (default: a quarter of max_length).
        Batching, subsampling and seed: see TransformerDataModule.
    """

    def __init__(
        self,
        model_name_or_path: str,
        task: str = "custom",
        dataset_name: str | None = None,
        dataset_config: str | None = None,
        train_file: str | None = None,
        validation_file: str | list[str] | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        text_fields: list[str] | None = None,
        label_field: str = "label",
        validation_split: float = 0.1,
        max_length: int = 128,
        long_text: Literal["truncate", "window"] = "truncate",
        doc_stride: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, **kwargs)
        self.spec: TaskSpec = get_task(task)
        self.text_fields = tuple(text_fields or self.spec.text_fields)
        if not 1 <= len(self.text_fields) <= 2:
            raise FtlitError(f"--data.text_fields needs one or two columns, got {list(self.text_fields)}.")
        if long_text == "window" and len(self.text_fields) != 1:
            raise FtlitError(
                f"--data.long_text window cuts one text into windows; {task} has two ({list(self.text_fields)}). "
                "Use --data.long_text truncate for sentence pairs."
            )
        self.long_text = long_text
        self.doc_stride = max_length // 4 if doc_stride is None else doc_stride
        if not 0 < validation_split < 1:
            raise FtlitError(f"--data.validation_split must be between 0 and 1, got {validation_split}.")
        self.label_field = label_field
        self.hub = (dataset_name, dataset_config) if dataset_name else self.spec.hub
        self.local_files = {
            "train": train_file,
            "test": test_file,
            "predict": predict_file,
            **self._validation_files(validation_file),
        }
        self.validation_split = validation_split
        self.label_names: list[str] | None = None
        self.datasets: dict[str, Dataset] = {}
        self.rows: dict[str, Dataset] = {}  # each split's rows as tokenised (after filtering and subsampling)

    # ----------------------------------------------------------------------------------------------- splits
    def _validation_files(self, validation_file: str | list[str] | None) -> dict[str, str]:
        files = [validation_file] if isinstance(validation_file, str) else list(validation_file or [])
        names = self.spec.validation_splits if len(files) == len(self.spec.validation_splits) else ()
        names = names or ["validation"] + [f"validation_{i}" for i in range(1, len(files))]
        return dict(zip(names, files))

    @property
    def _local_validation_names(self) -> list[str]:
        return [split for split, path in self.local_files.items() if split.startswith("validation") and path]

    @property
    def _uses_local_files(self) -> bool:
        return any(self.local_files.values())

    def _carves_validation(self) -> bool:
        """No validation set given or on the Hub: one is held out of train."""
        if self._local_validation_names:
            return False
        return self._uses_local_files or not self.hub or not self.spec.validation_splits

    @property
    def validation_names(self) -> list[str]:
        """Names of the validation sets, in dataloader order."""
        if self._local_validation_names:
            return self._local_validation_names
        return ["validation"] if self._carves_validation() else list(self.spec.validation_splits)

    def _source(self, split: str) -> str:
        """How messages name a split: its file, or the Hub dataset and split."""
        if self.local_files.get(split):
            return f"'{self.local_files[split]}'"
        if split == "validation" and self._carves_validation():
            return f"the part of {self._source('train')} held out for validation"
        return f"{self.hub[0]} ({split} split)" if self.hub else f"the {split} data"

    def _load_split(self, split: str) -> Dataset:
        if self.local_files.get(split):
            rows = load_local_file(self.local_files[split], self.spec.tsv)
        elif self._uses_local_files or not self.hub:
            flag = "validation_file" if split.startswith("validation") else f"{split}_file"
            raise FtlitError(f"No {split} data: give --data.{flag} (or a Hub dataset with that split).")
        elif split == "test" and self.spec.test_split is None and self.hub == self.spec.hub:
            raise FtlitError(
                f"The {self.spec.name} test labels on the Hub are hidden: use `ftlit validate`, "
                "or give a labelled --data.test_file."
            )
        else:
            rows = load_hub_dataset(self.hub[0], self.hub[1], split)
        needed = list(self.text_fields) + ([self.label_field] if split != "predict" else [])
        missing = [column for column in needed if column not in rows.column_names]
        if missing:
            raise FtlitError(
                f"Column(s) {missing} not found in {self._source(split)}. It has: {rows.column_names}. "
                "Set --data.text_fields / --data.label_field to the right names."
            )
        return rows

    def _raw_splits(self, splits: list[str]) -> dict[str, Dataset]:
        """Raw rows of the wanted splits, checked; a missing validation set is carved (seeded) out of train.

        Every check runs on the rows as loaded, so that the rows it names are the file's rows.
        """
        wanted = set(splits)
        carve = self._carves_validation() and bool(wanted & {"train", "validation"})
        if carve:
            wanted = (wanted - {"validation"}) | {"train"}
        raw = {split: self._load_split(split) for split in sorted(wanted)}
        self.label_names = self._resolve_label_names(raw)
        for split, rows in raw.items():
            if split != "predict":
                self._check_labels(split, rows)
            raw[split] = drop_blank_texts(rows, self.text_fields, self._source(split), self.empty_text)
        if carve:
            parts = raw["train"].train_test_split(test_size=self.validation_split, seed=self.seed)
            raw["train"], raw["validation"] = parts["train"], parts["test"]
        return {split: raw[split] for split in splits}

    # ----------------------------------------------------------------------------------------------- labels
    def _resolve_label_names(self, raw: dict[str, Dataset]) -> list[str] | None:
        if self.spec.regression:
            return None
        if self.spec.label_names:
            return list(self.spec.label_names)
        if self.label_names is not None:  # resolved by an earlier stage (fit, then validate of the best checkpoint)
            return self.label_names
        if "train" in raw or self.local_files["train"] or (self.hub and not self._uses_local_files):
            train = raw["train"] if "train" in raw else self._load_split("train")
            return label_names_from_values(train[self.label_field])
        # No training data (validate/test/predict of a custom task): the labels the model was trained with
        config = load_pretrained(AutoConfig.from_pretrained, self.model_name_or_path, "model config")
        names = [config.id2label[i] for i in range(config.num_labels)]
        if names == [f"LABEL_{i}" for i in range(config.num_labels)]:
            raise FtlitError(
                "A custom task needs its label names: give --data.train_file, or a fine-tuned model (an ftlit "
                "export) as --model.model_name_or_path."
            )
        return names

    def _check_labels(self, split: str, rows: Dataset) -> None:
        values = rows[self.label_field]
        if self.spec.regression:
            check_labels(values, is_number, self._source(split), self.label_field, "a number (a regression score)")
            return
        names = self.label_names
        if self.spec.label_names:
            expected = f"one of the {self.spec.name} labels {names} or their ids 0-{len(names) - 1}"
        else:  # learnt from the training data (or from the fine-tuned model)
            expected = f"a label of the training data: {names}"
        check_labels(
            values, lambda v: v in _UNLABELED or label_id(v, names) is not None, self._source(split),
            self.label_field, expected,
        )  # fmt: skip

    # ----------------------------------------------------------------------------------------------- stages
    def _splits_for(self, stage: str) -> list[str]:
        return {
            "fit": ["train", *self.validation_names],
            "validate": self.validation_names,
            "test": ["test"],
            "predict": ["predict"],
        }[stage]

    def _build(self, stage: str) -> None:
        if self.long_text == "window":
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
            check_stride(self.doc_stride, room)
        for split, rows in self._raw_splits(self._splits_for(stage)).items():
            labelled = split != "predict"
            if labelled:
                before = len(rows)
                rows = rows.filter(lambda label: label not in _UNLABELED, input_columns=self.label_field)
                if len(rows) < before:
                    log.info("%s: dropped %d rows without a gold label", split, before - len(rows))
                if len(rows) == 0:
                    raise FtlitError(f"The {split} data ({self._source(split)}) has no labelled rows.")
            rows = self.subsample(rows, self.max_train_samples if split == "train" else self.max_eval_samples)
            self.rows[split] = rows
            features = self._tokenize(rows, labelled)
            # training sees windows as examples of their own; evaluation groups them by document_index
            self.datasets[split] = features.remove_columns("document_index") if split == "train" else features

    def _tokenize(self, rows: Dataset, labelled: bool) -> Dataset:
        """Rows → features, each with the ``document_index`` of its row: one feature per row when truncating, one
        per window (with the row's label) when windowing."""
        tokenizer, fields, max_length = self.tokenizer, self.text_fields, self.max_length
        label_names, label_field = self.label_names, self.label_field
        windowed, stride = self.long_text == "window", self.doc_stride

        def encode_label(value: object) -> float | int:
            return float(value) if label_names is None else label_id(value, label_names)

        def tokenize(batch: dict, indices: list[int]) -> dict:
            if windowed:
                names = [f"document {i}" for i in indices]
                encoding, _ = token_windows(tokenizer, batch[fields[0]], max_length, stride, names)
                rows = encoding["overflow_to_sample_mapping"]
            else:
                encoding = tokenizer(*(batch[f] for f in fields), truncation=True, max_length=max_length)
                rows = range(len(indices))
            features = {name: encoding[name] for name in tokenizer.model_input_names}
            features["document_index"] = [indices[row] for row in rows]
            if labelled:
                features["labels"] = [encode_label(batch[label_field][row]) for row in rows]
            return features

        desc = "Cutting windows" if windowed else "Tokenising"
        return rows.map(tokenize, batched=True, with_indices=True, remove_columns=rows.column_names, desc=desc)

    # ----------------------------------------------------------------------------------------------- loaders
    def train_dataloader(self):
        return self.loader(self.datasets["train"], train=True)

    def val_dataloader(self):
        return [self.loader(self.datasets[name]) for name in self.validation_names]

    def test_dataloader(self):
        return self.loader(self.datasets["test"])

    def predict_dataloader(self):
        return self.loader(self.datasets["predict"])
