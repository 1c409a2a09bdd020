"""Every kind of bad input stops `ftlit fit` before training: exit code 2, one message naming the file, the row or
field and the fix, and nothing written."""

import re
import shutil
from pathlib import Path

import pytest

from conftest import sentiment_rows, squad_rows, write_jsonl
from ftlit.cli import main
from ftlit.errors import FtlitError


def classification_fit(model: str, train: str, dev: str, root, *extra: str) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
        "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.max_length", "32",
        "--data.train_file", train, "--data.validation_file", dev, "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root), "--output_dir", str(root / "out"), *extra,
    ]  # fmt: skip


def qa_fit(model: str, train: str, root, *extra: str) -> list[str]:
    return [
        "fit", "--model", "ftlit.QuestionAnsweringModule", "--model.model_name_or_path", model,
        "--data", "ftlit.SquadDataModule", "--data.dataset", "null", "--data.max_length", "64",
        "--data.doc_stride", "16", "--data.max_query_length", "16", "--data.train_file", train,
        "--data.validation_file", train, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
        "--output_dir", str(root / "out"), *extra,
    ]  # fmt: skip


def write(tmp_path, name: str, rows: list[dict] | str) -> str:
    path = tmp_path / name
    if isinstance(rows, str):
        path.write_text(rows)
        return str(path)
    return str(write_jsonl(path, rows))


def sentiment(n: int = 40, **changes) -> list[dict]:
    """Generated rows with some replaced: ``changes`` maps a row number (1-based, as messages count) to fields."""
    rows = sentiment_rows(n, seed=4)
    for number, fields in changes.items():
        rows[int(number.removeprefix("row")) - 1].update(fields)
    return rows


def squad(**changes) -> list[dict]:
    rows = squad_rows(20, seed=4)
    for number, fields in changes.items():
        rows[int(number.removeprefix("row")) - 1].update(fields)
    return rows


