"""Class weights for imbalanced labels: the per-class weights of cross-entropy, or BCE's per-label ``pos_weight``."""

from typing import Literal

import torch

from ftlit.errors import FtlitError

#: What ``--model.class_weights`` takes: inverse frequency, one weight per label in order, or weights by name
ClassWeights = Literal["balanced"] | list[float] | dict[str, float]


def class_weights(
    setting: ClassWeights,
    label_names: tuple[str, ...],
    counts: tuple[int, ...] | None,
    multi_label_examples: int | None = None,
) -> torch.Tensor | None:
    """One weight per label. ``balanced``, single-label: the inverse of each class's count among the training
    examples, normalised to mean 1; multi-label (``multi_label_examples`` training texts): each label's negatives
    over its positives, ``(N − n) / n``, so that its positives weigh as much as its negatives (PyTorch's advice for
    ``pos_weight``). A label never seen counts as seen once. None when the counts are not known (an evaluation
    without training: the weights come from the checkpoint). Explicit weights must be positive; labels a mapping
    leaves out weigh 1."""
    names = list(label_names)
    if setting == "balanced":
        if counts is None:
            return None
        seen = torch.tensor(counts, dtype=torch.float64).clamp(min=1)
        if multi_label_examples is not None:
            return ((multi_label_examples - seen).clamp(min=0) / seen).float()
        inverse = 1.0 / seen
        return (inverse / inverse.mean()).float()
    if isinstance(setting, dict):
        unknown = sorted(set(setting) - set(names))
        if unknown:
            raise FtlitError(f"--model.class_weights names unknown label(s) {unknown}; the labels are {names}.")
        setting = [setting.get(name, 1.0) for name in names]
    if len(setting) != len(names):
        raise FtlitError(
            f"--model.class_weights has {len(setting)} weight(s) for {len(names)} labels {names}: give one per "
            "label in this order, a mapping by name, or balanced."
        )
    if not all(isinstance(w, int | float) and w > 0 for w in setting):
        raise FtlitError(f"--model.class_weights must be positive numbers, got {setting}.")
    return torch.tensor(setting, dtype=torch.float32)
