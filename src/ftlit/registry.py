"""The registry of tasks: each task package registers itself when imported (``ftlit.tasks`` imports them all), with
what the rest of ftlit and its tests need to know of a task without naming it — its model and data modules, small
learnable example files and the settings they are read with, an example request, and the stages it supports.

Shared core: it imports nothing else of ftlit (the classes are held, not inspected).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftlit.errors import FtlitError

#: What a task can do with a trained run besides fit, validate and predict (which every task does):
#: ``pipeline``: its Hugging Face export answers through ``transformers.pipeline``; ``onnx``: ``ftlit export
#: --format onnx`` and ONNX Runtime; ``serve``: ``ftlit serve``; ``inspect``: ``ftlit inspect``
STAGES = ("pipeline", "onnx", "serve", "inspect")


@dataclass(frozen=True)
class TaskEntry:
    """A registered task.

    Attributes:
        name: the task's name (its package's).
        model: its ``TransformerModule`` subclass.
        data: its ``TransformerDataModule`` subclass.
        example_files: writes small learnable data files into a folder and returns them by split: ``train``,
            ``validation`` and ``predict`` (rows a tiny model learns in a few steps: for tests and docs).
        example_settings: the ``--data.*`` arguments the example files are read with (besides the files).
        example_request: one input as ``ftlit serve`` and the export's pipeline take it.
        pipeline: the ``transformers.pipeline`` task its export answers as (with the ``pipeline`` stage).
        stages: the stages of ``STAGES`` it supports.
    """

    name: str
    model: type
    data: type
    example_files: Callable[[Path], dict[str, Path]]
    example_settings: tuple[str, ...]
    example_request: dict
    pipeline: str | None = None
    stages: tuple[str, ...] = STAGES

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stages) - set(STAGES))
        if unknown:
            raise FtlitError(f"Task {self.name!r}: unknown stage(s) {unknown}; the stages are {', '.join(STAGES)}.")
        if "pipeline" in self.stages and not self.pipeline:
            raise FtlitError(f"Task {self.name!r} supports the pipeline stage: name its pipeline.")


_registered: dict[str, TaskEntry] = {}


def register_task(entry: TaskEntry) -> TaskEntry:
    """Add a task to the registry (once: a second task of the same name is refused)."""
    if entry.name in _registered:
        raise FtlitError(f"A task named {entry.name!r} is registered already.")
    _registered[entry.name] = entry
    return entry


def tasks() -> dict[str, TaskEntry]:
    """The registered tasks by name, in the order they registered."""
    return dict(_registered)
