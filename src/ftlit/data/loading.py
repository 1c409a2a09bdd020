"""Reading raw rows: from the Hugging Face Hub by name, or from local csv/tsv/json/jsonl/parquet files.

Everything goes through ``datasets.load_dataset`` so that rows live in memory-mapped Arrow files and later
``.map`` calls (tokenisation) are cached on disk by fingerprint.
"""

import csv
import gzip
from pathlib import Path

import datasets
from datasets import Dataset

from ftlit.data.tasks import TsvLayout
from ftlit.errors import FtlitError

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


def read_head(path: str, size: int = 4096) -> str:
    """The first ``size`` characters of a (possibly gzipped) text file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as f:
        return f.read(size)


def _tsv_options(path: str, layout: TsvLayout) -> dict:
    # GLUE's TSVs use no quoting at all: a '"' inside a sentence is text, not a quote
    options = {"sep": "\t", "quoting": csv.QUOTE_NONE, "encoding": "utf-8-sig"}
    # Headerless files (CoLA train/dev) get their column names; CoLA's test file has a header starting "index"
    if layout.names and not read_head(path).startswith("index\t"):
        options.update(header=None, names=list(layout.names))
    return options


def load_local_file(path: str, layout: TsvLayout | None = None, **json_options) -> Dataset:
    """Read one local file into a Dataset; GLUE TSV files are read with the task's ``layout``."""
    if not Path(path).is_file():
        raise FtlitError(f"Data file not found: '{path}'. Check the path (relative paths start from {Path.cwd()}).")
    fmt = file_format(path)
    options: dict = {"keep_default_na": False} if fmt in ("csv", "tsv") else dict(json_options)
    if fmt == "tsv":
        options.update(_tsv_options(path, layout or TsvLayout()))
    try:
        dataset = datasets.load_dataset(_BUILDERS["." + fmt], data_files={"rows": path}, split="rows", **options)
    except Exception as err:  # datasets wraps parser errors in several exception types
        cause = err.__cause__ or err
        raise FtlitError(f"Could not read '{path}' as {fmt}: {cause}") from err
    if layout and layout.rename:
        present = {old: new for old, new in layout.rename.items() if old in dataset.column_names}
        dataset = dataset.rename_columns(present)
    return dataset


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
