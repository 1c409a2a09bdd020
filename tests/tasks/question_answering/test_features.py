"""Window building and answer alignment on crafted cases, with the real (MiniLM = DistilBERT) WordPiece tokenizer."""

import math

import pytest

from ftlit.errors import FtlitError
from ftlit.tasks.question_answering.features import (
    NOT_CONTEXT,
    answer_token_span,
    cap_questions,
    check_window_settings,
    eval_features,
    train_features,
)

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu").split()  # fmt: skip


def long_context(n_words: int) -> str:
    return " ".join(f"{WORDS[i % len(WORDS)]}{i}" for i in range(n_words))


def examples(question: str, context: str, answer: str | None, start: int | None = None, qid: str = "q") -> dict:
    if answer is None:
        answers = {"text": [], "answer_start": []}
    else:
        answers = {"text": [answer], "answer_start": [context.index(answer) if start is None else start]}
    return {"id": [qid], "question": [question], "context": [context], "answers": [answers]}


def build(tokenizer, batch, max_length=64, doc_stride=16, max_query_length=16, train=True):
    make = train_features if train else eval_features
    return make(batch, tokenizer, max_length, doc_stride, max_query_length)


def span_text(tokenizer, batch, features, window):
    """The context text under a train window's start/end positions ('' for CLS)."""
    start, end = features["start_positions"][window], features["end_positions"][window]
    if start == 0:
        return ""
    offsets = build(tokenizer, batch, train=False)["offset_mapping"][window]
    return batch["context"][0][offsets[start][0] : offsets[end][1]]


def test_context_shorter_than_a_window_gives_one_window(tokenizer):
    batch = examples("who?", "Short context here.", "context")
    features = build(tokenizer, batch)
    assert len(features["input_ids"]) == 1
    assert span_text(tokenizer, batch, features, 0) == "context"


@pytest.mark.parametrize("answer", ["alpha0", "zulu25", "uniform20 victor21"])
def test_answers_at_the_very_start_and_end_of_the_context(tokenizer, answer):
    context = long_context(26)
    batch = examples("which word?", context, answer)
    features = build(tokenizer, batch, max_length=128)
    assert len(features["input_ids"]) == 1
    assert span_text(tokenizer, batch, features, 0) == answer


@pytest.mark.parametrize(("max_length", "doc_stride", "words"), [(64, 16, 150), (384, 128, 400)])
def test_long_context_gets_the_exact_number_of_windows_ending_at_its_last_token(
    tokenizer, max_length, doc_stride, words
):
    context = long_context(words)  # more than 2 × max_length tokens
    question = "what?"
    batch = examples(question, context, None)
    features = build(tokenizer, batch, max_length, doc_stride, max_query_length=16, train=False)
    context_tokens = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    room = max_length - len(tokenizer(question, add_special_tokens=False)["input_ids"]) - 3
    expected = 1 + math.ceil((context_tokens - room) / (room - doc_stride))
    assert context_tokens > 2 * max_length
    assert len(features["input_ids"]) == expected
    last_offsets = [o for o in features["offset_mapping"][-1] if o != NOT_CONTEXT]
    assert last_offsets[-1][1] == len(context)
    # consecutive windows overlap by doc_stride tokens
    first, second = ([o for o in offsets if o != NOT_CONTEXT] for offsets in features["offset_mapping"][:2])
    assert first[-doc_stride:] == second[:doc_stride]


def test_answer_straddling_a_window_boundary_is_cls_where_cut_and_exact_where_whole(tokenizer):
    context = long_context(60)
    probe = build(tokenizer, examples("what?", context, None), train=False)["offset_mapping"]
    first_window = [o for o in probe[0] if o != NOT_CONTEXT]
    cut_at = first_window[-1][1]  # last character of window 0: an answer running past it is cut
    start = context.rindex(" ", 0, cut_at) + 1
    end = context.index(" ", cut_at + 2)
    answer = context[start : context.index(" ", end + 1)]
    batch = examples("what?", context, answer, start=start)
    features = build(tokenizer, batch)
    assert (features["start_positions"][0], features["end_positions"][0]) == (0, 0)
    assert span_text(tokenizer, batch, features, 1) == answer


