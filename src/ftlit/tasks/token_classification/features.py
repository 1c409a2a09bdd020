"""Words → model features: each sentence is tokenised once (its words split into subwords), cut into windows of
at most ``max_length`` tokens when it is longer, or widened with the words of its neighbouring sentences as
unlabelled context when it is shorter; the first subword of each word carries the word's tag.

At evaluation every word is read from exactly one window: of the windows that hold its first subword, the one
where that subword has the most tokens around it on its shorter side (centre-most).

Pure functions over plain lists; the data module maps ``encode_sentences`` over its rows in batches.
"""

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import regex
from transformers import PreTrainedTokenizerBase

from ftlit.errors import FtlitError
from ftlit.tasks.token_classification.tags import inside_tag

IGNORED = -100  # the label of tokens that are not scored (later subwords, context, special tokens)
#: How a text is split into words: runs of word characters with their combining marks (Devanagari vowel signs,
#: decomposed accents) and format characters (zero-width joiners), and each other visible character alone
WORD = regex.compile(r"[\w\p{M}\p{Cf}]+|[^\w\s\p{M}\p{Cf}]")


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """A text's words (and punctuation marks) and their characters ``[start, end)`` in it."""
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words joined by single spaces, and each word's characters in that text."""
    spans, position = [], 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def first_subwords(word_ids: Sequence[int | None], count: int) -> list[int]:
    """The token position of each of ``count`` words' first subword (-1 for a word without tokens)."""
    first = [-1] * count
    for position in range(len(word_ids) - 1, -1, -1):
        if word_ids[position] is not None:
            first[word_ids[position]] = position
    return first


def window_spans(num_tokens: int, labelled: tuple[int, int], room: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of the windows over a sequence of ``num_tokens`` tokens whose tokens
    ``labelled`` (a range) are scored; each window holds at most ``room`` tokens.

    A labelled range that fits is one window, widened as evenly as the context allows with the tokens around it;
    a longer one is cut into windows that advance by ``room - stride`` (consecutive windows share ``stride``
    tokens), the last ending with the range.
    """
    start, end = labelled
    if end - start <= room:
        spare = room - (end - start)
        before = min(start, max(spare // 2, spare - (num_tokens - end)))
        return [(start - before, min(num_tokens, end + spare - before))]
    if not 0 <= stride < room:  # (the data module checks its setting first; this guards the pipeline's)
        raise FtlitError(f"doc_stride {stride} must be between 0 and {room - 1} for windows of {room} tokens.")
    spans, step = [], room - stride
    while True:
        spans.append((start, min(start + room, end)))
        if start + room >= end:
            return spans
        start += step


def owning_windows(first_tokens: Sequence[int], spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each word's first token, (window, position in the window): of the windows that hold it, the one where
    it has the most tokens on its shorter side (the earlier window on a tie); (-1, -1) when none holds it.

    ``spans`` are in order, as ``window_spans`` gives them (starts and ends increasing): the windows holding a
    token are found by bisection, so a sentence of any length costs its words times the few windows that overlap."""
    starts, ends = [start for start, _ in spans], [end for _, end in spans]
    owners = []
    for token in first_tokens:
        best, best_room = (-1, -1), -1
        for window in range(bisect.bisect_right(ends, token), bisect.bisect_right(starts, token)):
            start, end = spans[window]
            if min(token - start, end - 1 - token) > best_room:
                best, best_room = (window, token - start), min(token - start, end - 1 - token)
        owners.append(best)
    return owners


@dataclass(frozen=True)
class SpecialTokens:
    """What the tokenizer puts around a single sequence (``[CLS] … [SEP]``, ``<s> … </s>``)."""

    before: list[int]
    after: list[int]
    with_token_types: bool

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> "SpecialTokens":
        encoding = tokenizer([["x"]], is_split_into_words=True)
        words = encoding.word_ids(0)
        first, last = words.index(0), len(words) - 1 - words[::-1].index(0)
        ids = encoding["input_ids"][0]
        return cls(ids[:first], ids[last + 1 :], "token_type_ids" in encoding)

    @property
    def count(self) -> int:
        return len(self.before) + len(self.after)


def tokenize_words(tokenizer: PreTrainedTokenizerBase, word_lists: list[list[str]]) -> tuple[list, list]:
    """Subword ids and their word ids of each list of words. A word the tokenizer turns into nothing (a stray
    control or zero-width character) is read as the unknown token, so that every word gets a prediction."""
    encoding = tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False)
    ids, word_ids = list(encoding["input_ids"]), [encoding.word_ids(i) for i in range(len(word_lists))]
    for i, words in enumerate(word_lists):
        if len(set(word_ids[i]) - {None}) < len(words):
            present = set(word_ids[i])
            words = [word if j in present else tokenizer.unk_token for j, word in enumerate(words)]
            again = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
            ids[i], word_ids[i] = again["input_ids"][0], again.word_ids(0)
    return ids, word_ids


