"""TransformerModule: what every task module shares — the model, optimizer and schedule, clipping, checkpoints,
the export, and evaluation (validate, test, predict) written once.

A task module says which Hugging Face model it trains (``auto_class``, ``head_settings``), what it keeps of each
evaluated batch (``collect``), how it scores (``evaluate``) or decodes (``predict_records``) the gathered outputs,
and what files an evaluation writes (``result_files``). Everything it knows of the data comes from the contract
its data module hands over (``accept_contract``).
"""

import copy
import math
import shutil
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Literal

import torch
from lightning import Callback, LightningModule
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from peft import TaskType
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ftlit.contract import DataContract, EvalStage, metric_suffix
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained
from ftlit.settings import check_range
from ftlit.training.attention import attention_dropout, attention_implementation, trains_faster_eager
from ftlit.training.dropout import use_cpu_dropout
from ftlit.training.evaluation import EvalResult, FeatureOutputs
from ftlit.training.loggers import log_figures
from ftlit.training.lora import LoraSettings, apply_lora
from ftlit.training.optim import WarmupDecay, parameter_groups
from ftlit.training.outputs import replace_directory

#: Validation metrics where lower is better: a ``main_metric`` among them picks the checkpoint with its lowest value
LOWER_IS_BETTER = frozenset({"loss", "mse", "mae", "hamming_loss", "ece", "brier", "nll"})


class TransformerModule(LightningModule):
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
            attends eagerly, where that is measured faster (see ftlit.training.attention). A setting of this run:
            an evaluation of its export (ftlit export) uses the model's default.
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
    )

    #: The Hugging Face auto class of the task's model (``AutoModelForQuestionAnswering``, …)
    auto_class: type
    #: peft's name for the task, which decides how the adapted model is wrapped
    task_type: TaskType
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
        peft: LoraSettings | None = None,
        gradient_checkpointing: bool = False,
        quantization: Literal["4bit"] | None = None,
        compile: bool = False,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        engine: Literal["torch", "onnxruntime"] = "torch",
        main_metric: str | None = None,
        attn_implementation: str | None = None,
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
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        # hparams may hold the config's plain dicts (LightningCLI records the parsed config there)
        self.lora = LoraSettings(**peft) if isinstance(peft, dict) else peft
        self.model: PreTrainedModel | None = None
        # LoRA checkpoints hold only what trains; the frozen base comes from model_name_or_path
        self.strict_loading = peft is None
        self.contract: DataContract | None = None
        self.last_eval: EvalResult | None = None  # the first split's result of the latest evaluation
        self.predictions: list[dict] | None = None  # one record per input row of the latest prediction
        self._outputs: dict[str, FeatureOutputs] = {}
        # The model's attention dropout where training batches may attend eagerly, None where never (configure_model)
        self._switchable_attention_dropout: float | None = None

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
        export under ONNX Runtime."""
        if self.hparams.engine == "onnxruntime":
            from ftlit.deploy.onnx import OnnxRuntimeModel

            return OnnxRuntimeModel(self.hparams.model_name_or_path)
        kwargs = self.head_settings()
        if self.hparams.quantization == "4bit":
            try:
                import bitsandbytes  # noqa: F401
                from transformers import BitsAndBytesConfig
            except ImportError:
                raise FtlitError("--model.quantization 4bit needs bitsandbytes: `pip install bitsandbytes`.") from None
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        kernel = self.hparams.get("attn_implementation")  # (.get: checkpoints from before the setting lack it)
        if kernel:
            kwargs["attn_implementation"] = kernel
        try:
            model = load_pretrained(self.auto_class.from_pretrained, self.hparams.model_name_or_path, "model", **kwargs)
        except (ValueError, ImportError) as err:  # an unknown kernel, or one whose package is missing
            if not kernel:
                raise
            raise FtlitError(f"Could not load the model with --model.attn_implementation {kernel}: {err}") from None
        if self.hparams.quantization:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
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
        # A kernel the user chose stays; a compiled model would compile anew at each switch; gradient checkpointing
        # recomputes the forward pass in the backward, outside the switch, and must find the same operations
        switchable = (
            not self.hparams.get("attn_implementation")
            and not self.hparams.compile
            and not self.hparams.gradient_checkpointing
            and model.config._attn_implementation == "sdpa"
            and model._can_set_attn_implementation()
        )
        self._switchable_attention_dropout = attention_dropout(model.config) if switchable else None
        if self.hparams.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.lora is not None:
            model = apply_lora(model, self.lora, self.task_type, self.head_modules)
        # from_pretrained returns the model in eval mode; Lightning keeps module modes as they are
        self.model = model.train()
        if self.hparams.compile:
            self.model.compile()  # in place: parameter names, checkpoints and the export are unchanged

    def on_fit_start(self) -> None:
        # torch's CPU dropout masks are slow to draw (ftlit.training.dropout); a compiled model gets its
        # compiler's own fused dropout
        if self.device.type == "cpu" and not self.hparams.compile:
            use_cpu_dropout(self.model)
        counts = self.parameter_counts()
        trainable, total = counts["trainable_params"], counts["total_params"]
        lora = sum(p.numel() for name, p in self.model.named_parameters() if p.requires_grad and "lora_" in name)
        detail = f" ({lora:,} LoRA + {trainable - lora:,} task head)" if self.lora else ""
        rank_zero_info(f"Trainable parameters: {trainable:,}{detail} of {total:,} ({100 * trainable / total:.2f} %)")
        if self.logger is not None:
            self.logger.log_metrics({"params/trainable": trainable, "params/total": total}, step=0)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.lora is not None:  # adapters + head (+ optimizer state) and the module's own buffers: small checkpoints
            trainable = {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {
                k: v for k, v in checkpoint["state_dict"].items() if k in trainable or not k.startswith("model.")
            }

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
        model = self.exported_model(model)
        if self.inference_settings():
            # read by ftlit's pipelines: a model is served with the windows and decoding it was trained with
            model.config.ftlit_inference = self.inference_settings()
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # (a full disk, say): no half export left behind
            raise
        replace_directory(staging, directory)

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
        hp = self.hparams
        groups = parameter_groups(list(self.model.parameters()), hp.learning_rate, hp.weight_decay)
        # one kernel for all parameters instead of a Python loop over them: faster on a GPU and on the CPU too
        fused = self.device.type in ("cuda", "cpu")
        if self.optimizer is None:
            optimizer = torch.optim.AdamW(groups, lr=hp.learning_rate, eps=hp.adam_epsilon, fused=fused)
        elif fused and fusable(getattr(self.optimizer, "keywords", {})):
            optimizer = self.optimizer(groups, fused=True)  # an optimizer with a fused kernel (Adam, SGD, …)
        else:
            optimizer = self.optimizer(groups)
        total = self.trainer.estimated_stepping_batches
        steps = {
            "num_training_steps": total,
            "num_warmup_steps": hp.warmup_steps if hp.warmup_steps is not None else math.ceil(hp.warmup_ratio * total),
        }
        if self.lr_scheduler is None:
            scheduler = WarmupDecay(optimizer, "linear", **steps)
        else:  # the run's step counts go to a schedule that asks for them and was not given them
            given = getattr(self.lr_scheduler, "keywords", {})
            scheduler = self.lr_scheduler(optimizer, **{k: v for k, v in steps.items() if given.get(k, 0) is None})
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # stepped on the task metric
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": f"val/{self.monitor}", "interval": "epoch"},
            }
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[Callback]:
        callbacks: list[Callback] = [ContractHandover()]
        if self.trainer.state.fn != TrainerFn.FITTING:
            # Evaluation needs none of the others; returning them again (the best checkpoint's re-validation after
            # fit) would make Lightning choose which instances to replace by set order, which differs by process
            return callbacks
        if self.trainer.checkpoint_callback is not None:  # unless Trainer(enable_checkpointing=False)
            # The best checkpoint by the task metric, and last.ckpt to resume from (every N steps, every epoch end)
            best = BestCheckpoint(
                mode=self.monitor_mode, filename="best-epoch{epoch}-step{step}", auto_insert_metric_name=False
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
        return self.parameter_counts()

    # ---------------------------------------------------------------------------------------------- evaluation
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

    # ---------------------------------------------------------------------------------------------- outputs
    def eval_summary(self) -> dict:
        """The ``eval`` section of results.json: the latest evaluation's size and timing."""
        return self.last_eval.summary() if self.last_eval else {}

    def output_files(self) -> dict[str, object]:
        """The files the latest evaluation writes beside results.json."""
        return self.result_files(self.last_eval) if self.last_eval else {}


