"""What the tasks' example data is made of (``ftlit.registry.TaskEntry.example_files``): filler words among
which each task hides what its model learns to find, and the JSON-lines files it is written as."""

import json
from pathlib import Path

#: Words that carry no label in any task's example data
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


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a JSON-lines file at ``path``; returns the path."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
