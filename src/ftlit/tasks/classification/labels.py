"""Labels as they come in data files: names or ids, and the values that mark a row without a gold label."""

import logging
import math
from collections import Counter

import numpy as np
from datasets import ClassLabel, Dataset

from ftlit.data.checks import rows_named
from ftlit.data.loading import open_text
from ftlit.errors import FtlitError

log = logging.getLogger(__name__)

# How datasets mark a row without a gold label (SNLI: -1 on the Hub, "-" in the original files)
UNLABELED = (None, -1, "-1", "", "-")
#: Per problem type, what marks a row without a gold label: a multi-label text's empty list (or "") is a label set,
#: and -1 is a regression target
UNLABELED_BY_PROBLEM = {"single_label": UNLABELED, "multi_label": (None,), "regression": (None, "")}


def label_name(value: object) -> str:
    """A raw label as a name: ``2.0`` (a whole number read as a float) is ``"2"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def label_names_from_values(values: list) -> list[str]:
    """Sorted distinct labels as names; integer labels sort as numbers (so 2 comes before 10)."""
    distinct = {label_name(value) for value in values if value not in UNLABELED}
    if all(name.lstrip("-").isdigit() for name in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def label_id(value: object, label_names: list[str]) -> int | None:
    """A raw label's id: by name first ("positive", or "3" for integer-named labels), else as an index into names
    that are not numbers themselves (a names file's ids); None when it is neither."""
    name = label_name(value)
    if name in label_names:
        return label_names.index(name)
    if all(known.lstrip("-").isdigit() for known in label_names):  # "2" among "0", "1", "3" is no label
        return None
    is_index = isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    if is_index and 0 <= int(value) < len(label_names):
        return int(value)
    return None


def is_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def largest_target(batch_size: int) -> float:
    """The largest regression target (in absolute value) whose squared error, summed over a batch of
    ``batch_size``, stays finite in float32 (bfloat16 has float32's range): above it the loss overflows to inf."""
    return math.sqrt(float(np.finfo(np.float32).max) / batch_size)


def is_integer_like(value: object) -> bool:
    """An integer label, or a string of one ("3", "-1")."""
    return isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())


def check_learnt_labels(values: list, source: str, field: str) -> None:
    """Labels learnt from training data must look like one label space: numbers and names mixed in one column (a
    stray ``1`` among ``pos``/``neg`` would make a third class) are refused with the rows of the rarer kind; labels
    seen only once, and a label for nearly every row (a wrong column?), are warned about."""
    labelled = [(i, value) for i, value in enumerate(values) if value not in UNLABELED]
    numbers = [i for i, value in labelled if is_integer_like(value)]
    names = [i for i, value in labelled if not is_integer_like(value)]
    if numbers and names:
        odd = min(numbers, names, key=len)
        raise FtlitError(
            f"{source}: column {field!r} mixes numbers and names as labels ({len(numbers)} numbers, {len(names)} "
            f"names; the {'numbers' if odd is numbers else 'names'} are in {rows_named(odd)}: "
            f"{', '.join(repr(values[i]) for i in odd[:5])}). Use one kind for every row."
        )
    counts = Counter(str(value) for _, value in labelled)
    if len(labelled) >= 20 and len(counts) > len(labelled) / 2:
        log.warning(
            "%s: %d distinct labels for %d rows in column %r: is it the label column? (--data.label_field)",
            source,
            len(counts),
            len(labelled),
            field,
        )
    elif len(labelled) >= 100:
        once = [i for i, value in labelled if counts[str(value)] == 1]
        if once:
            shown = ", ".join(repr(values[i]) for i in once[:5])
            log.warning(
                "%s: %d label(s) occur only once in column %r (%s: %s): each becomes a class of its own.",
                source,
                len(once),
                field,
                rows_named(once),
                shown,
            )


def label_set(value: object, delimiter: str) -> list | None:
    """A multi-label value as its list of labels: a list as it is, a delimited string (``"3,27"``) split and
    stripped, a lone id as a list of one; None for a missing value (a row without gold labels)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(delimiter) if part.strip()]
    return [value]


def holds_label_lists(values: list) -> bool:
    """A label column of lists (JSON arrays, Hub sequence features): multi-label data."""
    present = [value for value in values if value is not None]
    return bool(present) and all(isinstance(value, list | tuple) for value in present)


def read_label_names(path: str) -> list[str]:
    """Label names, one per line (GoEmotions' emotions.txt): line N names label id N − 1. Blank lines are refused
    (they would shift every id after them), except at the end of the file."""
    try:
        lines = open_text(path).read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise FtlitError(f"Could not read the label names file '{path}': {err}") from err
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    blank = [i for i, name in enumerate(names) if not name]
    if not names or blank:
        where = f"blank {rows_named(blank).replace('row', 'line')}" if blank else "no names"
        raise FtlitError(f"The label names file '{path}' has {where}: give one name per line, line N for id N − 1.")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise FtlitError(f"The label names file '{path}' names {repeated[:5]} more than once: each name once.")
    return names


def feature_label_names(rows: Dataset, field: str) -> list[str] | None:
    """The label names a Hub dataset declares for its label column: a ``ClassLabel``, or a sequence of them
    (multi-label); None when the column is plain values."""
    feature = rows.features.get(field)
    feature = getattr(feature, "feature", feature)  # Sequence/List(ClassLabel) → ClassLabel
    if isinstance(feature, list):  # datasets' [ClassLabel] shorthand
        feature = feature[0] if feature else None
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def is_plain_label(value: object) -> bool:
    """A label a label set can hold: a name or a whole-number id (not a list, a mapping or a fraction)."""
    return isinstance(value, str | int) or (isinstance(value, float) and value.is_integer())
