"""SquadDataModule: SQuAD v1.1/v2.0 (Hub, official nested JSON, or flat files) → QA windows and what decoding needs."""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset

from ftlit.data.base import TransformerDataModule
from ftlit.data.checks import drop_blank_texts, duplicates, without_rows
from ftlit.data.loading import file_format, load_hub_dataset, load_local_file, read_head
from ftlit.errors import FtlitError
from ftlit.qa.decode import EvalWindows
from ftlit.qa.features import (
    answers_outside_windows,
    check_window_settings,
    eval_features,
    train_features,
    truncation_report,
)

log = logging.getLogger(__name__)

HUB_DATASETS = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}
COLUMNS = ("id", "question", "context", "answers")


@dataclass
class QAEvalSet:
    """An evaluated split: its questions, their windows for the model, and what decoding and scoring need."""

    ids: list[str]
    questions: list[str]
    contexts: list[str]
    answers: list[list[str]] | None  # gold answer texts; None for predict
    windows: EvalWindows
    features: Dataset  # model inputs + feature_index, for the dataloader

    @property
    def references(self) -> dict[str, list[str]]:
        return dict(zip(self.ids, self.answers))


def is_nested_squad(path: str) -> bool:
    """The official layout, ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}], "version"}``."""
    return file_format(path) == "json" and re.match(r'\s*\{\s*"(data|version)"', read_head(path)) is not None


