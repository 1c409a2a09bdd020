"""The SQuAD format: the official nested JSON layout, flat rows, and answers aligned to their context offsets.

Pure functions over rows; the data module maps them.
"""

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from ftlit.data.checks import column
from ftlit.data.loading import file_format, load_local_file, read_head


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


def is_answer_list(answers: object) -> bool:
    """A question's ``answers`` in the flat layout: ``{"text": [str, ...], "answer_start": [int, ...]}``, equally
    long (both empty for an unanswerable question)."""
    if not isinstance(answers, dict):
        return False
    texts, starts = answers.get("text"), answers.get("answer_start")
    return (
        isinstance(texts, list)
        and isinstance(starts, list)
        and len(texts) == len(starts)
        and all(isinstance(text, str) for text in texts)
        and all(isinstance(start, int) for start in starts)
    )


def malformed_answers(rows: Dataset) -> list[int]:
    """Positions of the rows whose ``answers`` are not a well-formed answer list (``is_answer_list``). Read from the
    Arrow column when its type says text and offsets (fast: no row is turned into Python objects)."""
    answers_arrow = rows.with_format("arrow")["answers"]
    kind = answers_arrow.type
    if not (
        pa.types.is_struct(kind)
        and {kind.field(i).name for i in range(kind.num_fields)} == {"text", "answer_start"}
        and pa.types.is_string(kind.field("text").type.value_type)
        and pa.types.is_integer(kind.field("answer_start").type.value_type)
    ):
        return [i for i, answers in enumerate(column(rows, "answers")) if not is_answer_list(answers)]
    texts, starts = pc.struct_field(answers_arrow, "text"), pc.struct_field(answers_arrow, "answer_start")
    # a missing struct or list compares as null: null counts as broken
    broken = pc.fill_null(pc.not_equal(pc.list_value_length(texts), pc.list_value_length(starts)), True)
    return np.flatnonzero(broken.to_numpy(zero_copy_only=False)).tolist()


def unanswerable(rows: Dataset) -> list[int]:
    """Positions of the questions without answers (SQuAD v2.0's unanswerable ones), from the Arrow column."""
    texts = pc.struct_field(rows.with_format("arrow")["answers"], "text")
    return np.flatnonzero(pc.list_value_length(texts).to_numpy(zero_copy_only=False) == 0).tolist()


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
