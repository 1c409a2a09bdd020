"""SequenceClassificationModule: an encoder with a classification (or regression) head, judged by its task's metrics
and by how well calibrated its probabilities are; long documents are judged per document over their windows."""

from typing import Literal

import torch
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from peft import TaskType
from torchmetrics.classification import MulticlassConfusionMatrix
from transformers import AutoModelForSequenceClassification

from ftlit.contract import EvalStage, metric_suffix
from ftlit.errors import FtlitError
from ftlit.tasks.classification.calibration import (
    apply_temperature,
    calibration_scores,
    fit_temperature,
    reliability_diagram,
)
from ftlit.tasks.classification.contract import ClassificationContract, DocumentsEvalSet
from ftlit.tasks.classification.metrics import aggregate_windows, build_metrics
from ftlit.training.evaluation import EvalResult
from ftlit.training.module import TransformerModule

#: Above this many labels no confusion matrix is drawn
MAX_CONFUSION_LABELS = 50


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

    auto_class = AutoModelForSequenceClassification
    task_type = TaskType.SEQ_CLS
    contract: ClassificationContract

    def __init__(
        self,
        model_name_or_path: str,
        window_aggregation: Literal["mean", "max"] = "mean",
        calibrate: Literal["temperature"] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, **kwargs)
        self.calibration: dict | None = None

    @property
    def monitor(self) -> str:
        return self.contract.spec.monitor

    def head_settings(self) -> dict:
        spec, labels = self.contract.spec, self.contract.label_names
        if self.hparams.calibrate and spec.regression:
            raise FtlitError(f"--model.calibrate calibrates class probabilities; {spec.name} is a regression.")
        if spec.regression:
            return {"num_labels": 1, "problem_type": "regression"}
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
            "problem_type": "single_label_classification",
        }

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output = self.model(**batch)
        if "labels" not in batch:  # predict
            return {"logits": output.logits.float()}
        position = self.contract.splits(stage).index(split)
        self.log(f"{stage}/loss{metric_suffix(stage, split, position)}", output.loss, sync_dist=True,
                 add_dataloader_idx=False)  # fmt: skip
        return {"logits": output.logits.float(), "labels": batch["labels"]}

    def _documents(self, split: str, feature_index: torch.Tensor, outputs: dict) -> tuple[torch.Tensor, ...]:
        """The evaluated documents (sorted), their logits aggregated over their windows, and their labels."""
        eval_set: DocumentsEvalSet = self.contract.eval_sets[split]
        document_index = torch.as_tensor(eval_set.document_index, device=feature_index.device)[feature_index]
        documents, logits = aggregate_windows(document_index, outputs["logits"], self.hparams.window_aggregation)
        labels = None
        if "labels" in outputs:  # every window carries its document's label
            labels = torch.empty(len(documents), dtype=outputs["labels"].dtype, device=documents.device)
            labels[torch.searchsorted(documents, document_index)] = outputs["labels"]
        return documents, logits, labels

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        _, logits, labels = self._documents(split, feature_index, outputs)
        spec = self.contract.spec
        metrics = build_metrics(spec.metrics, self.contract.num_outputs, sync_on_compute=False).to(logits.device)
        predictions = logits.squeeze(-1) if spec.regression else logits.argmax(-1)
        metrics.update(predictions, labels)
        scores = {name: value.item() for name, value in metrics.compute().items()}
        if not spec.regression:
            scores.update(calibration_scores(logits, labels))
        eval_set = self.contract.eval_sets[split]
        return EvalResult(split, scores, num_examples=len(labels), num_features=eval_set.num_features,
                          details={"logits": logits, "labels": labels})  # fmt: skip

    def figures(self, result: EvalResult, title: str) -> dict[str, Figure]:
        if self.contract.spec.regression:
            return {}
        logits, labels = result.details["logits"], result.details["labels"]
        figures = {"reliability": reliability_diagram(logits.cpu(), labels.cpu(), title=title)}
        names = list(self.contract.label_names)
        if len(names) > MAX_CONFUSION_LABELS:  # an n × n figure: unreadable, and slow to draw for thousands
            rank_zero_info(f"No confusion matrix figure: {len(names)} labels (at most {MAX_CONFUSION_LABELS} drawn).")
            return figures
        confusion = MulticlassConfusionMatrix(len(names)).to(logits.device)
        figures["confusion_matrix"], _ = confusion.plot(val=confusion(logits.argmax(-1), labels), labels=names)
        return figures

    # ---------------------------------------------------------------------------------------------- calibration
    def finish_training(self) -> None:
        """Temperature scaling, fitted on the logits of the (first) validation set's last evaluation (the best
        checkpoint's, re-evaluated by the CLI): the temperature is built into the model before it is exported."""
        if self.hparams.calibrate != "temperature" or self.last_eval is None:
            return
        logits, labels = self.last_eval.details["logits"].cpu(), self.last_eval.details["labels"].cpu()
        temperature = fit_temperature(logits, labels)
        before, after = calibration_scores(logits, labels), calibration_scores(logits / temperature, labels)
        apply_temperature(self.model, temperature)
        rank_zero_info(
            f"Temperature scaling: T = {temperature:.4f}; validation ECE {before['ece']:.4f} → {after['ece']:.4f}, "
            f"NLL {before['nll']:.4f} → {after['nll']:.4f}"
        )
        self.calibration = {"temperature": round(temperature, 6), "before": before, "after": after}

    def describe_model(self) -> dict:
        described = super().describe_model()
        if self.calibration is not None:
            described["calibration"] = self.calibration
        return described

    # ---------------------------------------------------------------------------------------------- predict
    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """Each input row with its prediction (from its windows' aggregated logits)."""
        documents, logits, _ = self._documents(split, feature_index, outputs)
        rows = self.contract.eval_sets[split].rows
        if self.contract.spec.regression:
            scores = [{"score": score} for score in logits.squeeze(-1).tolist()]
        else:
            names = self.contract.label_names
            scores = [
                {
                    "label": names[row.argmax().item()],
                    "score": row.max().item(),
                    "probabilities": dict(zip(names, row.tolist())),
                }
                for row in logits.softmax(-1)
            ]
        return [{**rows[index], **score} for index, score in zip(documents.tolist(), scores)]
