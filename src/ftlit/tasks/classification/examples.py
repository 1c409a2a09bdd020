"""Example data of classification (the registry's ``example_files``): texts whose sentiment is decided by one word
hidden among filler words."""

import random
from pathlib import Path

from ftlit.data.examples import FILLER, write_jsonl

POSITIVE = ["great", "wonderful", "excellent", "superb"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful"]

#: The ``--data.*`` settings the example files are read with
EXAMPLE_SETTINGS = ("--data.text_fields", "[text]", "--data.max_length", "32")


def sentiment_rows(n: int, seed: int, filler_words: tuple[int, int] = (3, 14), earliest: int = 0) -> list[dict]:
    """Rows whose label is decided by one sentiment word hidden among filler words (of a length drawn from
    ``filler_words``), at position ``earliest`` or later."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(*filler_words))]
        words.insert(rng.randint(earliest, len(words)), rng.choice(POSITIVE if label == "positive" else NEGATIVE))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def example_files(folder: Path) -> dict[str, Path]:
    """Sentiment training, validation and predict files (480, 120 and 40 texts) in ``folder``."""
    return {
        "train": write_jsonl(folder / "train.jsonl", sentiment_rows(480, seed=0)),
        "validation": write_jsonl(folder / "dev.jsonl", sentiment_rows(120, seed=1)),
        "predict": write_jsonl(folder / "predict.jsonl", sentiment_rows(40, seed=2)),
    }
