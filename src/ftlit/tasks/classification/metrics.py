"""Classification metrics (torchmetrics) and per-document aggregation of window logits."""

from typing import Literal

import torch
from torchmetrics import MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import (
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
)


def build_metrics(names: tuple[str, ...], num_labels: int, **options) -> MetricCollection:
    """The torchmetrics objects for a task: classification metrics take predicted class ids, regression ones scores.
    ``options`` go to every metric (e.g. ``sync_on_compute``)."""
    factories = {
        # micro average = plain accuracy; torchmetrics' multiclass default (macro) would be balanced accuracy
        "accuracy": lambda: MulticlassAccuracy(num_labels, average="micro", **options),
        "f1": lambda: (
            BinaryF1Score(**options) if num_labels == 2 else MulticlassF1Score(num_labels, average="macro", **options)
        ),
        "matthews_corrcoef": lambda: MulticlassMatthewsCorrCoef(num_labels, **options),
        "pearson": lambda: PearsonCorrCoef(**options),
        "spearman": lambda: SpearmanCorrCoef(**options),
    }
    return MetricCollection({name: factories[name]() for name in names})


def aggregate_windows(
    document_index: torch.Tensor, logits: torch.Tensor, how: Literal["mean", "max"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The documents (sorted) and, per document, the mean or element-wise max of its windows' logits."""
    documents, position = document_index.unique(return_inverse=True)
    aggregated = torch.zeros(len(documents), logits.shape[-1], dtype=logits.dtype, device=logits.device)
    reduce = {"mean": "mean", "max": "amax"}[how]
    aggregated.scatter_reduce_(0, position[:, None].expand_as(logits), logits, reduce, include_self=False)
    return documents, aggregated
