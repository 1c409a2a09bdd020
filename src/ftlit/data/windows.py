"""Overlapping token windows over texts longer than ``max_length``, shared by extractive QA (question + windows of
the context) and long-document classification (windows of the text).

Pure functions over plain lists: the data modules map them over their rows in batches.
"""

from collections.abc import Sequence

import tokenizers
from transformers import BatchEncoding, PreTrainedTokenizerFast

from ftlit.errors import FtlitError

# Offsets of tokens outside the windowed text (a QA question, special tokens)
NOT_TEXT = (-1, -1)


def check_stride(stride: int, room: int, leading: str = "") -> None:
    """Windows hold ``room`` tokens of the windowed text (``max_length`` minus the special tokens and, when windows
    repeat a ``leading`` text, that text) and advance by ``room - stride``: refuse a stride at which they could not
    advance."""
    if not 0 <= stride < room:
        raise FtlitError(
            f"--data.doc_stride {stride} must be between 0 and {room - 1}: a window holds {room} tokens of text "
            f"(max_length minus the special tokens{f' and {leading}' if leading else ''}) and advances by that minus "
            "the stride. Lower --data.doc_stride or raise --data.max_length."
        )


def token_windows(
    tokenizer: PreTrainedTokenizerFast,
    texts: list[str],
    max_length: int,
    stride: int,
    names: Sequence,
    leading: list[str] | None = None,
) -> tuple[BatchEncoding, list[list[tuple[int, int]]]]:
    """Tokenise each text into windows of at most ``max_length`` tokens, consecutive windows sharing ``stride``
    tokens. ``leading`` texts (QA questions) open every window of their text, whole.

    Returns the encoding (``overflow_to_sample_mapping`` gives each window's text) and, per window, the character
    offsets of its tokens in the windowed text, ``NOT_TEXT`` for the others. ``names`` name the texts in errors.
    """
    settings = {
        "max_length": max_length,
        "stride": stride,
        "return_overflowing_tokens": True,
        "return_offsets_mapping": True,
    }
    if leading is None:
        encoding, windowed = tokenizer(texts, truncation=True, **settings), 0
    else:
        # Right padding puts the leading text first; only the second sequence is cut into windows
        encoding, windowed = tokenizer(leading, texts, truncation="only_second", **settings), 1
    offsets = [
        [offset if sequence == windowed else NOT_TEXT for offset, sequence in zip(window, encoding.sequence_ids(i))]
        for i, window in enumerate(encoding["offset_mapping"])
    ]
    covered = [0] * len(texts)
    for text, window in zip(encoding["overflow_to_sample_mapping"], offsets):
        covered[text] = max(covered[text], max(end for _, end in window))
    check_windows_cover_texts(texts, covered, names)
    return encoding, offsets


def check_windows_cover_texts(texts: Sequence[str], covered_until: Sequence[int], names: Sequence) -> None:
    """Every text must be covered by its windows up to its last word.

    tokenizers 0.23.1/0.23.2 silently stop producing overflow windows after about ``max_length`` tokens; the tail
    of long texts (and the answers in it) would vanish without a trace.
    """
    lost = [i for i, (text, end) in enumerate(zip(texts, covered_until)) if any(c.isalnum() for c in text[end:])]
    if lost:
        first = lost[0]
        raise FtlitError(
            f"The token windows of {len(lost)} text(s) stop before their end (first: {names[first]!r}, covered "
            f"{covered_until[first]} of {len(texts[first])} characters). This is a bug of tokenizers "
            f"{tokenizers.__version__} (0.23.1 and 0.23.2 drop overflow windows): `pip install 'tokenizers>=0.23.3'`."
        )
