"""Evaluation written once for every task: per-feature outputs collected batch by batch, gathered from every device
in feature order, and the result of scoring them."""

from dataclasses import dataclass, field

import torch
from lightning import LightningModule


@dataclass
class EvalResult:
    """A scored split: its metrics, its size, what the task keeps of it for its output files and figures
    (``details``), and what results.json reports beside the metrics (``report``, e.g. a per-label table)."""

    split: str
    metrics: dict[str, float]
    num_examples: int
    num_features: int
    details: dict = field(default_factory=dict)
    eval_time_s: float = 0.0
    report: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The ``eval`` section of results.json."""
        return {
            "split": self.split,
            "num_examples": self.num_examples,
            "num_features": self.num_features,
            "eval_time_s": round(self.eval_time_s, 3),
            "ms_per_example": round(1000 * self.eval_time_s / max(self.num_examples, 1), 3),
            **self.report,
        }


class FeatureOutputs:
    """The outputs of one split's features on this device (each tensor one row per feature), batch by batch."""

    def __init__(self) -> None:
        self.index: list[torch.Tensor] = []
        self.outputs: dict[str, list[torch.Tensor]] = {}

    def add(self, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
        self.index.append(feature_index)
        for name, tensor in outputs.items():
            self.outputs.setdefault(name, []).append(tensor.detach())

    def gather(self, module: LightningModule) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Every device's outputs, on every device, sorted by feature index (each feature was evaluated on exactly
        one device; features never evaluated, e.g. under ``limit_val_batches``, are absent)."""
        local = {name: torch.cat(parts) for name, parts in self.outputs.items()}
        if self.index:
            local["feature_index"] = torch.cat(self.index)
        self.index, self.outputs = [], {}
        gathered = gather_rows(module, local)
        index = gathered.pop("feature_index", torch.empty(0, dtype=torch.long, device=module.device))
        order = index.argsort()
        return index[order], {name: tensor[order] for name, tensor in gathered.items()}


def gather_rows(module: LightningModule, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The rows of ``tensors`` from every device, concatenated in rank order. Devices may hold different numbers
    of rows, or none (then ``tensors`` is empty there): sizes, shapes and dtypes are exchanged first, and each
    tensor is padded to the largest share for ``all_gather``."""
    trainer = module._trainer  # (None outside a Trainer: ftlit serve's predictions)
    if trainer is None or trainer.world_size == 1:
        return tensors
    shares: list[dict] = [{}] * trainer.world_size
    layout = {name: (len(t), tuple(t.shape[1:]), t.dtype) for name, t in tensors.items()}
    torch.distributed.all_gather_object(shares, layout)
    known = {name: (shape, dtype) for share in shares for name, (_, shape, dtype) in share.items()}
    gathered = {}
    for name, (shape, dtype) in sorted(known.items()):
        sizes = [share[name][0] if name in share else 0 for share in shares]
        local = tensors.get(name, torch.empty((0, *shape), dtype=dtype, device=module.device)).to(module.device)
        padded = torch.zeros((max(sizes), *shape), dtype=dtype, device=module.device)
        padded[: len(local)] = local
        everyone = module.all_gather(padded)  # (world_size, max(sizes), *shape)
        gathered[name] = torch.cat([everyone[rank, :size] for rank, size in enumerate(sizes)])
    return gathered
