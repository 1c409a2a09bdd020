"""Reading raw rows: from the Hugging Face Hub by name, or from local csv/tsv/json/jsonl/parquet files.

Everything goes through ``datasets.load_dataset`` so that rows live in memory-mapped Arrow files and later
``.map`` calls (tokenisation) are cached on disk by fingerprint.
"""

import codecs
import csv
import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import datasets
from datasets import Dataset

from ftlit.data.records import (
    RecordError,
    Records,
    count_json_lines,
    first_mismatch,
    json_lines_problem,
    scan_records,
)
from ftlit.errors import FtlitError

log = logging.getLogger(__name__)

#: The environment variable that says where ftlit's offline data lives; configs, tests and benchmarks name their
#: files under it as ``${FTLIT_DATA}/...``
DATA_ROOT_VARIABLE = "FTLIT_DATA"
DEFAULT_DATA_ROOT = "../shared/data"  # beside the project root, from which configs are run


def data_root() -> Path:
    """The folder that ``${FTLIT_DATA}`` stands for: the environment variable, else ``../shared/data``."""
    return Path(os.environ.get(DATA_ROOT_VARIABLE) or DEFAULT_DATA_ROOT)


def expand_data_path(path: str) -> str:
    """``${FTLIT_DATA}/glue/...`` (or ``$FTLIT_DATA/...``) → a path under ``data_root()``, and ``~`` → the home
    folder; nothing else in a path is touched."""
    for form in ("${FTLIT_DATA}", "$FTLIT_DATA"):
        path = path.replace(form, str(data_root()))
    return os.path.expanduser(path)


@dataclass(frozen=True)
class TsvLayout:
    """How an official GLUE TSV file (from ``download_glue_data.py``) lays out its columns.

    ``names`` is set for files without a header line (CoLA); ``rename`` maps the file's column names onto the
    Hugging Face dataset's; ``quoted`` files wrap some fields in CSV quotes (GoEmotions), GLUE's never do;
    ``all_text`` reads every named column as text (label lists such as ``3,27`` then never mix with lone ids).
    """

    names: tuple[str, ...] | None = None
    rename: dict[str, str] = field(default_factory=dict)
    quoted: bool = False
    all_text: bool = False


_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def file_format(path: str) -> str:
    """The file's format by extension, ``.gz`` looked through: csv, tsv, json, jsonl or parquet."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if not suffixes or suffixes[-1] not in _BUILDERS:
        raise FtlitError(
            f"Unknown file format for '{path}': use one of {', '.join(_BUILDERS)} (optionally gzipped, '.gz')."
        )
    return suffixes[-1][1:]


def open_text(path: str, errors: str = "strict") -> IO[str]:
    """A text file, gzipped (``.gz``) or plain, as UTF-8 (a byte-order mark is skipped)."""
    opener = gzip.open if path.endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8-sig", errors=errors)


def read_head(path: str, size: int = 4096) -> str:
    """The first ``size`` characters of a (possibly gzipped) text file, to sniff its layout: a byte that is not
    UTF-8 reads as U+FFFD here, and the full read reports where it is (``first_undecodable_line``)."""
    with open_text(path, errors="replace") as f:
        return f.read(size)


def first_undecodable_line(path: str) -> tuple[int, int] | None:
    """The line and column (both from 1, the column in characters) of the first byte of a (possibly gzipped) file
    that is not UTF-8; None when it all decodes."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:  # first the whole file at C speed: most files are fine
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return None
        except UnicodeDecodeError:
            pass
    with opener(path, "rb") as f:
        for number, line in enumerate(f, start=1):  # b"\n" never occurs inside a UTF-8 sequence
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                before = line[: err.start].decode("utf-8")
                return number, len(before.removeprefix("\ufeff") if number == 1 else before) + 1
    return None


def _not_utf8(path: str, fmt: str, header: bool) -> str | None:
    """Where ``path`` stops being UTF-8 and the fix, or None (also when the file cannot be read at all)."""
    if fmt == "parquet":
        return None
    try:
        found = first_undecodable_line(path)
    except (OSError, EOFError):
        return None
    if found is None:
        return None
    line, column = found
    if fmt == "jsonl" or (fmt == "tsv" and not header):
        where = f"row {line} (line {line}), column {column}"
    elif fmt == "tsv" and line > 1:
        where = f"row {line - 1} (line {line}, after the header line), column {column}"
    else:
        where = f"line {line}, column {column}"
    return (
        f"{where} holds a byte that is not UTF-8 (the file was saved in another encoding, e.g. Latin-1 or "
        "Windows-1252). Save it as UTF-8 (in an editor: 'Save as… UTF-8'; or iconv -f cp1252 -t utf-8 FILE > NEW)."
    )


