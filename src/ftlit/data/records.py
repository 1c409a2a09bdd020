"""A text file's records as its format defines them, counted apart from the reader of its rows, so that no row is
silently shifted, merged or split.

Quoting is decided per format: a CSV file follows RFC 4180 (a field may be wrapped in ``"``, an inner ``"`` is
doubled, a quoted field may hold line breaks, and nothing but the delimiter may follow a closing quote); a TSV file
holds one record per line and, as GLUE's own loaders read it, has no quote character (a ``"`` is text), unless its
layout says its fields are CSV-quoted (GoEmotions). A line that is empty or only spaces is no record (pandas, which
reads the rows, skips it too). A JSON-lines file holds one object per non-blank line.
"""

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: How much of a line a message shows
SHOWN = 60


class RecordError(ValueError):
    """A record that breaks its format's rules: ``row`` (from 1, header not counted) starts at ``line``."""

    def __init__(self, row: int, line: int, reason: str) -> None:
        super().__init__(f"row {row} (line {line}) {reason}")
        self.row, self.line = row, line


@dataclass(frozen=True)
class Records:
    """A file's records: how many (header not counted), the line each starts at and its first field, and the
    (first, last) lines of each record that a quoted field carries over several lines."""

    count: int
    lines: list[int]
    first_fields: list[str]
    multiline: list[tuple[int, int]] = field(default_factory=list)


def scan_records(lines: Iterable[str], delimiter: str, quoted: bool, names: Sequence[str] | None = None) -> Records:
    """The records of a delimited file's ``lines``, each checked: as many fields as the header (the first record),
    or as ``names`` for a file without a header; with ``quoted``, quotes as RFC 4180 sets them, each closed.

    A TSV passes ``delimiter="\\t"``: there a record that runs over several lines (a quote that is never closed on
    its line) is refused, since a TSV holds one record per line. Raises ``RecordError`` naming the first bad row.
    """
    limit = csv.field_size_limit(sys.maxsize)  # a long document is a field (128 KiB by default), restored below
    try:
        return _scan(lines, delimiter, quoted, names)
    finally:
        csv.field_size_limit(limit)


def _scan(lines: Iterable[str], delimiter: str, quoted: bool, names: Sequence[str] | None) -> Records:
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
    expected: Sequence[str] | None = names
    header_line = 0
    starts: list[int] = []
    firsts: list[str] = []
    multiline: list[tuple[int, int]] = []
    while True:
        start = reader.line_num + 1
        row = len(starts) + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise RecordError(row, start, _quote_problem(str(err), start, reader.line_num)) from None
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        last = reader.line_num
        if last > start:
            if delimiter == "\t":
                raise RecordError(row, start, _swallowed(start, last))
            multiline.append((start, last))
        if expected is None:
            expected, header_line = fields, start
            continue
        if expected is not None and len(fields) != len(expected):
            text = delimiter.join(fields)
            shown = repr(text[:SHOWN] + ("…" if len(text) > SHOWN else ""))
            source = f"the header (line {header_line})" if header_line else "the file's layout"
            raise RecordError(
                row,
                start,
                f"has {len(fields)} field(s), but {source} has {len(expected)} ({', '.join(map(str, expected))}): "
                f"{shown}. A {_delimiter_name(delimiter)} inside a text, or a missing one? Every row has one field "
                "per column, no more and no fewer.",
            )
        starts.append(start)
        firsts.append(fields[0])
    return Records(len(starts), starts, firsts, multiline)


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma"}.get(delimiter, repr(delimiter))


def _swallowed(start: int, last: int) -> str:
    return (
        f'opens a quoted text (a field starting with ") that runs on to line {last}, taking {last - start} more '
        'line(s) into one row. A TSV holds one row per line: close the quote on its line, or double a " that is '
        'text ("").'
    )


def _quote_problem(reason: str, start: int, last: int) -> str:
    """What a strict reader's error means: a quote never closed, or text after a closing quote (on a later line:
    the quote that opened the field is the stray one)."""
    if "unexpected end of data" in reason:
        return (
            f'opens a quoted text (a field starting with ") that is never closed: it would run from line {start} to '
            'the end of the file. Close the quote, or double a " that is text ("").'
        )
    if last > start:
        return (
            f'opens a quoted text (a field starting with ") that runs on to line {last}, where text follows the '
            'quote that closes it: the opening quote is a stray one? Close it on its line, or double a " that is '
            'text ("").'
        )
    return (
        f'has text after a closing quote ({reason}). A quoted field ends at its closing quote; a " inside a field '
        'is doubled ("") and the whole field quoted, as RFC 4180 sets it.'
    )


def first_mismatch(records: Records, read: Sequence[object]) -> int:
    """The index of the first record whose first field is not the row read at its place (``read``: the first
    column of the rows as read, numbers as the reader typed them); ``records.count`` when the rows read run on
    past the records."""
    for i, (raw, value) in enumerate(zip(records.first_fields, read)):
        if not _same(raw, value):
            return i
    return min(len(read), records.count)


def _same(raw: str, value: object) -> bool:
    if isinstance(value, str) or value is None:
        return raw == (value or "")
    try:
        return float(raw) == float(value)
    except (TypeError, ValueError):
        return str(value) == raw.strip()


def json_lines_problem(lines: Iterable[str]) -> tuple[int, str] | None:
    """The first line (from 1) of a JSON-lines file that is not one JSON object, and why; None when each non-blank
    line is one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            return number, f"column {err.colno}: {err.msg}"
        if not isinstance(value, dict):
            return number, "not a JSON object"
    return None


def count_json_lines(lines: Iterable[bytes]) -> int:
    """The records of a JSON-lines file: its non-blank lines."""
    return sum(1 for line in lines if line.strip())
