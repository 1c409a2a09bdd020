"""ClassificationDataModule: GLUE, IMDb, SNLI or local files → tokenised, dynamically padded batches."""

import logging
from typing import Literal

import numpy as np
from datasets import Dataset
from transformers import AutoConfig

from ftlit.data.base import SplitStats, TransformerDataModule
from ftlit.data.checks import check_labels, check_text_types, drop_blank_texts
from ftlit.data.loading import load_local_file
from ftlit.data.windows import check_stride, token_windows
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained
from ftlit.settings import check_range
from ftlit.tasks.classification.contract import ClassificationContract, DocumentsEvalSet
from ftlit.tasks.classification.labels import (
    UNLABELED,
    check_learnt_labels,
    is_number,
    label_id,
    label_names_from_values,
)
from ftlit.tasks.classification.registry import TaskSpec, get_task

log = logging.getLogger(__name__)


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
        validation_split: fraction of train held out (seeded) when there is no validation set (IMDb, a lone file)
            (strictly between 0 and 1).
        max_length: tokens per example (per window with ``long_text: window``) (≥ 8).
        long_text: what happens to a text longer than max_length: ``truncate`` keeps its beginning; ``window`` cuts
            it into overlapping windows that train as examples of their own (each with the text's label), and the
            model's logits over a text's windows are aggregated into one prediction per text (see
            ``SequenceClassificationModule.window_aggregation``). Single-text tasks only.
        doc_stride: tokens that consecutive windows share, fewer than a window holds (≥ 0, or null: a quarter of
            max_length).
        Batching, subsampling and seed: see TransformerDataModule.
    """

    column_hint = "Set --data.text_fields / --data.label_field to the right names."

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
        super().__init__(model_name_or_path, max_length, validation_split=validation_split, **kwargs)
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
        check_range("--data.doc_stride", doc_stride, minimum=0, allow_none=True)  # its maximum needs the tokenizer
        self.doc_stride = max_length // 4 if doc_stride is None else doc_stride
        self.label_field = label_field
        self.hub = (dataset_name, dataset_config) if dataset_name else self.spec.hub
        self.hub_validation_splits = self.spec.validation_splits
        self.set_local_files(
            {"train": train_file, "test": test_file, "predict": predict_file, **self._validation_files(validation_file)}
        )
        self.label_names: list[str] | None = None

    def _validation_files(self, validation_file: str | list[str] | None) -> dict[str, str]:
        files = [validation_file] if isinstance(validation_file, str) else list(validation_file or [])
        names = self.spec.validation_splits if len(files) == len(self.spec.validation_splits) else ()
        names = names or ["validation"] + [f"validation_{i}" for i in range(1, len(files))]
        return dict(zip(names, files))

    # ----------------------------------------------------------------------------------------------- rows
    def read_file(self, path: str) -> Dataset:
        return load_local_file(path, self.spec.tsv)

    def check_hub_split(self, split: str) -> None:
        if split == "test" and self.spec.test_split is None and self.hub == self.spec.hub:
            raise FtlitError(
                f"The {self.spec.name} test labels on the Hub are hidden: use `ftlit validate`, "
                "or give a labelled --data.test_file."
            )

    def required_columns(self, split: str) -> list[str]:
        return list(self.text_fields) + ([self.label_field] if split != "predict" else [])

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Labels valid for the task (names learnt from the training data for a custom task); rows without text
        dropped or refused."""
        for split, rows in raw.items():
            check_text_types(rows, self.text_fields, self.source(split))
        if "train" in raw and not self.spec.regression and not self.spec.label_names:
            check_learnt_labels(raw["train"][self.label_field], self.source("train"), self.label_field)
        self.label_names = self._resolve_label_names(raw)
        checked = {}
        for split, rows in raw.items():
            if split != "predict":
                self._check_labels(split, rows)
            checked[split] = drop_blank_texts(rows, self.text_fields, self.source(split), self.empty_text)
        return checked

    def usable_rows(self, split: str, rows: Dataset) -> Dataset:
        if split == "predict":
            return rows
        before = len(rows)
        rows = rows.filter(lambda label: label not in UNLABELED, input_columns=self.label_field)
        if len(rows) < before:
            log.info("%s: dropped %d rows without a gold label", split, before - len(rows))
        if len(rows) == 0:
            raise FtlitError(f"The {split} data ({self.source(split)}) has no labelled rows.")
        return rows

    # ----------------------------------------------------------------------------------------------- labels
    def _resolve_label_names(self, raw: dict[str, Dataset]) -> list[str] | None:
        if self.spec.regression:
            return None
        if self.spec.label_names:
            return list(self.spec.label_names)
        if self.label_names is not None:  # resolved by an earlier stage (fit, then validate of the best checkpoint)
            return self.label_names
        if "train" in raw or self.local_files["train"] or (self.hub and not self.uses_local_files):
            train = raw["train"] if "train" in raw else self.load_split("train")
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
            check_labels(values, is_number, self.source(split), self.label_field, "a number (a regression score)")
            return
        names = self.label_names
        if self.spec.label_names:
            expected = f"one of the {self.spec.name} labels {names} or their ids 0-{len(names) - 1}"
        else:  # learnt from the training data (or from the fine-tuned model)
            expected = f"a label of the training data: {names}"
        check_labels(
            values, lambda v: v in UNLABELED or label_id(v, names) is not None, self.source(split),
            self.label_field, expected,
        )  # fmt: skip

    # ----------------------------------------------------------------------------------------------- features
    def check_settings(self) -> None:
        if self.long_text == "window":
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
            check_stride(self.doc_stride, room)

    def training_features(self, rows: Dataset) -> Dataset:
        # windows train as examples of their own
        return self._tokenize(rows, labelled=True).remove_columns("document_index")

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, DocumentsEvalSet]:
        features = self._tokenize(rows, labelled=split != "predict")
        eval_set = DocumentsEvalSet(
            split, num_examples=len(rows), num_features=len(features),
            document_index=np.asarray(features["document_index"], dtype=np.int64),
            rows=rows if split == "predict" else None,
        )  # fmt: skip
        return features.remove_columns("document_index"), eval_set

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

    def build_contract(self, eval_sets: dict[str, DocumentsEvalSet]) -> ClassificationContract:
        labels = tuple(self.label_names) if self.label_names is not None else None
        return ClassificationContract(self.max_length, tuple(self.validation_names), eval_sets, self.spec, labels)

    # ----------------------------------------------------------------------------------------------- inspect
    def split_stats(self, split: str) -> SplitStats:
        rows = self.rows[split]
        texts = [list(rows[name]) for name in self.text_fields]
        lengths = np.array([len(ids) for ids in self.tokenizer(*texts, verbose=False)["input_ids"]])
        labels = {}
        if self.label_names is not None and split != "predict":
            ids = [label_id(value, self.label_names) for value in rows[self.label_field]]
            labels = {name: ids.count(i) for i, name in enumerate(self.label_names)}
        return SplitStats(len(rows), lengths, labels)
