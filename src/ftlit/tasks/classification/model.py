"""SequenceClassificationModule: an encoder with a classification head (one label per text, or any number) or a
regression head, judged by its task's metrics, per label, and by how well calibrated its probabilities are; long
documents are judged per document over their windows."""

import copy
import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from matplotlib.figure import Figure
from transformers import AutoModelForSequenceClassification

from ftlit.contract import EvalStage
from ftlit.errors import FtlitError
from ftlit.settings import check_range
from ftlit.tasks.classification.calibration import (
    apply_temperature,
    calibration_scores,
    fit_temperature,
)
from ftlit.tasks.classification.contract import ClassificationContract, DocumentsEvalSet
from ftlit.tasks.classification.figures import evaluation_figures
from ftlit.tasks.classification.head import rescale_outputs
from ftlit.tasks.classification.metrics import (
    aggregate_windows,
    build_metrics,
    decision_probabilities,
    per_label_table,
)
from ftlit.tasks.classification.presets import HF_PROBLEM_TYPES
from ftlit.tasks.classification.thresholds import DEFAULT_THRESHOLD, tune_thresholds
from ftlit.tasks.classification.weights import ClassWeights, class_weights
from ftlit.training.evaluation import EvalResult
from ftlit.training.module import TransformerModule

#: Above this many labels no confusion matrix (or per-label figure) is drawn


