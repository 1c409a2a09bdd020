"""Sequence classification and regression: GLUE, IMDb, SNLI and local files; long documents in windows."""

from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule

__all__ = ["ClassificationDataModule", "SequenceClassificationModule"]