CASES = {
    "unknown format": lambda p: ("classification", write(p, "rows.xlsx", "x"), None, [],
                                 r"Unknown file format for '.*rows\.xlsx': use one of .csv"),
    "malformed JSON lines": lambda p: ("classification", write(p, "rows.jsonl", '{"text": "a", "label": "pos"}\n{"t'),
                                       None, [], r"'.*rows\.jsonl' as jsonl: malformed JSON at line 2, column 2"),
    "empty file": lambda p: ("classification", write(p, "rows.jsonl", "\n"), None, [],
                             r"Data file '.*rows\.jsonl' has no rows"),
    "text column missing": lambda p: ("classification", write(p, "rows.jsonl", sentiment()), None,
                                      ["--data.text_fields", "[review]"],
                                      r"Column\(s\) \['review'\] not found in '.*rows\.jsonl'\. It has: \['text', "
                                      r"'label'\]"),
    "label outside the task's labels": lambda p: ("classification",
                                                  write(p, "rows.jsonl", sentiment(row7={"label": 5})), None,
                                                  ["--data.task", "sst2", "--data.text_fields", "[text]"],
                                                  r"'.*rows\.jsonl': 1 label\(s\) in column 'label' are not valid "
                                                  r"\(row 7: 5\)"),
    "dev label never seen in train": lambda p: ("classification", write(p, "rows.jsonl", sentiment()),
                                                write(p, "dev.jsonl", sentiment(row3={"label": "neutral"})), [],
                                                r"'.*dev\.jsonl': 1 label\(s\) in column 'label' are not valid \(row 3:"
                                                r" 'neutral'\)\. Expected a label of the training data"),
    "empty text": lambda p: ("classification", write(p, "rows.jsonl", sentiment(row2={"text": " "})), None,
                             ["--data.empty_text", "error"],
                             r"'.*rows\.jsonl': empty or missing text in 'text' in row 2\."),
    "answer not at its answer_start": lambda p: ("qa", write(p, "squad.jsonl", squad(
                                                     row5={"answers": {"text": ["zebra"], "answer_start": [0]}})),
                                                 None, [], r"'.*squad\.jsonl': 1 of 20 questions \(5\.00%\) have an "
                                                 r"answer that is not at its answer_start.*first ids: \['q4-4'\]"),
    "empty question": lambda p: ("qa", write(p, "squad.jsonl", squad(row4={"question": ""})), None,
                                 ["--data.empty_text", "error"],
                                 r"'.*squad\.jsonl': empty or missing text in 'question' in row 4\."),
    "duplicate ids": lambda p: ("qa", write(p, "squad.jsonl", squad(row9={"id": "q4-2"})), None, [],
                                r"'.*squad\.jsonl': 1 question id\(s\) occur more than once \(first: \['q4-2'\]\)"),
    "doc_stride too long": lambda p: ("qa", write(p, "squad.jsonl", squad()), None, ["--data.doc_stride", "60"],
                                      r"doc_stride 60 must be between 0 and"),
    "max_length above the model's": lambda p: ("classification", write(p, "rows.jsonl", sentiment()), None,
                                               ["--data.max_length", "2048"],
                                               r"--data.max_length 2048 is above the model's limit of 512"),
    "unknown LoRA target": lambda p: ("classification", write(p, "rows.jsonl", sentiment()), None,
                                      ["--model.peft.target_modules", "[q_proj]"],
                                      r"LoRA target module\(s\) \['q_proj'\] do not exist in BertForSequence"),
    "unknown task": lambda p: ("classification", write(p, "rows.jsonl", sentiment()), None,
                               ["--data.task", "sentiment"], r"Unknown task 'sentiment'\. Known tasks: cola, sst2"),
    "a number as text": lambda p: ("classification", write(p, "rows.jsonl", sentiment(row6={"text": 12345})), None,
                                   [], r"'.*rows\.jsonl': column 'text' must hold text, but 1 of 40 rows hold int "
                                   r"\(row 6: 12345\)\. Quote numbers"),
    "a list as text": lambda p: ("classification", write(p, "rows.jsonl", [{**row, "text": row["text"].split()}
                                                                          for row in sentiment()]), None, [],
                                 r"column 'text' must hold text, but 40 of 40 rows hold list \(rows 1, 2, 3, 4, 5 "
                                 r"and 35 more: .*as two columns \(--data.text_fields '\[a, b\]'\)"),
    "numbers and names mixed as labels": lambda p: ("classification",
                                                    write(p, "rows.jsonl", sentiment(row12={"label": 1})), None, [],
                                                    r"'.*rows\.jsonl': column 'label' mixes numbers and names as "
                                                    r"labels \(1 numbers, 39 names; the numbers are in row 12: 1\)"),
    "QA: a question without answers": lambda p: ("qa", write(p, "squad.jsonl", squad(row3={"answers": None})),
                                                 None, [], r"'.*squad\.jsonl': 1 question\(s\) have no well-formed "
                                                 r"'answers' \(row 3, ids \['q4-2'\]; first: answers is NoneType None, "
                                                 r"not an object\)"),
    "QA: a number as question": lambda p: ("qa", write(p, "squad.jsonl", squad(row2={"question": 7})), None, [],
                                           r"column 'question' must hold text, but 1 of 20 rows hold int \(row 2"),
    "QA: unanswerable questions under v1.1 rules": lambda p: ("qa", write(p, "squad.jsonl", squad(
                                                                  row8={"answers": {"text": [], "answer_start": []}})),
                                                              None, ["--data.version_2_with_negative", "false"],
                                                              r"1 of 20 questions of '.*squad\.jsonl' have no answer "
                                                              r"\(first ids: \['q4-7'\]\), but --data.version_2_with_"
                                                              r"negative is false"),
    "a TSV row with a field too many": lambda p: ("classification", write(p, "rows.tsv", "text\tlabel\n" + "".join(
                                                      f"{r['text']}\t{r['label']}\n" for r in sentiment(row7={
                                                          "text": "one\ttab too many"}))), None, [],
                                                  r"'.*rows\.tsv' as tsv: row 7 \(line 8\) has 3 field\(s\), but the "
                                                  r"header \(line 1\) has 2 \(text, label\)"),
    "a quote that takes in the next lines of a TSV": lambda p: ("classification", write(p, "goemotions.tsv", "".join(
                                                                    '"' * (i == 3) + f"text {i}\t{i % 28}\tid{i}\n"
                                                                    for i in range(30))), None,
                                                                ["--data.task", "goemotions"],
                                                                r"row 4 \(line 4\) opens a quoted text .* never "
                                                                r"closed"),
    "one class in training": lambda p: ("classification", write(p, "rows.jsonl", [
                                            {**row, "label": "pos"} for row in sentiment()]), None, [],
                                        r"'.*rows\.jsonl': every label of the training data is 'pos': there is "
                                        r"nothing to learn"),
    "one regression value": lambda p: ("classification", write(p, "rows.jsonl", [
                                           {**row, "label": 3} for row in sentiment()]), None,
                                       ["--data.problem_type", "regression"],
                                       r"every target of the training data is 3\.0: there is nothing to learn"),
    "a regression target the loss cannot hold": lambda p: ("classification", write(p, "rows.jsonl", [
                                                               {**row, "label": 1e30 if i == 4 else i}
                                                               for i, row in enumerate(sentiment())]), None,
                                                           ["--data.problem_type", "regression"],
                                                           r"1 label\(s\) in column 'label' are not valid \(row 5: "
                                                           r"1e\+30\)\. Expected a target within ±3\.3e\+18: the "
                                                           r"squared error .* overflows float32"),
    "QA: an answer_start given as a string": lambda p: ("qa", write(p, "squad.jsonl", squad(
                                                            row6={"answers": {"text": ["x"], "answer_start": ["12"]}})),
                                                        None, [], r"1 question\(s\) have no well-formed 'answers' "
                                                        r"\(row 6, ids \['q4-5'\]; first: answers\.answer_start holds "
                                                        r"str '12', not an integer offset \(write it as a number"),
    "QA: an empty answer text": lambda p: ("qa", write(p, "squad.jsonl", squad(
                                               row2={"answers": {"text": [" "], "answer_start": [0]}})), None, [],
                                           r"'.*squad\.jsonl': 1 question\(s\) have an empty answer text \(row 2, "
                                           r"ids \['q4-1'\]\)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_before_training_with_one_clear_message(case, tiny_bert, tmp_path, capsys):
    kind, train, dev, extra, message = CASES[case](tmp_path)
    if kind == "classification":
        args = classification_fit(tiny_bert, train, dev or train, tmp_path, *extra)
    else:
        args = qa_fit(tiny_bert, train, tmp_path, *extra)
    with pytest.raises(SystemExit) as stop:
        main([*args, "--trainer.enable_progress_bar", "false"])
    assert stop.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("ftlit: error: ")
    assert re.search(message, last_line), last_line
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".jsonl", ".xlsx", ".tsv")]
    assert written == []  # no checkpoint, export, results or logs
    assert not (tmp_path / "lightning_logs").exists() and not (tmp_path / "out").exists()  # not even empty folders


