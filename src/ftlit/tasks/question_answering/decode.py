"""Start/end logits of every window → the best answer spans of every question, as array operations.

For each window: the ``n_best`` best start and end tokens among its context tokens, their ``n_best × n_best``
pairs scored by start + end logit, kept when ``start ≤ end < start + max_answer_length``. For each question: the
``n_best`` best candidates over all its windows. With SQuAD v2.0 the null answer (CLS start + CLS end, the smallest
over the question's windows) competes through ``null_score_diff_threshold``.

Non-context tokens are masked before the top-k (the Hugging Face example picks the top-k over all tokens and
then discards the invalid ones, so it can be left with fewer candidates): the candidates are a superset of
theirs, and no answer can contain question text.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class EvalWindows:
    """What decoding needs of the evaluation windows, as arrays (windows padded to a common length L)."""

    example_index: np.ndarray  # (W,) example of each window, non-decreasing
    offsets: np.ndarray  # (W, L, 2) character offsets of context tokens, -1 elsewhere (and for padding)

    @property
    def context_mask(self) -> np.ndarray:
        return self.offsets[:, :, 0] >= 0

    @classmethod
    def from_flat(cls, example_index, pairs: np.ndarray, lengths: np.ndarray) -> "EvalWindows":
        """From all windows' (start, end) offset pairs laid end to end, and the number of tokens of each window."""
        offsets = np.full((len(lengths), int(lengths.max(initial=0)), 2), -1, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        positions = np.arange(len(pairs)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        offsets[rows, positions] = pairs
        return cls(np.asarray(example_index), offsets)

    @classmethod
    def from_lists(cls, example_index: list[int], offsets: list[list[tuple[int, int]]]) -> "EvalWindows":
        pairs = np.array([pair for window in offsets for pair in window], dtype=np.int64).reshape(-1, 2)
        return cls.from_flat(example_index, pairs, np.array([len(window) for window in offsets]))


@dataclass
class Candidates:
    """The ``n_best`` best spans of each of E questions, best first; padded slots have score -inf."""

    scores: np.ndarray  # (E, K) start + end logit
    windows: np.ndarray  # (E, K) window index
    start_tokens: np.ndarray  # (E, K)
    end_tokens: np.ndarray  # (E, K)
    null_scores: np.ndarray  # (E,) smallest CLS start + end over the question's windows


def _window_candidates(
    start_logits: np.ndarray, end_logits: np.ndarray, mask: np.ndarray, n_best: int, max_answer_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window, the n_best best valid (start, end) pairs: scores (W, K) and token positions (W, K)."""
    k = min(n_best, start_logits.shape[1])
    start = np.where(mask, start_logits, -np.inf)
    end = np.where(mask, end_logits, -np.inf)
    start_idx = np.argpartition(-start, k - 1, axis=1)[:, :k]
    end_idx = np.argpartition(-end, k - 1, axis=1)[:, :k]
    start_top = np.take_along_axis(start, start_idx, axis=1)
    end_top = np.take_along_axis(end, end_idx, axis=1)
    scores = start_top[:, :, None] + end_top[:, None, :]  # (W, k, k)
    length = end_idx[:, None, :] - start_idx[:, :, None]
    scores = np.where((length >= 0) & (length < max_answer_length), scores, -np.inf).reshape(len(scores), -1)
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (
        np.take_along_axis(scores, best, axis=1),
        np.take_along_axis(start_idx, best // k, axis=1),
        np.take_along_axis(end_idx, best % k, axis=1),
    )


def decode_candidates(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    windows: EvalWindows,
    num_examples: int,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> Candidates:
    """The n_best best spans of every question over all of its windows. Logits are (W, L) like the offsets."""
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    scores, starts, ends = _window_candidates(start_logits, end_logits, windows.context_mask, n_best, max_answer_length)
    k = scores.shape[1]
    # Lay each question's windows side by side: (E, windows per question × k) candidate slots
    first_window = np.searchsorted(windows.example_index, np.arange(num_examples))
    slot = np.arange(len(scores)) - first_window[windows.example_index]
    width = (int(slot.max()) + 1) * k if len(slot) else k
    flat_scores = np.full((num_examples, width), -np.inf, dtype=np.float32)
    flat_window = np.zeros((num_examples, width), dtype=np.int64)
    columns = slot[:, None] * k + np.arange(k)
    rows = np.broadcast_to(windows.example_index[:, None], columns.shape)
    flat_scores[rows, columns] = scores
    flat_window[rows, columns] = np.arange(len(scores))[:, None]
    flat_start = np.zeros_like(flat_window)
    flat_end = np.zeros_like(flat_window)
    flat_start[rows, columns] = starts
    flat_end[rows, columns] = ends

    keep = min(n_best, width)
    best = np.argsort(-flat_scores, axis=1, kind="stable")[:, :keep]
    null = start_logits[:, 0] + end_logits[:, 0]
    null_scores = np.full(num_examples, np.inf, dtype=np.float32)
    np.minimum.at(null_scores, windows.example_index, null)
    return Candidates(
        scores=np.take_along_axis(flat_scores, best, axis=1),
        windows=np.take_along_axis(flat_window, best, axis=1),
        start_tokens=np.take_along_axis(flat_start, best, axis=1),
        end_tokens=np.take_along_axis(flat_end, best, axis=1),
        null_scores=null_scores,
    )


@dataclass
class Answer:
    text: str
    start: int  # character offsets in the context; -1 for no answer
    end: int
    score: float


def _answer(candidates: Candidates, windows: EvalWindows, context: str, example: int, rank: int) -> Answer:
    window = candidates.windows[example, rank]
    first = int(windows.offsets[window, candidates.start_tokens[example, rank], 0])
    last = int(windows.offsets[window, candidates.end_tokens[example, rank], 1])
    return Answer(context[first:last], first, last, float(candidates.scores[example, rank]))


def candidate_answers(candidates: Candidates, windows: EvalWindows, contexts: list[str], example: int) -> list[Answer]:
    """The example's candidates as text with character offsets, best first (padded slots dropped)."""
    valid = np.isfinite(candidates.scores[example])
    return [_answer(candidates, windows, contexts[example], example, rank) for rank in np.flatnonzero(valid)]


def best_answers(
    candidates: Candidates,
    windows: EvalWindows,
    contexts: list[str],
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> tuple[list[Answer], np.ndarray]:
    """The answer of every question, and its null-score difference (null score − best span score).

    With ``version_2`` a question whose null score beats its best span by more than the threshold gets the empty
    answer; so does any question without a valid span.
    """
    best = candidates.scores[:, 0]
    null_diffs = candidates.null_scores - best
    no_answer = ~np.isfinite(best) | (version_2 & (null_diffs > null_score_diff_threshold))
    answers = [
        Answer("", -1, -1, float(candidates.null_scores[example]))
        if no_answer[example]
        else _answer(candidates, windows, context, example, 0)
        for example, context in enumerate(contexts)
    ]
    return answers, null_diffs
