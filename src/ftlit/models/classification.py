"""SequenceClassificationModule: an encoder with a classification (or regression) head, judged by its task's metrics
and by how well calibrated its probabilities are; long documents are judged per document over their windows."""

import time
from typing import Literal

import matplotlib
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from peft import TaskType
from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.utilities import dim_zero_cat
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ftlit.calibration import apply_temperature, calibration_scores, fit_temperature, reliability_diagram
from ftlit.data.tasks import build_metrics
from ftlit.errors import FtlitError
from ftlit.models.base import TransformerModule

matplotlib.use("Agg")  # figures are rendered for TensorBoard only, never shown


def metric_suffix(split: str, first: bool) -> str:
    """``val/accuracy`` for the main validation set, ``val/accuracy_mismatched`` for MNLI's second one."""
    return "" if first else "_" + split.removeprefix("validation_")


def aggregate_windows(
    document_index: torch.Tensor, logits: torch.Tensor, how: Literal["mean", "max"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The documents (sorted) and, per document, the mean or element-wise max of its windows' logits."""
    documents, position = document_index.unique(return_inverse=True)
    aggregated = torch.zeros(len(documents), logits.shape[-1], dtype=logits.dtype, device=logits.device)
    reduce = {"mean": "mean", "max": "amax"}[how]
    aggregated.scatter_reduce_(0, position[:, None].expand_as(logits), logits, reduce, include_self=False)
    return documents, aggregated


class DocumentLogits(Metric):
    """Collects the logits and labels of every evaluated window with its document; ``compute`` gathers them from all
    devices (windows of one document may be evaluated on different ones) and returns, per document, its index,
    aggregated logits and label."""

    full_state_update = False

    def __init__(self, how: Literal["mean", "max"]) -> None:
        super().__init__()
        self.how = how
        for name in ("document_index", "logits", "labels"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, document_index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        self.document_index.append(document_index)
        self.logits.append(logits.float())
        self.labels.append(labels if labels is not None else torch.zeros_like(document_index))

    def compute(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        document_index, labels = dim_zero_cat(self.document_index), dim_zero_cat(self.labels)
        documents, logits = aggregate_windows(document_index, dim_zero_cat(self.logits), self.how)
        document_labels = torch.empty(len(documents), dtype=labels.dtype, device=labels.device)
        document_labels[torch.searchsorted(documents, document_index)] = labels  # every window has its text's label
        return documents, logits, document_labels


class SequenceClassificationModule(TransformerModule):
    """Fine-tunes ``AutoModelForSequenceClassification``; the task, labels and metrics come from the data module.

    Args:
        window_aggregation: with ``--data.long_text window``, how a document's window logits become its logits:
            their ``mean``, or their element-wise ``max`` (a document is positive if any part of it is).
        calibrate: ``temperature``: after training, fit one temperature on the (first) validation set, build it
            into the exported model's output layer (its probabilities are then calibrated) and report the
            calibration before and after in results.json.
        Other arguments: see TransformerModule.
    """

    task_type = TaskType.SEQ_CLS

    def __init__(
        self,
        model_name_or_path: str,
        window_aggregation: Literal["mean", "max"] = "mean",
        calibrate: Literal["temperature"] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, **kwargs)
        self._last_eval: dict | None = None
        self.calibration: dict | None = None

    def build_model(self) -> PreTrainedModel:
        datamodule = self.trainer.datamodule
        self.spec = datamodule.spec
        if self.hparams.calibrate and self.spec.regression:
            raise FtlitError(f"--model.calibrate calibrates class probabilities; {self.spec.name} is a regression.")
        self.label_names = datamodule.label_names
        self.split_names = {"val": datamodule.validation_names, "test": ["test"]}
        if self.spec.regression:
            head = {"num_labels": 1, "problem_type": "regression"}
        else:
            head = {
                "num_labels": len(self.label_names),
                "id2label": dict(enumerate(self.label_names)),
                "label2id": {name: i for i, name in enumerate(self.label_names)},
                "problem_type": "single_label_classification",
            }
        num_classes = head["num_labels"]
        keys = [f"{stage}_{split}" for stage, splits in self.split_names.items() for split in splits]
        self.documents = nn.ModuleDict({key: DocumentLogits(self.hparams.window_aggregation) for key in keys})
        self.predicted = DocumentLogits(self.hparams.window_aggregation)
        # Every device computes the metrics on all documents (DocumentLogits gathered them): no second sync
        self.metrics = nn.ModuleDict(
            {key: build_metrics(self.spec.metrics, num_classes, sync_on_compute=False) for key in keys}
        )
        return self.load_model(AutoModelForSequenceClassification, **head)

    @property
    def monitor(self) -> str:
        return self.trainer.datamodule.spec.monitor

    # ---------------------------------------------------------------------------------------------- evaluation
    def _predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.squeeze(-1) if self.spec.regression else logits.argmax(-1)

    def _eval_epoch_start(self) -> None:
        self._eval_started = time.perf_counter()

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor], dataloader_idx: int) -> None:
        split = self.split_names[stage][dataloader_idx]
        document_index = batch.pop("document_index")
        output = self.model(**batch)
        self.documents[f"{stage}_{split}"].update(document_index, output.logits, batch["labels"])
        suffix = metric_suffix(split, dataloader_idx == 0)
        self.log(f"{stage}/loss{suffix}", output.loss, sync_dist=True, add_dataloader_idx=False)

    def _eval_epoch_end(self, stage: str) -> None:
        for index, split in enumerate(self.split_names[stage]):
            key = f"{stage}_{split}"
            suffix = metric_suffix(split, index == 0)
            _, logits, labels = self.documents[key].compute()  # gathered from every device
            self.documents[key].reset()
            collection = self.metrics[key]
            collection.update(self._predictions(logits), labels)
            scores = {name: value.item() for name, value in collection.compute().items()}
            collection.reset()
            if not self.spec.regression:
                scores.update(calibration_scores(logits, labels))
                self._log_figures(stage, suffix, logits, labels)
            for name, value in scores.items():
                # the same number on every device; sync_dist keeps Lightning's epoch-level checks satisfied
                self.log(f"{stage}/{name}{suffix}", value, sync_dist=True)
            if index == 0:
                elapsed = time.perf_counter() - self._eval_started
                self._last_eval = {"logits": logits, "labels": labels, "eval_time_s": elapsed,
                                   "num_features": len(self.trainer.datamodule.datasets[split])}  # fmt: skip

    def _log_figures(self, stage: str, suffix: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if not (self.trainer.is_global_zero and isinstance(self.logger, TensorBoardLogger)):
            return
        confusion = MulticlassConfusionMatrix(len(self.label_names)).to(logits.device)
        figure, _ = confusion.plot(val=confusion(logits.argmax(-1), labels), labels=self.label_names)
        self.logger.experiment.add_figure(f"{stage}/confusion_matrix{suffix}", figure, global_step=self.global_step)
        figure = reliability_diagram(logits.cpu(), labels.cpu(), title=f"{stage}{suffix}")
        self.logger.experiment.add_figure(f"{stage}/reliability{suffix}", figure, global_step=self.global_step)

    def on_validation_epoch_start(self) -> None:
        self._eval_epoch_start()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_epoch_start()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch, 0)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ---------------------------------------------------------------------------------------------- calibration
    def finish_training(self) -> dict:
        """Temperature scaling, fitted on the logits of the (first) validation set's last evaluation (the best
        checkpoint's, re-evaluated by the CLI): the temperature is built into the model before it is exported."""
        if self.hparams.calibrate != "temperature" or self._last_eval is None:
            return {}
        logits, labels = self._last_eval["logits"].cpu(), self._last_eval["labels"].cpu()
        temperature = fit_temperature(logits, labels)
        before, after = calibration_scores(logits, labels), calibration_scores(logits / temperature, labels)
        apply_temperature(self.model, temperature)
        rank_zero_info(
            f"Temperature scaling: T = {temperature:.4f}; validation ECE {before['ece']:.4f} → {after['ece']:.4f}, "
            f"NLL {before['nll']:.4f} → {after['nll']:.4f}"
        )
        self.calibration = {"temperature": round(temperature, 6), "before": before, "after": after}
        return {"calibration": self.calibration}

    # ---------------------------------------------------------------------------------------------- outputs
    def summary(self) -> dict:
        summary = self.parameter_counts()
        if self._last_eval is not None:
            documents, elapsed = len(self._last_eval["labels"]), self._last_eval["eval_time_s"]
            summary.update(
                num_examples=documents,
                num_features=self._last_eval["num_features"],
                eval_time_s=round(elapsed, 3),
                ms_per_example=round(1000 * elapsed / max(documents, 1), 3),
            )
        return summary

    # ---------------------------------------------------------------------------------------------- predict
    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        document_index = batch.pop("document_index")
        self.predicted.update(document_index, self.model(**batch).logits)

    def prediction_records(self, predictions: list, batch_indices: list[list[int]]) -> dict[int, dict]:
        """Each input row with its prediction (from its windows' aggregated logits), on the first device."""
        documents, logits, _ = self.predicted.compute()  # gathered from every device
        self.predicted.reset()
        if not self.trainer.is_global_zero:
            return {}
        rows = self.trainer.datamodule.rows["predict"]
        if self.spec.regression:
            scores = [{"score": score} for score in logits.squeeze(-1).tolist()]
        else:
            scores = [
                {
                    "label": self.label_names[row.argmax().item()],
                    "score": row.max().item(),
                    "probabilities": dict(zip(self.label_names, row.tolist())),
                }
                for row in logits.softmax(-1)
            ]
        return {index: {**rows[index], **score} for index, score in zip(documents.tolist(), scores)}