def flatten_articles(batch: dict[str, list]) -> dict[str, list]:
    """Official nested articles → one row per question with HF's flat columns (answers as {text, answer_start})."""
    rows = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for title, paragraphs in zip(batch["title"], batch["paragraphs"]):
        for paragraph in paragraphs:
            for qa in paragraph["qas"]:
                rows["id"].append(qa["id"])
                rows["title"].append(title)
                rows["context"].append(paragraph["context"])
                rows["question"].append(qa["question"])
                answers = qa.get("answers") or []
                rows["answers"].append(
                    {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
                )
    return rows


def load_squad_file(path: str) -> Dataset:
    if not Path(path).is_file():
        return load_local_file(path)  # raises the not-found error
    if is_nested_squad(path):
        articles = load_local_file(path, field="data")
        return articles.map(flatten_articles, batched=True, remove_columns=articles.column_names, desc="Flattening")
    return load_local_file(path)


def answer_at(context: str, text: str, start: object) -> bool:
    """``text`` occurs in ``context`` at ``start``."""
    return isinstance(start, int) and start >= 0 and context[start : start + len(text)] == text


def is_aligned(context: str, answers: dict) -> bool:
    """Every answer text occurs in the context at its ``answer_start``."""
    return all(answer_at(context, text, start) for text, start in zip(answers["text"], answers["answer_start"]))


def nearest_occurrence(context: str, text: str, start: int | None) -> int | None:
    """Start of the occurrence of ``text`` in ``context`` closest to ``start`` (None when it does not occur)."""
    found, position = [], context.find(text)
    while text and position != -1:
        found.append(position)
        position = context.find(text, position + 1)
    return min(found, key=lambda p: abs(p - (start or 0))) if found else None


def repair_answer_starts(batch: dict[str, list]) -> dict[str, list]:
    """Move each misplaced ``answer_start`` to the nearest occurrence of its text; a text that does not occur in
    the context keeps its offset (and stays misaligned)."""
    repaired = []
    for context, answers in zip(batch["context"], batch["answers"]):
        starts = []
        for text, start in zip(answers["text"], answers["answer_start"]):
            found = None if answer_at(context, text, start) else nearest_occurrence(context, text, start)
            starts.append(start if found is None else found)
        repaired.append({"text": answers["text"], "answer_start": starts})
    return {"answers": repaired}


def windows_from_features(features: Dataset) -> EvalWindows:
    """Offsets of every window as one padded (W, L, 2) array, read straight from the Arrow column."""
    column = pa.chunked_array(features.data.column("offset_mapping")).combine_chunks()
    pairs = column.flatten().flatten().to_numpy().reshape(-1, 2)
    return EvalWindows.from_flat(features["example_index"], pairs, column.value_lengths().to_numpy())


class SquadDataModule(TransformerDataModule):
    """Extractive QA data in the SQuAD format.

    Args:
        dataset: ``squad`` or ``squad_v2`` (the Hub's), or another Hub dataset with SQuAD columns.
        train_file: local official nested JSON, or flat JSON/JSONL/Parquet with id, question, context,
            answers {text, answer_start} (gzip allowed); when local files are given nothing is fetched.
        validation_file / test_file: the same layouts, scored against their answers.
        predict_file: JSON/JSONL with id, question, context.
        version_2_with_negative: SQuAD v2.0 rules (unanswerable questions); default: on for ``squad_v2`` and for
            data that holds unanswerable questions.
        columns: the data's column names for id/question/context/answers, e.g. ``{question: query}``.
        repair_answer_start: move an ``answer_start`` that does not point at its answer text to the nearest
            occurrence of that text in the context.
        max_misaligned_answers: the fraction of questions whose answer is still not at its ``answer_start`` that
            is dropped with a warning; above it the run stops naming them.
        validation_split: fraction of the training articles held out when there is no validation set (whole
            articles, grouped by title, so no context is shared between training and evaluation).
        max_length: tokens per window; doc_stride: tokens shared by consecutive windows; max_query_length: the
            question is cut after this many tokens.
        Batching, subsampling and seed: see TransformerDataModule.
    """

    def __init__(
        self,
        model_name_or_path: str,
        dataset: str | None = "squad",
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        version_2_with_negative: bool | None = None,
        columns: dict[str, str] | None = None,
        repair_answer_start: bool = False,
        max_misaligned_answers: float = 0.001,
        validation_split: float = 0.1,
        max_length: int = 384,
        doc_stride: int = 128,
        max_query_length: int = 64,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, **kwargs)
        unknown = set(columns or {}) - set(COLUMNS)
        if unknown:
            raise FtlitError(f"--data.columns maps unknown field(s) {sorted(unknown)}; the fields are {COLUMNS}.")
        if not 0 < validation_split < 1:
            raise FtlitError(f"--data.validation_split must be between 0 and 1, got {validation_split}.")
        self.hub = HUB_DATASETS.get(dataset, dataset) if dataset else None
        self.local_files = {"train": train_file, "validation": validation_file, "test": test_file,
                            "predict": predict_file}  # fmt: skip
        self.version_2_with_negative = version_2_with_negative
        self.columns = columns or {}
        self.repair_answer_start = repair_answer_start
        self.max_misaligned_answers = max_misaligned_answers
        self.validation_split = validation_split
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self._has_unanswerable = False
        self.train_features: Dataset | None = None
        self.eval_sets: dict[str, QAEvalSet] = {}
        self.rows: dict[str, Dataset] = {}  # each split's questions as windowed (after checks and subsampling)

    @property
    def version_2(self) -> bool:
        if self.version_2_with_negative is not None:
            return self.version_2_with_negative
        return self.hub == HUB_DATASETS["squad_v2"] or self._has_unanswerable

    # ------------------------------------------------------------------------------------------------- rows
    def _raw_split(self, split: str) -> Dataset:
        if self.local_files[split]:
            rows = load_squad_file(self.local_files[split])
        elif any(self.local_files.values()) or not self.hub:
            raise FtlitError(f"No {split} data: give --data.{split}_file (or a Hub dataset with that split).")
        else:
            rows = load_hub_dataset(self.hub, None, split)
        rows = rows.rename_columns({theirs: ours for ours, theirs in self.columns.items() if theirs != ours})
        needed = COLUMNS[:3] if split == "predict" else COLUMNS
        missing = [column for column in needed if column not in rows.column_names]
        if missing:
            raise FtlitError(
                f"Column(s) {missing} not found in {self._source(split)}. It has: {rows.column_names}. Map them "
                "with --data.columns, e.g. '{question: query}'."
            )
        return self._checked(split, rows)

    def _source(self, split: str) -> str:
        return f"'{self.local_files[split]}'" if self.local_files[split] else f"{self.hub} ({split} split)"

    def _checked(self, split: str, rows: Dataset) -> Dataset:
        """Rows with a question and a context, unique ids and (unless predicting) answers at their offsets."""
        source = self._source(split)
        rows = drop_blank_texts(rows, ["question", "context"], source, self.empty_text)
        repeated = duplicates(rows["id"])
        if repeated:
            raise FtlitError(
                f"{source}: {len(repeated)} question id(s) occur more than once (first: {repeated[:5]}). Ids must be "
                "unique: predictions and scores are keyed by them."
            )
        return rows if split == "predict" else self._aligned(rows, source)

    def _aligned(self, rows: Dataset, source: str) -> Dataset:
        if self.repair_answer_start:
            rows = rows.map(repair_answer_starts, batched=True, desc="Repairing answer offsets")
        wrong = [i for i, (c, a) in enumerate(zip(rows["context"], rows["answers"])) if not is_aligned(c, a)]
        if not wrong:
            return rows
        ids = [rows[i]["id"] for i in wrong[:5]]
        fraction = len(wrong) / len(rows)
        if fraction > self.max_misaligned_answers:
            repair = "" if self.repair_answer_start else (
                ", let ftlit look for each answer text with --data.repair_answer_start true"
            )  # fmt: skip
            raise FtlitError(
                f"{source}: {len(wrong)} of {len(rows)} questions ({fraction:.2%}) have an answer that is not at its "
                f"answer_start in the context (first ids: {ids}). Fix the offsets (an answer must be "
                f"context[answer_start:answer_start + len(text)]){repair}, or raise --data.max_misaligned_answers "
                f"(now {self.max_misaligned_answers}) to drop them."
            )
        log.warning("%s: dropped %d question(s) whose answer is not at its answer_start (ids %s).", source,
                    len(wrong), ids)  # fmt: skip
        return without_rows(rows, wrong)

    def _split_by_article(self, rows: Dataset) -> tuple[Dataset, Dataset]:
        """Hold out whole articles (by title, else by context), seeded."""
        key = "title" if "title" in rows.column_names else "context"
        groups = sorted(set(rows[key]))
        count = max(1, round(len(groups) * self.validation_split))
        if count >= len(groups):
            raise FtlitError(
                f"The training data has {len(groups)} article(s) ({key}s): too few to hold out whole articles for "
                "validation. Give --data.validation_file."
            )
        held_out = set(np.random.default_rng(self.seed).permutation(groups)[:count])
        mask = np.array([value in held_out for value in rows[key]])
        return rows.select(np.flatnonzero(~mask)), rows.select(np.flatnonzero(mask))

    def _raw_splits(self, splits: list[str]) -> dict[str, Dataset]:
        carve = (
            "validation" in splits
            and not self.local_files["validation"]
            and (any(self.local_files.values()) or not self.hub)
        )
        wanted = sorted((set(splits) - {"validation"}) | {"train"}) if carve else splits
        raw = {split: self._raw_split(split) for split in wanted}
        if carve:
            raw["train"], raw["validation"] = self._split_by_article(raw["train"])
        return {split: raw[split] for split in splits}

    # ------------------------------------------------------------------------------------------------- build
    def _build(self, stage: str) -> None:
        check_window_settings(self.tokenizer, self.max_length, self.doc_stride, self.max_query_length)
        splits = {"fit": ["train", "validation"], "validate": ["validation"], "test": ["test"],
                  "predict": ["predict"]}[stage]  # fmt: skip
        raw = self._raw_splits(splits)
        self._has_unanswerable = any(
            len(answers["text"]) == 0
            for split, rows in raw.items()
            if split != "predict"
            for answers in rows["answers"]
        )
        for split, rows in raw.items():
            if len(rows) == 0:
                raise FtlitError(f"The {split} data has no questions.")
            limit = self.max_train_samples if split == "train" else self.max_eval_samples
            rows = self.subsample(rows, limit)
            self.rows[split] = rows
            if split == "train":
                features = self._training_windows(rows)
                self._warn_about_truncation(rows, features)
                self.train_features = features.remove_columns(["example_index", "answer_in_window"])
            else:
                self.eval_sets[split] = self._eval_set(rows, labelled=split != "predict")

    def _training_windows(self, rows: Dataset) -> Dataset:
        """Training windows, with each one's ``example_index`` and ``answer_in_window`` for truncation_report."""
        return self._map(rows, _train_features_at, "Building training windows", with_indices=True)

    def answers_lost(self, split: str) -> list[int]:
        """Positions (in ``rows[split]``) of the answerable questions whose answer no window holds whole."""
        rows = self.rows[split]
        if split == "train":  # the windows fit built, from datasets' cache
            features = self._training_windows(rows)
            answerable = [len(answers["text"]) > 0 for answers in rows["answers"]]
            return truncation_report(features["example_index"], features["answer_in_window"], answerable)[1]
        windows = self.eval_sets[split].windows
        return answers_outside_windows(windows.example_index, windows.offsets, rows["answers"])

    def _warn_about_truncation(self, rows: Dataset, features: Dataset) -> None:
        answerable = [len(answers["text"]) > 0 for answers in rows["answers"]]
        cls_fraction, lost = truncation_report(features["example_index"], features["answer_in_window"], answerable)
        settings = f"max_length {self.max_length}, doc_stride {self.doc_stride}"
        if lost:  # (so there are answerable questions)
            total = sum(answerable)
            log.warning(
                "%d of %d answerable training questions (%.1f %%) have an answer that no window holds whole at %s "
                "(first ids: %s): they train as unanswerable. Raise --data.max_length.", len(lost), total,
                100 * len(lost) / total, settings, [rows[i]["id"] for i in lost[:5]],
            )  # fmt: skip
        if cls_fraction > 0.5:
            log.warning(
                "%.1f %% of the training windows of answerable questions point at CLS (no answer in the window) at "
                "%s: the model mostly learns to answer nothing. Raise --data.max_length or --data.doc_stride.",
                100 * cls_fraction, settings,
            )  # fmt: skip

    def _map(self, rows: Dataset, build, desc: str, **kwargs) -> Dataset:
        settings = {"tokenizer": self.tokenizer, "max_length": self.max_length, "doc_stride": self.doc_stride,
                    "max_query_length": self.max_query_length}  # fmt: skip
        return rows.map(build, batched=True, remove_columns=rows.column_names, fn_kwargs=settings, desc=desc, **kwargs)

    def _eval_set(self, rows: Dataset, labelled: bool) -> QAEvalSet:
        features = self._map(rows, _eval_features_at, "Building evaluation windows", with_indices=True)
        inputs = features.remove_columns(["offset_mapping", "example_index"])
        inputs = inputs.add_column("feature_index", np.arange(len(inputs)))
        return QAEvalSet(
            ids=[str(qid) for qid in rows["id"]],
            questions=list(rows["question"]),
            contexts=list(rows["context"]),
            answers=[answers["text"] for answers in rows["answers"]] if labelled else None,
            windows=windows_from_features(features),
            features=inputs,
        )

    # ------------------------------------------------------------------------------------------------- loaders
    def train_dataloader(self):
        return self.loader(self.train_features, train=True)

    def val_dataloader(self):
        return self.loader(self.eval_sets["validation"].features)

    def test_dataloader(self):
        return self.loader(self.eval_sets["test"].features)

    def predict_dataloader(self):
        return self.loader(self.eval_sets["predict"].features)


# datasets maps in batches: the batch's first index turns window → example positions into split positions
def _eval_features_at(examples: dict[str, list], indices: list[int], **settings) -> dict[str, list]:
    return eval_features(examples, example_offset=indices[0], **settings)


def _train_features_at(examples: dict[str, list], indices: list[int], **settings) -> dict[str, list]:
    return train_features(examples, example_offset=indices[0], **settings)
