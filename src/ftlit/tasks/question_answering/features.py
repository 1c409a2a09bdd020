"""Question + context → overlapping token windows ("features", built by ``ftlit.data.windows``), with answers
aligned to token positions.

Pure functions over plain lists, no Lightning: ``train_features`` and ``eval_features`` are what the data module
maps over its examples in batches.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedTokenizerFast

from ftlit.data.windows import NOT_TEXT, check_stride, token_windows
from ftlit.errors import FtlitError

# Offsets of tokens that are not context (question, special tokens): decoding can never pick them
NOT_CONTEXT = NOT_TEXT


def check_window_settings(
    tokenizer: PreTrainedTokenizerFast, max_length: int, doc_stride: int, max_query_length: int
) -> None:
    """Refuse settings that leave no room for context or make windows stop advancing."""
    room = max_length - max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= 0:
        raise FtlitError(
            f"max_length {max_length} leaves no room for context after a question of up to {max_query_length} "
            "tokens and the special tokens: raise --data.max_length or lower --data.max_query_length."
        )
    check_stride(doc_stride, room, leading="the question")


def cap_questions(questions: list[str], tokenizer: PreTrainedTokenizerFast, max_query_length: int) -> list[str]:
    """Strip leading whitespace and cut each question after its first ``max_query_length`` tokens, so that a
    pathological question cannot push the context out of the window."""
    questions = [q.lstrip() for q in questions]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q[: offsets[max_query_length - 1][1]] if len(offsets) > max_query_length else q
        for q, offsets in zip(questions, encoded["offset_mapping"])
    ]


def _windows(examples: dict[str, list], tokenizer, max_length: int, doc_stride: int, max_query_length: int):
    """(question, context) windows with only the context cut, and each window's context offsets."""
    questions = cap_questions(examples["question"], tokenizer, max_query_length)
    return token_windows(tokenizer, examples["context"], max_length, doc_stride, examples["id"], leading=questions)


def answer_token_span(offsets: list[tuple[int, int]], start_char: int, end_char: int) -> tuple[int, int] | None:
    """Token positions of the answer ``[start_char, end_char)`` in one window, or None when the window does not
    hold the whole answer. ``offsets`` use NOT_CONTEXT for non-context tokens."""
    context = [i for i, offset in enumerate(offsets) if offset != NOT_CONTEXT]
    starts = [offsets[i][0] for i in context]
    ends = [offsets[i][1] for i in context]
    if not context or starts[0] > start_char or ends[-1] < end_char:
        return None
    # last token starting at or before the answer's first character; first token ending at or after its last
    first = context[bisect_right(starts, start_char) - 1]
    last = context[bisect_left(ends, end_char)]
    return first, last


def train_features(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerFast,
    max_length: int,
    doc_stride: int,
    max_query_length: int,
    example_offset: int = 0,
) -> dict[str, list]:
    """Windows with ``start_positions``/``end_positions``; a window without the whole answer, and every
    unanswerable question, points at the CLS token.

    Also returns, for ``truncation_report``, each window's ``example_index`` (``example_offset`` + position in the
    batch) and whether it holds the answer (``answer_in_window``): drop both before batching.
    """
    encoding, offsets = _windows(examples, tokenizer, max_length, doc_stride, max_query_length)
    starts, ends, in_window = [], [], []
    for window, window_offsets in enumerate(offsets):
        answers = examples["answers"][encoding["overflow_to_sample_mapping"][window]]
        span = None
        if answers["answer_start"]:
            start_char = answers["answer_start"][0]
            span = answer_token_span(window_offsets, start_char, start_char + len(answers["text"][0]))
        cls = encoding["input_ids"][window].index(tokenizer.cls_token_id)
        starts.append(span[0] if span else cls)
        ends.append(span[1] if span else cls)
        in_window.append(span is not None)
    features = {name: encoding[name] for name in tokenizer.model_input_names}
    example_index = [example_offset + i for i in encoding["overflow_to_sample_mapping"]]
    return {
        **features,
        "start_positions": starts,
        "end_positions": ends,
        "example_index": example_index,
        "answer_in_window": in_window,
    }


def truncation_report(
    example_index: Sequence[int], answer_in_window: Sequence[bool], answerable: Sequence[bool]
) -> tuple[float, list[int]]:
    """For training windows: the fraction of answerable questions' windows that point at CLS instead of the answer,
    and the questions whose answer no window holds whole (it is longer than a window's context room)."""
    example_index, in_window = np.asarray(example_index, dtype=int), np.asarray(answer_in_window, dtype=bool)
    answerable = np.asarray(answerable, dtype=bool)
    of_answerable = answerable[example_index]
    cls_fraction = float(1 - in_window[of_answerable].mean()) if of_answerable.any() else 0.0
    found = np.zeros(len(answerable), dtype=bool)
    np.logical_or.at(found, example_index, in_window)
    return cls_fraction, np.flatnonzero(answerable & ~found).tolist()


def answers_outside_windows(example_index: np.ndarray, offsets: np.ndarray, answers: Sequence[dict]) -> list[int]:
    """Answerable questions none of whose gold answers any of their windows holds whole: truncation lost them.

    ``example_index`` (W,) and ``offsets`` (W, L, 2) are evaluation windows (-1 offsets outside the context);
    ``answers`` are the questions' ``{"text": [...], "answer_start": [...]}``.
    """
    in_context = offsets[:, :, 0] >= 0
    first = np.where(in_context, offsets[:, :, 0], np.iinfo(np.int64).max).min(axis=1)  # (W,) context span
    last = np.where(in_context, offsets[:, :, 1], -1).max(axis=1)
    windows_of = {}
    for window, example in enumerate(example_index):
        windows_of.setdefault(int(example), []).append(window)
    lost = []
    for example, gold in enumerate(answers):
        spans = [(start, start + len(text)) for text, start in zip(gold["text"], gold["answer_start"])]
        windows = windows_of.get(example, [])
        if spans and not any(first[w] <= start and end <= last[w] for w in windows for start, end in spans):
            lost.append(example)
    return lost


def eval_features(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerFast,
    max_length: int,
    doc_stride: int,
    max_query_length: int,
    example_offset: int = 0,
) -> dict[str, list]:
    """Windows with the index of their example and the character offsets of their context tokens only.

    ``example_offset`` is the index of the batch's first example in the whole split (datasets maps in batches).
    """
    encoding, offsets = _windows(examples, tokenizer, max_length, doc_stride, max_query_length)
    features = {name: encoding[name] for name in tokenizer.model_input_names}
    example_index = [example_offset + i for i in encoding["overflow_to_sample_mapping"]]
    return {**features, "example_index": example_index, "offset_mapping": offsets}
