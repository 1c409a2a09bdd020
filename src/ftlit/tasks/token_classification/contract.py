"""What a token-classification data module hands its model: the tag names, and per evaluated split its sentences'
words (and gold tags), and where each word is read in the features."""

from dataclasses import dataclass

from ftlit.contract import DataContract, EvalSet
from ftlit.tasks.token_classification.features import WordReadings


@dataclass(frozen=True)
class TokenEvalSet(EvalSet):
    """An evaluated split: its sentences, and where each word is read (its first subword in its centre-most
    window)."""

    words: list[list[str]]
    tags: list[list[str]] | None  # gold tags; None for predict
    readings: WordReadings
    texts: list[str]  # each sentence as text (its words joined by spaces, or the predict file's own text)
    char_spans: list[list[tuple[int, int]]]  # each word's characters in its text


@dataclass(frozen=True)
class TokenContract(DataContract):
    label_names: list[str]  # tag of each class id, "O" first
    doc_stride: int  # the windows' overlap, recorded in the export for inference