class ContractHandover(Callback):
    """Hands the data module's contract to the model module at every stage's setup, after the data module has set
    up and before the model builds its head: the one place where data and model meet."""

    def setup(self, trainer, pl_module: TransformerModule, stage: str) -> None:
        contract = getattr(trainer.datamodule, "contract", None)
        if contract is not None:
            pl_module.accept_contract(contract)
        elif pl_module.contract is None:
            raise FtlitError(
                f"{type(pl_module).__name__} has no data contract: train or evaluate it with its data module, or "
                "hand it one first (accept_contract)."
            )


class MonitorsTaskMetric(Callback):
    """For checkpointing and early stopping: the monitored metric is the task's main one, known once the contract
    is in (at setup). Their state is saved under Lightning's own class name (``saved_as``), so that checkpoints
    written before these subclasses existed resume with their best score and patience."""

    saved_as: type[Callback]

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, self.saved_as.__qualname__, 1)

    def setup(self, trainer, pl_module: TransformerModule, stage: str) -> None:
        self.monitor = f"val/{pl_module.monitor}"
        super().setup(trainer, pl_module, stage)


class BestCheckpoint(MonitorsTaskMetric, ModelCheckpoint):
    """Keeps the checkpoint with the best task metric, and the step it was saved at (``best_step``; None in a
    resumed run until it saves one), so that fit can tell whether the weights it ends with are the best."""

    saved_as = ModelCheckpoint
    best_step: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        self._noting_best_step(super().on_validation_end, trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._noting_best_step(super().on_train_epoch_end, trainer, pl_module)

    def _noting_best_step(self, hook, trainer, pl_module) -> None:
        best = self.best_model_path
        hook(trainer, pl_module)
        if self.best_model_path != best:  # (a new best is a new file: its name holds the step)
            self.best_step = trainer.global_step


class EarlyStoppingOnTaskMetric(MonitorsTaskMetric, EarlyStopping):
    """Stops when the task metric has not improved for ``patience`` validations."""

    saved_as = EarlyStopping

    def __init__(self, **kwargs) -> None:
        super().__init__(monitor="val/(the task metric, set at setup)", **kwargs)


def fusable(settings: dict) -> bool:
    """Whether an optimizer configured with ``settings`` (its init arguments) takes ``fused=True``: it has the
    option, left unset, and neither ``foreach`` nor ``differentiable``, which exclude it."""
    return (
        "fused" in settings
        and settings["fused"] is None
        and not settings.get("foreach")
        and not settings.get("differentiable")
    )