def _tsv_options(path: str, layout: TsvLayout) -> dict:
    # GLUE's TSVs use no quoting at all: a '"' inside a sentence is text, not a quote
    quoting = csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE
    options = {"sep": "\t", "quoting": quoting, "encoding": "utf-8-sig"}
    # Headerless files (CoLA train/dev) get their column names; CoLA's test file has a header starting "index"
    if layout.names and not read_head(path).startswith("index\t"):
        options.update(header=None, names=list(layout.names))
        if layout.all_text:
            options["features"] = datasets.Features({name: datasets.Value("string") for name in layout.names})
    return options


def content_hash(path: str) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_json_error(path: str) -> str | None:
    """Where a JSON or JSON-lines file stops parsing, as "line N: reason" (None when it parses)."""
    with open_text(path) as f:
        text = f.read()
    try:
        json.loads(text)
        return None
    except json.JSONDecodeError as whole:
        lines = text.split("\n")  # not splitlines(): a text may hold U+2028 or U+0085, which it breaks at
        if not _is_json_object(next((line for line in lines if line.strip()), "")):
            return f"line {whole.lineno}, column {whole.colno}: {whole.msg}"  # one document over several lines
        found = json_lines_problem(lines)  # JSON lines: one document per line
        return f"line {found[0]}{': ' if found[1].startswith('not') else ', '}{found[1]}" if found else None


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _has_no_rows(path: str, fmt: str, header: bool) -> bool:
    """A text file holding nothing but blank lines (and, for csv/tsv with a header, that header)."""
    if fmt == "parquet":
        return False
    limit = 1 << 16
    head = read_head(path, limit)
    if len(head) == limit:  # a file this long holds rows
        return False
    lines = [line for line in head.splitlines() if line.strip()]
    return len(lines) <= (1 if header and fmt in ("csv", "tsv") else 0)


def _where_data_files_are(path: str) -> str:
    """The hint for a missing data file: for one under ``${FTLIT_DATA}``, what that folder is, where it is now
    and what it should hold; for any other, where a relative path starts."""
    root = data_root()
    if not Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root)):
        return f"Check the path (relative paths start from {Path.cwd()})."
    value = os.environ.get(DATA_ROOT_VARIABLE)
    setting = (
        f"{DATA_ROOT_VARIABLE}={value!r}" if value else f"{DATA_ROOT_VARIABLE} is not set: the default {str(root)!r}"
    )
    if not root.is_absolute():  # a relative root moves with the working directory, not with the project
        setting += f", which resolves from the working directory {Path.cwd()} to {os.path.abspath(root)}"
    return (
        f"It is under ${{{DATA_ROOT_VARIABLE}}}, the folder of the offline datasets ({setting}). That folder should "
        f"hold the public datasets as docs/data.md in ftlit's repository lists them (glue/, squad/, conll2003/ ...): "
        f"set {DATA_ROOT_VARIABLE} to your copy. Or start without it: `ftlit fit --config configs/quickstart.yaml "
        "--output_dir runs/quickstart`, run from the clone's root, trains on the sample that ships in examples/data."
    )


def check_data_file(path: str, formats: str) -> None:
    """Refuse a path that is not a readable file (``formats`` says which files are expected)."""
    if Path(path).is_dir():
        raise FtlitError(
            f"'{path}' is a directory, but a data file is expected here: give the path of a file inside it "
            f"({formats}, optionally gzipped)."
        )
    if not Path(path).is_file():
        raise FtlitError(f"Data file not found: '{path}'. " + _where_data_files_are(path))
    if not os.access(path, os.R_OK):
        raise FtlitError(f"Data file '{path}' is not readable (permission denied): check its permissions.")


