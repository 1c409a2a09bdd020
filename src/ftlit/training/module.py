"""TransformerModule: what every task module shares — its settings, the contract, the task hooks, the training
step and its callbacks; beside it in ftlit.training: model loading, the evaluation loop, the optimizer and schedule.

A task module says which Hugging Face model it trains (``auto_class``, ``head_settings``), what it keeps of each
evaluated batch (``collect``), how it scores (``evaluate``) or decodes (``predict_records``) the gathered outputs,
and what files an evaluation writes (``result_files``). Everything it knows of the data comes from the contract
its data module hands over (``accept_contract``).
"""

import copy
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Literal

import torch
from lightning import Callback, LightningModule
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ftlit.contract import DataContract, EvalStage
from ftlit.errors import FtlitError
from ftlit.machine import CpuKernels, fused_optimizer, swaps_dropout, switches_attention, trains_faster_eager
from ftlit.settings import check_range
from ftlit.training.attention import attention_dropout, attention_implementation
from ftlit.training.dropout import use_cpu_dropout
from ftlit.training.evaluation import EvalResult, EvaluationLoop
from ftlit.training.loading import HeadCheckpoints, load_model, parameter_counts, ready_for_training, trainable_summary
from ftlit.training.lora import LoraSettings, trainable_state
from ftlit.training.model_callbacks import ContractHandover, EarlyStoppingOnTaskMetric, NewWeights, fit_checkpoints
from ftlit.training.optim import checked_optimizer, optimizer_and_schedule
from ftlit.training.outputs import write_export

#: Validation metrics where lower is better: a ``main_metric`` among them picks the checkpoint with its lowest value
LOWER_IS_BETTER = frozenset({"loss", "mse", "mae", "hamming_loss", "ece", "brier", "nll"})


