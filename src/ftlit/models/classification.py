"""SequenceClassificationModule: an encoder with a classification (or regression) head, judged by its task's metrics."""

import matplotlib
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from peft import TaskType
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ftlit.data.tasks import build_metrics
from ftlit.models.base import TransformerModule

matplotlib.use("Agg")  # figures are rendered for TensorBoard only, never shown


def metric_suffix(split: str, first: bool) -> str:
    """``val/accuracy`` for the main validation set, ``val/accuracy_mismatched`` for MNLI's second one."""
    return "" if first else "_" + split.removeprefix("validation_")


class SequenceClassificationModule(TransformerModule):
    """Fine-tunes ``AutoModelForSequenceClassification``; the task, labels and metrics come from the data module."""

    task_type = TaskType.SEQ_CLS

    def build_model(self) -> PreTrainedModel:
        datamodule = self.trainer.datamodule
        self.spec = datamodule.spec
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
        # One metric collection per evaluated set (MNLI: matched and mismatched), synced across devices
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{split}": build_metrics(self.spec.metrics, num_classes)
                for stage, splits in self.split_names.items()
                for split in splits
            }
        )
        if not self.spec.regression:
            self.confusion = nn.ModuleDict({key: MulticlassConfusionMatrix(num_classes) for key in self.metrics})
        return self.load_model(AutoModelForSequenceClassification, **head)

    @property
    def monitor(self) -> str:
        return self.trainer.datamodule.spec.monitor

    # ---------------------------------------------------------------------------------------------- evaluation
    def _predictions(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.squeeze(-1) if self.spec.regression else logits.argmax(-1)

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor], dataloader_idx: int) -> None:
        split = self.split_names[stage][dataloader_idx]
        key = f"{stage}_{split}"
        output = self.model(**batch)
        predictions = self._predictions(output.logits)
        self.metrics[key].update(predictions, batch["labels"])
        if not self.spec.regression:
            self.confusion[key].update(predictions, batch["labels"])
        suffix = metric_suffix(split, dataloader_idx == 0)
        self.log(f"{stage}/loss{suffix}", output.loss, sync_dist=True, add_dataloader_idx=False)

    def _eval_epoch_end(self, stage: str) -> None:
        for index, split in enumerate(self.split_names[stage]):
            key = f"{stage}_{split}"
            suffix = metric_suffix(split, index == 0)
            collection: MetricCollection = self.metrics[key]
            for name, value in collection.compute().items():  # synced across devices by torchmetrics
                self.log(f"{stage}/{name}{suffix}", value, sync_dist=True)
            collection.reset()
            if not self.spec.regression:
                self._log_confusion_matrix(f"{stage}/confusion_matrix{suffix}", self.confusion[key])

    def _log_confusion_matrix(self, tag: str, confusion: MulticlassConfusionMatrix) -> None:
        if confusion.update_count and isinstance(self.logger, TensorBoardLogger):
            matrix = confusion.compute()  # on every device: computing syncs them
            if self.trainer.is_global_zero:
                figure, _ = confusion.plot(val=matrix, labels=self.label_names)
                self.logger.experiment.add_figure(tag, figure, global_step=self.global_step)
        confusion.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch, 0)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ---------------------------------------------------------------------------------------------- predict
    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> list[dict]:
        logits = self.model(**batch).logits.float()
        if self.spec.regression:
            return [{"score": score} for score in logits.squeeze(-1).tolist()]
        probabilities = logits.softmax(-1)
        return [
            {
                "label": self.label_names[row.argmax().item()],
                "score": row.max().item(),
                "probabilities": dict(zip(self.label_names, row.tolist())),
            }
            for row in probabilities
        ]

    def prediction_records(self, predictions: list, batch_indices: list[list[int]]) -> dict[int, dict]:
        """Each input row (of this device's share) with its prediction added, by row index."""
        rows = self.trainer.datamodule.predict_rows
        return {
            index: {**rows[index], **prediction}
            for indices, batch in zip(batch_indices, predictions)
            for index, prediction in zip(indices, batch)
        }
