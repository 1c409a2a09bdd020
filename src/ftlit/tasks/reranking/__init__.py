"""Reranking: a cross-encoder that scores (query, passage) pairs, trained on a query's positive among its hard
negatives and judged by how it ranks each query's candidates. A task of its own rather than a mode of sentence-pair
classification: it trains on groups (a listwise loss over each query's passages) and is scored by ranking metrics
over each query's candidates, neither of which classification has. Importing it registers the task."""

from ftlit.registry import TaskEntry, register_task
from ftlit.tasks.reranking.data import RerankingDataModule
from ftlit.tasks.reranking.examples import EXAMPLE_SETTINGS, example_files
from ftlit.tasks.reranking.model import RerankingModule

__all__ = ["RerankingDataModule", "RerankingModule"]

register_task(
    TaskEntry(
        "reranking",
        RerankingModule,
        RerankingDataModule,
        example_files,
        EXAMPLE_SETTINGS,
        example_request={"query": "the garden", "candidates": ["a river", "the garden", "an apple"]},
        stages=("onnx", "serve", "inspect"),
    )
)
