"""ClassificationDataModule: GLUE, IMDb, SNLI or local files → tokenised, dynamically padded batches."""

import itertools
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Literal

import numpy as np
from datasets import Dataset, List, Value

from ftlit.data.base import SplitStats, map_rows
from ftlit.data.checks import check_text_types, column, drop_blank_texts
from ftlit.data.loading import expand_data_path, load_local_file
from ftlit.data.requests import check_fields, text_field
from ftlit.data.windows import check_stride, token_windows
from ftlit.errors import FtlitError, RequestError
from ftlit.settings import check_range
from ftlit.tasks.classification.contract import ClassificationContract, DocumentsEvalSet
from ftlit.tasks.classification.label_rules import ClassificationLabels
from ftlit.tasks.classification.labels import UNLABELED_BY_PROBLEM, check_learnt_labels, label_id, label_set
from ftlit.tasks.classification.presets import DatasetPreset, ProblemType, get_preset

log = logging.getLogger(__name__)


class ClassificationDataModule(ClassificationLabels):
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
        label_field: the label column (default: the task's; ``label``, GoEmotions ``labels``).
        problem_type: ``single_label`` (one class per text), ``multi_label`` (any number of classes per text) or
            ``regression`` (a number per text); default: the task's, and for a custom task ``multi_label`` when the
            label column holds lists (or ``label_fields`` is set), else ``single_label``.
        label_fields: multi-label data as one 0/1 column per label (their names are the label names).
        label_delimiter: what separates the labels of a multi-label text given as one string (``"3,27"``).
        label_names_file: label names, one per line (line N names label id N − 1, as GoEmotions' emotions.txt);
            labels in the data may then be names or ids.
        allow_empty_labels: let a multi-label text have no label at all (refused by default: usually an error).
        sampling: ``natural``: every training example once per epoch; ``balanced``: examples drawn (seeded, with
            replacement) so that every class is drawn about equally often; for multi-label data a text is drawn by
            its rarest label. For class imbalance; the alternative is ``--model.class_weights``.
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
        label_field: str | None = None,
        problem_type: ProblemType | None = None,
        label_fields: list[str] | None = None,
        label_delimiter: str = ",",
        label_names_file: str | None = None,
        allow_empty_labels: bool = False,
        sampling: Literal["natural", "balanced"] = "natural",
        validation_split: float = 0.1,
        max_length: int = 128,
        long_text: Literal["truncate", "window"] = "truncate",
        doc_stride: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, validation_split=validation_split, **kwargs)
        self.spec: DatasetPreset = get_preset(task)
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
        self.label_field = label_field or self.spec.label_field
        self.problem_type = self._given_problem_type(problem_type, label_fields)
        if label_fields is not None and (len(label_fields) < 2 or len(set(label_fields)) < len(label_fields)):
            raise FtlitError(f"--data.label_fields needs two or more distinct 0/1 columns, got {label_fields}.")
        if not label_delimiter:
            raise FtlitError("--data.label_delimiter cannot be empty: use the character between labels, e.g. ','.")
        if label_names_file is not None and not label_names_file.strip():
            raise FtlitError("--data.label_names_file is empty: give the path of a file with one label name per line.")
        if label_names_file and self.spec.label_names:
            raise FtlitError(f"--data.label_names_file: {task} has its own labels; a names file is for a custom task.")
        if label_names_file and (label_fields or self.problem_type == "regression"):
            raise FtlitError(
                "--data.label_names_file names class labels: "
                + ("--data.label_fields already names them." if label_fields else "a regression has none.")
            )
        if sampling == "balanced" and self.problem_type == "regression":
            raise FtlitError("--data.sampling balanced balances classes; a regression has none: use natural.")
        self.label_fields = tuple(label_fields) if label_fields else None
        self.label_delimiter = label_delimiter
        self.label_names_file = expand_data_path(label_names_file) if label_names_file else None
        self.allow_empty_labels = allow_empty_labels
        self.sampling = sampling
        self.train_label_counts: tuple[int, ...] | None = None
        self.train_target_stats: tuple[float, float] | None = None
        self.hub = (dataset_name, dataset_config) if dataset_name else self.spec.hub
        self.hub_validation_splits = self.spec.validation_splits
        self.set_local_files(
            {"train": train_file, "test": test_file, "predict": predict_file, **self._validation_files(validation_file)}
        )
        self.label_names: list[str] | None = None

    def _given_problem_type(self, given: ProblemType | None, label_fields: list[str] | None) -> ProblemType | None:
        """The problem type known before any data is read (None: a custom task's, found in its labels)."""
        fixed = self.spec.problem_type
        if label_fields is not None:
            if given not in (None, "multi_label") or fixed not in (None, "multi_label"):
                raise FtlitError(
                    f"--data.label_fields gives multi-label data (one 0/1 column per label); {self.spec.name} is "
                    f"{given or fixed}."
                )
            return "multi_label"
        if given is not None and fixed is not None and given != fixed:
            raise FtlitError(
                f"--data.problem_type {given}: {self.spec.name} is a {fixed} task. Use --data.task custom (with "
                "--data.train_file) for your own labels."
            )
        return given or fixed

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
        if split == "predict":
            return list(self.text_fields)
        return list(self.text_fields) + list(self.label_fields or [self.label_field])

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Labels valid for the task (names learnt from the training data for a custom task); rows without text
        dropped or refused."""
        for split, rows in raw.items():
            check_text_types(rows, self.text_fields, self.source(split))
        if self.label_fields:
            raw = {split: self._label_sets_from_columns(split, rows) for split, rows in raw.items()}
        self.problem_type = self._resolve_problem_type(raw)
        for split, rows in raw.items():
            if split == "predict":
                continue
            if self.problem_type == "multi_label":
                self._check_label_set_members(split, rows)
            else:
                self._refuse_label_lists(split, rows)
        if "train" in raw and self.problem_type == "single_label" and not self.spec.label_names:
            check_learnt_labels(raw["train"][self.label_field], self.source("train"), self.label_field)
        self.label_names = self._resolve_label_names(raw)
        checked = {}
        for split, rows in raw.items():
            if split != "predict":
                self._check_labels(split, rows)
            checked[split] = drop_blank_texts(rows, self.text_fields, self.source(split), self.empty_text)
        if "train" in checked:
            self._check_learnable(checked["train"])
        return checked

    def usable_rows(self, split: str, rows: Dataset) -> Dataset:
        if split == "predict":
            return rows
        before = len(rows)
        unlabeled = UNLABELED_BY_PROBLEM[self.problem_type]
        rows = rows.filter(lambda label: label not in unlabeled, input_columns=self.label_field)
        if len(rows) < before:
            log.info("%s: dropped %d rows without a gold label", split, before - len(rows))
        if len(rows) == 0:
            raise FtlitError(f"The {split} data ({self.source(split)}) has no labelled rows.")
        return rows

    # ----------------------------------------------------------------------------------------------- features
    def check_settings(self) -> None:
        if self.long_text == "window":
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
            check_stride(self.doc_stride, room)

    def training_features(self, rows: Dataset) -> Dataset:
        # windows train as examples of their own
        features = self._tokenize(rows, labelled=True).remove_columns("document_index")
        if self.problem_type == "regression":
            targets = np.asarray(features["labels"], dtype=np.float64)
            self.train_target_stats = (float(targets.mean()), float(targets.std()))
        else:
            self.train_label_counts = tuple(int(n) for n in label_counts(features["labels"], len(self.label_names)))
        return features

    def sample_weights(self) -> np.ndarray | None:
        """``sampling: balanced``: each training example's weight, the inverse of its class's count (a multi-label
        text's rarest label), so that every class is drawn about equally often."""
        if self.sampling != "balanced":
            return None
        inverse = 1.0 / np.maximum(np.asarray(self.train_label_counts, dtype=np.float64), 1)
        labels = self.train_features.with_format("numpy")["labels"]
        if self.problem_type == "single_label":
            return inverse[labels]
        weights = (labels * inverse).max(axis=1)
        return np.where(weights > 0, weights, inverse.min())  # a text without labels: as the commonest label

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, DocumentsEvalSet]:
        features = self._tokenize(rows, labelled=split != "predict")
        eval_set = DocumentsEvalSet(
            split,
            num_examples=len(rows),
            num_features=len(features),
            document_index=np.asarray(features["document_index"], dtype=np.int64),
            rows=rows if split == "predict" else None,
        )
        return features.remove_columns("document_index"), eval_set

    def _tokenize(self, rows: Dataset, labelled: bool) -> Dataset:
        """Rows → features, each with the ``document_index`` of its row: one feature per row when truncating, one
        per window (with the row's label) when windowing."""
        settings = {
            "tokenizer": self.tokenizer,
            "fields": list(self.text_fields),
            "max_length": self.max_length,
            "stride": self.doc_stride if self.long_text == "window" else None,
            "labels": (self.label_field, self.problem_type, self.label_names, self.label_delimiter)
            if labelled
            else None,
        }
        desc = "Cutting windows" if self.long_text == "window" else "Tokenising"
        features = map_rows(
            rows,
            encode_rows,
            batched=True,
            with_indices=True,
            remove_columns=rows.column_names,
            fn_kwargs=settings,
            desc=desc,
        )
        if not labelled:
            return features
        # the type the loss needs, whatever the input column's was (a ClassLabel sequence, ints, bools)
        target = {"single_label": Value("int64"), "multi_label": List(Value("float32")), "regression": Value("float32")}
        return features.cast_column("labels", target[self.problem_type])

    def build_contract(self, eval_sets: dict[str, DocumentsEvalSet]) -> ClassificationContract:
        labels = tuple(self.label_names) if self.label_names is not None else None
        return ClassificationContract(
            self.max_length,
            tuple(self.validation_names),
            eval_sets,
            self.spec,
            labels,
            self.problem_type,
            self.train_label_counts,
            len(self.train_features) if self.train_features is not None else None,
            self.train_target_stats,
        )

    # ----------------------------------------------------------------------------------------------- requests
    @property
    def request_fields(self) -> list[str]:
        """``text``, and ``text_pair`` for a model of sentence pairs."""
        return ["text", "text_pair"][: len(self.text_fields)]

    def request_row(self, request: Mapping) -> dict:
        """``{"text": …}`` (and ``"text_pair"``); truncating a longer text would answer for part of it only, so
        without windows a text longer than the model reads is refused."""
        check_fields(request, self.request_fields)
        texts = [text_field(request, name) for name in self.request_fields]
        if self.long_text == "truncate":
            length = len(self.tokenizer(*texts)["input_ids"])
            if length > self.max_length:
                raise RequestError(
                    self.request_fields[-1] if len(texts) == 2 else "text",
                    f"{length} tokens; this model reads {self.max_length} and was trained to truncate "
                    "(--data.long_text truncate), so it would answer for the beginning only. Send a shorter text, or "
                    "serve a model trained with --data.long_text window.",
                )
        return dict(zip(self.text_fields, texts))

    def example_request(self) -> dict:
        return dict(zip(self.request_fields, ["A fine film, and a fine cast.", "The cast is fine."]))

    # ----------------------------------------------------------------------------------------------- inspect
    def split_stats(self, split: str) -> SplitStats:
        rows = self.rows[split]
        texts = [column(rows, name) for name in self.text_fields]
        lengths = np.array([len(ids) for ids in self.tokenizer(*texts, verbose=False)["input_ids"]])
        if self.label_names is None or split == "predict":
            return SplitStats(len(rows), lengths, {})
        names, values = self.label_names, rows[self.label_field]
        if self.problem_type == "single_label":
            ids = [label_id(value, names) for value in values]
            return SplitStats(len(rows), lengths, {name: ids.count(i) for i, name in enumerate(names)})
        delimiter = self.label_delimiter
        sets = [sorted({label_id(label, names) for label in label_set(value, delimiter)}) for value in values]
        counts = Counter(i for ids in sets for i in ids)
        per_text = Counter(len(ids) for ids in sets)
        pairs = Counter(pair for ids in sets for pair in itertools.combinations(ids, 2))
        lines = ["labels per text: " + ", ".join(f"{n}: {per_text[n]}" for n in sorted(per_text))]
        if pairs:
            top = ", ".join(f"{names[a]}+{names[b]} {count}" for (a, b), count in pairs.most_common(CO_OCCURRING))
            lines.append(f"most frequent label pairs: {top}")
        return SplitStats(len(rows), lengths, {name: counts[i] for i, name in enumerate(names)}, label_lines=lines)


#: Label pairs ``ftlit inspect`` lists for multi-label data
CO_OCCURRING = 10


def encode_rows(
    batch: dict, indices: list[int], tokenizer, fields: list[str], max_length: int, stride: int | None, labels
) -> dict:
    """A batch of rows → features with the ``document_index`` of their row: the text ``fields`` truncated to
    ``max_length``, or (with a ``stride``) the first field cut into windows, each with its row's label; ``labels``:
    (label field, problem type, label names, delimiter), or None for unlabelled rows."""
    if stride is not None:
        encoding, _ = token_windows(tokenizer, batch[fields[0]], max_length, stride, [f"document {i}" for i in indices])
        rows = encoding["overflow_to_sample_mapping"]
    else:
        encoding = tokenizer(*(batch[field] for field in fields), truncation=True, max_length=max_length)
        rows = range(len(indices))
    features = {name: encoding[name] for name in tokenizer.model_input_names}
    features["document_index"] = [indices[row] for row in rows]
    if labels is not None:
        field, problem_type, label_names, delimiter = labels
        features["labels"] = [encoded_label(batch[field][row], problem_type, label_names, delimiter) for row in rows]
    return features


def encoded_label(
    value: object, problem_type: str, label_names: list[str], delimiter: str | None
) -> float | int | list:
    """A row's label as the loss takes it: a float (regression), a class id, or multi-hot floats (multi-label)."""
    if problem_type == "regression":
        return float(value)
    if problem_type == "single_label":
        return label_id(value, label_names)
    hot = [0.0] * len(label_names)  # as floats: the targets of BCE-with-logits
    for label in label_set(value, delimiter):
        hot[label_id(label, label_names)] = 1.0
    return hot


def label_counts(labels: list, num_labels: int) -> np.ndarray:
    """Examples per label: class ids counted, or multi-hot rows summed."""
    if labels and isinstance(labels[0], list):
        return np.asarray(labels, dtype=np.float64).sum(axis=0).round().astype(np.int64)
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels)
