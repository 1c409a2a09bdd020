"""ftlit: fine-tune Hugging Face encoders with PyTorch Lightning."""

from ftlit.data.classification import ClassificationDataModule
from ftlit.data.squad import SquadDataModule
from ftlit.models.classification import SequenceClassificationModule
from ftlit.models.question_answering import QuestionAnsweringModule
from ftlit.qa import pipeline as _registers_extractive_qa_pipeline  # noqa: F401

__all__ = ["ClassificationDataModule", "QuestionAnsweringModule", "SequenceClassificationModule", "SquadDataModule"]
__version__ = "0.1.0"
