"""Row-level checks of raw data, run before any tokenisation: each finds the offending rows so that the error (or
warning) can name them. Rows are numbered from 1, not counting a header line: row N of a JSON-lines file is its
line N."""

import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Literal

import numpy as np
from datasets import Dataset, Value
from transformers import PreTrainedTokenizerBase

from ftlit.errors import FtlitError

log = logging.getLogger(__name__)

EmptyTextPolicy = Literal["skip", "error"]


def column(rows: Dataset, name: str) -> list:
    """A column's values as a list, read in one batch. (Iterating ``rows[name]`` formats it row by row: reading
    SQuAD's 87,599 contexts that way takes 4.1 s against 0.26 s, and a run's checks read several columns.)"""
    return rows[name][:]


def rows_named(indices: Sequence[int], limit: int = 5) -> str:
    """0-based indices → "rows 3, 8 and 12" (1-based), the first ``limit`` of them."""
    shown = ", ".join(str(i + 1) for i in indices[:limit])
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return f"row{'s' if len(indices) > 1 else ''} {shown}{more}"


def is_blank(value: object) -> bool:
    """A missing text: None, NaN, or an empty/whitespace-only string."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def blank_text_rows(rows: Dataset, fields: Sequence[str]) -> dict[str, list[int]]:
    """Per field, the indices of rows whose text is missing."""
    blank = {field: [i for i, value in enumerate(column(rows, field)) if is_blank(value)] for field in fields}
    return {field: indices for field, indices in blank.items() if indices}


def drop_blank_texts(rows: Dataset, fields: Sequence[str], source: str, policy: EmptyTextPolicy) -> Dataset:
    """Rows without text in any of ``fields`` are dropped with a warning (``skip``) or refused (``error``)."""
    blank = blank_text_rows(rows, fields)
    if not blank:
        return rows
    where = "; ".join(f"{field!r} in {rows_named(indices)}" for field, indices in blank.items())
    if policy == "error":
        raise FtlitError(
            f"{source}: empty or missing text in {where}. Fix the rows, or skip them with --data.empty_text skip."
        )
    drop = {i for indices in blank.values() for i in indices}
    if len(drop) == len(rows):
        raise FtlitError(f"{source}: every row has an empty or missing text ({where}); nothing is left to use.")
    log.warning("%s: skipped %d of %d rows with an empty or missing text (%s).", source, len(drop), len(rows), where)
    return without_rows(rows, drop)


def without_rows(rows: Dataset, indices: Iterable[int]) -> Dataset:
    """``rows`` less those at ``indices``, in their order."""
    return rows.select(sorted(set(range(len(rows))) - set(indices)))


def invalid_values(values: Sequence, is_valid: Callable[[object], bool]) -> list[int]:
    return [i for i, value in enumerate(values) if not is_valid(value)]


def check_labels(values: Sequence, is_valid: Callable[[object], bool], source: str, field: str, expected: str) -> None:
    """Every label must pass ``is_valid``; the error names the rows, the values found and what was ``expected``."""
    bad = invalid_values(values, is_valid)
    if bad:
        found = sorted({repr(values[i]) for i in bad})[:5]
        raise FtlitError(
            f"{source}: {len(bad)} label(s) in column {field!r} are not valid ({rows_named(bad)}: "
            f"{', '.join(found)}). Expected {expected}."
        )


def check_learnable(targets: Iterable[Hashable], source: str, what: str) -> None:
    """Training targets a model can learn from: two different values at least. One class, one label set, one
    regression value or one tag teaches nothing (and a head of one class breaks the metrics), so it is refused
    before the first step; data without any target is left to the checks that refuse it."""
    seen: set = set()
    for target in targets:
        seen.add(target)
        if len(seen) > 1:
            return
    if seen:
        raise FtlitError(
            f"{source}: every {what} of the training data is {seen.pop()!r}: there is nothing to learn. Training "
            f"needs two different {what}s at least: check the column (or the file) given for training."
        )


def duplicates(values: Sequence) -> list:
    """Values that occur more than once, in order of first occurrence."""
    counts = Counter(values)
    return [value for value in counts if counts[value] > 1]


def check_text_types(rows: Dataset, fields: Sequence[str], source: str) -> None:
    """Every value of the text ``fields`` is a string (or missing: see ``drop_blank_texts``); the error names the
    column, the rows and the types found. A column of lists is refused rather than read as something else."""
    for field in fields:
        feature = rows.features[field]
        if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            continue  # the Arrow type says it: no row to look at
        values = column(rows, field)
        bad = [i for i, value in enumerate(values) if not (isinstance(value, str) or is_blank(value))]
        if not bad:
            continue
        found = sorted({type(values[i]).__name__ for i in bad})
        hint = (
            " One text per row is expected; give a sentence pair as two columns (--data.text_fields '[a, b]')."
            if "list" in found
            else " Quote numbers that are texts, or fix the column."
        )
        raise FtlitError(
            f"{source}: column {field!r} must hold text, but {len(bad)} of {len(values)} rows hold "
            f"{' / '.join(found)} ({rows_named(bad)}: {', '.join(repr(values[i])[:40] for i in bad[:3])}).{hint}"
        )


def unknown_token_share(input_ids: Sequence[Sequence[int]], tokenizer: PreTrainedTokenizerBase) -> float:
    """The share of text tokens (special tokens left out) that are the tokenizer's unknown token."""
    if tokenizer.unk_token_id is None:
        return 0.0
    special = list(set(tokenizer.all_special_ids) - {tokenizer.unk_token_id})
    tokens = np.fromiter(itertools.chain.from_iterable(input_ids), dtype=np.int64)
    tokens = tokens[~np.isin(tokens, special)]
    return float((tokens == tokenizer.unk_token_id).sum() / max(len(tokens), 1))
