"""SquadDataModule: SQuAD v1.1/v2.0 (Hub, official nested JSON, or flat files) → QA windows and what decoding needs."""

import itertools
import logging
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
from datasets import Dataset

from ftlit.data.base import SplitStats, TransformerDataModule, map_rows
from ftlit.data.checks import check_text_types, column, drop_blank_texts, duplicates, rows_named, without_rows
from ftlit.data.requests import check_fields, text_field
from ftlit.data.squad_files import load_squad_file
from ftlit.errors import FtlitError
from ftlit.search.encoder import read_settings
from ftlit.settings import check_range
from ftlit.tasks.question_answering.contract import QAContract, QAEvalSet
from ftlit.tasks.question_answering.decode import EvalWindows
from ftlit.tasks.question_answering.features import (
    answers_outside_windows,
    check_window_settings,
    eval_features,
    train_features,
    truncation_report,
)
from ftlit.tasks.question_answering.retrieved import read_from_retrieved
from ftlit.tasks.question_answering.squad_format import (
    answer_problem,
    blank_answers,
    is_aligned,
    malformed_answers,
    mixed_offsets,
    raw_answers,
    repair_answer_starts,
    unanswerable,
)

log = logging.getLogger(__name__)

HUB_DATASETS = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}
COLUMNS = ("id", "question", "context", "answers")


