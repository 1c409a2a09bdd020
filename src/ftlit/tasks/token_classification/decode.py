"""The entities of a sentence's word tags as records with their words and characters."""

from collections.abc import Sequence

import numpy as np

from ftlit.tasks.token_classification.tags import entities


def entity_records(
    tags: Sequence[str], scores: Sequence[float], text: str, char_spans: Sequence[tuple[int, int]]
) -> list[dict]:
    """The entities of one sentence's word tags: text, type, words ``[start_word, end_word)``, characters
    ``[start, end)`` of ``text``, and score (the mean of its words' tag probabilities)."""
    records = []
    for kind, first, last in entities(tags):
        start, end = char_spans[first][0], char_spans[last][1]
        score = round(float(np.mean(scores[first : last + 1])), 6)
        records.append(
            {
                "text": text[start:end],
                "type": kind,
                "start_word": first,
                "end_word": last + 1,
                "start": start,
                "end": end,
                "score": score,
            }
        )
    return records
