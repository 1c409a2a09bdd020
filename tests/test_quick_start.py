"""README's quick start, as written: its commands and its Python block run in a folder holding only what the clone
ships for it (the config and the sample data), offline, and MiniLM learns."""

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LABELS = {"entailment", "neutral", "contradiction"}


def quick_start_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of README's quick start section, in order."""
    section = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w+)\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def commands(code: str) -> list[list[str]]:
    """The shell commands of a bash block, continuation lines joined."""
    return [shlex.split(line, comments=True) for line in code.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.slow  # trains MiniLM for an epoch
def test_the_quick_start_runs_as_written_and_learns(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    blocks = quick_start_blocks()
    assert [language for language, _ in blocks] == ["bash", "bash", "python"]

    (fit,) = commands(blocks[0][1])
    done = subprocess.run([sys.executable, "-m", *fit], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = json.loads((tmp_path / "runs/quickstart/results.json").read_text())["metrics"]["accuracy"]
    assert accuracy > 0.5  # three classes: chance is 0.33
    assert f"{accuracy:.4f}" in done.stdout + done.stderr  # fit prints its score

    (predict,) = commands(blocks[1][1])
    done = subprocess.run([sys.executable, "-m", *predict], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs/quickstart/predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(row["label"] in LABELS and set(row["probabilities"]) == LABELS for row in rows)
    assert "20" in done.stdout + done.stderr and "predictions.jsonl" in done.stdout + done.stderr

    lines = blocks[2][1].splitlines()  # the block's last call shows its result (as in a notebook): printed here
    call = max(i for i, line in enumerate(lines) if line.startswith("nli("))
    lines[call] = f"print({lines[call]})"
    done = subprocess.run([sys.executable, "-c", "\n".join(lines)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = ast.literal_eval(done.stdout.strip().splitlines()[-1])  # {'label': …, 'score': …}
    assert answer["label"] in LABELS and 1 / 3 <= answer["score"] <= 1
