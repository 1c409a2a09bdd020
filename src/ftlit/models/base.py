"""TransformerModule: what every task module shares — optimizer, schedule, clipping, checkpoints, export."""

import math
import shutil
from pathlib import Path

import torch
from lightning import Callback, LightningModule
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup


class TransformerModule(LightningModule):
    """A Hugging Face ``AutoModelFor<Task>`` trained with AdamW and a linear warmup/decay schedule.

    Args:
        model_name_or_path: Hub name (``distilbert-base-uncased``) or a local folder (also an ftlit export).
        learning_rate: peak learning rate of AdamW.
        weight_decay: applied to weight matrices only, never to biases and LayerNorm weights.
        warmup_ratio: fraction of all optimizer steps spent warming up linearly from 0.
        warmup_steps: warmup length in steps; overrides ``warmup_ratio`` when set.
        adam_epsilon: AdamW's epsilon.
        max_grad_norm: clip the global gradient norm to this (0 or None: no clipping).
        early_stopping_patience: stop after this many validations without improvement (None: never).
    """

    #: The validation metric (under ``val/``) that picks the best checkpoint; higher is better.
    monitor: str

    def __init__(
        self,
        model_name_or_path: str,
        learning_rate: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.0,
        warmup_steps: int | None = None,
        adam_epsilon: float = 1e-8,
        max_grad_norm: float | None = 1.0,
        early_stopping_patience: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model: PreTrainedModel | None = None

    # ---------------------------------------------------------------------------------------------- model
    def build_model(self) -> PreTrainedModel:
        """Load the task's Hugging Face model; called once, when the trainer and its data module are known."""
        raise NotImplementedError

    def configure_model(self) -> None:
        # Built lazily: the head's shape (number of labels) comes from the data module
        if self.model is None:
            # from_pretrained returns the model in eval mode; Lightning keeps module modes as they are
            self.model = self.build_model().train()

    def parameter_counts(self) -> dict[str, int]:
        params = list(self.model.parameters())
        return {
            "total_params": sum(p.numel() for p in params),
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        }

    def export(self, directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
        """Write model and tokenizer in Hugging Face format, so ``transformers.pipeline(model=directory)`` loads it.

        Written to a temporary folder first and then moved into place: a crash never leaves half an export.
        """
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        self.model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)

    # ---------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Clipped here, not with Trainer(gradient_clip_val): Lightning refuses that for fused AdamW under AMP.
        # Gradients are already unscaled at this point (fp16).
        if self.hparams.max_grad_norm:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.hparams.max_grad_norm)
            self.log("train/grad_norm", norm)

    def configure_optimizers(self):
        hp = self.hparams
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        # Biases and LayerNorm weights are the 1-D parameters: no weight decay for them
        groups = [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(
            groups, lr=hp.learning_rate, eps=hp.adam_epsilon, fused=self.device.type == "cuda"
        )
        total_steps = self.trainer.estimated_stepping_batches
        warmup = hp.warmup_steps if hp.warmup_steps is not None else math.ceil(hp.warmup_ratio * total_steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[Callback]:
        monitor = f"val/{self.monitor}"
        callbacks: list[Callback] = [
            ModelCheckpoint(
                monitor=monitor,
                mode="max",
                filename="best-epoch{epoch}-step{step}",
                auto_insert_metric_name=False,
                save_last=True,
            )
        ]
        if self.trainer.logger is not None:
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        if self.hparams.early_stopping_patience is not None:
            callbacks.append(EarlyStopping(monitor, mode="max", patience=self.hparams.early_stopping_patience))
        return callbacks

    # ---------------------------------------------------------------------------------------------- outputs
    def summary(self) -> dict:
        """What results.json records of the model (and of its last evaluation) besides the metrics."""
        return self.parameter_counts()

    def output_files(self) -> dict[str, object]:
        """Files (name → JSON-serialisable content) that the last validation/test produced, e.g. predictions."""
        return {}

    def prediction_records(self, predictions: list, batch_indices: list[list[int]]) -> list[dict]:
        """``predict_step`` outputs (per batch, with the rows each batch held) → one record per input row."""
        raise NotImplementedError
