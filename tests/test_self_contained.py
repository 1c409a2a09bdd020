"""The repository speaks of itself alone: no tracked file names a path of the machine it was written on, or of the
folders beside the checkout other than ${FTLIT_DATA}'s documented default (``../shared/data``)."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# An absolute path into a machine's own folders, a folder beside the checkout that is not the data's, or the notes
# kept there (named without their path)
OUTSIDE = re.compile(
    r"(?<![\w.$}])/(?:work|root|home|opt|tmp|mnt|srv)/|\.\./shared/(?!data\b)|\b(?:GPU-NOTES|REFERENCE-RECIPES)\b"
)


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.splitlines() if (ROOT / name).is_file()]


def outside_references(text: str) -> list[str]:
    """The lines of ``text`` that name a path outside the repository."""
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def test_the_pattern_finds_paths_outside_and_passes_the_data_default():
    assert outside_references("see ../shared/GPU-NOTES.md\nData: /tmp/ftlit-gpu/data\n`/work/main/src/ftlit`") == [
        "see ../shared/GPU-NOTES.md",
        "Data: /tmp/ftlit-gpu/data",
        "`/work/main/src/ftlit`",
    ]
    assert outside_references("a pitfall (GPU-NOTES)\nrecipes: REFERENCE-RECIPES.md") == [
        "a pitfall (GPU-NOTES)",
        "recipes: REFERENCE-RECIPES.md",
    ]
    assert outside_references("default ../shared/data; ${FTLIT_DATA}/squad; runs/benchmarks/fit; a/tmp/b") == []


def test_no_tracked_file_names_a_path_outside_the_repository():
    found = {}
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # (binary files)
            continue
        if lines := outside_references(text):
            found[str(path.relative_to(ROOT))] = lines[:3]
    assert not found, found
