"""What a classification data module hands its model: the task, its labels, and each evaluated split's documents."""

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from ftlit.contract import DataContract, EvalSet
from ftlit.tasks.classification.registry import TaskSpec


@dataclass(frozen=True)
class DocumentsEvalSet(EvalSet):
    """An evaluated split: the text (document) each feature comes from — one feature per text when truncating, one
    per window of it with ``long_text: window`` — and, for prediction, the input rows themselves."""

    document_index: np.ndarray  # (num_features,) the feature's row in the split
    rows: Dataset | None = None  # the input rows (predict only): each prediction record repeats its row


@dataclass(frozen=True)
class ClassificationContract(DataContract):
    """``label_names`` is None for a regression task."""

    spec: TaskSpec
    label_names: tuple[str, ...] | None

    @property
    def num_outputs(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)
