"""Retrieval: embedding models (bi-encoders) for search, trained on (query, positive passage[, hard negatives])
pairs and scored by ranking each split's corpus; importing it registers the task."""

from ftlit.registry import TaskEntry, register_task
from ftlit.tasks.retrieval.data import RetrievalDataModule
from ftlit.tasks.retrieval.examples import EXAMPLE_SETTINGS, example_files
from ftlit.tasks.retrieval.model import RetrievalModule

__all__ = ["RetrievalDataModule", "RetrievalModule"]

register_task(
    TaskEntry(
        "retrieval",
        RetrievalModule,
        RetrievalDataModule,
        example_files,
        EXAMPLE_SETTINGS,
        example_request={"query": "where is the castle?"},
        stages=("inspect",),
    )
)
