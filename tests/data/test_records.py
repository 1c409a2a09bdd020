"""A text file's records counted by its format's rules: rows never shifted, merged or split silently."""

import gzip
import re

import pytest

from ftlit.data.loading import TsvLayout, load_local_file
from ftlit.data.records import RecordError, first_mismatch, json_lines_problem, scan_records
from ftlit.errors import FtlitError


def scan(text: str, delimiter: str = "\t", quoted: bool = False, names=None):
    return scan_records(text.splitlines(keepends=True), delimiter, quoted, names)


def refusal(text: str, delimiter: str = "\t", quoted: bool = False, names=None) -> RecordError:
    with pytest.raises(RecordError) as caught:
        scan(text, delimiter, quoted, names)
    return caught.value


def test_records_are_counted_without_the_header_and_blank_lines():
    records = scan("a\tb\n1\t2\n\n   \n3\t4\r\n")
    assert (records.count, records.lines, records.first_fields) == (2, [2, 5], ["1", "3"])


@pytest.mark.parametrize(
    ("text", "delimiter", "row", "line", "fields"),
    [
        ("a\tb\nx\textra\t1\ny\t0\n", "\t", 1, 2, 3),  # pandas would make the first column an index
        ("a\tb\nx\t1\ny\t0\t\n", "\t", 2, 3, 3),  # a trailing tab is a field too
        ("a,b\nx,1\n\ny\n", ",", 2, 4, 1),  # a missing field would read as an empty label
    ],
)
def test_a_row_with_another_number_of_fields_than_the_header_is_refused_with_its_line(
    text, delimiter, row, line, fields
):
    err = refusal(text, delimiter, quoted=delimiter == ",")
    assert (err.row, err.line) == (row, line)
    assert f"has {fields} field(s), but the header (line 1) has 2 (a, b)" in str(err)


def test_a_file_without_header_is_held_to_its_layout():
    err = refusal("x\t1\ty\n", names=("text", "label"))
    assert "has 3 field(s), but the file's layout has 2 (text, label)" in str(err)


def test_an_unquoted_tsv_reads_quotes_as_text():
    records = scan('a\tb\n"an open quote\t1\nnext\t0\n')
    assert records.count == 2 and records.first_fields[0] == '"an open quote'


def test_a_quoted_tsv_refuses_a_quote_that_takes_in_the_next_lines():
    text = "".join(['"opens\t1\tid0\n', *(f"row {i}\t0\tid{i}\n" for i in range(1, 5)), 'closes"\t1\tid5\n'])
    assert "runs on to line 6, taking 5 more line(s) into one row" in str(refusal(text, quoted=True, names="abc"))
    err = refusal('"never closed\t1\tid0\nrow\t0\tid1\n', quoted=True, names="abc")
    assert (err.row, err.line) == (1, 1) and "never closed" in str(err)


def test_a_csv_follows_rfc_4180():
    records = scan('a,b\n"two\nlines",1\n"say ""hi""",0\n', ",", quoted=True)
    assert records.count == 2 and records.multiline == [(2, 3)]  # allowed, and reported by the loader
    assert records.first_fields == ["two\nlines", 'say "hi"']
    err = refusal('a,b\n"say" she said,1\n', ",", quoted=True)
    assert (err.row, err.line) == (1, 2) and "text after a closing quote" in str(err)
    err = refusal('a,b\n"stray,1\nnext,0\nend" here,1\n', ",", quoted=True)
    assert "runs on to line 4, where text follows the quote that closes it" in str(err)


def test_the_first_record_not_read_as_a_row_is_found():
    records = scan("a,b\n1,x\n2.50,y\nthree,z\n", ",", quoted=True)
    assert first_mismatch(records, [1, 2.5, "three"]) == 3  # numbers as the reader typed them
    assert first_mismatch(records, [1, "three"]) == 1
    assert first_mismatch(records, [1, 2.5]) == 2
    assert first_mismatch(records, [1, 2.5, "three", "four"]) == 3


def test_json_lines_name_the_first_line_that_is_not_one_object():
    assert json_lines_problem(['{"a": 1}\n', "\n", '{"a": "x\u2028y"}\n']) is None
    assert json_lines_problem(['{"a": 1}\n', '{"a": 2} {"a": 3}\n']) == (2, "column 10: Extra data")
    assert json_lines_problem(['{"a": 1}\n', "[1]\n"]) == (2, "not a JSON object")


def test_the_loader_refuses_a_shifted_tsv_row_naming_the_file_and_line(tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(5)) + "a\tb\t1\n")
    with pytest.raises(FtlitError, match=r"'.*rows\.tsv' as tsv: row 6 \(line 7\) has 3 field\(s\)"):
        load_local_file(str(path))


def test_the_loader_counts_rows_against_json_lines(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"t": "a"}\n{"t": "b"} {"t": "c"}\n')
    message = "its 2 non-blank lines were read as 3 rows; line 2 is not one JSON object (column 12: Extra data)"
    with pytest.raises(FtlitError, match=re.escape(message)):
        load_local_file(str(path))


def test_quoted_tsv_fields_are_unquoted_and_a_multiline_csv_text_is_announced(tmp_path, caplog):
    path = tmp_path / "quoted.tsv"
    path.write_text('"say ""hi"""\t1\tid0\nplain\t0\tid1\n')
    rows = load_local_file(str(path), TsvLayout(names=("text", "labels", "id"), quoted=True, all_text=True))
    assert rows["text"][:] == ['say "hi"', "plain"]
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"two\nlines",1\none,0\n')
    assert len(load_local_file(str(path))) == 2
    assert "1 row(s) hold a quoted text over several lines (first: lines 2-3)" in caplog.text
