"""The figures a classification evaluation hands the loggers: a confusion matrix and a reliability diagram for one
label per text, precision / recall / F1 per label for several."""

from collections.abc import Sequence

import torch
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torchmetrics.classification import MulticlassConfusionMatrix

from ftlit.tasks.classification.calibration import reliability_diagram
from ftlit.training.evaluation import EvalResult

#: Above this many labels no confusion matrix (or per-label figure) is drawn
MAX_CONFUSION_LABELS = 50


def evaluation_figures(
    problem_type: str, result: EvalResult, label_names: Sequence[str], title: str
) -> dict[str, Figure]:
    """The figures of ``result`` by name (none for a regression)."""
    if problem_type == "regression":
        return {}
    if problem_type == "multi_label":
        table = result.report["per_label"]
        if len(table) > MAX_CONFUSION_LABELS:
            return {}
        return {"per_label": per_label_figure(table, title)}
    logits, labels = result.details["logits"], result.details["labels"]
    figures = {"reliability": reliability_diagram(logits.cpu(), labels.cpu(), title=title)}
    names = list(label_names)
    if len(names) > MAX_CONFUSION_LABELS:  # an n × n figure: unreadable, and slow to draw for thousands
        rank_zero_info(f"No confusion matrix figure: {len(names)} labels (at most {MAX_CONFUSION_LABELS} drawn).")
        return figures
    confusion = MulticlassConfusionMatrix(len(names)).to(logits.device)
    figures["confusion_matrix"], _ = confusion.plot(val=confusion(logits.argmax(-1), labels), labels=names)
    return figures


def per_label_figure(table: dict[str, dict[str, float]], title: str) -> Figure:
    """Precision, recall and F1 of each label, as horizontal bars, labels in data order, with their support."""
    names = list(table)
    figure = Figure(figsize=(7, 1.5 + 0.28 * len(names)))
    axes = figure.add_subplot()
    positions = torch.arange(len(names)).float()
    for offset, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1")):
        axes.barh(positions + offset, [table[name][key] for name in names], height=0.27, label=key)
    axes.set_yticks(positions, [f"{name} ({table[name]['support']})" for name in names])
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), title=f"{title} per label".strip())
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure
