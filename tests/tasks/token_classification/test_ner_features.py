"""Words → features: subword alignment, windows over long sentences, document context, and which window each
word is read from."""

import pytest

from ftlit.errors import FtlitError
from ftlit.tasks.token_classification.features import (
    IGNORED,
    encode_sentences,
    first_subwords,
    owning_windows,
    split_words,
    window_spans,
)

LABELS = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}


def encode(tokenizer, sentences, tags=None, max_length=32, stride=8, **kwargs):
    examples = {"tokens": sentences, **({"ner_tags": tags} if tags else {}), **kwargs.pop("columns", {})}
    return encode_sentences(examples, tokenizer, max_length, stride, LABELS if tags else None, **kwargs)


def test_the_first_subword_carries_the_tag_and_the_others_are_ignored(tokenizer):
    # "unbelievably" is 5 subwords: un ##bel ##ie ##va ##bly
    features = encode(tokenizer, [["Anna", "unbelievably", "won"]], [["B-PER", "O", "O"]])
    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    assert tokens == ["[CLS]", "anna", "un", "##bel", "##ie", "##va", "##bly", "won", "[SEP]"]
    assert features["labels"][0] == [IGNORED, 1, 0, IGNORED, IGNORED, IGNORED, IGNORED, 0, IGNORED]
    assert features["owned_words"][0] == [0, 1, 2] and features["owned_positions"][0] == [1, 2, 7]


def test_label_all_subwords_gives_later_subwords_the_inside_tag(tokenizer):
    # "walrus" → wal ##rus; "lambs" → lamb ##s
    features = encode(tokenizer, [["walrus", "lambs"]], [["B-LOC", "O"]], label_all_subwords=True)
    assert features["labels"][0] == [IGNORED, 3, 4, 0, 0, IGNORED]


def test_a_word_the_tokenizer_drops_is_read_as_the_unknown_token(tokenizer):
    features = encode(tokenizer, [["Paris", "\u200b", "now"]], [["B-LOC", "O", "O"]])
    assert tokenizer.convert_ids_to_tokens(features["input_ids"][0]) == ["[CLS]", "paris", "[UNK]", "now", "[SEP]"]
    assert features["owned_words"][0] == [0, 1, 2]


def test_a_sentence_three_windows_long_gives_every_word_exactly_one_reading(tokenizer):
    words = [f"w{i}" for i in range(60)]  # "w12" → w ##12: 2 tokens a word, 120 tokens, max_length 48
    features = encode(tokenizer, [words], [["O"] * 60], max_length=48, stride=10)
    assert len(features["input_ids"]) >= 3
    assert all(len(ids) <= 48 for ids in features["input_ids"])
    owned = sorted(w for words_here in features["owned_words"] for w in words_here)
    assert owned == list(range(60))  # each word once
    labelled = sum(label != IGNORED for labels in features["labels"] for label in labels)
    assert labelled >= 60  # in training every window teaches the words it holds (overlaps teach twice)


def test_an_entity_across_a_window_boundary_is_read_whole(tokenizer):
    words = ["x"] * 40
    words[20:22] = ["Anna", "Smith"]
    tags = ["O"] * 40
    tags[20:22] = ["B-PER", "I-PER"]
    features = encode(tokenizer, [words], [tags], max_length=24, stride=6)
    assert len(features["input_ids"]) > 1
    for word in (20, 21):  # each read from exactly one window, where it is labelled with its tag
        owners = [f for f, owned in enumerate(features["owned_words"]) if word in owned]
        assert len(owners) == 1
        position = features["owned_positions"][owners[0]][features["owned_words"][owners[0]].index(word)]
        assert features["labels"][owners[0]][position] == LABELS[tags[word]]


def test_document_context_fills_the_window_and_carries_no_labels(tokenizer):
    columns = {"context_before": [["the", "day", "before"]], "context_after": [["and", "after", "it", "rained"]]}
    features = encode(tokenizer, [["Anna", "won"]], [["B-PER", "O"]], max_length=10, columns=columns)
    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    assert tokens == ["[CLS]", "the", "day", "before", "anna", "won", "and", "after", "it", "[SEP]"]  # 3 and 3
    assert features["labels"][0] == [IGNORED, IGNORED, IGNORED, IGNORED, 1, 0, IGNORED, IGNORED, IGNORED, IGNORED]
    assert features["owned_positions"][0] == [4, 5]


def test_predict_features_have_no_labels(tokenizer):
    features = encode(tokenizer, [["Anna", "won"]])
    assert "labels" not in features and features["owned_words"] == [[0, 1]]


@pytest.mark.parametrize(
    ("num_tokens", "labelled", "room", "stride", "expected"),
    [
        (5, (0, 5), 8, 2, [(0, 5)]),
        (20, (8, 12), 8, 2, [(6, 14)]),  # context split evenly
        (20, (1, 5), 8, 2, [(0, 8)]),  # little before: more after
        (20, (16, 19), 8, 2, [(12, 20)]),  # little after: more before
        (20, (0, 20), 8, 2, [(0, 8), (6, 14), (12, 20)]),
        (21, (0, 21), 8, 2, [(0, 8), (6, 14), (12, 20), (18, 21)]),
    ],
)
def test_window_spans(num_tokens, labelled, room, stride, expected):
    assert window_spans(num_tokens, labelled, room, stride) == expected


def test_each_word_is_read_where_it_has_the_most_context():
    spans = [(0, 8), (6, 14)]
    # token 6: 6 before / 1 after in window 0, 0 before in window 1 → window 0; token 7: 0 after vs 1 before → 1
    assert owning_windows([0, 6, 7, 13], spans) == [(0, 0), (0, 6), (1, 1), (1, 7)]


@pytest.mark.parametrize(("num_tokens", "room", "stride"), [(21, 8, 2), (300, 14, 0), (300, 14, 13), (2000, 30, 8)])
def test_a_long_sentence_finds_its_windows_by_bisection_as_a_search_of_all_windows_would(num_tokens, room, stride):
    # the first tokens of words of one, two and three subwords, a word without tokens (-1), and one beyond the end
    tokens = [-1, *range(0, num_tokens, 2), *range(1, num_tokens, 3), num_tokens]
    spans = window_spans(num_tokens, (0, num_tokens), room, stride)
    every_window = []
    for token in tokens:
        holding = [(min(token - start, end - 1 - token), -window) for window, (start, end) in enumerate(spans)
                   if start <= token < end]  # fmt: skip
        window = -max(holding)[1] if holding else -1
        every_window.append((window, token - spans[window][0]) if holding else (-1, -1))
    assert owning_windows(tokens, spans) == every_window


def test_first_subwords():
    assert first_subwords([0, 0, 1, 2, 2, 2], 3) == [0, 2, 3]
    assert first_subwords([0, 2], 3) == [0, -1, 1]


def test_text_splits_into_words_with_their_marks_and_punctuation_alone():
    text = "हिन्दी café cafe\u0301 Ber\u200blin, Anna-Maria."
    words, spans = split_words(text)
    assert words == ["हिन्दी", "café", "cafe\u0301", "Ber\u200blin", ",", "Anna", "-", "Maria", "."]
    assert [text[a:b] for a, b in spans] == words


def test_window_spans_refuse_a_stride_that_cannot_advance():
    with pytest.raises(FtlitError, match="doc_stride 14 must be between 0 and 13"):
        window_spans(300, (0, 300), room=14, stride=14)
