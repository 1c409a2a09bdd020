"""Example data of retrieval (the registry's ``example_files``): each passage names one topic among filler words,
and its queries ask for that topic, so a model learns to find the passage that shares the query's topic word."""

import random
from pathlib import Path

from ftlit.data.examples import FILLER, write_jsonl

TOPICS = (
    "apple river castle tiger guitar rocket garden pirate violin desert island forest bridge candle dragon engine "
    "falcon harbor jungle kettle lemon marble needle orange pencil rabbit saddle temple wizard anchor barrel cactus "
    "dolphin eagle feather glacier hammer igloo jacket ladder"
).split()

#: The ``--data.*`` settings the example files are read with
EXAMPLE_SETTINGS = ("--data.max_length", "32", "--data.max_query_length", "16")


def pair_rows(topics: list[str], queries_per_topic: int, seed: int) -> list[dict]:
    """One passage per topic (the topic among filler words) and ``queries_per_topic`` queries asking for it."""
    rng = random.Random(seed)
    rows = []
    for topic in topics:
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 12))]
        words.insert(rng.randint(0, len(words)), topic)
        passage = " ".join(words)
        for _ in range(queries_per_topic):
            query = " ".join([rng.choice(FILLER) for _ in range(rng.randint(1, 3))] + [topic])
            rows.append({"query": query, "positive": passage})
    return rows


def example_files(folder: Path) -> dict[str, Path]:
    """Training (24 topics, 4 queries each), validation and predict files (the 16 other topics)."""
    return {
        "train": write_jsonl(folder / "train.jsonl", pair_rows(list(TOPICS[:24]), 4, seed=0)),
        "validation": write_jsonl(folder / "dev.jsonl", pair_rows(list(TOPICS[24:]), 2, seed=1)),
        "predict": write_jsonl(folder / "predict.jsonl", pair_rows(list(TOPICS[24:]), 1, seed=2)),
    }
