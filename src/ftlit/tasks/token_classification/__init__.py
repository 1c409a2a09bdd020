"""Token classification (named-entity recognition) on CoNLL-2003 and any word/tag data; importing it registers the
``entity-recognition`` pipeline."""

from ftlit.tasks.token_classification import pipeline as _registers_entity_recognition_pipeline  # noqa: F401
from ftlit.tasks.token_classification.data import TokenClassificationDataModule
from ftlit.tasks.token_classification.model import TokenClassificationModule

__all__ = ["TokenClassificationDataModule", "TokenClassificationModule"]
