"""Labels as they come in data files: names or ids, and the values that mark a row without a gold label."""

import math

# How datasets mark a row without a gold label (SNLI: -1 on the Hub, "-" in the original files)
UNLABELED = (None, -1, "-1", "", "-")


def label_names_from_values(values: list) -> list[str]:
    """Sorted distinct labels as names; integer labels sort as numbers (so 2 comes before 10)."""
    distinct = set(values) - set(UNLABELED)
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
