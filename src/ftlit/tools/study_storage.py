"""Where a study of ``ftlit tune`` is kept, checked before the first trial, and what a refused ``ftlit tune`` takes
away again: it leaves nothing behind."""

import shutil
from pathlib import Path

from ftlit.errors import FtlitError
from ftlit.training.outputs import check_writable


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` storage URL; None for any other storage (or SQLite in memory)."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def check_storage(url: str) -> None:
    """A SQLite storage's folder can be made and written, and its file is not a folder (any other storage is
    checked by opening it)."""
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise FtlitError(f"--tune.storage {url}: {path} is a folder, not a database file: give a file's path.")
    check_writable(path.parent, f"--tune.storage's folder (for {path.name})")


class NewPaths:
    """Paths that do not exist yet when ``ftlit tune`` starts (the output folder, the database file): those it made
    are removed again when it refuses (folders only when nothing else was put in them)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [path for path in dict.fromkeys(paths) if not path.exists()]

    def remove(self) -> None:
        for path in sorted(self.paths, key=lambda p: len(p.parts), reverse=True):  # files and inner folders first
            if path.is_file():
                path.unlink()
            elif path.is_dir():
                remove_empty_folders(path)


def remove_empty_folders(folder: Path) -> None:
    """``folder`` and the folders below it, where they hold no file."""
    if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder)
