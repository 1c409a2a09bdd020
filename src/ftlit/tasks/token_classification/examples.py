"""Example data of token classification (the registry's ``example_files``): sentences of filler words with
people, places and companies among them, each entity recognisable by its words."""

import random
from pathlib import Path

from ftlit.data.examples import FILLER, write_jsonl

FIRST_NAMES, LAST_NAMES = ["john", "mary", "peter", "susan"], ["smith", "jones", "brown"]
PLACES, COMPANIES = ["paris", "london", "berlin", "rome", "oslo"], ["google", "nokia", "siemens"]

#: The ``--data.*`` settings the example files are read with: windows shorter than the longer sentences
EXAMPLE_SETTINGS = ("--data.dataset", "null", "--data.max_length", "16", "--data.doc_stride", "4")


def ner_rows(n: int, seed: int, words: tuple[int, int] = (4, 12)) -> list[dict]:
    """Sentences of filler words with people (one or two words), places and companies among them, IOB2-tagged:
    each entity is recognisable by its words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(*words)):
            kind = rng.choice(["filler"] * 5 + ["PER", "LOC", "ORG"])
            if kind == "filler":
                tokens.append(rng.choice(FILLER)), tags.append("O")
            elif kind == "PER":
                name = [rng.choice(FIRST_NAMES)] + ([rng.choice(LAST_NAMES)] if rng.random() < 0.5 else [])
                tokens += name
                tags += ["B-PER"] + ["I-PER"] * (len(name) - 1)
            else:
                tokens.append(rng.choice(PLACES if kind == "LOC" else COMPANIES)), tags.append(f"B-{kind}")
        rows.append({"tokens": tokens, "ner_tags": tags})
    return rows


def example_files(folder: Path) -> dict[str, Path]:
    """400 training and 100 validation sentences, and 20 longer ones to predict (longer than a window, so that
    windows are put back together), in ``folder``."""
    return {
        "train": write_jsonl(folder / "train.jsonl", ner_rows(400, seed=0)),
        "validation": write_jsonl(folder / "dev.jsonl", ner_rows(100, seed=1)),
        "predict": write_jsonl(folder / "predict.jsonl", ner_rows(20, seed=3, words=(8, 30))),
    }