def windows_from_features(features: Dataset) -> EvalWindows:
    """Offsets of every window as one padded (W, L, 2) array, read straight from the Arrow column."""
    column = pa.chunked_array(features.with_format("arrow")["offset_mapping"]).combine_chunks()
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
            is dropped with a warning; above it the run stops naming them (between 0 and 1).
        validation_split: fraction of the training articles held out when there is no validation set (whole
            articles, grouped by title, so no context is shared between training and evaluation) (strictly between
            0 and 1).
        max_length: tokens per window, question included (≥ 8).
        doc_stride: tokens shared by consecutive windows, fewer than a window holds of the context (≥ 0).
        max_query_length: the question is cut after this many tokens (≥ 1).
        retriever: a sentence-transformers folder (a retrieval run's export): every evaluated question
            (validation, test, predict) is read from the paragraphs it retrieves among all of its file's paragraphs
            instead of its own — the score of retrieval and reading together, beside the reader's with the gold
            paragraph (without it). Training reads the gold paragraphs.
        retrieve_top_k: paragraphs retrieved per question and read as one context, best first (≥ 1).
        Batching, subsampling and seed: see TransformerDataModule.
    """

    column_hint = "Map them with --data.columns, e.g. '{question: query}'."
    file_only_settings = ("retriever", "retrieve_top_k")  # a served question brings its own context

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
        retriever: str | None = None,
        retrieve_top_k: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, validation_split=validation_split, **kwargs)
        check_range("--data.retrieve_top_k", retrieve_top_k, minimum=1)
        self.retriever, self.retrieve_top_k = retriever, retrieve_top_k
        self._corpora: dict[str, list[str]] = {}  # each evaluated split's paragraphs, when read from retrieved ones
        unknown = set(columns or {}) - set(COLUMNS)
        if unknown:
            raise FtlitError(f"--data.columns maps unknown field(s) {sorted(unknown)}; the fields are {COLUMNS}.")
        self.hub = (HUB_DATASETS.get(dataset, dataset), None) if dataset else None
        self.set_local_files(
            {"train": train_file, "validation": validation_file, "test": test_file, "predict": predict_file}
        )
        self.version_2_with_negative = version_2_with_negative
        self.columns = columns or {}
        self.repair_answer_start = repair_answer_start
        self.max_misaligned_answers = max_misaligned_answers
        check_range("--data.max_misaligned_answers", max_misaligned_answers, minimum=0, maximum=1)
        check_range("--data.doc_stride", doc_stride, minimum=0)  # its maximum needs the tokenizer
        check_range("--data.max_query_length", max_query_length, minimum=1)
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self._has_unanswerable = False
        self._request_ids = itertools.count()  # the ids of served questions (unique within a batch)

    @property
    def version_2(self) -> bool:
        if self.version_2_with_negative is not None:
            return self.version_2_with_negative
        return self.hub == (HUB_DATASETS["squad_v2"], None) or self._has_unanswerable

    # ------------------------------------------------------------------------------------------------- rows
    def read_file(self, path: str) -> Dataset:
        return load_squad_file(path)

    def adapt_columns(self, rows: Dataset) -> Dataset:
        return rows.rename_columns({theirs: ours for ours, theirs in self.columns.items() if theirs != ours})

    def required_columns(self, split: str) -> list[str]:
        return list(COLUMNS[:3] if split == "predict" else COLUMNS)

    def check_rows(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Questions with a question and a context, unique ids and (unless predicting) answers at their offsets;
        whether any question is unanswerable (SQuAD v2.0 rules by default)."""
        checked = {split: self._checked(split, rows) for split, rows in raw.items()}
        without_answers = {split: unanswerable(rows) for split, rows in checked.items() if split != "predict"}
        # once any split of this run had an unanswerable question, v2.0 rules stay: fit's last validation of the
        # best checkpoint reads the validation split alone, and must score (and export) as the fit did
        self._has_unanswerable = self._has_unanswerable or any(without_answers.values())
        for split, positions in without_answers.items():
            self._check_unanswerable(split, checked[split], positions)
        return checked

    def _check_unanswerable(self, split: str, rows: Dataset, positions: list[int]) -> None:
        """Unanswerable questions must agree with the rules asked for: refused under v1.1 rules, announced when they
        switch the rules to v2.0 (a v1.1 file with a question lacking answers would do that silently)."""
        if not positions or self.version_2_with_negative or self.hub == (HUB_DATASETS["squad_v2"], None):
            return
        ids = list(rows.select(positions[:5])["id"])
        which = f"{len(positions)} of {len(rows)} questions of {self.source(split)} have no answer (first ids: {ids})"
        if self.version_2_with_negative is False:
            raise FtlitError(
                f"{which}, but --data.version_2_with_negative is false (SQuAD v1.1 rules: every question has an "
                "answer). Give them answers, drop them, or use --data.version_2_with_negative true."
            )
        log.warning(
            "%s: SQuAD v2.0 rules apply (unanswerable questions, the null answer competes). If these are "
            "broken v1.1 questions, fix them; --data.version_2_with_negative true says v2.0 is meant.",
            which,
        )

    def _checked(self, split: str, rows: Dataset) -> Dataset:
        source = self.source(split)
        check_text_types(rows, ["question", "context"], source)
        if split != "predict":
            self._check_answers(split, rows)
        rows = drop_blank_texts(rows, ["question", "context"], source, self.empty_text)
        repeated = duplicates(column(rows, "id"))
        if repeated:
            raise FtlitError(
                f"{source}: {len(repeated)} question id(s) occur more than once (first: {repeated[:5]}). Ids must be "
                "unique: predictions and scores are keyed by them."
            )
        return rows if split == "predict" else self._aligned(rows, source)

    def _check_answers(self, split: str, rows: Dataset) -> None:
        """Every question's answers well-formed (named by row, id and what is wrong, e.g. an ``answer_start`` given
        as a string, also among numbers, where the reader would hide it), and no answer text empty."""
        source, path = self.source(split), self.local_files.get(split)
        answers = [answers for _, answers in raw_answers(path)] if path and mixed_offsets(rows) else None
        malformed = (
            malformed_answers(rows)
            if answers is None
            else [i for i, given in enumerate(answers) if answer_problem(given) is not None]
        )
        if malformed:
            first = answer_problem((answers or column(rows, "answers"))[malformed[0]])
            raise FtlitError(
                f"{source}: {len(malformed)} question(s) have no well-formed 'answers' ({rows_named(malformed)}, "
                f"ids {[rows[i]['id'] for i in malformed[:5]]}; first: {first}). Each needs answers as "
                '{"text": [...], "answer_start": [...]}, the offsets integers (both lists empty for an unanswerable '
                "question)."
            )
        blank = blank_answers(rows)
        if blank:
            raise FtlitError(
                f"{source}: {len(blank)} question(s) have an empty answer text ({rows_named(blank)}, ids "
                f"{[rows[i]['id'] for i in blank[:5]]}): an answer is a span of the context. Give its text, or drop "
                'it (a question without an answer has empty lists: {"text": [], "answer_start": []}).'
            )

    def _aligned(self, rows: Dataset, source: str) -> Dataset:
        if self.repair_answer_start:
            rows = rows.map(repair_answer_starts, batched=True, desc="Repairing answer offsets")
        wrong = [
            i for i, (c, a) in enumerate(zip(column(rows, "context"), column(rows, "answers"))) if not is_aligned(c, a)
        ]
        if not wrong:
            return rows
        ids = [rows[i]["id"] for i in wrong[:5]]
        fraction = len(wrong) / len(rows)
        if fraction > self.max_misaligned_answers:
            repair = (
                ""
                if self.repair_answer_start
                else (", let ftlit look for each answer text with --data.repair_answer_start true")
            )
            raise FtlitError(
                f"{source}: {len(wrong)} of {len(rows)} questions ({fraction:.2%}) have an answer that is not at its "
                f"answer_start in the context (first ids: {ids}). Fix the offsets (an answer must be "
                f"context[answer_start:answer_start + len(text)]){repair}, or raise --data.max_misaligned_answers "
                f"(now {self.max_misaligned_answers}) to drop them."
            )
        log.warning(
            "%s: dropped %d question(s) whose answer is not at its answer_start (ids %s).", source, len(wrong), ids
        )
        return without_rows(rows, wrong)

    def hold_out(self, rows: Dataset) -> tuple[Dataset, Dataset]:
        """Hold out whole articles (by title, else by context), seeded: no context is shared between training and
        evaluation."""
        key = "title" if "title" in rows.column_names else "context"
        keys = column(rows, key)
        groups = sorted(set(keys))
        count = max(1, round(len(groups) * self.validation_split))
        if count >= len(groups):
            raise FtlitError(
                f"The training data has {len(groups)} article(s) ({key}s): too few to hold out whole articles for "
                "validation. Give --data.validation_file."
            )
        held_out = set(np.random.default_rng(self.seed).permutation(groups)[:count])
        mask = np.array([value in held_out for value in keys])
        return rows.select(np.flatnonzero(~mask)), rows.select(np.flatnonzero(mask))

    def usable_rows(self, split: str, rows: Dataset) -> Dataset:
        if len(rows) == 0:
            raise FtlitError(f"The {split} data has no questions.")
        if self.retriever and split != "train":  # the corpus: every paragraph of the file, before any subsample
            self._corpora[split] = list(dict.fromkeys(column(rows, "context")))
        return rows

    # ------------------------------------------------------------------------------------------------- features
    def check_settings(self) -> None:
        check_window_settings(self.tokenizer, self.max_length, self.doc_stride, self.max_query_length)
        if self.retriever:
            read_settings(self.retriever)  # a sentence-transformers folder, or refused before any data is read

    def training_features(self, rows: Dataset) -> Dataset:
        features = self._training_windows(rows)
        self._warn_about_truncation(rows, features)
        return features.remove_columns(["example_index", "answer_in_window"])

    def _training_windows(self, rows: Dataset) -> Dataset:
        """Training windows, with each one's ``example_index`` and ``answer_in_window`` for truncation_report."""
        return self._map(rows, _train_features_at, "Building training windows", with_indices=True)

    def evaluation_features(self, split: str, rows: Dataset) -> tuple[Dataset, QAEvalSet]:
        if split in self._corpora:
            rows = read_from_retrieved(split, rows, self._corpora[split], self.retriever, self.retrieve_top_k)
        features = self._map(rows, _eval_features_at, "Building evaluation windows", with_indices=True)
        windows = windows_from_features(features)
        eval_set = QAEvalSet(
            split,
            num_examples=len(rows),
            num_features=len(features),
            ids=[str(qid) for qid in column(rows, "id")],
            questions=column(rows, "question"),
            contexts=column(rows, "context"),
            answers=[answers["text"] for answers in column(rows, "answers")] if split != "predict" else None,
            windows=windows,
        )
        return features.remove_columns(["offset_mapping", "example_index"]), eval_set

    def build_contract(self, eval_sets: dict[str, QAEvalSet]) -> QAContract:
        return QAContract(
            self.max_length,
            tuple(self.validation_names),
            eval_sets,
            self.version_2,
            self.doc_stride,
            self.max_query_length,
        )

    def _map(self, rows: Dataset, build, desc: str, **kwargs) -> Dataset:
        settings = {
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "doc_stride": self.doc_stride,
            "max_query_length": self.max_query_length,
        }
        return map_rows(
            rows, build, batched=True, remove_columns=rows.column_names, fn_kwargs=settings, desc=desc, **kwargs
        )

    # ------------------------------------------------------------------------------------------------- truncation
    def answers_lost(self, split: str) -> list[int]:
        """Positions (in ``rows[split]``) of the answerable questions whose answer no window holds whole."""
        rows = self.rows[split]
        if split == "train":  # the windows fit built, from datasets' cache
            features = self._training_windows(rows)
            answerable = [len(answers["text"]) > 0 for answers in column(rows, "answers")]
            return truncation_report(features["example_index"], features["answer_in_window"], answerable)[1]
        windows = self.contract.eval_sets[split].windows
        return answers_outside_windows(windows.example_index, windows.offsets, rows["answers"])

    def _warn_about_truncation(self, rows: Dataset, features: Dataset) -> None:
        answerable = [len(answers["text"]) > 0 for answers in column(rows, "answers")]
        cls_fraction, lost = truncation_report(features["example_index"], features["answer_in_window"], answerable)
        settings = f"max_length {self.max_length}, doc_stride {self.doc_stride}"
        if lost:  # (so there are answerable questions)
            total = sum(answerable)
            log.warning(
                "%d of %d answerable training questions (%.1f %%) have an answer that no window holds whole at %s "
                "(first ids: %s): they train as unanswerable. Raise --data.max_length.",
                len(lost),
                total,
                100 * len(lost) / total,
                settings,
                [rows[i]["id"] for i in lost[:5]],
            )
        if cls_fraction > 0.5:
            log.warning(
                "%.1f %% of the training windows of answerable questions point at CLS (no answer in the window) at "
                "%s: the model mostly learns to answer nothing. Raise --data.max_length or --data.doc_stride.",
                100 * cls_fraction,
                settings,
            )

    def request_row(self, request: Mapping) -> dict:
        """``{"question": …, "context": …}``; a long context is read in windows, as in evaluation."""
        check_fields(request, ["question", "context"])
        question, context = text_field(request, "question"), text_field(request, "context")
        return {"id": str(next(self._request_ids)), "question": question, "context": context}

    def example_request(self) -> dict:
        return {"question": "Where is the Eiffel Tower?", "context": "The Eiffel Tower stands in Paris, France."}

    def split_stats(self, split: str) -> SplitStats:
        rows = self.rows[split]
        encoded = self.tokenizer(column(rows, "question"), column(rows, "context"), verbose=False)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]])
        answerable = sum(len(gold["text"]) > 0 for gold in column(rows, "answers"))
        labels = {"answerable": answerable, "unanswerable": len(rows) - answerable}
        return SplitStats(len(rows), lengths, labels, lost_answers=(len(self.answers_lost(split)), answerable))


# datasets maps in batches: the batch's first index turns window → example positions into split positions
def _eval_features_at(examples: dict[str, list], indices: list[int], **settings) -> dict[str, list]:
    return eval_features(examples, example_offset=indices[0], **settings)


def _train_features_at(examples: dict[str, list], indices: list[int], **settings) -> dict[str, list]:
    return train_features(examples, example_offset=indices[0], **settings)
