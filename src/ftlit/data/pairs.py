"""(query, positive passage[, hard negatives]) rows, the data of retrieval and reranking: read from any table with
those columns or from a SQuAD-format file (each question → its own paragraph), and checked. Pure functions over
rows; the task's data module maps them."""

import re
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from ftlit.data.checks import column, is_blank, rows_named
from ftlit.errors import FtlitError

#: The columns pair rows have once read (``title``, when the data has one, groups queries by document)
QUERY, POSITIVE, NEGATIVES = "query", "positive", "negatives"
#: sentence-transformers' layout of hard negatives: one column each (``negative``, ``negative_1``, …)
_NEGATIVE_COLUMN = re.compile(r"negative(_\d+)?")


def is_squad_layout(rows: Dataset, query_column: str) -> bool:
    """Rows of a SQuAD-format file (question, context), unless the user named a query column they hold."""
    return query_column not in rows.column_names and {"question", "context"} <= set(rows.column_names)


def negative_columns(names: Sequence[str]) -> list[str]:
    """sentence-transformers-style single-negative columns (``negative``, ``negative_1`` …), in number order."""
    found = [name for name in names if _NEGATIVE_COLUMN.fullmatch(name)]
    return sorted(found, key=lambda name: int(name.partition("_")[2] or 0))


def pair_rows(rows: Dataset, query_column: str, positive_column: str, negatives_column: str) -> Dataset:
    """Rows with the columns ``query``, ``positive`` (where the data has it) and ``negatives`` (a list of passages,
    empty when none are given), and ``title`` where the data has one. Hard negatives come from a list column
    ``negatives_column``, or from one column per negative (``negative``, ``negative_1`` …); a SQuAD-format file's
    questions are the queries and their paragraphs the positives."""
    if is_squad_layout(rows, query_column):
        query_column, positive_column = "question", "context"
    names = rows.column_names
    kept = {query_column: QUERY, positive_column: POSITIVE, "title": "title"}
    if negatives_column in names:
        negatives = [_as_list(value) for value in column(rows, negatives_column)]
    else:
        singles = [column(rows, name) for name in negative_columns(names)]
        negatives = [[value for value in values if value is not None] for values in zip(*singles)] or [[]] * len(rows)
    rows = rows.select_columns([name for name in kept if name in names])
    rows = rows.rename_columns({name: kept[name] for name in rows.column_names if name != kept[name]})
    return rows.add_column(NEGATIVES, negatives)


def _as_list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def blank_passages(rows: Dataset) -> dict[str, list[int]]:
    """Rows whose positive is empty or missing, and rows with an empty, missing or non-text hard negative."""
    found = {}
    if POSITIVE in rows.column_names:
        found[POSITIVE] = [i for i, text in enumerate(column(rows, POSITIVE)) if is_blank(text)]
    found[NEGATIVES] = [
        i
        for i, passages in enumerate(column(rows, NEGATIVES))
        if any(not isinstance(text, str) or is_blank(text) for text in passages)
    ]
    return {field: indices for field, indices in found.items() if indices}


def check_passages(rows: Dataset, source: str) -> None:
    """Refuse rows without a positive passage or with an empty negative: a passage without text can be neither
    learnt nor retrieved (unlike a blank query, which ``--data.empty_text`` may skip)."""
    blank = blank_passages(rows)
    if blank:
        where = "; ".join(f"{field!r} in {rows_named(indices)}" for field, indices in blank.items())
        raise FtlitError(
            f"{source}: empty or missing passages ({where}). Every row needs the text of its positive passage, and "
            "every hard negative a text."
        )


def held_out_groups(groups: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Which rows to hold out for validation: a seeded ``fraction`` of the distinct ``groups`` (documents, or
    positive passages), all rows of a group together, so no held-out query's passage was trained on."""
    distinct = sorted(set(groups))
    if len(distinct) < 2:
        raise FtlitError(
            "Cannot hold out a validation set: every query shares one passage (or document). Give "
            "--data.validation_file."
        )
    count = min(max(1, round(fraction * len(distinct))), len(distinct) - 1)
    chosen = set(np.random.default_rng(seed).permutation(len(distinct))[:count].tolist())
    held = {group for i, group in enumerate(distinct) if i in chosen}
    return np.array([group in held for group in groups], dtype=bool)


def row_passages(rows: Dataset) -> list[list[str]]:
    """Each row's passages: its positive, then its hard negatives."""
    return [[positive, *negatives] for positive, negatives in zip(column(rows, POSITIVE), column(rows, NEGATIVES))]


def passage_numbers(texts: Sequence[str]) -> dict[str, int]:
    """A number for each distinct passage text, in order of first appearance."""
    return {text: i for i, text in enumerate(dict.fromkeys(texts))}
