"""ftlit: fine-tune Hugging Face encoders with PyTorch Lightning."""

from ftlit.tasks.classification import ClassificationDataModule, SequenceClassificationModule
from ftlit.tasks.question_answering import QuestionAnsweringModule, SquadDataModule

__all__ = ["ClassificationDataModule", "QuestionAnsweringModule", "SequenceClassificationModule", "SquadDataModule"]
__version__ = "0.1.0"
