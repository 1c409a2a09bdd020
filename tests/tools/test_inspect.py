"""ftlit inspect: every number it prints, on fixtures whose lengths and labels are known; broken data exits 1."""

import json
import shutil

import matplotlib.image
import numpy as np
import pytest
from datasets import Dataset

from ftlit.cli import main as ftlit
from ftlit.tasks.classification import ClassificationDataModule
from ftlit.tasks.question_answering.features import answers_outside_windows
from ftlit.tools.inspection import token_problems
from tests.conftest import write_jsonl

# one WordPiece token each
WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen".split()


def text_of(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def inspect(model: str, capsys, *options: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        ftlit(["inspect", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
               "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]",
               "--data.max_length", "16", *options])  # fmt: skip
        raise SystemExit(0)  # a clean inspection returns normally
    return stopped.value.code, capsys.readouterr().out


@pytest.fixture
def documents(tmp_path):
    # untruncated lengths (words + CLS + SEP): train 5, 7, 10, 22, 32; dev 12, 16
    train = [{"text": text_of(n), "label": label} for n, label in [(3, "a"), (5, "b"), (8, "a"), (20, "a"), (30, "b")]]
    dev = [{"text": text_of(n), "label": label} for n, label in [(10, "a"), (14, "b")]]
    return {"--data.train_file": str(write_jsonl(tmp_path / "train.jsonl", train)),
            "--data.validation_file": str(write_jsonl(tmp_path / "dev.jsonl", dev))}  # fmt: skip


def test_counts_lengths_truncation_padding_and_labels_are_printed(tiny_bert, documents, capsys):
    code, out = inspect(tiny_bert, capsys, *[x for item in documents.items() for x in item])
    assert code == 0
    lines = out.splitlines()
    header = lines.index("| split | examples | features | features/example | p50 | p90 | p95 | p99 | max "
                         "| truncated@16 | padded@16 |")  # fmt: skip
    assert lines[header + 2] == "| train | 5 | 5 | 1.00 | 10 | 32 | 32 | 32 | 32 | 2 (40.0%) | 3 (60.0%) |"
    assert lines[header + 3] == "| validation | 2 | 2 | 1.00 | 12 | 16 | 16 | 16 | 16 | 0 (0.0%) | 1 (50.0%) |"
    assert "labels train: a 3 (60.0%), b 2 (40.0%)" in lines
    assert "labels validation: a 1 (50.0%), b 1 (50.0%)" in lines
    assert any(line.startswith("ok: CLS first and SEP last") for line in lines)


def test_windowed_documents_show_their_windows_per_example(tiny_bert, documents, capsys):
    options = [x for item in documents.items() for x in item] + ["--data.long_text", "window", "--data.doc_stride", "4"]
    code, out = inspect(tiny_bert, capsys, *options)
    # 14 text tokens per window, advancing 10: 20 words → 2 windows, 30 → 3, the rest 1
    assert code == 0
    assert "| train | 5 | 8 | 1.60 | 10 | 32 | 32 | 32 | 32 | 2 (40.0%) | 3 (60.0%) |" in out


def test_multi_label_data_shows_labels_per_text_and_the_labels_that_go_together(tiny_bert, tmp_path, capsys):
    sets = [["joy", "love"], ["joy", "love"], ["anger"], ["joy"], ["anger", "joy", "love"]]
    train = [{"text": text_of(3), "labels": labels} for labels in sets]
    dev = [{"text": text_of(3), "labels": ["joy"]}]
    code, out = inspect(tiny_bert, capsys, "--data.label_field", "labels",
                        "--data.train_file", str(write_jsonl(tmp_path / "train.jsonl", train)),
                        "--data.validation_file", str(write_jsonl(tmp_path / "dev.jsonl", dev)))  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert "labels train: anger 2 (22.2%), joy 4 (44.4%), love 3 (33.3%)" in lines  # shares of all 9 label uses
    assert "train: labels per text: 1: 2, 2: 2, 3: 1" in lines
    assert "train: most frequent label pairs: joy+love 3, anger+joy 1, anger+love 1" in lines


def test_a_model_whose_pad_id_is_not_the_tokenizers_fails_the_inspection(tiny_bert, documents, capsys, tmp_path):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_bert, broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "pad_token_id": 5}))
    code, out = inspect(str(broken), capsys, *[x for item in documents.items() for x in item])
    assert code == 1
    assert "FAILED the model config's pad_token_id 5 is not the tokenizer's pad id 0 ([PAD])" in out


def test_the_length_histogram_is_a_png(tiny_bert, documents, capsys, tmp_path):
    plot = tmp_path / "plots" / "lengths.png"
    code, _ = inspect(tiny_bert, capsys, *[x for item in documents.items() for x in item], "--plot", str(plot))
    assert code == 0
    image = matplotlib.image.imread(plot)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# ------------------------------------------------------------------------------------------------ QA
def test_answers_no_window_holds_whole_are_found():
    # two windows of example 0 covering characters [0, 50) and [40, 90); example 1's window covers [0, 30)
    offsets = np.full((3, 4, 2), -1)
    offsets[0, 1:3] = [[0, 20], [30, 50]]
    offsets[1, 1:3] = [[40, 60], [70, 90]]
    offsets[2, 1:2] = [[0, 30]]
    answers = [
        {"text": ["x" * 45], "answer_start": [35]},  # 35-80: in neither window of example 0 whole
        {"text": ["y" * 10, "z" * 5], "answer_start": [25, 5]},  # the second gold answer fits
    ]
    assert answers_outside_windows(np.array([0, 0, 1]), offsets, answers) == [0]
    answers[0] = {"text": ["x" * 20], "answer_start": [45]}  # 45-65: inside the second window
    assert answers_outside_windows(np.array([0, 0, 1]), offsets, answers) == []
    assert answers_outside_windows(np.array([0, 0, 1]), offsets, [{"text": [], "answer_start": []}] * 2) == []


