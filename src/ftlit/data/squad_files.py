"""SQuAD-format files: the official nested layout (``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``)
or flat rows, read as one row per question with Hugging Face's flat columns (id, title, context, question,
answers). The question-answering task reads its data this way, and the retrieval tasks read such a file as
(question → its paragraph) pairs."""

import re
from pathlib import Path

from datasets import Dataset

from ftlit.data.loading import file_format, load_local_file, read_head


def is_nested_squad(path: str) -> bool:
    """The official layout, ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}], "version"}``."""
    return file_format(path) == "json" and re.match(r'\s*\{\s*"(data|version)"', read_head(path)) is not None


def flatten_articles(batch: dict[str, list]) -> dict[str, list]:
    """Official nested articles → one row per question with HF's flat columns (answers as {text, answer_start})."""
    rows = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for title, paragraphs in zip(batch["title"], batch["paragraphs"]):
        for paragraph in paragraphs:
            for qa in paragraph["qas"]:
                rows["id"].append(qa["id"])
                rows["title"].append(title)
                rows["context"].append(paragraph["context"])
                rows["question"].append(qa["question"])
                answers = qa.get("answers") or []
                rows["answers"].append(
                    {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]}
                )
    return rows


def load_squad_file(path: str) -> Dataset:
    if not Path(path).is_file():
        return load_local_file(path)  # raises the not-found error
    if is_nested_squad(path):
        articles = load_local_file(path, field="data")
        return articles.map(flatten_articles, batched=True, remove_columns=articles.column_names, desc="Flattening")
    return load_local_file(path)