def load_local_file(path: str, layout: TsvLayout | None = None, **json_options) -> Dataset:
    """Read one local file into a Dataset; GLUE TSV files are read with the task's ``layout``.

    The rows are cached by the file's content hash (datasets alone keys its cache by path and modification time,
    so a file rewritten within the same second, or copied with its old time, would be read stale).
    """
    check_data_file(path, ", ".join(_BUILDERS))
    fmt = file_format(path)
    options: dict = {"keep_default_na": False} if fmt in ("csv", "tsv") else dict(json_options)
    try:
        if fmt == "tsv":
            options.update(_tsv_options(path, layout or TsvLayout()))
        header = options.get("header", "infer") is not None
        empty = _has_no_rows(path, fmt, header=header)
    except (OSError, EOFError) as err:
        raise FtlitError(f"Could not read '{path}' as {fmt}: {type(err).__name__}: {err}") from err
    # checked before parsing: pandas reports a position in its buffer, and pyarrow's JSON reader keeps the bad
    # bytes (the error would come later, from whatever first reads that row)
    not_utf8 = _not_utf8(path, fmt, header)
    if not_utf8:
        raise FtlitError(f"Could not read '{path}' as {fmt}: {not_utf8}")
    if empty:
        raise FtlitError(f"Data file '{path}' has no rows.")
    records = _records(path, fmt, options)
    cache_dir = Path(datasets.config.HF_DATASETS_CACHE) / "ftlit" / content_hash(path)[:32]
    try:
        dataset = datasets.load_dataset(
            _BUILDERS["." + fmt], data_files={"rows": path}, split="rows", cache_dir=str(cache_dir), **options
        )
    except Exception as err:  # datasets wraps parser errors in several exception types
        raise FtlitError(f"Could not read '{path}' as {fmt}: {_read_error(path, fmt, err)}") from err
    if len(dataset) == 0:  # e.g. a parquet file without rows
        raise FtlitError(f"Data file '{path}' has no rows.")
    _check_row_count(path, fmt, records, dataset)
    if layout and layout.rename:
        present = {old: new for old, new in layout.rename.items() if old in dataset.column_names}
        dataset = dataset.rename_columns(present)
    return dataset


def _records(path: str, fmt: str, options: dict) -> Records | None:
    """A CSV or TSV file's records, scanned with the quoting its format has (``ftlit.data.records``): a row with
    another number of fields than the header, or a quote that runs over lines, is refused naming its line."""
    if fmt not in ("csv", "tsv"):
        return None
    quoted = options.get("quoting", csv.QUOTE_MINIMAL) != csv.QUOTE_NONE
    try:
        with open_text(path) as lines:
            records = scan_records(lines, options.get("sep", ","), quoted, options.get("names"))
    except RecordError as err:
        raise FtlitError(f"Could not read '{path}' as {fmt}: {err}") from None
    except (OSError, EOFError) as err:
        raise FtlitError(f"Could not read '{path}' as {fmt}: {type(err).__name__}: {err}") from err
    if records.multiline:  # RFC 4180 allows it; said, as it is also what a stray quote does
        first, last = records.multiline[0]
        log.warning(
            "'%s': %d row(s) hold a quoted text over several lines (first: lines %d-%d), so the file's %d rows take "
            "more lines than that. If that is not meant, a quote opens a text that should not be quoted.",
            path,
            len(records.multiline),
            first,
            last,
            records.count,
        )
    return records


def _check_row_count(path: str, fmt: str, records: Records | None, dataset: Dataset) -> None:
    """The rows read are the file's records, one for one, else the first that differs is named."""
    if fmt == "jsonl":
        with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
            count = count_json_lines(f)
        if len(dataset) != count:
            with open_text(path) as lines:
                line, reason = json_lines_problem(lines) or (0, "")
            raise FtlitError(
                f"Could not read '{path}' as jsonl: its {count} non-blank lines were read as {len(dataset)} rows; "
                f"line {line} is not one JSON object ({reason}). A JSON-lines file holds one object per line."
            )
    if records is None or len(dataset) == records.count:
        return
    i = first_mismatch(records, dataset.data.column(0).to_pylist())
    where = f"row {i + 1} (line {records.lines[i]})" if i < records.count else "after the last row"
    raise FtlitError(
        f"Could not read '{path}' as {fmt}: the file holds {records.count} rows, but {len(dataset)} were read; the "
        f"first that differs is {where}. Check its quotes and delimiters."
    )


def _read_error(path: str, fmt: str, err: Exception) -> str:
    """The most useful reason a file could not be read: the malformed JSON line, else the parser's message."""
    if fmt in ("json", "jsonl"):
        try:
            located = first_json_error(path)
        except (OSError, UnicodeDecodeError, EOFError) as unreadable:
            return f"{type(unreadable).__name__}: {unreadable}"
        if located:
            return f"malformed JSON at {located}"
    cause = err.__cause__ or err
    return f"{type(cause).__name__}: {cause}"


def load_hub_dataset(path: str, name: str | None, split: str) -> Dataset:
    """``load_dataset(path, name, split=split)`` with a one-line error when the Hub cannot be reached."""
    try:
        return datasets.load_dataset(path, name, split=split)
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as err:
        what = f"{path}/{name}" if name else path
        raise FtlitError(
            f"Could not load dataset '{what}' (split '{split}') from the Hugging Face Hub: {err}. Offline, point "
            "ftlit at local copies with --data.train_file / --data.validation_file / --data.test_file."
        ) from err
