"""Example data of reranking (the registry's ``example_files``): queries naming one keyword among filler words,
whose positive passage holds the same keyword and whose negatives hold others."""

import random
from pathlib import Path

from ftlit.data.examples import FILLER, write_jsonl

KEYWORDS = ["apple", "river", "castle", "guitar", "tiger", "rocket", "garden", "violin", "pencil", "island"]

#: The ``--data.*`` settings the example files are read with
EXAMPLE_SETTINGS = ("--data.max_length", "32", "--data.batch_size", "8")


def passage(rng: random.Random, keyword: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(1, 4))]
    words.insert(rng.randint(0, len(words)), keyword)
    return " ".join(words)


def reranking_rows(n: int, seed: int, negatives: int = 3, ranked: bool = False) -> list[dict]:
    """Rows of a query, its positive and ``negatives`` negatives (1 to that many: groups differ in size); with
    ``ranked``, also the candidates (positive and negatives) in a random order, as a weak retriever gives them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        keyword, *others = rng.sample(KEYWORDS, 1 + negatives)
        row = {
            "query": passage(rng, keyword),
            "positive": passage(rng, keyword),
            "negatives": [passage(rng, other) for other in others[: rng.randint(1, negatives)]],
        }
        if ranked:
            row["candidates"] = rng.sample([row["positive"], *row["negatives"]], 1 + len(row["negatives"]))
        rows.append(row)
    return rows


def example_files(folder: Path) -> dict[str, Path]:
    """Training rows (320), validation rows with the candidates a retriever ranked (80) and rows to rank (20)."""
    predict = [{"query": row["query"], "candidates": row["candidates"]} for row in reranking_rows(20, 2, ranked=True)]
    return {
        "train": write_jsonl(folder / "train.jsonl", reranking_rows(320, seed=0)),
        "validation": write_jsonl(folder / "dev.jsonl", reranking_rows(80, seed=1, ranked=True)),
        "predict": write_jsonl(folder / "predict.jsonl", predict),
    }