def test_qa_inspection_reports_windows_and_fails_on_answers_lost_to_truncation(tiny_bert, tmp_path, capsys):
    long_answer = text_of(40)  # more tokens than a window holds
    rows = [
        {"id": "fits", "question": "which?", "context": f"{text_of(50)} the answer is zebra",
         "answers": {"text": ["zebra"], "answer_start": [len(text_of(50)) + 15]}},
        {"id": "lost", "question": "which?", "context": f"start {long_answer} end",
         "answers": {"text": [long_answer], "answer_start": [6]}},
        {"id": "none", "question": "which?", "context": "nothing here", "answers": {"text": [], "answer_start": []}},
    ]  # fmt: skip
    data = str(write_jsonl(tmp_path / "squad.jsonl", rows))
    with pytest.raises(SystemExit) as stopped:
        ftlit(["inspect", "--model", "ftlit.QuestionAnsweringModule", "--model.model_name_or_path", tiny_bert,
               "--data", "ftlit.SquadDataModule", "--data.dataset", "null", "--data.train_file", data,
               "--data.validation_file", data, "--data.max_length", "32", "--data.doc_stride", "8",
               "--data.max_query_length", "8"])  # fmt: skip
    out = capsys.readouterr().out
    assert stopped.value.code == 1
    # windows hold 32 - 3 special - 2 question tokens = 27 context tokens and advance 27 - 8 = 19:
    # 'fits' (54 context tokens) → 3 windows, 'lost' (42) → 2, 'none' → 1
    # untruncated lengths 59, 47 and 7 tokens; 'lost' loses its answer (1 of the 2 answerable questions)
    for split in ("train", "validation"):
        assert f"| {split} | 3 | 6 | 2.00 | 47 | 59 | 59 | 59 | 59 | 2 (66.7%) | 1 (33.3%) | 1 (50.0%) |" in out
    assert "labels train: answerable 2 (66.7%), unanswerable 1 (33.3%)" in out
    assert "FAILED train: 1 answer(s) lie outside every window" in out


def test_ner_inspection_counts_entities_windows_and_no_lost_words(tiny_bert, tmp_path, capsys):
    # sentences of 2, 4 and 40 one-token words; windows of 16 - 2 special = 14 tokens advancing 14 - 4 = 10:
    # the long sentence needs 4 windows (0-14, 10-24, 20-34, 30-40)
    sentences = [(["paris", "one"], ["B-LOC", "O"]), (["mary", "smith", "two", "three"], ["B-PER", "I-PER", "O", "O"]),
                 ([WORDS[i % len(WORDS)] for i in range(40)], ["O"] * 39 + ["B-ORG"])]  # fmt: skip
    conll = tmp_path / "train.conll"
    conll.write_text("-DOCSTART- O\n\n" + "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s)) for s in sentences))
    with pytest.raises(SystemExit) as stopped:
        ftlit(["inspect", "--model", "ftlit.TokenClassificationModule", "--model.model_name_or_path", tiny_bert,
               "--data", "ftlit.TokenClassificationDataModule", "--data.dataset", "null", "--data.train_file",
               str(conll), "--data.validation_file", str(conll), "--data.max_length", "16",
               "--data.doc_stride", "4"])  # fmt: skip
        raise SystemExit(0)
    out = capsys.readouterr().out
    assert stopped.value.code == 0
    for split in ("train", "validation"):
        assert f"| {split} | 3 | 6 | 2.00 | 6 | 42 | 42 | 42 | 42 | 1 (33.3%) | 2 (66.7%) |" in out
        assert f"labels {split}: LOC 1 (33.3%), PER 1 (33.3%), ORG 1 (33.3%)" in out  # entities
        assert f"{split}: words: 46, lost (read in no window): 0" in out
        assert f"{split}: words outside entities (O): 42 (91.3%)" in out
        assert f"{split}: windows per sentence: max 4, sentences in more than one: 1" in out


class TwoChoices(ClassificationDataModule):
    """Features of two token sequences each (a question with each of two choices), batched as (features, 2,
    positions): the shape hooks that multiple choice overrides."""

    def token_sequences(self, features: Dataset) -> list[list[int]]:
        return [sequence for pair in features["input_ids"] for sequence in pair]

    @property
    def collate(self):
        def pad(rows: list[dict]) -> dict:
            batch = self.tokenizer.pad([{"input_ids": ids} for row in rows for ids in row["input_ids"]],
                                       return_tensors="pt")  # fmt: skip
            return {name: tensor.reshape(len(rows), 2, -1) for name, tensor in batch.items()}

        return pad


def test_features_of_several_sequences_are_checked_through_the_data_modules_hooks(tiny_bert, tokenizer):
    dm = TwoChoices(tiny_bert, text_fields=["text"], max_length=32)
    pairs = [[tokenizer("which one?", choice)["input_ids"] for choice in choices]
             for choices in (["yes", "no, not at all"], ["maybe so", "never"])]  # fmt: skip
    assert token_problems(dm, Dataset.from_dict({"input_ids": pairs})) == []
    without_cls = [[ids[1:] for ids in pair] for pair in pairs]
    assert token_problems(dm, Dataset.from_dict({"input_ids": without_cls})) == [
        f"4 of 4 features do not start with CLS (id {tokenizer.cls_token_id})"
    ]
