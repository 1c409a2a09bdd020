"""The SQuAD format's answers: checked, and aligned to their context offsets (files are read by
ftlit.data.squad_files).

Pure functions over rows; the data module maps them.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from ftlit.data.checks import column
from ftlit.data.loading import file_format, open_text
from ftlit.data.squad_files import flatten_articles


def answer_at(context: str, text: str, start: object) -> bool:
    """``text`` occurs in ``context`` at ``start``."""
    return isinstance(start, int) and start >= 0 and context[start : start + len(text)] == text


def answer_problem(answers: object) -> str | None:
    """What keeps a question's ``answers`` from being the flat layout, ``{"text": [str, ...], "answer_start":
    [int, ...]}`` equally long (both empty for an unanswerable question), in words; None when it is that."""
    if not isinstance(answers, dict):
        return f"answers is {_shown(answers)}, not an object"
    texts, starts = answers.get("text"), answers.get("answer_start")
    for name, values in (("text", texts), ("answer_start", starts)):
        if not isinstance(values, list):
            return f"answers.{name} is {_shown(values)}, not a list"
    if len(texts) != len(starts):
        return f"{len(texts)} answer text(s) but {len(starts)} answer_start(s)"
    text = next((text for text in texts if not isinstance(text, str)), None)
    if text is not None:
        return f"answers.text holds {_shown(text)}, not a string"
    start = next((start for start in starts if type(start) is not int), None)
    if start is not None:
        number = ' (write it as a number: 12, not "12")' if isinstance(start, str) else ""
        return f"answers.answer_start holds {_shown(start)}, not an integer offset{number}"
    return None


def _shown(value: object) -> str:
    return f"{type(value).__name__} {repr(value)[:40]}"


def malformed_answers(rows: Dataset) -> list[int]:
    """Positions of the rows whose ``answers`` are not a well-formed answer list (``answer_problem``). Read from the
    Arrow column when its type says text and offsets (fast: no row is turned into Python objects)."""
    answers_arrow = rows.with_format("arrow")["answers"]
    kind = answers_arrow.type
    if not (
        pa.types.is_struct(kind)
        and {kind.field(i).name for i in range(kind.num_fields)} == {"text", "answer_start"}
        and pa.types.is_string(kind.field("text").type.value_type)
        and pa.types.is_integer(kind.field("answer_start").type.value_type)
    ):
        return [i for i, answers in enumerate(column(rows, "answers")) if answer_problem(answers) is not None]
    texts, starts = pc.struct_field(answers_arrow, "text"), pc.struct_field(answers_arrow, "answer_start")
    # a missing struct or list compares as null: null counts as broken
    broken = pc.fill_null(pc.not_equal(pc.list_value_length(texts), pc.list_value_length(starts)), True)
    return np.flatnonzero(broken.to_numpy(zero_copy_only=False)).tolist()


def mixed_offsets(rows: Dataset) -> bool:
    """The file gave ``answer_start`` values of several JSON types (numbers and strings): the reader keeps them as
    JSON text and reads ``"12"`` back as 12, so no row shows it; the raw file does (``raw_answers``)."""
    starts = pc.struct_field(rows.with_format("arrow")["answers"], "answer_start").type
    return pa.types.is_list(starts) and isinstance(starts.value_type, pa.BaseExtensionType)


def raw_answers(path: str) -> list[tuple[object, object]]:
    """Each question's (id, answers) as a JSON-lines, JSON or official nested SQuAD file writes them, in row order."""
    with open_text(path) as f:
        if file_format(path) == "jsonl":
            return [(row.get("id"), row.get("answers")) for row in map(json.loads, f) if isinstance(row, dict)]
        document = json.load(f)
    if isinstance(document, list):
        return [(row.get("id"), row.get("answers")) for row in document]
    questions = [qa for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    flat = flatten_articles({"title": [None], "paragraphs": [[{"context": "", "qas": questions}]]})
    return list(zip(flat["id"], flat["answers"]))


def blank_answers(rows: Dataset) -> list[int]:
    """Positions of the questions with an empty (or whitespace) answer text, from the Arrow column: such an answer
    marks no span (an unanswerable question has empty lists instead)."""
    texts = pa.chunked_array(pc.struct_field(rows.with_format("arrow")["answers"], "text")).combine_chunks()
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(pc.list_flatten(texts))), 0)
    return sorted(set(pc.list_parent_indices(texts).filter(blank).to_pylist()))


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
