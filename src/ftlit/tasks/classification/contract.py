"""What a classification data module hands its model: the task, its labels, and each evaluated split's documents."""

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from ftlit.contract import DataContract, EvalSet
from ftlit.tasks.classification.presets import DatasetPreset, ProblemType, task_metrics


@dataclass(frozen=True)
class DocumentsEvalSet(EvalSet):
    """An evaluated split: the text (document) each feature comes from — one feature per text when truncating, one
    per window of it with ``long_text: window`` — and, for prediction, the input rows themselves."""

    document_index: np.ndarray  # (num_features,) the feature's row in the split
    rows: Dataset | None = None  # the input rows (predict only): each prediction record repeats its row


@dataclass(frozen=True)
class ClassificationContract(DataContract):
    """The task, its problem type and labels (None for a regression), the metrics it reports (the main one first)
    and, when the stage trained, how many training examples there are and how many each label has (for
    ``class_weights: balanced``) or
    the training targets' mean and standard deviation (for ``standardize_targets``)."""

    spec: DatasetPreset
    label_names: tuple[str, ...] | None
    problem_type: ProblemType = "single_label"
    train_label_counts: tuple[int, ...] | None = None
    train_examples: int | None = None
    train_target_stats: tuple[float, float] | None = None  # regression: the training targets' mean and std

    @property
    def metrics(self) -> tuple[str, ...]:
        return task_metrics(self.spec, self.problem_type)

    @property
    def monitor(self) -> str:
        return self.metrics[0]

    @property
    def num_outputs(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)
