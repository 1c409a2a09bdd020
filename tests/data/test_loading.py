"""Reading local files, including the official GLUE TSV layouts in ../shared/data."""

import gzip
import json

import pandas as pd
import pytest

from conftest import SHARED_DATA
from ftlit.data.loading import file_format, load_local_file
from ftlit.data.tasks import get_task
from ftlit.errors import FtlitError

GLUE = SHARED_DATA / "glue"
needs_shared_data = pytest.mark.skipif(not GLUE.is_dir(), reason="../shared/data is not beside the project")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.csv", "csv"), ("a.tsv", "tsv"), ("a.json", "json"), ("a.jsonl.gz", "jsonl"), ("x/a.b.parquet", "parquet")],
)
def test_file_format_by_extension_looking_through_gzip(name, expected):
    assert file_format(name) == expected


def test_unknown_format_names_the_file_and_the_supported_ones():
    with pytest.raises(FtlitError, match=r"Unknown file format for 'data\.xlsx'.*\.csv.*\.parquet"):
        file_format("data.xlsx")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FtlitError, match="Data file not found: '.*nope.csv'"):
        load_local_file(str(tmp_path / "nope.csv"))


def test_csv_jsonl_gz_and_parquet_read_the_same_rows(tmp_path):
    rows = [{"text": "NA", "label": "pos"}, {"text": 'say "hi", twice', "label": "neg"}]
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    for name in ("a.csv", "a.parquet", "a.jsonl.gz"):
        assert load_local_file(str(tmp_path / name)).to_list() == rows, name  # "NA" stays text


def test_malformed_json_is_reported_with_the_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n{"text": broken\n')
    with pytest.raises(FtlitError, match="Could not read '.*bad.jsonl' as jsonl"):
        load_local_file(str(path))


@needs_shared_data
def test_cola_tsv_has_no_header_and_gets_column_names():
    rows = load_local_file(str(GLUE / "CoLA/train.tsv"), get_task("cola").tsv)
    assert len(rows) == 8551
    assert rows[0] == {
        "source": "gj04",
        "label": 1,
        "original_label": "",
        "sentence": "Our friends won't buy this analysis, let alone the next one we propose.",
    }
    assert sum(rows["label"]) == 6023


@needs_shared_data
def test_mrpc_tsv_with_bom_and_bare_quotes_maps_onto_hub_columns():
    rows = load_local_file(str(GLUE / "MRPC/train.tsv"), get_task("mrpc").tsv)
    assert len(rows) == 3668  # quotes are text: QUOTE_NONE keeps every line a row
    assert {"label", "sentence1", "sentence2"} <= set(rows.column_names)
    assert rows[0]["sentence1"].startswith('Amrozi accused his brother , whom he called " the witness "')


@needs_shared_data
def test_stsb_score_becomes_the_label():
    rows = load_local_file(str(GLUE / "STS-B/dev.tsv"), get_task("stsb").tsv)
    assert len(rows) == 1500 and rows[0]["label"] == 5.0
