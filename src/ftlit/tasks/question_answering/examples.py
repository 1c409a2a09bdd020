"""Example data of question answering (the registry's ``example_files``): questions whose answer is the word after
"the answer is" in a context of filler words, long enough to need two windows."""

import json
import random
from pathlib import Path

from ftlit.data.examples import FILLER, write_jsonl

ANIMALS = "zebra otter falcon badger walrus heron lynx marmot bison gecko".split()

#: The ``--data.*`` settings the example files are read with: windows small enough to cut the longer contexts
EXAMPLE_SETTINGS = (
    "--data.dataset",
    "null",
    "--data.max_length",
    "64",
    "--data.doc_stride",
    "16",
    "--data.max_query_length",
    "16",
)


def squad_rows(n: int, seed: int, unanswerable: float = 0.0) -> list[dict]:
    """SQuAD-format questions whose answer is the word after "the answer is" in a context of filler words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(10, 70))]  # up to two 64-token windows
        answer = rng.choice(ANIMALS)
        answerable = rng.random() >= unanswerable
        position = rng.randint(0, len(words))
        clue = ["the", "answer", "is", answer] if answerable else ["no", "answer", "here"]
        context = " ".join(words[:position] + clue + words[position:])
        start = context.index(" answer is ") + len(" answer is ") if answerable else None
        rows.append(
            {
                "id": f"q{seed}-{i}",
                "title": f"article{i // 5}",
                "question": rng.choice(["what is the answer?", "which answer is given?", "name the answer"]),
                "context": context,
                "answers": {"text": [answer], "answer_start": [start]}
                if answerable
                else {"text": [], "answer_start": []},
            }
        )
    return rows


def nested_squad(rows: list[dict]) -> dict:
    """Flat rows → the official nested layout (one paragraph per row, grouped by title)."""
    articles: dict[str, list] = {}
    for row in rows:
        gold = row["answers"]
        answers = [{"text": t, "answer_start": s} for t, s in zip(gold["text"], gold["answer_start"])]
        qa = {"id": row["id"], "question": row["question"], "answers": answers}
        articles.setdefault(row["title"], []).append({"context": row["context"], "qas": [qa]})
    return {"version": "1.1", "data": [{"title": t, "paragraphs": p} for t, p in articles.items()]}


def example_files(folder: Path) -> dict[str, Path]:
    """600 training questions in the official nested JSON layout, 100 validation and 20 predict questions as flat
    JSON lines, in ``folder``."""
    (folder / "train.json").write_text(json.dumps(nested_squad(squad_rows(600, seed=0))))
    return {
        "train": folder / "train.json",
        "validation": write_jsonl(folder / "dev.jsonl", squad_rows(100, seed=1)),
        "predict": write_jsonl(folder / "predict.jsonl", squad_rows(20, seed=2)),
    }
