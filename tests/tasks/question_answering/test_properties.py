"""Property-based checks of window building and span decoding on random contexts, answers and window settings."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftlit.tasks.question_answering.decode import EvalWindows, candidate_answers, decode_candidates
from ftlit.tasks.question_answering.features import eval_features, train_features

WORDS = ["river", "Zürich", "naïve", "1990s", "co-op", "U.S.", "東京", "rock'n'roll", "x", "alpha", "(b)", "42%"]
SPACES = [" ", "  ", "\t", "\n", " \u00a0 "]


@st.composite
def examples(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=120))
    gaps = draw(st.lists(st.sampled_from(SPACES), min_size=len(words), max_size=len(words)))
    context = "".join(word + gap for word, gap in zip(words, gaps)).rstrip()
    starts = [sum(len(w) + len(g) for w, g in zip(words[:i], gaps[:i])) for i in range(len(words))]
    first = draw(st.integers(0, len(words) - 1))
    last = draw(st.integers(first, min(first + 4, len(words) - 1)))
    answer = context[starts[first] : starts[last] + len(words[last])]
    question = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=30)))
    max_length = draw(st.integers(48, 128))
    max_query_length = draw(st.integers(4, 16))
    room = max_length - max_query_length - 3
    stride = draw(st.integers(0, room - 1))
    batch = {"id": ["q"], "question": [question], "context": [context],
             "answers": [{"text": [answer], "answer_start": [starts[first]]}]}  # fmt: skip
    return batch, max_length, stride, max_query_length


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(examples())
def test_every_answer_that_fits_a_window_is_recovered_exactly(tokenizer, example):
    batch, max_length, stride, max_query_length = example
    train = train_features(batch, tokenizer, max_length, stride, max_query_length)
    evaluation = eval_features(batch, tokenizer, max_length, stride, max_query_length)
    context, answer = batch["context"][0], batch["answers"][0]["text"][0]
    answer_tokens = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
    labelled = [w for w, start in enumerate(train["start_positions"]) if start != 0]
    # Windows advance by (room - stride) tokens, so any span of at most stride + 1 tokens lies whole in one of them
    if answer_tokens <= stride + 1:
        assert labelled
    for window in labelled:
        offsets = evaluation["offset_mapping"][window]
        start, end = train["start_positions"][window], train["end_positions"][window]
        assert context[offsets[start][0] : offsets[end][1]] == answer
    # the windows together cover the context to its end
    assert max(end for offsets in evaluation["offset_mapping"] for _, end in offsets) == len(context)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(examples(), st.integers(0, 2**32 - 1))
def test_decoding_never_returns_text_outside_the_context(tokenizer, example, seed):
    batch, max_length, stride, max_query_length = example
    features = eval_features(batch, tokenizer, max_length, stride, max_query_length)
    windows = EvalWindows.from_lists(features["example_index"], features["offset_mapping"])
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, *windows.offsets.shape[:2])) * 5
    # n_best as large as a window: every (start, end) pair is considered. (With fewer, the best starts may all lie
    # after the best ends, and a question rightly gets no candidate.)
    n_best = windows.offsets.shape[1]
    candidates = decode_candidates(logits[0], logits[1], windows, 1, n_best=n_best, max_answer_length=8)
    context = batch["context"][0]
    answers = candidate_answers(candidates, windows, [context], 0)
    assert answers  # every window has context tokens, so there is always a valid one-token span
    for answer in answers:
        assert 0 <= answer.start < answer.end <= len(context)
        assert context[answer.start : answer.end] == answer.text
