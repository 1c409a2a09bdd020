"""ftlit: fine-tune Hugging Face encoders with PyTorch Lightning."""

from ftlit.tasks.classification import ClassificationDataModule, SequenceClassificationModule
from ftlit.tasks.question_answering import QuestionAnsweringModule, SquadDataModule
from ftlit.tasks.retrieval import RetrievalDataModule, RetrievalModule
from ftlit.tasks.token_classification import TokenClassificationDataModule, TokenClassificationModule

__all__ = [
    "ClassificationDataModule",
    "QuestionAnsweringModule",
    "RetrievalDataModule",
    "RetrievalModule",
    "SequenceClassificationModule",
    "SquadDataModule",
    "TokenClassificationDataModule",
    "TokenClassificationModule",
]
__version__ = "0.1.0"
