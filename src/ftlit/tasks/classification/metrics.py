"""Classification metrics (torchmetrics), the per-label table, and per-document aggregation of window logits."""

from typing import Literal

import torch
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import (
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
)
from torchmetrics.functional.classification import multiclass_stat_scores, multilabel_stat_scores

from ftlit.tasks.classification.presets import ProblemType


def build_metrics(names: tuple[str, ...], num_labels: int, problem_type: ProblemType, **options) -> MetricCollection:
    """The torchmetrics objects for a task. Single-label metrics take predicted class ids, regression ones scores,
    multi-label ones per-label probabilities that are positive above 0.5 (see ``decision_probabilities``).
    ``options`` go to every metric (e.g. ``sync_on_compute``)."""
    if problem_type == "multi_label":
        factories = {
            "macro_f1": lambda: MultilabelF1Score(num_labels, average="macro", **options),
            "micro_f1": lambda: MultilabelF1Score(num_labels, average="micro", **options),
            "subset_accuracy": lambda: MultilabelExactMatch(num_labels, **options),
            "hamming_loss": lambda: MultilabelHammingDistance(num_labels, average="micro", **options),
            "mean_average_precision": lambda: MultilabelAveragePrecision(num_labels, average="macro", **options),
        }
    else:

        def macro_f1() -> MulticlassF1Score:
            return MulticlassF1Score(num_labels, average="macro", **options)

        factories = {
            # micro average = plain accuracy; torchmetrics' multiclass default (macro) would be balanced accuracy
            "accuracy": lambda: MulticlassAccuracy(num_labels, average="micro", **options),
            "f1": lambda: BinaryF1Score(**options) if num_labels == 2 else macro_f1(),
            "macro_f1": macro_f1,
            "matthews_corrcoef": lambda: MulticlassMatthewsCorrCoef(num_labels, **options),
            "pearson": lambda: PearsonCorrCoef(**options),
            "spearman": lambda: SpearmanCorrCoef(**options),
            "mse": lambda: MeanSquaredError(**options),
            "mae": lambda: MeanAbsoluteError(**options),
        }
    return MetricCollection({name: factories[name]() for name in names})


def decision_probabilities(logits: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Multi-label probabilities moved, label by label, so that 0.5 is each label's decision threshold:
    ``sigmoid(logit − logit(threshold))`` is above 0.5 exactly when ``sigmoid(logit)`` is above the threshold.
    Order within a label is kept, so ranking metrics (average precision) are unchanged."""
    return torch.sigmoid(logits.float() - torch.logit(thresholds.to(logits.device).double()).float())


def per_label_table(
    predictions: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...], problem_type: ProblemType
) -> dict[str, dict[str, float]]:
    """Per label: precision, recall, F1 (0 where undefined, as scikit-learn's ``zero_division=0``) and support
    (gold examples) — what scikit-learn's classification report prints. ``predictions`` are class ids (single
    label) or decision probabilities (multi-label)."""
    if problem_type == "multi_label":
        stats = multilabel_stat_scores(predictions, labels.long(), len(names), average=None)
    else:
        stats = multiclass_stat_scores(predictions, labels, len(names), average=None)
    table = {}
    for name, (tp, fp, _, fn, support) in zip(names, stats.tolist()):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        table[name] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": int(support),
        }
    return table


def aggregate_windows(
    document_index: torch.Tensor, logits: torch.Tensor, how: Literal["mean", "max"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The documents (sorted) and, per document, the mean or element-wise max of its windows' logits."""
    documents, position = document_index.unique(return_inverse=True)
    aggregated = torch.zeros(len(documents), logits.shape[-1], dtype=logits.dtype, device=logits.device)
    reduce = {"mean": "mean", "max": "amax"}[how]
    aggregated.scatter_reduce_(0, position[:, None].expand_as(logits), logits, reduce, include_self=False)
    return documents, aggregated
