"""Token windows over long texts (shared by QA and long-document classification), on crafted texts with the real
(MiniLM = DistilBERT) WordPiece tokenizer."""

import pytest

from conftest import write_jsonl
from ftlit.data.windows import NOT_TEXT, check_stride, check_windows_cover_texts, token_windows
from ftlit.errors import FtlitError
from ftlit.tasks.classification.data import ClassificationDataModule

# one token each in the uncased WordPiece vocabulary
WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen".split()


def text_of(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def test_a_long_text_becomes_overlapping_windows_that_cover_it_to_its_end(tokenizer):
    # 30 tokens, 14 per window (16 minus CLS and SEP), advancing 14 - 4 = 10: windows start at 0, 10, 20
    encoding, offsets = token_windows(tokenizer, [text_of(30)], max_length=16, stride=4, names=["doc"])
    windows = encoding["input_ids"]
    assert [len(w) for w in windows] == [16, 16, 12]
    assert encoding["overflow_to_sample_mapping"] == [0, 0, 0]
    assert all(w[0] == tokenizer.cls_token_id and w[-1] == tokenizer.sep_token_id for w in windows)
    for first, second in zip(windows, windows[1:]):
        assert first[-5:-1] == second[1:5]  # consecutive windows share exactly `stride` tokens
    assert offsets[0][0] == NOT_TEXT and offsets[0][-1] == NOT_TEXT  # special tokens
    assert max(end for _, end in offsets[-1]) == len(text_of(30))


def test_a_short_text_is_one_window_and_texts_keep_their_order(tokenizer):
    encoding, _ = token_windows(tokenizer, ["one two", text_of(20)], max_length=16, stride=4, names=["a", "b"])
    assert encoding["overflow_to_sample_mapping"] == [0, 1, 1]
    assert encoding["input_ids"][0] == [tokenizer.cls_token_id, *tokenizer.convert_tokens_to_ids(["one", "two"]),
                                        tokenizer.sep_token_id]  # fmt: skip


def test_leading_text_opens_every_window_whole(tokenizer):
    encoding, offsets = token_windows(tokenizer, [text_of(30)], 16, 2, ["q"], leading=["where is it"])
    for window, window_offsets in zip(encoding["input_ids"], offsets):
        assert tokenizer.decode(window[1:4]) == "where is it"
        assert window_offsets[:5] == [NOT_TEXT] * 5  # CLS, the three question tokens, SEP


@pytest.mark.parametrize("stride", [14, 20, -1])
def test_a_stride_at_which_windows_cannot_advance_is_refused(stride):
    with pytest.raises(FtlitError, match=rf"--data.doc_stride {stride} must be between 0 and 13: .*special tokens\)"):
        check_stride(stride, 14)
    with pytest.raises(FtlitError, match=r"max_length minus the special tokens and the question\)"):
        check_stride(stride, 14, leading="the question")
    check_stride(13, 14)


def test_windows_that_stop_early_name_the_tokenizers_bug():
    with pytest.raises(FtlitError, match=r"1 text\(s\) stop before their end \(first: 'b'.*tokenizers>=0.23.3"):
        check_windows_cover_texts(["short", "long context tail"], [5, 4], ["a", "b"])
    check_windows_cover_texts(["ends with space and dot .  "], [24], ["a"])  # only non-words left over


# ------------------------------------------------------------------------------------------ classification data
def documents(tmp_path, name: str, lengths: list[int]) -> str:
    rows = [{"text": text_of(n), "label": "pos" if i % 2 else "neg"} for i, n in enumerate(lengths)]
    return str(write_jsonl(tmp_path / name, rows))


def test_windowed_documents_train_as_windows_and_evaluate_by_document(tiny_bert, tmp_path):
    dm = ClassificationDataModule(
        tiny_bert, train_file=documents(tmp_path, "train.jsonl", [30, 5, 20]),
        validation_file=documents(tmp_path, "dev.jsonl", [5, 30]), text_fields=["text"], max_length=16,
        long_text="window", doc_stride=4,
    )  # fmt: skip
    dm.setup("fit")
    train, dev = dm.features("train"), dm.features("validation")
    assert dm.label_names == ["neg", "pos"]
    assert train["labels"] == [0, 0, 0, 1, 0, 0]  # windows inherit their document's label: 3 + 1 + 2 windows
    assert "document_index" not in train.column_names  # training sees windows as examples of their own
    assert dm.contract.eval_sets["validation"].document_index.tolist() == [0, 1, 1, 1]  # evaluated per document
    assert dev["labels"] == [0, 1, 1, 1] and dev["feature_index"] == [0, 1, 2, 3]


def test_truncation_keeps_one_feature_per_document(tiny_bert, tmp_path):
    dm = ClassificationDataModule(
        tiny_bert, train_file=documents(tmp_path, "train.jsonl", [30, 5, 20]),
        validation_file=documents(tmp_path, "dev.jsonl", [5, 30]), text_fields=["text"], max_length=16,
    )  # fmt: skip
    dm.setup("fit")
    assert [len(ids) for ids in dm.features("train")["input_ids"]] == [16, 7, 16]
    assert dm.contract.eval_sets["validation"].document_index.tolist() == [0, 1]


def test_impossible_window_settings_are_refused(tiny_bert, tmp_path):
    train = documents(tmp_path, "train.jsonl", [30, 5])
    with pytest.raises(FtlitError, match="long_text window cuts one text into windows; rte has two"):
        ClassificationDataModule(tiny_bert, task="rte", train_file=train, long_text="window")
    dm = ClassificationDataModule(tiny_bert, train_file=train, validation_file=train, text_fields=["text"],
                                  max_length=16, long_text="window", doc_stride=14)  # fmt: skip
    with pytest.raises(FtlitError, match="doc_stride 14 must be between 0 and 13"):
        dm.setup("fit")
