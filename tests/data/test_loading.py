"""Reading local files, including the official GLUE TSV layouts in ${FTLIT_DATA} (../shared/data)."""

import gzip
import json
import os
from pathlib import Path

import datasets
import pandas as pd
import pytest

from conftest import SHARED_DATA, needs_shared_data
from ftlit.data.base import map_rows
from ftlit.data.loading import data_root, expand_data_path, file_format, load_local_file
from ftlit.errors import FtlitError
from ftlit.tasks.classification.presets import get_preset

GLUE = SHARED_DATA / "glue"


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


def test_a_missing_file_under_ftlit_data_says_what_the_folder_is_and_the_way_without_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FTLIT_DATA", raising=False)
    with pytest.raises(FtlitError) as default:
        load_local_file(expand_data_path("${FTLIT_DATA}/glue/SST-2/train.tsv"))
    message = str(default.value)
    assert "FTLIT_DATA is not set: the default '../shared/data'" in message
    assert f"resolves from the working directory {tmp_path} to {tmp_path.parent / 'shared/data'}" in message
    assert "docs/data.md" in message and "configs/quickstart.yaml" in message
    monkeypatch.setenv("FTLIT_DATA", str(tmp_path / "data"))
    with pytest.raises(FtlitError, match=r"FTLIT_DATA='.*/data'\)\. That folder should hold .* docs/data\.md"):
        load_local_file(expand_data_path("${FTLIT_DATA}/snli/dev.jsonl"))


def test_csv_jsonl_gz_and_parquet_read_the_same_rows(tmp_path):
    rows = [{"text": "NA", "label": "pos"}, {"text": 'say "hi", twice', "label": "neg"}]
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    for name in ("a.csv", "a.parquet", "a.jsonl.gz"):
        assert load_local_file(str(tmp_path / name)).to_list() == rows, name  # "NA" stays text


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.jsonl", '{"text": "ok", "label": 1}\n\n{"text": "ok", "label": 0}\n{"text": broken\n',
         "line 4, column 10: Expecting value"),
        ("bad.jsonl", '{"text": "ok"}\n["a", "list"]\n', "line 2: not a JSON object"),
        ("bad.json", '{"data": [\n  {"a": 1},\n  {"a": 2,,}\n]}', "line 3, column 11: Expecting property name"),
    ],
)  # fmt: skip
def test_malformed_json_is_reported_with_the_file_and_line(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FtlitError, match=rf"Could not read '.*{name}' as json.*: malformed JSON at {where}"):
        load_local_file(str(path))


@pytest.mark.parametrize(("name", "content"), [("empty.jsonl", "\n\n"), ("header_only.csv", "text,label\n")])
def test_a_file_without_rows_is_refused(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(FtlitError, match=f"Data file '.*{name}' has no rows"):
        load_local_file(str(tmp_path / name))


def test_an_unreadable_file_is_named_with_the_reason(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(
        FtlitError, match=r"Could not read '.*rows\.jsonl\.gz' as jsonl: BadGzipFile: Not a gzipped file"
    ):
        load_local_file(str(path))


def test_a_rewritten_file_is_read_anew_even_with_its_old_modification_time(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "first", "label": 1}\n')
    assert load_local_file(str(path))["text"] == ["first"]
    stat = path.stat()
    path.write_text('{"text": "other", "label": 0}\n')  # same size, and the old time put back
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_local_file(str(path))["text"] == ["other"]


@needs_shared_data
def test_cola_tsv_has_no_header_and_gets_column_names():
    rows = load_local_file(str(GLUE / "CoLA/train.tsv"), get_preset("cola").tsv)
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
    rows = load_local_file(str(GLUE / "MRPC/train.tsv"), get_preset("mrpc").tsv)
    assert len(rows) == 3668  # quotes are text: QUOTE_NONE keeps every line a row
    assert {"label", "sentence1", "sentence2"} <= set(rows.column_names)
    assert rows[0]["sentence1"].startswith('Amrozi accused his brother , whom he called " the witness "')


@needs_shared_data
def test_stsb_score_becomes_the_label():
    rows = load_local_file(str(GLUE / "STS-B/dev.tsv"), get_preset("stsb").tsv)
    assert len(rows) == 1500 and rows[0]["label"] == 5.0


def test_data_paths_under_ftlit_data_follow_the_variable_or_default_to_shared_data(monkeypatch):
    monkeypatch.delenv("FTLIT_DATA", raising=False)
    assert expand_data_path("${FTLIT_DATA}/glue/CoLA/train.tsv") == "../shared/data/glue/CoLA/train.tsv"
    monkeypatch.setenv("FTLIT_DATA", "/data/ftlit")
    assert expand_data_path("${FTLIT_DATA}/glue/CoLA/train.tsv") == "/data/ftlit/glue/CoLA/train.tsv"
    assert expand_data_path("$FTLIT_DATA/imdb.jsonl") == "/data/ftlit/imdb.jsonl"
    assert expand_data_path("local/train.csv") == "local/train.csv"
    assert data_root() == Path("/data/ftlit")


class _CountsPickling:
    """Stands for a featuriser's tokenizer: counts how often datasets pickles it to hash a transform."""

    pickled = 0

    def __reduce__(self):
        type(self).pickled += 1
        return (_CountsPickling, ())


@pytest.mark.parametrize("caching", [True, False])
def test_with_the_cache_off_rows_are_featurised_without_hashing_the_featuriser(caching):
    # ftlit serve turns the cache off: hashing a tokenizer for a fingerprint cost more than the model per request
    held = _CountsPickling()
    _CountsPickling.pickled = 0
    rows = datasets.Dataset.from_list([{"text": "a b"}, {"text": "c"}])
    cached_before = datasets.is_caching_enabled()  # a Predictor earlier in the session may have turned it off
    (datasets.enable_caching if caching else datasets.disable_caching)()
    try:
        features = map_rows(rows, lambda row: {"words": len(row["text"].split()) + 0 * id(held)})
    finally:
        (datasets.enable_caching if cached_before else datasets.disable_caching)()
    assert features["words"] == [2, 1]
    assert (_CountsPickling.pickled > 0) is caching