def test_answer_only_in_the_second_window(tokenizer):
    context = long_context(60)
    probe = build(tokenizer, examples("what?", context, None), train=False)["offset_mapping"]
    end_of_first = max(end for _, end in probe[0])
    answer = context[end_of_first + 1 :].split()[1]  # a word wholly past the first window
    batch = examples("what?", context, answer)
    features = build(tokenizer, batch)
    assert features["start_positions"][0] == 0
    assert span_text(tokenizer, batch, features, 1) == answer


@pytest.mark.parametrize(
    ("context", "answer"),
    [
        ("Le  café   au lait — très naïve résumé, à Zürich.", "naïve résumé"),
        ("Prices rose 12.5% in 1990s\u00a0Tokyo   (Japan).", "12.5%"),
        ("Emoji 🙂 then   the answer: 東京 Tower  here", "東京 Tower"),
        ("tab\tseparated\n\nnew  lines answer here", "answer"),
    ],
)
def test_unicode_and_repeated_spaces_keep_character_offsets_exact(tokenizer, context, answer):
    batch = examples("where?", context, answer)
    features = build(tokenizer, batch)
    assert span_text(tokenizer, batch, features, 0) == answer


def test_a_question_longer_than_max_query_length_is_capped(tokenizer):
    question = "   " + " ".join(["why"] * 100)
    capped = cap_questions([question], tokenizer, max_query_length=16)[0]
    assert len(tokenizer(capped, add_special_tokens=False)["input_ids"]) == 16
    assert not capped.startswith(" ")
    batch = examples(question, long_context(20), "charlie2")
    features = build(tokenizer, batch)
    assert len(features["input_ids"]) == 1  # the context still fits next to the capped question
    assert span_text(tokenizer, batch, features, 0) == "charlie2"


def test_unanswerable_questions_point_at_cls_in_every_window(tokenizer):
    features = build(tokenizer, examples("what?", long_context(60), None))
    assert set(features["start_positions"]) == set(features["end_positions"]) == {0}


def test_eval_windows_only_offer_context_offsets(tokenizer):
    batch = examples("what is golf6?", long_context(10), None)
    features = build(tokenizer, batch, train=False)
    offsets, ids = features["offset_mapping"][0], features["input_ids"][0]
    sep = ids.index(tokenizer.sep_token_id)
    assert all(offset == NOT_CONTEXT for offset in offsets[: sep + 1])  # CLS, question, SEP
    assert offsets[-1] == NOT_CONTEXT  # final SEP
    assert all(offset != NOT_CONTEXT for offset in offsets[sep + 1 : -1])
    assert features["example_index"] == [0]


def test_answer_token_span_needs_the_whole_answer_inside_the_window():
    offsets = [NOT_CONTEXT, (0, 5), (6, 11), (12, 17), NOT_CONTEXT]
    assert answer_token_span(offsets, 6, 11) == (2, 2)
    assert answer_token_span(offsets, 0, 17) == (1, 3)
    assert answer_token_span(offsets, 8, 10) == (2, 2)  # inside a token
    assert answer_token_span(offsets, 12, 20) is None  # runs past the window
    assert answer_token_span([NOT_CONTEXT, (30, 35)], 10, 12) is None  # starts before it


@pytest.mark.parametrize(
    ("max_length", "doc_stride", "max_query_length", "message"),
    [
        (384, 318, 64, "doc_stride 318 must be between 0 and 316"),
        (384, 400, 64, "doc_stride 400 must be between 0 and 316"),
        (64, 16, 64, "leaves no room for context"),
    ],
)
def test_impossible_window_settings_are_refused(tokenizer, max_length, doc_stride, max_query_length, message):
    with pytest.raises(FtlitError, match=message):
        check_window_settings(tokenizer, max_length, doc_stride, max_query_length)


def test_reference_window_settings_are_accepted(tokenizer):
    check_window_settings(tokenizer, 384, 128, 64)
    check_window_settings(tokenizer, 384, 316, 64)  # the largest stride that still advances
