"""How far predicted probabilities can be trusted: ECE, Brier score, NLL, reliability diagrams, and temperature
scaling (Guo et al., 2017: one scalar T, fitted on validation logits, that divides every logit).

Pure functions over (N, C) logits and (N,) class ids.
"""

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torchmetrics.functional.classification import multiclass_calibration_error
from transformers import PreTrainedModel

from ftlit.tasks.classification.head import rescale_outputs

ECE_BINS = 15


def calibration_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Expected calibration error (top-label, 15 equal-width bins, through torchmetrics), Brier score (squared
    distance of the probability vector from the one-hot label, summed over classes) and negative log-likelihood."""
    logits = logits.float()
    probabilities = logits.softmax(-1)
    one_hot = F.one_hot(labels, logits.shape[-1]).float()
    ece = multiclass_calibration_error(probabilities, labels, logits.shape[-1], n_bins=ECE_BINS, norm="l1")
    return {
        "ece": ece.item(),
        "brier": (probabilities - one_hot).pow(2).sum(-1).mean().item(),
        "nll": F.cross_entropy(logits, labels).item(),
    }


def reliability_bins(
    logits: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per equal-width confidence bin: mean confidence, accuracy and number of predictions (empty bins: 0, 0, 0).
    ECE is the count-weighted mean of |accuracy − confidence| over these bins."""
    probabilities = logits.float().softmax(-1)
    confidence, predicted = probabilities.max(-1)
    correct = (predicted == labels).float()
    # bins are (lower, upper]; a confidence of exactly 0 cannot occur for a top-label probability
    bin_of = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(bin_of, minlength=n_bins).float()
    sums = torch.zeros(n_bins).index_add_(0, bin_of, confidence), torch.zeros(n_bins).index_add_(0, bin_of, correct)
    mean_confidence, accuracy = (total / counts.clamp(min=1) for total in sums)
    return mean_confidence, accuracy, counts


def reliability_diagram(logits: torch.Tensor, labels: torch.Tensor, title: str = "") -> Figure:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, and the ECE."""
    confidence, accuracy, counts = reliability_bins(logits, labels)
    ece = ((counts * (accuracy - confidence).abs()).sum() / counts.sum()).item()  # the bins' own ECE
    centres = (torch.arange(ECE_BINS) + 0.5) / ECE_BINS
    filled = counts > 0
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.add_subplot()
    axes.bar(centres[filled], accuracy[filled], width=1 / ECE_BINS, edgecolor="black", label="accuracy")
    axes.bar(
        centres[filled],
        (confidence - accuracy)[filled],
        bottom=accuracy[filled],
        width=1 / ECE_BINS,
        color="red",
        alpha=0.3,
        label="gap to confidence",
    )
    axes.plot([0, 1], [0, 1], "k--", linewidth=1)
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"{title} ECE {ece:.4f}".strip())
    axes.legend(loc="upper left")
    return figure


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T > 0 that minimises the NLL of ``softmax(logits / T)``. T > 1 softens over-confident
    predictions; the predicted classes never change."""
    # clones: tensors from validation are inference-mode tensors, which autograd refuses
    logits, labels = logits.detach().float().clone(), labels.clone()
    log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(nll)
    return log_t.exp().item()


def apply_temperature(model: PreTrainedModel, temperature: float) -> None:
    """Divide the classification head's output layer by ``temperature``, so that every user of the model (the
    export, ``transformers.pipeline``) gets ``logits / T``; ``config.calibration_temperature`` records it."""
    rescale_outputs(model, 1 / temperature)
    model.config.calibration_temperature = getattr(model.config, "calibration_temperature", 1.0) * temperature
