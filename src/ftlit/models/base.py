"""TransformerModule: what every task module shares — optimizer, schedule, clipping, checkpoints, export."""

import copy
import math
import shutil
from pathlib import Path
from typing import Literal

import torch
from lightning import Callback, LightningModule
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from peft import TaskType
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from ftlit.errors import FtlitError
from ftlit.outputs import replace_directory
from ftlit.peft import LoraSettings, apply_lora
from ftlit.pretrained import load_pretrained


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
        checkpoint_every_n_steps: also save ``last.ckpt`` every this many optimizer steps (it is saved at every
            epoch end anyway), so an interrupted run loses at most this much work.
        peft: LoRA settings; when set, only the adapters and the task head train (see ftlit.peft.LoraSettings).
        gradient_checkpointing: recompute activations in the backward pass: less memory, about a third slower.
        quantization: ``4bit`` loads the frozen base in 4-bit NF4 through bitsandbytes (QLoRA; CUDA only).
        compile: ``torch.compile`` the model. Pair it with ``--data.pad_to_multiple_of 64``: each new sequence
            length compiles anew, and rounding lengths up to a multiple of 64 bounds them (384 / 64 = 6 shapes).
    """

    #: The validation metric (under ``val/``) that picks the best checkpoint; higher is better.
    monitor: str
    #: peft's name for the task, which decides how the adapted model is wrapped.
    task_type: TaskType

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
        checkpoint_every_n_steps: int | None = 500,
        peft: LoraSettings | None = None,
        gradient_checkpointing: bool = False,
        quantization: Literal["4bit"] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if quantization and not torch.cuda.is_available():
            raise FtlitError("--model.quantization 4bit (QLoRA) needs a CUDA GPU; this machine has none.")
        if quantization and peft is None:
            raise FtlitError(
                "--model.quantization 4bit trains LoRA adapters on a frozen 4-bit base: add a peft section."
            )
        self.save_hyperparameters()
        # hparams may hold the config's plain dicts (LightningCLI records the parsed config there)
        self.lora = LoraSettings(**peft) if isinstance(peft, dict) else peft
        self.model: PreTrainedModel | None = None
        # LoRA checkpoints hold only what trains; the frozen base comes from model_name_or_path
        self.strict_loading = peft is None

    # ---------------------------------------------------------------------------------------------- model
    def build_model(self) -> PreTrainedModel:
        """Load the task's Hugging Face model (with ``load_model``); called once, when the trainer and its data
        module are known."""
        raise NotImplementedError

    def load_model(self, auto_class, **kwargs) -> PreTrainedModel:
        """``auto_class.from_pretrained(model_name_or_path)``, in 4-bit when asked."""
        if self.hparams.quantization == "4bit":
            try:
                import bitsandbytes  # noqa: F401
                from transformers import BitsAndBytesConfig
            except ImportError:
                raise FtlitError("--model.quantization 4bit needs bitsandbytes: `pip install bitsandbytes`.") from None
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        model = load_pretrained(auto_class.from_pretrained, self.hparams.model_name_or_path, "model", **kwargs)
        if self.hparams.quantization:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return model

    def configure_model(self) -> None:
        # Built lazily: the head's shape (number of labels) comes from the data module
        if self.model is not None:
            return
        model = self.build_model()
        if self.hparams.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.lora is not None:
            model = apply_lora(model, self.lora, self.task_type)
        # from_pretrained returns the model in eval mode; Lightning keeps module modes as they are
        self.model = model.train()
        if self.hparams.compile:
            self.model.compile()  # in place: parameter names, checkpoints and the export are unchanged

    def on_fit_start(self) -> None:
        counts = self.parameter_counts()
        trainable, total = counts["trainable_params"], counts["total_params"]
        lora = sum(p.numel() for name, p in self.model.named_parameters() if p.requires_grad and "lora_" in name)
        detail = f" ({lora:,} LoRA + {trainable - lora:,} task head)" if self.lora else ""
        rank_zero_info(f"Trainable parameters: {trainable:,}{detail} of {total:,} ({100 * trainable / total:.2f} %)")
        if self.logger is not None:
            self.logger.log_metrics({"params/trainable": trainable, "params/total": total}, step=0)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.lora is not None:  # adapters + head (+ optimizer state): small checkpoints
            trainable = {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    def parameter_counts(self) -> dict[str, int]:
        params = list(self.model.parameters())
        return {
            "total_params": sum(p.numel() for p in params),
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        }

    def export(self, directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
        """Write model and tokenizer in Hugging Face format, so ``transformers.pipeline(model=directory)`` loads it.

        With LoRA, the adapters are merged into the base weights (a plain model, no peft needed), or with
        ``peft.merge: false`` the adapter folder is written (``peft.PeftModel.from_pretrained``). Written to a
        temporary folder first and then moved into place: a crash never leaves half an export.
        """
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model = self.model
        if self.lora is not None and self.lora.merge:
            model = copy.deepcopy(model).merge_and_unload()  # a copy: the live module keeps its adapters
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        replace_directory(staging, directory)

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
        callbacks: list[Callback] = []
        if self.trainer.checkpoint_callback is not None:  # unless Trainer(enable_checkpointing=False)
            # The best checkpoint by the task metric, and last.ckpt to resume from (every N steps, every epoch end)
            best = ModelCheckpoint(
                monitor=monitor, mode="max", filename="best-epoch{epoch}-step{step}", auto_insert_metric_name=False
            )
            last = ModelCheckpoint(
                save_top_k=0,
                save_last=True,
                every_n_train_steps=self.hparams.checkpoint_every_n_steps,
                save_on_train_epoch_end=True,
            )
            callbacks += [best, last]
        if self.trainer.logger is not None:
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        if self.hparams.early_stopping_patience is not None:
            callbacks.append(EarlyStopping(monitor, mode="max", patience=self.hparams.early_stopping_patience))
        return callbacks

    # ---------------------------------------------------------------------------------------------- outputs
    def finish_training(self) -> dict:
        """Called once fit is over and the best checkpoint re-evaluated, before the export: last changes to the
        model (e.g. calibration); returns what results.json should record of them."""
        return {}

    def summary(self) -> dict:
        """What results.json records of the model (and of its last evaluation) besides the metrics."""
        return self.parameter_counts()

    def output_files(self) -> dict[str, object]:
        """Files (name → JSON-serialisable content) that the last validation/test produced, e.g. predictions."""
        return {}

    def prediction_records(self, predictions: list, batch_indices: list[list[int]]) -> dict[int, dict]:
        """``predict_step`` outputs (per batch, with the rows each batch held) → a record per input row, by index."""
        raise NotImplementedError