def test_debug_shows_the_traceback_instead(tiny_bert, tmp_path):
    train = write(tmp_path, "rows.jsonl", sentiment(row2={"text": ""}))
    args = classification_fit(tiny_bert, train, train, tmp_path, "--data.empty_text", "error", "--debug")
    with pytest.raises(FtlitError, match=r"empty or missing text in 'text' in row 2"):
        main(args)


def test_a_model_folder_without_its_tokenizer_is_refused_naming_the_files(tiny_bert, tmp_path, capsys):
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(tiny_bert) / name, weights_only / name)
    train = write(tmp_path, "rows.jsonl", sentiment())
    with pytest.raises(SystemExit) as stop:
        main(classification_fit(str(weights_only), train, train, tmp_path))
    assert stop.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(
        rf"ftlit: error: The tokenizer of '{weights_only}' has \d+ tokens, but the model embeds 30522: "
        r"its tokenizer files are missing or wrong \(the folder holds none of tokenizer\.json",
        last_line,
    )


def test_a_tokenizer_that_knows_almost_none_of_the_text_is_refused(tiny_bert, tmp_path, capsys):
    rows = [{"text": "ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾ" * (i % 3 + 1), "label": "pos" if i % 2 else "neg"} for i in range(40)]  # runes
    train = write(tmp_path, "runes.jsonl", rows)
    with pytest.raises(SystemExit) as stop:
        main(classification_fit(tiny_bert, train, train, tmp_path))
    assert stop.value.code == 2
    assert re.search(
        r"100% of the training text's tokens are the unknown token '\[UNK\]': the tokenizer of '.*' does "
        r"not fit this text",
        capsys.readouterr().err.strip().splitlines()[-1],
    )


def test_a_v1_file_with_a_question_lacking_answers_announces_the_switch_to_v2_rules(tiny_bert, tmp_path, caplog):
    from ftlit.tasks.question_answering.data import SquadDataModule

    path = write(tmp_path, "squad.jsonl", squad(row8={"answers": {"text": [], "answer_start": []}}))
    dm = SquadDataModule(tiny_bert, dataset=None, validation_file=path, max_length=64, doc_stride=16,
                         max_query_length=16)  # fmt: skip
    dm.setup("validate")
    assert dm.version_2
    assert "1 of 20 questions of" in caplog.text and "have no answer (first ids: ['q4-7']): SQuAD v2.0 rules apply" \
        in caplog.text  # fmt: skip
