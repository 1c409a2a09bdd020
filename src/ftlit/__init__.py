"""ftlit: fine-tune Hugging Face encoders with PyTorch Lightning."""

from ftlit.data.classification import ClassificationDataModule
from ftlit.models.classification import SequenceClassificationModule

__all__ = ["ClassificationDataModule", "SequenceClassificationModule"]
__version__ = "0.1.0"
