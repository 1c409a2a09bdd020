"""Evaluation written once for every task: per-feature outputs collected batch by batch, gathered from every device
in feature order, the result of scoring them, and the loop that runs the task's hooks over validate, test and
predict (``EvaluationLoop``)."""

import time
from dataclasses import dataclass, field

import torch
from lightning import LightningModule

from ftlit.contract import DataContract, EvalStage, metric_suffix
from ftlit.training.loggers import log_figures


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


class EvaluationLoop:
    """The validation, test and predict loops of a LightningModule, written once: each batch goes to the task's
    ``collect`` hook; at the end of each split its gathered outputs go to ``evaluate`` (scores, logged as
    ``<stage>/<metric>``, and figures) or ``predict_records``. The first validation split's result is ``last_eval``
    (for results.json and the files it writes); a prediction's records are ``predictions``."""

    contract: DataContract | None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last_eval: EvalResult | None = None  # the first split's result of the latest evaluation
        self.predictions: list[dict] | None = None  # one record per input row of the latest prediction
        self._outputs: dict[str, FeatureOutputs] = {}

    def log_eval_loss(self, stage: EvalStage, split: str, loss: torch.Tensor | None) -> None:
        """An evaluated batch's loss, as ``<stage>/loss`` (per split); none from ONNX Runtime, which has none."""
        if loss is not None and stage != "predict":  # (a labelled predict file: Lightning logs nothing in predict)
            position = self.contract.splits(stage).index(split)
            self.log(
                f"{stage}/loss{metric_suffix(stage, split, position)}", loss, sync_dist=True, add_dataloader_idx=False
            )

    def _start(self, stage: EvalStage) -> None:
        self._outputs = {split: FeatureOutputs() for split in self.contract.splits(stage)}
        self._started = time.perf_counter()

    def _step(self, stage: EvalStage, batch: dict[str, torch.Tensor], dataloader_idx: int) -> None:
        split = self.contract.splits(stage)[dataloader_idx]
        feature_index = batch.pop("feature_index")
        self._outputs[split].add(feature_index, self.collect(stage, split, batch))

    def _end(self, stage: EvalStage) -> None:
        """Gather every split's outputs; the first device scores them and every device logs the scores."""
        for position, split in enumerate(self.contract.splits(stage)):
            feature_index, outputs = self._outputs[split].gather(self)  # on every device
            if stage == "predict":
                records = self.predict_records(split, feature_index, outputs) if self.trainer.is_global_zero else None
                self.predictions = records
                continue
            result = self.evaluate(split, feature_index, outputs) if self.trainer.is_global_zero else None
            metrics = self.trainer.strategy.broadcast(result.metrics if result else None, src=0)
            suffix = metric_suffix(stage, split, position)
            for name, value in metrics.items():
                # the same number on every device; sync_dist keeps Lightning's epoch-level checks satisfied
                self.log(f"{stage}/{name}{suffix}", float(value), sync_dist=True)
            if result is None or self.trainer.sanity_checking:  # sanity batches: scored (so scoring is checked)
                continue
            if self.trainer.loggers:
                figures = self.figures(result, f"{stage}{suffix}").items()
                log_figures(self.trainer, {f"{stage}/{name}{suffix}": f for name, f in figures}, self.global_step)
            if position == 0:
                result.eval_time_s = time.perf_counter() - self._started
                self.last_eval = result
        self._outputs = {}

    def on_validation_epoch_start(self) -> None:
        self._start("val")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step("val", batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._end("val")

    def on_test_epoch_start(self) -> None:
        self._start("test")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step("test", batch, 0)

    def on_test_epoch_end(self) -> None:
        self._end("test")

    def on_predict_epoch_start(self) -> None:
        self._start("predict")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step("predict", batch, 0)

    def on_predict_epoch_end(self) -> None:
        self._end("predict")

    def eval_summary(self) -> dict:
        """The ``eval`` section of results.json: the latest evaluation's size and timing."""
        return self.last_eval.summary() if self.last_eval else {}

    def output_files(self) -> dict[str, object]:
        """The files the latest evaluation writes beside results.json."""
        return self.result_files(self.last_eval) if self.last_eval else {}
