"""Span decoding on hand-made logits whose right answer is known."""

import numpy as np
import pytest

from ftlit.tasks.question_answering.decode import EvalWindows, best_answers, candidate_answers, decode_candidates

CONTEXT = "one two three four five six seven eight"
WORD_OFFSETS = [(0, 3), (4, 7), (8, 13), (14, 18), (19, 23), (24, 27), (28, 33), (34, 39)]
NO = (-1, -1)


def window(context_words: range, question_tokens: int = 2, length: int = 12) -> list:
    """[CLS] question... [SEP] the given context words [SEP] padding."""
    offsets = [NO] * (1 + question_tokens + 1) + [WORD_OFFSETS[w] for w in context_words] + [NO]
    return offsets + [NO] * (length - len(offsets))


def logits(length: int, high: dict[int, float]) -> np.ndarray:
    row = np.zeros(length, dtype=np.float32)
    for position, value in high.items():
        row[position] = value
    return row


def decode(offsets, starts, ends, example_index, contexts, **kwargs):
    windows = EvalWindows(np.array(example_index), np.array(offsets))
    candidates = decode_candidates(np.array(starts), np.array(ends), windows, len(contexts), **kwargs)
    return candidates, windows


def test_best_span_in_a_single_window():
    offsets = [window(range(8))]  # context words at tokens 4..11
    candidates, windows = decode(offsets, [logits(13, {6: 5.0})], [logits(13, {7: 4.0})], [0], [CONTEXT])
    answers, _ = best_answers(candidates, windows, [CONTEXT])
    assert answers[0].text == "three four" and (answers[0].start, answers[0].end) == (8, 18)
    assert answers[0].score == pytest.approx(9.0)


def test_best_span_sitting_in_the_second_window_wins_across_windows():
    offsets = [window(range(0, 5)), window(range(3, 8))]
    starts = [logits(12, {4: 2.0}), logits(12, {6: 6.0})]  # window 1 token 6 = word 5 ("six")
    ends = [logits(12, {5: 2.0}), logits(12, {7: 6.0})]  # window 1 token 7 = word 6 ("seven")
    candidates, windows = decode(offsets, starts, ends, [0, 0], [CONTEXT])
    answers, _ = best_answers(candidates, windows, [CONTEXT])
    assert answers[0].text == "six seven"
    assert candidates.windows[0, 0] == 1


def test_span_reaching_into_the_question_or_special_tokens_is_never_chosen():
    offsets = [window(range(8))]
    starts = logits(13, {1: 50.0, 0: 40.0, 8: 3.0})  # question token 1 and CLS have the top start logits
    ends = logits(13, {2: 50.0, 12: 40.0, 9: 3.0})  # question token 2 and the padding have the top end logits
    candidates, windows = decode(offsets, [starts], [ends], [0], [CONTEXT])
    answers, _ = best_answers(candidates, windows, [CONTEXT])
    assert answers[0].text == "five six"
    for answer in candidate_answers(candidates, windows, [CONTEXT], 0):
        assert CONTEXT[answer.start : answer.end] == answer.text and answer.start >= 0


def test_end_before_start_and_overlong_spans_are_skipped():
    offsets = [window(range(8))]  # context tokens 4..11
    starts = logits(13, {9: 10.0, 4: 3.0})
    ends = logits(13, {5: 10.0, 11: 6.0, 9: -20.0, 10: -20.0})
    candidates, windows = decode(offsets, [starts], [ends], [0], [CONTEXT], max_answer_length=2)
    # (9, 5) scores 20 but ends before it starts; (9, 11) scores 16 but is 3 tokens long
    best = candidate_answers(candidates, windows, [CONTEXT], 0)[0]
    assert best.text == "one two" and best.score == pytest.approx(13.0)
    assert all(a.end >= a.start for a in candidate_answers(candidates, windows, [CONTEXT], 0))


def test_candidates_are_the_n_best_over_all_windows_sorted():
    offsets = [window(range(0, 5)), window(range(3, 8))]
    rng = np.random.default_rng(0)
    starts, ends = rng.normal(size=(2, 12)), rng.normal(size=(2, 12))
    candidates, windows = decode(offsets, starts, ends, [0, 0], [CONTEXT], n_best=5)
    scores = candidates.scores[0]
    assert len(scores) == 5 and list(scores) == sorted(scores, reverse=True)
    # the top score is the best valid pair found by brute force
    brute = max(
        starts[w, i] + ends[w, j]
        for w in range(2) for i in range(12) for j in range(i, min(i + 30, 12))
        if offsets[w][i] != NO and offsets[w][j] != NO
    )  # fmt: skip
    assert scores[0] == pytest.approx(brute, rel=1e-6)


def test_questions_are_decoded_independently():
    offsets = [window(range(8)), window(range(8)), window(range(8))]
    starts = [logits(13, {4: 5}), logits(13, {10: 5}), logits(13, {11: 6})]
    ends = [logits(13, {4: 5}), logits(13, {10: 5}), logits(13, {11: 6})]
    candidates, windows = decode(offsets, starts, ends, [0, 1, 1], [CONTEXT, CONTEXT])
    answers, _ = best_answers(candidates, windows, [CONTEXT, CONTEXT])
    assert [a.text for a in answers] == ["one", "eight"]


def test_v2_null_answer_wins_when_its_score_beats_the_span_by_more_than_the_threshold():
    offsets = [window(range(8))]
    starts, ends = [logits(13, {0: 4.0, 5: 3.0})], [logits(13, {0: 4.0, 5: 3.0})]  # null 8 vs span "two" 6
    candidates, windows = decode(offsets, starts, ends, [0], [CONTEXT])
    answers, null_diffs = best_answers(candidates, windows, [CONTEXT], version_2=True)
    assert answers[0].text == "" and null_diffs[0] == pytest.approx(2.0)
    answers, _ = best_answers(candidates, windows, [CONTEXT], version_2=True, null_score_diff_threshold=2.5)
    assert answers[0].text == "two"
    answers, _ = best_answers(candidates, windows, [CONTEXT], version_2=False)
    assert answers[0].text == "two"  # v1 always answers


def test_v2_null_score_is_the_smallest_over_the_windows():
    offsets = [window(range(0, 5)), window(range(3, 8))]
    starts = [logits(12, {0: 9.0}), logits(12, {0: 1.0})]
    ends = [logits(12, {0: 9.0}), logits(12, {0: 1.0})]
    candidates, _ = decode(offsets, starts, ends, [0, 0], [CONTEXT])
    assert candidates.null_scores[0] == pytest.approx(2.0)


def test_a_question_without_any_valid_span_gets_the_empty_answer():
    offsets = [[NO] * 6]  # a window with no context tokens at all
    candidates, windows = decode(offsets, [logits(6, {})], [logits(6, {})], [0], [""])
    answers, _ = best_answers(candidates, windows, [""])
    assert answers[0].text == "" and answers[0].start == -1