class SequenceClassificationModule(TransformerModule):
    """Fine-tunes ``AutoModelForSequenceClassification``; the task, labels and metrics come from the data module.

    Args:
        window_aggregation: with ``--data.long_text window``, how a document's window logits become its logits:
            their ``mean``, or their element-wise ``max`` (a document is positive if any part of it is).
        calibrate: ``temperature``: after training, fit one temperature on the (first) validation set, build it
            into the exported model's output layer (its probabilities are then calibrated) and report the
            calibration before and after in results.json. Single-label classification only.
        class_weights: for imbalanced labels: ``balanced`` (the inverse of each label's frequency among the
            training examples, normalised to mean 1), a list with one weight per label in label order, or a
            mapping from label name to weight (others 1). They weight cross-entropy per class, or multi-label
            BCE's positive examples per label (``pos_weight``).
        threshold: multi-label only: a label is predicted when its probability is above this (strictly between 0
            and 1); null: the thresholds of the fine-tuned model (an ftlit export's ``config.thresholds``) when it
            is evaluated or predicts, else 0.5; ``tune``: after training, the one threshold, or with ``per_label``
            one per label, that maximises macro-F1 on the (first) validation set. The thresholds go into the
            export's config (``thresholds``), which ``ftlit predict`` applies; results.json reports the metrics
            at the thresholds used in training (0.5 when tuning) and F1 before and after tuning.
        standardize_targets: regression only: train on the targets standardised with the training set's mean and
            standard deviation (a head starting near 0 reaches targets such as 0-5 in far fewer steps), while
            every prediction, metric and the export stay in the targets' own units (the export's output layer
            puts them back: ``config.target_standardization``).
        Other arguments: see TransformerModule.
    """

    auto_class = AutoModelForSequenceClassification
    task_type = "SEQ_CLS"
    contract: ClassificationContract

    # the export holds what they did: calibration and standardisation are in its weights, tuned thresholds in its
    # config; class weights shape only the loss
    training_only_settings = (
        *TransformerModule.training_only_settings,
        "calibrate",
        "class_weights",
        "standardize_targets",
    )

    def __init__(
        self,
        model_name_or_path: str,
        window_aggregation: Literal["mean", "max"] = "mean",
        calibrate: Literal["temperature"] | None = None,
        class_weights: ClassWeights | None = None,
        threshold: float | Literal["tune", "per_label"] | None = None,
        standardize_targets: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, **kwargs)
        if isinstance(threshold, float | int):
            check_range(
                "--model.threshold", threshold, minimum=0, maximum=1, include_minimum=False, include_maximum=False
            )
        self.calibration: dict | None = None
        self.threshold_report: dict | None = None
        self.thresholds: torch.Tensor | None = None  # multi-label: one per label
        self.splits_warned_of_absent_labels: set[str] = set()

    @property
    def task_metric(self) -> str:
        return self.contract.monitor

    @property
    def metric_names(self) -> tuple[str, ...]:
        calibration = ("ece", "brier", "nll") if self.problem_type == "single_label" else ()
        return (*self.contract.metrics, *calibration, "loss")

    @property
    def problem_type(self) -> str:
        return self.contract.problem_type

    def head_settings(self) -> dict:
        """The head for the contract's problem; settings that do not fit it are refused here, before training."""
        spec, labels, problem_type, hp = self.contract.spec, self.contract.label_names, self.problem_type, self.hparams
        if hp.calibrate and problem_type != "single_label":
            raise FtlitError(
                f"--model.calibrate temperature calibrates the softmax of single-label classification; {spec.name} "
                f"is {problem_type}."
                + (" For multi-label decisions tune the thresholds: --model.threshold tune." if labels else "")
            )
        if hp.threshold is not None and problem_type != "multi_label":
            raise FtlitError(f"--model.threshold applies to multi-label classification; {spec.name} is {problem_type}.")
        if hp.class_weights is not None and problem_type == "regression":
            raise FtlitError(f"--model.class_weights weighs classes; {spec.name} is a regression.")
        if hp.standardize_targets and problem_type != "regression":
            raise FtlitError(f"--model.standardize_targets applies to a regression; {spec.name} is {problem_type}.")
        if problem_type == "regression":
            return {"num_labels": 1, "problem_type": "regression"}
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
            "problem_type": HF_PROBLEM_TYPES[problem_type],
        }

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.trainer.limit_val_batches == 0 and (isinstance(self.hparams.threshold, str) or self.hparams.calibrate):
            setting = "--model.calibrate" if self.hparams.calibrate else f"--model.threshold {self.hparams.threshold}"
            raise FtlitError(
                f"{setting} is fitted on the validation set after training: validation cannot be off "
                "(--trainer.limit_val_batches 0)."
            )

    def load_model(self):
        model = super().load_model()
        if self.hparams.class_weights is not None:
            # a buffer: it moves with the module, and is saved in checkpoints (an evaluation without the training
            # data has no counts to work it out from)
            contract, labels = self.contract, self.contract.label_names
            examples = contract.train_examples if self.problem_type == "multi_label" else None
            weights = class_weights(self.hparams.class_weights, labels, contract.train_label_counts, examples)
            self.register_buffer("class_weight", weights if weights is not None else torch.ones(len(labels)))
            if weights is not None:
                shown = ", ".join(f"{name} {w:.3g}" for name, w in zip(labels, weights.tolist()))
                rank_zero_info(f"Class weights: {shown}")
        if self.hparams.standardize_targets:
            self.register_buffer("target_scale", torch.tensor(self._target_scale()))  # saved in checkpoints
        if self.problem_type == "multi_label":
            self.set_thresholds(torch.tensor(self._initial_thresholds(model), dtype=torch.float64), model)
        return model

    def _initial_thresholds(self, model) -> list[float]:
        """The one given; when evaluating or predicting with an ftlit export, the thresholds it was tuned with;
        otherwise (training, also before tuning) 0.5."""
        count, threshold = len(self.contract.label_names), self.hparams.threshold
        if isinstance(threshold, float | int):
            return [float(threshold)] * count
        saved = getattr(model.config, "thresholds", None)
        training = self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        if saved is not None and len(saved) == count and not training:
            return saved
        return [DEFAULT_THRESHOLD] * count

    def _target_scale(self) -> tuple[float, float]:
        """(mean, std) of the training targets; (0, 1) without training data (a checkpoint brings its own)."""
        stats = self.contract.train_target_stats
        if stats is None:
            return 0.0, 1.0
        if stats[1] == 0:
            raise FtlitError(f"--model.standardize_targets: every training target is {stats[0]}; nothing to learn.")
        return stats

    def set_thresholds(self, thresholds: torch.Tensor, model=None) -> None:
        """Multi-label decision thresholds, also written into the model's config (and so into the export)."""
        self.thresholds = thresholds
        (model or self.model).config.thresholds = [round(t, 6) for t in thresholds.tolist()]

    # ---------------------------------------------------------------------------------------------- loss
    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (regression: scores in the targets' units) and loss (None without labels): the model's own loss,
        the weighted one with class weights, or with standardised targets the loss on the standardised scale."""
        weighted, standardized = hasattr(self, "class_weight"), hasattr(self, "target_scale")
        if not (weighted or standardized):
            output = self.model(**batch)
            return output.logits, output.loss
        inputs = {name: tensor for name, tensor in batch.items() if name != "labels"}
        logits, labels = self.model(**inputs).logits.float(), batch.get("labels")
        if standardized:
            mean, std = self.target_scale
            loss = None if labels is None else F.mse_loss(logits.squeeze(-1), (labels.float() - mean) / std)
            return logits * std + mean, loss
        if labels is None:
            return logits, None
        if self.problem_type == "multi_label":
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=self.class_weight)
        else:  # each example's loss times its class's weight, averaged over the examples: not F.cross_entropy's
            # weighted mean (divided by the batch's weights), under which a batch without the rare class pulls as
            # hard as one with it
            loss = (F.cross_entropy(logits.float(), labels, reduction="none") * self.class_weight[labels]).mean()
        return logits, loss

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._forward(batch)[1]

    # ---------------------------------------------------------------------------------------------- evaluation
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits, loss = self._forward(batch)
        if "labels" not in batch:  # predict
            return {"logits": logits.float()}
        self.log_eval_loss(stage, split, loss)
        return {"logits": logits.float(), "labels": batch["labels"]}

    def _documents(self, split: str, feature_index: torch.Tensor, outputs: dict) -> tuple[torch.Tensor, ...]:
        """The evaluated documents (sorted), their logits aggregated over their windows, and their labels."""
        eval_set: DocumentsEvalSet = self.contract.eval_sets[split]
        document_index = torch.as_tensor(eval_set.document_index, device=feature_index.device)[feature_index]
        documents, logits = aggregate_windows(document_index, outputs["logits"], self.hparams.window_aggregation)
        labels = None
        if "labels" in outputs:  # every window carries its document's label
            gold = outputs["labels"]
            labels = torch.empty((len(documents), *gold.shape[1:]), dtype=gold.dtype, device=documents.device)
            labels[torch.searchsorted(documents, document_index)] = outputs["labels"]
        return documents, logits, labels

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        _, logits, labels = self._documents(split, feature_index, outputs)
        eval_set = self.contract.eval_sets[split]
        scores, per_label = self.score(logits, labels)
        if self.problem_type == "single_label":
            scores.update(calibration_scores(logits, labels))
        self._warn_of_labels_without_positives(split, per_label)
        report = {"per_label": per_label} if per_label else {}
        return EvalResult(
            split,
            scores,
            num_examples=len(labels),
            num_features=eval_set.num_features,
            details={"logits": logits, "labels": labels},
            report=report,
        )

    def score(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[dict[str, float], dict]:
        """The task's metrics and, for classification, the per-label table, of documents' logits."""
        contract, problem_type = self.contract, self.problem_type
        metrics = build_metrics(contract.metrics, contract.num_outputs, problem_type, sync_on_compute=False)
        if problem_type == "regression":
            predictions = logits.squeeze(-1)
        elif problem_type == "multi_label":
            predictions, labels = decision_probabilities(logits, self.thresholds), labels.long()
        else:
            predictions = logits.argmax(-1)
        metrics = metrics.to(logits.device)
        metrics.update(predictions, labels)
        with warnings.catch_warnings():  # a label without positives: named by evaluate(), not in torchmetrics' words
            warnings.filterwarnings("ignore", message="No positive samples found in target")
            scores = {name: value.item() for name, value in metrics.compute().items()}
        if problem_type == "regression":
            return scores, {}
        return scores, per_label_table(predictions, labels, contract.label_names, problem_type)

    def _warn_of_labels_without_positives(self, split: str, per_label: dict) -> None:
        """Once per split (not on Lightning's few sanity batches): the multi-label labels that no text of the split
        has, whose F1 and average precision count as 0 in the macro averages, as in scikit-learn."""
        absent = [name for name, row in per_label.items() if row["support"] == 0]
        sanity = self._trainer is not None and self.trainer.sanity_checking
        if self.problem_type != "multi_label" or not absent or sanity or split in self.splits_warned_of_absent_labels:
            return
        self.splits_warned_of_absent_labels.add(split)
        rank_zero_warn(
            f"{len(absent)} of {len(per_label)} labels have no positive example in {split}: "
            f"{', '.join(absent)}. Their F1 and average precision count as 0 in macro_f1 and "
            "mean_average_precision."
        )

    def figures(self, result: EvalResult, title: str) -> dict[str, Figure]:
        return evaluation_figures(self.problem_type, result, self.contract.label_names, title)

    # ---------------------------------------------------------------------------------------------- calibration
    def finish_training(self) -> None:
        """Fitted on the (first) validation set's last evaluation (the best checkpoint's, as the CLI leaves it),
        before the export: multi-label thresholds, or temperature scaling (built into the model)."""
        if self.last_eval is None:
            return
        if isinstance(self.hparams.threshold, str):
            self._tune_thresholds()
        if self.hparams.calibrate == "temperature":
            self._calibrate()

    def _tune_thresholds(self) -> None:
        logits, labels = self.last_eval.details["logits"], self.last_eval.details["labels"]
        before, _ = self.score(logits, labels)
        per_label = self.hparams.threshold == "per_label"
        self.set_thresholds(tune_thresholds(logits.float().sigmoid().cpu(), labels.cpu(), per_label=per_label))
        after, _ = self.score(logits, labels)
        keys = ("macro_f1", "micro_f1")
        rank_zero_info(
            f"Thresholds tuned ({'per label' if per_label else 'global'}) on the validation set: macro-F1 "
            f"{before['macro_f1']:.4f} → {after['macro_f1']:.4f}, micro-F1 {before['micro_f1']:.4f} → "
            f"{after['micro_f1']:.4f}"
        )
        self.threshold_report = {
            "mode": "per_label" if per_label else "global",
            "thresholds": dict(zip(self.contract.label_names, self.model.config.thresholds)),
            "before": {key: round(before[key], 6) for key in keys},
            "after": {key: round(after[key], 6) for key in keys},
        }

    def _calibrate(self) -> None:
        logits, labels = self.last_eval.details["logits"].cpu(), self.last_eval.details["labels"].cpu()
        temperature = fit_temperature(logits, labels)
        before, after = calibration_scores(logits, labels), calibration_scores(logits / temperature, labels)
        apply_temperature(self.model, temperature)
        rank_zero_info(
            f"Temperature scaling: T = {temperature:.4f}; validation ECE {before['ece']:.4f} → {after['ece']:.4f}, "
            f"NLL {before['nll']:.4f} → {after['nll']:.4f}"
        )
        self.calibration = {"temperature": round(temperature, 6), "before": before, "after": after}

    def exported_model(self, model):
        """Standardised targets: a copy whose output layer gives scores in the targets' own units."""
        if not hasattr(self, "target_scale"):
            return model
        model = copy.deepcopy(model) if model is self.model else model
        mean, std = self.target_scale.tolist()
        rescale_outputs(model, std, mean)
        model.config.target_standardization = {"mean": mean, "std": std}
        return model

    def describe_model(self) -> dict:
        described = super().describe_model()
        if self.calibration is not None:
            described["calibration"] = self.calibration
        if self.threshold_report is not None:
            described["thresholds"] = self.threshold_report
        return described

    # ---------------------------------------------------------------------------------------------- predict
    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """Each input row with its prediction (from its windows' aggregated logits)."""
        documents, logits, _ = self._documents(split, feature_index, outputs)
        rows = self.contract.eval_sets[split].rows
        names = self.contract.label_names
        if self.problem_type == "regression":
            scores = [{"score": score} for score in logits.squeeze(-1).tolist()]
        elif self.problem_type == "multi_label":  # every label above its threshold, and every label's probability
            chosen = decision_probabilities(logits, self.thresholds) > 0.5
            scores = [
                {"labels": [name for name, on in zip(names, row) if on], "probabilities": dict(zip(names, p))}
                for row, p in zip(chosen.tolist(), logits.float().sigmoid().tolist())
            ]
        else:
            scores = [
                {
                    "label": names[row.argmax().item()],
                    "score": row.max().item(),
                    "probabilities": dict(zip(names, row.tolist())),
                }
                for row in logits.softmax(-1)
            ]
        return [{**rows[index], **score} for index, score in zip(documents.tolist(), scores)]
