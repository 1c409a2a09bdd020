"""Sequence classification (one label or several per text) and regression: GLUE, IMDb, SNLI, GoEmotions and local
files; long documents in windows. Importing it registers the task and the ``multi-label-classification`` pipeline."""

from ftlit.registry import TaskEntry, register_task
from ftlit.tasks.classification import pipeline as _registers_multi_label_pipeline  # noqa: F401
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.examples import EXAMPLE_SETTINGS, example_files
from ftlit.tasks.classification.model import SequenceClassificationModule

__all__ = ["ClassificationDataModule", "SequenceClassificationModule"]

register_task(
    TaskEntry(
        "classification",
        SequenceClassificationModule,
        ClassificationDataModule,
        example_files,
        EXAMPLE_SETTINGS,
        example_request={"text": "a superb film"},
        pipeline="text-classification",
    )
)
