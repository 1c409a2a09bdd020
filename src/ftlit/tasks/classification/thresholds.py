"""Multi-label decision thresholds: the global threshold, or one per label, that maximises macro-F1 on held-out
data. A label is predicted when its probability is above its threshold."""

import torch

#: The thresholds tried: 0.01, 0.02, …, 0.99
THRESHOLD_GRID = torch.arange(1, 100, dtype=torch.float64) / 100
DEFAULT_THRESHOLD = 0.5


def f1_by_threshold(probabilities: torch.Tensor, labels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(thresholds, labels): each label's F1 when predicted above each threshold of ``grid`` (0 when it has
    neither gold nor predicted examples)."""
    gold = labels.bool()
    tp = torch.stack([((probabilities > t) & gold).sum(0) for t in grid]).double()
    predicted = torch.stack([(probabilities > t).sum(0) for t in grid]).double()
    denominator = predicted + gold.sum(0).double()  # 2·tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))


def tune_thresholds(
    probabilities: torch.Tensor, labels: torch.Tensor, per_label: bool, grid: torch.Tensor = THRESHOLD_GRID
) -> torch.Tensor:
    """The thresholds, one per label, that maximise macro-F1: the same for every label (``per_label`` False), or
    each label's own (maximising each label's F1 maximises their mean). Among equally good thresholds the one
    nearest the default 0.5 is kept, so a label without any signal keeps 0.5."""
    f1 = f1_by_threshold(probabilities.double(), labels, grid)
    scores = f1.mean(1, keepdim=True) if not per_label else f1  # (thresholds, 1 or labels)
    best = scores >= scores.max(0, keepdim=True).values - 1e-12
    distance = torch.where(best, (grid - DEFAULT_THRESHOLD).abs()[:, None], torch.inf)
    chosen = grid[distance.argmin(0)]
    return chosen.expand(labels.shape[1]).clone() if not per_label else chosen