def encode_sentences(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    stride: int,
    label2id: dict[str, int] | None,
    label_all_subwords: bool = False,
    example_offset: int = 0,
) -> dict[str, list]:
    """Features of a batch of sentences (``tokens``, with ``ner_tags`` when ``label2id`` is given, and
    ``context_before``/``context_after`` word lists when they have context).

    Each feature holds ``input_ids`` (``token_type_ids``), ``attention_mask``, ``labels`` (with ``label2id``: the
    tag id on each word's first subword, ``IGNORED`` elsewhere — or under ``label_all_subwords`` the ``I-`` tag on
    later subwords), ``example_index`` (the sentence's position, counted from ``example_offset``), and the words it
    is read for at evaluation: ``owned_words`` (their positions in the sentence) and ``owned_positions`` (their
    first subwords' positions in the feature).
    """
    special = SpecialTokens.of(tokenizer)
    room = max_length - special.count
    sentences = examples["tokens"]
    before = examples.get("context_before") or [[] for _ in sentences]
    after = examples.get("context_after") or [[] for _ in sentences]
    all_ids, all_word_ids = tokenize_words(tokenizer, [b + s + a for b, s, a in zip(before, sentences, after)])
    features: dict[str, list] = {
        "input_ids": [],
        "attention_mask": [],
        "example_index": [],
        "owned_words": [],
        "owned_positions": [],
    }
    if special.with_token_types:
        features["token_type_ids"] = []
    if label2id is not None:
        features["labels"] = []
    for i, (ids, word_ids, words) in enumerate(zip(all_ids, all_word_ids, sentences)):
        offset = len(before[i])
        first = first_subwords(word_ids, offset + len(words) + len(after[i]))
        sentence_first = first[offset : offset + len(words)]
        labelled = (sentence_first[0], _end_of_word(word_ids, offset + len(words) - 1))
        spans = window_spans(len(ids), labelled, room, stride)
        owners = owning_windows(sentence_first, spans)
        owned_by = [[] for _ in spans]  # each window's words, in order (one pass: a long sentence has many windows)
        for word, (owner, _) in enumerate(owners):
            if owner >= 0:
                owned_by[owner].append(word)
        tag_ids = None
        if label2id is not None:
            tags = examples["ner_tags"][i]
            tag_ids = [label2id.get(tag, IGNORED) for tag in tags]
            inside_ids = [label2id.get(inside_tag(tag), IGNORED) for tag in tags]
        for window, (start, end) in enumerate(spans):
            input_ids = special.before + ids[start:end] + special.after
            features["input_ids"].append(input_ids)
            features["attention_mask"].append([1] * len(input_ids))
            if special.with_token_types:
                features["token_type_ids"].append([0] * len(input_ids))
            features["example_index"].append(example_offset + i)
            owned = owned_by[window]
            features["owned_words"].append(owned)
            features["owned_positions"].append([len(special.before) + owners[w][1] for w in owned])
            if tag_ids is not None:
                labels = [IGNORED] * len(input_ids)
                for position in range(start, end):
                    word = word_ids[position] - offset if word_ids[position] is not None else -1
                    if not 0 <= word < len(words):
                        continue  # context
                    if position == sentence_first[word]:
                        labels[len(special.before) + position - start] = tag_ids[word]
                    elif label_all_subwords:
                        labels[len(special.before) + position - start] = inside_ids[word]
                features["labels"].append(labels)
    return features


def _end_of_word(word_ids: Sequence[int | None], word: int) -> int:
    """The position after the last subword of ``word`` (tokenize_words gives every word at least one)."""
    return max(position for position, owner in enumerate(word_ids) if owner == word) + 1


@dataclass(frozen=True)
class WordReadings:
    """Where each word of a set of sentences is read: word ``j`` of sentence ``i`` is flat word ``starts[i] + j``,
    read at ``(feature[k], position[k])`` of flat word ``k``."""

    starts: np.ndarray  # (sentences + 1,)
    feature: np.ndarray  # (words,)
    position: np.ndarray  # (words,)

    @classmethod
    def of(cls, lengths: Sequence[int], features: dict[str, Sequence]) -> "WordReadings":
        """From the sentences' word counts and their features' ``example_index``/``owned_words``/``owned_positions``
        (features numbered in order)."""
        starts = np.concatenate([[0], np.cumsum(lengths, dtype=int)])
        feature, position = np.full(starts[-1], -1), np.full(starts[-1], -1)
        columns = zip(features["example_index"], features["owned_words"], features["owned_positions"])
        for index, (example, owned, positions) in enumerate(columns):
            flat = starts[example] + np.asarray(owned, dtype=int)
            feature[flat], position[flat] = index, positions
        if (feature < 0).any():  # never: every word has a first subword, and some window holds it
            raise FtlitError(f"{(feature < 0).sum()} word(s) fell outside every window.")
        return cls(starts, feature, position)

    def read(self, every: np.ndarray) -> list[np.ndarray]:
        """Per sentence, each word's value ``every[feature, position]`` (``every``: one row per feature)."""
        return np.split(every[self.feature, self.position], self.starts[1:-1])