class TransformerModule(HeadCheckpoints, EvaluationLoop, LightningModule):
    """A Hugging Face ``AutoModelFor<Task>``, trained by default with AdamW and a linear warmup/decay schedule.

    Args:
        model_name_or_path: Hub name (``distilbert-base-uncased``) or a local folder (also an ftlit export).
        learning_rate: peak learning rate (of any optimizer: it is set on the parameter groups) (> 0).
        weight_decay: applied to weight matrices only, never to biases and LayerNorm weights (any optimizer) (≥ 0).
        warmup_ratio: fraction of all optimizer steps spent warming up linearly from 0 (≥ 0 and < 1).
        warmup_steps: warmup length in steps; overrides ``warmup_ratio`` when set (≥ 0, or null).
        adam_epsilon: epsilon of the default AdamW (> 0).
        max_grad_norm: clip the global gradient norm to this (≥ 0, or null; 0 or null: no clipping).
        early_stopping_patience: stop after this many validations without improvement (≥ 1, or null: never).
        checkpoint_every_n_steps: also save ``last.ckpt`` every this many optimizer steps (it is saved at every
            epoch end anyway), so an interrupted run loses at most this much work (≥ 1, or null: at epoch ends
            only).
        checkpoints: what fit keeps. ``resumable``: ``last.ckpt`` and the best checkpoint, each with the optimizer
            state (273 MB each for MiniLM), so that ``--ckpt_path last`` continues an interrupted run;
            ``best_weights``: the best checkpoint's weights alone (91 MB for MiniLM), no ``last.ckpt``: a run
            that stops starts again.
        peft: LoRA settings; when set, only the adapters and the task head train (see ftlit.training.lora).
        gradient_checkpointing: recompute activations in the backward pass: less memory, about a third slower.
        quantization: ``4bit`` loads the frozen base in 4-bit NF4 through bitsandbytes (QLoRA; CUDA only).
        compile: ``torch.compile`` the model. Pair it with ``--data.pad_to_multiple_of 64``: each new sequence
            length compiles anew, and rounding lengths up to a multiple of 64 bounds them (384 / 64 = 6 shapes).
        optimizer: another optimizer, e.g. ``torch.optim.SGD`` with ``--model.optimizer.momentum 0.9``; its
            learning rate and weight decay are still ``learning_rate`` and ``weight_decay``. Default: AdamW
            (fused: one kernel for all parameters).
        lr_scheduler: another schedule, stepped after every optimizer step, e.g.
            ``ftlit.training.optim.WarmupDecay`` with ``--model.lr_scheduler.shape cosine`` (ftlit gives it the
            run's warmup and total steps) or any ``torch.optim.lr_scheduler`` class. Default: linear warmup and decay.
        engine: what runs the model in validate, test and predict: ``torch``, or ``onnxruntime`` for an ONNX
            export (``ftlit export RUN --format onnx``) given as ``model_name_or_path``; fit trains with torch.
        main_metric: the validation metric that picks the best checkpoint and stops early, one of those the task
            reports (e.g. ``mse`` for a regression); minimised for ``loss``, ``mse``, ``mae``, ``hamming_loss``,
            ``ece``, ``brier`` and ``nll``, maximised for the others. Default: the task's main metric.
        attn_implementation: the attention kernel, as ``from_pretrained`` takes it (``sdpa``, ``eager``,
            ``flash_attention_2`` …). Default: the model's own (``sdpa``), except that training on a CPU under bf16
            attends eagerly, where that is measured faster (see ``cpu_kernels``). A setting of this run: an
            evaluation of its export (ftlit export) uses the model's default.
        cpu_kernels: training on a CPU with ``ftlit``'s dropout (masks drawn twice as fast) and eager attention for
            the batches where it is measured faster (ftlit.machine), or with ``torch``'s ``nn.Dropout`` and the
            model's own attention throughout: the same training in distribution, ftlit's faster. No effect on a GPU.
    """

    #: Settings of a run that shape only its training: evaluating its export (ftlit export) leaves them out
    training_only_settings: tuple[str, ...] = (
        "peft",
        "quantization",
        "compile",
        "gradient_checkpointing",
        "optimizer",
        "lr_scheduler",
        "attn_implementation",
        "cpu_kernels",
        "checkpoints",
    )

    #: The Hugging Face auto class of the task's model (``AutoModelForQuestionAnswering``, …)
    auto_class: type
    #: peft's name for the task, which decides how the adapted model is wrapped
    task_type: str
    #: The model's task head, by attribute name (those the architecture has): under LoRA it trains in full
    head_modules: tuple[str, ...] = ("pre_classifier", "classifier", "score")

    def onnx_axes(self, input_name: str) -> dict[int, str]:
        """The dynamic axes of a model input in an ONNX export, by dimension; inputs sharing an axis name share
        its size (a task whose inputs hold choices, or two towers of other lengths, names its own)."""
        return {0: "batch", 1: "sequence"}

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
        checkpoints: Literal["resumable", "best_weights"] = "resumable",
        peft: LoraSettings | None = None,
        gradient_checkpointing: bool = False,
        quantization: Literal["4bit"] | None = None,
        compile: bool = False,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        engine: Literal["torch", "onnxruntime"] = "torch",
        main_metric: str | None = None,
        attn_implementation: str | None = None,
        cpu_kernels: CpuKernels = "ftlit",
    ) -> None:
        super().__init__()
        check_range("--model.learning_rate", learning_rate, minimum=0, include_minimum=False)
        check_range("--model.weight_decay", weight_decay, minimum=0)
        check_range("--model.warmup_ratio", warmup_ratio, minimum=0, maximum=1, include_maximum=False)
        check_range("--model.warmup_steps", warmup_steps, minimum=0, allow_none=True)
        check_range("--model.adam_epsilon", adam_epsilon, minimum=0, include_minimum=False)
        check_range("--model.max_grad_norm", max_grad_norm, minimum=0, allow_none=True)
        check_range("--model.early_stopping_patience", early_stopping_patience, minimum=1, allow_none=True)
        check_range("--model.checkpoint_every_n_steps", checkpoint_every_n_steps, minimum=1, allow_none=True)
        if quantization and not torch.cuda.is_available():
            raise FtlitError("--model.quantization 4bit (QLoRA) needs a CUDA GPU; this machine has none.")
        if quantization and peft is None:
            raise FtlitError(
                "--model.quantization 4bit trains LoRA adapters on a frozen 4-bit base: add a peft section."
            )
        self.save_hyperparameters()  # the CLI records the config here: the optimizer and schedule as class paths
        for name in ("optimizer", "lr_scheduler"):
            if callable(self.hparams.get(name)):  # given in Python: it would not load back from a checkpoint
                del self.hparams[name]
        self.optimizer, self.lr_scheduler = checked_optimizer(optimizer, lr_scheduler, self.monitor_mode)
        # hparams may hold the config's plain dicts (LightningCLI records the parsed config there)
        self.lora = LoraSettings(**peft) if isinstance(peft, dict) else peft
        self.model: PreTrainedModel | None = None
        # LoRA checkpoints hold only what trains; the frozen base comes from model_name_or_path
        self.strict_loading = peft is None
        self.contract: DataContract | None = None
        # The model's attention dropout where training batches may attend eagerly, None where never (configure_model)
        self._switchable_attention_dropout: float | None = None

    @property
    def cpu_kernels(self) -> CpuKernels:
        """``--model.cpu_kernels`` (``ftlit`` for checkpoints from before the setting)."""
        return self.hparams.get("cpu_kernels", "ftlit")

    @property
    def switches_attention(self) -> bool:
        """Whether training batches may attend eagerly on this machine (``_training_attention`` decides each)."""
        dropout = self._switchable_attention_dropout
        return dropout is not None and trains_faster_eager(self.device.type, str(self.trainer.precision), 1, dropout)

    # ---------------------------------------------------------------------------------------------- the data
    def accept_contract(self, contract: DataContract) -> None:
        """What the data module hands over at each stage's setup: labels, evaluation sets, window settings."""
        self.contract = contract
        chosen = self.hparams.main_metric
        if chosen is not None and chosen not in self.metric_names:
            raise FtlitError(
                f"--model.main_metric {chosen}: not a metric of this task on this data, which "
                f"reports {', '.join(self.metric_names)}."
            )

    @property
    def task_metric(self) -> str:
        """The task's main validation metric (higher is better)."""
        raise NotImplementedError

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The validation metrics the task reports (under ``val/``), given the contract."""
        raise NotImplementedError

    @property
    def monitor(self) -> str:
        """The validation metric (under ``val/``) that picks the best checkpoint: ``main_metric`` or the task's."""
        return self.hparams.main_metric or self.task_metric

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        """Whether the best checkpoint has the lowest or the highest ``monitor``. Known from the name alone, so
        before the contract is in (Lightning attaches the callbacks before the data is set up)."""
        return "min" if self.hparams.main_metric in LOWER_IS_BETTER else "max"

    # ---------------------------------------------------------------------------------------------- model
    def head_settings(self) -> dict:
        """``from_pretrained`` arguments that shape the task head (e.g. the number of labels), from the contract."""
        return {}

    def load_model(self) -> PreTrainedModel:
        """``auto_class.from_pretrained(model_name_or_path)`` with the task's head, in 4-bit when asked; or the ONNX
        export under ONNX Runtime. Notes what of its head did not come trained from its folder (``new_head``)."""
        hp = self.hparams
        kernel = hp.get("attn_implementation")  # (.get: checkpoints from before the setting lack it)
        model, self.new_head = load_model(
            self.auto_class, hp.model_name_or_path, self.head_settings(), hp.engine, hp.quantization, kernel
        )
        return model

    def setup(self, stage: str) -> None:
        self.check_engine(stage)

    def check_engine(self, stage: str) -> None:
        """ONNX Runtime evaluates and predicts; only torch trains (the CLI asks before any work is done)."""
        if stage == "fit" and self.hparams.engine != "torch":
            raise FtlitError(
                f"--model.engine {self.hparams.engine} runs an ONNX export in validate, test and predict; fit "
                "trains with torch (--model.engine torch)."
            )

    def configure_model(self) -> None:
        # Built lazily: the head's shape (number of labels) comes with the contract
        if self.model is not None:
            return
        model = self.load_model()
        if self.hparams.engine != "torch":
            self.model = model
            return
        hp = self.hparams
        kernel_chosen = bool(hp.get("attn_implementation"))
        switches = switches_attention(model, self.cpu_kernels, kernel_chosen, hp.compile, hp.gradient_checkpointing)
        self._switchable_attention_dropout = attention_dropout(model.config) if switches else None
        self.model = ready_for_training(
            model, self.lora, self.task_type, self.head_modules, hp.gradient_checkpointing, hp.compile
        )

    def on_fit_start(self) -> None:
        if swaps_dropout(self.device, self.cpu_kernels, self.hparams.compile):
            use_cpu_dropout(self.model)
        rank_zero_info(trainable_summary(self.model, lora=self.lora is not None))
        if self.logger is not None:
            counts = parameter_counts(self.model)
            self.logger.log_metrics(
                {"params/trainable": counts["trainable_params"], "params/total": counts["total_params"]}, step=0
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.lora is not None:  # adapters + head (+ optimizer state) and the module's own buffers: small checkpoints
            checkpoint["state_dict"] = trainable_state(checkpoint["state_dict"], self.model)

    def export(self, directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
        """Write model and tokenizer in Hugging Face format, so ``transformers.pipeline(model=directory)`` loads it.

        With LoRA, the adapters are merged into the base weights (a plain model, no peft needed), or with
        ``peft.merge: false`` the adapter folder is written (``peft.PeftModel.from_pretrained``). Written to a
        temporary folder first and then moved into place: a crash never leaves half an export.
        """
        model = self.model
        if self.lora is not None and self.lora.merge:
            model = copy.deepcopy(model).merge_and_unload()  # a copy: the live module keeps its adapters
        model = self.exported_model(model)
        if self.inference_settings():
            # read by ftlit's pipelines: a model is served with the windows and decoding it was trained with
            model.config.ftlit_inference = self.inference_settings()
        write_export(model, tokenizer, directory)

    # ---------------------------------------------------------------------------------------------- training
    def on_before_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict:
        # A plain dict, not the collator's BatchEncoding: Lightning moves a BatchEncoding with its own blocking
        # .to(device), which makes the host wait for the GPU every step; a dict's tensors move non-blocking
        batch = dict(batch)
        if self.trainer.training:
            # Counted on the host, before the batch moves: on a GPU, reading the count would make the host wait
            # for the step before (TrainingThroughput reports these)
            mask = batch["attention_mask"]
            self.train_batch_counts = {"samples": mask.shape[0], "tokens": int(mask.sum()), "padded": mask.numel()}
        return batch

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a batch: the Hugging Face model's own, unless the task weighs it otherwise."""
        return self.model(**batch).loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        with self._training_attention(batch["attention_mask"].shape[-1]):
            loss = self.compute_loss(batch)
        # Not prog_bar=True: Lightning reads progress-bar values on the host after every step, which on a GPU makes
        # the host wait for the device; the bar shows NonFiniteLossGuard's reading instead
        if self._writes_step_metrics():
            self.log("train/loss", loss)
        return loss

    def _training_attention(self, sequence_length: int) -> AbstractContextManager:
        """Eager attention for a training batch where it is faster than the model's fused kernel."""
        dropout = self._switchable_attention_dropout
        if dropout is not None and trains_faster_eager(
            self.device.type, str(self.trainer.precision), sequence_length, dropout
        ):
            model = self.model.get_base_model() if self.lora is not None else self.model  # (LoRA: a peft wrapper)
            return attention_implementation(model, "eager")
        return nullcontext()

    def _writes_step_metrics(self) -> bool:
        """Whether Lightning writes step metrics after this batch (its own test, on the public step counter).
        Each ``self.log`` costs a millisecond or two of host time, so the training figures are handed over only
        then, not at every step."""
        every = self.trainer.log_every_n_steps
        return every > 0 and ((self.trainer.global_step + 1) % every == 0 or self.trainer.should_stop)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Clipped here, not with Trainer(gradient_clip_val): Lightning refuses that for fused AdamW under AMP.
        # Gradients are already unscaled at this point (fp16).
        if self.hparams.max_grad_norm:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.hparams.max_grad_norm)
            if self._writes_step_metrics():
                self.log("train/grad_norm", norm)

    def configure_optimizers(self) -> dict:
        settings = ("learning_rate", "weight_decay", "adam_epsilon", "warmup_ratio", "warmup_steps")
        return optimizer_and_schedule(
            list(self.model.parameters()),
            **{name: self.hparams[name] for name in settings},
            total_steps=self.trainer.estimated_stepping_batches,
            fused=fused_optimizer(self.device),
            monitor=self.monitor,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
        )

    def configure_callbacks(self) -> list[Callback]:
        callbacks: list[Callback] = [ContractHandover(), NewWeights()]
        if self.trainer.state.fn != TrainerFn.FITTING:
            # Evaluation needs none of the others; returning them again (the best checkpoint's re-validation after
            # fit) would make Lightning choose which instances to replace by set order, which differs by process
            return callbacks
        if self.trainer.checkpoint_callback is not None:  # unless Trainer(enable_checkpointing=False)
            kept = self.hparams.get("checkpoints", "resumable")  # (.get: checkpoints from before the setting)
            callbacks += fit_checkpoints(self.monitor_mode, self.hparams.checkpoint_every_n_steps, kept)
        if self.trainer.logger is not None:
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        if self.hparams.early_stopping_patience is not None:
            patience = self.hparams.early_stopping_patience
            callbacks.append(EarlyStoppingOnTaskMetric(mode=self.monitor_mode, patience=patience))
        return callbacks

    # ---------------------------------------------------------------------------------------------- task hooks
    def collect(self, stage: EvalStage, split: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the model on an evaluation batch and return what to keep, one row per feature."""
        raise NotImplementedError

    def evaluate(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> EvalResult:
        """Score a split from its features' gathered outputs (sorted by ``feature_index``)."""
        raise NotImplementedError

    def figures(self, result: EvalResult, title: str) -> dict[str, Figure]:
        """Figures of an evaluation for the loggers, by name (see ``log_figures``); ``title``
        names the evaluation (``val``, ``val_mismatched``, ``test``)."""
        return {}

    def predict_records(self, split: str, feature_index: torch.Tensor, outputs: dict[str, torch.Tensor]) -> list:
        """One record per input row, in input order, from the features' gathered outputs."""
        raise NotImplementedError

    def result_files(self, result: EvalResult) -> dict[str, object]:
        """Files (name → JSON-serialisable content) that an evaluation writes, e.g. predictions."""
        return {}

    def finish_training(self) -> None:
        """Called once fit is over and the best checkpoint re-evaluated, before the export: last changes to the
        model (e.g. calibration)."""

    def exported_model(self, model: PreTrainedModel) -> PreTrainedModel:
        """The model as exported: ``model`` (the live one, or its merged copy), or a changed copy of it."""
        return model

    def inference_settings(self) -> dict:
        """What inference must repeat of this run's data and decoding settings (windows …), saved in the
        export's config as ``ftlit_inference``."""
        return {}

    def describe_model(self) -> dict:
        """The ``model`` section of results.json."""
        return parameter_counts(self.model)
